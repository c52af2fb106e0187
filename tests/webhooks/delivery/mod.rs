//! The delivery engine against a real receiver (the secret scan in
//! `secret_scan.rs`).

mod secret_scan;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use castiel_integrations::platform::events::{Event, EventHandler};
use serde_json::{Value, json};

use crate::harness::{Hooks, Receiver, Reply, verify_with_standardwebhooks};

/// Every event raised, for assertions.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.0.lock().expect("lock").push(event.clone());
        Ok(())
    }
}

fn recorder(h: &Hooks) -> Arc<Recorder> {
    let r = Arc::new(Recorder::default());
    h.state.events.subscribe(r.clone());
    r
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn deliveries_verify_with_the_standard_webhooks_library() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    let w = h.webhook(&rx.url("/hook"), &["integration.*"]).await;
    let secret = w["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    let i = h.integration("Sales").await;
    assert_eq!(h.run_jobs().await, 1);
    let got = rx.got();
    assert_eq!(got.len(), 1);
    let c = &got[0];
    assert_eq!(c.header("content-type"), "application/json");
    assert!(
        c.header("user-agent").starts_with("castiel-integrations/"),
        "{}",
        c.header("user-agent")
    );
    let body = c.json();
    assert_eq!(body["type"], "integration.created");
    assert_eq!(body["data"]["integrationId"], i["id"]);
    assert!(body["timestamp"].is_string());
    let rows =
        verify_with_standardwebhooks(&got, &[&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
    assert_eq!(rows, vec![vec![true, false]]);
    let log = h.deliveries(&id(&w)).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["id"].as_str(), Some(c.header("webhook-id").as_str()));
    assert_eq!(log[0]["status"], "succeeded");
    let wh = h.get(&format!("/api/v1/webhooks/{}", id(&w))).await;
    assert_eq!(wh.body["lastDeliveryStatus"], "succeeded");
}

#[tokio::test]
async fn during_rotation_either_secret_verifies() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    let w = h.webhook(&rx.url("/hook"), &["*"]).await;
    let old = w["secret"].as_str().expect("secret").to_owned();
    let r = h
        .post(
            &format!("/api/v1/webhooks/{}/rotate-secret", id(&w)),
            json!({"gracePeriodSeconds": 3600}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new = r.body["secret"].as_str().expect("secret").to_owned();
    assert_ne!(old, new);
    h.integration("A").await;
    h.run_jobs().await;
    let got = rx.got();
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert_eq!(
        verify_with_standardwebhooks(&got, &[&old, &new]),
        vec![vec![true, true]]
    );
    // Rotating again without grace: only the newest secret signs.
    let r = h
        .send(
            axum::http::Method::POST,
            &format!("/api/v1/webhooks/{}/rotate-secret", id(&w)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let newest = r.body["secret"].as_str().expect("secret").to_owned();
    let r = h
        .post(
            &format!("/api/v1/webhooks/{}/rotate-secret", id(&w)),
            json!({"gracePeriodSeconds": 0}),
        )
        .await;
    let last = r.body["secret"].as_str().expect("secret").to_owned();
    h.integration("B").await;
    h.run_jobs().await;
    let got = rx.got();
    let rows = verify_with_standardwebhooks(&got[1..], &[&old, &new, &newest, &last]);
    assert_eq!(rows, vec![vec![false, false, false, true]]);
    let bad = h
        .post(
            &format!("/api/v1/webhooks/{}/rotate-secret", id(&w)),
            json!({"gracePeriodSeconds": 604_801}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.pointers(), ["/gracePeriodSeconds"]);
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_webhook_id() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(500)]);
    let w = h.webhook(&rx.url("/hook"), &["integration.created"]).await;
    h.integration("A").await;
    h.run_jobs().await;
    let d = h.deliveries(&id(&w)).await;
    assert_eq!(d[0]["status"], "pending");
    assert_eq!(h.advance(3).await, 0, "not due before the 5 s (±20 %) gap");
    assert_eq!(h.advance(4).await, 1);
    let got = rx.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let detail = h.delivery(&id(&w), &got[0].header("webhook-id")).await;
    assert_eq!(detail["status"], "succeeded");
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["responseStatus"], 500);
    assert_eq!(attempts[0]["responseBody"], "answer 500");
    assert!(attempts[0]["error"].is_string());
    assert_eq!(attempts[1]["responseStatus"], 200);
    let wh = h.get(&format!("/api/v1/webhooks/{}", id(&w))).await;
    assert_eq!(wh.body["consecutiveFailures"], 0);
    // Only the 2xx one is final.
    let ok = h
        .get(&format!(
            "/api/v1/webhooks/{}/deliveries?status=succeeded",
            id(&w)
        ))
        .await;
    assert_eq!(ok.body["items"].as_array().map(Vec::len), Some(1));
    let failed = h
        .get(&format!(
            "/api/v1/webhooks/{}/deliveries?status=failed",
            id(&w)
        ))
        .await;
    assert_eq!(failed.body["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn gone_disables_then_skipped_and_recovered() {
    let h = Hooks::new().await;
    let events = recorder(&h);
    let rx = Receiver::start().await;
    rx.script([Reply::status(410)]);
    let w = h.webhook(&rx.url("/hook"), &["integration.*"]).await;
    let start = h.clock_now();
    h.integration("A").await;
    h.run_jobs().await;
    let wh = h.get(&format!("/api/v1/webhooks/{}", id(&w))).await;
    assert_eq!(wh.body["enabled"], false);
    assert!(
        wh.body["disabledReason"]
            .as_str()
            .unwrap_or_default()
            .contains("410")
    );
    // While disabled, events become skipped deliveries, not requests.
    h.integration("B").await;
    h.run_jobs().await;
    assert_eq!(rx.count(), 1);
    let log = h.deliveries(&id(&w)).await;
    let statuses: Vec<&str> = log.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["skipped", "failed"], "newest first");
    let failed: Vec<_> = events
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e.event_type == "webhook.failed")
        .cloned()
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].data["status"], "failed");
    // Recover refuses while disabled, then replays both once enabled.
    let since = json!({"since": start.to_rfc3339()});
    let r = h
        .post(
            &format!("/api/v1/webhooks/{}/recover", id(&w)),
            since.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let put = h
        .put(
            &format!("/api/v1/webhooks/{}", id(&w)),
            json!({"url": w["url"], "events": ["integration.*"], "enabled": true}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["disabledReason"], Value::Null);
    let r = h
        .post(&format!("/api/v1/webhooks/{}/recover", id(&w)), since)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["requeued"], 2);
    h.run_jobs().await;
    assert_eq!(rx.count(), 3);
    let log = h.deliveries(&id(&w)).await;
    assert!(log.iter().all(|d| d["status"] == "succeeded"), "{log:?}");
    let delivered = events
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e.event_type == "webhook.delivered")
        .count();
    assert_eq!(delivered, 2);
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    rx.script([
        Reply::status(429).header("retry-after", "8"),
        Reply::status(503).header("retry-after", "86400"),
    ]);
    let w = h.webhook(&rx.url("/hook"), &["*"]).await;
    h.integration("A").await;
    h.run_jobs().await;
    let d = &h.deliveries(&id(&w)).await[0];
    let did = d["id"].as_str().expect("id").to_owned();
    let wait = |v: &Value| {
        let next = chrono::DateTime::parse_from_rfc3339(v["nextAttemptAt"].as_str().expect("next"))
            .expect("t");
        let last = v["attempts"]
            .as_array()
            .and_then(|a| a.last())
            .expect("attempt");
        let at = chrono::DateTime::parse_from_rfc3339(last["at"].as_str().expect("at")).expect("t");
        (next - at).num_milliseconds()
    };
    let detail = h.delivery(&id(&w), &did).await;
    assert_eq!(
        wait(&detail),
        8000,
        "Retry-After: 8 (within twice the 5 s gap)"
    );
    assert_eq!(h.advance(7).await, 0);
    assert_eq!(h.advance(1).await, 1);
    let detail = h.delivery(&id(&w), &did).await;
    let capped = wait(&detail);
    assert!(
        (2 * 240_000..=2 * 360_000).contains(&capped),
        "a day is capped at twice the 5 min gap: {capped}"
    );
    h.advance(capped / 1000 + 1).await;
    assert_eq!(rx.count(), 3);
    assert_eq!(h.delivery(&id(&w), &did).await["status"], "succeeded");
}

#[tokio::test]
async fn a_timeout_counts_as_a_failure() {
    let h = Hooks::with(&[("WEBHOOK_TIMEOUT_SECONDS", "1")]).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(200).delay(Duration::from_secs(3))]);
    let w = h.webhook(&rx.url("/slow"), &["*"]).await;
    h.integration("A").await;
    h.run_jobs().await;
    let d = &h.deliveries(&id(&w)).await[0];
    let detail = h.delivery(&id(&w), d["id"].as_str().expect("id")).await;
    assert_eq!(detail["status"], "pending");
    let a = &detail["attempts"][0];
    assert_eq!(a["responseStatus"], Value::Null);
    assert!(
        a["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{a}"
    );
    let wh = h.get(&format!("/api/v1/webhooks/{}", id(&w))).await;
    assert_eq!(wh.body["consecutiveFailures"], 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(302).header("location", &rx.url("/elsewhere"))]);
    let w = h.webhook(&rx.url("/hook"), &["*"]).await;
    h.integration("A").await;
    h.run_jobs().await;
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hook");
    let d = &h.deliveries(&id(&w)).await[0];
    assert_eq!(d["status"], "pending");
    assert_eq!(d["lastResponseStatus"], 302);
}

