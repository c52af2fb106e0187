//! The HTTP handlers, in Salesforce's documented request and answer formats.

use super::eval::matches;
use super::*;

fn version_ok(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|d| d.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        })
}

pub(super) fn not_found() -> (StatusCode, Value) {
    errors(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

pub(super) type S = St<Arc<Mutex<State>>>;

pub(super) fn batch_size(headers: &HeaderMap, default: usize) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|p| {
                p.trim()
                    .strip_prefix("batchSize=")?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
        })
        .map_or(default, |n| n.clamp(200, 2000).min(default))
}

pub(super) fn page(
    s: &mut State,
    v: &str,
    mut records: Vec<Value>,
    offset: usize,
    batch: usize,
    locator: Option<String>,
) -> Value {
    let total = offset + records.len();
    let rest = if records.len() > batch {
        records.split_off(batch)
    } else {
        Vec::new()
    };
    s.records_served += records.len();
    let mut out = json!({"totalSize": total, "done": rest.is_empty(), "records": records});
    if !rest.is_empty() {
        let loc = locator.unwrap_or_else(|| {
            s.next_locator += 1;
            format!("01g5g{:010}AAA", s.next_locator)
        });
        let next = offset + batch;
        out["nextRecordsUrl"] = json!(format!("/services/data/{v}/query/{loc}-{next}"));
        s.locators.insert(
            loc,
            Locator {
                records: rest,
                batch,
            },
        );
    }
    out
}

pub(super) async fn query(
    St(s): S,
    Path(v): Path<String>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let latency = lock(&s).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut s = lock(&s);
    if let Err(e) = s.gate(&headers, "query") {
        return s.reply(e);
    }
    if !version_ok(&v) {
        return s.reply(not_found());
    }
    let q = p.get("q").cloned().unwrap_or_default();
    s.queries.push(q.clone());
    let parsed = match soql::parse(&q) {
        Ok(p) => p,
        Err(m) => return s.reply(errors(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &m)),
    };
    let Some(o) = s.objects.get(&parsed.from) else {
        let m = format!("sObject type '{}' is not supported.", parsed.from);
        return s.reply(errors(StatusCode::BAD_REQUEST, "INVALID_TYPE", &m));
    };
    for f in &parsed.fields {
        let head = f.split('.').next().unwrap_or_default();
        if !o.fields.iter().any(|k| k.eq_ignore_ascii_case(head)) {
            let m = format!("No such column '{f}' on entity '{}'.", parsed.from);
            return s.reply(errors(StatusCode::BAD_REQUEST, "INVALID_FIELD", &m));
        }
    }
    let mut hits: Vec<&Rec> = o
        .records
        .values()
        .filter(|r| parsed.filter.as_ref().is_none_or(|e| matches(r, e)))
        .collect();
    if parsed.ordered {
        hits.sort_by(|a, b| (a.modstamp, &a.id).cmp(&(b.modstamp, &b.id)));
    }
    hits.truncate(parsed.limit.unwrap_or(usize::MAX));
    let rendered: Vec<Value> = hits
        .iter()
        .map(|r| s.render(&v, &parsed.from, r, &parsed.fields))
        .collect();
    let batch = batch_size(&headers, s.default_batch);
    let body = page(&mut s, &v, rendered, 0, batch, None);
    s.reply((StatusCode::OK, body))
}

