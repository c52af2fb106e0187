//! A local server answering in Salesforce REST API's documented formats,
//! for the adapter tests, the sync scenario tests and the sync benchmark.
//! Self-contained (axum, tokio, serde_json, chrono only): include it with
//! `#[path = "../support/salesforce_server.rs"] mod salesforce_server;`.
//!
//! It keeps records per sObject in memory with 18-character ids and a
//! `SystemModstamp`, and serves:
//! - `GET /services/data/vXX.X/query?q=` (the SOQL subset of
//!   [`soql`]; anything else is `400 MALFORMED_QUERY`), batches of 2,000
//!   or `Sforce-Query-Options: batchSize=N` (200–2,000), continued by
//!   `nextRecordsUrl` (`GET /services/data/vXX.X/query/<locator>-<offset>`);
//! - `GET|PATCH /sobjects/{type}/{id}` (`If-Unmodified-Since` → 412),
//!   `POST /sobjects/{type}/`, `GET /sobjects/{type}/describe`, `GET /limits`;
//! - `POST /services/oauth2/token` (client-credentials and refresh-token
//!   grants answering `access_token` and `instance_url`).
//!
//! Every API call needs `Authorization: Bearer <token>` (a token it was
//! told to expire answers `401 INVALID_SESSION_ID`), counts against the
//! daily allowance reported in `Sforce-Limit-Info: api-usage=N/M`, and can
//! be refused with `403 REQUEST_LIMIT_EXCEEDED`.

#![allow(dead_code, reason = "not every test binary uses every helper")]

#[path = "salesforce_server/soql.rs"]
pub mod soql;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Query, State as St};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, DurationRound as _, Utc};
use serde_json::{Map, Value, json};

/// The client id the token endpoint accepts.
pub const CLIENT_ID: &str = "sf-test-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "sf-test-secret-8c2d";

/// Salesforce's timestamp format (`2024-05-01T10:00:00.000+0000`).
pub fn sf_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// One stored record.
#[derive(Debug, Clone)]
pub struct Rec {
    pub id: String,
    pub modstamp: DateTime<Utc>,
    pub fields: Map<String, Value>,
}

#[derive(Default)]
struct SObject {
    prefix: String,
    records: BTreeMap<String, Rec>,
    fields: Vec<String>,
}

struct Locator {
    records: Vec<Value>,
    batch: usize,
}

struct State {
    objects: HashMap<String, SObject>,
    next_id: u64,
    last_stamp: DateTime<Utc>,
    locators: HashMap<String, Locator>,
    next_locator: u64,
    expired: HashSet<String>,
    seen: HashSet<String>,
    issued: u64,
    api_used: u64,
    api_max: u64,
    refuse: bool,
    requests: HashMap<&'static str, usize>,
    records_served: usize,
    queries: Vec<String>,
    base: String,
}

/// The running server; stops when dropped.
pub struct SalesforceServer {
    /// `http://127.0.0.1:<port>`: the instance URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SalesforceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An 18-character id: key prefix, pod, a counter whose text sorts in
/// creation order, and Salesforce's case-safe 3-character suffix.
fn make_id(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 9];
    let mut v = n;
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    let id15 = format!("{prefix}5g0{}", String::from_utf8_lossy(&digits));
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut suffix = String::new();
    for chunk in id15.as_bytes().chunks(5) {
        let mut bits = 0usize;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        suffix.push(table[bits] as char);
    }
    id15 + &suffix
}

fn key_prefix(sobject: &str) -> String {
    match sobject {
        "Account" => "001",
        "Contact" => "003",
        "Opportunity" => "006",
        "Lead" => "00Q",
        _ => "a0B",
    }
    .to_owned()
}

fn errors(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (status, json!([{"message": message, "errorCode": code}]))
}

impl State {
    fn stamp(&mut self, at: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let t = at.unwrap_or_else(|| {
            let now = Utc::now()
                .duration_trunc(Duration::seconds(1))
                .unwrap_or_else(|_| Utc::now());
            now.max(self.last_stamp + Duration::seconds(1))
        });
        self.last_stamp = self.last_stamp.max(t);
        t
    }

