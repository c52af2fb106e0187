//! Token refresh as periodic work: tokens expiring within 15 minutes are
//! refreshed exactly once, even by two processes at once; a refresh answer
//! without a new refresh token keeps the old one.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use castiel_integrations::app;
use castiel_integrations::clock::SystemClock;
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::features::connections::refresh;
use castiel_integrations::platform::auth::TokenKeys;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::JWT_SECRET;
use crate::oauth_server::OauthServer;
use crate::{Fixture, param};

#[tokio::test]
async fn two_apps_on_one_store_refresh_each_expiring_token_once() {
    let mut f = Fixture::new().await;
    f.server.command("expires-in 60");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = f.integration("salesforce").await;
        assert_eq!(
            param(&f.connect(&id).await, "status").as_deref(),
            Some("connected")
        );
        ids.push(id);
    }
    // One more that does not expire soon: left alone.
    f.server.command("expires-in 3600");
    let fresh = f.integration("salesforce").await;
    f.connect(&fresh).await;

    // A second app on the same store, as a second process would be.
    let settings = f.server.settings();
    let data_dir = f.app.dir.path().to_string_lossy().into_owned();
    let mut pairs: Vec<(&str, &str)> = vec![("DATA_DIR", &data_dir), ("JWT_SECRET", JWT_SECRET)];
    pairs.extend(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let other = app::wiring::build_with(
        Config::from_pairs(&pairs).expect("config"),
        f.app.state.store.clone(),
        std::sync::Arc::new(SystemClock),
    )
    .await
    .expect("second app");
    let (a, b) = tokio::join!(
        refresh::refresh_due(&f.app.state.connections),
        refresh::refresh_due(&other.connections)
    );
    let (a, b) = (a.expect("refresh a"), b.expect("refresh b"));
    assert_eq!(a.refreshed + b.refreshed, 5, "{a:?} {b:?}");
    f.server.expect_token_requests("refresh_token", None, 5);
    for id in &ids {
        let c = &f.connections(id).await[0];
        assert_eq!(c["status"], "active");
        assert!(
            c["refresh"].get("leaseUntil").is_none(),
            "the lease is released: {c}"
        );
        let expires: chrono::DateTime<chrono::Utc> = c["oauth"]["expiresAt"]
            .as_str()
            .expect("expiresAt")
            .parse()
            .expect("time");
        assert!(expires > chrono::Utc::now() + chrono::Duration::minutes(30));
    }
    let refreshed = f
        .event_types()
        .iter()
        .filter(|t| *t == "integration.token.refreshed")
        .count();
    assert_eq!(
        refreshed, a.refreshed,
        "one event per refresh this app made"
    );
    // Nothing is due any more.
    let again = refresh::refresh_due(&f.app.state.connections)
        .await
        .expect("again");
    assert_eq!(again.due, 0);
    f.server.expect_token_requests("refresh_token", None, 5);
}

#[tokio::test]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    let mut f = Fixture::new().await;
    let id = f.integration("salesforce").await;
    f.connect(&id).await;
    f.server.command("rotate off");
    let c = &f.connections(&id).await[0];
    let path = format!(
        "/api/v1/integrations/{id}/connections/{}/refresh",
        c["id"].as_str().expect("id")
    );
    for n in 1..=2 {
        let r = f.post(&path, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "refresh {n}: {}", r.text);
        assert_eq!(
            r.body["secretRefs"]["refreshToken"],
            c["secretRefs"]["refreshToken"]
        );
        assert_ne!(
            r.body["secretRefs"]["accessToken"],
            c["secretRefs"]["accessToken"]
        );
    }
    f.server
        .expect_token_requests("refresh_token", Some(200), 2);
}

