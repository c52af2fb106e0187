//! The shard-sink port (SPEC §3): where the sync engine writes the records
//! it syncs as Castiel shards. Two adapters: the local shard store in the
//! document store (standalone's default, browsable at `/api/v1/shards`) and
//! Castiel's shard-manager over HTTP (`SHARDS=castiel`). One contract suite
//! (`tests/shards_contract`) runs on both.
//!
//! A synced shard's id is chosen by the sync (derived from the integration,
//! entity and external id), so writing the same record twice — a run that
//! crashed after writing shards and before recording its links — updates
//! one shard and never makes a second.

pub mod castiel;
pub mod local;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::tenancy::TenantId;

/// Where a synced shard came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardMetadata {
    /// The integration that synced it.
    pub integration_id: Uuid,
    /// The record's id in the external system.
    pub external_id: String,
    /// The provider (`salesforce`, `custom_rest`, …).
    pub external_source: String,
    /// When the sync last wrote it.
    pub synced_at: DateTime<Utc>,
}

/// A shard as the sync writes it (create or update by id).
#[derive(Debug, Clone, PartialEq)]
pub struct ShardWrite {
    /// The shard's id (derived by the sync; see the module docs).
    pub id: Uuid,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The shard type (`c_opportunity`).
    pub shard_type_id: String,
    /// The shard type's name when it differs from the id.
    pub shard_type_name: Option<String>,
    /// The mapped fields.
    pub structured_data: Map<String, Value>,
    /// Where it came from.
    pub metadata: ShardMetadata,
}

/// A stored shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// Id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Shard type id.
    pub shard_type_id: String,
    /// Shard type name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_type_name: Option<String>,
    /// The record's fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub structured_data: Map<String, Value>,
    /// Where a synced shard came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ShardMetadata>,
    /// `integration` for synced shards, `user` for edits made here.
    pub source: String,
    /// Increases with every write.
    #[serde(default)]
    pub revision: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version tag (never stored: the store's own version is the truth).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etag: String,
}

/// What a write left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRef {
    /// The shard's id as the sync chose it ([`ShardWrite::id`]).
    pub id: Uuid,
    /// The id the sink itself keeps the shard under: the same on the local
    /// store; the id Castiel's shard-manager generated on create (it takes
    /// no ids). Castiel's `shard.updated` events name this one, so the sync
    /// keeps it in its links.
    pub sink_id: Uuid,
    /// Its revision after the write.
    pub revision: u64,
}

/// A shard-sink failure.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The sink refused the shard (bad type, too large): this record fails,
    /// the run goes on.
    #[error("the shard was refused: {0}")]
    Rejected(String),
    /// The sink cannot be reached: the run stops and resumes later.
    #[error("the shard sink is unavailable: {0}")]
    Unavailable(String),
}

/// Where synced shards go.
#[async_trait]
pub trait ShardSink: Send + Sync + 'static {
    /// Creates or updates shards by id, all of one tenant; one result per
    /// shard, in order.
    async fn upsert_many(
        &self,
        tenant: TenantId,
        shards: Vec<ShardWrite>,
    ) -> Result<Vec<Result<ShardRef, ShardError>>, ShardError>;

    /// Reads one shard of the tenant, by its [`ShardRef::id`] or its
    /// [`ShardRef::sink_id`].
    async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<Shard>, ShardError>;

    /// Checks the sink (`/ready`).
    async fn health(&self) -> Result<(), ShardError>;

    /// A name for `/ready` (`embedded`, `castiel`).
    fn name(&self) -> &'static str;
}
