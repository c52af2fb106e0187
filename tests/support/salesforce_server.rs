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

#[path = "salesforce_server/eval.rs"]
mod eval;
#[path = "salesforce_server/handlers.rs"]
mod handlers;
#[path = "salesforce_server/soql.rs"]
pub mod soql;

use eval::lookup;
use handlers::{create, describe, limits, query, query_more, read, token, update};

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
    /// How long each query and queryMore call waits before answering.
    latency: std::time::Duration,
    /// Records per query batch when the client asks for none (Salesforce's
    /// 2,000; it may send fewer, as its documentation warns).
    default_batch: usize,
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

/// The state, even after a handler panicked.
fn lock(s: &Arc<Mutex<State>>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
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
            latency: std::time::Duration::ZERO,
            default_batch: 2000,
        }));
        {
            // Every org has the standard objects, records or not.
            let mut s = lock(&state);
            let standard: [(&str, &[&str]); 4] = [
                ("Account", &["Industry", "Type", "OwnerId", "AnnualRevenue"]),
                (
                    "Contact",
                    &[
                        "FirstName",
                        "LastName",
                        "Email",
                        "Phone",
                        "Title",
                        "AccountId",
                        "OwnerId",
                    ],
                ),
                (
                    "Lead",
                    &[
                        "FirstName",
                        "LastName",
                        "Email",
                        "Company",
                        "Status",
                        "OwnerId",
                    ],
                ),
                (
                    "Opportunity",
                    &[
                        "Amount",
                        "StageName",
                        "CloseDate",
                        "Probability",
                        "IsClosed",
                        "IsWon",
                        "AccountId",
                        "OwnerId",
                        "Type",
                        "LastActivityDate",
                        "ForecastCategory",
                    ],
                ),
            ];
            for (name, fields) in standard {
                let o = s.object(name);
                for f in fields {
                    if !o.fields.iter().any(|x| x == f) {
                        o.fields.push((*f).to_owned());
                    }
                }
            }
        }
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
        changes: &Map<String, Value>,
        at: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let mut s = self.lock();
        let at = s.stamp(at);
        s.modify(sobject, ids, changes, at);
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

    /// Makes each query and queryMore call wait `latency` before answering
    /// (a slow org, so a test can act while a run is between pages).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.lock().latency = latency;
    }

    /// Sends at most `n` records per query batch (Salesforce may send fewer
    /// than asked for).
    pub fn set_batch_size(&self, n: usize) {
        self.lock().default_batch = n.max(1);
    }

    /// Answers every API call `403 REQUEST_LIMIT_EXCEEDED` while `on`.
    pub fn refuse_requests(&self, on: bool) {
        self.lock().refuse = on;
    }
}
