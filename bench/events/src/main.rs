//! Events/s published with publisher confirms, measured three ways in one run
//! against the same broker and exchange:
//!
//! - `bare lapin`: C tasks on one confirm channel, each publishing an
//!   envelope-sized message and awaiting its confirm (the shape of the API
//!   path: one event per request, confirmed before the answer);
//! - `emit`: C tasks calling `app.events.emit(vec![event])` (outbox record,
//!   publish with confirm, outbox delete);
//! - `api create`: C tasks calling the integrations service's `create`
//!   (validation, catalog read, outbox intent, insert, publish with confirm,
//!   outbox delete) — the API path minus HTTP.
//!
//! Each is measured against two broker set-ups: an exchange with a durable
//! queue bound (the broker persists every message before confirming it, as
//! it does for Castiel's consumers) and an exchange with no queue (the
//! broker discards the messages and confirms at once, its fastest path).
//!
//! Prints a table with ratios to the bare loop of the same set-up and writes
//! JSON next to the other scenarios' results (`bench/results/events.json`).

/// The service binary's allocator (src/main.rs), so that what is measured
/// here runs as it does there; the baseline in this process uses it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use castiel_integrations::app;
use castiel_integrations::app::AppState;
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::{Ctx, TenantId};
use castiel_integrations::features::integrations::service::{self as integrations, NewIntegration};
use castiel_integrations::platform::store::Store;
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use serde_json::json;
use uuid::Uuid;

