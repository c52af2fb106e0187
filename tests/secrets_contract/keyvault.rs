//! Key Vault only: what the double checks of the SDK and the adapter, and the
//! adapter's naming, splitting, soft delete and failure mapping.

use std::sync::Arc;

use azure_core::http::{ClientOptions, StatusCode as SdkStatus, Transport};
use azure_security_keyvault_secrets::models::SetSecretParameters;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use castiel_integrations::platform::secrets::keyvault::PART_BYTES;
use castiel_integrations::platform::secrets::{
    MAX_VALUE_BYTES, SecretError, SecretRef, SecretStore,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use crate::backends::owner;
use crate::keyvault_double::{self, KeyVaultDouble, SCOPE, Stored, VALUE_LIMIT};

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// The SDK's own client on the double, for requests the adapter never makes.
fn raw_client(double: &KeyVaultDouble) -> SecretClient {
    let options = SecretClientOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(double.http_client())),
            ..ClientOptions::default()
        },
        ..SecretClientOptions::default()
    };
    SecretClient::new(
        double.url.as_str(),
        keyvault_double::credential(),
        Some(options),
    )
    .expect("client")
}

#[tokio::test]
async fn the_sdk_authenticates_through_the_bearer_challenge() {
    let double = KeyVaultDouble::start().await;
    let store = double.store();
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let r = store.put(&o, &secret("v")).await.expect("put");
    store.get(&o, &r).await.expect("get");
    let state = double.state();
    let first = state.requests.first().expect("a request");
    assert!(!first.authorized, "the first request draws the challenge");
    assert!(state.requests[1..].iter().all(|s| s.authorized));
    assert_eq!(
        state.scopes,
        [SCOPE],
        "the token is asked for the challenge's scope"
    );
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}

#[tokio::test]
async fn the_double_refuses_names_outside_the_key_vault_alphabet() {
    let double = KeyVaultDouble::start().await;
    let client = raw_client(&double);
    let set = |name: &'static str| {
        let client = &client;
        async move {
            let body = SetSecretParameters {
                value: Some("v".into()),
                ..SetSecretParameters::default()
            };
            client
                .set_secret(name, body.try_into().expect("body"), None)
                .await
        }
    };
    set("ok-Name-1").await.expect("a valid name is stored");
    let long: &'static str = "a".repeat(128).leak();
    for bad in ["bad_name", "bad.name", "ünï", long] {
        let e = set(bad).await.expect_err(bad);
        assert_eq!(e.http_status(), Some(SdkStatus::BadRequest), "{bad}");
    }
    let e = client.get_secret("bad_name", None).await.expect_err("get");
    assert_eq!(e.http_status(), Some(SdkStatus::BadRequest));
    // And every name the adapter writes is valid.
    let store = double.store();
    let o = owner(Uuid::new_v4(), "connection", "c/1 ü");
    store
        .put(&o, &secret(&"é".repeat(MAX_VALUE_BYTES / 2)))
        .await
        .expect("put");
    let state = double.state();
    assert_eq!(
        state.secrets.len(),
        1 + 3,
        "ok-Name-1 and one value in three parts"
    );
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}

#[tokio::test]
async fn long_values_are_split_and_deleted_softly_without_purge() {
    let double = KeyVaultDouble::start().await;
    let store = double.store();
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "connection", "c1");
    let value: String = "a¢€𐍈".chars().cycle().take(MAX_VALUE_BYTES / 3).collect();
    assert!(value.len() > 2 * PART_BYTES);
    let r = store.put(&o, &secret(&value)).await.expect("put");
    let name = r.0.strip_prefix("keyvault:").expect("prefix").to_owned();
    {
        let state = double.state();
        let names: Vec<_> = state.secrets.keys().cloned().collect();
        assert_eq!(
            names,
            [name.clone(), format!("{name}-p1"), format!("{name}-p2")]
        );
        for s in state.secrets.values() {
            assert!(s.value.len() <= VALUE_LIMIT);
            let tags = s.tags.as_ref().expect("tags");
            assert_eq!(tags["tenantId"], json!(tenant.to_string()));
            assert_eq!(tags["ownerKind"], json!("connection"));
            assert_eq!(tags["ownerId"], json!("c1"));
        }
        assert_eq!(
            state.secrets[&name].tags.as_ref().expect("tags")["parts"],
            json!("3")
        );
    }
    assert_eq!(
        store.get(&o, &r).await.expect("get").expose_secret(),
        &value
    );
    store.delete(&o, &r).await.expect("delete");
    let state = double.state();
    assert!(state.secrets.is_empty());
    assert_eq!(state.deleted.len(), 3, "soft-deleted: the names stay taken");
    assert!(
        state
            .requests
            .iter()
            .all(|s| !s.path.contains("deletedsecrets")),
        "no purge"
    );
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}

