//! Trigger adapters and the poison policy, through the emulated host and
//! the library's handler serving a registry of test jobs (the production
//! jobs are wired by their own branches; the adapters and the dispatch are
//! the same code). The handler runs in the test process, so its app is
//! built on the store of `TEST_STORE` (the tests that start the real
//! `handler` binary, `binary.rs`, run on its embedded store).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castiel_integrations::app;
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::drivers::functions::registry::{PARK_BINDING, SERVICE_BUS_MAX_RECEIVES};
use castiel_integrations::drivers::functions::{
    JobError, JobOutcome, Received, Registry, TimerInput,
};
use castiel_integrations::platform::store::Container;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::host::{FunctionDef, Host, Outcome, QueueMessage, discover, rabbitmq_envelope, repo};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    id: String,
    #[serde(default)]
    fail_until: u32,
    #[serde(default)]
    permanent: bool,
}

#[derive(Default)]
struct Seen {
    timers: Mutex<Vec<TimerInput>>,
    deliveries: Mutex<Vec<(String, Received)>>,
}

fn write(dir: &std::path::Path, name: &str, bindings: &Value) {
    std::fs::create_dir_all(dir.join(name)).expect("mkdir");
    std::fs::write(
        dir.join(name).join("function.json"),
        json!({"bindings": bindings}).to_string(),
    )
    .expect("write");
}

/// Test functions, written as function.json files and discovered like the
/// real ones, plus the repository's HTTP functions.
fn functions(dir: &std::path::Path) -> Vec<FunctionDef> {
    write(
        dir,
        "test-timer",
        &json!([{"name":"timer","type":"timerTrigger","direction":"in","schedule":"0 */1 * * * *"}]),
    );
    for name in ["test-queue", "test-panic"] {
        write(
            dir,
            name,
            &json!([
                {"name":"msg","type":"serviceBusTrigger","direction":"in","queueName":name,"connection":"ServiceBusConnection"},
                {"name":PARK_BINDING,"type":"serviceBus","direction":"out","queueName":format!("{name}-parked"),"connection":"ServiceBusConnection"}
            ]),
        );
    }
    write(
        dir,
        "test-rabbit",
        &json!([
            {"name":"msg","type":"rabbitMQTrigger","direction":"in","queueName":"test-rabbit","connectionStringSetting":"RabbitMQConnection"},
            {"name":PARK_BINDING,"type":"rabbitMQ","direction":"out","queueName":"test-rabbit-parked","connectionStringSetting":"RabbitMQConnection"}
        ]),
    );
    let mut all = discover(dir);
    all.extend(
        discover(&repo().join("functions"))
            .into_iter()
            .filter(FunctionDef::is_forwarded),
    );
    all
}

async fn probe_job(seen: Arc<Seen>, p: Probe, d: Received) -> Result<JobOutcome, JobError> {
    seen.deliveries
        .lock()
        .expect("lock")
        .push((p.id.clone(), d.clone()));
    if p.permanent {
        return Err(JobError::reject(anyhow::anyhow!(
            "probe {} can never succeed",
            p.id
        )));
    }
    match d.receives {
        Some(n) if n >= p.fail_until => Ok(JobOutcome::done().log(format!("probe {} done", p.id))),
        None if p.fail_until == 0 => Ok(JobOutcome::done()),
        _ => Err(JobError::retry(anyhow::anyhow!(
            "probe {} failing transiently",
            p.id
        ))),
    }
}

fn registry(seen: &Arc<Seen>) -> Registry {
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    Registry::new()
        .timer("test-timer", move |app, t| {
            let seen = s1.clone();
            async move {
                // A round trip through the store of the app the host built
                // (the store of TEST_STORE).
                let tick = uuid::Uuid::new_v4().to_string();
                let probe =
                    json!({"id": "timer-probe", "tenantId": "functions-test", "tick": tick});
                app.store.upsert(Container::Integrations, probe).await?;
                let stored = app
                    .store
                    .read(Container::Integrations, "functions-test", "timer-probe")
                    .await?;
                if stored.is_none_or(|d| d.body["tick"] != tick.as_str()) {
                    return Err(JobError::reject(anyhow::anyhow!(
                        "the probe did not round-trip"
                    )));
                }
                seen.timers.lock().expect("lock").push(t);
                Ok::<_, JobError>(JobOutcome::done().log("timer ran"))
            }
        })
        .service_bus("test-queue", move |_app, p: Probe, d| {
            probe_job(s2.clone(), p, d)
        })
        .rabbitmq("test-rabbit", move |_app, p: Probe, d| {
            probe_job(s3.clone(), p, d)
        })
        .service_bus_message("test-panic", |_app, m| async move {
            assert!(m.body.is_empty(), "this job always panics");
            Ok::<_, JobError>(())
        })
}

const SECRET: &str = "functions-test-secret-0123456789abcdef";

fn build_app(
    dir: PathBuf,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<app::AppState>> + Send>>
+ Send
+ 'static {
    move || {
        let dir = dir.clone();
        Box::pin(async move {
            let data = dir.to_string_lossy().into_owned();
            let config = Config::from_pairs(&[("DATA_DIR", &data), ("JWT_SECRET", SECRET)])?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let store = crate::stores::test_store(&dir, clock.clone()).await;
            app::wiring::build_with(config, store, clock).await
        })
    }
}

