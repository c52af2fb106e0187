//! The bodies of `POST` and `PUT /api/v1/sync-tasks…` and their checks
//! (SPEC §5.6): every bad field is reported at once, with its JSON pointer.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::SyncLimits;
use crate::domain::validation::Violations;
use crate::features::catalog::model::Capabilities;
use crate::features::integrations::model::Integration;
use crate::features::sync::model::{
    ConflictResolution, ConflictStrategy, Direction, Schedule, SyncTask,
};
use crate::features::sync::schedule;

/// Most entity types one task syncs.
pub const MAX_ENTITY_TYPES: usize = 50;

/// Most per-field rules of a `merge` conflict resolution.
pub const MAX_FIELD_RULES: usize = 200;

/// Body of `POST /api/v1/sync-tasks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSyncTask {
    /// The integration it syncs (one of the caller's).
    pub integration_id: Uuid,
    /// Name (1–200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\s\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180e\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufeff\\uffa0][^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
    )]
    pub name: String,
    /// Which way records flow (the provider must pull for inbound, push for outbound).
    pub direction: Direction,
    /// External entities, each with an enabled entity mapping in the integration.
    #[schema(min_items = 1, max_items = 50)]
    pub entity_types: Vec<String>,
    /// When it runs.
    pub schedule: Schedule,
    /// How conflicts are resolved (default `source_wins`).
    #[serde(default)]
    pub conflict_resolution: Option<ConflictResolution>,
    /// Records per run (1 to `SYNC_MAX_RECORDS`; default the global maximum).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_records_per_sync: Option<u32>,
    /// Whether the scheduler runs it (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `PUT /api/v1/sync-tasks/{id}`: the editable fields, replaced whole.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncTaskUpdate {
    /// The task's integration; may be sent back, but never changes.
    #[serde(default)]
    pub integration_id: Option<Uuid>,
    /// Name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\s\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180e\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufeff\\uffa0][^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
    )]
    pub name: String,
    /// Which way.
    pub direction: Direction,
    /// External entities.
    #[schema(min_items = 1, max_items = 50)]
    pub entity_types: Vec<String>,
    /// When it runs.
    pub schedule: Schedule,
    /// How conflicts are resolved (absent: `source_wins`).
    #[serde(default)]
    pub conflict_resolution: Option<ConflictResolution>,
    /// Records per run (absent: the global maximum).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_records_per_sync: Option<u32>,
    /// Whether the scheduler runs it (absent: unchanged).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The fields create and replace check alike.
pub(super) struct Editable<'a> {
    pub name: &'a str,
    pub direction: Direction,
    pub entity_types: &'a [String],
    pub schedule: &'a Schedule,
    pub conflict_resolution: Option<&'a ConflictResolution>,
    pub max_records_per_sync: Option<u32>,
}

impl NewSyncTask {
    pub(super) fn editable(&self) -> Editable<'_> {
        Editable {
            name: &self.name,
            direction: self.direction,
            entity_types: &self.entity_types,
            schedule: &self.schedule,
            conflict_resolution: self.conflict_resolution.as_ref(),
            max_records_per_sync: self.max_records_per_sync,
        }
    }
}

impl SyncTaskUpdate {
    pub(super) fn editable(&self) -> Editable<'_> {
        Editable {
            name: &self.name,
            direction: self.direction,
            entity_types: &self.entity_types,
            schedule: &self.schedule,
            conflict_resolution: self.conflict_resolution.as_ref(),
            max_records_per_sync: self.max_records_per_sync,
        }
    }
}

/// What the checks know of the task's integration: `None` when it is not
/// one of the tenant's (the caller has reported `/integrationId`).
pub(super) struct Target<'a> {
    pub integration: Option<&'a Integration>,
    /// The provider's capabilities (`None`: the provider left the catalog).
    pub capabilities: Option<Capabilities>,
}

/// Checks the editable fields; adds every violation to `v`.
pub(super) fn check(
    e: &Editable<'_>,
    target: &Target<'_>,
    limits: &SyncLimits,
    now: DateTime<Utc>,
    v: &mut Violations,
) {
    v.line("/name", e.name, 1, 200);
    check_entity_types(e.entity_types, target.integration, v);
    if let Some(caps) = target.capabilities {
        check_direction(e.direction, caps, v);
    }
    schedule::validate(e.schedule, "/schedule", limits.min_interval_minutes, now, v);
    if let Some(c) = e.conflict_resolution {
        check_conflicts(c, v);
    }
    if let Some(n) = e.max_records_per_sync
        && !(1..=limits.max_records).contains(&n)
    {
        v.add(
            "/maxRecordsPerSync",
            format!(
                "must be from 1 to {} (SYNC_MAX_RECORDS)",
                limits.max_records
            ),
        );
    }
}

fn check_entity_types(types: &[String], integration: Option<&Integration>, v: &mut Violations) {
    if types.is_empty() {
        v.add("/entityTypes", "must name at least one entity type");
        return;
    }
    if types.len() > MAX_ENTITY_TYPES {
        v.add(
            "/entityTypes",
            format!("must have at most {MAX_ENTITY_TYPES} entries"),
        );
        return;
    }
    let mut seen = HashSet::new();
    for (i, t) in types.iter().enumerate() {
        let p = format!("/entityTypes/{i}");
        if t.is_empty() || t.chars().count() > 100 {
            v.add(p, "must have 1 to 100 characters");
        } else if !seen.insert(t.as_str()) {
            v.add(p, "is listed twice");
        } else if let Some(integration) = integration {
            match integration.sync_config.mapping(t) {
                Some(m) if m.enabled => {}
                Some(_) => v.add(
                    p,
                    "its entity mapping is disabled in the integration's syncConfig.entityMappings",
                ),
                None => v.add(
                    p,
                    "has no entity mapping in the integration's syncConfig.entityMappings",
                ),
            }
        }
    }
}

fn check_direction(direction: Direction, caps: Capabilities, v: &mut Violations) {
    let (pull, push) = match direction {
        Direction::Inbound => (true, false),
        Direction::Outbound => (false, true),
        Direction::Bidirectional => (true, true),
    };
    if pull && !caps.pull {
        v.add(
            "/direction",
            "the integration's provider cannot read records (catalog capability pull)",
        );
    } else if push && !caps.push {
        v.add(
            "/direction",
            "the integration's provider cannot write records (catalog capability push)",
        );
    }
}

fn check_conflicts(c: &ConflictResolution, v: &mut Violations) {
    if c.field_rules.is_empty() {
        return;
    }
    if c.strategy != ConflictStrategy::Merge {
        v.add(
            "/conflictResolution/fieldRules",
            "is only allowed with strategy merge",
        );
        return;
    }
    if c.field_rules.len() > MAX_FIELD_RULES {
        v.add(
            "/conflictResolution/fieldRules",
            format!("must have at most {MAX_FIELD_RULES} entries"),
        );
        return;
    }
    let mut seen = HashSet::new();
    for (i, r) in c.field_rules.iter().enumerate() {
        let p = format!("/conflictResolution/fieldRules/{i}/field");
        v.line(&p, &r.field, 1, 200);
        if !v.has(&p) && !seen.insert(r.field.as_str()) {
            v.add(p, "has a rule already");
        }
    }
}

/// When the scheduler should next run `task` from `now`: `None` when it is
/// disabled or manual.
pub(super) fn scheduled(task: &SyncTask, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if task.enabled {
        schedule::next_run_at(&task.schedule, now)
    } else {
        None
    }
}
