//! The measured runs: bare signed POSTs, deliveries by the service at full
//! speed, and deliveries at a fixed rate (latency). Each one is checked at
//! the receiver (a separate process) before its figures count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use castiel_integrations::app;
use castiel_integrations::app::AppState;
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::{Ctx, TenantId};
use castiel_integrations::drivers::serve::workers;
use castiel_integrations::features::webhooks::service::{self, NewWebhook};
use castiel_integrations::platform::outbound::USER_AGENT;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::receiver::{Receiver, wall_ns};

/// The type of every event raised.
const EVENT_TYPE: &str = "integration.updated";

/// How long a run may take to have everything delivered (`--limit`,
/// seconds; default 300).
fn limit() -> Duration {
    Duration::from_secs(crate::arg("--limit", 300))
}

/// The data of event `seq`.
fn event_data(seq: u64) -> Value {
    json!({"integrationId": uuid::Uuid::new_v4(), "seq": seq, "name": "bench", "status": "connected"})
}

/// CPU seconds (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (Linux; USER_HZ is 100 on every Linux ABI we run on).
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// One run's figures, and what was missing (`None`: everything arrived).
pub struct Outcome {
    /// Deliveries (or POSTs) per second, until the last one arrived.
    pub rate: f64,
    /// This process's CPU per delivery (µs): the service, or the bare loop.
    pub cpu_us: f64,
    /// The receiver's CPU per delivery (µs), for the record.
    pub receiver_cpu_us: f64,
    /// Events raised per second (deliveries only).
    pub raised_rate: f64,
    /// Requests beyond one per delivery (retries).
    pub retries: u64,
    /// What did not arrive.
    pub missing: Option<String>,
}

/// Checks that the receiver has `n` distinct deliveries, one per event
/// `0..n`, all with an id.
async fn check(receiver: &Receiver, what: &str, n: u64) -> (u64, Option<String>) {
    let stats = receiver.wait_for(n, limit()).await;
    let seen = receiver.seen().await;
    let absent: Vec<u64> = (0..n).filter(|s| !seen.contains_key(s)).collect();
    let mut problems = Vec::new();
    if stats.distinct != n {
        problems.push(format!("{} distinct webhook-ids of {n}", stats.distinct));
    }
    if !absent.is_empty() {
        problems.push(format!(
            "{} events never arrived (first: {:?})",
            absent.len(),
            &absent[..absent.len().min(5)]
        ));
    }
    if stats.without_id > 0 {
        problems.push(format!("{} requests without webhook-id", stats.without_id));
    }
    let retries = stats.requests.saturating_sub(stats.distinct);
    (
        retries,
        (!problems.is_empty()).then(|| format!("{what}: {}", problems.join("; "))),
    )
}

