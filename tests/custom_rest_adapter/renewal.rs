//! `oauth2_client_credentials` through the real connection: the adapter
//! opened for an integration sends the connection's access token, and after
//! a 401 renews it once at the token endpoint (RFC 6749 §4.4) and retries.
//!
//! The built-in `custom_rest` catalog entry accepts API keys, bearer tokens
//! and basic auth only, and a catalog entry that lists `oauth2` needs an
//! authorization-code `oauth` block; so that a client-credentials
//! connection can be made here, the test (as a super-admin would) adds
//! `oauth2` to the entry with placeholder endpoints, which a
//! client-credentials connection does not use (it names its own token URL).

use castiel_integrations::domain::tenancy::{Ctx, TenantId};
use castiel_integrations::features::integrations::service as integrations;
use castiel_integrations::features::sync::adapter::{self, AdapterContext, AdapterError};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::custom_api_server::{Auth, CLIENT_ID, CLIENT_SECRET, CustomApiServer, RECORDS};
use crate::drain;
use crate::helpers::TestApp;

const INPUT_FIELDS: [&str; 13] = [
    "category",
    "name",
    "displayName",
    "description",
    "authMethods",
    "oauth",
    "supportedEntities",
    "capabilities",
    "visibility",
    "status",
    "allowedTenants",
    "blockedTenants",
    "shardMappings",
];

async fn accept_client_credentials(app: &TestApp, tenant: Uuid) {
    let admin = app.admin_token(tenant);
    let path = "/api/v1/admin/integrations/catalog/custom_rest";
    let entry = app.get(path, &admin).await;
    assert_eq!(entry.status, axum::http::StatusCode::OK, "{}", entry.text);
    let mut input: Map<String, Value> = INPUT_FIELDS
        .iter()
        .filter_map(|k| {
            entry
                .body
                .get(*k)
                .filter(|v| !v.is_null())
                .map(|v| ((*k).to_owned(), v.clone()))
        })
        .collect();
    input["authMethods"]
        .as_array_mut()
        .expect("auth methods")
        .push(json!("oauth2"));
    input.insert(
        "oauth".into(),
        json!({"authorizationUrl": "https://auth.example.com/authorize",
               "tokenUrl": "https://auth.example.com/token"}),
    );
    let put = app.put(path, &admin, Value::Object(input)).await;
    assert_eq!(put.status, axum::http::StatusCode::OK, "{}", put.text);
}

#[tokio::test]
async fn client_credentials_are_renewed_once_after_a_401() {
    let server = CustomApiServer::start(Auth::ClientCredentials).await;
    let app = TestApp::with(&[("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8")]).await;
    let tenant = Uuid::new_v4();
    let token = app.token(tenant);
    accept_client_credentials(&app, tenant).await;

    let custom = json!({
        "baseUrl": server.base_url(),
        "auth": {"type": "oauth2_client_credentials"},
        "entities": [{"name": "things", "list": {
            "path": "/pages", "recordsPointer": "/data", "idField": "id",
            "pagination": {"type": "page", "pageParam": "page", "sizeParam": "per_page", "pageSize": 5}}}],
        "rateLimitPerSecond": 50
    });
    let created = app
        .post(
            "/api/v1/integrations",
            &token,
            json!({"providerId": "custom_rest", "name": "own api", "customApi": custom}),
        )
        .await;
    assert_eq!(
        created.status,
        axum::http::StatusCode::CREATED,
        "{}",
        created.text
    );
    let id = created.body["id"].as_str().expect("id").to_owned();
    let conn = app
        .post(
            &format!("/api/v1/integrations/{id}/connections"),
            &token,
            json!({"type": "oauth2_client_credentials", "clientId": CLIENT_ID,
                   "clientSecret": CLIENT_SECRET, "tokenUrl": server.token_url()}),
        )
        .await;
    assert_eq!(
        conn.status,
        axum::http::StatusCode::CREATED,
        "{}",
        conn.text
    );
    assert_eq!(server.tokens_issued(), 1);

    let ctx = Ctx::system(TenantId(tenant), "custom-rest-test");
    let integration = integrations::get(&app.state.0.integrations, &ctx, id.parse().expect("uuid"))
        .await
        .expect("integration");
    let cx = AdapterContext {
        connections: app.state.0.connections.clone(),
        outbound: app.state.0.connections.outbound.clone(),
        providers: Default::default(),
    };

    // The token from the connection works.
    let a = adapter::open(&cx, &ctx, &integration).await.expect("open");
    assert_eq!(
        drain(a.as_ref(), None, 1000, false)
            .await
            .expect("list")
            .records
            .len(),
        RECORDS
    );

    // It expires: one 401, one renewal, the call again, and the listing
    // goes on with the new token.
    server.expire_tokens();
    server.clear_seen();
    let d = drain(a.as_ref(), None, 1000, false).await.expect("renewed");
    assert_eq!(d.records.len(), RECORDS);
    assert_eq!(server.tokens_issued(), 2);
    let pages = server.seen_at("/v1/pages");
    assert_eq!(pages.len(), 6, "one refused call, then five pages");

    // Renewed once per run: a second expiry is final.
    server.expire_tokens();
    assert!(matches!(
        drain(a.as_ref(), None, 1000, false).await,
        Err(AdapterError::Unauthorized(_))
    ));
    assert_eq!(server.tokens_issued(), 2);

    // A new run (a new adapter) renews again.
    let b = adapter::open(&cx, &ctx, &integration).await.expect("open");
    assert_eq!(
        drain(b.as_ref(), None, 1000, false)
            .await
            .expect("list")
            .records
            .len(),
        RECORDS
    );
    assert_eq!(server.tokens_issued(), 3);
}
