//! The stored formats: legacy documents stay readable and migrate, tampered
//! parts do not decrypt (and keep their key from being retired), and
//! `SECRETS_KEY` lists rotate without a keyring file.

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use castiel_integrations::app::wiring;
use castiel_integrations::clock::SystemClock;
use castiel_integrations::config::Config;
use castiel_integrations::platform::secrets::local::rotate::{RotateError, rotate_key};
use castiel_integrations::platform::secrets::local::{
    KeyFile, KeyId, KeySource, Keyring, LocalSecretStore, generate_key,
};
use castiel_integrations::platform::secrets::{SecretError, SecretOwner, SecretRef, SecretStore};
use castiel_integrations::platform::store::{Container, Store};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{all_secret_docs, keyring_ids, local, open, options, owner, place};

/// A document exactly as the store wrote it before envelope encryption.
fn legacy_doc(key: &[u8; 32], o: &SecretOwner, id: &str, value: &str) -> Value {
    let nonce: [u8; 12] = rand::random();
    let aad = format!("castiel-secret:v1|{}|{}|{}|{id}", o.tenant_id, o.kind, o.id);
    let ciphertext = Aes256Gcm::new(key.into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: value.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .expect("encrypt");
    let key_id: String = Sha256::digest(key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({
        "id": id, "tenantId": o.tenant_id.to_string(), "kind": "secret",
        "ownerKind": o.kind, "ownerId": o.id, "keyId": key_id,
        "nonce": STANDARD.encode(nonce), "ciphertext": STANDARD.encode(ciphertext),
        "createdAt": "2025-01-01T00:00:00Z",
    })
}

fn value_of(r: &SecretRef) -> &str {
    r.0.trim_start_matches("local:")
}

async fn doc(store: &dyn Store, o: &SecretOwner, r: &SecretRef) -> Value {
    store
        .read(Container::Secrets, &o.tenant_id.to_string(), value_of(r))
        .await
        .expect("read")
        .expect("doc")
        .body
}

async fn replace(store: &dyn Store, body: Value) {
    store
        .replace(Container::Secrets, body, None)
        .await
        .expect("tamper");
}

fn flip_last_byte(b64: &Value) -> Value {
    let mut bytes = STANDARD.decode(b64.as_str().expect("b64")).expect("b64");
    *bytes.last_mut().expect("bytes") ^= 1;
    STANDARD.encode(bytes).into()
}

#[tokio::test]
async fn legacy_documents_stay_readable_and_migrate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key: [u8; 32] = rand::random();
    std::fs::write(dir.path().join("secrets.key"), STANDARD.encode(key)).expect("key file");
    let place = place(dir.path());
    let store = open(&place).await;
    let tenant = Uuid::new_v4();
    let mut legacy = Vec::new();
    for i in 0..30 {
        let o = owner(tenant, "webhook", &format!("w{i}"));
        let id = Uuid::new_v4().to_string();
        let value = format!("legacy value {i}");
        store
            .create(Container::Secrets, legacy_doc(&key, &o, &id, &value))
            .await
            .expect("legacy doc");
        legacy.push((o, SecretRef(format!("local:{id}")), value));
    }
    let service = local(dir.path(), store.clone());
    for (o, r, value) in &legacy {
        assert_eq!(
            service
                .get(o, r)
                .await
                .expect("legacy read")
                .expose_secret(),
            value
        );
    }
    // New secrets use the envelope format under the legacy key until rotated.
    let o = owner(tenant, "connection", "c1");
    let fresh = service
        .put(&o, &SecretString::from("fresh".to_owned()))
        .await
        .expect("put");
    let before = doc(store.as_ref(), &o, &fresh).await;
    assert_eq!(before["format"], 2);
    assert_eq!(before["keyId"], KeyId::of(&key).as_str());

    let report = rotate_key(
        store.clone(),
        KeySource::File(KeyFile::in_dir(dir.path())),
        None,
        &options(Duration::ZERO),
    )
    .await
    .expect("rotate");
    assert_eq!((report.migrated, report.rewrapped), (30, 1), "{report}");
    assert!(report.legacy_file_removed);
    assert!(!dir.path().join("secrets.key").exists());
    let new = report.primary.clone().expect("primary");
    assert_eq!(keyring_ids(dir.path()), vec![new.clone()]);
    let after = doc(store.as_ref(), &o, &fresh).await;
    assert_eq!(
        after["ciphertext"], before["ciphertext"],
        "re-wrapping leaves the value"
    );
    assert_ne!(after["wrappedKey"], before["wrappedKey"]);
    for d in all_secret_docs(store.as_ref()).await {
        assert_eq!(
            (d.body["format"].clone(), d.body["keyId"].clone()),
            (json!(2), json!(new.as_str()))
        );
    }
    let restarted = local(dir.path(), open(&place).await);
    for (o, r, value) in &legacy {
        assert_eq!(
            restarted.get(o, r).await.expect("migrated").expose_secret(),
            value
        );
    }
    // The legacy key alone no longer opens anything.
    let old_only = LocalSecretStore::new(&key, store, Arc::new(SystemClock));
    assert!(matches!(
        old_only.get(&legacy[0].0, &legacy[0].1).await,
        Err(SecretError::Corrupt)
    ));
}

#[tokio::test]
async fn tampering_is_corrupt_and_keeps_the_old_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let place = place(dir.path());
    let store = open(&place).await;
    let service = local(dir.path(), store.clone());
    let tenant = Uuid::new_v4();
    let put = async |name: &str| {
        let o = owner(tenant, "webhook", name);
        let r = service
            .put(&o, &SecretString::from(format!("v-{name}")))
            .await
            .expect("put");
        (o, r)
    };
    let (a, b, c, d, e, good) = (
        put("a").await,
        put("b").await,
        put("c").await,
        put("d").await,
        put("e").await,
        put("good").await,
    );
    let body_a = doc(store.as_ref(), &a.0, &a.1).await;

    let mut t = body_a.clone();
    t["wrappedKey"] = flip_last_byte(&t["wrappedKey"]);
    replace(store.as_ref(), t).await;
    let mut t = doc(store.as_ref(), &b.0, &b.1).await;
    t["ciphertext"] = flip_last_byte(&t["ciphertext"]);
    replace(store.as_ref(), t).await;
    let mut t = doc(store.as_ref(), &c.0, &c.1).await;
    t["wrappedKey"] = body_a["wrappedKey"].clone(); // another document's data key
    replace(store.as_ref(), t).await;
    let mut t = doc(store.as_ref(), &d.0, &d.1).await;
    t["format"] = 3.into();
    replace(store.as_ref(), t).await;
    let mut t = doc(store.as_ref(), &e.0, &e.1).await;
    t["keyId"] = "00000000".into();
    replace(store.as_ref(), t).await;
    for (o, r) in [&a, &b, &c, &d, &e] {
        assert!(
            matches!(service.get(o, r).await, Err(SecretError::Corrupt)),
            "{}",
            o.id
        );
    }

    let old = keyring_ids(dir.path());
    let err = rotate_key(
        store.clone(),
        KeySource::File(KeyFile::in_dir(dir.path())),
        None,
        &options(Duration::ZERO),
    )
    .await
    .expect_err("tampered secrets under the old key");
    assert!(
        matches!(err, RotateError::Undecryptable { count: 3, .. }),
        "{err}"
    );
    let ids = keyring_ids(dir.path());
    assert_eq!(ids.len(), 2, "new primary, old key kept");
    assert_eq!(ids[1], old[0]);
    assert_eq!(
        service
            .get(&good.0, &good.1)
            .await
            .expect("moved")
            .expose_secret(),
        "v-good"
    );

    // Once the damaged secrets are gone, the next rotation retires both keys.
    for (o, r) in [&a, &c, &d] {
        service.delete(o, r).await.expect("delete");
    }
    let report = rotate_key(
        store.clone(),
        KeySource::File(KeyFile::in_dir(dir.path())),
        None,
        &options(Duration::ZERO),
    )
    .await
    .expect("rotate");
    assert_eq!(report.retired, ids, "{report}");
    assert_eq!(report.unknown_key, 1, "left as it was");
    assert_eq!(
        service
            .get(&good.0, &good.1)
            .await
            .expect("moved")
            .expose_secret(),
        "v-good"
    );
    assert!(matches!(
        service.get(&b.0, &b.1).await,
        Err(SecretError::Corrupt)
    ));
}

