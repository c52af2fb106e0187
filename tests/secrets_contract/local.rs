//! Local-only: the ciphertext in the document store is bound to its owner
//! and key (the other stores keep no ciphertext of ours).

use castiel_integrations::platform::secrets::{SecretError, SecretStore};
use castiel_integrations::platform::store::Container;
use secrecy::SecretString;
use uuid::Uuid;

use crate::backends::{local_with_key, owner};

#[tokio::test]
async fn ciphertext_is_bound_to_its_owner_and_key() {
    let (secrets, store, _dir) = local_with_key([2; 32]).await;
    let tenant = Uuid::new_v4();
    let a = owner(tenant, "webhook", "a");
    let r = secrets
        .put(&a, &SecretString::from("top secret".to_owned()))
        .await
        .expect("put");
    let id = r.0.trim_start_matches("local:");
    let mut doc = store
        .read(Container::Secrets, &tenant.to_string(), id)
        .await
        .expect("read")
        .expect("doc")
        .body;
    let stored = doc.to_string();
    assert!(!stored.contains("top secret"), "stored encrypted");
    // Re-owning the document does not make it decrypt for the new owner.
    doc["ownerId"] = "b".into();
    store
        .replace(Container::Secrets, doc, None)
        .await
        .expect("tamper");
    let bee = owner(tenant, "webhook", "b");
    assert!(matches!(
        secrets.get(&bee, &r).await,
        Err(SecretError::Corrupt)
    ));
    // Another key cannot decrypt.
    let (other, other_store, _other_dir) = local_with_key([3; 32]).await;
    let r2 = secrets
        .put(&a, &SecretString::from("x".to_owned()))
        .await
        .expect("put");
    let id2 = r2.0.trim_start_matches("local:");
    let doc2 = store
        .read(Container::Secrets, &tenant.to_string(), id2)
        .await
        .expect("read")
        .expect("doc")
        .body;
    other_store
        .create(Container::Secrets, doc2)
        .await
        .expect("copy");
    assert!(matches!(
        other.get(&a, &r2).await,
        Err(SecretError::Corrupt)
    ));
}