    fn object(&mut self, name: &str) -> &mut SObject {
        self.objects
            .entry(name.to_owned())
            .or_insert_with(|| SObject {
                prefix: key_prefix(name),
                records: BTreeMap::new(),
                fields: [
                    "Id",
                    "SystemModstamp",
                    "CreatedDate",
                    "LastModifiedDate",
                    "Name",
                ]
                .map(String::from)
                .to_vec(),
            })
    }

    fn insert(&mut self, sobject: &str, fields: Map<String, Value>, at: DateTime<Utc>) -> String {
        self.next_id += 1;
        let n = self.next_id;
        let o = self.object(sobject);
        let id = make_id(&o.prefix, n);
        for k in fields.keys() {
            if !o.fields.iter().any(|f| f.eq_ignore_ascii_case(k)) {
                o.fields.push(k.clone());
            }
        }
        let mut fields = fields;
        fields.insert("CreatedDate".into(), json!(sf_time(at)));
        o.records.insert(
            id.clone(),
            Rec {
                id: id.clone(),
                modstamp: at,
                fields,
            },
        );
        id
    }

    /// Authorizes and counts one API call.
    fn gate(&mut self, headers: &HeaderMap, kind: &'static str) -> Result<(), (StatusCode, Value)> {
        *self.requests.entry(kind).or_default() += 1;
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() || self.expired.contains(&token) {
            return Err(errors(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            ));
        }
        self.seen.insert(token);
        if self.refuse || self.api_used >= self.api_max {
            return Err(errors(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ));
        }
        self.api_used += 1;
        Ok(())
    }

    fn reply(&self, (status, body): (StatusCode, Value)) -> Response {
        let info = format!("api-usage={}/{}", self.api_used, self.api_max);
        let mut r = if status == StatusCode::NO_CONTENT {
            status.into_response()
        } else {
            (status, axum::Json(body)).into_response()
        };
        if let Ok(v) = info.parse() {
            r.headers_mut().insert("sforce-limit-info", v);
        }
        r
    }

    fn render(&self, v: &str, sobject: &str, rec: &Rec, fields: &[String]) -> Value {
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            json!({"type": sobject, "url": format!("/services/data/{v}/sobjects/{sobject}/{}", rec.id)}),
        );
        for f in fields {
            let mut parts = f.split('.');
            let head = parts.next().unwrap_or_default();
            let rest: Vec<&str> = parts.collect();
            let (key, value) = lookup(rec, head);
            if rest.is_empty() {
                out.insert(key, value);
                continue;
            }
            let entry = out.entry(key).or_insert_with(|| match &value {
                Value::Object(_) => json!({"attributes": {"type": head, "url": format!("/services/data/{v}/sobjects/{head}")}}),
                _ => Value::Null,
            });
            if let (Value::Object(o), Value::Object(src)) = (entry, &value) {
                let leaf = rest.join(".");
                let found = src.iter().find(|(k, _)| k.eq_ignore_ascii_case(&leaf));
                let (k, val) =
                    found.map_or((leaf.clone(), Value::Null), |(k, v)| (k.clone(), v.clone()));
                o.insert(k, val);
            }
        }
        Value::Object(out)
    }
}

/// A field of a record by case-insensitive name: its canonical name and value.
fn lookup(rec: &Rec, name: &str) -> (String, Value) {
    if name.eq_ignore_ascii_case("Id") {
        return ("Id".into(), json!(rec.id));
    }
    if name.eq_ignore_ascii_case("SystemModstamp") {
        return ("SystemModstamp".into(), json!(sf_time(rec.modstamp)));
    }
    if name.eq_ignore_ascii_case("LastModifiedDate") {
        return ("LastModifiedDate".into(), json!(sf_time(rec.modstamp)));
    }
    rec.fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or((name.to_owned(), Value::Null), |(k, v)| {
            (k.clone(), v.clone())
        })
}

