//! Function definitions as the host discovers them from `function.json`
//! folders (`docs/functions-protocol.md` §2.1).

use std::path::Path;

use serde_json::Value;

/// One discovered function.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub name: String,
    pub bindings: Vec<Value>,
}

impl FunctionDef {
    /// The trigger binding (exactly one is checked at discovery).
    pub fn trigger(&self) -> &Value {
        self.bindings
            .iter()
            .find(|b| is_trigger(b))
            .expect("discovery checked the trigger")
    }

    /// Output bindings by name.
    pub fn output(&self, name: &str) -> Option<&Value> {
        self.bindings
            .iter()
            .find(|b| b["direction"] == "out" && b["name"] == name)
    }

    /// `IsHttpInAndOutFunction` (§4.1): exactly one httpTrigger in, one http out.
    pub fn is_forwarded(&self) -> bool {
        let ins: Vec<_> = self
            .bindings
            .iter()
            .filter(|b| b["direction"] == "in")
            .collect();
        let outs: Vec<_> = self
            .bindings
            .iter()
            .filter(|b| b["direction"] == "out")
            .collect();
        ins.len() == 1
            && ins[0]["type"] == "httpTrigger"
            && outs.len() == 1
            && outs[0]["type"] == "http"
    }
}

pub(crate) fn is_trigger(b: &Value) -> bool {
    b["direction"] == "in"
        && b["type"]
            .as_str()
            .is_some_and(|t| t.to_ascii_lowercase().ends_with("trigger"))
}

/// `Utility.FunctionNameValidationRegex` (§2.1): `^[a-z][a-z0-9_\-]{0,127}$`,
/// case-insensitive, and not `host`.
pub fn valid_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.eq_ignore_ascii_case("host")
}

/// Scans the immediate subfolders of `root` for `function.json` (§2.1) and
/// validates each as the host does: a legal name, at least one binding and
/// exactly one trigger.
pub fn discover(root: &Path) -> Vec<FunctionDef> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).expect("functions folder") {
        let dir = entry.expect("entry").path();
        let file = dir.join("function.json");
        if !file.is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        assert!(
            valid_function_name(&name),
            "{name}: illegal function name (§2.1)"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read"))
            .unwrap_or_else(|e| panic!("{name}/function.json is not JSON: {e}"));
        let bindings = v["bindings"].as_array().cloned().unwrap_or_default();
        assert!(
            !bindings.is_empty(),
            "{name}: At least one binding must be declared"
        );
        let triggers = bindings.iter().filter(|b| is_trigger(b)).count();
        assert_eq!(triggers, 1, "{name}: exactly one trigger binding");
        for b in &bindings {
            assert!(
                b["name"].as_str().is_some_and(|n| !n.is_empty()),
                "{name}: binding without a name"
            );
            assert!(
                matches!(b["direction"].as_str(), Some("in" | "out")),
                "{name}: bad direction"
            );
        }
        out.push(FunctionDef { name, bindings });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
