//! Broker down: changes succeed and events accumulate; the relay delivers
//! them all once the broker is back, none twice, in order per tenant. Local
//! handlers get every event at least once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use castiel_integrations::app;
use castiel_integrations::app::AppState;
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::events::{Event, EventHandler};
use castiel_integrations::platform::store::{Container, Query, Store};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::broker::{Tap, dead_url, unique, url, wait_bus};
use crate::helpers::JWT_SECRET;
use crate::stores::{Backend, backend};
use crate::watched::Watched;

async fn app_on(store: Arc<dyn Store>, dir: &std::path::Path, extra: &[(&str, &str)]) -> AppState {
    let data_dir = dir.to_string_lossy().into_owned();
    let mut pairs = vec![("DATA_DIR", data_dir.as_str()), ("JWT_SECRET", JWT_SECRET)];
    pairs.extend_from_slice(extra);
    let config = Config::from_pairs(&pairs).expect("config");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    app::wiring::build_with(config, store, clock)
        .await
        .expect("app")
}

async fn create(state: &AppState, token: &str, name: &str) -> Value {
    let req = Request::post("/api/v1/integrations")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"providerId": "hubspot", "name": name}).to_string(),
        ))
        .expect("request");
    let res = castiel_integrations::drivers::http::router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::CREATED);
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

async fn outbox_events(store: &dyn Store, tenant: Uuid) -> usize {
    store
        .query(
            Container::Outbox,
            &Query::partition(tenant.to_string())
                .eq("kind", "event")
                .limit(1000),
        )
        .await
        .expect("query")
        .items
        .len()
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Uuid>>,
    fail_first: AtomicUsize,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            anyhow::bail!("local handler down");
        }
        self.seen.lock().expect("lock").push(event.id);
        Ok(())
    }
}

#[tokio::test]
async fn events_accumulate_while_the_broker_is_down_and_the_relay_delivers_them_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Both apps below (broker down, then up) share this store of TEST_STORE.
    let store = crate::helpers::test_store(dir.path(), clock).await;
    let exchange = unique("test_outbox");
    let down = app_on(
        store.clone(),
        dir.path(),
        &[
            ("RABBITMQ_URL", &dead_url()),
            ("RABBITMQ_EXCHANGE", &exchange),
        ],
    )
    .await;
    let recorder = Arc::new(Recorder {
        fail_first: AtomicUsize::new(7),
        ..Default::default()
    });
    down.events.subscribe(recorder.clone());

    let tenants: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let tokens: Vec<String> = tenants
        .iter()
        .map(|t| down.tokens.mint(TenantId(*t), Some("u"), false, 3600))
        .collect();
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..500 {
        let k = i % tenants.len();
        let body = create(&down, &tokens[k], &format!("n{i}")).await;
        expected
            .entry(tenants[k].to_string())
            .or_default()
            .push(body["id"].as_str().expect("id").to_owned());
    }
    for t in &tenants {
        assert_eq!(outbox_events(store.as_ref(), *t).await, 100);
    }
    // The relay of the process without a broker publishes nothing and keeps all.
    let r = down.events.relay().await.expect("relay");
    assert_eq!(r.published, 0);
    // 7 handler calls failed at emit time; the relay re-drove them.
    assert_eq!(recorder.seen.lock().expect("lock").len(), 500);
    drop(down);

    let mut tap = Tap::on(&exchange).await;
    let up = app_on(
        store.clone(),
        dir.path(),
        &[("RABBITMQ_URL", &url()), ("RABBITMQ_EXCHANGE", &exchange)],
    )
    .await;
    wait_bus(&up).await;
    let mut published = 0;
    for _ in 0..20 {
        let r = up.events.relay().await.expect("relay");
        published += r.published;
        if published >= 500 && r.published == 0 {
            break;
        }
    }
    assert_eq!(published, 500);
    let got = tap.collect(501, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 500, "all 500, none twice");
    let ids: HashSet<_> = got.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), 500, "no duplicate event ids");
    let mut order: HashMap<String, Vec<String>> = HashMap::new();
    for m in &got {
        assert_eq!(m.routing_key, "integration.created");
        order
            .entry(m.body["tenantId"].as_str().expect("tenant").to_owned())
            .or_default()
            .push(
                m.body["data"]["integrationId"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
    }
    assert_eq!(order, expected, "in order per tenant");
    for t in &tenants {
        assert_eq!(
            outbox_events(store.as_ref(), *t).await,
            0,
            "confirmed entries removed"
        );
    }
    tap.cleanup().await;
}

#[tokio::test]
async fn a_failed_local_handler_is_redriven_by_the_relay_even_in_process() {
    let app = crate::helpers::TestApp::new().await;
    let recorder = Arc::new(Recorder {
        fail_first: AtomicUsize::new(1),
        ..Default::default()
    });
    app.state.events.subscribe(recorder.clone());
    let tenant = Uuid::new_v4();
    let token = app.token(tenant);
    app.create_integration(&token, "one").await;
    assert!(recorder.seen.lock().expect("lock").is_empty());
    assert_eq!(outbox_events(app.state.store.as_ref(), tenant).await, 1);
    let r = app.state.events.relay().await.expect("relay");
    assert_eq!(r.handled, 1);
    assert_eq!(r.published, 0, "already published, not again");
    assert_eq!(recorder.seen.lock().expect("lock").len(), 1);
    assert_eq!(outbox_events(app.state.store.as_ref(), tenant).await, 0);
}

/// Wants `integration.*` only, and always fails.
#[derive(Default)]
struct Picky {
    calls: AtomicUsize,
}

#[async_trait]
impl EventHandler for Picky {
    async fn handle(&self, _event: &Event) -> anyhow::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        anyhow::bail!("refused")
    }

    fn wants(&self, event_type: &str) -> bool {
        event_type.starts_with("integration.")
    }
}

