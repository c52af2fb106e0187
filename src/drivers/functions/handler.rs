//! `handler`: the Azure Functions custom handler (SPEC §2,
//! `docs/functions-protocol.md` §3–§6).
//!
//! The port is bound first and `GET /` answers `{}` at once, while the
//! [`App`](crate::app::App) is built in the background (`docs/functions-protocol.md`
//! §3.3: the host polls `/` every 25 ms and any answer means ready). Then:
//!
//! - `POST /<function-name>` of a registered function is an invocation: the
//!   body is decoded by the trigger adapters and the job runs (waiting for
//!   the App if it is still being built);
//! - every other request is a forwarded HTTP request (`/api/...`, §4.1)
//!   and goes to the same router as `serve`; before the App is ready it
//!   gets 503 with `Retry-After`, never a hang.
//!
//! No timers run here: the host fires them as invocations.

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::app::AppState;
use crate::drivers::functions::{Invoked, Registration, Registry};
use crate::drivers::http;
use crate::drivers::serve::shutdown_signal;

/// The environment variables the host passes the port in (the second is the
/// legacy alias, `docs/functions-protocol.md` §3.1).
pub const PORT_VARS: [&str; 2] = ["FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"];

/// Largest invocation body read (Service Bus Premium messages reach 100 MB,
/// and the host's double encoding adds escapes; `docs/functions-protocol.md` §5.1).
pub const INVOCATION_BODY_LIMIT: usize = 256 * 1024 * 1024;

/// How long an invocation waits for the App to be built before failing
/// (so the host retries it) — never forever.
pub const READY_WAIT: Duration = Duration::from_secs(30);

/// Reads the port the host chose.
pub fn port_from_env() -> anyhow::Result<u16> {
    let (name, value) = PORT_VARS
        .iter()
        .find_map(|k| std::env::var(k).ok().map(|v| (*k, v)))
        .with_context(|| {
            format!(
                "{} is not set: `handler` is started by the Azure Functions host",
                PORT_VARS[0]
            )
        })?;
    value
        .trim()
        .parse()
        .with_context(|| format!("{name}={value:?} is not a port number"))
}

/// Binds `127.0.0.1:<port>` over IPv4, as the host connects (`docs/functions-protocol.md` §3.2).
pub async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))
}

#[derive(Clone)]
enum Phase {
    Starting,
    Ready { state: AppState, router: Router },
}

/// The handler's shared state: the App once built, and the registry.
#[derive(Clone)]
pub struct Handler {
    phase: watch::Receiver<Phase>,
    registry: Arc<Registry>,
}

/// Serves the handler on a bound listener until SIGTERM; `build` makes the
/// App and is retried with back-off until it succeeds.
pub async fn run<B, Fut>(listener: TcpListener, registry: Registry, build: B) -> anyhow::Result<()>
where
    B: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<AppState>> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(Phase::Starting);
    tokio::spawn(build_until_ready(build, tx));
    tracing::info!(%addr, "custom handler listening");
    axum::serve(listener, router(rx, registry))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the custom handler")
}

