//! The `shard.updated` consumer: good messages acked once, bad envelopes and
//! repeatedly failing handlers dead-lettered with the reason in a header.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use castiel_integrations::platform::events::Event;
use castiel_integrations::platform::events::consumer::{
    self, ConsumerSettings, HandlerError, InboundEventHandler, REASON_HEADER, RecordingHandler,
};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::broker::{connect, declare_exchange, unique, url};

/// Fails for events whose `data.fail` is true; counts calls per event.
#[derive(Default)]
struct Flaky {
    calls: Mutex<Vec<Uuid>>,
    ok: AtomicUsize,
}

#[async_trait]
impl InboundEventHandler for Flaky {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.calls.lock().expect("lock").push(event.id);
        if event.data["fail"] == true {
            return Err(HandlerError::Failed("shard manager down".into()));
        }
        self.ok.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "callers build the data inline"
)]
fn envelope(event_type: &str, data: Value) -> Value {
    json!({
        "id": Uuid::new_v4(), "type": event_type, "version": "1.0",
        "timestamp": "2026-11-21T10:00:00.000Z", "tenantId": Uuid::new_v4(),
        "source": {"service": "shard-manager", "instance": "sm-1"},
        "data": data, "metadata": {"correlationId": Uuid::new_v4()}
    })
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    let ok = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm")
        .is_ack();
    assert!(ok);
}

/// Polls a queue for one message: (body, reason header).
async fn get_one(ch: &Channel, queue: &str) -> Option<(Vec<u8>, String)> {
    for _ in 0..250 {
        if let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
        {
            let reason = m
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get(REASON_HEADER).cloned())
                .map(|v| match v {
                    AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            return Some((m.data.clone(), reason));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn message_count(ch: &Channel, queue: &str) -> u32 {
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("passive declare")
    .message_count()
}

/// Waits until the service's consumer is attached to `queue` (bound by then).
async fn wait_consuming(conn: &lapin::Connection, queue: &str) {
    for _ in 0..500 {
        let probe = conn.create_channel().await.expect("channel");
        let q = probe
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        if q.is_ok_and(|q| q.consumer_count() > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the consumer did not attach to {queue}");
}

fn settings(exchange: &str, queue: &str) -> ConsumerSettings {
    let mut s = ConsumerSettings::new(SecretString::from(url()), exchange, queue);
    s.retry_delay = Duration::from_millis(10);
    s
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn bad_and_failing_messages_are_dead_lettered_and_good_ones_acked_once() {
    let exchange = unique("test_consume");
    let queue = unique("test_sync_service");
    let conn = connect().await;
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    declare_exchange(&ch, &exchange).await;
    let s = settings(&exchange, &queue);
    let handler = Arc::new(Flaky::default());
    let running = consumer::spawn(s.clone(), handler.clone());
    wait_consuming(&conn, &queue).await;

    // Malformed: not an envelope at all.
    publish(&ch, &exchange, "shard.updated", b"{not json").await;
    let (body, reason) = get_one(&ch, &s.dead_letter_queue)
        .await
        .expect("malformed dead-lettered");
    assert_eq!(body, b"{not json");
    assert!(reason.starts_with("invalid envelope"), "{reason}");
    assert!(
        handler.calls.lock().expect("lock").is_empty(),
        "never reached the handler"
    );

    // The handler keeps failing: retried, then dead-lettered.
    let failing = envelope("shard.updated", json!({"shardId": "s-1", "fail": true}));
    publish(
        &ch,
        &exchange,
        "shard.updated",
        failing.to_string().as_bytes(),
    )
    .await;
    let (body, reason) = get_one(&ch, &s.dead_letter_queue)
        .await
        .expect("failing dead-lettered");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json"),
        failing
    );
    assert!(reason.contains("handler failed 3 times"), "{reason}");
    assert_eq!(handler.calls.lock().expect("lock").len(), 3);

    // A good message is handled and acked exactly once.
    let good = envelope("shard.updated", json!({"shardId": "s-2"}));
    publish(&ch, &exchange, "shard.updated", good.to_string().as_bytes()).await;
    wait_until(|| handler.ok.load(Ordering::SeqCst) == 1).await;
    running.stop().await; // unacked deliveries would go back to the queue now
    assert_eq!(message_count(&ch, &queue).await, 0, "acked, not requeued");
    assert_eq!(message_count(&ch, &s.dead_letter_queue).await, 0);
    let good_id: Uuid = good["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let calls = handler.calls.lock().expect("lock").clone();
    assert_eq!(
        calls.iter().filter(|c| **c == good_id).count(),
        1,
        "handled once"
    );

    for q in [&queue, &s.dead_letter_queue] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn the_default_handler_records_shard_updates_and_rejects_ones_without_a_shard() {
    let app = crate::helpers::TestApp::new().await;
    let exchange = unique("test_record");
    let queue = unique("test_sync_service");
    let conn = connect().await;
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    declare_exchange(&ch, &exchange).await;
    let s = settings(&exchange, &queue);
    let running = consumer::spawn(
        s.clone(),
        Arc::new(RecordingHandler::new(app.state.store.clone())),
    );
    wait_consuming(&conn, &queue).await;

    let good = envelope(
        "shard.updated",
        json!({"id": "shard-9", "shardTypeId": "c_opportunity"}),
    );
    publish(&ch, &exchange, "shard.updated", good.to_string().as_bytes()).await;
    let bad = envelope("shard.updated", json!({"shardTypeId": "c_opportunity"}));
    publish(&ch, &exchange, "shard.updated", bad.to_string().as_bytes()).await;

    let (body, reason) = get_one(&ch, &s.dead_letter_queue)
        .await
        .expect("rejected dead-lettered");
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), bad);
    assert!(reason.starts_with("rejected:"), "{reason}");
    let tenant = good["tenantId"].as_str().expect("tenant").to_owned();
    let id = format!("inbound-{}", good["id"].as_str().expect("id"));
    let mut record = None;
    for _ in 0..250 {
        record = app
            .state
            .store
            .read(
                castiel_integrations::platform::store::Container::Outbox,
                &tenant,
                &id,
            )
            .await
            .expect("read");
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let record = record.expect("recorded");
    assert_eq!(record.body["shardId"], "shard-9");
    assert_eq!(record.body["kind"], "inbound");
    running.stop().await;
    for q in [&queue, &s.dead_letter_queue] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    let _ = conn.close(200, "bye".into()).await;
}
