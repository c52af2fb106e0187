//! Reads and writes of one record of the local custom API.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Shared, stamp};
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "Not Found"})),
    )
        .into_response()
}

pub(super) async fn read(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    match s.lock().records.iter().find(|r| r["id"] == id.as_str()) {
        Some(r) => axum::Json(Value::Object(r.clone())).into_response(),
        None => not_found(),
    }
}

pub(super) async fn update(
    State(s): State<Shared>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Map<String, Value>>,
) -> Response {
    let mut inner = s.lock();
    let Some(r) = inner.records.iter_mut().find(|r| r["id"] == id.as_str()) else {
        return not_found();
    };
    for (k, v) in body {
        if k != "id" {
            r.insert(k, v);
        }
    }
    stamp(r, Utc::now());
    axum::Json(Value::Object(r.clone())).into_response()
}

pub(super) async fn create(
    State(s): State<Shared>,
    axum::Json(body): axum::Json<Map<String, Value>>,
) -> Response {
    let mut inner = s.lock();
    let mut r = body;
    let id = format!("new-{}", inner.records.len() + 1);
    r.insert("id".into(), json!(id));
    stamp(&mut r, Utc::now());
    inner.records.push(r.clone());
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("{}/v1/items/{id}", s.origin))],
        axum::Json(Value::Object(r)),
    )
        .into_response()
}
