//! Local secrets: envelope-encrypted documents in the document store
//! (`SECRETS=local`).
//!
//! Each secret's value is encrypted with its own data key, which is wrapped
//! with a key-encryption key of the store's [`Keyring`] ([`envelope`]). The
//! keyring comes from `SECRETS_KEY` (a fixed list, primary first) or from
//! `DATA_DIR/secrets.keys` ([`keyfile`]), which this store re-reads when it
//! changed, so that `rotate-key` ([`rotate`]) can run while the service does.

pub mod envelope;
pub mod keyfile;
pub mod keyring;
pub mod rotate;

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use self::envelope::{Address, Dek, ENVELOPE_FORMAT, Stored};
use self::keyfile::Fingerprint;
pub use self::keyfile::KeyFile;
pub use self::keyring::{Kek, KeyId, Keyring, KeyringError, decode_key, generate_key};
use super::{SecretError, SecretOwner, SecretRef, SecretStore};
use crate::clock::Clock;
use crate::platform::store::{Container, Document, Store, StoreError};

const PREFIX: &str = "local:";

/// How often a write retries a re-wrap that lost a race before giving up.
const REWRAP_ATTEMPTS: usize = 10;

/// Where a local store's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// A fixed keyring (`SECRETS_KEY`; tests): it never changes while the
    /// process runs.
    Fixed(Keyring),
    /// The keyring file of a `DATA_DIR`, re-read whenever it changed.
    File(KeyFile),
}

/// The keyring a store uses now, and the file version it was read from.
struct Current {
    ring: Arc<Keyring>,
    seen: Option<Fingerprint>,
}

/// A store's keys: the current keyring and, for a file source, the file.
struct Keys {
    current: RwLock<Current>,
    file: Option<KeyFile>,
    /// One re-read at a time, so an older read never replaces a newer one.
    reload: Mutex<()>,
}

impl Keys {
    fn open(source: KeySource) -> Result<Self, KeyringError> {
        let (ring, seen, file) = match source {
            KeySource::Fixed(ring) => (ring, None, None),
            KeySource::File(file) => {
                let (ring, seen) = file.open_or_create()?;
                (ring, seen, Some(file))
            }
        };
        Ok(Self {
            current: RwLock::new(Current {
                ring: Arc::new(ring),
                seen,
            }),
            file,
            reload: Mutex::new(()),
        })
    }

    fn held(&self) -> Arc<Keyring> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ring
            .clone()
    }

    /// The keyring as of now: one `stat` of the keyring file, and a re-read
    /// when it changed. A fixed keyring is returned as it is.
    fn fresh(&self) -> Result<Arc<Keyring>, SecretError> {
        let Some(file) = &self.file else {
            return Ok(self.held());
        };
        let seen = || {
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .seen
        };
        if !file.changed_since(seen()) {
            return Ok(self.held());
        }
        let _one = self.reload.lock().unwrap_or_else(PoisonError::into_inner);
        match file.reload_if_changed(seen()) {
            Ok(None) => Ok(self.held()),
            Ok(Some((ring, now))) => {
                tracing::info!(
                    secrets.primary_key = %ring.primary().id(),
                    secrets.keys = ring.ids().len(),
                    "re-read the secrets keyring"
                );
                let ring = Arc::new(ring);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Current {
                    ring: ring.clone(),
                    seen: Some(now),
                };
                Ok(ring)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the secrets keyring");
                Err(SecretError::Unavailable(
                    "the secrets keyring cannot be read".into(),
                ))
            }
        }
    }

    /// The key named `id`: from the keyring held, else from a changed
    /// keyring file (a rotation elsewhere added it).
    fn find(&self, id: &str) -> Result<Option<Arc<Kek>>, SecretError> {
        if let Some(kek) = self.held().get(id) {
            return Ok(Some(kek.clone()));
        }
        Ok(self.fresh()?.get(id).cloned())
    }
}

/// Secrets encrypted with a local keyring, stored through the [`Store`] port.
pub struct LocalSecretStore {
    keys: Keys,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSecretStore")
            .field("primary_key", self.keys.held().primary().id())
            .field("keyring_file", &self.keys.file.as_ref().map(KeyFile::path))
            .finish_non_exhaustive()
    }
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "used as map_err(unavailable)"
)]
fn unavailable(e: StoreError) -> SecretError {
    SecretError::Unavailable(e.to_string())
}

fn corrupt(_: envelope::Undecryptable) -> SecretError {
    SecretError::Corrupt
}