/// A bare `reqwest` loop of `events` signed POSTs, `senders` at once.
pub async fn bare_posts(events: u64, senders: u32, receiver: &Receiver) -> Outcome {
    receiver.reset().await;
    let url = receiver.url();
    let client = reqwest::Client::new();
    let key = [7u8; 32];
    let next = Arc::new(AtomicUsize::new(0));
    let (cpu_at, rcpu_at) = (cpu_seconds(None), cpu_seconds(Some(receiver.pid())));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as u64;
                if n >= events {
                    break;
                }
                // The request a delivery sends: the same body (`{type,
                // timestamp, data}` of the same event data), the same
                // headers, and the answer read to its end.
                let id = uuid::Uuid::new_v4().to_string();
                let now = chrono::Utc::now();
                let ts = now.timestamp();
                let body = json!({
                    "type": EVENT_TYPE,
                    "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "data": event_data(n),
                })
                .to_string();
                let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
                mac.update(format!("{id}.{ts}.{body}").as_bytes());
                let sig =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("user-agent", USER_AGENT)
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", format!("v1,{sig}"))
                    .body(body)
                    .send()
                    .await;
                if let Ok(res) = sent {
                    let _ = res.bytes().await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    let cpu_us = (cpu_seconds(None) - cpu_at) * 1e6 / events as f64;
    let receiver_cpu_us = (cpu_seconds(Some(receiver.pid())) - rcpu_at) * 1e6 / events as f64;
    let (retries, missing) = check(receiver, "bare POSTs", events).await;
    Outcome {
        rate,
        cpu_us,
        receiver_cpu_us,
        raised_rate: f64::NAN,
        retries,
        missing,
    }
}

/// A fresh service on `dir` with `workers` workers, its store committing
/// with `synchronous` (`normal` or `full`), one webhook for every
/// `integration.*` event to the receiver, and its worker pool running.
async fn service(
    dir: &std::path::Path,
    workers_n: u32,
    synchronous: &str,
    receiver: &Receiver,
) -> (AppState, Ctx, workers::Workers) {
    let data_dir = dir.to_string_lossy().into_owned();
    let w = workers_n.to_string();
    let config = Config::from_pairs(&[
        ("DATA_DIR", &data_dir),
        ("JWT_SECRET", "bench-secret-bench-secret-bench-secret-00"),
        ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.1/32"),
        ("WORKERS", &w),
        ("SQLITE_SYNCHRONOUS", synchronous),
    ])
    .expect("config");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = app::wiring::open_store(&config, clock.clone())
        .await
        .expect("store");
    let app = app::wiring::build_with(config, store, clock)
        .await
        .expect("app");
    let ctx = Ctx::system(TenantId(uuid::Uuid::new_v4()), "bench");
    let input: NewWebhook =
        serde_json::from_value(json!({"url": receiver.url(), "events": ["integration.*"]}))
            .expect("input");
    service::create(&app.webhooks, &ctx, input)
        .await
        .expect("webhook");
    let pool = workers::start(&app).expect("embedded queue");
    (app, ctx, pool)
}

async fn raise(app: &AppState, ctx: &Ctx, seq: u64) {
    let e = app.events.envelope(ctx, EVENT_TYPE, event_data(seq));
    app.events.emit(vec![e]).await;
}

/// `events` raised by `raisers` callers at once into a fresh service, fanned
/// out to one webhook and delivered by its worker pool.
pub async fn deliveries(
    events: u64,
    workers_n: u32,
    raisers: u64,
    synchronous: &str,
    receiver: &Receiver,
) -> Outcome {
    receiver.reset().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, ctx, pool) = service(dir.path(), workers_n, synchronous, receiver).await;
    let (cpu_at, rcpu_at) = (cpu_seconds(None), cpu_seconds(Some(receiver.pid())));
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..raisers {
        let (app, ctx, next) = (app.clone(), ctx.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as u64;
                if n >= events {
                    break;
                }
                raise(&app, &ctx, n).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let raised_s = started.elapsed().as_secs_f64();
    receiver.wait_for(events, limit()).await;
    let delivered_s = started.elapsed().as_secs_f64();
    let cpu_us = (cpu_seconds(None) - cpu_at) * 1e6 / events as f64;
    let receiver_cpu_us = (cpu_seconds(Some(receiver.pid())) - rcpu_at) * 1e6 / events as f64;
    let (retries, missing) = check(receiver, &format!("deliveries ({synchronous})"), events).await;
    pool.stop().await;
    Outcome {
        rate: events as f64 / delivered_s,
        cpu_us,
        receiver_cpu_us,
        raised_rate: events as f64 / raised_s,
        retries,
        missing,
    }
}

/// Latency at a fixed rate: (offered rate, sorted ms from raising each event
/// to its first attempt at the receiver, what was missing).
pub async fn paced(
    rate: u64,
    seconds: u64,
    workers_n: u32,
    synchronous: &str,
    receiver: &Receiver,
) -> (f64, Vec<f64>, Option<String>) {
    receiver.reset().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, ctx, pool) = service(dir.path(), workers_n, synchronous, receiver).await;
    let total = rate * seconds;
    let raised_at: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut handles = Vec::new();
    let paced_start = Instant::now();
    for n in 0..total {
        tick.tick().await;
        let (app, ctx, raised_at) = (app.clone(), ctx.clone(), raised_at.clone());
        handles.push(tokio::spawn(async move {
            raised_at.lock().expect("lock").insert(n, wall_ns());
            raise(&app, &ctx, n).await;
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let offered = total as f64 / paced_start.elapsed().as_secs_f64();
    let (_, missing) = check(receiver, &format!("paced ({synchronous})"), total).await;
    pool.stop().await;
    let first = receiver.seen().await;
    let raised = raised_at.lock().expect("lock").clone();
    let mut lat: Vec<f64> = raised
        .iter()
        .filter_map(|(n, t0)| first.get(n).map(|t1| t1.saturating_sub(*t0) as f64 / 1e6))
        .collect();
    lat.sort_by(f64::total_cmp);
    (offered, lat, missing)
}