#[tokio::test]
async fn exhausted_after_the_whole_schedule() {
    let h = Hooks::new().await;
    let events = recorder(&h);
    let rx = Receiver::start().await;
    rx.script((0..8).map(|_| Reply::status(500)));
    let w = h.webhook(&rx.url("/hook"), &["*"]).await;
    h.integration("A").await;
    h.run_jobs().await;
    for _ in 0..7 {
        h.advance(13 * 3600).await;
    }
    assert_eq!(rx.count(), 8);
    let d = &h.deliveries(&id(&w)).await[0];
    assert_eq!(d["status"], "exhausted");
    assert_eq!(d["attemptCount"], 8);
    let failed: Vec<Event> = events
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e.event_type == "webhook.failed")
        .cloned()
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].data["status"], "exhausted");
    assert_eq!(failed[0].data["attempts"], 8);
    // A manual retry delivers again now, with the same id.
    let r = h
        .post_empty(&format!(
            "/api/v1/webhooks/{}/deliveries/{}/retry",
            id(&w),
            d["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    h.run_jobs().await;
    let got = rx.got();
    assert_eq!(got.len(), 9);
    assert_eq!(got[8].header("webhook-id"), got[0].header("webhook-id"));
}

#[tokio::test]
async fn failing_for_days_disables_with_a_reason() {
    let h = Hooks::with(&[("WEBHOOK_DISABLE_AFTER_HOURS", "1")]).await;
    let rx = Receiver::start().await;
    rx.script((0..20).map(|_| Reply::status(500)));
    let w = h.webhook(&rx.url("/hook"), &["*"]).await;
    h.integration("A").await;
    h.run_jobs().await;
    h.advance(10).await;
    h.advance(400).await;
    h.advance(2 * 3600).await;
    let wh = h.get(&format!("/api/v1/webhooks/{}", id(&w))).await;
    assert_eq!(wh.body["enabled"], false);
    assert!(
        wh.body["disabledReason"]
            .as_str()
            .unwrap_or_default()
            .contains("failing since")
    );
}

#[tokio::test]
async fn re_driven_events_make_one_delivery() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    h.webhook(&rx.url("/hook"), &["*"]).await;
    let ctx = castiel_integrations::domain::tenancy::Ctx::system(
        castiel_integrations::domain::tenancy::TenantId(h.tenant),
        "test",
    );
    let e = h.state.events.envelope(
        &ctx,
        "integration.updated",
        json!({"integrationId": uuid::Uuid::new_v4()}),
    );
    h.state.events.emit(vec![e.clone()]).await;
    h.state.events.emit(vec![e.clone()]).await;
    h.run_jobs().await;
    h.state.events.emit(vec![e]).await;
    h.run_jobs().await;
    assert_eq!(rx.count(), 1);
    // webhook.* events are never fanned out.
    let e = h
        .state
        .events
        .envelope(&ctx, "webhook.delivered", json!({}));
    h.state.events.emit(vec![e]).await;
    h.run_jobs().await;
    assert_eq!(rx.count(), 1);
}

#[tokio::test]
async fn the_rate_limit_defers_attempts_without_losing_them() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    let w = h
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("/hook"), "events": ["*"], "rateLimitPerSecond": 1}),
        )
        .await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.text);
    for n in 0..3 {
        h.integration(&format!("I{n}")).await;
    }
    h.run_jobs().await;
    assert!(rx.count() < 3, "a burst over the rate is deferred");
    for _ in 0..6 {
        if rx.count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        h.advance(2).await;
    }
    assert_eq!(rx.count(), 3);
}

