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
//! The exchange has a durable queue bound (the broker persists every message
//! before confirming it, as it does for Castiel's consumers). A round's
//! clock stops only once its events are all with the broker: `emit` returns
//! nothing and leaves an event it could not publish to the outbox, so after
//! the callers return, the relay runs until the outbox is empty (its time
//! counts). Then, off the clock, the round is verified (`verify.rs`): the
//! bound queue is consumed and its distinct message ids (the event ids)
//! counted, and the outbox must be empty. A round that misses anything is
//! reported with what it missed, gives no figure, and the run exits 1.
//! (The set-up with no queue bound, the broker's fastest path, is gone: its
//! events cannot be counted anywhere.)
//!
//! Prints a table with ratios to the bare loop and writes JSON next to the
//! other scenarios' results (`bench/results/events.json`).

/// The service binary's allocator (src/main.rs), so that what is measured
/// here runs as it does there; the baseline in this process uses it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod verify;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
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
use verify::Outbox;

fn url() -> String {
    std::env::var("RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// What a mode's callers did: events raised, and their ids when known.
struct Raised {
    count: usize,
    ids: Option<HashSet<String>>,
}

async fn bare(exchange: &str, n: usize, c: usize, body: Vec<u8>) -> anyhow::Result<Raised> {
    let conn = Connection::connect(&url(), ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = Arc::new(body);
    let ids = Arc::new(Mutex::new(HashSet::with_capacity(n)));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (ch, body, exchange, ids) =
            (ch.clone(), body.clone(), exchange.to_owned(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / c {
                let id = Uuid::new_v4().to_string();
                let props = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_message_id(id.as_str().into())
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
                ids.lock().expect("ids").insert(id);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    conn.close(200, "bye".into()).await?;
    let ids = std::mem::take(&mut *ids.lock().expect("ids"));
    Ok(Raised {
        count: n / c * c,
        ids: Some(ids),
    })
}

async fn app(exchange: &str, dir: &std::path::Path) -> anyhow::Result<(AppState, Outbox)> {
    let data_dir = dir.to_string_lossy().into_owned();
    let u = url();
    let config = Config::from_pairs(&[
        ("DATA_DIR", &data_dir),
        ("JWT_SECRET", "bench-secret-bench-secret-bench-secret-01"),
        ("RABBITMQ_URL", &u),
        ("RABBITMQ_EXCHANGE", exchange),
    ])?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let db = SqliteDb::open(&dir.join("bench.db"))?;
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(db.clone(), clock.clone()));
    let state = app::wiring::build_with(config, store.clone(), clock).await?;
    for _ in 0..500 {
        if state.events.bus().health().await.is_ok() {
            return Ok((state, Outbox { db, store }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the service did not connect to RabbitMQ")
}

async fn run_api(state: &AppState, n: usize, c: usize, create: bool) -> anyhow::Result<Raised> {
    let ids = Arc::new(Mutex::new(HashSet::with_capacity(n)));
    let mut tasks = Vec::new();
    for t in 0..c {
        let (state, ids) = (state.clone(), ids.clone());
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
                    ids.lock().expect("ids").insert(ev.id.to_string());
                    state.events.emit(vec![ev]).await;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    // `create` does not hand back its event's id: those are counted.
    let ids = std::mem::take(&mut *ids.lock().expect("ids"));
    Ok(Raised {
        count: n / c * c,
        ids: (!create).then_some(ids),
    })
}

/// The median of some rates (0 when there are none).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The lowest and highest of some figures.
fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

/// How long the relay may take to empty the outbox after a round.
const RELAY_DEADLINE: Duration = Duration::from_secs(30);
/// How long the verifier waits for one more message on the queue.
const QUIET: Duration = Duration::from_secs(5);

/// One mode's rounds: the verified rates and what failed.
#[derive(Default)]
struct Mode {
    rates: Vec<f64>,
    relayed: usize,
    duplicates: usize,
    failures: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
async fn round(
    ch: &lapin::Channel,
    queue: &str,
    exchange: &str,
    state: &AppState,
    outbox: &Outbox,
    mode: &str,
    n: usize,
    c: usize,
    body: &[u8],
    out: &mut Mode,
) -> anyhow::Result<()> {
    ch.queue_purge(queue.into(), QueuePurgeOptions::default())
        .await?;
    let started = Instant::now();
    let raised = match mode {
        "bare" => bare(exchange, n, c, body.to_vec()).await?,
        "emit" => run_api(state, n, c, false).await?,
        _ => run_api(state, n, c, true).await?,
    };
    // The clock runs until the outbox is empty: an event left there is
    // not yet with the broker.
    let (left, relayed) = if mode == "bare" {
        (0, 0)
    } else {
        verify::drain_outbox(state, &outbox.db, outbox.store.as_ref(), RELAY_DEADLINE).await?
    };
    let rate = raised.count as f64 / started.elapsed().as_secs_f64();
    let counted = verify::consume(&url(), queue, raised.count, QUIET).await?;
    out.relayed += relayed;
    out.duplicates += counted.messages.saturating_sub(counted.ids.len());
    match verify::verdict(mode, raised.count, raised.ids.as_ref(), &counted, left) {
        None => out.rates.push(rate),
        Some(problem) => {
            eprintln!("FAILED round: {problem}");
            out.failures.push(problem);
        }
    }
    Ok(())
}

/// Measures the modes against a fresh exchange with a durable queue bound
/// to every event type (as Castiel's consumers' queues are).
async fn measure(
    ch: &lapin::Channel,
    n: usize,
    c: usize,
    only: Option<&str>,
    rounds: usize,
) -> anyhow::Result<Vec<(&'static str, Mode)>> {
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
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    // BENCH_BIND narrows the binding, to see the check fail (e.g.
    // `integration.created`: the emit mode's events then reach no queue).
    let binding = std::env::var("BENCH_BIND").unwrap_or_else(|_| "#".into());
    ch.queue_bind(
        queue.as_str().into(),
        exchange.as_str().into(),
        binding.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let (state, outbox) = app(&exchange, dir.path()).await?;
    // An envelope of the size the service publishes.
    let sample = state.events.envelope(
        &Ctx::system(TenantId(Uuid::new_v4()), Uuid::new_v4().to_string()),
        "integration.created",
        json!({"integrationId": Uuid::new_v4(), "providerId": "salesforce", "name": "b0-0", "status": "pending"}),
    );
    let body = serde_json::to_vec(&sample)?;
    // Warm-up (verified too, its figures dropped).
    let mut warm = Mode::default();
    for mode in ["bare", "api"] {
        round(
            ch, &queue, &exchange, &state, &outbox, mode, 1000, c, &body, &mut warm,
        )
        .await?;
    }
    // Rounds of the modes, interleaved, each on a purged queue, and the
    // median of each: on a shared machine a slow spell hits every mode.
    let mut modes: Vec<(&'static str, Mode)> = ["bare", "emit", "api"]
        .into_iter()
        .filter(|m| only.is_none_or(|o| o == *m))
        .map(|m| (m, Mode::default()))
        .collect();
    for _ in 0..rounds {
        for (mode, out) in &mut modes {
            round(
                ch, &queue, &exchange, &state, &outbox, mode, n, c, &body, out,
            )
            .await?;
        }
    }
    if let Some((_, first)) = modes.first_mut() {
        first.failures.extend(warm.failures);
    }
    drop(state);
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    ch.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await?;
    Ok(modes)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `[events] [concurrency] [mode]`; a mode (`bare`, `emit`, `api`) runs
    // only that one, for profiling. BENCH_ROUNDS (default 3) sets the rounds.
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let c: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let only = args.get(3).map(String::as_str);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let conn = Connection::connect(&url(), ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    println!(
        "events scenario: {n} events, {c} concurrent, publisher confirms, durable queue bound; \
         {rounds} rounds, each verified (every event id on the queue, outbox empty)"
    );
    let modes = measure(&ch, n, c, only, rounds).await?;
    conn.close(200, "bye".into()).await?;
    let failures: Vec<&String> = modes.iter().flat_map(|(_, m)| &m.failures).collect();
    if !failures.is_empty() {
        eprintln!(
            "INVALID: {} round(s) did not verify; no figures:",
            failures.len()
        );
        for f in failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
    let bare = modes
        .iter()
        .find(|(m, _)| *m == "bare")
        .map_or(0.0, |(_, m)| median(m.rates.clone()));
    println!(
        "{:<12} {:>10} {:>8} {:>22} {:>9} {:>6}",
        "mode", "events/s", "ratio", "rounds' events/s", "relayed", "dups"
    );
    let mut result = serde_json::Map::new();
    for (mode, m) in &modes {
        let rate = median(m.rates.clone());
        let (lo, hi) = range(&m.rates);
        println!(
            "{mode:<12} {rate:>10.0} {:>8.2} {:>22} {:>9} {:>6}",
            rate / bare,
            format!("{lo:.0}–{hi:.0}"),
            m.relayed,
            m.duplicates
        );
        result.insert(
            (*mode).into(),
            json!({"perSec": rate, "ratio": rate / bare, "rounds": m.rates,
                   "relayed": m.relayed, "duplicates": m.duplicates}),
        );
    }
    println!("verified: every round's events on the bound queue (distinct ids), outbox empty");
    let result = json!({"scenario": "events", "events": n, "concurrency": c, "rounds": rounds,
                        "verified": true, "modes": result});
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    if std::fs::create_dir_all(&out).is_ok() {
        std::fs::write(
            out.join("events.json"),
            serde_json::to_string_pretty(&result)?,
        )?;
    }
    Ok(())
}
