//! Service-account connections against a local token endpoint that checks
//! the RS256 assertion with the key's public half (RFC 7523, as Google's
//! token endpoint does).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{Value, json};

use crate::Fixture;

const PRIVATE_KEY: &str = include_str!("../support/keys/service-account.pem");
const PUBLIC_KEY: &str = include_str!("../support/keys/service-account.pub.pem");
const EMAIL: &str = "castiel-sync@castiel-test.iam.gserviceaccount.com";

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

async fn token(
    State(seen): State<(Seen, String)>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let (seen, audience) = seen;
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        );
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[EMAIL]);
    v.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    match jsonwebtoken::decode::<Value>(form.get("assertion").map_or("", String::as_str), &key, &v)
    {
        Ok(data) => {
            seen.0.lock().expect("lock").push(data.claims);
            (
                StatusCode::OK,
                Json(
                    json!({"access_token": format!("ya29.{}", uuid::Uuid::new_v4().simple()), "expires_in": 3599, "token_type": "Bearer"}),
                ),
            )
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        ),
    }
}

async fn token_endpoint() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/token", listener.local_addr().expect("addr"));
    let seen = Seen::default();
    let app = Router::new()
        .route("/token", post(token))
        .with_state((seen.clone(), url.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn key_file(token_uri: &str, private_key: &str) -> Value {
    json!({
        "type": "service_account",
        "project_id": "castiel-test",
        "private_key_id": "0123456789abcdef",
        "private_key": private_key,
        "client_email": EMAIL,
        "client_id": "1234567890",
        "token_uri": token_uri,
    })
}

#[tokio::test]
async fn a_service_account_signs_an_assertion_the_endpoint_verifies() {
    let f = Fixture::new().await;
    let (url, seen) = token_endpoint().await;
    let id = f.integration("google_workspace").await;
    let path = format!("/api/v1/integrations/{id}/connections");
    let scopes = json!(["https://www.googleapis.com/auth/calendar.readonly"]);
    let a = f
        .post(
            &path,
            json!({"type": "service_account", "serviceAccountJson": key_file(&url, PRIVATE_KEY),
                   "scopes": scopes, "subject": "rep@castiel.test"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["clientId"], EMAIL);
    assert_eq!(a.body["subject"], "rep@castiel.test");
    assert!(a.body["oauth"]["expiresAt"].is_string());
    assert!(!a.text.contains("PRIVATE KEY"));
    let claims = seen.0.lock().expect("lock").clone();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        claims[0]["sub"], "rep@castiel.test",
        "domain-wide delegation"
    );
    assert_eq!(
        claims[0]["scope"],
        "https://www.googleapis.com/auth/calendar.readonly"
    );
    // The key as its JSON text works too, and refresh signs a new assertion.
    let text = key_file(&url, PRIVATE_KEY).to_string();
    let b = f
        .post(
            &path,
            json!({"type": "service_account", "serviceAccountJson": text, "scopes": scopes}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    let cid = b.body["id"].as_str().expect("id");
    let r = f.post(&format!("{path}/{cid}/refresh"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(seen.0.lock().expect("lock").len(), 3);
    assert!(seen.0.lock().expect("lock")[2].get("sub").is_none());
}

#[tokio::test]
async fn a_key_the_endpoint_does_not_trust_is_refused_with_its_pointer() {
    let f = Fixture::new().await;
    let (url, seen) = token_endpoint().await;
    let id = f.integration("google_workspace").await;
    let path = format!("/api/v1/integrations/{id}/connections");
    let scopes = json!(["https://www.googleapis.com/auth/drive.readonly"]);
    // A key that parses but is not the one the endpoint knows.
    let other = include_str!("../support/keys/other.pem");
    let a = f
        .post(&path, json!({"type": "service_account", "serviceAccountJson": key_file(&url, other), "scopes": scopes}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.pointers(), vec!["/serviceAccountJson"]);
    // A key that is not a key.
    let a = f
        .post(
            &path,
            json!({"type": "service_account", "serviceAccountJson": key_file(&url, "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"), "scopes": scopes}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.pointers(), vec!["/serviceAccountJson"]);
    assert!(seen.0.lock().expect("lock").is_empty());
    assert!(f.connections(&id).await.is_empty());
}
