//! functions/*/function.json, host.json and local.settings.json are valid
//! for the host and agree with the code and the Bicep.

use castiel_integrations::drivers::functions::TriggerKind;
use castiel_integrations::drivers::functions::production::production;
use castiel_integrations::drivers::functions::registry::PARK_BINDING;
use serde_json::Value;

use crate::host::{FunctionDef, discover, host_json, repo, route_matches};
use crate::infra::queues;

/// Non-HTTP functions whose job is wired by the branch that builds it (the
/// lead removes a name when adding its line to `triggers::jobs::production`).
const AWAITING_WIRING: &[&str] = &[];

/// SPEC §10's HTTP groups whose routes exist (plus `openapi` for
/// `/api/v1/openapi.json`); `sync-conflicts` waits in
/// `functions.pending/` until its routes exist.
const HTTP_FUNCTIONS: &[&str] = &[
    "admin",
    "health",
    "integrations",
    "openapi",
    "sync-tasks",
    "webhooks",
];

fn kind_of(def: &FunctionDef) -> Option<TriggerKind> {
    [
        TriggerKind::Timer,
        TriggerKind::ServiceBus,
        TriggerKind::RabbitMq,
    ]
    .into_iter()
    .find(|k| def.trigger()["type"] == k.binding_type())
}

#[test]
fn function_folders_are_valid_for_the_host() {
    let functions = discover(&repo().join("functions"));
    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
    for http in HTTP_FUNCTIONS {
        assert!(names.contains(http), "missing HTTP function {http}");
    }
    for f in &functions {
        let t = f.trigger();
        if t["type"] == "httpTrigger" {
            // Exactly httpTrigger + http out, or the host would not forward it (`docs/functions-protocol.md` §4.1).
            assert!(
                f.is_forwarded(),
                "{}: an HTTP function must be exactly httpTrigger + http out",
                f.name
            );
            assert_eq!(f.bindings.len(), 2, "{}", f.name);
            assert!(
                HTTP_FUNCTIONS.contains(&f.name.as_str()),
                "{}: unexpected HTTP function",
                f.name
            );
            assert_eq!(
                t["authLevel"], "anonymous",
                "{}: the API checks its own bearer tokens",
                f.name
            );
        } else {
            let kind = kind_of(f)
                .unwrap_or_else(|| panic!("{}: unsupported trigger {}", f.name, t["type"]));
            assert_eq!(
                t["name"],
                kind.binding_name(),
                "{}: the adapter reads Data.{}",
                f.name,
                kind.binding_name()
            );
        }
        if t["type"] == "timerTrigger" {
            let schedule = t["schedule"].as_str().expect("schedule");
            assert_eq!(
                schedule.split_whitespace().count(),
                6,
                "{}: 6-field NCRONTAB (functions-protocol §9)",
                f.name
            );
            assert_eq!(
                t["runOnStartup"], false,
                "{}: runOnStartup fires on every scale-out",
                f.name
            );
        }
    }
    let relay = functions
        .iter()
        .find(|f| f.name == "outbox-relay")
        .expect("outbox-relay");
    assert_eq!(relay.trigger()["schedule"], "0 */1 * * * *");
    let delivery = functions
        .iter()
        .find(|f| f.name == "webhook-delivery")
        .expect("webhook-delivery");
    assert_eq!(delivery.trigger()["queueName"], "webhook-deliveries");
}

#[test]
fn pending_functions_are_valid_but_never_shipped() {
    let shipped: Vec<String> = discover(&repo().join("functions"))
        .into_iter()
        .map(|f| f.name)
        .collect();
    let pending = discover(&repo().join("functions.pending"));
    let names: Vec<&str> = pending.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "shard-updated",
            "sync-conflicts",
            "sync-run",
            "sync-scheduler",
        ]
    );
    for f in &pending {
        assert!(
            !shipped.contains(&f.name),
            "{} is both pending and shipped",
            f.name
        );
        if f.is_forwarded() {
            continue;
        }
        let kind = kind_of(f).expect("a queue or timer trigger");
        assert_eq!(f.trigger()["name"], kind.binding_name());
    }
}

