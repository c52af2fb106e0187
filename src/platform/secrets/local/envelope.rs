//! The stored form of one secret, and the cryptography on it.
//!
//! **Envelope format** (`"format": 2`): the value is encrypted with its own
//! random 256-bit data key (DEK) under AES-256-GCM; the DEK is encrypted
//! ("wrapped") with a key-encryption key (KEK) of the keyring, named by the
//! document's `keyId`. A rotation re-wraps the DEK only: the value's
//! ciphertext is never touched.
//!
//! ```json
//! {"id", "tenantId", "kind": "secret", "ownerKind", "ownerId", "format": 2,
//!  "keyId", "wrappedKey": "<b64: nonce ‖ AES-GCM(KEK, DEK)>",
//!  "nonce", "ciphertext", "createdAt"}
//! ```
//!
//! **Legacy format** (no `format`): the value encrypted directly with the
//! KEK `keyId`. Still read; a rotation migrates it (decrypts it once and
//! seals it again in the envelope format, with a new nonce and DEK).
//!
//! Associated data binds each part to its place: the value to its tenant,
//! owner kind, owner and id (as in the legacy format), the wrapped DEK to
//! the same and to its `keyId`. A document copied to another owner, or a
//! wrapped key moved to another document, does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;
use serde_json::{Value, json};

use super::keyring::Kek;

/// The `format` of envelope documents.
pub const ENVELOPE_FORMAT: u64 = 2;

/// A data key: one per secret.
pub type Dek = Zeroizing<[u8; 32]>;

/// Why a stored secret cannot be opened (no detail: nothing to leak).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undecryptable;

/// Where a secret lives; bound into the associated data.
#[derive(Debug, Clone, Copy)]
pub struct Address<'a> {
    /// The tenant (partition key).
    pub tenant: &'a str,
    /// The owner's kind (`webhook`, `connection`).
    pub owner_kind: &'a str,
    /// The owner's id.
    pub owner_id: &'a str,
    /// The secret's id.
    pub id: &'a str,
}

impl<'a> Address<'a> {
    /// The address a stored document claims for itself.
    pub fn of(body: &'a Value) -> Option<Self> {
        Some(Self {
            tenant: body.get("tenantId")?.as_str()?,
            owner_kind: body.get("ownerKind")?.as_str()?,
            owner_id: body.get("ownerId")?.as_str()?,
            id: body.get("id")?.as_str()?,
        })
    }

    fn value_aad(&self) -> String {
        format!(
            "castiel-secret:v1|{}|{}|{}|{}",
            self.tenant, self.owner_kind, self.owner_id, self.id
        )
    }

    fn wrap_aad(&self, key_id: &str) -> String {
        format!(
            "castiel-secret-dek:v2|{}|{}|{}|{}|{key_id}",
            self.tenant, self.owner_kind, self.owner_id, self.id
        )
    }
}

/// A stored secret's encrypted parts, as read from its document.
#[derive(Debug)]
pub struct Stored {
    /// The KEK that wraps its DEK (envelope) or encrypts it (legacy).
    pub key_id: String,
    /// The wrapped DEK (`nonce ‖ ciphertext`); `None` in the legacy format.
    wrapped: Option<Vec<u8>>,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

fn encrypt(
    cipher: &Aes256Gcm,
    plain: &[u8],
    aad: &str,
) -> Result<([u8; 12], Vec<u8>), Undecryptable> {
    let nonce: [u8; 12] = rand::random();
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| Undecryptable)?;
    Ok((nonce, sealed))
}

fn decrypt(
    cipher: &Aes256Gcm,
    nonce: &[u8],
    sealed: &[u8],
    aad: &str,
) -> Result<Zeroizing<Vec<u8>>, Undecryptable> {
    if nonce.len() != 12 {
        return Err(Undecryptable);
    }
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| Undecryptable)
}

/// Wraps a DEK with a KEK: `nonce ‖ AES-GCM(KEK, DEK)`, base64.
pub fn wrap(kek: &Kek, dek: &Dek, at: &Address<'_>) -> Result<String, Undecryptable> {
    let (nonce, sealed) = encrypt(
        kek.cipher(),
        dek.as_slice(),
        &at.wrap_aad(kek.id().as_str()),
    )?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(STANDARD.encode(out))
}

/// Encrypts a new secret's value under a new DEK wrapped with `kek`; returns
/// the document fields (everything but the address) and the DEK, which the
/// writer may need to wrap again (see `LocalSecretStore::put`).
pub fn seal(kek: &Kek, at: &Address<'_>, value: &[u8]) -> Result<(Value, Dek), Undecryptable> {
    let dek: Dek = Zeroizing::new(rand::random());
    let (nonce, ciphertext) = encrypt(&Aes256Gcm::new((&*dek).into()), value, &at.value_aad())?;
    let fields = json!({
        "format": ENVELOPE_FORMAT,
        "keyId": kek.id().as_str(),
        "wrappedKey": wrap(kek, &dek, at)?,
        "nonce": STANDARD.encode(nonce),
        "ciphertext": STANDARD.encode(ciphertext),
    });
    Ok((fields, dek))
}

/// Sets `fields` on a document body.
pub fn apply(body: &mut Value, fields: Value) {
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
}

