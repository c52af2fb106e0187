//! The crash test on a store in the test process (the Cosmos emulator):
//! `serve` runs in the test binary (`support/process.rs`) with the broker
//! behind a proxy the test controls (`support/proxy.rs`), on a store
//! wrapper that can hold writes (`watched.rs`). A burst of changes runs; the
//! broker stalls, so events pile up in the outbox as `ready` entries; then
//! the creates of integrations are held, two just after they reached the
//! store, the others just before, until every client waits on one; and the
//! process crashes (its runtime stops, every task where it stands).
//!
//! At the crash the store must hold that backlog: the ready entries, and one
//! `staged` intent per held change. A new process on the same account and
//! `DATA_DIR` must then republish every ready entry, probe the intents
//! (publishing those whose change happened, dropping the others), give
//! every stored change its event and leave the outbox empty.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::auth::TokenKeys;
use castiel_integrations::platform::store::{Container, Query, Store};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::broker::{Received, Tap, unique, url};
use crate::helpers::JWT_SECRET;
use crate::process::Served;
use crate::proxy::Proxy;
use crate::stores::{Place, all_documents};
use crate::watched::Watched;

/// Clients sending changes at once.
const WORKERS: usize = 6;
/// Changes held after they reached the store (the rest of the clients'
/// changes are held before).
const HELD_AFTER: usize = 2;

/// The broker's address, from its URL.
pub(crate) fn broker_addr() -> std::net::SocketAddr {
    let u = url::Url::parse(&url()).expect("broker url");
    let host = u.host_str().expect("host");
    let port = u.port().unwrap_or(5672);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("resolve")
        .next()
        .expect("address")
}

/// The broker URL with the proxy in its place.
pub(crate) fn through(proxy: &Proxy) -> String {
    let mut u = url::Url::parse(&url()).expect("broker url");
    u.set_host(Some("127.0.0.1")).expect("host");
    u.set_port(Some(proxy.addr.port())).expect("port");
    u.to_string()
}

/// One outbox entry as the crash left it.
#[derive(Debug)]
pub(crate) struct Left {
    pub(crate) event_id: String,
    pub(crate) state: String,
    pub(crate) integration: String,
}

