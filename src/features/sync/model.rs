//! Sync tasks, executions and links as stored documents (SPEC §5.6, §6).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::tenancy::TenantId;
use crate::platform::store::{Container, ETag, Entity};

/// Which way records flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// External system → shards.
    Inbound,
    /// Shards → external system.
    Outbound,
    /// Both.
    Bidirectional,
}

/// When a task runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// `manual`, `interval` or `cron`.
    #[serde(rename = "type")]
    pub kind: ScheduleType,
    /// Minutes between runs (`interval`; at least the minimum interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_minutes: Option<u32>,
    /// Five fields (minute first) or six (seconds first) (`cron`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_expression: Option<String>,
    /// IANA time zone the cron expression is read in (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Kinds of schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleType {
    /// Only when asked.
    Manual,
    /// Every N minutes.
    Interval,
    /// On a cron schedule in a time zone.
    Cron,
}

/// Conflict strategies (SPEC §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStrategy {
    /// The external system wins.
    SourceWins,
    /// Castiel wins.
    DestinationWins,
    /// The newer change wins.
    NewestWins,
    /// Per-field rules.
    Merge,
    /// Held for a person to resolve.
    Manual,
}

/// Per-field rules of `merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldStrategy {
    /// Castiel's value.
    Local,
    /// The external value.
    Remote,
    /// The newer value.
    Newest,
    /// Both, joined (arrays, strings).
    Concat,
    /// The one that is not blank.
    PreferNonBlank,
}

/// One per-field rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRule {
    /// The shard field.
    pub field: String,
    /// The rule.
    pub strategy: FieldStrategy,
}

/// How conflicts are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConflictResolution {
    /// The strategy.
    pub strategy: ConflictStrategy,
    /// Per-field rules (`merge`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_rules: Vec<FieldRule>,
}

impl Default for ConflictResolution {
    fn default() -> Self {
        Self {
            strategy: ConflictStrategy::SourceWins,
            field_rules: Vec::new(),
        }
    }
}

/// A sync task: what to sync, which way, when (SPEC §5.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncTask {
    /// Id.
    pub id: Uuid,
    /// Owning tenant (partition key).
    pub tenant_id: TenantId,
    /// Document kind in the container (`task`).
    #[serde(default = "task_kind")]
    #[schema(ignore)]
    pub kind: String,
    /// The integration it syncs.
    pub integration_id: Uuid,
    /// Name.
    pub name: String,
    /// Which way.
    pub direction: Direction,
    /// External entities (each with an entity mapping).
    pub entity_types: Vec<String>,
    /// When it runs.
    pub schedule: Schedule,
    /// How conflicts are resolved.
    #[serde(default)]
    pub conflict_resolution: ConflictResolution,
    /// Records per run (≤ `SYNC_MAX_RECORDS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records_per_sync: Option<u32>,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// When the scheduler runs it next (`None`: manual or disabled).
    #[serde(default, with = "crate::domain::time::exact_opt")]
    pub next_run_at: Option<DateTime<Utc>>,
    /// When a run last started.
    #[serde(default)]
    pub last_run_at: Option<DateTime<Utc>>,
    /// The last execution.
    #[serde(default)]
    pub last_execution_id: Option<Uuid>,
    /// The last execution's status.
    #[serde(default)]
    pub last_status: Option<ExecutionStatus>,
    /// Per entity, where the next run starts (read-only; the adapter's shape).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub cursors: BTreeMap<String, Value>,
    /// Created.
    #[serde(with = "crate::domain::time::sortable")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[serde(with = "crate::domain::time::sortable")]
    pub updated_at: DateTime<Utc>,
    /// Who created it.
    #[serde(default)]
    pub created_by: Option<String>,
    /// Version tag.
    #[serde(default)]
    pub etag: String,
}

fn task_kind() -> String {
    TASK_KIND.to_owned()
}

/// `kind` of task documents (the tasks container also holds each tenant's ledger).
pub const TASK_KIND: &str = "task";

impl Entity for SyncTask {
    const CONTAINER: Container = Container::SyncTasks;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `POST …/run`.
    Manual,
    /// The scheduler.
    Scheduled,
    /// A `shard.updated` event.
    Event,
    /// A run resumed after its process died.
    Retry,
    /// The record limit stopped the previous run.
    Continuation,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker runs it.
    Running,
    /// Every record synced.
    Completed,
    /// Some records failed.
    Partial,
    /// The run stopped on an error.
    Failed,
    /// Cancelled by a person.
    Cancelled,
    /// Refused by a limit.
    Rejected,
}