#[tokio::test]
async fn the_redrive_re_enqueues_a_lost_job() {
    let h = Hooks::new().await;
    let rx = Receiver::start().await;
    h.webhook(&rx.url("/hook"), &["*"]).await;
    h.integration("A").await;
    let q = h.state.local_queue.as_ref().expect("embedded");
    for job in q
        .receive(10, Duration::from_secs(30))
        .await
        .expect("receive")
    {
        assert!(q.complete(&job).await.expect("drop the job"));
    }
    assert_eq!(h.run_jobs().await, 0);
    h.clock.advance(chrono::Duration::minutes(10));
    let n = castiel_integrations::features::webhooks::delivery::redrive(
        &h.state.webhooks,
        castiel_integrations::clock::Clock::now(h.clock.as_ref()) - chrono::Duration::minutes(5),
    )
    .await
    .expect("re-drive");
    assert_eq!(n, 1);
    h.run_jobs().await;
    assert_eq!(rx.count(), 1);
    let again = castiel_integrations::features::webhooks::delivery::redrive(
        &h.state.webhooks,
        castiel_integrations::clock::Clock::now(h.clock.as_ref()) - chrono::Duration::minutes(5),
    )
    .await
    .expect("re-drive");
    assert_eq!(again, 0, "nothing pending any more");
}

#[tokio::test]
async fn a_job_that_overtakes_its_delivery_is_retried_not_dropped() {
    use castiel_integrations::domain::tenancy::TenantId;
    use castiel_integrations::features::webhooks::delivery::AttemptOutcome;
    use castiel_integrations::features::webhooks::delivery::{
        Job, MISSING_DELIVERY_RECEIVES, attempt,
    };
    let h = Hooks::new().await;
    let job = |receives| Job {
        tenant: TenantId(h.tenant),
        delivery_id: uuid::Uuid::from_u128(7),
        attempt: 0,
        receives,
    };
    for count in 1..MISSING_DELIVERY_RECEIVES {
        let e = attempt(&h.state.webhooks, job(count), None)
            .await
            .expect_err("the delivery may still be landing");
        assert_eq!(e.wait_hint(), Some(Duration::from_secs(1)));
    }
    let last = attempt(&h.state.webhooks, job(MISSING_DELIVERY_RECEIVES), None).await;
    assert!(
        matches!(last, Ok(AttemptOutcome::NoOp)),
        "then taken for stale"
    );
}
