//! The authorization-code flow with PKCE, end to end, and every way a
//! callback can be wrong.

use axum::http::StatusCode;
use castiel_integrations::domain::time::exact_text;
use serde_json::json;

use crate::oauth_server::INSTANCE_URL;
use crate::{Fixture, param};

#[tokio::test]
async fn the_full_flow_connects_refreshes_and_a_revoked_token_expires() {
    let mut f = Fixture::new().await;
    let id = f.integration("salesforce").await;
    let started = f.start(&id).await;
    let auth = url::Url::parse(started["authorizationUrl"].as_str().expect("url")).expect("url");
    assert_eq!(
        param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(param(&auth, "state").as_deref(), started["state"].as_str());
    assert_eq!(
        param(&auth, "redirect_uri").as_deref(),
        Some("https://integrations.castiel.test/api/v1/integrations/oauth/callback")
    );
    let query = f.server.authorize(auth.as_str()).await;
    let back = f.callback(&query).await;
    assert_eq!(
        back.origin().ascii_serialization(),
        "https://app.castiel.test"
    );
    assert_eq!(back.path(), "/settings/integrations");
    assert_eq!(
        param(&back, "tab").as_deref(),
        Some("crm"),
        "the returnUrl's own query is kept"
    );
    assert_eq!(
        param(&back, "status").as_deref(),
        Some("connected"),
        "{back}"
    );
    f.server
        .expect_token_requests("authorization_code", Some(200), 1);

    let i = f.integration_doc(&id).await;
    assert_eq!(i["status"], "connected");
    assert_eq!(i["connectionStatus"], "active");
    assert_eq!(
        i["instanceUrl"],
        format!("{INSTANCE_URL}/"),
        "Salesforce's instance_url is kept"
    );
    let conns = f.connections(&id).await;
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(c["type"], "oauth2");
    assert_eq!(c["status"], "active");
    let refs = c["secretRefs"].as_object().expect("refs");
    assert!(
        refs.contains_key("accessToken") && refs.contains_key("refreshToken"),
        "{c}"
    );
    let first_expiry = c["oauth"]["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .to_owned();

    // Refresh now.
    let cid = c["id"].as_str().expect("id");
    let path = format!("/api/v1/integrations/{id}/connections/{cid}/refresh");
    let r = f.post(&path, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    f.server
        .expect_token_requests("refresh_token", Some(200), 1);
    assert_ne!(
        r.body["secretRefs"]["accessToken"],
        c["secretRefs"]["accessToken"]
    );
    assert!(r.body["oauth"]["expiresAt"].as_str().expect("expiresAt") >= first_expiry.as_str());
    assert!(
        f.event_types()
            .contains(&"integration.token.refreshed".to_owned())
    );

    // The provider revokes the grant: the next refresh ends the connection.
    f.server.command("revoke-all");
    let r = f.post(&path, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("invalid_grant"), "{}", r.text);
    f.server
        .expect_token_requests("refresh_token", Some(400), 1);
    let c = &f.connections(&id).await[0];
    assert_eq!(c["status"], "expired");
    let i = f.integration_doc(&id).await;
    assert_eq!(i["status"], "error");
    assert_eq!(i["connectionStatus"], "expired");
    assert!(
        i["connectionError"]
            .as_str()
            .expect("error")
            .contains("invalid_grant")
    );
    let failed = f.events_of("integration.token.refresh_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].data["connectionId"], c["id"]);
    assert_eq!(failed[0].data["integrationId"], json!(id));
    assert_eq!(failed[0].data["error"], "invalid_grant");
    // An expired connection is not refreshed again on demand.
    let again = f.post(&path, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    f.server.expect_token_requests("refresh_token", None, 2);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_by_the_server_and_nothing_is_stored() {
    let f = Fixture::new().await;
    let id = f.integration("salesforce").await;
    let started = f.start(&id).await;
    // Swap the stored verifier: the server must refuse the exchange.
    f.edit_state(&started, |body| {
        assert!(body["codeVerifier"].as_str().is_some_and(|v| v.len() >= 43));
        body["codeVerifier"] = json!("x".repeat(43));
    })
    .await;
    let query = f
        .server
        .authorize(started["authorizationUrl"].as_str().expect("url"))
        .await;
    let back = f.callback(&query).await;
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("token_exchange_failed"),
        "{back}"
    );
    f.server
        .expect_token_requests("authorization_code", Some(400), 1);
    f.server
        .expect_token_requests("authorization_code", Some(200), 0);
    assert!(f.connections(&id).await.is_empty(), "nothing stored");
    assert_eq!(f.integration_doc(&id).await["status"], "pending");
}

#[tokio::test]
async fn replayed_expired_and_foreign_states_redirect_with_an_error() {
    let f = Fixture::new().await;
    let id = f.integration("salesforce").await;

    // Replay: the second use of a state is refused, nothing more exchanged.
    let started = f.start(&id).await;
    let query = f
        .server
        .authorize(started["authorizationUrl"].as_str().expect("url"))
        .await;
    assert_eq!(
        param(&f.callback(&query).await, "status").as_deref(),
        Some("connected")
    );
    let replay = f.callback(&query).await;
    assert_eq!(
        param(&replay, "error").as_deref(),
        Some("state_already_used")
    );
    assert_eq!(
        replay.origin().ascii_serialization(),
        "https://app.castiel.test"
    );
    f.server
        .expect_token_requests("authorization_code", None, 1);
    assert_eq!(f.connections(&id).await.len(), 1);

    // Expired: a state past its ten minutes (not yet removed by the TTL).
    let other = f.integration("salesforce").await;
    let started = f.start(&other).await;
    f.edit_state(&started, |body| {
        body["expiresAt"] = json!(exact_text(
            &(chrono::Utc::now() - chrono::Duration::seconds(1))
        ));
    })
    .await;
    let query = f
        .server
        .authorize(started["authorizationUrl"].as_str().expect("url"))
        .await;
    let back = f.callback(&query).await;
    assert_eq!(param(&back, "error").as_deref(), Some("state_expired"));
    assert!(f.connections(&other).await.is_empty());

    // Another tenant's partition: the state names a tenant it was not made for.
    let started = f.start(&other).await;
    let query = f
        .server
        .authorize(started["authorizationUrl"].as_str().expect("url"))
        .await;
    let state = started["state"].as_str().expect("state");
    let forged_state = format!(
        "{}.{}",
        uuid::Uuid::new_v4().simple(),
        state.split_once('.').expect("state").1
    );
    let forged = query.replace(&urlencoding(state), &urlencoding(&forged_state));
    assert_ne!(forged, query);
    let back = f.callback(&forged).await;
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_state"));
    assert_eq!(
        back.origin().ascii_serialization(),
        "https://app.castiel.test",
        "never an open redirect"
    );
    // A made-up state goes the same way.
    let back = f.callback("code=abc&state=nonsense").await;
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_state"));
    assert!(f.connections(&other).await.is_empty(), "nothing stored");
    f.server
        .expect_token_requests("authorization_code", None, 1);
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn access_denied_redirects_and_a_foreign_return_url_is_refused() {
    let f = Fixture::new().await;
    let id = f.integration("salesforce").await;
    for bad in [
        "https://evil.example/steal",
        "https://app.castiel.test.evil.example/",
        "https://user@app.castiel.test/",
        "javascript:alert(1)",
        "/relative",
    ] {
        let a = f
            .post(
                &format!("/api/v1/integrations/{id}/oauth/start"),
                json!({"returnUrl": bad}),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.pointers(), vec!["/returnUrl"]);
    }
    let started = f.start(&id).await;
    let state = started["state"].as_str().expect("state");
    let back = f
        .callback(&format!(
            "error=access_denied&error_description=user+said+no&state={}",
            urlencoding(state)
        ))
        .await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(f.integration_doc(&id).await["status"], "pending");
    f.server
        .expect_token_requests("authorization_code", None, 0);
    // Providers without OAuth, or without a configured client, say so.
    for (provider, says) in [
        ("custom_rest", "does not use OAuth"),
        ("hubspot", "HUBSPOT_CLIENT_ID"),
    ] {
        let i = f.integration(provider).await;
        let a = f
            .post(
                &format!("/api/v1/integrations/{i}/oauth/start"),
                json!({"returnUrl": "https://app.castiel.test/"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert!(a.text.contains(says), "{}", a.text);
    }
}
