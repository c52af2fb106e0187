//! `serve` crashed during a burst of changes: after a restart, every
//! acknowledged change's event reaches the broker (duplicates only with the
//! same event id).
//!
//! How it crashes depends on `TEST_STORE`:
//! - embedded: the real binary on a random port with its own `DATA_DIR`,
//!   its broker stalled through a proxy so that a backlog is left in the
//!   outbox, then killed with SIGKILL ([`sigkill_serve`], below);
//! - cosmos: the emulator lives in the test process, so `serve` runs there
//!   too and crashes in-process, with a stalled broker so that a backlog is
//!   left for the relay (`crash_in_process.rs`).

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::auth::TokenKeys;
use secrecy::SecretString;
use serde_json::json;
use tokio::process::{Child, Command};
use uuid::Uuid;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};

use crate::broker::{Tap, unique, url};
use crate::crash_in_process::{broker_addr, outbox, through};
use crate::helpers::JWT_SECRET;
use crate::proxy::Proxy;
use crate::stores::Backend;

struct Serve {
    port: u16,
    dir: std::path::PathBuf,
    exchange: String,
    queue: String,
}

impl Serve {
    fn start(&self, broker: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_castiel-integrations"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", self.port.to_string())
            .env("DATA_DIR", &self.dir)
            .env("JWT_SECRET", JWT_SECRET)
            .env("RABBITMQ_URL", broker)
            .env("RABBITMQ_EXCHANGE", &self.exchange)
            .env("RABBITMQ_QUEUE", &self.queue)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start serve")
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self, client: &reqwest::Client) {
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{}/ready", self.base())).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve did not become ready");
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_every_acknowledged_change_reaches_the_broker() {
    match crate::stores::backend() {
        Backend::Embedded => sigkill_serve().await,
        Backend::Cosmos => crate::crash_in_process::in_process_crash_with_a_stalled_broker().await,
    }
}

/// The embedded store's crash: SIGKILL of the real binary.
async fn sigkill_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve {
        port: free_port(),
        dir: dir.path().to_owned(),
        exchange: unique("test_crash"),
        queue: unique("test_crash_sync"),
    };
    let mut tap = Tap::on(&serve.exchange).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let keys = TokenKeys::new(&SecretString::from(JWT_SECRET), None, None);
    let tenants: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();

    // The first process reaches the broker through a proxy the test stalls.
    let proxy = Proxy::start(broker_addr()).await;
    let mut child = serve.start(&through(&proxy));
    serve.wait_ready(&client).await;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..6 {
        let (client, acked, base) = (client.clone(), acked.clone(), serve.base());
        let token = keys.mint(TenantId(tenants[w % tenants.len()]), Some("u"), false, 3600);
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let res = client
                    .post(format!("{base}/api/v1/integrations"))
                    .bearer_auth(&token)
                    .json(&json!({"providerId": "salesforce", "name": format!("w{w}-{i}")}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        let body: serde_json::Value = r.json().await.expect("json");
                        let id = body["id"].as_str().expect("id").to_owned();
                        acked.lock().expect("lock").push(id);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server died
                }
            }
        }));
    }
    // Let the burst run, stall the broker (publishes time out, events stay
    // behind in the outbox), then kill mid-flight.
    let until = |n: usize| {
        let acked = acked.clone();
        async move {
            while acked.lock().expect("lock").len() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    until(60).await;
    proxy.stall();
    until(150).await;
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    proxy.cut();
    for w in workers {
        w.await.expect("worker");
    }
    let acked: Vec<String> = acked.lock().expect("lock").clone();
    assert!(proxy.held() > 0, "the stalled proxy held the publishes");

    // The backlog the kill left: what the relay of the next process owes.
    let db = || {
        let db = SqliteDb::open(&serve.dir.join("castiel.db")).expect("open the data dir");
        EmbeddedStore::new(db, Arc::new(SystemClock))
    };
    let backlog = outbox(&db()).await;
    let ready = backlog.iter().filter(|e| e.state == "ready").count();
    assert!(
        ready > 0,
        "the stalled broker left ready entries at the kill"
    );

    let mut child = serve.start(&url());
    serve.wait_ready(&client).await;

    // Every committed change (acknowledged or cut off before its answer) must
    // get its event: read what the store really holds.
    let mut stored: HashSet<String> = HashSet::new();
    for t in &tenants {
        let token = keys.mint(TenantId(*t), Some("u"), false, 3600);
        let mut next: Option<String> = None;
        loop {
            let mut url = format!("{}/api/v1/integrations?limit=200", serve.base());
            if let Some(c) = &next {
                url.push_str(&format!("&continuationToken={c}"));
            }
            let page: serde_json::Value = client
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            for i in page["items"].as_array().expect("items") {
                stored.insert(i["id"].as_str().expect("id").to_owned());
            }
            next = page["continuationToken"].as_str().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
    }
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged change {id} is in the store"
        );
    }
    let want: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let mut event_ids: HashMap<String, HashSet<String>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while tokio::time::Instant::now() < deadline
        && !want.iter().all(|id| event_ids.contains_key(*id))
    {
        if let Some(m) = tap.next(Duration::from_secs(1)).await {
            assert_eq!(m.routing_key, "integration.created");
            let integration = m.body["data"]["integrationId"]
                .as_str()
                .expect("id")
                .to_owned();
            event_ids
                .entry(integration)
                .or_default()
                .insert(m.message_id.clone().expect("messageId"));
        }
    }
    let missing: Vec<&&str> = want
        .iter()
        .filter(|id| !event_ids.contains_key(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} changes lost their event: {missing:?}",
        missing.len(),
        want.len()
    );
    for integration in event_ids.keys() {
        assert!(
            stored.contains(integration),
            "no event for a change that did not happen"
        );
    }
    for (integration, ids) in &event_ids {
        assert_eq!(
            ids.len(),
            1,
            "duplicates of {integration} must share one event id"
        );
    }
    // Recovery ran: every entry of the backlog whose change happened was
    // republished with its own event id, and the outbox was worked off.
    let published: HashSet<&str> = event_ids.values().flatten().map(String::as_str).collect();
    let owed: Vec<&str> = backlog
        .iter()
        .filter(|e| stored.contains(&e.integration))
        .map(|e| e.event_id.as_str())
        .collect();
    assert!(
        !owed.is_empty(),
        "the backlog held events of stored changes"
    );
    let unpublished: Vec<&&str> = owed.iter().filter(|id| !published.contains(**id)).collect();
    assert!(
        unpublished.is_empty(),
        "backlog entries never republished: {unpublished:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !outbox(&db()).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay left the outbox non-empty"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "SIGKILL crash: {} acknowledged, {} stored, {} outbox entries at the kill ({ready} ready), {} republished",
        acked.len(),
        stored.len(),
        backlog.len(),
        owed.len()
    );
    child.start_kill().expect("kill");
    let _ = child.wait().await;
    tap.cleanup().await;
    let conn = crate::broker::connect().await;
    let ch = conn.create_channel().await.expect("channel");
    for q in [serve.queue.clone(), format!("{}.dlq", serve.queue)] {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
    let _ = conn.close(200, "bye".into()).await;
}
