//! infra/*.bicep: a syntax check with the tree-sitter Bicep grammar (no
//! Bicep compiler is installable here: it is downloaded at install time from
//! hosts this build cannot reach), and the declared
//! containers and queues compared with the code they must match.

use std::path::{Path, PathBuf};

use castiel_integrations::drivers::functions::registry::SERVICE_BUS_MAX_RECEIVES;
use castiel_integrations::platform::store::Container;
use serde_json::{Map, Value};
use tree_sitter::{Node, Parser, Tree};

use crate::host::repo;

fn parse(src: &str) -> Tree {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_bicep::LANGUAGE.into())
        .expect("grammar");
    parser.parse(src, None).expect("parse")
}

fn syntax_errors(n: Node<'_>, out: &mut Vec<(usize, usize)>) {
    if n.is_error() || n.is_missing() {
        let p = n.start_position();
        out.push((p.row + 1, p.column + 1));
    }
    let mut c = n.walk();
    for ch in n.children(&mut c) {
        syntax_errors(ch, out);
    }
}

/// Every .bicep file under infra/.
pub fn bicep_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("infra") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "bicep") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("infra"), &mut out);
    out.sort();
    out
}

fn text<'a>(n: Node<'_>, src: &'a str) -> &'a str {
    &src[n.byte_range()]
}

fn named_children(n: Node<'_>) -> Vec<Node<'_>> {
    let mut c = n.walk();
    n.named_children(&mut c).collect()
}

/// A literal Bicep expression as JSON (objects, arrays, strings without
/// interpolation, numbers, booleans); anything else as its source text.
fn literal(n: Node<'_>, src: &str) -> Value {
    match n.kind() {
        "object" => {
            let mut m = Map::new();
            for p in named_children(n)
                .into_iter()
                .filter(|p| p.kind() == "object_property")
            {
                let kids = named_children(p);
                let (Some(k), Some(v)) = (kids.first(), kids.last()) else {
                    continue;
                };
                let key = match literal(*k, src) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                m.insert(key, literal(*v, src));
            }
            Value::Object(m)
        }
        "array" => Value::Array(
            named_children(n)
                .into_iter()
                .filter(|c| c.kind() != "decorators")
                .map(|c| literal(c, src))
                .collect(),
        ),
        "string" => {
            let kids = named_children(n);
            if kids.iter().all(|k| k.kind() == "string_content") {
                Value::String(kids.iter().map(|k| text(*k, src)).collect())
            } else {
                Value::String(text(n, src).to_owned())
            }
        }
        "number" => text(n, src).parse::<i64>().map_or(Value::Null, Value::from),
        "unary_expression" if text(n, src).starts_with('-') => {
            match literal(named_children(n)[0], src) {
                Value::Number(x) => Value::from(-x.as_i64().unwrap_or_default()),
                _ => Value::String(text(n, src).to_owned()),
            }
        }
        "boolean" | "true" | "false" => Value::Bool(text(n, src) == "true"),
        _ => Value::String(text(n, src).to_owned()),
    }
}

/// The value of `var <name> = ...` in a Bicep file, parsed from the syntax tree.
pub fn bicep_var(file: &str, name: &str) -> Value {
    let src = std::fs::read_to_string(repo().join("infra").join(file)).expect("read bicep");
    let tree = parse(&src);
    let root = tree.root_node();
    for decl in named_children(root)
        .into_iter()
        .filter(|d| d.kind() == "variable_declaration")
    {
        let kids = named_children(decl);
        if kids.first().is_some_and(|k| text(*k, &src) == name) {
            return literal(*kids.last().expect("value"), &src);
        }
    }
    panic!("{file}: no `var {name}`");
}

/// The `siteConfig.appSettings` of the Function App (`Microsoft.Web/sites`)
/// in main.bicep, read from the syntax tree: each setting's name and value.
///
/// A value is evaluated as the deployment would: strings as written (escapes
/// and `${...}` interpolations included) and `var`s of main.bicep by their
/// definition; any other expression (a parameter, a module output, a
/// function call) is passed to `lookup` by its source text, which gives the
/// value a deployment would produce. An expression `lookup` has no value for
/// is a panic naming the setting, so a new setting cannot go unvalued.
pub fn app_settings(lookup: &mut dyn FnMut(&str) -> Option<String>) -> Vec<(String, String)> {
    let src = std::fs::read_to_string(repo().join("infra/main.bicep")).expect("read main.bicep");
    let tree = parse(&src);
    let root = tree.root_node();
    let vars: std::collections::HashMap<&str, Node<'_>> = named_children(root)
        .into_iter()
        .filter(|d| d.kind() == "variable_declaration")
        .filter_map(|d| {
            let kids = named_children(d);
            Some((text(*kids.first()?, &src), *kids.last()?))
        })
        .collect();
    app_setting_nodes(root, &src)
        .into_iter()
        .map(|(name, value)| {
            let v = evaluate(value, &src, &vars, lookup, &name);
            (name, v)
        })
        .collect()
}

/// The names of the Function App's app settings in main.bicep.
pub fn app_setting_names() -> Vec<String> {
    let src = std::fs::read_to_string(repo().join("infra/main.bicep")).expect("read main.bicep");
    let tree = parse(&src);
    app_setting_nodes(tree.root_node(), &src)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn app_setting_nodes<'t>(root: Node<'t>, src: &str) -> Vec<(String, Node<'t>)> {
    fn find<'t>(n: Node<'t>, src: &str, key: &str, out: &mut Vec<Node<'t>>) {
        if n.kind() == "object_property"
            && named_children(n)
                .first()
                .is_some_and(|k| text(*k, src) == key)
        {
            out.push(n);
        }
        for c in named_children(n) {
            find(c, src, key, out);
        }
    }
    let sites: Vec<Node<'t>> = named_children(root)
        .into_iter()
        .filter(|d| d.kind() == "resource_declaration")
        .filter(|d| {
            named_children(*d)
                .iter()
                .any(|c| c.kind() == "string" && text(*c, src).starts_with("'Microsoft.Web/sites@"))
        })
        .collect();
    assert_eq!(
        sites.len(),
        1,
        "main.bicep declares one Microsoft.Web/sites"
    );
    let mut props = Vec::new();
    find(sites[0], src, "appSettings", &mut props);
    assert_eq!(props.len(), 1, "the Function App has one appSettings");
    let array = *named_children(props[0]).last().expect("appSettings value");
    assert_eq!(array.kind(), "array", "appSettings is an array");
    named_children(array)
        .into_iter()
        .map(|entry| {
            assert_eq!(entry.kind(), "object", "{}", text(entry, src));
            let field = |key: &str| {
                named_children(entry)
                    .into_iter()
                    .filter(|p| p.kind() == "object_property")
                    .find(|p| {
                        named_children(*p)
                            .first()
                            .is_some_and(|k| text(*k, src) == key)
                    })
                    .and_then(|p| named_children(p).last().copied())
                    .unwrap_or_else(|| panic!("app setting without {key}: {}", text(entry, src)))
            };
            let name = match literal(field("name"), src) {
                Value::String(s) if !s.starts_with('\'') => s,
                other => panic!("app setting names are plain strings: {other}"),
            };
            (name, field("value"))
        })
        .collect()
}