#[tokio::test]
async fn values_over_the_limit_are_refused_before_sending() {
    let double = KeyVaultDouble::start().await;
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
}

#[tokio::test]
async fn refusals_and_outages_are_unavailable_never_not_found() {
    let double = KeyVaultDouble::start().await;
    let store = double.store();
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let r = store.put(&o, &secret("v")).await.expect("put");
    // Refusals are not retried; throttling and server errors twice more.
    for (status, tries) in [(401, 1), (403, 1), (429, 3), (500, 3), (503, 3)] {
        let status = axum::http::StatusCode::from_u16(status).expect("status");
        double.state().answer_with = Some(status);
        let before = double.state().requests.len();
        let e = store.get(&o, &r).await.expect_err("refused");
        assert!(
            matches!(&e, SecretError::Unavailable(m) if m.contains(status.as_str())),
            "{e}"
        );
        assert_eq!(double.state().requests.len() - before, tries, "{status}");
    }
    assert!(matches!(
        store.health().await,
        Err(SecretError::Unavailable(_))
    ));
    assert!(matches!(
        store.delete(&o, &r).await,
        Err(SecretError::Unavailable(_))
    ));
    assert!(matches!(
        store.put(&o, &secret("w")).await,
        Err(SecretError::Unavailable(_))
    ));
    double.state().answer_with = None;
    assert_eq!(store.get(&o, &r).await.expect("back").expose_secret(), "v");
}

#[tokio::test]
async fn secrets_without_the_owners_tags_are_not_readable() {
    let double = KeyVaultDouble::start().await;
    let store = double.store();
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "webhook", "w1");
    let plant = |tags: serde_json::Value, value: &str| {
        let name = format!("c-{}-webhook-{}", tenant.simple(), Uuid::new_v4().simple());
        double.state().secrets.insert(
            name.clone(),
            Stored {
                value: value.into(),
                tags: tags.as_object().cloned(),
                content_type: None,
                version: "1".into(),
                created: 0,
            },
        );
        SecretRef(format!("keyvault:{name}"))
    };
    let t = tenant.to_string();
    let untagged = plant(json!(null), "a");
    let other_owner = plant(
        json!({"tenantId": t, "ownerKind": "webhook", "ownerId": "w2"}),
        "b",
    );
    let other_tenant = plant(
        json!({"tenantId": Uuid::new_v4().to_string(), "ownerKind": "webhook", "ownerId": "w1"}),
        "c",
    );
    let bad_parts = plant(
        json!({"tenantId": t, "ownerKind": "webhook", "ownerId": "w1", "parts": "9"}),
        "d",
    );
    let missing_part = plant(
        json!({"tenantId": t, "ownerKind": "webhook", "ownerId": "w1", "parts": "2"}),
        "e",
    );
    assert!(matches!(
        store.get(&o, &untagged).await,
        Err(SecretError::NotFound)
    ));
    assert!(matches!(
        store.get(&o, &other_owner).await,
        Err(SecretError::Forbidden)
    ));
    assert!(matches!(
        store.delete(&o, &other_owner).await,
        Err(SecretError::Forbidden)
    ));
    assert!(matches!(
        store.get(&o, &other_tenant).await,
        Err(SecretError::NotFound)
    ));
    store
        .delete(&o, &other_tenant)
        .await
        .expect("absent for this tenant");
    assert!(matches!(
        store.get(&o, &bad_parts).await,
        Err(SecretError::Corrupt)
    ));
    assert!(matches!(
        store.get(&o, &missing_part).await,
        Err(SecretError::Corrupt)
    ));
    let state = double.state();
    assert_eq!(state.secrets.len(), 5, "refused deletes deleted nothing");
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}

#[tokio::test]
async fn health_reads_a_missing_name_and_needs_only_get() {
    let double = KeyVaultDouble::start().await;
    let store: Arc<dyn SecretStore> = Arc::new(double.store());
    store.health().await.expect("healthy");
    let state = double.state();
    let last = state.requests.last().expect("request");
    assert_eq!(last.method, axum::http::Method::GET);
    assert!(
        last.path.starts_with("/secrets/castiel-health-probe"),
        "{}",
        last.path
    );
    assert_eq!(store.name(), "keyvault");
    assert!(format!("{store:?}").contains(keyvault_double::VAULT_HOST));
}