/// The one table of periodic work drives both run modes: each entry is a
/// shipped timer function with the table's schedule, registered to run the
/// entry's work, and every shipped timer function is an entry.
#[test]
fn every_periodic_work_is_a_timer_function_with_its_schedule() {
    use castiel_integrations::app::periodic::TABLE;
    let functions = discover(&repo().join("functions"));
    let registry = production();
    for work in TABLE {
        let f = functions
            .iter()
            .find(|f| f.name == work.name)
            .unwrap_or_else(|| {
                panic!(
                    "periodic work {} has no functions/{}/function.json",
                    work.name, work.name
                )
            });
        let t = f.trigger();
        assert_eq!(t["type"], "timerTrigger", "{}", work.name);
        assert_eq!(
            t["schedule"].as_str(),
            Some(work.schedule),
            "functions/{}/function.json must fire on the table's schedule",
            work.name
        );
        let reg = registry
            .get(work.name)
            .unwrap_or_else(|| panic!("{} is not registered", work.name));
        assert_eq!(reg.kind, TriggerKind::Timer);
        assert!(!work.every.is_zero(), "{}: serve's period", work.name);
    }
    for f in functions
        .iter()
        .filter(|f| f.trigger()["type"] == "timerTrigger")
    {
        assert!(
            TABLE.iter().any(|w| w.name == f.name),
            "timer function {} is not in the periodic-work table",
            f.name
        );
    }
}

#[test]
fn every_trigger_function_has_a_job_or_awaits_wiring() {
    let functions = discover(&repo().join("functions"));
    let registry = production();
    for f in functions.iter().filter(|f| !f.is_forwarded()) {
        match registry.get(&f.name) {
            Some(reg) => {
                assert_eq!(
                    Some(reg.kind),
                    kind_of(f),
                    "{}: registry and function.json disagree on the trigger",
                    f.name
                );
                assert!(
                    !AWAITING_WIRING.contains(&f.name.as_str()),
                    "{}: wired now, remove it from AWAITING_WIRING",
                    f.name
                );
            }
            None => assert!(
                AWAITING_WIRING.contains(&f.name.as_str()),
                "{}: function.json without a job: it must not be deployed",
                f.name
            ),
        }
    }
    for reg in registry.iter() {
        assert!(
            functions.iter().any(|f| f.name == reg.name),
            "{}: registered job without functions/{}/function.json",
            reg.name,
            reg.name
        );
    }
}

#[test]
fn queue_functions_match_the_bicep_and_can_park() {
    let queues = queues();
    for dir in ["functions", "functions.pending"] {
        for f in discover(&repo().join(dir)) {
            for b in &f.bindings {
                if b["type"] == "serviceBusTrigger" || b["type"] == "serviceBus" {
                    let q = b["queueName"].as_str().expect("queueName");
                    assert!(
                        queues.contains_key(q),
                        "{}: queue {q} is not declared in infra/modules/servicebus.bicep",
                        f.name
                    );
                    assert_eq!(b["connection"], "ServiceBusConnection", "{}", f.name);
                }
            }
            if kind_of(&f).is_some_and(|k| k != TriggerKind::Timer) {
                let park = f.output(PARK_BINDING).unwrap_or_else(|| {
                    panic!("{}: no `{PARK_BINDING}` output for poison messages", f.name)
                });
                let trigger_type = f.trigger()["type"]
                    .as_str()
                    .expect("type")
                    .trim_end_matches("Trigger")
                    .to_owned();
                assert_eq!(
                    park["type"],
                    Value::String(trigger_type),
                    "{}: parks on the same broker",
                    f.name
                );
            }
        }
    }
}

