//! The crate's layer rules, checked by reading `src/` (see docs/architecture.md).
//!
//! Layers, one direction: drivers → app → features → platform → basics. A file
//! imports only from layers below its own (`main.rs` and `lib.rs` import anything),
//! so the core never depends on how it is driven. Drivers import each other only
//! along [`DRIVER_DEPS`] (both run modes serve the one HTTP router); features
//! import each other only along [`FEATURE_DEPS`]; platform modules may
//! import each other; basics ([`BASICS`]) import only basics; a platform file may
//! not even name `features::…`. A new top-level module fails until it is given a
//! layer here. And no import circle between units (a feature, a platform module,
//! `app`, a driver, a basic), so each can be read, tested and moved on its own.
//!
//! An import is any `crate::…` path in code, with `use crate::{a::b, c}` groups
//! expanded; comments are skipped and `super::` paths are not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which driver may import which: `(importer, imported)`. The Functions
/// handler and `serve` both serve the HTTP router; the handler shuts down on
/// the same signals as `serve`.
const DRIVER_DEPS: &[(&str, &str)] = &[
    ("functions", "http"),
    ("functions", "serve"),
    ("serve", "http"),
];

/// Which feature may import which: `(importer, imported)`.
const FEATURE_DEPS: &[(&str, &str)] = &[
    ("integrations", "catalog"),
    ("integrations", "webhooks"),
    ("connections", "integrations"),
    ("connections", "catalog"),
    ("sync", "connections"),
    ("sync", "integrations"),
    ("sync", "catalog"),
];

/// The basics: top-level modules (`src/<name>.rs` or `src/<name>/`) below everything else.
const BASICS: &[&str] = &["domain", "error", "clock", "config", "jobs", "telemetry"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Layer {
    Basics,
    Platform,
    Features,
    App,
    Drivers,
    Root,
}

/// A unit of the cycle graph, such as `features/catalog` or `error`; its layer is
/// `None` when its top-level module has not been given one.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Unit {
    name: String,
    layer: Option<Layer>,
}

impl Unit {
    /// `catalog` for `features/catalog`.
    fn short(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }
}

/// The unit of a module path: the segments after `crate::`, or of a file under `src/`.
fn unit_of(segments: &[&str]) -> Unit {
    let top = segments.first().copied().unwrap_or("");
    let layer = match top {
        "main" | "lib" if segments.len() == 1 => Some(Layer::Root),
        "drivers" => Some(Layer::Drivers),
        "app" => Some(Layer::App),
        "features" => Some(Layer::Features),
        "platform" => Some(Layer::Platform),
        _ => BASICS.contains(&top).then_some(Layer::Basics),
    };
    let name = match (layer, segments.get(1)) {
        (Some(Layer::Drivers | Layer::Features | Layer::Platform), Some(sub)) => {
            format!("{top}/{sub}")
        }
        _ => top.to_string(),
    };
    Unit { name, layer }
}

/// The unit of a file such as `src/platform/store/mod.rs`.
fn unit_of_file(path: &str) -> Unit {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    let mut segments: Vec<&str> = rel.strip_suffix(".rs").unwrap_or(rel).split('/').collect();
    if segments.len() > 1 && segments.last() == Some(&"mod") {
        segments.pop();
    }
    unit_of(&segments)
}

/// Why `from` may not import `to`, or `None` when it may.
fn broken_rule(from: &Unit, to: &Unit) -> Option<String> {
    let (f, a, b) = (from.layer?, from.short(), to.short());
    let Some(t) = to.layer else {
        let module = &to.name;
        return Some(format!(
            "module `crate::{module}` is not assigned to a layer"
        ));
    };
    let allowed = match (f, t) {
        _ if from.name == to.name => true,
        (Layer::Features, Layer::Features) => FEATURE_DEPS.contains(&(a, b)),
        (Layer::Drivers, Layer::Drivers) => DRIVER_DEPS.contains(&(a, b)),
        (Layer::Platform, Layer::Platform) | (Layer::Basics, Layer::Basics) => true,
        _ => f > t,
    };
    let layer = |l: Layer| format!("{l:?}").to_lowercase();
    (!allowed).then(|| match f {
        _ if f != t => format!("{} may not import {}", layer(f), layer(t)),
        Layer::Features => format!("feature `{a}` may not import `{b}` (see FEATURE_DEPS)"),
        _ => format!("driver `{a}` may not import driver `{b}` (see DRIVER_DEPS)"),
    })
}