pub(crate) async fn outbox(store: &dyn Store) -> Vec<Left> {
    let q = Query::cross_partition().eq("kind", "event").limit(200);
    all_documents(store, Container::Outbox, q)
        .await
        .into_iter()
        .map(|d| Left {
            event_id: d.body["id"].as_str().expect("id").to_owned(),
            state: d.body["state"].as_str().expect("state").to_owned(),
            integration: d.body["event"]["data"]["integrationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

/// Integration ids in the store (every committed change).
async fn stored(store: &dyn Store, tenants: &[Uuid]) -> HashSet<String> {
    let mut out = HashSet::new();
    for t in tenants {
        let q = Query::partition(t.to_string()).limit(200);
        for d in all_documents(store, Container::Integrations, q).await {
            out.insert(d.id);
        }
    }
    out
}

fn integration_of(m: &Received) -> String {
    assert_eq!(m.routing_key, "integration.created");
    m.body["data"]["integrationId"]
        .as_str()
        .expect("integrationId")
        .to_owned()
}

pub async fn in_process_crash_with_a_stalled_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let place = Place::new(dir.path());
    let proxy = Proxy::start(broker_addr()).await;
    let (exchange, queue) = (unique("test_crash"), unique("test_crash_sync"));
    let mut tap = Tap::on(&exchange).await;
    let broker = through(&proxy);
    let settings = [
        ("JWT_SECRET", JWT_SECRET),
        ("RABBITMQ_URL", broker.as_str()),
        ("RABBITMQ_EXCHANGE", exchange.as_str()),
        ("RABBITMQ_QUEUE", queue.as_str()),
    ];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let keys = TokenKeys::new(&SecretString::from(JWT_SECRET), None, None);
    let tenants: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();

    let gate = Arc::new(std::sync::OnceLock::<Arc<Watched>>::new());
    let g = gate.clone();
    let first = Served::start_with(&place, dir.path(), &settings, move |inner| {
        let w = Watched::new(inner);
        let _ = g.set(w.clone());
        w
    })
    .await;
    let gate = gate.get().expect("the store was wrapped").clone();
    first.wait_ready(&http).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (http, acked, base) = (http.clone(), acked.clone(), first.base());
        let token = keys.mint(TenantId(tenants[w % tenants.len()]), Some("u"), false, 3600);
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let res = http
                    .post(format!("{base}/api/v1/integrations"))
                    .bearer_auth(&token)
                    .json(&json!({"providerId": "salesforce", "name": format!("w{w}-{i}")}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        let body: Value = r.json().await.expect("json");
                        let id = body["id"].as_str().expect("id").to_owned();
                        acked.lock().expect("lock").push(id);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the process crashed
                }
            }
        }));
    }
    let acked_count = || acked.lock().expect("lock").len();
    let until = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let a = acked.clone();
    until(
        "60 changes",
        Box::new(move || a.lock().expect("lock").len() >= 60),
    )
    .await;
    // The broker stops answering: publishes time out, events stay behind.
    proxy.stall();
    let (a, target) = (acked.clone(), acked_count() + 120);
    until(
        "120 more changes",
        Box::new(move || a.lock().expect("lock").len() >= target),
    )
    .await;
    // Two changes that happen but whose callers never hear of it, then
    // changes that never happen, until every client waits on one.
    gate.hold(HELD_AFTER);
    let g = gate.clone();
    let all_held = move || {
        let (before, after) = g.held();
        before + after == WORKERS
    };
    until("every client held", Box::new(all_held)).await;
    let (held_before, held_after) = gate.held();
    assert_eq!(
        (held_before, held_after),
        (WORKERS - HELD_AFTER, HELD_AFTER)
    );
    first.crash().await;
    proxy.cut();
    for w in workers {
        w.await.expect("worker");
    }
    let acked: Vec<String> = acked.lock().expect("lock").clone();
    assert!(proxy.held() > 0, "the stalled proxy held the publishes");

    // The documents, as the crash left them (a client of the test's own).
    let store = place.open(Arc::new(SystemClock)).await;
    let backlog = outbox(store.as_ref()).await;
    let ready = backlog.iter().filter(|e| e.state == "ready").count();
    let staged: Vec<&Left> = backlog.iter().filter(|e| e.state == "staged").collect();
    assert!(
        ready > 0,
        "the stalled broker left ready entries at the crash"
    );
    assert_eq!(
        staged.len(),
        WORKERS,
        "one intent per held change ({held_after} happened, {held_before} did not)"
    );
    // What reached the broker before the crash.
    let mut before: Vec<Received> = tap.collect(usize::MAX, Duration::from_secs(1)).await;
    proxy.resume();

    let second = Served::start(&place, dir.path(), &settings).await;
    second.wait_ready(&http).await;
    let stored = stored(store.as_ref(), &tenants).await;
    for id in &acked {
        assert!(stored.contains(id), "acknowledged change {id} is stored");
    }
    let happened = staged
        .iter()
        .filter(|e| stored.contains(&e.integration))
        .count();
    assert_eq!(
        (happened, staged.len() - happened),
        (held_after, held_before),
        "the held changes are stored, or not, as they were held"
    );
    // Entries whose change happened are owed; the relay drops the others.
    let owed: HashSet<&str> = backlog
        .iter()
        .filter(|e| stored.contains(&e.integration))
        .map(|e| e.event_id.as_str())
        .collect();
    let mut after: Vec<Received> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(m) = tap.next(Duration::from_millis(500)).await {
            after.push(m);
            continue;
        }
        let republished: HashSet<&str> = after
            .iter()
            .filter_map(|m| m.message_id.as_deref())
            .collect();
        let events: HashSet<String> = before.iter().chain(&after).map(integration_of).collect();
        let done = owed.iter().all(|id| republished.contains(id))
            && stored.iter().all(|i| events.contains(i))
            && outbox(store.as_ref()).await.is_empty();
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the restart: {} of {} backlog entries republished, {} of {} changes with an event, {} entries left",
            owed.iter().filter(|id| republished.contains(**id)).count(),
            owed.len(),
            stored.iter().filter(|i| events.contains(*i)).count(),
            stored.len(),
            outbox(store.as_ref()).await.len()
        );
    }
    second.crash().await;

    before.append(&mut after);
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for m in &before {
        let integration = integration_of(m);
        assert!(
            stored.contains(&integration),
            "no event for a change that did not happen"
        );
        ids.entry(integration)
            .or_default()
            .insert(m.message_id.clone().expect("messageId"));
    }
    for (integration, ids) in &ids {
        assert_eq!(
            ids.len(),
            1,
            "duplicates of {integration} share one event id"
        );
    }
    eprintln!(
        "in-process crash: {} acknowledged, {} stored, {} outbox entries at the crash ({ready} ready, {} staged: {held_after} changed, {held_before} not), {} republished after the restart",
        acked.len(),
        stored.len(),
        backlog.len(),
        staged.len(),
        owed.len()
    );
    tap.cleanup().await;
    let conn = crate::broker::connect().await;
    let ch = conn.create_channel().await.expect("channel");
    for q in [queue.clone(), format!("{queue}.dlq")] {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
    let _ = conn.close(200, "bye".into()).await;
}