#[tokio::test]
async fn three_failed_refreshes_in_a_row_end_the_connection() {
    let clock = std::sync::Arc::new(castiel_integrations::clock::ManualClock::new(
        chrono::Utc::now(),
    ));
    let mut f = Fixture::with_clock(clock.clone()).await;
    let id = f.integration("salesforce").await;
    f.connect(&id).await;
    // The provider goes away; the token (one hour) comes within 15 minutes of expiry.
    f.server.stop();
    clock.advance(chrono::Duration::minutes(46));
    let connections = &f.app.state.connections;
    for (n, wait) in [(1, 0), (2, 2), (3, 3)] {
        clock.advance(chrono::Duration::minutes(wait));
        let r = refresh::refresh_due(connections).await.expect("run");
        assert_eq!(
            (r.due, r.failed, r.expired),
            (1, 1, usize::from(n == 3)),
            "run {n}: {r:?}"
        );
        let c = &f.connections(&id).await[0];
        assert_eq!(c["refresh"]["failures"], n);
        assert_eq!(c["refresh"]["lastError"], "temporarily_unavailable");
        if n < 3 {
            assert_eq!(c["status"], "active", "one failure is not the end");
            // Backing off: the next run leaves it alone.
            let skipped = refresh::refresh_due(connections).await.expect("run");
            assert_eq!(skipped.skipped, 1, "{skipped:?}");
        } else {
            assert_eq!(c["status"], "expired");
        }
    }
    let i = f.integration_doc(&id).await;
    assert_eq!(
        (i["status"].as_str(), i["connectionStatus"].as_str()),
        (Some("error"), Some("expired"))
    );
    let failed = f.events_of("integration.token.refresh_failed");
    assert_eq!(failed.len(), 1, "one event, when it ended");
    assert_eq!(failed[0].data["error"], "temporarily_unavailable");
    // An expired connection is no longer due.
    assert_eq!(refresh::refresh_due(connections).await.expect("run").due, 0);
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn serve(dir: &std::path::Path, port: u16, server: &OauthServer) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_castiel-integrations"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("DATA_DIR", dir)
        .env("JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("serve-{port}.log"))).expect("log"));
    for (k, v) in server.settings() {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn serve")
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

fn stop(mut child: Child) {
    // SIGTERM, as an operator stops it.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_data_dir_refresh_each_token_once() {
    let mut server = OauthServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let keys = TokenKeys::new(&SecretString::from(JWT_SECRET.to_owned()), None, None);
    let token = keys.mint(TenantId(Uuid::new_v4()), Some("refresh"), false, 3600);
    // Connect six integrations through one process, with tokens expiring soon.
    server.command("expires-in 120");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let first = serve(dir.path(), port, &server);
    wait_ready(&http, &base).await;
    const N: usize = 6;
    for n in 0..N {
        let i: Value = http
            .post(format!("{base}/api/v1/integrations"))
            .bearer_auth(&token)
            .json(&json!({"providerId": "salesforce", "name": format!("org {n}")}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let id = i["id"].as_str().expect("id");
        let started: Value = http
            .post(format!("{base}/api/v1/integrations/{id}/oauth/start"))
            .bearer_auth(&token)
            .json(&json!({"returnUrl": "https://app.castiel.test/done"}))
            .send()
            .await
            .expect("start")
            .json()
            .await
            .expect("json");
        let query = server
            .authorize(started["authorizationUrl"].as_str().expect("url"))
            .await;
        let back = http
            .get(format!("{base}/api/v1/integrations/oauth/callback?{query}"))
            .send()
            .await
            .expect("callback");
        let location = back.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert!(location.contains("status=connected"), "{location}");
    }
    // The first process's start-up refresh already ran (nothing was due then).
    stop(first);
    server.expect_token_requests("refresh_token", None, 0);
    server.command("expires-in 3600");
    // Two processes start at once on the same data directory: both run
    // token refresh at start.
    let (pa, pb) = (free_port(), free_port());
    let a = serve(dir.path(), pa, &server);
    let b = serve(dir.path(), pb, &server);
    wait_ready(&http, &format!("http://127.0.0.1:{pa}")).await;
    wait_ready(&http, &format!("http://127.0.0.1:{pb}")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.token_requests("refresh_token", None) < N && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both processes' runs have had time to finish: still one request each.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(a);
    stop(b);
    server.expect_token_requests("refresh_token", Some(200), N);
    server.expect_token_requests("refresh_token", None, N);
    let logs: String = [pa, pb]
        .iter()
        .map(|p| {
            std::fs::read_to_string(dir.path().join(format!("serve-{p}.log"))).unwrap_or_default()
        })
        .collect();
    assert!(logs.contains("token refresh"), "token refresh ran:\n{logs}");
}
