//! The receiving end, in a process of its own (`castiel-bench-webhooks
//! --receiver`): its CPU is not the measured process's, so it pulls neither
//! side's figures. It counts deliveries by their distinct `webhook-id`
//! (Standard Webhooks: the same id on every retry of one delivery), notes
//! when the first attempt of each event (`data.seq`) arrived (wall clock,
//! nanoseconds since the epoch, for the latency figures) and answers the
//! bench on a few control routes:
//!
//! - `POST /hook`: a delivery (or a bare POST); answers 200;
//! - `GET /stats`: `{requests, distinct, withoutId}`;
//! - `GET /seen`: `{seq: [[seq, firstSeenNanos], …]}`;
//! - `POST /reset`: forgets everything.
//!
//! It prints `listening <port>` on its first line of stdout.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Seen {
    requests: u64,
    without_id: u64,
    ids: HashSet<String>,
    first: HashMap<u64, u64>,
}

type Shared = Arc<Mutex<Seen>>;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Wall-clock nanoseconds since the epoch (both processes read the same clock).
pub fn wall_ns() -> u64 {
    now_ns()
}

/// `RECEIVER_DROP_EVERY=N`: every Nth new delivery is answered but not
/// counted, as if lost on the way (to see the bench's check fail).
fn drop_every() -> usize {
    std::env::var("RECEIVER_DROP_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn hook(seen: Shared, headers: HeaderMap, body: Bytes) -> &'static str {
    let at = now_ns();
    let drop_n = drop_every();
    let seq = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["seq"].as_u64());
    let mut s = seen.lock().expect("lock");
    s.requests += 1;
    match headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        Some(id) => {
            if !s.ids.contains(id) {
                if drop_n > 0 && (s.requests as usize).is_multiple_of(drop_n) {
                    return "ok";
                }
                s.ids.insert(id.to_owned());
                if let Some(seq) = seq {
                    s.first.entry(seq).or_insert(at);
                }
            }
        }
        None => s.without_id += 1,
    }
    "ok"
}

/// The receiver's main: serves until killed.
pub async fn serve() {
    let seen: Shared = Shared::default();
    let (a, b, c, d) = (seen.clone(), seen.clone(), seen.clone(), seen);
    let app = Router::new()
        .route(
            "/hook",
            post(move |h: HeaderMap, body: Bytes| hook(a.clone(), h, body)),
        )
        .route(
            "/stats",
            get(move || {
                let b = b.clone();
                async move {
                let s = b.lock().expect("lock");
                axum::Json(json!({"requests": s.requests, "distinct": s.ids.len(), "withoutId": s.without_id}))
            }}),
        )
        .route(
            "/seen",
            get(move || {
                let c = c.clone();
                async move {
                let s = c.lock().expect("lock");
                let seq: Vec<(u64, u64)> = s.first.iter().map(|(k, v)| (*k, *v)).collect();
                axum::Json(json!({ "seq": seq }))
            }}),
        )
        .route(
            "/reset",
            post(move || {
                let d = d.clone();
                async move {
                    *d.lock().expect("lock") = Seen::default();
                    "ok"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    println!("listening {port}");
    let _ = axum::serve(listener, app).await;
}

/// The receiver process, seen from the bench; killed on drop.
pub struct Receiver {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    client: reqwest::Client,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the receiver counted.
pub struct Stats {
    /// Requests received (retries included).
    pub requests: u64,
    /// Distinct `webhook-id`s.
    pub distinct: u64,
    /// Requests without a `webhook-id`.
    pub without_id: u64,
}

impl Receiver {
    /// Starts this program again as a receiver and waits for its port.
    pub fn start() -> Receiver {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .arg("--receiver")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start the receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("receiver's port");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .expect("`listening <port>`");
        Receiver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    /// The receiver's pid (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where deliveries go.
    pub fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// Forgets what it saw.
    pub async fn reset(&self) {
        self.client
            .post(format!("{}/reset", self.base))
            .send()
            .await
            .expect("reset");
    }

    /// Its counts.
    pub async fn stats(&self) -> Stats {
        let v: Value = self
            .client
            .get(format!("{}/stats", self.base))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json");
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Stats {
            requests: n("requests"),
            distinct: n("distinct"),
            without_id: n("withoutId"),
        }
    }

    /// When each event's first delivery arrived (ns since the epoch).
    pub async fn seen(&self) -> HashMap<u64, u64> {
        let v: Value = self
            .client
            .get(format!("{}/seen", self.base))
            .send()
            .await
            .expect("seen")
            .json()
            .await
            .expect("seen json");
        v["seq"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `n` distinct deliveries arrived, or `limit` passed.
    pub async fn wait_for(&self, n: u64, limit: std::time::Duration) -> Stats {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let s = self.stats().await;
            if s.distinct >= n || std::time::Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
