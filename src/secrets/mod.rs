//! TEMPORARY STUB of the lead's SecretStore port (replaced on merge with
//! `main`): same interface, kept in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::tenancy::TenantId;

/// Whose secret it is (bound into the ciphertext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretOwner {
    /// Tenant.
    pub tenant_id: TenantId,
    /// `webhook` or `connection`.
    pub kind: &'static str,
    /// Owner id.
    pub id: String,
}

/// A reference to a stored secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

/// Secret-store failures.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Not found.
    #[error("secret not found")]
    NotFound,
    /// Backend failure.
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
}

/// The secret-store port.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Stores a secret.
    async fn put(&self, owner: &SecretOwner, value: &SecretString) -> Result<SecretRef, SecretError>;
    /// Reads a secret.
    async fn get(&self, owner: &SecretOwner, r: &SecretRef) -> Result<SecretString, SecretError>;
    /// Deletes a secret.
    async fn delete(&self, owner: &SecretOwner, r: &SecretRef) -> Result<(), SecretError>;
    /// Health.
    async fn health(&self) -> Result<(), SecretError>;
    /// Name.
    fn name(&self) -> &'static str;
}

/// In-memory stub.
#[derive(Debug, Default)]
pub struct MemorySecrets(Mutex<HashMap<String, String>>);

#[async_trait]
impl SecretStore for MemorySecrets {
    async fn put(&self, owner: &SecretOwner, value: &SecretString) -> Result<SecretRef, SecretError> {
        let r = format!("{}/{}/{}/{}", owner.tenant_id, owner.kind, owner.id, uuid::Uuid::new_v4());
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(r.clone(), value.expose_secret().to_owned());
        Ok(SecretRef(r))
    }
    async fn get(&self, _owner: &SecretOwner, r: &SecretRef) -> Result<SecretString, SecretError> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&r.0).cloned().map(SecretString::from).ok_or(SecretError::NotFound)
    }
    async fn delete(&self, _owner: &SecretOwner, r: &SecretRef) -> Result<(), SecretError> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&r.0);
        Ok(())
    }
    async fn health(&self) -> Result<(), SecretError> {
        Ok(())
    }
    fn name(&self) -> &'static str {
        "memory"
    }
}
