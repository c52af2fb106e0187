//! Response helpers: JSON bodies with `ETag`, 201 with `Location`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON body with its `ETag` header (quoted, strong).
pub fn with_etag<T: Serialize>(status: StatusCode, etag: &str, body: &T) -> Response {
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// `201 Created` with `Location` and `ETag`.
pub fn created<T: Serialize>(location: &str, etag: &str, body: &T) -> Response {
    let mut res = with_etag(StatusCode::CREATED, etag, body);
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}
