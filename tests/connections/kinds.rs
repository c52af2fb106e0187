//! Connection types other than the code flow: validation per type with
//! pointers, the provider's accepted methods, replacement, deletion, and
//! tenant isolation.

use axum::http::StatusCode;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::features::connections::service::owner;
use castiel_integrations::platform::secrets::{SecretError, SecretRef};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Fixture;
use crate::oauth_server::{CLIENT_ID, CLIENT_SECRET};

fn path(integration: &str) -> String {
    format!("/api/v1/integrations/{integration}/connections")
}

#[tokio::test]
async fn static_credentials_connect_and_hold_only_references() {
    let f = Fixture::new().await;
    let id = f.integration("custom_rest").await;
    for (body, secret_name) in [
        (
            json!({"type": "api_key", "apiKey": "ak_live_0123456789", "displayName": "Prod key"}),
            "apiKey",
        ),
        (
            json!({"type": "basic", "username": "svc-castiel", "password": "pa55-w0rd-very-long"}),
            "password",
        ),
        (
            json!({"type": "bearer", "token": "bt_0123456789abcdef"}),
            "token",
        ),
    ] {
        let a = f.post(&path(&id), body.clone()).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.body["status"], "active");
        assert_eq!(a.body["integrationId"], json!(id));
        let refs = a.body["secretRefs"].as_object().expect("refs");
        assert_eq!(refs.keys().collect::<Vec<_>>(), vec![secret_name]);
        for v in body.as_object().expect("object").values() {
            let v = v.as_str().expect("text");
            if v.len() > 12 {
                assert!(!a.text.contains(v), "a secret is in the answer: {}", a.text);
            }
        }
        // The secret is in the secret store under the connection.
        let cid: Uuid = a.body["id"].as_str().expect("id").parse().expect("uuid");
        let r = SecretRef(refs[secret_name].as_str().expect("ref").to_owned());
        let value = f
            .app
            .state
            .secrets
            .get(&owner(TenantId(f.tenant), cid), &r)
            .await
            .expect("stored");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&value),
            body[secret_name]
        );
    }
    // One active connection: each replaced the one before.
    let conns = f.connections(&id).await;
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["type"], "bearer");
    let i = f.integration_doc(&id).await;
    assert_eq!(i["status"], "connected");
    assert_eq!(i["connectionStatus"], "active");
}

