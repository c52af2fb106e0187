//! Castiel secret-management only: the routes, headers and token the double
//! checks, the owner check against another module's secrets, retries.

use castiel_integrations::platform::secrets::castiel::CastielSecretStore;
use castiel_integrations::platform::secrets::{
    MAX_VALUE_BYTES, SecretError, SecretRef, SecretStore,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use crate::backends::owner;
use crate::castiel_secrets_double::{self, CastielDouble, Stored};

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[tokio::test]
async fn calls_use_the_documented_routes_headers_and_service_token() {
    let double = CastielDouble::start().await;
    let store = double.store();
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "connection", "conn 1/ü");
    let r = store.put(&o, &secret("api-key")).await.expect("put");
    let id = r.0.strip_prefix("castiel:").expect("prefix").to_owned();
    assert_eq!(
        store.get(&o, &r).await.expect("get").expose_secret(),
        "api-key"
    );
    store.delete(&o, &r).await.expect("delete");
    store.health().await.expect("health");
    let state = double.state();
    assert!(state.problems.is_empty(), "{:?}", state.problems);
    assert_eq!(
        state.requests,
        [
            "POST /api/secrets",
            "GET /api/secrets/{id}",
            "GET /api/secrets/{id}/value",
            "GET /api/secrets/{id}",
            "DELETE /api/secrets/{id}",
        ]
    );
    let stored = &state.secrets[&id];
    assert!(stored.deleted);
    let meta = &stored.meta;
    assert_eq!(meta["type"], json!("GENERIC"));
    assert_eq!(meta["scope"], json!("ORGANIZATION"));
    assert_eq!(meta["organizationId"], json!(tenant.to_string()));
    assert_eq!(meta["metadata"]["ownerKind"], json!("connection"));
    assert_eq!(meta["metadata"]["ownerId"], json!("conn 1/ü"));
    assert!(meta["tags"].is_array());
}

#[tokio::test]
async fn a_wrong_jwt_secret_is_unavailable() {
    let double = CastielDouble::start().await;
    let keys = castiel_secrets_double::keys("not-the-secret-castiel-services-share");
    let store = CastielSecretStore::new(double.url.clone(), keys).expect("store");
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let e = store.put(&o, &secret("v")).await.expect_err("refused");
    assert!(
        matches!(&e, SecretError::Unavailable(m) if m.contains("401")),
        "{e}"
    );
    let e = store
        .get(&o, &SecretRef(format!("castiel:{}", Uuid::new_v4())))
        .await
        .expect_err("refused");
    assert!(
        matches!(e, SecretError::Unavailable(_)),
        "not NotFound: {e}"
    );
    assert_eq!(double.state().problems.len(), 2, "both calls were refused");
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_and_deletes_but_not_creates() {
    let double = CastielDouble::start().await;
    let store = double.store();
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let r = store.put(&o, &secret("v")).await.expect("put");
    double.state().requests.clear();
    double.state().answer_with = Some(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let e = store.get(&o, &r).await.expect_err("down");
    assert!(
        matches!(&e, SecretError::Unavailable(m) if m.contains("503")),
        "{e}"
    );
    assert_eq!(
        double.state().requests.len(),
        3,
        "a read is tried three times"
    );
    double.state().requests.clear();
    assert!(matches!(
        store.delete(&o, &r).await,
        Err(SecretError::Unavailable(_))
    ));
    assert_eq!(
        double.state().requests.len(),
        3,
        "a delete is tried three times"
    );
    double.state().requests.clear();
    assert!(matches!(
        store.put(&o, &secret("w")).await,
        Err(SecretError::Unavailable(_))
    ));
    assert_eq!(
        double.state().requests.len(),
        1,
        "a create may have happened: once"
    );
    double.state().requests.clear();
    double.state().answer_with = Some(axum::http::StatusCode::BAD_REQUEST);
    assert!(matches!(
        store.get(&o, &r).await,
        Err(SecretError::Unavailable(_))
    ));
    assert_eq!(double.state().requests.len(), 1, "a 4xx is never retried");
    double.state().answer_with = None;
    assert_eq!(store.get(&o, &r).await.expect("back").expose_secret(), "v");
}

#[tokio::test]
async fn another_modules_secret_of_the_tenant_is_forbidden() {
    let double = CastielDouble::start().await;
    let store = double.store();
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "webhook", "w1");
    let plant = |metadata: serde_json::Value| {
        let id = Uuid::new_v4().to_string();
        let meta = json!({"id": id, "organizationId": tenant.to_string(), "metadata": metadata});
        double.state().secrets.insert(
            id.clone(),
            Stored {
                meta: meta.as_object().cloned().expect("object"),
                value: "the tenant's OpenAI key".into(),
                deleted: false,
            },
        );
        SecretRef(format!("castiel:{id}"))
    };
    let foreign = plant(json!({"purpose": "ai-service"}));
    let unowned = plant(json!(null));
    for r in [&foreign, &unowned] {
        assert!(matches!(
            store.get(&o, r).await,
            Err(SecretError::Forbidden)
        ));
        assert!(matches!(
            store.delete(&o, r).await,
            Err(SecretError::Forbidden)
        ));
    }
    let state = double.state();
    assert!(
        state.requests.iter().all(|r| !r.ends_with("/value")),
        "no value was read"
    );
    assert!(state.secrets.values().all(|s| !s.deleted));
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}

#[tokio::test]
async fn values_over_the_limit_are_refused_before_sending() {
    let double = CastielDouble::start().await;
    let store = double.store();
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let e = store
        .put(&o, &secret(&"x".repeat(MAX_VALUE_BYTES + 1)))
        .await
        .expect_err("too large");
    assert!(matches!(
        e,
        SecretError::TooLarge {
            max: MAX_VALUE_BYTES
        }
    ));
    assert!(double.state().requests.is_empty());
    let store: &dyn SecretStore = &store;
    assert_eq!(store.name(), "castiel");
}
