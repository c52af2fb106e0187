//! Local secrets: AES-256-GCM encrypted documents in the document store.
//!
//! The key comes from `SECRETS_KEY` (base64 of 32 bytes) or is generated once
//! into `DATA_DIR/secrets.key` (mode 0600). Each secret has its own random
//! nonce, and its associated data binds it to its tenant, owner and id, so a
//! ciphertext copied to another owner or tenant does not decrypt.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{SecretError, SecretOwner, SecretRef, SecretStore};
use crate::clock::Clock;
use crate::platform::store::{Container, Store, StoreError};

const PREFIX: &str = "local:";

/// Secrets encrypted with a local key, stored through the [`Store`] port.
pub struct LocalSecretStore {
    cipher: Aes256Gcm,
    key_id: String,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSecretStore")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Decodes a base64 (standard or URL-safe) 32-byte key.
pub fn decode_key(encoded: &str) -> Option<[u8; 32]> {
    let t = encoded.trim();
    let bytes = STANDARD
        .decode(t)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.trim_end_matches('='))
        })
        .ok()?;
    bytes.try_into().ok()
}

/// A new random key, base64.
pub fn generate_key() -> String {
    let key: [u8; 32] = rand::random();
    STANDARD.encode(key)
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "used as map_err(unavailable)"
)]
fn unavailable(e: StoreError) -> SecretError {
    SecretError::Unavailable(e.to_string())
}

fn aad(owner: &SecretOwner, id: &str) -> String {
    format!(
        "castiel-secret:v1|{}|{}|{}|{id}",
        owner.tenant_id, owner.kind, owner.id
    )
}

impl LocalSecretStore {
    /// A store with a 32-byte key.
    pub fn new(key: &[u8; 32], store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let digest = Sha256::digest(key);
        let key_id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Self {
            cipher: Aes256Gcm::new(key.into()),
            key_id,
            store,
            clock,
        }
    }

    fn id_of(r: &SecretRef) -> Result<&str, SecretError> {
        r.0.strip_prefix(PREFIX)
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            .ok_or(SecretError::NotFound)
    }
}

#[async_trait]
impl SecretStore for LocalSecretStore {
    async fn put(
        &self,
        owner: &SecretOwner,
        value: &SecretString,
    ) -> Result<SecretRef, SecretError> {
        let id = uuid::Uuid::new_v4().to_string();
        let nonce_bytes: [u8; 12] = rand::random();
        let aad = aad(owner, &id);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: value.expose_secret().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Corrupt)?;
        let doc = json!({
            "id": id,
            "tenantId": owner.tenant_id.to_string(),
            "kind": "secret",
            "ownerKind": owner.kind,
            "ownerId": owner.id,
            "keyId": self.key_id,
            "nonce": STANDARD.encode(nonce_bytes),
            "ciphertext": STANDARD.encode(ciphertext),
            "createdAt": self.clock.now(),
        });
        self.store
            .create(Container::Secrets, doc)
            .await
            .map_err(unavailable)?;
        Ok(SecretRef(format!("{PREFIX}{id}")))
    }

    async fn get(&self, owner: &SecretOwner, r: &SecretRef) -> Result<SecretString, SecretError> {
        let id = Self::id_of(r)?;
        let doc = self
            .store
            .read(Container::Secrets, &owner.tenant_id.to_string(), id)
            .await
            .map_err(unavailable)?
            .ok_or(SecretError::NotFound)?;
        let b = &doc.body;
        if b["ownerKind"] != owner.kind || b["ownerId"] != Value::String(owner.id.clone()) {
            return Err(SecretError::Forbidden);
        }
        let field = |k: &str| {
            b[k].as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or(SecretError::Corrupt)
        };
        let nonce = field("nonce")?;
        if nonce.len() != 12 {
            return Err(SecretError::Corrupt);
        }
        let ciphertext = field("ciphertext")?;
        let aad = aad(owner, id);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Corrupt)?;
        String::from_utf8(plain)
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
