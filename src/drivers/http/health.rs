//! `GET /` (the Functions host's probe), liveness and readiness.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

/// One backend's readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `ok` or `down`.
    pub status: &'static str,
    /// Which implementation answers (`embedded`, `cosmos`, `rabbitmq`, …).
    pub backend: &'static str,
    /// Why it is down (nothing secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when every check is.
    pub status: &'static str,
    /// Per backend.
    pub checks: BTreeMap<&'static str, Check>,
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(health))
        .routes(routes!(health_api))
        .routes(routes!(ready))
        .routes(routes!(ready_api))
}

/// The host's readiness probe: `{}` at once.
#[utoipa::path(get, path = "/", tag = "health", responses((status = 200, description = "Always `{}`")))]
async fn root() -> Json<serde_json::Value> {
    Json(json!({}))
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Liveness)))]
async fn health() -> Json<Liveness> {
    Json(Liveness {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Liveness, on the path a Functions HTTP route gets.
#[utoipa::path(get, path = "/api/health", tag = "health", responses((status = 200, body = Liveness)))]
async fn health_api() -> Json<Liveness> {
    health().await
}

/// Readiness of every backend.
#[utoipa::path(get, path = "/ready", tag = "health", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready(State(app): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let store = app.store.health().await;
    checks.insert(
        "store",
        Check {
            status: status_of(&store),
            backend: store_backend(&app),
            error: store.err().map(|e| hidden("store", &e)),
        },
    );
    let bus = app.events.bus().health().await;
    checks.insert(
        "events",
        Check {
            status: status_of(&bus),
            backend: app.events.bus().name(),
            error: bus.err().map(|e| hidden("events", &e)),
        },
    );
    let queue = app.queue.health().await;
    checks.insert(
        "queue",
        Check {
            status: status_of(&queue),
            backend: app.queue.name(),
            error: queue.err().map(|e| e.to_string()),
        },
    );
    let secrets = app.secrets.health().await;
    checks.insert(
        "secrets",
        Check {
            status: status_of(&secrets),
            backend: app.secrets.name(),
            error: secrets.err().map(|e| hidden("secrets", &e)),
        },
    );
    let shards = app.shards.health().await;
    checks.insert(
        "shards",
        Check {
            status: status_of(&shards),
            backend: app.shards.name(),
            error: shards.err().map(|e| hidden("shards", &e)),
        },
    );
    let all_ok = checks.values().all(|c| c.status == "ok");
    let code = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Readiness {
            status: if all_ok { "ok" } else { "down" },
            checks,
        }),
    )
        .into_response()
}

/// Readiness, on the path a Functions HTTP route gets.
#[utoipa::path(get, path = "/api/ready", tag = "health", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready_api(state: State<AppState>) -> Response {
    ready(state).await
}

/// The probe is public: the cause is logged, the answer only says "down".
fn hidden(check: &str, cause: &dyn std::fmt::Display) -> String {
    tracing::warn!(check, error.cause = %cause, "readiness check failed");
    "does not answer; the cause is in the service log".to_owned()
}

fn status_of<T, E>(r: &Result<T, E>) -> &'static str {
    if r.is_ok() { "ok" } else { "down" }
}

fn store_backend(app: &AppState) -> &'static str {
    match app.config.store {
        crate::config::StoreConfig::Embedded => "embedded",
        crate::config::StoreConfig::Cosmos { .. } => "cosmos",
    }
}
