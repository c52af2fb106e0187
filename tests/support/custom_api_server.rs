//! A local REST API standing in for a tenant's own API (SPEC §9.6): one
//! dataset of records (`id`, `number`, `name`, `amount`, `updated_at` as RFC
//! 3339 text, `updated_unix` as unix seconds), served through one route per
//! pagination type, each shaped after a public API that pages that way:
//!
//! | route | pagination | shaped after |
//! |---|---|---|
//! | `GET /v1/all` | none | `{"data": [...]}` |
//! | `GET /v1/pages?page=&per_page=` | page | `{"data": [...]}`, pages from 1 |
//! | `GET /v1/offset?offset=&limit=` | offset | `{"items": [...], "total": n}` |
//! | `GET /v1/cursor?cursor=&limit=` | cursor | Slack's `{"ok", "members", "response_metadata": {"next_cursor"}}`, `""` at the end |
//! | `GET /v1/next?page=` | next_url | Django REST framework's `{"count", "next", "previous", "results"}` |
//! | `GET /v1/link?page=&per_page=` | link_header | GitHub's array body with `Link: <…>; rel="next", <…>; rel="last"` |
//!
//! Every list route takes `updated_since` (RFC 3339; records changed at or
//! after it) and lists in id order; the page size defaults to 5. Also:
//! `GET|PATCH /v1/items/{id}`, `POST /v1/items`, `GET /v1/health`,
//! `GET /v1/foreign` (a next link to another origin), `GET /v1/broken` (not
//! JSON), `GET /v1/status/{code}` (that status, with `Retry-After: 7` on
//! 429), and `POST /oauth/token` (RFC 6749 §4.4 client credentials, client
//! authentication by Basic header or form body). Every request to `/v1` is
//! checked against the configured [`Auth`] (401 `{"message": "Bad
//! credentials"}` otherwise) and recorded, with its arrival time, so tests
//! can count and time calls.

#![allow(dead_code, reason = "not every test binary uses every helper")]

#[path = "custom_api_server/items.rs"]
mod items;
#[path = "custom_api_server/lists.rs"]
mod lists;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value, json};

/// Records in the dataset.
pub const RECORDS: usize = 23;

/// The id of the record whose id needs escaping in a path.
pub const AWKWARD_ID: &str = "rec 07/ü?#%";

/// The client the token endpoint knows.
pub const CLIENT_ID: &str = "custom-api-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "custom-api-secret-81c2";

/// The pagination types [`list_call`] describes ("page without a size"
/// is `page` ending at an empty page).
pub const PAGINATION_TYPES: [&str; 7] = [
    "none",
    "page",
    "page without a size",
    "offset",
    "cursor",
    "next_url",
    "link_header",
];

/// A `customApi` list call (`entities[].list`) for this API's route of a
/// pagination type (see [`PAGINATION_TYPES`]), ids in `id`.
pub fn list_call(kind: &str) -> Value {
    match kind {
        "none" => json!({"path": "/all", "recordsPointer": "/data", "idField": "id",
                         "pagination": {"type": "none"}}),
        "page" => json!({"path": "/pages", "recordsPointer": "/data", "idField": "id",
                         "pagination": {"type": "page", "pageParam": "page", "sizeParam": "per_page", "pageSize": 5}}),
        "page without a size" => {
            json!({"path": "/pages", "recordsPointer": "/data", "idField": "id",
                         "pagination": {"type": "page", "pageParam": "page"}})
        }
        "offset" => json!({"path": "/offset", "recordsPointer": "/items", "idField": "id",
                         "pagination": {"type": "offset", "offsetParam": "offset", "limitParam": "limit", "pageSize": 4}}),
        "cursor" => {
            json!({"path": "/cursor", "query": {"limit": "4"}, "recordsPointer": "/members", "idField": "id",
                         "pagination": {"type": "cursor", "cursorParam": "cursor", "cursorPointer": "/response_metadata/next_cursor"}})
        }
        "next_url" => json!({"path": "/next", "recordsPointer": "/results", "idField": "id",
                         "pagination": {"type": "next_url", "nextUrlPointer": "/next"}}),
        "link_header" => {
            json!({"path": "/link", "query": {"per_page": 3}, "recordsPointer": "", "idField": "id",
                         "pagination": {"type": "link_header"}})
        }
        other => panic!("no route pages by {other}"),
    }
}

/// What the API expects of every `/v1` request.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Nothing.
    #[default]
    None,
    /// A key in a header.
    Header { name: String, key: String },
    /// A key in a query parameter.
    Query { name: String, key: String },
    /// A fixed bearer token.
    Bearer(String),
    /// User name and password.
    Basic { user: String, password: String },
    /// The last access token the token endpoint issued (until expired).
    ClientCredentials,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Arrival time.
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    records: Vec<Map<String, Value>>,
    auth: Auth,
    seen: Vec<Seen>,
    tokens_issued: u32,
    valid_token: Option<String>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    origin: String,
    other_origin: String,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running API; stopped when dropped.
pub struct CustomApiServer {
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
}