#[test]
fn http_routes_cover_every_api_path_and_keep_the_api_prefix() {
    let host = host_json();
    assert_eq!(
        host["extensions"]["http"]["routePrefix"], "api",
        "forwarded paths keep /api (functions-protocol §4.1)"
    );
    let forwarded: Vec<FunctionDef> = discover(&repo().join("functions"))
        .into_iter()
        .filter(FunctionDef::is_forwarded)
        .collect();
    let doc = castiel_integrations::drivers::http::openapi();
    let mut paths: Vec<String> = doc.paths.paths.keys().cloned().collect();
    paths.push("/api/v1/openapi.json".into());
    let standalone_only = ["/api/v1/shards"];
    for path in paths.iter().filter(|p| p.starts_with("/api/")) {
        if standalone_only.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        let concrete = path.replace('{', "x").replace('}', "");
        let hits: Vec<&str> = forwarded
            .iter()
            .filter(|f| {
                route_matches(
                    &format!("api/{}", f.trigger()["route"].as_str().expect("route")),
                    &concrete,
                )
            })
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{path} must be routed by exactly one HTTP function, got {hits:?}"
        );
    }
    // And no shipped HTTP function routes nothing (it would answer 404).
    for f in &forwarded {
        let serves = paths.iter().any(|path| {
            let concrete = path.replace('{', "x").replace('}', "");
            route_matches(
                &format!("api/{}", f.trigger()["route"].as_str().expect("route")),
                &concrete,
            )
        });
        assert!(serves, "functions/{} routes no path the API serves", f.name);
    }
    for (template, path, expected) in [
        ("api/v1/integrations/{*rest}", "/api/v1/integrations", true),
        (
            "api/v1/integrations/{*rest}",
            "/api/v1/integrations/a/b",
            true,
        ),
        ("api/v1/integrations/{*rest}", "/api/v1/webhooks", false),
        ("api/{probe:regex(^(health|ready)$)}", "/api/ready", true),
        ("api/{probe:regex(^(health|ready)$)}", "/api/other", false),
    ] {
        assert_eq!(
            route_matches(template, path),
            expected,
            "{template} vs {path}"
        );
    }
}

#[test]
fn host_json_configures_the_custom_handler() {
    let h = host_json();
    assert_eq!(h["version"], "2.0");
    let d = &h["customHandler"]["description"];
    assert_eq!(
        d["defaultExecutablePath"],
        env!("CARGO_PKG_NAME"),
        "the binary, at the package root (functions-protocol §2.3)"
    );
    assert_eq!(d["arguments"], serde_json::json!(["handler"]));
    assert_eq!(h["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(
        h["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(h["extensionBundle"]["version"], "[4.*, 5.0.0)");
    let sb = &h["extensions"]["serviceBus"];
    assert_eq!(
        sb["autoCompleteMessages"], true,
        "custom handlers cannot settle messages (functions-protocol §7.2)"
    );
    assert!(sb["maxConcurrentCalls"].as_u64().is_some());
    assert!(h["extensions"]["rabbitMQ"].is_object());
    assert!(h["logging"]["logLevel"]["default"].is_string());
    assert!(h["functionTimeout"].is_string());
}

#[test]
fn local_settings_are_for_development_and_hold_no_secrets() {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("local.settings.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(v["IsEncrypted"], false);
    let values = v["Values"].as_object().expect("Values");
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(values["AzureWebJobsStorage"], "UseDevelopmentStorage=true");
    let keys: Vec<&str> = castiel_integrations::config::KEYS
        .iter()
        .map(|(k, _)| *k)
        .collect();
    let mut pairs = Vec::new();
    for (k, val) in values {
        let s = val.as_str().expect("string values");
        for secretish in [
            "SharedAccessKey",
            "AccountKey=",
            "password",
            "@Microsoft.KeyVault",
        ] {
            assert!(!s.contains(secretish), "{k} holds a secret-like value");
        }
        assert!(!s.contains('@'), "{k}: no credentials in URLs");
        assert!(
            !k.contains("SECRET") || k == "SECRETS",
            "{k}: secrets stay out of local.settings.json"
        );
        if keys.contains(&k.as_str()) {
            pairs.push((k.as_str(), s));
        }
    }
    castiel_integrations::config::Config::from_pairs(&pairs)
        .expect("the development values are a valid configuration");
}