async fn build_until_ready<B, Fut>(mut build: B, tx: watch::Sender<Phase>)
where
    B: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<AppState>>,
{
    let mut delay = Duration::from_millis(500);
    loop {
        match build().await {
            Ok(state) => {
                let router = http::router(state.clone());
                tx.send_replace(Phase::Ready { state, router });
                tracing::info!("application ready");
                return;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64, "building the application failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn router(phase: watch::Receiver<Phase>, registry: Registry) -> Router {
    Router::new()
        .route("/", get(root))
        .fallback(dispatch)
        .with_state(Handler {
            phase,
            registry: Arc::new(registry),
        })
}

/// The host's readiness probe and health ping: `{}` at once, always.
async fn root() -> Response {
    json_response(StatusCode::OK, Bytes::from_static(b"{}"))
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn problem(status: StatusCode, slug: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("urn:castiel:problem:{slug}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

fn starting() -> Response {
    let mut res = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the service is starting; retry shortly",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// `/<name>` with a single path segment.
fn function_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

async fn dispatch(State(h): State<Handler>, req: Request) -> Response {
    // Forwarded HTTP paths always start with /api/ (routePrefix), so a
    // single-segment POST is an invocation (`docs/functions-protocol.md` §4.3).
    if req.method() == Method::POST
        && let Some(name) = function_name(req.uri().path())
    {
        return match h.registry.get(name) {
            Some(reg) => {
                let reg = reg.clone();
                invoke(h, reg, req).await
            }
            None => unknown_function(req).await,
        };
    }
    forward(&h, req).await
}

/// An invocation of a function this build has no job for: read the body
/// (so the host gets an answer, not a reset connection) and fail it.
async fn unknown_function(req: Request) -> Response {
    let name = function_name(req.uri().path())
        .unwrap_or_default()
        .to_owned();
    tracing::warn!(function = %name, "invocation of an unknown function");
    let _ = axum::body::to_bytes(req.into_body(), INVOCATION_BODY_LIMIT).await;
    problem(
        StatusCode::NOT_FOUND,
        "unknown-function",
        &format!("this handler serves no function named {name:?}"),
    )
}

/// Removes the Functions key (`code`) from a forwarded request's query: it
/// is the host's, was checked by the host, and must neither reach the API's
/// strict query parsing nor any log (`docs/functions-protocol.md` §4.1).
fn strip_function_key(req: &mut Request) {
    let Some(query) = req.uri().query() else {
        return;
    };
    if !query
        .split('&')
        .any(|p| p == "code" || p.starts_with("code="))
    {
        return;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !(p.is_empty() || *p == "code" || p.starts_with("code=")))
        .collect();
    let path = req.uri().path();
    let rebuilt = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    if let Ok(pq) = axum::http::uri::PathAndQuery::try_from(rebuilt) {
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

async fn forward(h: &Handler, mut req: Request) -> Response {
    strip_function_key(&mut req);
    let router = match &*h.phase.borrow() {
        Phase::Ready { router, .. } => router.clone(),
        Phase::Starting => return starting(),
    };
    match router.oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

async fn wait_ready(h: &Handler) -> Option<AppState> {
    let mut rx = h.phase.clone();
    let ready = tokio::time::timeout(
        READY_WAIT,
        rx.wait_for(|p| matches!(p, Phase::Ready { .. })),
    )
    .await
    .ok()?
    .ok()?;
    match &*ready {
        Phase::Ready { state, .. } => Some(state.clone()),
        Phase::Starting => None,
    }
}

async fn invoke(h: Handler, reg: Registration, req: Request<Body>) -> Response {
    let invocation_id = req
        .headers()
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span =
        tracing::info_span!("invocation", function = %reg.name, invocation.id = %invocation_id);
    let body = match axum::body::to_bytes(req.into_body(), INVOCATION_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = format!("{e:#}").contains("length limit");
            return if too_large {
                problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    "the invocation body is too large",
                )
            } else {
                problem(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "the invocation body could not be read",
                )
            };
        }
    };
    let Some(state) = wait_ready(&h).await else {
        return starting();
    };
    let outcome =
        tracing::Instrument::instrument(h.registry.invoke(&state, &reg, &body), span).await;
    match outcome {
        Invoked::Done(reply) => match serde_json::to_vec(&reply) {
            Ok(bytes) => json_response(StatusCode::OK, bytes.into()),
            Err(_) => json_response(StatusCode::OK, Bytes::from_static(b"{}")),
        },
        Invoked::Failed(detail) => {
            problem(StatusCode::INTERNAL_SERVER_ERROR, "job-failed", &detail)
        }
        Invoked::Malformed(e) => {
            tracing::warn!(function = %reg.name, error = %e, "malformed invocation");
            problem(StatusCode::BAD_REQUEST, "bad-invocation", &e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_key_is_removed_from_forwarded_queries() {
        let strip = |uri: &str| {
            let mut req = Request::builder()
                .uri(uri)
                .body(Body::empty())
                .expect("request");
            strip_function_key(&mut req);
            req.uri().to_string()
        };
        assert_eq!(strip("/api/v1/x?code=k&limit=5"), "/api/v1/x?limit=5");
        assert_eq!(strip("/api/v1/x?code=k"), "/api/v1/x");
        assert_eq!(strip("/api/v1/x?codes=1"), "/api/v1/x?codes=1");
        assert_eq!(strip("/api/v1/x"), "/api/v1/x");
    }

    #[test]
    fn function_names_are_single_segments() {
        assert_eq!(function_name("/outbox-relay"), Some("outbox-relay"));
        assert_eq!(function_name("/api/v1/integrations"), None);
        assert_eq!(function_name("/"), None);
    }
}