fn evaluate(
    n: Node<'_>,
    src: &str,
    vars: &std::collections::HashMap<&str, Node<'_>>,
    lookup: &mut dyn FnMut(&str) -> Option<String>,
    setting: &str,
) -> String {
    if n.kind() == "string" {
        let mut out = String::new();
        for part in named_children(n) {
            match part.kind() {
                "string_content" => out.push_str(text(part, src)),
                "interpolation" => {
                    let inner = *named_children(part).first().expect("expression");
                    out.push_str(&evaluate(inner, src, vars, lookup, setting));
                }
                "escape_sequence" => out.push(match text(part, src) {
                    "\\n" => '\n',
                    "\\r" => '\r',
                    "\\t" => '\t',
                    e => e.chars().nth(1).expect("escaped character"),
                }),
                other => panic!("{setting}: unexpected {other} in a string"),
            }
        }
        return out;
    }
    let expr = text(n, src);
    if let Some(v) = lookup(expr) {
        return v;
    }
    if n.kind() == "identifier"
        && let Some(def) = vars.get(expr)
    {
        return evaluate(*def, src, vars, lookup, setting);
    }
    panic!(
        "app setting {setting}: the test has no deployment value for `{expr}` (add it to its table)"
    )
}

#[test]
fn every_bicep_file_parses_without_syntax_errors() {
    let files = bicep_files();
    assert!(files.len() >= 2, "{files:?}");
    for path in files {
        let src = std::fs::read_to_string(&path).expect("read");
        let tree = parse(&src);
        let mut errs = Vec::new();
        syntax_errors(tree.root_node(), &mut errs);
        assert!(
            errs.is_empty(),
            "{}: syntax errors at (line, column) {errs:?}",
            path.display()
        );
    }
}

#[test]
fn the_syntax_check_catches_mistakes() {
    let src = std::fs::read_to_string(repo().join("infra/modules/servicebus.bicep")).expect("read");
    let broken = src
        .replacen("parent: namespace", "parent namespace", 1)
        .replacen(
            "maxDeliveryCount: q.maxDeliveryCount",
            "maxDeliveryCount: = q.maxDeliveryCount",
            1,
        );
    let mut errs = Vec::new();
    syntax_errors(parse(&broken).root_node(), &mut errs);
    assert!(!errs.is_empty(), "seeded mistakes must be reported");
}

