//! The crash test on a store in the test process (the Cosmos emulator):
//! `serve` runs in the test binary (`support/process.rs`) with a slow
//! receiver and two workers, hundreds of integrations are created (one
//! delivery each), and the process crashes (its runtime stops, every task
//! where it stands). At the crash the store must hold pending deliveries.
//! A new process on the same account and `DATA_DIR` must deliver every one
//! of them and leave none pending; duplicates carry one webhook-id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::auth::TokenKeys;
use castiel_integrations::platform::store::{Container, Query, Store};
use futures::StreamExt as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{JWT_SECRET, Receiver};
use crate::process::Served;
use crate::stores::{Place, all_documents};

/// Integrations created (one delivery each). Fewer than the SIGKILL test's
/// 2000: the emulator runs inside this debug test binary, on the CPUs the
/// service uses, and a write costs it about ten times what SQLite takes;
/// the way back from the crash is the same with 600. The receiver answers
/// one request per 100 ms per worker until the crash, so however fast the
/// creates go, most deliveries are still pending when it comes.
const EVENTS: usize = 600;

/// Deliveries of a tenant by status.
async fn statuses(store: &dyn Store, tenant: Uuid) -> HashMap<String, usize> {
    let q = Query::partition(tenant.to_string()).limit(500);
    let mut by = HashMap::new();
    for d in all_documents(store, Container::WebhookDeliveries, q).await {
        let status = d.body["status"].as_str().unwrap_or("?").to_owned();
        *by.entry(status).or_default() += 1;
    }
    by
}

/// Integration id → webhook-ids the receiver got for it.
fn received(rx: &Receiver) -> HashMap<String, HashSet<String>> {
    let mut by: HashMap<String, HashSet<String>> = HashMap::new();
    for c in rx.got() {
        if let Some(i) = c.json()["data"]["integrationId"].as_str() {
            by.entry(i.to_owned())
                .or_default()
                .insert(c.header("webhook-id"));
        }
    }
    by
}

pub async fn in_process_crash_with_deliveries_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let place = Place::new(dir.path());
    let rx = Receiver::start().await;
    rx.set_default_delay(Duration::from_millis(100));
    let settings = |workers: &'static str| {
        [
            ("JWT_SECRET", JWT_SECRET),
            ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.1/32"),
            ("WEBHOOK_TIMEOUT_SECONDS", "2"),
            ("WORKERS", workers),
        ]
    };
    let http = reqwest::Client::new();
    let first = Served::start(&place, dir.path(), &settings("2")).await;
    first.wait_ready(&http).await;
    let tenant = Uuid::new_v4();
    let keys = TokenKeys::new(&SecretString::from(JWT_SECRET.to_owned()), None, None);
    let token = keys.mint(TenantId(tenant), Some("crash"), false, 3600);
    let base = first.base();
    let created = http
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": rx.url("/hook"), "events": ["integration.created"]}))
        .send()
        .await
        .expect("create webhook");
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let accepted: Vec<String> = futures::stream::iter(0..EVENTS)
        .map(|n| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            async move {
                let r = http
                    .post(format!("{base}/api/v1/integrations"))
                    .bearer_auth(&token)
                    .json(&json!({"providerId": "salesforce", "name": format!("crash {n}")}))
                    .send()
                    .await
                    .ok()?;
                if r.status() != reqwest::StatusCode::CREATED {
                    return None;
                }
                let v: Value = r.json().await.ok()?;
                v["id"].as_str().map(str::to_owned)
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    assert_eq!(accepted.len(), EVENTS, "every create was accepted");
    first.crash().await;

    // The deliveries, as the crash left them (a client of the test's own).
    let store = place.open(Arc::new(SystemClock)).await;
    let at_crash = statuses(store.as_ref(), tenant).await;
    let pending = at_crash.get("pending").copied().unwrap_or(0);
    assert_eq!(
        at_crash.values().sum::<usize>(),
        EVENTS,
        "one delivery per accepted event: {at_crash:?}"
    );
    assert!(
        pending > 0,
        "deliveries were pending at the crash: {at_crash:?}"
    );
    let before = received(&rx);

    rx.set_default_delay(Duration::ZERO);
    let second = Served::start(&place, dir.path(), &settings("8")).await;
    second.wait_ready(&http).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    // The store is read only once the receiver has everything (a scan of
    // the emulator costs the CPUs the service needs).
    let by = loop {
        let by = received(&rx);
        let arrived = accepted.iter().filter(|i| by.contains_key(*i)).count();
        let now = if arrived == EVENTS {
            statuses(store.as_ref(), tenant).await
        } else {
            HashMap::new()
        };
        if arrived == EVENTS && !now.contains_key("pending") {
            break by;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the restart: {arrived} of {EVENTS} delivered, deliveries {:?}",
            statuses(store.as_ref(), tenant).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    second.crash().await;
    for (i, ids) in &by {
        assert_eq!(ids.len(), 1, "duplicates of {i} carry one webhook-id");
    }
    let after_restart = accepted.iter().filter(|i| !before.contains_key(*i)).count();
    assert!(after_restart > 0, "the restart delivered what was pending");
    let end = statuses(store.as_ref(), tenant).await;
    assert_eq!(end.get("succeeded"), Some(&EVENTS), "{end:?}");
    eprintln!(
        "in-process crash: {} delivered before the crash, {pending} pending at it, {after_restart} first delivered after the restart, {} requests in all",
        before.len(),
        rx.count()
    );
}
