//! What a rotation reports: its summary, or why it stopped.

use std::time::Duration;

use crate::platform::secrets::local::keyring::{KeyId, KeyringError};
use crate::platform::store::StoreError;

/// What a rotation did (ids and counts only: no key material).
#[derive(Debug, Clone, Default)]
pub struct RotationReport {
    /// The key every secret is now under.
    pub primary: Option<KeyId>,
    /// Whether the keyring file was rotated (`false`: a `SECRETS_KEY` list).
    pub keyring_file: bool,
    /// Keys retired from the keyring file, or that may now leave `SECRETS_KEY`.
    pub retired: Vec<KeyId>,
    /// Secrets examined, over all scans.
    pub scanned: u64,
    /// Secrets whose data key was re-wrapped.
    pub rewrapped: u64,
    /// Legacy secrets sealed again in the envelope format.
    pub migrated: u64,
    /// Secrets moved by the verification after the old keys were retired.
    pub stragglers: u64,
    /// Secrets deleted while being rotated (skipped).
    pub deleted: u64,
    /// Writes that lost a race (412) and were retried on a fresh read.
    pub conflicts: u64,
    /// Secrets under keys the keyring does not hold (already unreadable; left as they are).
    pub unknown_key: u64,
    /// Secrets under held keys that do not decrypt (tampered or damaged; their ids are logged).
    pub undecryptable: u64,
    /// Scans run.
    pub passes: u32,
    /// Whether the legacy `secrets.key` was removed.
    pub legacy_file_removed: bool,
    /// Wall time of the rotation.
    pub elapsed: Duration,
}

impl std::fmt::Display for RotationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids = |v: &[KeyId]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", ")
            }
        };
        let primary = self.primary.as_ref().map_or("?", KeyId::as_str);
        writeln!(f, "rotated the local secrets to key {primary}")?;
        writeln!(
            f,
            "  re-wrapped: {}, migrated from the legacy format: {}, moved after retiring: {}",
            self.rewrapped, self.migrated, self.stragglers
        )?;
        writeln!(
            f,
            "  examined: {} in {} scans, deleted meanwhile: {}, conflicts retried: {}",
            self.scanned, self.passes, self.deleted, self.conflicts
        )?;
        if self.keyring_file {
            writeln!(f, "  retired from the keyring: {}", ids(&self.retired))?;
        } else {
            writeln!(
                f,
                "  no secret is under these keys any more; remove them from SECRETS_KEY: {}",
                ids(&self.retired)
            )?;
        }
        if self.unknown_key > 0 {
            writeln!(
                f,
                "  under keys this keyring does not hold (unreadable, left as they are): {}",
                self.unknown_key
            )?;
        }
        if self.undecryptable > 0 {
            writeln!(
                f,
                "  found after retiring, under an old key but not decryptable (ids logged): {}",
                self.undecryptable
            )?;
        }
        write!(f, "  took {:.2} s", self.elapsed.as_secs_f64())
    }
}

/// Why a rotation stopped (never quotes a key).
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The keyring could not be read, written or locked.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// The `DATA_DIR` has no keyring: no local secret was ever written with it.
    #[error("{0} has no secrets keyring (secrets.keys or secrets.key): nothing to rotate")]
    NoKeyring(String),
    /// Secrets under retiring keys do not decrypt; those keys stay.
    #[error(
        "{count} secrets under the keys being retired cannot be decrypted (tampered or damaged; \
         their ids are logged); everything else was moved to {primary}, and the old keys stay \
         in the keyring until those secrets are deleted"
    )]
    Undecryptable {
        /// How many.
        count: usize,
        /// The new primary.
        primary: KeyId,
    },
    /// Secrets kept appearing under old keys.
    #[error(
        "secrets are still being written under old keys after {passes} scans: a process that \
         does not follow DATA_DIR/secrets.keys (SECRETS_KEY set, or an older build) writes to \
         this store; the old keys stay in the keyring"
    )]
    StillWritten {
        /// Scans run.
        passes: u32,
    },
}