#[tokio::test]
async fn in_process_events_no_handler_wants_are_not_recorded() {
    use castiel_integrations::domain::tenancy::Ctx;
    let app = crate::helpers::TestApp::new().await;
    let picky = Arc::new(Picky::default());
    app.state.events.subscribe(picky.clone());
    let tenant = Uuid::new_v4();
    let ctx = Ctx::system(TenantId(tenant), "t");
    let store = app.state.store.as_ref();

    // Nobody outside the process and no handler is owed a webhook event.
    let delivered =
        app.state
            .events
            .envelope(&ctx, "webhook.delivered", json!({"deliveryId": "d"}));
    app.state.events.emit(vec![delivered]).await;
    assert_eq!(
        picky.calls.load(Ordering::SeqCst),
        0,
        "not wanted, not called"
    );
    assert_eq!(outbox_events(store, tenant).await, 0, "nothing to re-drive");

    // A wanted event is recorded; its failed handler keeps it for the relay.
    let updated = app
        .state
        .events
        .envelope(&ctx, "integration.updated", json!({"name": "x"}));
    app.state.events.emit(vec![updated]).await;
    assert_eq!(picky.calls.load(Ordering::SeqCst), 1);
    assert_eq!(outbox_events(store, tenant).await, 1, "owed to a handler");
}

async fn deliveries(store: &dyn Store, tenant: Uuid) -> usize {
    store
        .query(
            Container::WebhookDeliveries,
            &Query::partition(tenant.to_string()).limit(1000),
        )
        .await
        .expect("query")
        .items
        .len()
}

/// What the outbox holds for an event the webhook fan-out wants, per store.
///
/// - embedded (transactions across containers): the fan-out writes its
///   delivery in the change's transaction, so on the in-process bus the
///   event is owed to nobody else and gets no outbox entry at all (its
///   pending delivery is the durable record).
/// - cosmos (no such transaction): the entry is written first, as the intent
///   of the change; once the change happened, the fan-out wrote its
///   delivery and the bus took the event, the entry is deleted before the
///   call returns.
///
/// On both, a local handler that cannot stage its work and fails leaves a
/// `ready`, published entry behind, which the relay re-drives.
#[tokio::test]
async fn deliveries_commit_with_their_change_and_need_no_outbox_entry() {
    use castiel_integrations::domain::tenancy::Ctx;
    use castiel_integrations::features::webhooks::service::{self, NewWebhook};
    let watched = std::sync::OnceLock::new();
    let app = crate::helpers::TestApp::custom(&[], Arc::new(SystemClock), |inner| {
        let w = Watched::new(inner);
        let _ = watched.set(w.clone());
        w
    })
    .await;
    let watched = watched.get().expect("wrapped");
    let store = app.state.store.as_ref();
    let tenant = Uuid::new_v4();
    let token = app.token(tenant);
    let ctx = Ctx::system(TenantId(tenant), "t");
    let input: NewWebhook = serde_json::from_value(
        json!({"url": "https://hooks.example.com/in", "events": ["integration.*"]}),
    )
    .expect("input");
    service::create(&app.state.webhooks, &ctx, input)
        .await
        .expect("webhook");

    let written = watched.outbox_created().len();
    app.create_integration(&token, "one").await;
    assert_eq!(
        deliveries(store, tenant).await,
        1,
        "the delivery was written"
    );
    assert_eq!(
        outbox_events(store, tenant).await,
        0,
        "nothing is owed once the change's call returned"
    );
    let entries_written = watched.outbox_created().len() - written;
    match backend() {
        Backend::Embedded => assert_eq!(
            entries_written, 0,
            "embedded: committed with its delivery, the event needed no entry at all"
        ),
        Backend::Cosmos => assert_eq!(
            entries_written, 1,
            "cosmos: the event's intent was written before the change (and deleted after it)"
        ),
    }

    let recorder = Arc::new(Recorder {
        fail_first: AtomicUsize::new(1),
        ..Default::default()
    });
    app.state.events.subscribe(recorder.clone());
    app.create_integration(&token, "two").await;
    assert_eq!(deliveries(store, tenant).await, 2);
    let owed = store
        .query(
            Container::Outbox,
            &Query::partition(tenant.to_string())
                .eq("kind", "event")
                .limit(10),
        )
        .await
        .expect("query")
        .items;
    assert_eq!(
        owed.len(),
        1,
        "a handler that did not stage its work (and failed) is owed the event"
    );
    let entry = &owed[0].body;
    assert_eq!(entry["state"], "ready", "{entry}");
    assert_eq!(entry["handled"], false, "{entry}");
    assert_eq!(entry["published"], true, "the bus took it: {entry}");
    let r = app.state.events.relay().await.expect("relay");
    assert_eq!(r.handled, 1);
    assert_eq!(r.published, 0, "published already, not again");
    assert_eq!(recorder.seen.lock().expect("lock").len(), 1);
    assert_eq!(outbox_events(store, tenant).await, 0, "owed to nobody now");
    assert_eq!(
        deliveries(store, tenant).await,
        2,
        "re-driving the event finds its delivery: still one per event"
    );
}
