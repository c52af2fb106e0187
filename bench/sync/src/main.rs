//! Inbound sync, records/s end to end, beside a baseline measured in the
//! same run against the same server:
//!
//! - `fetch + parse`: the pages a run reads (the same SOQL, pages of 2,000
//!   through `nextRecordsUrl`), fetched over HTTP and parsed as JSON, and
//!   nothing else: the least any sync of these records costs;
//! - `sync run`: a manual run of a Salesforce task on a fresh embedded
//!   store — adapter, mapping, links, the embedded shard store, checkpoints
//!   — through the service's own job dispatch (`run_due`).
//!
//! Rounds alternate (baseline first, then the service, order rotating);
//! each figure is the median of its rounds. Every round is verified before
//! it counts: the baseline must have parsed every record once, the run
//! must have ended `completed` with every record created and the store must
//! hold exactly one shard per record; anything missing reports no figure
//! and the program exits 1. Writes `bench/results/sync.json`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../../../tests/support/salesforce_server.rs"]
mod salesforce_server;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use castiel_integrations::app::{self, AppState};
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::{Ctx, TenantId};
use castiel_integrations::drivers::serve::workers::run_due;
use castiel_integrations::features::sync::model::{
    ConflictResolution, Direction, Execution, ExecutionStatus, Schedule, ScheduleType, SyncTask,
    TASK_KIND,
};
use castiel_integrations::features::sync::run::start::{self, Started};
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};
use castiel_integrations::platform::store::{Container, Query, Store};
use salesforce_server::{CLIENT_ID, CLIENT_SECRET, SalesforceServer};
use serde_json::{Map, Value, json};
use uuid::Uuid;

const FIELDS: &str = "Id, SystemModstamp, Name, Amount, StageName, CloseDate, Probability";

fn deal(i: usize) -> Map<String, Value> {
    let Value::Object(m) = json!({
        "Name": format!("Deal {i}"), "Amount": i * 100, "StageName": "Prospecting",
        "CloseDate": "2026-12-31", "Probability": 20,
    }) else {
        unreachable!("an object")
    };
    m
}

/// Fetches and parses every page of the changes query; returns the ids.
async fn baseline(sf: &SalesforceServer, token: &str) -> anyhow::Result<HashSet<String>> {
    let http = reqwest::Client::new();
    let soql = format!("SELECT {FIELDS} FROM Opportunity ORDER BY SystemModstamp, Id LIMIT 1000000");
    let mut url = url::Url::parse(&format!("{}/services/data/v60.0/query", sf.url))?;
    url.query_pairs_mut().append_pair("q", &soql);
    let mut ids = HashSet::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next.take() {
        let body = http.get(&u).bearer_auth(token).send().await?.error_for_status()?.bytes().await?;
        let page: Value = serde_json::from_slice(&body)?;
        for r in page["records"].as_array().into_iter().flatten() {
            ids.insert(r["Id"].as_str().unwrap_or_default().to_owned());
        }
        next = page["nextRecordsUrl"].as_str().map(|p| format!("{}{p}", sf.url));
    }
    Ok(ids)
}

