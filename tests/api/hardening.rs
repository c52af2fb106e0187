//! What an outside probe found, each reproduced (issue 18): every stored
//! URL passes one policy, `customApi` is typed, idempotency records hold no
//! secret, event types must exist, headers may not repeat, text refuses
//! invisible and control characters, the nil UUID is no tenant.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, now, sign};

/// An app whose webhooks may target loopback (a local receiver), as tests do.
async fn app() -> TestApp {
    TestApp::with(&[("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8")]).await
}

fn assert_refused(a: &crate::helpers::Answer, pointer: &str, what: &str) {
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.text);
    assert!(
        a.pointers()
            .iter()
            .any(|p| p == pointer || p.starts_with(&format!("{pointer}/"))),
        "{what}: expected {pointer} in {}",
        a.text
    );
}

#[tokio::test]
async fn instance_urls_pass_the_url_policy_on_create_for_every_provider() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4());
    let hostile = [
        "https://169.254.169.254/",
        "http://127.0.0.1:4555/",
        "https://10.0.0.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://localhost/",
        "http://example.com/",
        "https:example.com",
        "https://example.com/\r\nX-Injected: 1",
        "https://example.com:0/",
        "https://user:pw@example.com/",
        "file:///etc/passwd",
    ];
    for provider in ["salesforce", "hubspot", "google_workspace", "custom_rest"] {
        for url in hostile {
            let a = app
                .post(
                    "/api/v1/integrations",
                    &token,
                    json!({"providerId": provider, "name": "x", "instanceUrl": url}),
                )
                .await;
            assert_refused(&a, "/instanceUrl", &format!("{provider} {url:?}"));
        }
    }
    let (items, _) = app.list_all("/api/v1/integrations", &token).await;
    assert!(items.is_empty(), "nothing was stored");
    // A public https URL is stored normalised.
    let ok = app
        .post(
            "/api/v1/integrations",
            &token,
            json!({"providerId": "salesforce", "name": "x", "instanceUrl": "HTTPS://Acme.My.Salesforce.com"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(ok.body["instanceUrl"], "https://acme.my.salesforce.com/");
}

fn custom_api() -> Value {
    json!({
        "baseUrl": "https://api.example.com/v1",
        "auth": {"type": "bearer"},
        "entities": [{"name": "deals", "list": {"path": "/deals", "recordsPointer": "/items", "idField": "id"}}]
    })
}

#[tokio::test]
async fn custom_api_is_typed_and_validated_with_pointers() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4());
    let create = |custom: Value| {
        let (app, token) = (&app, &token);
        async move {
            app.post(
                "/api/v1/integrations",
                token,
                json!({"providerId": "custom_rest", "name": "api", "customApi": custom}),
            )
            .await
        }
    };
    let mut file = custom_api();
    file["baseUrl"] = json!("file:///etc/passwd");
    assert_refused(&create(file).await, "/customApi/baseUrl", "file URL");
    assert_refused(
        &create(json!({"foo": 1})).await,
        "/customApi",
        "unknown field",
    );
    let mut local = custom_api();
    local["baseUrl"] = json!("https://127.0.0.1/");
    assert_refused(&create(local).await, "/customApi/baseUrl", "loopback");
    let mut no_path = custom_api();
    no_path["entities"][0]["list"]["path"] = json!("deals");
    assert_refused(
        &create(no_path).await,
        "/customApi/entities/0/list/path",
        "path",
    );
    let (items, _) = app.list_all("/api/v1/integrations", &token).await;
    assert!(items.is_empty(), "nothing was stored");

    let ok = create(custom_api()).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(ok.body["customApi"]["auth"]["type"], "bearer");
    let elsewhere = app
        .post(
            "/api/v1/integrations",
            &token,
            json!({"providerId": "salesforce", "name": "x", "customApi": custom_api()}),
        )
        .await;
    assert_refused(&elsewhere, "/customApi", "customApi on salesforce");
}