impl ExecutionStatus {
    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(self, ExecutionStatus::Queued | ExecutionStatus::Running)
    }
}

/// Record counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Read from the source.
    pub fetched: u64,
    /// New shards.
    pub created: u64,
    /// Changed shards.
    pub updated: u64,
    /// Unchanged (same content hash): not rewritten.
    pub unchanged: u64,
    /// Left out (mapping disabled, filtered).
    pub skipped: u64,
    /// Failed (mapping or write).
    pub failed: u64,
    /// Written to the external system.
    pub pushed: u64,
    /// Conflicts found.
    pub conflicts: u64,
}

impl Counters {
    /// Adds `other` to these.
    pub fn add(&mut self, other: &Counters) {
        self.fetched += other.fetched;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.pushed += other.pushed;
        self.conflicts += other.conflicts;
    }
}

/// Counts of one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityCounters {
    /// The external entity.
    pub entity_type: String,
    /// Its counts.
    #[serde(flatten)]
    pub counters: Counters,
}

/// One recorded error of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionError {
    /// The entity.
    pub entity_type: String,
    /// The record, when the error is about one.
    #[serde(default)]
    pub external_id: Option<String>,
    /// What went wrong.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Errors kept per execution.
pub const MAX_ERRORS: usize = 100;

/// A run of a task (SPEC §5.6), kept 30 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Id.
    pub id: Uuid,
    /// Owning tenant (partition key).
    pub tenant_id: TenantId,
    /// The task.
    pub task_id: Uuid,
    /// The task's integration.
    pub integration_id: Uuid,
    /// Why it ran.
    pub trigger: Trigger,
    /// Which way.
    pub direction: Direction,
    /// Where it is.
    pub status: ExecutionStatus,
    /// Why a limit refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    /// Whether it lists from the start, ignoring the cursors.
    #[serde(default)]
    pub full_resync: bool,
    /// Accepted.
    #[serde(with = "crate::domain::time::sortable")]
    pub created_at: DateTime<Utc>,
    /// A worker started it.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// It ended.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// How long it ran.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Totals.
    #[serde(default)]
    pub counters: Counters,
    /// Per entity.
    #[serde(default)]
    pub entities: Vec<EntityCounters>,
    /// The first 100 errors.
    #[serde(default)]
    pub errors: Vec<ExecutionError>,
    /// The record limit stopped it before the source was exhausted.
    #[serde(default)]
    pub has_more: bool,
    /// A person asked it to stop.
    #[serde(default)]
    pub cancel_requested: bool,
    /// The worker that holds the run (a token per start), so a worker whose
    /// lease lapsed and was taken over notices and stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub runner: Option<Uuid>,
    /// While running: the run is taken over after this unless renewed.
    #[serde(default, with = "crate::domain::time::exact_opt")]
    #[schema(ignore)]
    pub lease_until: Option<DateTime<Utc>>,
    /// Version tag.
    #[serde(default)]
    pub etag: String,
}

impl Entity for Execution {
    const CONTAINER: Container = Container::SyncExecutions;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

/// One external record ↔ shard (container `integration_sync_links`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncLink {
    /// `{integrationId}:{entity}:{externalId}` hashed (see `links::link_id`).
    pub id: String,
    /// Owning tenant (partition key).
    pub tenant_id: TenantId,
    /// The integration.
    pub integration_id: Uuid,
    /// The external entity.
    pub entity_type: String,
    /// The record's id there.
    pub external_id: String,
    /// The shard.
    pub shard_id: Uuid,
    /// Hash of the mapped content last written to the shard.
    pub content_hash: String,
    /// The mapped fields as last synced (the base of three-way conflicts).
    #[serde(default)]
    pub base: serde_json::Map<String, Value>,
    /// The shard revision the sync last wrote.
    #[serde(default)]
    pub shard_revision: u64,
    /// When the record last changed remotely, as last seen.
    #[serde(default)]
    pub remote_modified_at: Option<DateTime<Utc>>,
    /// When the sync last wrote it.
    pub synced_at: DateTime<Utc>,
    /// Version tag.
    #[serde(default)]
    pub etag: String,
}

impl Entity for SyncLink {
    const CONTAINER: Container = Container::SyncLinks;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}
