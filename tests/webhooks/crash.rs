//! Crash safety: `serve` crashes while thousands of deliveries are pending,
//! restarts on the same data, and every accepted delivery reaches the
//! receiver at least once; duplicates carry the same webhook-id.
//!
//! How it crashes depends on `TEST_STORE`:
//! - embedded: the real binary on its own `DATA_DIR`, killed with SIGKILL
//!   ([`sigkill_serve`], below);
//! - cosmos: the emulator lives in the test process, so `serve` runs there
//!   too and crashes in-process (`crash_in_process.rs`).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::auth::TokenKeys;
use futures::StreamExt as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{JWT_SECRET, Receiver};
use crate::stores::Backend;

const EVENTS: usize = 2000;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn serve(dir: &std::path::Path, port: u16, workers: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_castiel-integrations"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("DATA_DIR", dir)
        .env("JWT_SECRET", JWT_SECRET)
        .env("OUTBOUND_ALLOWED_CIDRS", "127.0.0.1/32")
        .env("WEBHOOK_TIMEOUT_SECONDS", "2")
        .env("WORKERS", workers)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("serve-{port}.log"))).expect("log"))
        .spawn()
        .expect("spawn serve")
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_no_accepted_delivery() {
    match crate::stores::backend() {
        Backend::Embedded => sigkill_serve().await,
        Backend::Cosmos => {
            crate::crash_in_process::in_process_crash_with_deliveries_pending().await
        }
    }
}

/// The embedded store's crash: SIGKILL of the real binary.
async fn sigkill_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start().await;
    rx.set_default_delay(Duration::from_millis(25));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve(dir.path(), port, "2");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let keys = TokenKeys::new(&SecretString::from(JWT_SECRET.to_owned()), None, None);
    let token = keys.mint(TenantId(Uuid::new_v4()), Some("crash"), false, 3600);
    let created: Value = http
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": rx.url("/hook"), "events": ["integration.created"]}))
        .send()
        .await
        .expect("create webhook")
        .json()
        .await
        .expect("json");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let accepted: Vec<String> = futures::stream::iter(0..EVENTS)
        .map(|n| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            async move {
                let r = http
                    .post(format!("{base}/api/v1/integrations"))
                    .bearer_auth(&token)
                    .json(&json!({"providerId": "salesforce", "name": format!("crash {n}")}))
                    .send()
                    .await
                    .ok()?;
                if r.status() != reqwest::StatusCode::CREATED {
                    return None;
                }
                let v: Value = r.json().await.ok()?;
                v["id"].as_str().map(str::to_owned)
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    assert_eq!(accepted.len(), EVENTS, "every create was accepted");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before = rx.count();
    assert!(
        before < EVENTS,
        "deliveries were still pending at the kill ({before})"
    );
    // Restart on the same data dir, with a fast receiver.
    rx.set_default_delay(Duration::ZERO);
    let port = free_port();
    let mut child = serve(dir.path(), port, "8");
    wait_ready(&http, &format!("http://127.0.0.1:{port}")).await;
    let want: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    let ids_by_integration = loop {
        let mut by: HashMap<String, HashSet<String>> = HashMap::new();
        for c in rx.got() {
            if let Some(i) = c.json()["data"]["integrationId"].as_str() {
                by.entry(i.to_owned())
                    .or_default()
                    .insert(c.header("webhook-id"));
            }
        }
        if want.iter().all(|i| by.contains_key(*i)) {
            break by;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "only {} of {EVENTS} accepted deliveries arrived",
                want.iter().filter(|i| by.contains_key(**i)).count()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    for (i, ids) in &ids_by_integration {
        assert_eq!(ids.len(), 1, "duplicates of {i} carry one webhook-id");
    }
    let total = rx.count();
    eprintln!(
        "crash test: {before} delivered before the kill, {total} requests in all ({} duplicates)",
        total - EVENTS
    );
    // The real binary's log lines never carry the secret.
    for entry in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        if entry.file_name().to_string_lossy().ends_with(".log") {
            let text = std::fs::read_to_string(entry.path()).expect("log");
            assert!(
                !text.contains(secret.trim_start_matches("whsec_")),
                "secret in a log line"
            );
            assert!(!text.contains("whsec_"));
        }
    }
}