#[tokio::test]
async fn a_replaced_or_deleted_connection_takes_its_secrets_along() {
    let f = Fixture::new().await;
    let secrets = f.app.state.secrets.clone();
    let id = f.integration("custom_rest").await;
    let first = f
        .post(
            &path(&id),
            json!({"type": "api_key", "apiKey": "first-key-000000"}),
        )
        .await;
    let first_id: Uuid = first.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let first_ref = SecretRef(
        first.body["secretRefs"]["apiKey"]
            .as_str()
            .expect("ref")
            .to_owned(),
    );
    let second = f
        .post(
            &path(&id),
            json!({"type": "api_key", "apiKey": "second-key-00000"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    let gone = secrets
        .get(&owner(TenantId(f.tenant), first_id), &first_ref)
        .await;
    assert!(
        matches!(gone, Err(SecretError::NotFound)),
        "the old secret is deleted"
    );

    let second_id: Uuid = second.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let second_ref = SecretRef(
        second.body["secretRefs"]["apiKey"]
            .as_str()
            .expect("ref")
            .to_owned(),
    );
    let del = f
        .app
        .delete(&format!("{}/{second_id}", path(&id)), &f.token)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text);
    assert!(matches!(
        secrets
            .get(&owner(TenantId(f.tenant), second_id), &second_ref)
            .await,
        Err(SecretError::NotFound)
    ));
    let i = f.integration_doc(&id).await;
    assert_eq!(i["status"], "pending", "no connection: pending again");
    assert_eq!(i["connectionStatus"], "none");

    // Deleting the integration deletes its connections and their secrets.
    let third = f
        .post(
            &path(&id),
            json!({"type": "api_key", "apiKey": "third-key-000000"}),
        )
        .await;
    let third_id: Uuid = third.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let third_ref = SecretRef(
        third.body["secretRefs"]["apiKey"]
            .as_str()
            .expect("ref")
            .to_owned(),
    );
    let del = f
        .app
        .delete(&format!("/api/v1/integrations/{id}"), &f.token)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(matches!(
        secrets
            .get(&owner(TenantId(f.tenant), third_id), &third_ref)
            .await,
        Err(SecretError::NotFound)
    ));
    let left = f
        .app
        .state
        .store
        .read(
            castiel_integrations::platform::store::Container::Connections,
            &id,
            &third_id.to_string(),
        )
        .await
        .expect("read");
    assert!(left.is_none(), "the connection document is gone");
}

#[tokio::test]
async fn each_type_is_validated_with_pointers() {
    let f = Fixture::new().await;
    let id = f.integration("custom_rest").await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"type": "api_key"}), vec!["/apiKey"]),
        (json!({"type": "api_key", "apiKey": ""}), vec!["/apiKey"]),
        (
            json!({"type": "api_key", "apiKey": "k\nx"}),
            vec!["/apiKey"],
        ),
        (
            json!({"type": "api_key", "apiKey": "k", "password": "p"}),
            vec!["/password"],
        ),
        (json!({"type": "basic", "username": "u"}), vec!["/password"]),
        (json!({"type": "basic", "password": "p"}), vec!["/username"]),
        (
            json!({"type": "bearer", "token": "t", "scopes": ["a"]}),
            vec!["/scopes"],
        ),
        (json!({"type": "oauth2"}), vec!["/type"]),
        (json!({"type": "kerberos"}), vec!["/type"]),
        (
            json!({"type": "api_key", "apiKey": "k", "secretRefs": {}}),
            vec!["/secretRefs"],
        ),
        (
            json!({"type": "api_key", "apiKey": "k", "extra": 1}),
            vec!["/extra"],
        ),
        (
            json!({"type": "oauth2_client_credentials", "clientId": "c"}),
            vec!["/clientSecret", "/tokenUrl"],
        ),
        (
            json!({"type": "oauth2_client_credentials", "clientId": "c", "clientSecret": "s", "tokenUrl": "http://example.com/token"}),
            vec!["/tokenUrl"],
        ),
        (
            json!({"type": "oauth2_client_credentials", "clientId": "c", "clientSecret": "s", "tokenUrl": "https://10.0.0.1/token"}),
            vec!["/tokenUrl"],
        ),
        (
            json!({"type": "service_account", "scopes": ["s"]}),
            vec!["/serviceAccountJson"],
        ),
        (
            json!({"type": "service_account", "scopes": ["s"], "serviceAccountJson": "x".repeat(20_000)}),
            vec!["/serviceAccountJson"],
        ),
        (
            json!({"type": "service_account", "serviceAccountJson": {"type": "user"}, "scopes": []}),
            vec!["/scopes", "/serviceAccountJson"],
        ),
    ];
    for (body, pointers) in cases {
        let a = f.post(&path(&id), body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        let mut got = a.pointers();
        got.sort();
        assert_eq!(got, pointers, "{body}: {}", a.text);
    }
    // The provider's accepted methods: Salesforce takes OAuth only.
    let sf = f.integration("salesforce").await;
    let a = f
        .post(&path(&sf), json!({"type": "api_key", "apiKey": "abc"}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.pointers(), vec!["/type"]);
    assert!(f.connections(&id).await.is_empty(), "nothing was stored");
    assert!(f.connections(&sf).await.is_empty());
    assert_eq!(f.integration_doc(&id).await["status"], "pending");
}

#[tokio::test]
async fn client_credentials_are_proven_at_the_token_endpoint() {
    let f = Fixture::new().await;
    let id = f.integration("salesforce").await;
    let body = |secret: &str| {
        json!({"type": "oauth2_client_credentials", "clientId": CLIENT_ID, "clientSecret": secret,
               "tokenUrl": f.server.token_url(), "scopes": ["api", "refresh_token"]})
    };
    let wrong = f.post(&path(&id), body("not-the-secret")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    assert_eq!(wrong.pointers(), vec!["/clientSecret"]);
    assert!(wrong.text.contains("invalid_client"), "{}", wrong.text);
    assert!(f.connections(&id).await.is_empty());

    let a = f.post(&path(&id), body(CLIENT_SECRET)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(a.body["oauth"]["expiresAt"].is_string(), "{}", a.text);
    assert!(a.body["secretRefs"]["accessToken"].is_string());
    assert!(a.body["secretRefs"]["clientSecret"].is_string());
    assert!(!a.text.contains(CLIENT_SECRET));
    f.server
        .expect_token_requests("client_credentials", Some(200), 1);
    f.server
        .expect_token_requests("client_credentials", Some(401), 1);
    // Refresh now asks for a new token with the stored client secret.
    let cid = a.body["id"].as_str().expect("id");
    let r = f
        .post(&format!("{}/{cid}/refresh", path(&id)), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    f.server
        .expect_token_requests("client_credentials", Some(200), 2);
    // Static credentials have nothing to refresh.
    let custom = f.integration("custom_rest").await;
    let k = f
        .post(
            &path(&custom),
            json!({"type": "api_key", "apiKey": "abcdef"}),
        )
        .await;
    let r = f
        .post(
            &format!(
                "{}/{}/refresh",
                path(&custom),
                k.body["id"].as_str().expect("id")
            ),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn another_tenant_sees_and_changes_nothing() {
    let f = Fixture::new().await;
    let id = f.integration("custom_rest").await;
    let c = f
        .post(
            &path(&id),
            json!({"type": "api_key", "apiKey": "tenant-a-key"}),
        )
        .await;
    let cid = c.body["id"].as_str().expect("id");
    let other = f.app.token(Uuid::new_v4());
    for a in [
        f.app.get(&path(&id), &other).await,
        f.app
            .post(
                &path(&id),
                &other,
                json!({"type": "api_key", "apiKey": "x"}),
            )
            .await,
        f.app.delete(&format!("{}/{cid}", path(&id)), &other).await,
        f.app
            .post(&format!("{}/{cid}/refresh", path(&id)), &other, json!({}))
            .await,
        f.app
            .post(
                &format!("/api/v1/integrations/{id}/oauth/start"),
                &other,
                json!({"returnUrl": "https://app.castiel.test/"}),
            )
            .await,
    ] {
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    }
    assert_eq!(f.connections(&id).await.len(), 1);
    // A connection id under another of the tenant's integrations is not found either.
    let id2 = f.integration("custom_rest").await;
    let a = f
        .app
        .delete(&format!("{}/{cid}", path(&id2)), &f.token)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
