//! The SecretStore contract: every implementation runs these tests.

use std::sync::Arc;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::secrets::local::LocalSecretStore;
use castiel_integrations::platform::secrets::{SecretError, SecretOwner, SecretRef, SecretStore};
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};
use castiel_integrations::platform::store::{Container, Store};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

struct Backend {
    secrets: Arc<dyn SecretStore>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

fn local_with_key(key: [u8; 32]) -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SqliteDb::open(&dir.path().join("s.db")).expect("sqlite");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(db, Arc::new(SystemClock)));
    let secrets = Arc::new(LocalSecretStore::new(
        &key,
        store.clone(),
        Arc::new(SystemClock),
    ));
    Backend {
        secrets,
        store,
        _dir: dir,
    }
}

fn owner(tenant: Uuid, kind: &'static str, id: &str) -> SecretOwner {
    SecretOwner {
        tenant_id: TenantId(tenant),
        kind,
        id: id.to_owned(),
    }
}

#[tokio::test]
async fn put_get_delete_round_trip() {
    let b = local_with_key([7; 32]);
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let value = SecretString::from("whsec_c2VjcmV0LXZhbHVl ✓".to_owned());
    let r = b.secrets.put(&o, &value).await.expect("put");
    assert!(!r.0.contains("whsec"), "references reveal nothing");
    assert_eq!(
        b.secrets.get(&o, &r).await.expect("get").expose_secret(),
        value.expose_secret()
    );
    let r2 = b
        .secrets
        .put(&o, &SecretString::from("second".to_owned()))
        .await
        .expect("put");
    assert_ne!(r, r2);
    b.secrets.delete(&o, &r).await.expect("delete");
    assert!(matches!(
        b.secrets.get(&o, &r).await,
        Err(SecretError::NotFound)
    ));
    b.secrets
        .delete(&o, &r)
        .await
        .expect("deleting twice is fine");
    assert_eq!(
        b.secrets
            .get(&o, &r2)
            .await
            .expect("other kept")
            .expose_secret(),
        "second"
    );
    b.secrets.health().await.expect("health");
}

#[tokio::test]
async fn only_the_owner_reads() {
    let b = local_with_key([1; 32]);
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "webhook", "w1");
    let r = b
        .secrets
        .put(&o, &SecretString::from("s".to_owned()))
        .await
        .expect("put");
    for other in [
        owner(tenant, "webhook", "w2"),
        owner(tenant, "connection", "w1"),
    ] {
        assert!(matches!(
            b.secrets.get(&other, &r).await,
            Err(SecretError::Forbidden)
        ));
        assert!(b.secrets.delete(&other, &r).await.is_err());
    }
    let stranger = owner(Uuid::new_v4(), "webhook", "w1");
    assert!(
        matches!(
            b.secrets.get(&stranger, &r).await,
            Err(SecretError::NotFound)
        ),
        "another tenant sees nothing"
    );
    for junk in ["", "local:", "local:not-a-uuid", "keyvault:x", "../../etc"] {
        assert!(
            matches!(
                b.secrets.get(&o, &SecretRef(junk.into())).await,
                Err(SecretError::NotFound)
            ),
            "{junk}"
        );
    }
}

#[tokio::test]
async fn ciphertext_is_bound_to_its_owner_and_key() {
    let b = local_with_key([2; 32]);
    let tenant = Uuid::new_v4();
    let a = owner(tenant, "webhook", "a");
    let r = b
        .secrets
        .put(&a, &SecretString::from("top secret".to_owned()))
        .await
        .expect("put");
    let id = r.0.trim_start_matches("local:");
    let mut doc = b
        .store
        .read(Container::Secrets, &tenant.to_string(), id)
        .await
        .expect("read")
        .expect("doc")
        .body;
    let stored = doc.to_string();
    assert!(!stored.contains("top secret"), "stored encrypted");
    // Re-owning the document does not make it decrypt for the new owner.
    doc["ownerId"] = "b".into();
    b.store
        .replace(Container::Secrets, doc, None)
        .await
        .expect("tamper");
    let bee = owner(tenant, "webhook", "b");
    assert!(matches!(
        b.secrets.get(&bee, &r).await,
        Err(SecretError::Corrupt)
    ));
    // Another key cannot decrypt.
    let other = local_with_key([3; 32]);
    let r2 = b
        .secrets
        .put(&a, &SecretString::from("x".to_owned()))
        .await
        .expect("put");
    let id2 = r2.0.trim_start_matches("local:");
    let doc2 = b
        .store
        .read(Container::Secrets, &tenant.to_string(), id2)
        .await
        .expect("read")
        .expect("doc")
        .body;
    other
        .store
        .create(Container::Secrets, doc2)
        .await
        .expect("copy");
    assert!(matches!(
        other.secrets.get(&a, &r2).await,
        Err(SecretError::Corrupt)
    ));
}
