//! A 401 renews the integration's token once through the connections
//! feature, then the call is retried; a second 401 is final.
//!
//! The connection is an `oauth2_client_credentials` one created through
//! the API against the local server's `/services/oauth2/token` (Salesforce's
//! client-credentials flow), so renewal is the real refresh path: the
//! service asks the token endpoint for a new access token and stores it.

use castiel_integrations::domain::tenancy::{Ctx, TenantId};
use castiel_integrations::features::integrations::service;
use castiel_integrations::features::sync::adapter::salesforce::SalesforceAdapter;
use castiel_integrations::features::sync::adapter::{Adapter, AdapterError};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::salesforce_server::{CLIENT_ID, CLIENT_SECRET, SalesforceServer};
use crate::{opportunity, run};

#[tokio::test]
async fn a_401_renews_the_token_once_and_retries() {
    let server = SalesforceServer::start().await;
    server.insert("Opportunity", 5, opportunity);
    let app = TestApp::with(&[("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8")]).await;
    let tenant = Uuid::new_v4();
    let token = app.token(tenant);
    let created = app
        .post(
            "/api/v1/integrations",
            &token,
            json!({"providerId": "salesforce", "name": "Acme org", "instanceUrl": server.url}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let connection = app
        .post(
            &format!("/api/v1/integrations/{id}/connections"),
            &token,
            json!({"type": "oauth2_client_credentials", "clientId": CLIENT_ID,
                   "clientSecret": CLIENT_SECRET, "tokenUrl": server.token_url()}),
        )
        .await;
    assert_eq!(connection.status.as_u16(), 201, "{}", connection.text);
    assert_eq!(server.requests("token"), 1);

    let ctx = Ctx::system(TenantId(tenant), "salesforce-adapter-test");
    let integration = service::get(
        &app.state.integrations,
        &ctx,
        Uuid::parse_str(&id).expect("uuid"),
    )
    .await
    .expect("integration");
    let a = SalesforceAdapter::open(&app.state.sync.adapters, &ctx, &integration)
        .await
        .expect("open");
    assert_eq!(
        run(&a, "Opportunity", None, 100, &[], &[])
            .await
            .records
            .len(),
        5
    );

    // The org ends the session: the adapter renews once and carries on.
    server.expire_tokens();
    let before = server.requests("query");
    let r = run(&a, "Opportunity", None, 100, &[], &[]).await;
    assert_eq!(r.records.len(), 5);
    assert_eq!(server.requests("token"), 2, "one renewal");
    assert_eq!(
        server.requests("query") - before,
        2,
        "refused once, retried once"
    );

    // Renewed at most once per run: the next 401 is final, with Salesforce's message.
    server.expire_tokens();
    let e = a.describe("Opportunity").await.expect_err("401");
    match &e {
        AdapterError::Unauthorized(m) => {
            assert!(m.contains("INVALID_SESSION_ID"), "{m}");
            assert!(!m.contains("00D5g000000TEST!"), "no token in errors: {m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests("token"), 2);

    // A fresh adapter (the next run) reads the renewed token from the store
    // and may renew again.
    let b = SalesforceAdapter::open(&app.state.sync.adapters, &ctx, &integration)
        .await
        .expect("open");
    b.describe("Opportunity").await.expect("renewed again");
    assert_eq!(server.requests("token"), 3);
}