#[tokio::test]
async fn a_secrets_key_list_rotates_without_a_keyring_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let place = place(dir.path());
    let store = open(&place).await;
    let (old, new, third) = (generate_key(), generate_key(), generate_key());
    let fixed = |list: &str| {
        LocalSecretStore::open(
            KeySource::Fixed(Keyring::parse_list(list).expect("list")),
            store.clone(),
            Arc::new(SystemClock),
        )
        .expect("store")
    };
    let tenant = Uuid::new_v4();
    let mut written = Vec::new();
    for (list, n) in [(old.clone(), 20), (format!("{new},{old}"), 5)] {
        let s = fixed(&list);
        for i in 0..n {
            let o = owner(tenant, "webhook", &format!("w{i}"));
            let r = s
                .put(&o, &SecretString::from(format!("v{i}")))
                .await
                .expect("put");
            written.push((o, r, format!("v{i}")));
        }
    }
    let list = Keyring::parse_list(&format!("{new},{old}")).expect("list");
    let old_id = list.older()[0].id().clone();
    let report = rotate_key(
        store.clone(),
        KeySource::Fixed(list),
        None,
        &options(Duration::ZERO),
    )
    .await
    .expect("rotate");
    assert!(!report.keyring_file);
    assert_eq!(
        (report.rewrapped, report.retired.clone()),
        (20, vec![old_id]),
        "{report}"
    );
    assert!(report.to_string().contains("remove them from SECRETS_KEY"));
    assert!(!dir.path().join("secrets.keys").exists(), "no file written");
    let only_new = fixed(&new);
    for (o, r, v) in &written {
        assert_eq!(only_new.get(o, r).await.expect("read").expose_secret(), v);
    }

    // --to: a key kept outside DATA_DIR becomes the primary.
    let to = castiel_integrations::platform::secrets::local::Kek::decode(&third).expect("key");
    let list = Keyring::parse_list(&new).expect("list");
    let report = rotate_key(
        store.clone(),
        KeySource::Fixed(list),
        Some(to),
        &options(Duration::ZERO),
    )
    .await
    .expect("rotate to");
    assert_eq!(report.rewrapped, 25);
    let only_third = fixed(&third);
    for (o, r, v) in &written {
        assert_eq!(only_third.get(o, r).await.expect("read").expose_secret(), v);
    }
}

#[test]
fn the_wiring_reads_secrets_key_lists_and_names_a_bad_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_string_lossy().into_owned();
    let good = format!("{},{}", generate_key(), generate_key());
    let config =
        Config::from_pairs(&[("DATA_DIR", &data_dir), ("SECRETS_KEY", &good)]).expect("config");
    match wiring::local_key_source(&config).expect("a list") {
        KeySource::Fixed(ring) => assert_eq!(ring.ids().len(), 2),
        KeySource::File(_) => panic!("SECRETS_KEY wins over DATA_DIR"),
    }
    let leaked = generate_key();
    let bad = format!("{leaked},not-a-key");
    let config =
        Config::from_pairs(&[("DATA_DIR", &data_dir), ("SECRETS_KEY", &bad)]).expect("config");
    let Err(err) = wiring::local_key_source(&config) else {
        panic!("a bad list is refused");
    };
    let err = format!("{err:#}");
    assert!(
        err.contains("SECRETS_KEY") && err.contains("key 2"),
        "{err}"
    );
    assert!(!err.contains(&leaked), "{err}");
}