impl Stored {
    /// Reads the encrypted parts of a document (either format).
    pub fn parse(body: &Value) -> Result<Self, Undecryptable> {
        let bytes = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or(Undecryptable)
        };
        let wrapped = match body.get("format") {
            None | Some(Value::Null) => None,
            Some(f) if f.as_u64() == Some(ENVELOPE_FORMAT) => Some(bytes("wrappedKey")?),
            Some(_) => return Err(Undecryptable),
        };
        Ok(Self {
            key_id: body
                .get("keyId")
                .and_then(Value::as_str)
                .ok_or(Undecryptable)?
                .to_owned(),
            wrapped,
            nonce: bytes("nonce")?.try_into().map_err(|_| Undecryptable)?,
            ciphertext: bytes("ciphertext")?,
        })
    }

    /// Whether this is the legacy format (value encrypted with the KEK).
    pub fn is_legacy(&self) -> bool {
        self.wrapped.is_none()
    }

    /// The DEK, unwrapped with `kek` (envelope format only).
    fn dek(&self, kek: &Kek, at: &Address<'_>) -> Result<Dek, Undecryptable> {
        let wrapped = self.wrapped.as_deref().ok_or(Undecryptable)?;
        if wrapped.len() < 12 || kek.id().as_str() != self.key_id {
            return Err(Undecryptable);
        }
        let (nonce, sealed) = wrapped.split_at(12);
        let plain = decrypt(kek.cipher(), nonce, sealed, &at.wrap_aad(&self.key_id))?;
        let dek: [u8; 32] = plain.as_slice().try_into().map_err(|_| Undecryptable)?;
        Ok(Zeroizing::new(dek))
    }

    /// The value, decrypted with `kek` (the key named by `keyId`).
    pub fn open(&self, kek: &Kek, at: &Address<'_>) -> Result<Zeroizing<Vec<u8>>, Undecryptable> {
        if self.is_legacy() {
            if kek.id().as_str() != self.key_id {
                return Err(Undecryptable);
            }
            return decrypt(kek.cipher(), &self.nonce, &self.ciphertext, &at.value_aad());
        }
        let dek = self.dek(kek, at)?;
        decrypt(
            &Aes256Gcm::new((&*dek).into()),
            &self.nonce,
            &self.ciphertext,
            &at.value_aad(),
        )
    }

    /// The fields that move this secret from `old` (its current KEK) to
    /// `new`: the re-wrapped DEK for an envelope document (its ciphertext
    /// stays), or a fresh envelope for a legacy one. Fails, changing
    /// nothing, if `old` does not open it (tampered, or not its key).
    pub fn rewrap(&self, old: &Kek, new: &Kek, at: &Address<'_>) -> Result<Value, Undecryptable> {
        if self.is_legacy() {
            let value = self.open(old, at)?;
            return seal(new, at, &value).map(|(fields, _)| fields);
        }
        let dek = self.dek(old, at)?;
        Ok(json!({
            "format": ENVELOPE_FORMAT,
            "keyId": new.id().as_str(),
            "wrappedKey": wrap(new, &dek, at)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What earlier versions wrote: the value under the KEK itself.
    fn seal_legacy(kek: &Kek, at: &Address<'_>, value: &[u8]) -> Result<Value, Undecryptable> {
        let (nonce, ciphertext) = encrypt(kek.cipher(), value, &at.value_aad())?;
        Ok(json!({
            "keyId": kek.id().as_str(),
            "nonce": STANDARD.encode(nonce),
            "ciphertext": STANDARD.encode(ciphertext),
        }))
    }

    const AT: Address<'static> = Address {
        tenant: "t",
        owner_kind: "webhook",
        owner_id: "w",
        id: "s",
    };

    #[test]
    fn rewrap_keeps_the_ciphertext_and_needs_the_old_key() {
        let (old, new) = (Kek::generate(), Kek::generate());
        let (mut body, _) = seal(&old, &AT, b"value").expect("seal");
        let before = body["ciphertext"].clone();
        let stored = Stored::parse(&body).expect("parse");
        assert!(stored.rewrap(&new, &new, &AT).is_err(), "not its key");
        apply(&mut body, stored.rewrap(&old, &new, &AT).expect("rewrap"));
        assert_eq!(body["ciphertext"], before);
        let stored = Stored::parse(&body).expect("parse");
        assert_eq!(stored.key_id, new.id().as_str());
        assert_eq!(stored.open(&new, &AT).expect("open").as_slice(), b"value");
        assert!(stored.open(&old, &AT).is_err());
    }

    #[test]
    fn legacy_documents_open_and_migrate() {
        let (old, new) = (Kek::generate(), Kek::generate());
        let body = seal_legacy(&old, &AT, b"legacy").expect("seal");
        let stored = Stored::parse(&body).expect("parse");
        assert!(stored.is_legacy());
        assert_eq!(stored.open(&old, &AT).expect("open").as_slice(), b"legacy");
        let mut migrated = body.clone();
        apply(
            &mut migrated,
            stored.rewrap(&old, &new, &AT).expect("migrate"),
        );
        let stored = Stored::parse(&migrated).expect("parse");
        assert!(!stored.is_legacy());
        assert_eq!(stored.open(&new, &AT).expect("open").as_slice(), b"legacy");
    }

    #[test]
    fn a_wrapped_key_is_bound_to_its_document() {
        let kek = Kek::generate();
        let (body, _) = seal(&kek, &AT, b"v").expect("seal");
        let other = Address { id: "other", ..AT };
        let stored = Stored::parse(&body).expect("parse");
        assert!(stored.open(&kek, &other).is_err());
    }
}