fn url() -> String {
    std::env::var("RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn bare(exchange: &str, n: usize, c: usize, body: Vec<u8>) -> anyhow::Result<f64> {
    let conn = Connection::connect(&url(), ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = Arc::new(body);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (ch, body, exchange) = (ch.clone(), body.clone(), exchange.to_owned());
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / c {
                let props = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_message_id(Uuid::new_v4().to_string().into())
                    .with_type("integration.created".into());
                let ok = ch
                    .basic_publish(
                        exchange.as_str().into(),
                        "integration.created".into(),
                        BasicPublishOptions::default(),
                        &body,
                        props,
                    )
                    .await?
                    .await?
                    .is_ack();
                anyhow::ensure!(ok, "nack");
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = (n / c * c) as f64 / start.elapsed().as_secs_f64();
    conn.close(200, "bye".into()).await?;
    Ok(rate)
}

async fn app(exchange: &str, dir: &std::path::Path) -> anyhow::Result<AppState> {
    let data_dir = dir.to_string_lossy().into_owned();
    let u = url();
    let config = Config::from_pairs(&[
        ("DATA_DIR", &data_dir),
        ("JWT_SECRET", "bench-secret-bench-secret-bench-secret-01"),
        ("RABBITMQ_URL", &u),
        ("RABBITMQ_EXCHANGE", exchange),
    ])?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(
        SqliteDb::open(&dir.join("bench.db"))?,
        clock.clone(),
    ));
    let state = app::wiring::build_with(config, store, clock).await?;
    for _ in 0..500 {
        if state.events.bus().health().await.is_ok() {
            return Ok(state);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the service did not connect to RabbitMQ")
}

async fn run_api(state: &AppState, n: usize, c: usize, create: bool) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..c {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = Ctx::system(TenantId(Uuid::new_v4()), Uuid::new_v4().to_string());
            for i in 0..n / c {
                if create {
                    let input: NewIntegration = serde_json::from_value(
                        json!({"providerId": "salesforce", "name": format!("b{t}-{i}")}),
                    )?;
                    integrations::create(&state.integrations, &ctx, input)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                } else {
                    let ev = state.events.envelope(
                        &ctx,
                        "integration.updated",
                        json!({"integrationId": Uuid::new_v4(), "providerId": "salesforce", "name": "x", "status": "active"}),
                    );
                    state.events.emit(vec![ev]).await;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((n / c * c) as f64 / start.elapsed().as_secs_f64())
}

/// One broker set-up's three rates (events/s).
struct Rates {
    bare: f64,
    emit: f64,
    api: f64,
}

/// The median of some rates (0 when there are none).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Measures the three modes against a fresh exchange; with `bound`, a
/// durable queue takes every event type (as Castiel's consumers' queues do),
/// so the broker persists each message before confirming it. Without, the
/// broker discards the messages and confirms at once: its fastest path.
async fn measure(
    ch: &lapin::Channel,
    n: usize,
    c: usize,
    bound: bool,
    only: Option<&str>,
    rounds: usize,
) -> anyhow::Result<Rates> {
    let exchange = format!("bench_events_{}", Uuid::new_v4().simple());
    let queue = format!("{exchange}_q");
    ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    if bound {
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    let dir = tempfile::tempdir()?;
    let state = app(&exchange, dir.path()).await?;
    // An envelope of the size the service publishes.
    let sample = state.events.envelope(
        &Ctx::system(TenantId(Uuid::new_v4()), Uuid::new_v4().to_string()),
        "integration.created",
        json!({"integrationId": Uuid::new_v4(), "providerId": "salesforce", "name": "b0-0", "status": "pending"}),
    );
    let body = serde_json::to_vec(&sample)?;
    let runs = |mode: &str| only.is_none_or(|o| o == mode);
    // Every mode starts on an empty queue: a broker slows as its queue
    // grows, which would favour whichever mode runs first.
    let purge = || async {
        if bound {
            ch.queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    // Warm-up, then each mode (the ones not picked report 0).
    bare(&exchange, 1000, c, body.clone()).await?;
    run_api(&state, 500, c, true).await?;
    // Rounds of the three modes, interleaved, and the median of each: the
    // machine is shared, and a slow spell then hits every mode alike.
    let (mut b, mut e, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        if runs("bare") {
            purge().await?;
            b.push(bare(&exchange, n, c, body.clone()).await?);
        }
        if runs("emit") {
            purge().await?;
            e.push(run_api(&state, n, c, false).await?);
        }
        if runs("api") {
            purge().await?;
            a.push(run_api(&state, n, c, true).await?);
        }
    }
    let rates = Rates {
        bare: median(b),
        emit: median(e),
        api: median(a),
    };
    drop(state);
    if bound {
        ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    ch.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await?;
    Ok(rates)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `[events] [concurrency] [mode]`; a mode (`bare`, `emit`, `api`) runs
    // only that one, for profiling. BENCH_SETUP=discard|queue runs one
    // set-up; BENCH_ROUNDS (default 3) sets the rounds per set-up.
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let c: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let only = args.get(3).map(String::as_str);
    let setup = std::env::var("BENCH_SETUP").ok();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let conn = Connection::connect(&url(), ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    println!(
        "events scenario: {n} events, {c} concurrent, publisher confirms, 1 broker (same run)"
    );
    println!("{:<34} {:>12} {:>8}", "set-up / mode", "events/s", "ratio");
    let mut result = serde_json::Map::new();
    for (name, bound) in [("queue", true), ("discard", false)] {
        if setup.as_deref().is_some_and(|s| s != name) {
            continue;
        }
        let r = measure(&ch, n, c, bound, only, rounds).await?;
        let label = if bound {
            "durable queue bound (persisted)"
        } else {
            "no queue bound (discarded)"
        };
        for (mode, rate) in [
            ("bare lapin", r.bare),
            ("emit", r.emit),
            ("api create", r.api),
        ] {
            println!(
                "{:<34} {:>12.0} {:>8.2}",
                format!("{label}: {mode}"),
                rate,
                rate / r.bare
            );
        }
        result.insert(
            name.into(),
            json!({
                "bareLapinPerSec": r.bare, "emitPerSec": r.emit, "apiCreatePerSec": r.api,
                "emitRatio": r.emit / r.bare, "apiCreateRatio": r.api / r.bare,
            }),
        );
    }
    let result = json!({"scenario": "events", "events": n, "concurrency": c, "rounds": rounds, "setups": result});
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    if std::fs::create_dir_all(&out).is_ok() {
        std::fs::write(
            out.join("events.json"),
            serde_json::to_string_pretty(&result)?,
        )?;
    }
    conn.close(200, "bye".into()).await?;
    Ok(())
}
