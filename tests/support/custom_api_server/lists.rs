//! The list routes of the local custom API, one per pagination type (see
//! the table in `custom_api_server.rs`), plus the failing ones.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Shared;
type Params = Query<HashMap<String, String>>;

/// The records changed at or after `updated_since`, in id order.
fn selected(s: &Shared, q: &HashMap<String, String>) -> Result<Vec<Value>, Box<Response>> {
    let since = match q.get("updated_since") {
        None => None,
        Some(t) => match DateTime::parse_from_rfc3339(t) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                return Err(Box::new(
                    (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"message": "updated_since must be RFC 3339"})),
                    )
                        .into_response(),
                ));
            }
        },
    };
    Ok(s.lock()
        .records
        .iter()
        .filter(|r| {
            since.is_none_or(|since| {
                r["updated_at"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t >= since)
            })
        })
        .map(|r| Value::Object(r.clone()))
        .collect())
}

fn number(q: &HashMap<String, String>, name: &str, default: usize) -> usize {
    q.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn slice(all: &[Value], from: usize, n: usize) -> Vec<Value> {
    all.iter().skip(from).take(n).cloned().collect()
}

pub(super) async fn all(State(s): State<Shared>, Query(q): Params) -> Response {
    match selected(&s, &q) {
        Ok(all) => axum::Json(json!({"data": all})).into_response(),
        Err(e) => *e,
    }
}

pub(super) async fn pages(State(s): State<Shared>, Query(q): Params) -> Response {
    let all = match selected(&s, &q) {
        Ok(a) => a,
        Err(e) => return *e,
    };
    let page = number(&q, "page", 1).max(1);
    let per = number(&q, "per_page", 5).max(1);
    axum::Json(json!({"data": slice(&all, (page - 1) * per, per), "page": page})).into_response()
}

pub(super) async fn offset(State(s): State<Shared>, Query(q): Params) -> Response {
    let all = match selected(&s, &q) {
        Ok(a) => a,
        Err(e) => return *e,
    };
    let from = number(&q, "offset", 0);
    let limit = number(&q, "limit", 5).max(1);
    axum::Json(json!({"items": slice(&all, from, limit), "total": all.len()})).into_response()
}

pub(super) async fn cursor(State(s): State<Shared>, Query(q): Params) -> Response {
    let all = match selected(&s, &q) {
        Ok(a) => a,
        Err(e) => return *e,
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let from = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match b64
            .decode(c)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|t| t.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        {
            Some(n) => n,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"ok": false, "error": "invalid_cursor"})),
                )
                    .into_response();
            }
        },
    };
    let limit = number(&q, "limit", 5).max(1);
    let next = if from + limit < all.len() {
        b64.encode(format!("offset:{}", from + limit))
    } else {
        String::new()
    };
    axum::Json(json!({"ok": true, "members": slice(&all, from, limit),
                      "response_metadata": {"next_cursor": next}}))
    .into_response()
}

fn drf_page(s: &Shared, q: &HashMap<String, String>, next_origin: &str, path: &str) -> Response {
    let all = match selected(s, q) {
        Ok(a) => a,
        Err(e) => return *e,
    };
    let page = number(q, "page", 1).max(1);
    let per = 5;
    let link = |p: usize| {
        let mut u = url::Url::parse(&format!("{next_origin}{path}")).expect("url");
        {
            let mut pairs = u.query_pairs_mut();
            for (k, v) in q.iter().filter(|(k, _)| *k != "page") {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("page", &p.to_string());
        }
        u.to_string()
    };
    let next = (page * per < all.len()).then(|| link(page + 1));
    let previous = (page > 1).then(|| link(page - 1));
    axum::Json(
        json!({"count": all.len(), "next": next, "previous": previous,
                      "results": slice(&all, (page - 1) * per, per)}),
    )
    .into_response()
}

pub(super) async fn next(State(s): State<Shared>, Query(q): Params) -> Response {
    drf_page(&s, &q, &s.origin, "/v1/next")
}

pub(super) async fn foreign(State(s): State<Shared>, Query(q): Params) -> Response {
    drf_page(&s, &q, &s.other_origin, "/v1/next")
}

pub(super) async fn link(State(s): State<Shared>, Query(q): Params) -> Response {
    let all = match selected(&s, &q) {
        Ok(a) => a,
        Err(e) => return *e,
    };
    let page = number(&q, "page", 1).max(1);
    let per = number(&q, "per_page", 5).max(1);
    let last = all.len().div_ceil(per).max(1);
    let url = |p: usize| {
        let mut u = url::Url::parse(&format!("{}/v1/link", s.origin)).expect("url");
        {
            let mut pairs = u.query_pairs_mut();
            for (k, v) in q.iter().filter(|(k, _)| *k != "page") {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("page", &p.to_string());
        }
        u.to_string()
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url(1)));
        links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
    }
    let mut resp = axum::Json(Value::Array(slice(&all, (page - 1) * per, per))).into_response();
    if !links.is_empty() {
        resp.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&links.join(", ")).expect("header"),
        );
    }
    resp
}

pub(super) async fn broken() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(r#"{"data": [{"id": "a"}"#),
    )
        .into_response()
}

pub(super) async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        code,
        axum::Json(json!({"message": format!("status {code} as asked")})),
    )
        .into_response();
    if code == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
    }
    resp
}