/// The code of each line: comment lines blanked, a trailing ` // …` cut.
fn code_lines(text: &str) -> Vec<&str> {
    fn code(line: &str) -> &str {
        if line.trim_start().starts_with("//") {
            return "";
        }
        line.find(" //").map_or(line, |cut| &line[..cut])
    }
    text.lines().map(code).collect()
}

/// The unit of every `crate::…` path in `text`, with its line number (from 1).
fn imports(text: &str) -> Vec<(usize, Unit)> {
    let code = code_lines(text).join("\n");
    let mut leaves = Leaves::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            tree(&code, &mut (at + "crate::".len()), &[], &mut leaves);
        }
    }
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let unit = |(at, path): &(usize, Vec<&str>)| (line_of(*at), unit_of(path));
    let mut units: Vec<_> = leaves.iter().map(unit).collect();
    units.sort();
    units.dedup();
    units
}

type Leaves<'a> = Vec<(usize, Vec<&'a str>)>;

/// Reads one path tree (`a::b`, `a::{b, c::{self, d as e}, f::*}`) at `code[*i..]`
/// after `prefix`, pushing each leaf path with the offset where its text starts.
fn tree<'a>(code: &'a str, i: &mut usize, prefix: &[&'a str], out: &mut Leaves<'a>) {
    let skip_space = |i: &mut usize| *i = code.len() - code[*i..].trim_start().len();
    skip_space(i);
    let (start, mut path, mut grew) = (*i, prefix.to_vec(), false);
    loop {
        skip_space(i);
        if code[*i..].starts_with('{') {
            *i += 1;
            loop {
                tree(code, i, &path, out);
                // Past `as name` or `*`, and the separator.
                let rest = &code[*i..];
                *i += rest.find([',', '}']).map_or(rest.len(), |at| at + 1);
                if !code[..*i].ends_with(',') {
                    return;
                }
            }
        }
        let rest = &code[*i..];
        let end = rest.find(|c: char| !c.is_alphanumeric() && c != '_');
        let ident = &rest[..end.unwrap_or(rest.len())];
        *i += ident.len();
        grew |= !ident.is_empty();
        if !ident.is_empty() && ident != "self" {
            path.push(ident);
        }
        let after = *i;
        skip_space(i);
        if ident.is_empty() || !code[*i..].starts_with("::") {
            *i = after;
            break;
        }
        *i += 2;
    }
    if grew && !path.is_empty() {
        out.push((start, path));
    }
}

/// Every broken layer rule in `files` (`(path, text)` pairs), one message each.
fn layer_violations(files: &[(String, String)]) -> Vec<String> {
    let mut violations = Vec::new();
    for (path, text) in files {
        let from = unit_of_file(path);
        if from.layer.is_none() {
            let module = &from.name;
            violations.push(format!(
                "{path}: file is not in a layer (`{module}` has none)"
            ));
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        let mut reported = BTreeSet::new();
        for (line, to) in imports(text) {
            if let Some(rule) = broken_rule(&from, &to) {
                let text = lines[line - 1].trim();
                violations.push(format!("{path}:{line}: {rule} ({text})"));
                reported.insert(line);
            }
        }
        if from.layer != Some(Layer::Platform) {
            continue;
        }
        for (line, code) in (1..).zip(code_lines(text)) {
            let starts_a_name =
                |(at, _)| !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if code.match_indices("features::").any(starts_a_name) && !reported.contains(&line) {
                let text = code.trim();
                violations.push(format!(
                    "{path}:{line}: platform may not name a feature ({text})"
                ));
            }
        }
    }
    violations
}

type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Every import circle between units in `files`, as `a → b (where), b → a (where)`.
fn import_cycles(files: &[(String, String)]) -> Vec<String> {
    // unit → imported unit → the first place it is imported.
    let mut graph = Graph::new();
    for (path, text) in files {
        let from = unit_of_file(path).name;
        for (line, to) in imports(text).into_iter().filter(|(_, to)| to.name != from) {
            let edges = graph.entry(from.clone()).or_default();
            edges
                .entry(to.name)
                .or_insert_with(|| format!("{path}:{line}"));
        }
    }
    let (mut cycles, mut done) = (BTreeSet::new(), BTreeSet::new());
    for start in graph.keys() {
        walk(&graph, start, &mut Vec::new(), &mut done, &mut cycles);
    }
    cycles.into_iter().collect()
}

/// Depth first from `unit`: a step back onto `stack` closes a cycle, kept from its least unit.
fn walk<'g>(
    graph: &'g Graph,
    unit: &'g str,
    stack: &mut Vec<&'g str>,
    done: &mut BTreeSet<&'g str>,
    cycles: &mut BTreeSet<String>,
) {
    if let Some(pos) = stack.iter().position(|u| *u == unit) {
        let mut cycle = stack[pos..].to_vec();
        let least = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
        cycle.rotate_left(least);
        let step = |(i, a): (usize, &&str)| {
            let b = cycle[(i + 1) % cycle.len()];
            format!("{a} → {b} ({})", graph[*a][b])
        };
        let steps: Vec<String> = cycle.iter().enumerate().map(step).collect();
        cycles.insert(format!("import circle: {}", steps.join(", ")));
        return;
    }
    if !done.insert(unit) {
        return;
    }
    stack.push(unit);
    for next in graph.get(unit).into_iter().flat_map(BTreeMap::keys) {
        walk(graph, next, stack, done, cycles);
    }
    stack.pop();
}

