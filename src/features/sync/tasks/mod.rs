//! Sync tasks (SPEC §5.6): create, list, read, replace, delete; the due
//! tasks the scheduler runs and their next run (SPEC §9.2.6).
//!
//! The tasks container also holds each tenant's ledger document, so every
//! query here filters `kind = "task"`.

mod input;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

pub use self::input::{MAX_ENTITY_TYPES, MAX_FIELD_RULES, NewSyncTask, SyncTaskUpdate};
use self::input::{Target, check, scheduled};
use super::SyncEngine;
use super::model::{SyncTask, TASK_KIND};
use super::schedule;
use crate::domain::pages::{PageRequest, Paged};
use crate::domain::tenancy::{Ctx, TenantId};
use crate::domain::time::exact_text;
use crate::domain::validation::Violations;
use crate::error::{Error, Result};
use crate::features::catalog::service as catalog;
use crate::features::integrations::model::Integration;
use crate::platform::store::{ETag, Entity as _, Filter, Op, Query, Store, StoreError, entity};

/// Filters of the task list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only this integration's tasks.
    pub integration_id: Option<Uuid>,
    /// Only enabled or disabled ones.
    pub enabled: Option<bool>,
}

/// The tasks of one tenant (documents of kind `task`).
fn of_tenant(tenant: TenantId) -> Query {
    Query::partition(tenant.key()).eq("kind", TASK_KIND)
}

/// The tenant's integration `id`, if it is one.
async fn integration(engine: &SyncEngine, ctx: &Ctx, id: Uuid) -> Result<Option<Integration>> {
    Ok(engine
        .store
        .get::<Integration>(&ctx.tenant().key(), &id.to_string())
        .await?)
}

/// What the checks need to know of an integration: itself, and what its
/// provider can do.
async fn target_of<'a>(
    engine: &SyncEngine,
    integration: Option<&'a Integration>,
) -> Result<Target<'a>> {
    let capabilities = match integration {
        Some(i) => catalog::find(&engine.catalog, &i.provider_id)
            .await?
            .map(|p| p.capabilities),
        None => None,
    };
    Ok(Target {
        integration,
        capabilities,
    })
}

/// Reports an integration whose provider left the catalog: nothing can
/// sync it.
fn provider_gone(i: Option<&Integration>, t: &Target<'_>, v: &mut Violations) {
    if i.is_some() && t.capabilities.is_none() {
        v.add(
            "/integrationId",
            "the integration's provider is no longer in the catalog",
        );
    }
}

/// Creates a task; its `nextRunAt` is set when it is enabled and scheduled.
pub async fn create(engine: &SyncEngine, ctx: &Ctx, input: NewSyncTask) -> Result<SyncTask> {
    let now = engine.clock.now();
    let mut v = Violations::default();
    let found = integration(engine, ctx, input.integration_id).await?;
    if found.is_none() {
        v.add("/integrationId", "is not an integration of this tenant");
    }
    let target = target_of(engine, found.as_ref()).await?;
    provider_gone(found.as_ref(), &target, &mut v);
    check(&input.editable(), &target, &engine.limits, now, &mut v);
    v.into_result()?;
    let mut task = SyncTask {
        id: Uuid::new_v4(),
        tenant_id: ctx.tenant(),
        kind: TASK_KIND.to_owned(),
        integration_id: input.integration_id,
        name: input.name.trim().to_owned(),
        direction: input.direction,
        entity_types: input.entity_types,
        schedule: input.schedule,
        conflict_resolution: input.conflict_resolution.unwrap_or_default(),
        max_records_per_sync: input.max_records_per_sync,
        enabled: input.enabled.unwrap_or(true),
        next_run_at: None,
        last_run_at: None,
        last_execution_id: None,
        last_status: None,
        cursors: BTreeMap::new(),
        created_at: now,
        updated_at: now,
        created_by: ctx.principal.user_id.clone(),
        etag: String::new(),
    };
    task.next_run_at = scheduled(&task, now);
    Ok(engine.store.insert(&task).await?)
}

/// One task of the caller's tenant. The document's kind is checked before
/// it is read as a task: the tenant's ledger shares the container.
pub async fn get(engine: &SyncEngine, ctx: &Ctx, id: Uuid) -> Result<SyncTask> {
    let doc = engine
        .store
        .read(SyncTask::CONTAINER, &ctx.tenant().key(), &id.to_string())
        .await?
        .filter(|d| d.body.get("kind").and_then(Value::as_str) == Some(TASK_KIND))
        .ok_or(Error::NotFound("sync task"))?;
    Ok(entity::<SyncTask>(doc)?)
}

/// The caller's tasks, newest first.
pub async fn list(
    engine: &SyncEngine,
    ctx: &Ctx,
    filter: &TaskFilter,
    page: &PageRequest,
) -> Result<Paged<SyncTask>> {
    let mut q = of_tenant(ctx.tenant())
        .order_by("createdAt", true)
        .limit(page.limit)
        .after(page.continuation.clone());
    if let Some(i) = filter.integration_id {
        q = q.eq("integrationId", i.to_string());
    }
    if let Some(e) = filter.enabled {
        q = q.eq("enabled", e);
    }
    let (items, continuation_token) = engine.store.page::<SyncTask>(&q).await?;
    Ok(Paged {
        items,
        continuation_token,
    })
}