fn value_of(rec: &Rec, path: &str) -> Value {
    let mut parts = path.split('.');
    let (_, mut v) = lookup(rec, parts.next().unwrap_or_default());
    for p in parts {
        v = match v {
            Value::Object(o) => o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(p))
                .map_or(Value::Null, |(_, v)| v.clone()),
            _ => Value::Null,
        };
    }
    v
}

fn compare(v: &Value, lit: &soql::Lit) -> Option<std::cmp::Ordering> {
    use soql::Lit;
    match (v, lit) {
        (Value::String(s), Lit::At(t)) => DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
            .ok()
            .map(|x| x.with_timezone(&Utc).cmp(t)),
        (Value::String(s), Lit::Str(l)) => Some(s.as_str().cmp(l.as_str())),
        (Value::Number(n), Lit::Num(l)) => n.as_f64().and_then(|x| x.partial_cmp(l)),
        (Value::Bool(b), Lit::Bool(l)) => Some(b.cmp(l)),
        _ => None,
    }
}

fn matches(rec: &Rec, e: &soql::Expr) -> bool {
    use soql::{Expr, Lit};
    use std::cmp::Ordering::*;
    match e {
        Expr::Or(es) => es.iter().any(|e| matches(rec, e)),
        Expr::And(es) => es.iter().all(|e| matches(rec, e)),
        Expr::Not(e) => !matches(rec, e),
        Expr::Cmp { field, op, lit } => {
            let v = value_of(rec, field);
            if *lit == Lit::Null {
                return (op == "=") == v.is_null();
            }
            let o = compare(&v, lit);
            match op.as_str() {
                "=" => o == Some(Equal),
                "!=" => o != Some(Equal),
                "<" => o == Some(Less),
                ">" => o == Some(Greater),
                "<=" => matches!(o, Some(Less | Equal)),
                ">=" => matches!(o, Some(Greater | Equal)),
                _ => false,
            }
        }
        Expr::In {
            field,
            list,
            negated,
        } => {
            let v = value_of(rec, field);
            list.iter().any(|l| compare(&v, l) == Some(Equal)) != *negated
        }
        Expr::Like { field, pattern } => value_of(rec, field)
            .as_str()
            .is_some_and(|s| soql::like(s, pattern)),
    }
}

fn version_ok(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|d| d.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        })
}

