//! The bare axum baseline: the same routes as the benchmarked service
//! answered with no auth, no store and no middleware.
//!
//! - `GET /health` → a fixed liveness JSON;
//! - `GET /api/v1/integrations/{id}` → the fixed JSON in `BASELINE_GET_BODY`;
//! - `POST /api/v1/integrations` → `201` echoing the parsed JSON body.
//!
//! Listens on `127.0.0.1:$PORT`. It allocates with mimalloc, as the
//! service does (src/main.rs), so that the ratios compare the work done and
//! not two allocators. (Until issue 23 it kept glibc's malloc, on which issue
//! 2's targets had been set.)

/// The service's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3027);
    let body: &'static str = Box::leak(
        std::env::var("BASELINE_GET_BODY")
            .unwrap_or_else(|_| r#"{"id":"x","name":"baseline"}"#.into())
            .into_boxed_str(),
    );
    let app =
        Router::new()
            .route(
                "/health",
                get(|| async { Json(json!({"status": "ok", "version": "0.0.0"})) }),
            )
            .route(
                "/api/v1/integrations/{id}",
                get(move |Path(_id): Path<String>| async move {
                    ([(header::CONTENT_TYPE, "application/json")], body)
                }),
            )
            .route(
                "/api/v1/integrations",
                post(|Json(v): Json<Value>| async move {
                    (StatusCode::CREATED, Json(v)).into_response()
                }),
            );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}