pub(super) async fn query_more(
    St(s): S,
    Path((v, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let latency = lock(&s).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut s = lock(&s);
    if let Err(e) = s.gate(&headers, "queryMore") {
        return s.reply(e);
    }
    let bad = || {
        errors(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    };
    let Some((loc, offset)) = locator.split_once('-') else {
        return s.reply(bad());
    };
    let (Ok(offset), Some(l)) = (offset.parse::<usize>(), s.locators.remove(loc)) else {
        return s.reply(bad());
    };
    let body = page(&mut s, &v, l.records, offset, l.batch, Some(loc.to_owned()));
    s.reply((StatusCode::OK, body))
}

pub(super) async fn limits(St(s): S, Path(_v): Path<String>, headers: HeaderMap) -> Response {
    let mut s = lock(&s);
    if let Err(e) = s.gate(&headers, "limits") {
        return s.reply(e);
    }
    let body = json!({
        "DailyApiRequests": {"Max": s.api_max, "Remaining": s.api_max.saturating_sub(s.api_used)},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
    });
    s.reply((StatusCode::OK, body))
}

pub(super) async fn describe(
    St(s): S,
    Path((_v, t)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut s = lock(&s);
    if let Err(e) = s.gate(&headers, "describe") {
        return s.reply(e);
    }
    let Some(o) = s.objects.get(&t) else {
        return s.reply(not_found());
    };
    let fields: Vec<Value> = o
        .fields
        .iter()
        .map(|f| {
            let system =
                ["Id", "SystemModstamp", "CreatedDate", "LastModifiedDate"].contains(&f.as_str());
            let kind = match f.as_str() {
                "Id" => "id",
                "SystemModstamp" | "CreatedDate" | "LastModifiedDate" => "datetime",
                _ => "string",
            };
            json!({"name": f, "label": f, "type": kind, "createable": !system,
                   "updateable": !system, "nillable": f != "Name" && !system,
                   "defaultedOnCreate": system})
        })
        .collect();
    s.reply((
        StatusCode::OK,
        json!({"name": t, "label": t, "createable": true, "fields": fields}),
    ))
}

pub(super) async fn read(
    St(s): S,
    Path((v, t, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut s = lock(&s);
    if let Err(e) = s.gate(&headers, "get") {
        return s.reply(e);
    }
    let Some(rec) = s.objects.get(&t).and_then(|o| o.records.get(&id)) else {
        return s.reply(not_found());
    };
    let mut names = vec![
        "Id".to_owned(),
        "SystemModstamp".into(),
        "LastModifiedDate".into(),
    ];
    names.extend(rec.fields.keys().cloned());
    let body = s.render(&v, &t, rec, &names);
    s.records_served += 1;
    s.reply((StatusCode::OK, body))
}

pub(super) async fn create(
    St(s): S,
    Path((_v, t)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut s = lock(&s);
    if let Err(e) = s.gate(&headers, "create") {
        return s.reply(e);
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return s.reply(errors(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body is not a JSON object",
        ));
    };
    let at = s.stamp(None);
    let id = s.insert(&t, fields, at);
    s.reply((
        StatusCode::CREATED,
        json!({"id": id, "success": true, "errors": []}),
    ))
}

pub(super) async fn update(
    St(s): S,
    Path((_v, t, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut s = lock(&s);
    if let Err(e) = s.gate(&headers, "update") {
        return s.reply(e);
    }
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(&body) else {
        return s.reply(errors(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body is not a JSON object",
        ));
    };
    let Some(current) = s
        .objects
        .get(&t)
        .and_then(|o| o.records.get(&id))
        .map(|r| r.modstamp)
    else {
        return s.reply(not_found());
    };
    if let Some(raw) = headers
        .get(header::IF_UNMODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
    {
        let Ok(since) = DateTime::parse_from_rfc2822(raw) else {
            return s.reply(errors(
                StatusCode::BAD_REQUEST,
                "INVALID_HEADER",
                "If-Unmodified-Since is not an HTTP date",
            ));
        };
        if current > since.with_timezone(&Utc) {
            return s.reply(errors(
                StatusCode::PRECONDITION_FAILED,
                "PRECONDITION_FAILED",
                "The requested entity has been modified since the If-Unmodified-Since time.",
            ));
        }
    }
    let at = s.stamp(None);
    s.modify(&t, &[id], &changes, at);
    s.reply((StatusCode::NO_CONTENT, Value::Null))
}

pub(super) async fn token(St(s): S, body: String) -> Response {
    let mut s = lock(&s);
    *s.requests.entry("token").or_default() += 1;
    let form: HashMap<String, String> = url_form(&body);
    let grant = form.get("grant_type").map(String::as_str);
    let client_ok = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !matches!(grant, Some("client_credentials" | "refresh_token")) {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"}))).into_response();
    }
    if !client_ok {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_client", "error_description": "invalid client credentials"}))).into_response();
    }
    s.issued += 1;
    let now = Utc::now().timestamp_millis();
    let body = json!({
        "access_token": format!("00D5g000000TEST!AQ{}.{now}", s.issued),
        "instance_url": s.base,
        "id": format!("{}/id/00D5g000000TESTEAA/0055g000000TESTAAA", s.base),
        "token_type": "Bearer",
        "issued_at": now.to_string(),
        "signature": "c2lnbmF0dXJl",
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `application/x-www-form-urlencoded` pairs.
pub(super) fn url_form(body: &str) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) =
                    u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}
