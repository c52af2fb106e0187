//! A run survives its process (SPEC §12): `serve` dies mid-run, restarts on
//! the same data, and the run resumes from its last checkpoint; every
//! record ends up in exactly one shard and the tenant's slot is freed.
//!
//! How it dies depends on `TEST_STORE`: embedded, the real binary killed
//! with SIGKILL; cosmos (the emulator lives in the test process), `serve`
//! in-process with its runtime dropped at once (`tests/support/process.rs`).

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::JWT_SECRET;
use crate::process::Served;
use crate::salesforce_server::{CLIENT_ID, CLIENT_SECRET, SalesforceServer};
use crate::stores::{Backend, Place};
use crate::{deal, token_for};

/// One `serve`, either way.
pub(crate) enum Serve {
    Binary(Child, u16),
    InProcess(Served),
}

fn settings() -> Vec<(&'static str, String)> {
    vec![
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8".to_owned()),
        ("SYNC_MIN_INTERVAL_MINUTES", "0".to_owned()),
        ("SYNC_MAX_RECORDS", "20000".to_owned()),
        ("SYNC_LEASE_SECONDS", "3".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
}

impl Serve {
    pub(crate) async fn start(dir: &std::path::Path, place: &Place) -> Self {
        match crate::stores::backend() {
            Backend::Embedded => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .expect("bind")
                    .local_addr()
                    .expect("addr")
                    .port();
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_castiel-integrations"));
                cmd.arg("serve")
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("PORT", port.to_string())
                    .env("DATA_DIR", dir);
                for (k, v) in settings() {
                    cmd.env(k, v);
                }
                let log =
                    std::fs::File::create(dir.join(format!("serve-{port}.log"))).expect("log");
                let child = cmd
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("spawn serve");
                Serve::Binary(child, port)
            }
            Backend::Cosmos => {
                let s = settings();
                let pairs: Vec<(&str, &str)> = s.iter().map(|(k, v)| (*k, v.as_str())).collect();
                Serve::InProcess(Served::start(place, dir, &pairs).await)
            }
        }
    }

    pub(crate) fn base(&self) -> String {
        match self {
            Serve::Binary(_, port) => format!("http://127.0.0.1:{port}"),
            Serve::InProcess(s) => s.base(),
        }
    }

    pub(crate) async fn kill(self) {
        match self {
            Serve::Binary(mut child, _) => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
            }
            Serve::InProcess(s) => s.crash().await,
        }
    }
}

pub(crate) async fn ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not become ready");
}

pub(crate) async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The task's newest execution.
async fn newest(http: &reqwest::Client, base: &str, token: &str, task: &str) -> Value {
    let (s, body) = call(
        http,
        reqwest::Method::GET,
        format!("{base}/api/v1/sync-tasks/{task}/executions?limit=1"),
        token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["items"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_resumes_from_its_checkpoint() {
    // Several pages, so the kill lands between checkpoints.
    let records = 10_000 / crate::scale();
    let per_page = (records / 4).min(2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let place = Place::new(dir.path());
    let sf = SalesforceServer::start().await;
    let base_time = Utc::now() - chrono::Duration::hours(1);
    for batch in 0..10 {
        sf.insert_at(
            "Opportunity",
            records / 10,
            base_time + chrono::Duration::seconds(batch),
            |i| deal(batch as usize * records / 10 + i),
        );
    }
    sf.set_batch_size(per_page);
    sf.set_latency(Duration::from_millis(400));
    let http = reqwest::Client::new();
    let tenant = Uuid::new_v4();
    let token = token_for(tenant);

    let first = Serve::start(dir.path(), &place).await;
    let base = first.base();
    ready(&http, &base).await;
    let (s, integration) = call(&http, reqwest::Method::POST, format!("{base}/api/v1/integrations"), &token, Some(json!({
        "providerId": "salesforce", "name": "Acme org", "instanceUrl": sf.url,
        "syncConfig": {"entityMappings": [{"externalEntity": "Opportunity", "shardTypeId": "c_opportunity", "enabled": true,
            "fieldMappings": [{"externalField": "Name", "shardField": "name"}, {"externalField": "Amount", "shardField": "amount"}]}]}
    }))).await;
    assert_eq!(s, 201, "{integration}");
    let id = integration["id"].as_str().expect("id").to_owned();
    let (s, c) = call(&http, reqwest::Method::POST, format!("{base}/api/v1/integrations/{id}/connections"), &token, Some(json!({
        "type": "oauth2_client_credentials", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "tokenUrl": sf.token_url()
    }))).await;
    assert_eq!(s, 201, "{c}");
    let (s, task) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/api/v1/sync-tasks"),
        &token,
        Some(json!({
            "integrationId": id, "name": "Opportunities", "direction": "inbound",
            "entityTypes": ["Opportunity"], "schedule": {"type": "manual"}
        })),
    )
    .await;
    assert_eq!(s, 201, "{task}");
    let task = task["id"].as_str().expect("id").to_owned();
    let (s, queued) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/api/v1/sync-tasks/{task}/run"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 202, "{queued}");

    // Kill it once at least one page is checkpointed and the run goes on.
    let deadline = Instant::now() + Duration::from_secs(180);
    let at_kill = loop {
        let e = newest(&http, &base, &token, &task).await;
        let fetched = e["counters"]["fetched"].as_u64().unwrap_or(0);
        if fetched > 0 {
            assert_eq!(e["status"], "running", "killed too late: {e}");
            break fetched;
        }
        assert!(Instant::now() < deadline, "the run made no progress: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    first.kill().await;
    assert!(at_kill < records as u64);
    let served_before = sf.records_served();

    let second = Serve::start(dir.path(), &place).await;
    let base = second.base();
    ready(&http, &base).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let e = newest(&http, &base, &token, &task).await;
        if e["status"] != "running" && e["status"] != "queued" {
            break e;
        }
        assert!(Instant::now() < deadline, "the run did not resume: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["id"], queued["executionId"],
        "the same execution resumed"
    );
    // It resumed from its checkpoint: what it fetched after the restart is
    // what was left, plus at most the page in flight at the kill.
    let refetched = sf.records_served() - served_before;
    assert!(
        refetched <= records - at_kill as usize + per_page + 1,
        "re-read {refetched} records after having fetched {at_kill}"
    );

    // Every record is in exactly one shard.
    let mut external = HashSet::new();
    let mut total = 0;
    let mut next: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/shards?limit=200");
        if let Some(t) = &next {
            url.push_str(&format!("&continuationToken={}", urlencode(t)));
        }
        let (s, page) = call(&http, reqwest::Method::GET, url, &token, None).await;
        assert_eq!(s, 200, "{page}");
        for shard in page["items"].as_array().expect("items") {
            total += 1;
            external.insert(
                shard["metadata"]["externalId"]
                    .as_str()
                    .expect("externalId")
                    .to_owned(),
            );
        }
        match page["continuationToken"].as_str() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(total, records, "no record lost or made twice");
    assert_eq!(external.len(), records);

    // The tenant's slot was freed: a new run starts (and finds nothing new).
    sf.set_latency(Duration::ZERO);
    let (s, again) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/api/v1/sync-tasks/{task}/run"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 202, "{again}");
    second.kill().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