fn not_found() -> (StatusCode, Value) {
    errors(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

type S = St<Arc<Mutex<State>>>;

fn lock(s: &Arc<Mutex<State>>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn batch_size(headers: &HeaderMap) -> usize {
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
        .map_or(2000, |n| n.clamp(200, 2000))
}

fn page(
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

async fn query(
    St(s): S,
    Path(v): Path<String>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
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
    let body = page(&mut s, &v, rendered, 0, batch_size(&headers), None);
    s.reply((StatusCode::OK, body))
}

async fn query_more(
    St(s): S,
    Path((v, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
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

async fn limits(St(s): S, Path(_v): Path<String>, headers: HeaderMap) -> Response {
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

async fn describe(St(s): S, Path((_v, t)): Path<(String, String)>, headers: HeaderMap) -> Response {
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

async fn read(
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

async fn create(
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

async fn update(
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

impl State {
    fn modify(
        &mut self,
        sobject: &str,
        ids: &[String],
        changes: &Map<String, Value>,
        at: DateTime<Utc>,
    ) {
        let o = self.object(sobject);
        for k in changes.keys() {
            if !o.fields.iter().any(|f| f.eq_ignore_ascii_case(k)) {
                o.fields.push(k.clone());
            }
        }
        for id in ids {
            if let Some(r) = o.records.get_mut(id) {
                r.modstamp = at;
                for (k, v) in changes {
                    r.fields.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

async fn token(St(s): S, body: String) -> Response {
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
fn url_form(body: &str) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                if let Ok(b) =
                    u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
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

impl SalesforceServer {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State {
            objects: HashMap::new(),
            next_id: 0,
            last_stamp: DateTime::<Utc>::MIN_UTC,
            locators: HashMap::new(),
            next_locator: 0,
            expired: HashSet::new(),
            seen: HashSet::new(),
            issued: 0,
            api_used: 0,
            api_max: 15_000,
            refuse: false,
            requests: HashMap::new(),
            records_served: 0,
            queries: Vec::new(),
            base: url.clone(),
        }));
        let data = "/services/data/{v}";
        let app = Router::new()
            .route(&format!("{data}/query"), get(query))
            .route(&format!("{data}/query/"), get(query))
            .route(&format!("{data}/query/{{locator}}"), get(query_more))
            .route(&format!("{data}/limits"), get(limits))
            .route(&format!("{data}/sobjects/{{t}}/describe"), get(describe))
            .route(&format!("{data}/sobjects/{{t}}"), post(create))
            .route(&format!("{data}/sobjects/{{t}}/"), post(create))
            .route(
                &format!("{data}/sobjects/{{t}}/{{id}}"),
                get(read).patch(update),
            )
            .route("/services/oauth2/token", post(token))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The token endpoint (`/services/oauth2/token`).
    pub fn token_url(&self) -> String {
        format!("{}/services/oauth2/token", self.url)
    }

    /// Inserts `n` records sharing one new SystemModstamp (as a bulk load
    /// does); `fields(i)` gives the i-th record's fields. Returns their ids.
    pub fn insert(
        &self,
        sobject: &str,
        n: usize,
        fields: impl Fn(usize) -> Map<String, Value>,
    ) -> Vec<String> {
        let mut s = self.lock();
        let at = s.stamp(None);
        (0..n).map(|i| s.insert(sobject, fields(i), at)).collect()
    }

    /// Inserts `n` records stamped `at`.
    pub fn insert_at(
        &self,
        sobject: &str,
        n: usize,
        at: DateTime<Utc>,
        fields: impl Fn(usize) -> Map<String, Value>,
    ) -> Vec<String> {
        let mut s = self.lock();
        let at = s.stamp(Some(at));
        (0..n).map(|i| s.insert(sobject, fields(i), at)).collect()
    }

    /// Changes records, bumping their SystemModstamp to one new instant
    /// (later than any given so far), or to `at` when given.
    pub fn modify(
        &self,
        sobject: &str,
        ids: &[String],
        changes: Map<String, Value>,
        at: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let mut s = self.lock();
        let at = s.stamp(at);
        s.modify(sobject, ids, &changes, at);
        at
    }

    /// A stored record (fields, `Id`, `SystemModstamp`).
    pub fn record(&self, sobject: &str, id: &str) -> Option<Rec> {
        self.lock()
            .objects
            .get(sobject)
            .and_then(|o| o.records.get(id))
            .cloned()
    }

    /// How many records an sObject holds.
    pub fn count(&self, sobject: &str) -> usize {
        self.lock()
            .objects
            .get(sobject)
            .map_or(0, |o| o.records.len())
    }

    /// Calls of a kind so far (`query`, `queryMore`, `get`, `create`, `update`,
    /// `describe`, `limits`, `token`), refused ones included.
    pub fn requests(&self, kind: &str) -> usize {
        self.lock().requests.get(kind).copied().unwrap_or(0)
    }

    /// Records served by queries and reads.
    pub fn records_served(&self) -> usize {
        self.lock().records_served
    }

    /// The SOQL received, in order.
    pub fn queries(&self) -> Vec<String> {
        self.lock().queries.clone()
    }

    /// Expires every token used so far: their next call answers 401.
    pub fn expire_tokens(&self) {
        let mut s = self.lock();
        let seen: Vec<String> = s.seen.iter().cloned().collect();
        s.expired.extend(seen);
    }

    /// Sets the org's daily API usage (`used` of `max`).
    pub fn set_api_usage(&self, used: u64, max: u64) {
        let mut s = self.lock();
        s.api_used = used;
        s.api_max = max;
    }

    /// Answers every API call `403 REQUEST_LIMIT_EXCEEDED` while `on`.
    pub fn refuse_requests(&self, on: bool) {
        self.lock().refuse = on;
    }
}