struct Fixture {
    host: Host,
    seen: Arc<Seen>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn start() -> Fixture {
    let fdir = tempfile::tempdir().expect("functions");
    let data = tempfile::tempdir().expect("data");
    let seen = Arc::new(Seen::default());
    let host = Host::start_in_process(
        registry(&seen),
        functions(fdir.path()),
        build_app(data.path().to_owned()),
    )
    .await;
    Fixture {
        host,
        seen,
        _dirs: (fdir, data),
    }
}

fn probe(id: &str, fail_until: u32, permanent: bool) -> QueueMessage {
    QueueMessage::new(
        json!({"id": id, "failUntil": fail_until, "permanent": permanent}).to_string(),
    )
}

#[tokio::test]
async fn timer_invocations_run_the_job() {
    let f = start().await;
    let on_time = f.host.fire_timer("test-timer", false).await;
    let Outcome::Success { logs, .. } = on_time else {
        panic!("{on_time:?}")
    };
    assert_eq!(logs, ["timer ran"]);
    let late = f.host.fire_timer("test-timer", true).await;
    assert!(late.is_success());
    let timers = f.seen.timers.lock().expect("lock").clone();
    assert_eq!(timers.len(), 2);
    assert!(!timers[0].is_past_due && timers[0].next.is_some() && timers[0].fired_at.is_some());
    assert!(timers[1].is_past_due && timers[1].last.is_none());
}

#[tokio::test]
async fn service_bus_failures_are_redelivered_until_success() {
    let f = start().await;
    let msg = probe("p1", 3, false);
    let trace = f
        .host
        .service_bus("test-queue", &msg, SERVICE_BUS_MAX_RECEIVES)
        .await;
    assert_eq!(trace.deliveries, [(1, false), (2, false), (3, true)]);
    assert!(!trace.dead_lettered && trace.sent.is_empty());
    assert_eq!(trace.logs, ["probe p1 done"]);
    let seen = f.seen.deliveries.lock().expect("lock").clone();
    let first = &seen[0].1;
    assert_eq!(first.message_id.as_deref(), Some(msg.message_id.as_str()));
    assert!(first.enqueued_at.is_some());
}

fn parked(trace: &crate::host::QueueTrace, queue: &str) -> Value {
    assert_eq!(trace.sent.len(), 1, "{trace:?}");
    assert_eq!(trace.sent[0].0, queue);
    serde_json::from_str(&trace.sent[0].1).expect("parked record is JSON")
}

#[tokio::test]
async fn poison_messages_are_parked_on_the_last_delivery() {
    let f = start().await;
    let trace = f
        .host
        .service_bus(
            "test-queue",
            &probe("p2", 99, false),
            SERVICE_BUS_MAX_RECEIVES,
        )
        .await;
    let n = SERVICE_BUS_MAX_RECEIVES;
    assert_eq!(trace.deliveries.len(), n as usize);
    assert!(
        trace.deliveries[..(n as usize - 1)]
            .iter()
            .all(|(_, ok)| !ok)
    );
    assert_eq!(
        trace.deliveries.last(),
        Some(&(n, true)),
        "completed, not dead-lettered"
    );
    assert!(!trace.dead_lettered);
    let record = parked(&trace, "test-queue-parked");
    assert_eq!(record["reason"], "exhausted");
    assert_eq!(record["receives"], n);
    assert_eq!(record["body"]["id"], "p2");
    assert!(trace.logs[0].contains("parked"));
}

#[tokio::test]
async fn permanent_failures_and_undecodable_bodies_are_parked_at_once() {
    let f = start().await;
    let trace = f
        .host
        .service_bus(
            "test-queue",
            &probe("p3", 0, true),
            SERVICE_BUS_MAX_RECEIVES,
        )
        .await;
    assert_eq!(trace.deliveries, [(1, true)]);
    assert_eq!(parked(&trace, "test-queue-parked")["reason"], "rejected");
    for body in ["not json", "{\"id\": 7}", ""] {
        let trace = f
            .host
            .service_bus(
                "test-queue",
                &QueueMessage::new(body),
                SERVICE_BUS_MAX_RECEIVES,
            )
            .await;
        assert_eq!(trace.deliveries, [(1, true)], "{body:?}");
        let record = parked(&trace, "test-queue-parked");
        assert_eq!(record["reason"], "rejected");
        assert!(
            record["error"]
                .as_str()
                .is_some_and(|e| e.contains("decode")),
            "{record}"
        );
    }
}

#[tokio::test]
async fn a_body_that_shadows_delivery_count_is_never_parked_by_count() {
    let f = start().await;
    // The body's `deliveryCount` overwrites Metadata.DeliveryCount (`docs/functions-protocol.md` §5.5):
    // the handler must not trust it, so only the broker's own limit applies.
    let msg =
        QueueMessage::new(json!({"id": "p4", "failUntil": 99, "deliveryCount": 50}).to_string());
    let trace = f
        .host
        .service_bus("test-queue", &msg, SERVICE_BUS_MAX_RECEIVES)
        .await;
    assert!(trace.dead_lettered, "{trace:?}");
    assert!(trace.deliveries.iter().all(|(_, ok)| !ok));
    let seen = f.seen.deliveries.lock().expect("lock").clone();
    assert!(seen.iter().all(|(_, d)| d.receives.is_none()));
}

#[tokio::test]
async fn rabbitmq_invocations_decode_and_park_at_the_last_requeue() {
    let f = start().await;
    let def = f.host.function("test-rabbit").clone();
    let msg = probe("r1", 99, false);
    let first = f
        .host
        .invoke("test-rabbit", &rabbitmq_envelope(&def, &msg, None))
        .await;
    assert!(
        matches!(first, Outcome::Failed { status: 500 }),
        "{first:?}"
    );
    let last = f
        .host
        .invoke("test-rabbit", &rabbitmq_envelope(&def, &msg, Some(5)))
        .await;
    let Outcome::Success { outputs, .. } = last else {
        panic!("{last:?}")
    };
    assert_eq!(outputs[PARK_BINDING]["reason"], "exhausted");
    let seen = f.seen.deliveries.lock().expect("lock").clone();
    assert_eq!(
        seen.iter().map(|(_, d)| d.receives).collect::<Vec<_>>(),
        [Some(1), Some(6)]
    );
    let ok = f
        .host
        .invoke(
            "test-rabbit",
            &rabbitmq_envelope(&def, &probe("r2", 2, false), Some(1)),
        )
        .await;
    assert!(ok.is_success());
}

#[tokio::test]
async fn malformed_invocations_fail_cleanly() {
    let f = start().await;
    let bodies: [&[u8]; 8] = [
        b"",
        b"  ",
        b"{\"Data\":",
        b"[]",
        b"\"text\"",
        b"{}",
        b"{\"Data\":{}}",
        b"\xff\xfe\x00",
    ];
    for name in ["test-timer", "test-queue", "test-rabbit"] {
        for body in bodies {
            let ans = f.host.invoke_raw(name, body).await;
            assert_eq!(
                ans.status,
                400,
                "{name} {body:?}: {}",
                String::from_utf8_lossy(&ans.body)
            );
            assert_eq!(ans.header("content-type"), Some("application/problem+json"));
            assert!(ans.json()["detail"].is_string());
        }
    }
    assert!(
        f.host.fire_timer("test-timer", false).await.is_success(),
        "still serving"
    );
}

#[tokio::test]
async fn a_panicking_job_fails_the_invocation_and_the_handler_survives() {
    let f = start().await;
    let trace = f
        .host
        .service_bus("test-panic", &QueueMessage::new("{\"a\":1}"), 2)
        .await;
    assert_eq!(trace.deliveries, [(1, false), (2, false)]);
    assert!(trace.dead_lettered);
    assert!(
        f.host.fire_timer("test-timer", false).await.is_success(),
        "still serving"
    );
}

#[tokio::test]
async fn concurrent_deliveries() {
    let f = start().await;
    let runs = (0..16).map(|i| {
        let host = &f.host;
        async move {
            host.service_bus(
                "test-queue",
                &probe(&format!("c{i}"), 1, false),
                SERVICE_BUS_MAX_RECEIVES,
            )
            .await
        }
    });
    for trace in futures::future::join_all(runs).await {
        assert_eq!(trace.deliveries, [(1, true)]);
    }
}

#[tokio::test]
async fn before_the_app_is_built_http_gets_503_and_invocations_wait() {
    let fdir = tempfile::tempdir().expect("functions");
    let data = tempfile::tempdir().expect("data");
    let gate = Arc::new(tokio::sync::Notify::new());
    let attempts = Arc::new(AtomicU32::new(0));
    let mut inner = build_app(data.path().to_owned());
    let (g, a) = (gate.clone(), attempts.clone());
    let build = move || {
        let next = inner();
        let (g, a) = (g.clone(), a.clone());
        async move {
            // The first attempt fails (a store that is not up yet); the second waits for the gate.
            if a.fetch_add(1, Ordering::SeqCst) == 0 {
                anyhow::bail!("store not reachable yet");
            }
            g.notified().await;
            next.await
        }
    };
    let seen = Arc::new(Seen::default());
    let host = Host::start_in_process(registry(&seen), functions(fdir.path()), build).await;

    let early = host.http("GET", "/api/health", &[], None).await;
    assert_eq!(early.status, 503);
    assert_eq!(early.content_type(), "application/problem+json");
    assert_eq!(
        early
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    let waiting = tokio::spawn({
        let env = crate::host::timer_envelope(host.function("test-timer"), false, true);
        let port = host.port;
        async move {
            crate::host::raw_chunked(
                port,
                "POST",
                "/test-timer",
                &[(
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into(),
                )],
                env.to_string().as_bytes(),
                1,
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "the invocation waits for the App");
    while attempts.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gate.notify_one();
    let ans = waiting.await.expect("join");
    assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
    let later = host.http("GET", "/api/health", &[], None).await;
    assert_eq!(later.status, 200);
}
