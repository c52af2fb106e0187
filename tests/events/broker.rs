//! Test-side broker access: a consumer on its own queue bound to a unique exchange.

#![allow(dead_code, reason = "not every test uses every helper")]

use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use serde_json::Value;
use uuid::Uuid;

/// The live broker.
pub fn url() -> String {
    std::env::var("CASTIEL_TEST_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A URL where nothing listens (a port just released).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
}

/// A unique name with a readable prefix.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::new_v4().simple())
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub kind: Option<String>,
    pub app_id: Option<String>,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
    pub headers: FieldTable,
    pub body: Value,
}

impl Received {
    /// A string header.
    pub fn header(&self, name: &str) -> Option<String> {
        match self.headers.inner().get(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        }
    }
}

/// A connection with a queue bound to everything on an exchange.
pub struct Tap {
    pub conn: Connection,
    pub channel: Channel,
    pub exchange: String,
    pub queue: String,
    consumer: Consumer,
}

/// Connects to the live broker.
pub async fn connect() -> Connection {
    Connection::connect(&url(), ConnectionProperties::default())
        .await
        .expect("the test broker must run on 127.0.0.1:5672 (rabbitmq-server -detached)")
}

/// Declares a durable topic exchange (same arguments as the service).
pub async fn declare_exchange(channel: &Channel, exchange: &str) {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare exchange");
}

impl Tap {
    /// Binds a fresh queue to `exchange` for every routing key.
    pub async fn on(exchange: &str) -> Self {
        let conn = connect().await;
        let channel = conn.create_channel().await.expect("channel");
        declare_exchange(&channel, exchange).await;
        let queue = unique("test_tap");
        channel
            .queue_declare(
                queue.as_str().into(),
                // Gone with the connection, even when a test fails midway.
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare queue");
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "test-tap".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        Self {
            conn,
            channel,
            exchange: exchange.into(),
            queue,
            consumer,
        }
    }

    /// The next message, or `None` after `wait` of silence.
    pub async fn next(&mut self, wait: Duration) -> Option<Received> {
        let d = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??;
        let d = d.expect("delivery");
        d.ack(BasicAckOptions::default()).await.expect("ack");
        let p = &d.properties;
        Some(Received {
            routing_key: d.routing_key.as_str().to_owned(),
            message_id: p.message_id().as_ref().map(|s| s.as_str().to_owned()),
            kind: p.kind().as_ref().map(|s| s.as_str().to_owned()),
            app_id: p.app_id().as_ref().map(|s| s.as_str().to_owned()),
            content_type: p.content_type().as_ref().map(|s| s.as_str().to_owned()),
            delivery_mode: *p.delivery_mode(),
            headers: p.headers().clone().unwrap_or_default(),
            body: serde_json::from_slice(&d.data).unwrap_or(Value::Null),
        })
    }

    /// Collects until `count` messages arrived or `silence` passes without one.
    pub async fn collect(&mut self, count: usize, silence: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        while out.len() < count {
            match self.next(silence).await {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    /// Deletes the queue and the exchange.
    pub async fn cleanup(self) {
        let _ = self
            .channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.conn.close(200, "bye".into()).await;
    }
}

/// Waits until the app's bus reports healthy.
pub async fn wait_bus(state: &castiel_integrations::app::AppState) {
    for _ in 0..500 {
        if state.events.bus().health().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the event bus did not connect to the broker");
}
