//! Who is calling: the tenant, the user and their role.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant (a Castiel customer company).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = uuid::Uuid)]
pub struct TenantId(pub Uuid);

impl TenantId {
    /// The partition-key form.
    pub fn key(&self) -> String {
        self.0.to_string()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The authenticated caller of a request, or the subject of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The only tenant this caller can see or change.
    pub tenant_id: TenantId,
    /// The user, when known.
    pub user_id: Option<String>,
    /// May use `/api/v1/admin/**`.
    pub is_super_admin: bool,
}

/// What every service call carries: who, and which flow it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctx {
    /// The caller.
    pub principal: Principal,
    /// Follows a request or job through every event it causes.
    pub correlation_id: String,
    /// The event that caused this work, if any.
    pub causation_id: Option<String>,
}

impl Ctx {
    /// A context for work done for a tenant outside a request (jobs, timers).
    pub fn system(tenant_id: TenantId, correlation_id: impl Into<String>) -> Self {
        Self {
            principal: Principal {
                tenant_id,
                user_id: None,
                is_super_admin: false,
            },
            correlation_id: correlation_id.into(),
            causation_id: None,
        }
    }

    /// The caller's tenant.
    pub fn tenant(&self) -> TenantId {
        self.principal.tenant_id
    }
}
