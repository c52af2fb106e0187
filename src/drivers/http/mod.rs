//! The HTTP API: one router for `serve` and for the Functions handler.

pub mod auth;
pub mod catalog;
pub mod connections;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod integrations;
pub mod json;
pub mod mappings;
pub mod openapi;
pub mod respond;
pub mod server;
pub mod shards;
pub mod sync_runs;
pub mod sync_tasks;
pub mod webhooks;

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use self::error::ApiError;
use crate::app::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(title = "castiel-integrations", description = "Castiel's integration hub: provider catalog, tenants' integrations, outbound webhooks and events."),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Probes"),
        (name = "catalog", description = "Provider catalog"),
        (name = "integrations", description = "Tenants' integrations"),
        (name = "webhooks", description = "Outbound webhooks and their deliveries"),
        (name = "sync", description = "Sync tasks and their executions"),
        (name = "admin", description = "Super-admin operations"),
        (name = "shards", description = "The local shard store (standalone mode)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(catalog::router())
        .merge(integrations::router())
        .merge(mappings::router())
        .merge(connections::router())
        .merge(webhooks::router())
        .merge(shards::router())
        .merge(sync_runs::router())
        .merge(sync_tasks::router())
}

/// The OpenAPI 3.1 document, generated from the routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().split_for_parts().1;
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi::apply(&mut doc);
    openapi::optional_body(&mut doc, "/api/v1/webhooks/{id}/rotate-secret", "post");
    doc
}

fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| openapi().to_pretty_json().unwrap_or_else(|_| "{}".into()))
}

async fn serve_openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi_json(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// The whole HTTP API with its middleware.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api().split_for_parts();
    routes
        .route("/api/v1/openapi.json", get(serve_openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request.id = %id)
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _span: &Span| {
                    let status = res.status().as_u16();
                    let ms = latency.as_secs_f64() * 1000.0;
                    if status >= 500 {
                        tracing::warn!(status, duration_ms = ms, "request failed");
                    } else {
                        tracing::debug!(status, duration_ms = ms, "request finished");
                    }
                })
                // The line above already reports a 5xx once (and its cause
                // was logged where it happened); the default would add an
                // ERROR line per 503 of `/ready` while a dependency is down.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
        .with_state(state)
}