impl LocalSecretStore {
    /// A store with one fixed 32-byte key (the primary of a one-key keyring).
    pub fn new(key: &[u8; 32], store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys: Keys {
                current: RwLock::new(Current {
                    ring: Arc::new(Keyring::single(Kek::new(key))),
                    seen: None,
                }),
                file: None,
                reload: Mutex::new(()),
            },
            store,
            clock,
        }
    }

    /// A store on a key source; a [`KeySource::File`] is read now (and
    /// created with one new key in a `DATA_DIR` that has no keys yet).
    pub fn open(
        source: KeySource,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyringError> {
        Ok(Self {
            keys: Keys::open(source)?,
            store,
            clock,
        })
    }

    /// The ids of the keys this store holds now, the primary first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.held().ids()
    }

    fn id_of(r: &SecretRef) -> Result<&str, SecretError> {
        r.0.strip_prefix(PREFIX)
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            .ok_or(SecretError::NotFound)
    }

    /// The second half of `put`'s guard against a concurrent rotation (see
    /// [`rotate`], "Writes racing the rotation"): if the keyring's primary
    /// changed while the secret was written (or the keyring
    /// cannot be read to tell), wrap its data key again with the current
    /// primary, conditioned on the ETag just written. A failure deletes the
    /// secret and fails the put, so no caller ever holds a reference to a
    /// secret left under a key being retired.
    async fn follow_rotation(
        &self,
        dek: &Dek,
        at: &Address<'_>,
        mut body: Value,
        written: Document,
    ) -> Result<(), SecretError> {
        let mut etag = written.etag;
        for _ in 0..REWRAP_ATTEMPTS {
            let Ok(ring) = self.keys.fresh() else { break };
            let primary = ring.primary();
            if body["keyId"] == primary.id().as_str() {
                return Ok(());
            }
            let Ok(wrapped) = envelope::wrap(primary, dek, at) else {
                break;
            };
            let fields = json!({
                "format": ENVELOPE_FORMAT,
                "keyId": primary.id().as_str(),
                "wrappedKey": wrapped,
            });
            envelope::apply(&mut body, fields);
            match self
                .store
                .replace(Container::Secrets, body.clone(), Some(&etag))
                .await
            {
                Ok(_) | Err(StoreError::NotFound) => return Ok(()),
                Err(StoreError::PreconditionFailed) => {
                    // The rotation re-wrapped it first, or it was deleted.
                    match self.store.read(Container::Secrets, at.tenant, at.id).await {
                        Ok(None) => return Ok(()),
                        Ok(Some(doc)) if doc.body["keyId"] == primary.id().as_str() => {
                            return Ok(());
                        }
                        Ok(Some(doc)) => etag = doc.etag,
                        Err(_) => break,
                    }
                }
                Err(StoreError::Throttled { retry_after }) => tokio::time::sleep(retry_after).await,
                Err(_) => break,
            }
        }
        match self
            .store
            .delete(Container::Secrets, at.tenant, at.id, None)
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => tracing::warn!(
                secret.id = at.id,
                error = %e,
                "could not delete an unreferenced secret written under a retiring key"
            ),
        }
        Err(SecretError::Unavailable(
            "the secret could not be moved to the new primary key".into(),
        ))
    }
}

#[async_trait]
impl SecretStore for LocalSecretStore {
    async fn put(
        &self,
        owner: &SecretOwner,
        value: &SecretString,
    ) -> Result<SecretRef, SecretError> {
        super::check_size(value.expose_secret())?;
        let id = uuid::Uuid::new_v4().to_string();
        let tenant = owner.tenant_id.to_string();
        let at = Address {
            tenant: &tenant,
            owner_kind: owner.kind,
            owner_id: &owner.id,
            id: &id,
        };
        // Right before writing: a rotation's new primary is used at once.
        let kek = self.keys.fresh()?.primary().clone();
        let (fields, dek) =
            envelope::seal(&kek, &at, value.expose_secret().as_bytes()).map_err(corrupt)?;
        let mut doc = json!({
            "id": id,
            "tenantId": tenant,
            "kind": "secret",
            "ownerKind": owner.kind,
            "ownerId": owner.id,
            "createdAt": self.clock.now(),
        });
        envelope::apply(&mut doc, fields);
        let written = self
            .store
            .create(Container::Secrets, doc.clone())
            .await
            .map_err(unavailable)?;
        self.follow_rotation(&dek, &at, doc, written).await?;
        Ok(SecretRef(format!("{PREFIX}{id}")))
    }

    async fn get(&self, owner: &SecretOwner, r: &SecretRef) -> Result<SecretString, SecretError> {
        let id = Self::id_of(r)?;
        let tenant = owner.tenant_id.to_string();
        let doc = self
            .store
            .read(Container::Secrets, &tenant, id)
            .await
            .map_err(unavailable)?
            .ok_or(SecretError::NotFound)?;
        let b = &doc.body;
        if b["ownerKind"] != owner.kind || b["ownerId"] != Value::String(owner.id.clone()) {
            return Err(SecretError::Forbidden);
        }
        let stored = Stored::parse(b).map_err(corrupt)?;
        let kek = self
            .keys
            .find(&stored.key_id)?
            .ok_or(SecretError::Corrupt)?;
        let at = Address {
            tenant: &tenant,
            owner_kind: owner.kind,
            owner_id: &owner.id,
            id,
        };
        let plain = stored.open(&kek, &at).map_err(corrupt)?;
        String::from_utf8(plain.to_vec())
            .map(SecretString::from)
            .map_err(|_| SecretError::Corrupt)
    }

    async fn delete(&self, owner: &SecretOwner, r: &SecretRef) -> Result<(), SecretError> {
        let Ok(id) = Self::id_of(r) else {
            return Ok(());
        };
        let tenant = owner.tenant_id.to_string();
        match self
            .store
            .read(Container::Secrets, &tenant, id)
            .await
            .map_err(unavailable)?
        {
            None => Ok(()),
            Some(doc)
                if doc.body["ownerKind"] != owner.kind
                    || doc.body["ownerId"] != Value::String(owner.id.clone()) =>
            {
                Err(SecretError::Forbidden)
            }
            Some(_) => match self
                .store
                .delete(Container::Secrets, &tenant, id, None)
                .await
            {
                Ok(()) | Err(StoreError::NotFound) => Ok(()),
                Err(e) => Err(unavailable(e)),
            },
        }
    }

    async fn health(&self) -> Result<(), SecretError> {
        self.store.health().await.map_err(unavailable)
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
