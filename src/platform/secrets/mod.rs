//! The secret-store port: credentials and webhook secrets live only here;
//! documents keep [`SecretRef`]s. Every secret belongs to one owner (tenant +
//! kind + id) and is only readable by that owner.
//!
//! Adapters: [`local`] (AES-256-GCM in the document store), [`keyvault`]
//! (Azure Key Vault) and [`castiel`] (Castiel's secret-management service).
//! `tests/secrets_contract` runs one contract suite on all three.

pub mod castiel;
pub mod keyvault;
pub mod local;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::domain::tenancy::TenantId;

/// Who a secret belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretOwner {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// `webhook` or `connection`.
    pub kind: &'static str,
    /// The owning document's id.
    pub id: String,
}

/// A reference to a stored secret (safe to store and log).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct SecretRef(pub String);

/// The largest value (UTF-8 bytes) every store holds. Every store refuses
/// a longer one with [`SecretError::TooLarge`] (the remote ones before
/// sending anything); credentials and webhook secrets are far smaller.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Refuses a value longer than [`MAX_VALUE_BYTES`] (every store's first step of `put`).
pub fn check_size(value: &str) -> Result<(), SecretError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(SecretError::TooLarge {
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// A secret-store failure (never contains a secret).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No such secret.
    #[error("secret not found")]
    NotFound,
    /// The secret exists but belongs to another owner.
    #[error("secret belongs to another owner")]
    Forbidden,
    /// The stored secret cannot be decrypted (wrong key or tampered), or a
    /// remote store holds it in a shape this service did not write.
    #[error("secret cannot be decrypted")]
    Corrupt,
    /// The value is longer than the store holds ([`MAX_VALUE_BYTES`]).
    #[error("secret value too large (at most {max} bytes)")]
    TooLarge {
        /// The most the store holds, in bytes.
        max: usize,
    },
    /// The backend is down, or refused the service's own credentials. The
    /// text names the operation and status, never a value.
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
}

/// Where secrets are kept.
///
/// `Debug` is required so the app can be printed; an implementation's
/// `Debug` shows where it keeps secrets, never a value or a credential.
#[async_trait]
pub trait SecretStore: std::fmt::Debug + Send + Sync + 'static {
    /// Stores a new secret for an owner and returns its reference.
    async fn put(
        &self,
        owner: &SecretOwner,
        value: &SecretString,
    ) -> Result<SecretRef, SecretError>;
    /// Reads a secret; only its owner may: another owner in the same tenant
    /// gets [`SecretError::Forbidden`], another tenant (or a reference that
    /// names nothing) [`SecretError::NotFound`].
    async fn get(&self, owner: &SecretOwner, r: &SecretRef) -> Result<SecretString, SecretError>;
    /// Deletes a secret (an absent one, or one of another tenant, is fine;
    /// another owner in the same tenant gets [`SecretError::Forbidden`]).
    async fn delete(&self, owner: &SecretOwner, r: &SecretRef) -> Result<(), SecretError>;
    /// Checks the backend.
    async fn health(&self) -> Result<(), SecretError>;
    /// A name for `/ready`.
    fn name(&self) -> &'static str;
}