#[test]
fn cosmos_declares_every_container_with_its_partition_key_and_ttl() {
    let declared = bicep_var("modules/cosmos.bicep", "containers");
    let declared = declared.as_array().expect("array");
    assert_eq!(
        declared.len(),
        Container::ALL.len(),
        "one entry per Container::ALL"
    );
    for c in Container::ALL {
        let entry = declared
            .iter()
            .find(|e| e["name"] == c.name())
            .unwrap_or_else(|| {
                panic!("{} is not declared in infra/modules/cosmos.bicep", c.name())
            });
        assert_eq!(
            entry["partitionKey"],
            c.partition_key_path(),
            "{}",
            c.name()
        );
        let ttl = c.default_ttl_seconds().map_or(-1, i64::from);
        assert_eq!(entry["defaultTtl"], ttl, "{}: defaultTtl", c.name());
    }
    let src = std::fs::read_to_string(repo().join("infra/modules/cosmos.bicep")).expect("read");
    for needle in [
        "paths: [\n          c.partitionKey",
        "defaultTtl: c.defaultTtl",
        "'EnableServerless'",
        "autoscaleSettings",
        "disableLocalAuth: true",
    ] {
        assert!(src.contains(needle), "cosmos.bicep lacks {needle:?}");
    }
}

/// The queues of servicebus.bicep, by name.
pub fn queues() -> Map<String, Value> {
    bicep_var("modules/servicebus.bicep", "queues")
        .as_array()
        .expect("array")
        .iter()
        .map(|q| (q["name"].as_str().expect("name").to_owned(), q.clone()))
        .collect()
}

#[test]
fn service_bus_queues_have_delivery_limits_dead_lettering_and_locks() {
    let queues = queues();
    for name in ["sync-runs", "webhook-deliveries"] {
        let q = &queues[name];
        assert_eq!(
            q["maxDeliveryCount"], SERVICE_BUS_MAX_RECEIVES,
            "{name}: the handler parks on the last delivery the queue allows"
        );
        assert!(
            queues.contains_key(&format!("{name}-parked")),
            "{name}: parking queue"
        );
    }
    for (name, q) in &queues {
        assert!(
            q["maxDeliveryCount"].as_i64().is_some_and(|n| n >= 1),
            "{name}"
        );
        let lock = q["lockDuration"].as_str().unwrap_or_default();
        assert!(
            lock.starts_with("PT") && ["PT5M", "PT1M", "PT30S", "PT2M"].contains(&lock),
            "{name}: lockDuration {lock} (max PT5M)"
        );
    }
    let src = std::fs::read_to_string(repo().join("infra/modules/servicebus.bicep")).expect("read");
    for needle in [
        "deadLetteringOnMessageExpiration: true",
        "maxDeliveryCount: q.maxDeliveryCount",
        "lockDuration: q.lockDuration",
        "disableLocalAuth: true",
    ] {
        assert!(src.contains(needle), "servicebus.bicep lacks {needle:?}");
    }
}

#[test]
fn the_function_app_is_a_custom_handler_with_identity_roles_and_key_vault_settings() {
    let read = |f: &str| std::fs::read_to_string(repo().join("infra").join(f)).expect("read");
    let main = read("main.bicep");
    let roles = read("modules/roles.bicep");
    for needle in [
        "tier: 'ElasticPremium'",
        "kind: 'functionapp,linux'",
        "type: 'SystemAssigned'",
        "{ name: 'FUNCTIONS_WORKER_RUNTIME', value: 'custom' }",
        "{ name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }",
        "ServiceBusConnection__fullyQualifiedNamespace",
        "AzureWebJobsStorage__accountName",
        "@Microsoft.KeyVault(${keyVaultRef};SecretName=jwt-secret)",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "{ name: 'STORE', value: 'cosmos' }",
        "output apiBaseUrl",
        "output cosmosEndpoint",
        "param cosmosCapacityMode",
    ] {
        assert!(main.contains(needle), "main.bicep lacks {needle:?}");
    }
    for needle in [
        "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
        "sqlRoleDefinitions/${roles.cosmosDataContributor}",
        "'00000000-0000-0000-0000-000000000002'",
        "'69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'",
        "'4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'",
        // Key Vault Secrets Officer: SECRETS=keyvault sets and deletes secrets.
        "'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'",
    ] {
        assert!(roles.contains(needle), "roles.bicep lacks {needle:?}");
    }
    assert!(read("modules/keyvault.bicep").contains("enableRbacAuthorization: true"));
    // Which app settings are configuration keys: bicep_settings.rs.
}
