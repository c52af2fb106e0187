//! The webhook test harness: the real app on a manual clock (jobs run by
//! `run_due`, so retries need no real waiting) and a real local receiver.
//! The app's store is the one `TEST_STORE` selects (`support/stores.rs`).

#![allow(dead_code, reason = "not every test uses every helper")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use castiel_integrations::app;
use castiel_integrations::app::AppState;
use castiel_integrations::clock::{Clock, ManualClock};
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::drivers::serve::workers::run_due;
use castiel_integrations::platform::store::Store;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use uuid::Uuid;

#[path = "../support/answer.rs"]
mod answer;
pub use answer::Answer;

/// Secret of test tokens.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Captured {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            delay: Duration::ZERO,
            body: format!("answer {status}"),
        }
    }
    pub fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.to_owned()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Captured>>,
    script: Mutex<VecDeque<Reply>>,
    default_delay: Mutex<Duration>,
}

/// A real HTTP receiver on 127.0.0.1:0.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<ReceiverState>>,
    req: Request<Body>,
) -> Response {
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let reply = state.script.lock().expect("lock").pop_front();
    let default_delay = *state.default_delay.lock().expect("lock");
    state.got.lock().expect("lock").push(Captured {
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = reply.unwrap_or_else(|| Reply::status(200).delay(default_delay));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut res = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (k, v) in reply.headers {
        res.headers_mut().insert(k, v.parse().expect("header"));
    }
    res
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }
    pub fn set_default_delay(&self, d: Duration) {
        *self.state.default_delay.lock().expect("lock") = d;
    }
    pub fn got(&self) -> Vec<Captured> {
        self.state.got.lock().expect("lock").clone()
    }
    pub fn count(&self) -> usize {
        self.state.got.lock().expect("lock").len()
    }
}

/// The app on a manual clock, with its router.
pub struct Hooks {
    pub state: AppState,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub tenant: Uuid,
    pub token: String,
}

impl Hooks {
    pub async fn with(extra: &[(&str, &str)]) -> Self {
        Self::wrapped(extra, |s| s).await
    }

    /// [`Hooks::with`], the store wrapped by `wrap` (fault injection).
    pub async fn wrapped(
        extra: &[(&str, &str)],
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_string_lossy().into_owned();
        let mut pairs: Vec<(&str, &str)> = vec![
            ("DATA_DIR", &data_dir),
            ("JWT_SECRET", JWT_SECRET),
            ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.1/32"),
            ("WEBHOOK_TIMEOUT_SECONDS", "2"),
        ];
        pairs.extend_from_slice(extra);
        let config = Config::from_pairs(&pairs).expect("config");
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        // The store of TEST_STORE; the job queue stays the embedded one in
        // DATA_DIR (Service Bus has its own tests: servicebus.rs).
        let store = wrap(crate::stores::test_store(dir.path(), dyn_clock.clone()).await);
        let state = app::wiring::build_with(config, store, dyn_clock)
            .await
            .expect("build");
        let router = castiel_integrations::drivers::http::router(state.clone());
        let tenant = Uuid::new_v4();
        let token = state
            .tokens
            .mint(TenantId(tenant), Some("user-1"), false, 3600);
        Self {
            state,
            router,
            clock,
            dir,
            tenant,
            token,
        }
    }

    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    pub fn token_for(&self, tenant: Uuid) -> String {
        self.state
            .tokens
            .mint(TenantId(tenant), Some("user-2"), false, 3600)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send_as(&self.token.clone(), method, path, body).await
    }

    pub async fn send_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        Answer::read(self.router.clone().oneshot(req).await.expect("infallible")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn post_empty(&self, path: &str) -> Answer {
        self.send(Method::POST, path, None).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// Creates a webhook to `url` for `events`; returns its body (with secret).
    pub async fn webhook(&self, url: &str, events: &[&str]) -> Value {
        let a = self
            .post("/api/v1/webhooks", json!({"url": url, "events": events}))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body
    }

    /// Creates an integration (raises `integration.created`).
    pub async fn integration(&self, name: &str) -> Value {
        let a = self
            .post(
                "/api/v1/integrations",
                json!({"providerId": "salesforce", "name": name}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body
    }

    /// Runs every due job.
    pub async fn run_jobs(&self) -> usize {
        run_due(&self.state).await.expect("run jobs")
    }

    /// Moves time and runs what became due.
    pub async fn advance(&self, secs: i64) -> usize {
        self.clock.advance(chrono::Duration::seconds(secs));
        self.run_jobs().await
    }

    pub async fn deliveries(&self, webhook: &str) -> Vec<Value> {
        let a = self
            .get(&format!("/api/v1/webhooks/{webhook}/deliveries"))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body["items"].as_array().cloned().unwrap_or_default()
    }

    pub async fn delivery(&self, webhook: &str, id: &str) -> Value {
        let a = self
            .get(&format!("/api/v1/webhooks/{webhook}/deliveries/{id}"))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    }
}

/// Verifies captured deliveries with the official Standard Webhooks library
/// (PyPI `standardwebhooks`): each entry must verify with at least one of
/// `secrets`; returns, per delivery, which secrets verified it.
pub fn verify_with_standardwebhooks(got: &[Captured], secrets: &[&str]) -> Vec<Vec<bool>> {
    let python = std::env::var("CASTIEL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let cases: Vec<Value> = got
        .iter()
        .map(|c| {
            json!({
                "body": c.body,
                "headers": {
                    "webhook-id": c.header("webhook-id"),
                    "webhook-timestamp": c.header("webhook-timestamp"),
                    "webhook-signature": c.header("webhook-signature"),
                }
            })
        })
        .collect();
    let input = json!({"secrets": secrets, "cases": cases}).to_string();
    let script = r#"
import json, sys
try:
    from standardwebhooks import Webhook
except ImportError:
    print("MISSING: the Python package `standardwebhooks` is not installed (pip install standardwebhooks)", file=sys.stderr)
    sys.exit(3)
data = json.load(sys.stdin)
out = []
for case in data["cases"]:
    row = []
    for s in data["secrets"]:
        try:
            Webhook(s).verify(case["body"], case["headers"])
            row.append(True)
        except Exception:
            row.append(False)
    out.append(row)
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (set CASTIEL_TEST_PYTHON): {e}"));
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the Standard Webhooks verifier failed ({python}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("verifier output")
}

impl Hooks {
    /// The app's current time.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