/// A fresh app on an embedded store in its own directory.
async fn fresh_app(records: usize) -> anyhow::Result<(AppState, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_string_lossy().into_owned();
    let max = records.to_string();
    let config = Config::from_pairs(&[
        ("DATA_DIR", data.as_str()),
        ("JWT_SECRET", "bench-secret-bench-secret-bench-secret-01"),
        ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8"),
        ("SYNC_MIN_INTERVAL_MINUTES", "0"),
        ("SYNC_MAX_RECORDS", max.as_str()),
        ("RUST_LOG", "warn"),
    ])
    .map_err(|e| anyhow::anyhow!("config: {e:?}"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let db = SqliteDb::open_with(&config.database_path(), config.sqlite_synchronous)?;
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(db, clock.clone()));
    let state = app::wiring::build_with(config, store, clock).await?;
    Ok((state, dir))
}

/// One measured sync run: the seconds it took, after checking its work.
async fn sync_round(sf: &SalesforceServer, records: usize) -> anyhow::Result<f64> {
    let (state, _dir) = fresh_app(records).await?;
    let router = castiel_integrations::drivers::http::router(state.clone());
    let tenant = Uuid::new_v4();
    let token = state.tokens.mint(TenantId(tenant), Some("bench"), false, 3600);
    let post = |path: String, body: Value| {
        let router = router.clone();
        let token = token.clone();
        async move {
            use tower::ServiceExt as _;
            let req = axum::http::Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))?;
            let res = router.oneshot(req).await?;
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
            anyhow::ensure!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&bytes));
            Ok::<Value, anyhow::Error>(serde_json::from_slice(&bytes)?)
        }
    };
    let integration = post("/api/v1/integrations".into(), json!({
        "providerId": "salesforce", "name": "Bench org", "instanceUrl": sf.url,
        "syncConfig": {"entityMappings": [{"externalEntity": "Opportunity", "shardTypeId": "c_opportunity", "enabled": true,
            "fieldMappings": [
                {"externalField": "Name", "shardField": "name", "required": true},
                {"externalField": "Amount", "shardField": "amount"},
                {"externalField": "StageName", "shardField": "stage"},
                {"externalField": "CloseDate", "shardField": "closeDate"},
                {"externalField": "Probability", "shardField": "probability"}
            ]}]}
    })).await?;
    let id = integration["id"].as_str().unwrap_or_default().to_owned();
    post(format!("/api/v1/integrations/{id}/connections"), json!({
        "type": "oauth2_client_credentials", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
        "tokenUrl": sf.token_url()
    })).await?;
    let now = chrono::Utc::now();
    let task = SyncTask {
        id: Uuid::new_v4(), tenant_id: TenantId(tenant), kind: TASK_KIND.into(),
        integration_id: Uuid::parse_str(&id)?, name: "bench".into(), direction: Direction::Inbound,
        entity_types: vec!["Opportunity".into()],
        schedule: Schedule { kind: ScheduleType::Manual, interval_minutes: None, cron_expression: None, timezone: None },
        conflict_resolution: ConflictResolution::default(), max_records_per_sync: None, enabled: true,
        next_run_at: None, last_run_at: None, last_execution_id: None, last_status: None,
        cursors: Default::default(), created_at: now, updated_at: now, created_by: None, etag: String::new(),
    };
    let task = state.store.insert(&task).await?;
    let ctx = Ctx::system(TenantId(tenant), "bench");
    let started = Instant::now();
    let Started::Queued(exec) = start::request(&state.sync, &ctx, task.id, false).await? else {
        anyhow::bail!("the run was refused");
    };
    run_due(&state).await?;
    let secs = started.elapsed().as_secs_f64();
    let done: Execution = state
        .store
        .get(&tenant.to_string(), &exec.id.to_string())
        .await?
        .ok_or_else(|| anyhow::anyhow!("execution gone"))?;
    anyhow::ensure!(done.status == ExecutionStatus::Completed, "run ended {:?}: {:?}", done.status, done.errors);
    anyhow::ensure!(done.counters.created == records as u64, "created {} of {records}", done.counters.created);
    let shards = state.store.count(Container::Shards, &Query::partition(tenant.to_string())).await?;
    anyhow::ensure!(shards == records as u64, "{shards} shards for {records} records");
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let sf = SalesforceServer::start().await;
    let base = chrono::Utc::now() - chrono::Duration::hours(1);
    for b in 0..records.div_ceil(1000) {
        let n = 1000.min(records - b * 1000);
        sf.insert_at("Opportunity", n, base + chrono::Duration::seconds(b as i64), |i| deal(b * 1000 + i));
    }
    let token = "00Dbench!baseline-token";
    let (mut base_rates, mut sync_rates) = (Vec::new(), Vec::new());
    let mut failed = false;
    for round in 0..rounds {
        for step in 0..2 {
            let service_first = round % 2 == 1;
            if (step == 0) != service_first {
                let t = Instant::now();
                let ids = baseline(&sf, token).await?;
                let secs = t.elapsed().as_secs_f64();
                if ids.len() == records {
                    base_rates.push(records as f64 / secs);
                } else {
                    eprintln!("baseline round {round}: parsed {} of {records} records: no figure", ids.len());
                    failed = true;
                }
            } else {
                match sync_round(&sf, records).await {
                    Ok(secs) => sync_rates.push(records as f64 / secs),
                    Err(e) => {
                        eprintln!("sync round {round}: {e:#}: no figure");
                        failed = true;
                    }
                }
            }
        }
    }
    if failed || base_rates.is_empty() || sync_rates.is_empty() {
        eprintln!("some rounds did not verify; no figures");
        std::process::exit(1);
    }
    let (b, s) = (median(base_rates.clone()), median(sync_rates.clone()));
    println!("records per round: {records}, rounds: {rounds}");
    println!("| measure | records/s (median) | rounds |");
    println!("|---|---|---|");
    println!("| fetch + parse (baseline) | {b:.0} | {base_rates:.0?} |");
    println!("| sync run, embedded store | {s:.0} | {sync_rates:.0?} |");
    println!("| ratio sync ÷ baseline (target ≥ 0.3) | {:.2} | |", s / b);
    println!("| sync ≥ 20,000 records/s | {} | |", if s >= 20_000.0 { "yes" } else { "no" });
    let out = json!({
        "records": records, "rounds": rounds, "baselineRecordsPerSecond": b, "syncRecordsPerSecond": s,
        "ratio": s / b, "baselineRounds": base_rates, "syncRounds": sync_rates,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("sync.json"), serde_json::to_string_pretty(&out)?)?;
    Ok(())
}