#[tokio::test]
async fn a_replayed_webhook_create_holds_no_secret_anywhere() {
    let app = app().await;
    let token = app.token(Uuid::new_v4());
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]});
    let headers = [("idempotency-key", "create-hook-1")];
    let first = app
        .send(
            Method::POST,
            "/api/v1/webhooks",
            Some(&token),
            Some(body.clone()),
            &headers,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let secret = first.body["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let replay = app
        .send(
            Method::POST,
            "/api/v1/webhooks",
            Some(&token),
            Some(body),
            &headers,
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body["id"], first.body["id"]);
    assert!(replay.body.get("secret").is_none(), "{}", replay.text);
    assert!(!replay.text.contains(&secret));
    // Nowhere in the store: every document of the idempotency records'
    // container, and on the embedded store the database files themselves.
    let q = castiel_integrations::platform::store::Query::cross_partition().limit(1000);
    let page = app
        .state
        .store
        .query(castiel_integrations::platform::store::Container::Outbox, &q)
        .await
        .expect("query");
    assert!(!page.items.is_empty(), "the idempotency record exists");
    for doc in page.items {
        assert!(!doc.body.to_string().contains(&secret), "{}", doc.body);
    }
    scan_files(app.dir.path(), &secret);
}

/// No file under `dir` (the SQLite database, its WAL) contains `secret`.
fn scan_files(dir: &std::path::Path, secret: &str) {
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            scan_files(&path, secret);
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }
}

#[tokio::test]
async fn webhook_events_must_be_types_this_service_publishes() {
    let app = app().await;
    let token = app.token(Uuid::new_v4());
    for (events, pointer) in [
        (json!(["no.such.event"]), "/events/0"),
        (json!(["integration.created", "nothing.*"]), "/events/1"),
        (json!(["webhook.delivered"]), "/events/0"),
    ] {
        let a = app
            .post(
                "/api/v1/webhooks",
                &token,
                json!({"url": "http://127.0.0.1:9/hook", "events": events}),
            )
            .await;
        assert_refused(&a, pointer, &events.to_string());
    }
    for events in [
        json!(["*"]),
        json!(["integration.*"]),
        json!(["integration.sync.failed"]),
    ] {
        let a = app
            .post(
                "/api/v1/webhooks",
                &token,
                json!({"url": "http://127.0.0.1:9/hook", "events": events}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{events}: {}", a.text);
    }
}

#[tokio::test]
async fn webhook_urls_are_stored_only_when_they_pass_the_url_policy() {
    let app = app().await;
    let token = app.token(Uuid::new_v4());
    for url in [
        "http://127.0.0.1:9/hook\r\n",
        "http://127.0.0.1:9/\nhook",
        "https:example.com",
        "https://example.com:0/",
        "https://169.254.169.254/latest",
        "https://example.com/#frag",
    ] {
        let a = app
            .post(
                "/api/v1/webhooks",
                &token,
                json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_refused(&a, "/url", url);
    }
}

#[tokio::test]
async fn repeated_identity_headers_are_refused() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let token = app.token(tenant);
    let bearer = format!("Bearer {token}");
    let t = tenant.to_string();
    let other = app.token(Uuid::new_v4());
    let other_bearer = format!("Bearer {other}");
    // Each would pass with the first header alone.
    for headers in [
        vec![
            ("authorization", bearer.as_str()),
            ("x-tenant-id", t.as_str()),
            ("x-tenant-id", t.as_str()),
        ],
        vec![
            ("authorization", bearer.as_str()),
            ("authorization", other_bearer.as_str()),
        ],
    ] {
        let a = app
            .send(Method::GET, "/api/v1/integrations", None, None, &headers)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{headers:?}: {}", a.text);
        assert_eq!(a.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn names_refuse_invisible_and_control_characters() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4());
    for name in [
        "\u{200B}\u{200B}",
        "\u{FEFF}",
        "a\u{0}b",
        "\u{1b}[31mred",
        "invoice\u{202E}fdp.exe",
        "two\nlines",
    ] {
        let a = app
            .post(
                "/api/v1/integrations",
                &token,
                json!({"providerId": "salesforce", "name": name}),
            )
            .await;
        assert_refused(&a, "/name", &format!("{name:?}"));
    }
}

#[tokio::test]
async fn the_nil_uuid_is_not_a_tenant() {
    let app = TestApp::new().await;
    let token = sign(&json!({"tenantId": Uuid::nil().to_string(), "exp": now() + 600}));
    let a = app.get("/api/v1/integrations", &token).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
}

#[tokio::test]
async fn a_path_that_is_not_utf8_names_nothing() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4());
    for path in [
        "/api/v1/integrations/%FF",
        "/api/v1/webhooks/%C3%28/deliveries",
        "/api/v1/integrations/x/field-mappings/%FF%FE",
    ] {
        let a = app.get(path, &token).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.text);
        assert_eq!(a.headers["content-type"], "application/problem+json");
    }
}
