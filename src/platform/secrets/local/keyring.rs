//! The keyring of the local secret store: the key-encryption keys (KEKs) it
//! knows, one of them primary (wraps the data keys of new secrets), the
//! others still accepted for reading while a rotation moves secrets off them.
//!
//! Key material stays in this module and in [`super::envelope`]: a [`Kek`]'s
//! `Debug` shows its id only, and [`KeyringError`] never quotes a key.

use std::fmt;
use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::zeroize::Zeroizing;
use sha2::{Digest as _, Sha256};

/// A key's public name: the first 4 bytes of SHA-256(key), in hex. Secrets
/// written before envelope encryption carry the same id of the key that
/// encrypted them, so they stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The id of a key.
    pub fn of(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        Self(digest.iter().take(4).map(|b| format!("{b:02x}")).collect())
    }

    /// The id as stored on documents.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One key-encryption key: 32 bytes for AES-256-GCM, and its id.
pub struct Kek {
    id: KeyId,
    key: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            id: KeyId::of(key),
            key: Zeroizing::new(*key),
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// A new random KEK.
    pub fn generate() -> Self {
        let key = Zeroizing::new(rand::random::<[u8; 32]>());
        Self::new(&key)
    }

    /// A KEK from its base64 text (standard or URL-safe alphabet).
    pub fn decode(encoded: &str) -> Option<Self> {
        decode_key(encoded).map(|key| Self::new(&key))
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub(super) fn cipher(&self) -> &Aes256Gcm {
        &self.cipher
    }

    /// The key as base64, for the keyring file only.
    pub(super) fn encoded(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.key))
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Decodes a base64 (standard or URL-safe) 32-byte key.
pub fn decode_key(encoded: &str) -> Option<[u8; 32]> {
    let t = encoded.trim();
    let bytes = Zeroizing::new(
        STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .ok()?,
    );
    bytes.as_slice().try_into().ok()
}

/// A new random key, base64.
pub fn generate_key() -> String {
    let key = Zeroizing::new(rand::random::<[u8; 32]>());
    STANDARD.encode(*key)
}

/// Why a keyring cannot be read, written or built (never quotes a key).
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, `locking`).
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The keys are not acceptable (which entry and why, never its value).
    #[error("{0}")]
    Invalid(String),
    /// Another `rotate-key` holds the rotation lock of this `DATA_DIR`.
    #[error("another rotate-key is running on this DATA_DIR ({0} is locked)")]
    Locked(String),
}

/// The keys a local secret store knows: one primary, and older ones still
/// accepted for reading. Immutable; a changed keyring is a new value.
#[derive(Clone, Debug)]
pub struct Keyring {
    primary: Arc<Kek>,
    older: Vec<Arc<Kek>>,
}

impl Keyring {
    /// A keyring of one key.
    pub fn single(kek: Kek) -> Self {
        Self {
            primary: Arc::new(kek),
            older: Vec::new(),
        }
    }

    /// A keyring with `primary` first and `older` keys (duplicates of the
    /// primary are dropped; two different keys with one id are refused).
    pub fn new(primary: Arc<Kek>, older: Vec<Arc<Kek>>) -> Result<Self, KeyringError> {
        let mut ring = Self {
            primary,
            older: Vec::new(),
        };
        for kek in older {
            match ring.get(kek.id().as_str()) {
                Some(known) if *known.key == *kek.key => {}
                Some(_) => {
                    return Err(KeyringError::Invalid(format!(
                        "two different keys have the id {}; generate another key",
                        kek.id()
                    )));
                }
                None => ring.older.push(kek),
            }
        }
        Ok(ring)
    }

    /// Parses `SECRETS_KEY`: one base64 key, or a comma-separated list whose
    /// first key is the primary.
    pub fn parse_list(list: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for (i, part) in list.split(',').enumerate() {
            let kek = Kek::decode(part).ok_or_else(|| {
                KeyringError::Invalid(format!(
                    "key {} of the list is not the base64 encoding of 32 bytes",
                    i + 1
                ))
            })?;
            keys.push(Arc::new(kek));
        }
        let mut keys = keys.into_iter();
        let primary = keys
            .next()
            .ok_or_else(|| KeyringError::Invalid("the key list is empty".into()))?;
        Self::new(primary, keys.collect())
    }

    /// The key that wraps new secrets' data keys.
    pub fn primary(&self) -> &Arc<Kek> {
        &self.primary
    }

    /// The other keys, still accepted for reading.
    pub fn older(&self) -> &[Arc<Kek>] {
        &self.older
    }

    /// The key with this id, if the keyring holds it.
    pub fn get(&self, id: &str) -> Option<&Arc<Kek>> {
        std::iter::once(&self.primary)
            .chain(&self.older)
            .find(|k| k.id().as_str() == id)
    }

    /// Every key id, the primary first.
    pub fn ids(&self) -> Vec<KeyId> {
        std::iter::once(&self.primary)
            .chain(&self.older)
            .map(|k| k.id().clone())
            .collect()
    }

    /// This keyring with `kek` as its primary and every key it held kept for
    /// reading (the first step of a rotation).
    pub fn promote(&self, kek: Arc<Kek>) -> Result<Self, KeyringError> {
        let mut older = vec![self.primary.clone()];
        older.extend(self.older.iter().cloned());
        older.retain(|k| k.id() != kek.id());
        Self::new(kek, older)
    }

    /// The primary alone (the last step of a rotation).
    pub fn primary_only(&self) -> Self {
        Self {
            primary: self.primary.clone(),
            older: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_legacy_derivation() {
        // hashlib.sha256(bytes([7] * 32)).hexdigest()[:8]
        assert_eq!(KeyId::of(&[7; 32]).as_str(), "4bb06f8e");
        assert_eq!(Kek::new(&[7; 32]).id().as_str(), "4bb06f8e");
    }

    #[test]
    fn a_list_has_its_first_key_primary() {
        let (a, b) = (generate_key(), generate_key());
        let ring = Keyring::parse_list(&format!("{a}, {b}")).expect("list");
        let a = Kek::decode(&a).expect("a");
        assert_eq!(ring.primary().id(), a.id());
        assert_eq!(ring.ids().len(), 2);
        let err = Keyring::parse_list(&format!("{a},nope", a = generate_key()))
            .expect_err("bad entry")
            .to_string();
        assert!(err.contains("key 2"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let encoded = generate_key();
        let kek = Kek::decode(&encoded).expect("key");
        let shown = format!("{:?}", Keyring::single(kek));
        assert!(!shown.contains(&encoded), "{shown}");
    }

    #[test]
    fn promote_keeps_old_keys_for_reading() {
        let old = Keyring::single(Kek::generate());
        let new = Arc::new(Kek::generate());
        let ring = old.promote(new.clone()).expect("promote");
        assert_eq!(ring.primary().id(), new.id());
        assert!(ring.get(old.primary().id().as_str()).is_some());
        assert_eq!(ring.primary_only().ids(), vec![new.id().clone()]);
    }
}
