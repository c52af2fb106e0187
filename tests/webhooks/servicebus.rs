//! Service Bus sends against a local server that checks the documented REST
//! request: URL, SAS `Authorization`, `BrokerProperties`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use castiel_integrations::platform::queue::JobMessage;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Hooks, Receiver, Reply};

const KEY_NAME: &str = "RootManageSharedAccessKey";
const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5MA==";

#[derive(Debug, Clone)]
struct SbRequest {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone)]
struct MockServiceBus {
    base: String,
    got: Arc<Mutex<Vec<SbRequest>>>,
    /// Sends still to refuse with 503 (nothing recorded).
    refuse: Arc<AtomicUsize>,
}

impl MockServiceBus {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<SbRequest>>> = Arc::default();
        let refuse: Arc<AtomicUsize> = Arc::default();
        let sink = got.clone();
        let refusing = refuse.clone();
        let app = Router::new().fallback(move |req: Request<Body>| {
            let sink = sink.clone();
            let refusing = refusing.clone();
            async move {
                let refused =
                    refusing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                if refused.is_ok() {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                let method = req.method().to_string();
                let path = req.uri().path().to_owned();
                let headers = req.headers().clone();
                let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                    .await
                    .unwrap_or_default();
                sink.lock().expect("lock").push(SbRequest {
                    method,
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                StatusCode::CREATED.into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}/"),
            got,
            refuse,
        }
    }
    fn got(&self) -> Vec<SbRequest> {
        self.got.lock().expect("lock").clone()
    }
}

/// A local Service Bus and the app wired to it (`QUEUE=servicebus`).
async fn on_service_bus() -> (MockServiceBus, Hooks) {
    let sb = MockServiceBus::start().await;
    let h = Hooks::with(&[
        ("QUEUE", "servicebus"),
        ("SERVICEBUS_CONNECTION", &connection()),
        ("SERVICEBUS_ENDPOINT", &sb.base),
    ])
    .await;
    (sb, h)
}

fn connection() -> String {
    format!(
        "Endpoint=sb://castiel-test.servicebus.windows.net/;SharedAccessKeyName={KEY_NAME};SharedAccessKey={KEY}"
    )
}

/// Checks one send per Microsoft's REST reference and SAS algorithm;
/// returns the BrokerProperties.
fn check_send(r: &SbRequest, base: &str) -> Value {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/webhook-deliveries/messages");
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let auth = r
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .expect("authorization");
    let fields = auth
        .strip_prefix("SharedAccessSignature ")
        .expect("SAS scheme");
    let mut parts = std::collections::HashMap::new();
    for kv in fields.split('&') {
        let (k, v) = kv.split_once('=').expect("k=v");
        parts.insert(k, v);
    }
    let resource = format!("{base}webhook-deliveries");
    let encoded: String = url::form_urlencoded::byte_serialize(resource.as_bytes()).collect();
    assert_eq!(parts["sr"], encoded);
    assert_eq!(parts["skn"], KEY_NAME);
    let se: i64 = parts["se"].parse().expect("se");
    let now = chrono::Utc::now().timestamp();
    assert!(se > now && se <= now + 3700, "expiry within the hour");
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).expect("key");
    mac.update(format!("{encoded}\n{se}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sig: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    assert_eq!(parts["sig"], sig, "signature per the documented algorithm");
    let props = r
        .headers
        .get("brokerproperties")
        .and_then(|v| v.to_str().ok())
        .expect("BrokerProperties");
    serde_json::from_str(props).expect("BrokerProperties is JSON")
}

#[tokio::test]
async fn deliveries_and_scheduled_retries_go_to_service_bus() {
    let (sb, h) = on_service_bus().await;
    assert_eq!(h.state.queue.name(), "servicebus");
    let rx = Receiver::start().await;
    rx.script([Reply::status(500)]);
    let w = h.webhook(&rx.url("/hook"), &["*"]).await;
    h.integration("A").await;
    let sent = sb.got();
    assert_eq!(sent.len(), 1);
    let props = check_send(&sent[0], &sb.base);
    let msg: JobMessage = serde_json::from_str(&sent[0].body).expect("job message");
    let JobMessage::WebhookDelivery {
        delivery_id,
        attempt,
        ..
    } = msg.clone()
    else {
        panic!("a webhook delivery job, got {msg:?}");
    };
    assert_eq!(attempt, 0);
    assert_eq!(props["MessageId"], format!("{delivery_id}:0"));
    assert!(
        props.get("ScheduledEnqueueTimeUtc").is_none(),
        "the first attempt is immediate"
    );
    let body: Value = serde_json::from_str(&sent[0].body).expect("json");
    assert_eq!(body["type"], "webhookDelivery");
    // What the Functions trigger does with it: the same entry point as `serve`.
    castiel_integrations::app::jobs::run(&h.state, msg, 1, None)
        .await
        .expect("job");
    assert_eq!(rx.count(), 1);
    let sent = sb.got();
    assert_eq!(sent.len(), 2, "the retry is a scheduled message");
    let props = check_send(&sent[1], &sb.base);
    assert_eq!(props["MessageId"], format!("{delivery_id}:1"));
    let at = props["ScheduledEnqueueTimeUtc"]
        .as_str()
        .expect("scheduled");
    assert!(at.ends_with(" GMT"), "{at}");
    let t = chrono::NaiveDateTime::parse_from_str(at, "%a, %d %b %Y %H:%M:%S GMT")
        .expect("RFC 1123 date");
    let wait = t.and_utc().timestamp() - chrono::Utc::now().timestamp();
    assert!((2..=8).contains(&wait), "about 5 s later: {wait}");
    let d = h
        .delivery(w["id"].as_str().expect("id"), &delivery_id.to_string())
        .await;
    assert_eq!(d["status"], "pending");
    assert_eq!(json!(d["attemptCount"]), json!(1));
}

#[tokio::test]
async fn connection_strings_are_checked() {
    use castiel_integrations::config::QueueConfig;
    use castiel_integrations::platform::queue::servicebus::ServiceBusQueue;
    for bad in [
        "Endpoint=sb://x/;SharedAccessKeyName=a",
        "SharedAccessKey=k",
        "garbage",
    ] {
        let cfg = QueueConfig::ServiceBus {
            namespace: None,
            connection: Some(bad.to_owned().into()),
            endpoint: None,
        };
        let err = ServiceBusQueue::from_config(&cfg).expect_err(bad);
        assert!(!err.to_string().contains("k\""), "{err}");
    }
}

/// In `handler` mode nothing but the `webhook-redrive` timer re-drives a
/// delivery whose first enqueue failed: Service Bus refuses the send, the
/// delivery stays pending, and once the timer function runs (through the
/// production registry, as the host would invoke it) its job is on the
/// queue and the Functions trigger delivers it.
#[tokio::test]
async fn handler_mode_redrive_re_drives_a_delivery_whose_enqueue_failed() {
    use castiel_integrations::drivers::functions::production::production;
    use castiel_integrations::drivers::functions::registry::Invoked;
    let (sb, h) = on_service_bus().await;
    let rx = Receiver::start().await;
    h.webhook(&rx.url("/hook"), &["*"]).await;
    sb.refuse.store(1, Ordering::SeqCst);
    h.integration("A").await;
    assert!(sb.got().is_empty(), "the first enqueue was refused");
    h.clock.advance(chrono::Duration::minutes(5));

    let registry = production();
    let invoke = |name: &'static str, body: Value| {
        let (registry, state) = (registry.clone(), h.state.clone());
        async move {
            let reg = registry.get(name).expect("registered").clone();
            let body = serde_json::to_vec(&body).expect("body");
            registry.invoke(&state, &reg, &body).await
        }
    };
    let timer = json!({"Data":{"timer":{"Schedule":{},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}});
    let swept = invoke("webhook-redrive", timer).await;
    assert!(matches!(swept, Invoked::Done(_)), "{swept:?}");
    let sent = sb.got();
    assert_eq!(sent.len(), 1, "the re-drive enqueued the lost attempt");
    check_send(&sent[0], &sb.base);

    let msg = json!({"Data":{"msg": sent[0].body},"Metadata":{"DeliveryCount":"1","MessageId":"\"m-1\""}});
    let ran = invoke("webhook-delivery", msg).await;
    assert!(matches!(ran, Invoked::Done(_)), "{ran:?}");
    assert_eq!(rx.count(), 1, "delivered once the re-drive ran");
}