impl Drop for CustomApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When record `i` (0-based) last changed at first.
pub fn initial_time(i: usize) -> DateTime<Utc> {
    let start = Utc
        .with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
        .single()
        .expect("a valid time");
    start + Duration::minutes(i as i64)
}

fn stamp(rec: &mut Map<String, Value>, t: DateTime<Utc>) {
    rec.insert(
        "updated_at".into(),
        json!(t.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    rec.insert("updated_unix".into(), json!(t.timestamp()));
}

fn dataset() -> Vec<Map<String, Value>> {
    let mut out: Vec<Map<String, Value>> = (0..RECORDS)
        .map(|i| {
            let id = if i == 6 {
                AWKWARD_ID.to_owned()
            } else {
                format!("rec-{:02}", i + 1)
            };
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            m.insert("number".into(), json!(1000 + i));
            m.insert("name".into(), json!(format!("Record {}", i + 1)));
            m.insert("amount".into(), json!((i as f64) * 10.5));
            stamp(&mut m, initial_time(i));
            m
        })
        .collect();
    out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    out
}

impl CustomApiServer {
    /// Starts the API on a free loopback port, expecting `auth`.
    pub async fn start(auth: Auth) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let origin = format!("http://127.0.0.1:{port}");
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                records: dataset(),
                auth,
                ..Inner::default()
            })),
            origin: origin.clone(),
            other_origin: format!("http://localhost:{port}"),
        };
        let v1 = Router::new()
            .route("/all", get(lists::all))
            .route("/pages", get(lists::pages))
            .route("/offset", get(lists::offset))
            .route("/cursor", get(lists::cursor))
            .route("/next", get(lists::next))
            .route("/foreign", get(lists::foreign))
            .route("/link", get(lists::link))
            .route("/broken", get(lists::broken))
            .route("/status/{code}", get(lists::status))
            .route(
                "/health",
                get(|| async { axum::Json(json!({"status": "ok"})) }),
            )
            .route("/items", post(items::create))
            .route("/items/{id}", get(items::read).patch(items::update))
            .layer(middleware::from_fn_with_state(shared.clone(), check_auth));
        let app = Router::new()
            .nest("/v1", v1)
            .route("/oauth/token", post(token))
            .layer(middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Self {
            shared,
            task,
            origin,
        }
    }

    /// The base URL of the API (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.origin)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.origin)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().seen.clone()
    }

    /// Requests to one path.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear_seen(&self) {
        self.shared.lock().seen.clear();
    }

    /// The ids of the dataset, in listing order.
    pub fn ids(&self) -> Vec<String> {
        self.shared
            .lock()
            .records
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// A record as stored.
    pub fn record(&self, id: &str) -> Option<Map<String, Value>> {
        self.shared
            .lock()
            .records
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
    }

    /// Changes `ids` now: a day after the dataset's last change, a second apart.
    pub fn touch(&self, ids: &[&str]) {
        let base = initial_time(RECORDS) + Duration::days(1);
        let mut inner = self.shared.lock();
        for (k, id) in ids.iter().enumerate() {
            if let Some(r) = inner.records.iter_mut().find(|r| r["id"] == *id) {
                stamp(r, base + Duration::seconds(k as i64));
                r.insert("name".into(), json!(format!("changed {id}")));
            }
        }
    }

    /// Puts the dataset back as it was at the start.
    pub fn reset(&self) {
        self.shared.lock().records = dataset();
    }

    /// The access tokens issued so far stop being accepted.
    pub fn expire_tokens(&self) {
        self.shared.lock().valid_token = None;
    }

    /// How many access tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> u32 {
        self.shared.lock().tokens_issued
    }
}

async fn record(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let seen = Seen {
        at: Instant::now(),
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    s.lock().seen.push(seen);
    next.run(req).await
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({"message": "Bad credentials"})),
    )
        .into_response()
}

fn basic_pair(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

async fn check_auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let (auth, valid_token) = {
        let inner = s.lock();
        (inner.auth.clone(), inner.valid_token.clone())
    };
    let h = req.headers();
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let ok = match &auth {
        Auth::None => true,
        Auth::Header { name, key } => h.get(name.as_str()).is_some_and(|v| v == key.as_str()),
        Auth::Query { name, key } => query.get(name) == Some(key),
        Auth::Bearer(t) => bearer.as_deref() == Some(t.as_str()),
        Auth::Basic { user, password } => basic_pair(h) == Some((user.clone(), password.clone())),
        Auth::ClientCredentials => bearer.is_some() && bearer == valid_token,
    };
    if ok {
        next.run(req).await
    } else {
        unauthorized()
    }
}

/// RFC 6749 §4.4: `grant_type=client_credentials`, the client by Basic
/// header or `client_id`/`client_secret` in the form; §5.1 answer.
async fn token(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let client = basic_pair(&headers).or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if client != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut inner = s.lock();
    inner.tokens_issued += 1;
    let t = format!(
        "access-{}-{}",
        inner.tokens_issued,
        uuid::Uuid::new_v4().simple()
    );
    inner.valid_token = Some(t.clone());
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"access_token": t, "token_type": "Bearer", "expires_in": 3600})),
    )
        .into_response()
}
