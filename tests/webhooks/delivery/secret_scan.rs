//! A webhook's signing secret is shown once (on create, on rotate) and then
//! never again: not in any answer (the `/test` one included), log line or
//! event, not in what the receiver got (it gets signatures made with the
//! secret, never the secret), and not in the raw files of `DATA_DIR` (the
//! SQLite database and its WAL hold secrets only encrypted).

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::json;

use super::{id, recorder};
use crate::harness::{Hooks, Receiver, Reply};

/// Everything logged by this test binary.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every form a secret could leak in: as shown (`whsec_…`), its base64
/// part, and the raw key bytes it stands for.
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let b64 = secret
        .strip_prefix("whsec_")
        .expect("a Standard Webhooks secret");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64 key");
    assert!(raw.len() >= 16, "a key long enough to search for");
    vec![secret.as_bytes().to_vec(), b64.as_bytes().to_vec(), raw]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, with its bytes (the database, its WAL, the
/// keyring, anything else the app wrote).
fn raw_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out
}

/// Whether the app's store keeps its documents in `DATA_DIR` (SQLite); the
/// Cosmos emulator keeps them in memory, leaving the queue's database there.
fn documents_on_disk() -> bool {
    std::env::var("TEST_STORE").map_or(true, |s| s == "embedded")
}

#[tokio::test]
async fn no_secret_in_any_answer_log_event_delivery_or_file() {
    let logs = logs();
    let h = Hooks::new().await;
    let events = recorder(&h);
    let rx = Receiver::start().await;
    rx.script([Reply::status(500)]);
    let secret = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=";
    let created = h
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("/hook"), "events": ["*"], "secret": secret}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["secret"], secret, "shown once, on create");
    let wid = id(&created.body);
    let rotated = h
        .post_empty(&format!("/api/v1/webhooks/{wid}/rotate-secret"))
        .await;
    let secret2 = rotated.body["secret"].as_str().expect("secret").to_owned();
    h.integration("A").await;
    h.run_jobs().await;
    h.advance(10).await;
    let test = h.post_empty(&format!("/api/v1/webhooks/{wid}/test")).await;
    assert_eq!(test.status, StatusCode::ACCEPTED);
    h.run_jobs().await;
    let mut seen = String::new();
    seen.push_str(&test.text);
    for path in [
        format!("/api/v1/webhooks/{wid}"),
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{wid}/deliveries"),
    ] {
        let a = h.get(&path).await;
        assert_eq!(a.status, StatusCode::OK);
        seen.push_str(&a.text);
    }
    for d in h.deliveries(&wid).await {
        seen.push_str(
            &h.delivery(&wid, d["id"].as_str().expect("id"))
                .await
                .to_string(),
        );
    }
    let put = h
        .put(
            &format!("/api/v1/webhooks/{wid}"),
            json!({"url": rx.url("/hook"), "events": ["*"]}),
        )
        .await;
    seen.push_str(&put.text);
    for e in events.0.lock().expect("lock").iter() {
        seen.push_str(&serde_json::to_string(e).expect("json"));
    }
    assert!(events.0.lock().expect("lock").len() >= 3);
    // What the receiver got: every request's path, headers and body.
    let got = rx.got();
    assert!(got.len() >= 2, "the event and the test were delivered");
    assert!(
        got.iter()
            .all(|c| c.header("webhook-signature").starts_with("v1,")),
        "the receiver got signatures"
    );
    for c in &got {
        seen.push_str(&c.path);
        for (k, v) in &c.headers {
            seen.push_str(k.as_str());
            seen.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
        seen.push_str(&c.body);
    }
    seen.push_str(&String::from_utf8_lossy(&logs.lock().expect("lock")));
    for s in [secret, &secret2] {
        for form in forms(s) {
            assert!(!contains(seen.as_bytes(), &form), "a secret leaked");
        }
    }
    assert!(!seen.contains("whsec_"), "no secret-looking value anywhere");
    // The raw files: the database and its WAL, read as bytes.
    let files = raw_files(h.dir.path());
    let raw: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(
        files
            .iter()
            .any(|(name, b)| name.ends_with(".db") && !b.is_empty()),
        "a database was scanned: {:?}",
        files.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>()
    );
    if documents_on_disk() {
        assert!(
            contains(&raw, wid.as_bytes()),
            "the scan reads documents as stored (the webhook's id is there)"
        );
    }
    for s in [secret, &secret2] {
        for form in forms(s) {
            for (name, bytes) in &files {
                assert!(!contains(bytes, &form), "a secret is in {name}");
            }
        }
    }
    assert!(
        !contains(&raw, b"whsec_"),
        "no secret-looking value on disk"
    );
}