/// Every `.rs` file under `src/` as (`src/…` path, text), sorted.
fn source_files() -> Vec<(String, String)> {
    fn visit(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.map(|entry| entry.expect("a directory entry")) {
            let (path, name) = (entry.path(), entry.file_name());
            let rel = format!("{rel}/{}", name.display());
            if path.is_dir() {
                visit(&path, &rel, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
                out.push((rel, text));
            }
        }
    }
    let root = Path::new(option_env!("CARGO_MANIFEST_DIR").unwrap_or("."));
    let mut files = Vec::new();
    visit(&root.join("src"), "src", &mut files);
    files.sort();
    files
}

fn assert_none(problems: &[String], what: &str) {
    let list = problems.join("\n");
    assert!(problems.is_empty(), "{} {what}:\n{list}\n", problems.len());
}

#[test]
fn layer_rules_hold() {
    let broken = layer_violations(&source_files());
    assert_none(&broken, "broken layer rule(s), see tests/layers.rs");
}

#[test]
fn no_import_cycles_between_units() {
    let cycles = import_cycles(&source_files());
    assert_none(&cycles, "import circle(s) between units");
}

/// Fake source files for the self-test, each after a `== path` line.
const FAKE_SRC: &str = "\
== src/platform/queue/mod.rs
//! Runs `crate::features::webhooks` jobs.
use crate::platform::store::Store;
use crate::features::webhooks::model::Delivery;
== src/platform/store/mod.rs
use crate::{
    error::Error,
    platform::queue::{self, Queue as Q},
};
== src/platform/cache.rs
type T = super::features::webhooks::X;
== src/domain/x.rs
use crate::{clock::Clock, error::Error};
use crate::platform::store::Store;
== src/features/integrations/service.rs
use crate::features::{catalog::Item, webhooks};
fn f() { crate::features::sync::Plan::new(); } // not crate::app
== src/app/mod.rs
use crate::drivers::http::router;
== src/drivers/http/mod.rs
use crate::services::pages;
use crate::app::App;
== src/services/pages.rs
use crate::domain::Page;
";

#[test]
fn the_checker_catches_a_wrong_import() {
    let files: Vec<(String, String)> = FAKE_SRC
        .split("== ")
        .filter_map(|file| file.split_once('\n'))
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect();
    let violations = layer_violations(&files);
    let all = violations.join("\n");
    let expected = [
        "src/platform/queue/mod.rs:3: platform may not import features \
         (use crate::features::webhooks::model::Delivery;)",
        "src/platform/cache.rs:1: platform may not name a feature \
         (type T = super::features::webhooks::X;)",
        "src/domain/x.rs:2: basics may not import platform (use crate::platform::store::Store;)",
        "src/features/integrations/service.rs:2: feature `integrations` may not import `sync`",
        "src/app/mod.rs:1: app may not import drivers (use crate::drivers::http::router;)",
        "src/drivers/http/mod.rs:1: module `crate::services` is not assigned to a layer",
        "src/services/pages.rs: file is not in a layer",
    ];
    for want in expected {
        let found = violations.iter().any(|v| v.starts_with(want));
        assert!(found, "no {want:?} in:\n{all}");
    }
    assert_eq!(violations.len(), expected.len(), "{all}");
    assert_eq!(
        import_cycles(&files),
        [
            "import circle: app → drivers/http (src/app/mod.rs:1), \
             drivers/http → app (src/drivers/http/mod.rs:2)",
            "import circle: platform/queue → platform/store (src/platform/queue/mod.rs:2), \
             platform/store → platform/queue (src/platform/store/mod.rs:3)",
        ],
    );
}