/// Replaces a task's editable fields (If-Match honoured). `nextRunAt` is
/// computed again when the task is enabled or rescheduled, cleared when it
/// is disabled, and kept otherwise (renaming a task does not move its run).
pub async fn replace(
    engine: &SyncEngine,
    ctx: &Ctx,
    id: Uuid,
    input: SyncTaskUpdate,
    if_match: Option<&ETag>,
) -> Result<SyncTask> {
    let current = get(engine, ctx, id).await?;
    let now = engine.clock.now();
    let mut v = Violations::default();
    if input
        .integration_id
        .is_some_and(|i| i != current.integration_id)
    {
        v.add(
            "/integrationId",
            "cannot be changed; create a task for the other integration",
        );
    }
    let found = integration(engine, ctx, current.integration_id).await?;
    if found.is_none() {
        v.add("/integrationId", "the task's integration no longer exists");
    }
    let target = target_of(engine, found.as_ref()).await?;
    provider_gone(found.as_ref(), &target, &mut v);
    check(&input.editable(), &target, &engine.limits, now, &mut v);
    // A bad body is a 400 whatever its If-Match: the body is checked first.
    v.into_result()?;
    if if_match.is_some_and(|m| m.as_str() != current.etag) {
        return Err(Error::PreconditionFailed);
    }
    let mut next = current.clone();
    next.name = input.name.trim().to_owned();
    next.direction = input.direction;
    next.entity_types = input.entity_types;
    next.schedule = input.schedule;
    next.conflict_resolution = input.conflict_resolution.unwrap_or_default();
    next.max_records_per_sync = input.max_records_per_sync;
    next.enabled = input.enabled.unwrap_or(current.enabled);
    next.updated_at = now;
    let rescheduled = next.schedule != current.schedule
        || (next.enabled && !current.enabled)
        || current.next_run_at.is_none();
    if !next.enabled {
        next.next_run_at = None;
    } else if rescheduled {
        next.next_run_at = scheduled(&next, now);
    }
    match engine
        .store
        .put(&next, Some(&ETag::new(current.etag.clone())))
        .await
    {
        Ok(saved) => Ok(saved),
        // Another writer (a run, the scheduler) changed it meanwhile.
        Err(StoreError::PreconditionFailed) if if_match.is_some() => Err(Error::PreconditionFailed),
        Err(StoreError::PreconditionFailed) => Err(Error::Conflict(
            "the task changed while it was being replaced (a run or the scheduler); retry".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a task (If-Match honoured). Its executions expire with the
/// container's 30-day TTL; they can no longer be read through the API.
pub async fn delete(
    engine: &SyncEngine,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<&ETag>,
) -> Result<()> {
    let current = get(engine, ctx, id).await?;
    if if_match.is_some_and(|m| m.as_str() != current.etag) {
        return Err(Error::PreconditionFailed);
    }
    match engine
        .store
        .delete(
            SyncTask::CONTAINER,
            &ctx.tenant().key(),
            &id.to_string(),
            if_match,
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(Error::NotFound("sync task")),
        Err(e) => Err(e.into()),
    }
}

/// Most tasks [`due`] returns at once.
pub const DUE_MAX: u32 = 1000;

/// Enabled tasks of every tenant whose `nextRunAt` is at or before `now`,
/// earliest first, at most `limit` (1..=1000): one bounded cross-partition
/// page for the scheduler, which claims each with its ETag and calls
/// [`advance`].
pub async fn due(engine: &SyncEngine, now: DateTime<Utc>, limit: u32) -> Result<Vec<SyncTask>> {
    let q = Query::cross_partition()
        .eq("kind", TASK_KIND)
        .eq("enabled", true)
        .filter(Filter::new("nextRunAt", Op::IsDefined, json!(null)))
        .filter(Filter::new("nextRunAt", Op::Lte, exact_text(&now)))
        .order_by("nextRunAt", false)
        .limit(limit.clamp(1, DUE_MAX));
    let (items, _) = engine.store.page::<SyncTask>(&q).await?;
    Ok(items)
}

/// Sets `task.nextRunAt` to its next run after `now` (a run was just
/// enqueued): `now` + the interval, or the next cron match after `now` in
/// the task's zone — runs missed while nothing was scheduling are not
/// made up. `None` for a disabled or manual task. Returns the new value.
pub fn advance(task: &mut SyncTask, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    task.next_run_at = if task.enabled {
        schedule::next_run_at(&task.schedule, now)
    } else {
        None
    };
    task.next_run_at
}

/// Deletes an integration's tasks with it.
pub struct Cleanup {
    /// Document store.
    pub store: Arc<dyn Store>,
}

impl std::fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("sync::tasks::Cleanup")
            .finish_non_exhaustive()
    }
}

/// Pages of 200 read while deleting an integration's tasks.
const CLEANUP_PAGES: usize = 50;

#[async_trait]
impl crate::features::integrations::Dependent for Cleanup {
    async fn integration_deleted(&self, ctx: &Ctx, integration_id: Uuid) -> Result<()> {
        let q = of_tenant(ctx.tenant())
            .eq("integrationId", integration_id.to_string())
            .limit(200);
        let tasks = self.store.all::<SyncTask>(q, CLEANUP_PAGES).await?;
        let pk = ctx.tenant().key();
        for t in tasks {
            match self
                .store
                .delete(SyncTask::CONTAINER, &pk, &t.id.to_string(), None)
                .await
            {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
