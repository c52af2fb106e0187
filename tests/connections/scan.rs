//! No secret anywhere it could leak: after a full OAuth flow, a refresh, a
//! revoked refresh and every static type, no API key, password, client
//! secret, access or refresh token appears in any answer, list, event, log
//! line (trace level, this whole test binary) or stored document outside
//! the secret store's own ciphertext.

use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::features::connections::service::owner;
use castiel_integrations::platform::secrets::SecretRef;
use castiel_integrations::platform::store::{Container, Query};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::oauth_server::CLIENT_SECRET;
use crate::{Fixture, logs};

#[tokio::test]
async fn no_secret_in_any_answer_list_event_log_or_document() {
    // Everything this test's thread logs (the app's tasks run on it too).
    let logs = logs::capture();
    tracing::info!("log capture is on");
    let mut f = Fixture::new().await;
    let mut seen = String::new();
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.to_owned()];

    // The code flow, a refresh, a revoked refresh.
    let sf = f.integration("salesforce").await;
    let started = f.start(&sf).await;
    seen.push_str(&started.to_string());
    let query = f
        .server
        .authorize(started["authorizationUrl"].as_str().expect("url"))
        .await;
    seen.push_str(f.callback(&query).await.as_str());
    let c = f.connections(&sf).await[0].clone();
    let cid: Uuid = c["id"].as_str().expect("id").parse().expect("uuid");
    let path = format!("/api/v1/integrations/{sf}/connections/{cid}/refresh");
    seen.push_str(&f.post(&path, json!({})).await.text);
    // Every token the provider issued, read back from the secret store.
    let remember = |f: &Fixture, c: &Value| {
        let cid: Uuid = c["id"].as_str().expect("id").parse().expect("uuid");
        let refs: Vec<SecretRef> = c["secretRefs"]
            .as_object()
            .expect("refs")
            .values()
            .map(|r| SecretRef(r.as_str().expect("ref").to_owned()))
            .collect();
        let store = f.app.state.secrets.clone();
        let tenant = TenantId(f.tenant);
        async move {
            let mut out = Vec::new();
            for r in refs {
                let v = store.get(&owner(tenant, cid), &r).await.expect("secret");
                out.push(v.expose_secret().to_owned());
            }
            out
        }
    };
    let now = f.connections(&sf).await[0].clone();
    secrets.extend(remember(&f, &now).await);
    f.server.command("revoke-all");
    seen.push_str(&f.post(&path, json!({})).await.text);

    // Static and client-credentials connections.
    let custom = f.integration("custom_rest").await;
    for body in [
        json!({"type": "api_key", "apiKey": "ak_scan_7c1d0f9e2b"}),
        json!({"type": "basic", "username": "scan-user", "password": "pw_scan_4a8b2c6d0e"}),
        json!({"type": "bearer", "token": "bt_scan_9f8e7d6c5b"}),
    ] {
        secrets.extend(
            body.as_object()
                .expect("object")
                .iter()
                .filter(|(k, _)| *k != "type" && *k != "username")
                .map(|(_, v)| v.as_str().expect("text").to_owned()),
        );
        seen.push_str(
            &f.post(&format!("/api/v1/integrations/{custom}/connections"), body)
                .await
                .text,
        );
    }
    let cc = f
        .post(
            &format!("/api/v1/integrations/{sf}/connections"),
            json!({"type": "oauth2_client_credentials", "clientId": crate::oauth_server::CLIENT_ID,
                   "clientSecret": CLIENT_SECRET, "tokenUrl": f.server.token_url()}),
        )
        .await;
    seen.push_str(&cc.text);
    secrets.extend(remember(&f, &cc.body).await);

    for id in [&sf, &custom] {
        for p in [
            format!("/api/v1/integrations/{id}"),
            format!("/api/v1/integrations/{id}/connections"),
        ] {
            seen.push_str(&f.get(&p).await.text);
        }
    }
    seen.push_str(&f.get("/api/v1/integrations").await.text);
    for e in f.events.events() {
        seen.push_str(&serde_json::to_string(&e).expect("json"));
    }
    // Every stored document but the secret store's ciphertexts.
    let store = &f.app.state.store;
    for container in Container::ALL {
        if container == Container::Secrets {
            continue;
        }
        let page = store
            .query(container, &Query::cross_partition().limit(1000))
            .await
            .expect("query");
        for d in page.items {
            seen.push_str(&d.body.to_string());
        }
    }
    // The embedded store's files, WAL included.
    for entry in std::fs::read_dir(f.app.dir.path()).expect("dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("test.db") {
            seen.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).expect("read"),
            ));
        }
    }
    let logged = logs.text();
    assert!(logged.contains("log capture is on"), "logs are captured");
    seen.push_str(&logged);
    assert!(
        secrets.len() >= 8,
        "the scan knows the secrets it looks for: {}",
        secrets.len()
    );
    assert!(
        seen.len() > 10_000,
        "the scan read something: {}",
        seen.len()
    );
    for s in &secrets {
        assert!(s.len() >= 10, "a secret long enough to search for");
        assert!(
            !seen.contains(s.as_str()),
            "a secret leaked ({} characters)",
            s.len()
        );
    }
}
