//! Running a sync (SPEC §9.2): the `sync-run` job, whichever way it arrives
//! (a `serve` worker, the Functions `sync-run` trigger).
//!
//! A run is an [`Execution`]. The job claims it — a slot in the tenant's
//! [`ledger`] and the execution itself, under its ETag, with a lease and a
//! fresh runner token — then syncs each entity ([`inbound`]), checkpointing
//! the cursor and the counters after every page. Every page's write of the
//! execution renews the lease and notices a cancel or a takeover (the ETag
//! changed). A run whose process died keeps its lease until it lapses; the
//! scheduler then queues it again and it resumes from its checkpoints
//! ([`scheduler::recover`]).

mod finish;
mod inbound;
pub mod ledger;
pub mod links;
pub mod scheduler;
pub mod start;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::SyncEngine;
use super::adapter::{self, AdapterError};
use super::model::{Counters, EntityCounters, Execution, ExecutionStatus, SyncTask, Trigger};
use crate::domain::tenancy::{Ctx, TenantId};
use crate::error::Error;
use crate::features::integrations::model::Integration;
use crate::features::integrations::service as integrations;
use crate::jobs::{JobError, JobOutcome};
use crate::platform::events::types;
use crate::platform::shards::ShardError;
use crate::platform::store::{ETag, StoreError};

/// Why a run stopped before the source was exhausted.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A person cancelled it.
    Cancelled,
    /// Its lease lapsed and another worker holds it now: this one stops
    /// without writing anything more.
    LostLease,
    /// It failed.
    Failed {
        /// Why, for the execution's errors.
        message: String,
        /// Whether a later run may succeed.
        transient: bool,
        /// When to try again, when the cause said.
        retry_after: Option<std::time::Duration>,
    },
}

// Taken by value so that they read as `map_err(Stop::store)`.
#[allow(clippy::needless_pass_by_value)]
impl Stop {
    fn adapter(e: AdapterError) -> Self {
        let retry_after = match &e {
            AdapterError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        if e == AdapterError::Cancelled {
            return Stop::Cancelled;
        }
        Stop::Failed {
            transient: e.is_transient(),
            message: e.to_string(),
            retry_after,
        }
    }

    fn store(e: StoreError) -> Self {
        Stop::Failed {
            message: format!("the store failed: {e}"),
            transient: true,
            retry_after: None,
        }
    }

    fn shards(e: ShardError) -> Self {
        Stop::Failed {
            transient: matches!(e, ShardError::Unavailable(_)),
            message: e.to_string(),
            retry_after: None,
        }
    }

    fn error(e: &Error) -> Self {
        Stop::Failed {
            transient: matches!(e, Error::Unavailable { .. }),
            message: e.to_string(),
            retry_after: None,
        }
    }
}

/// One run in progress: what it holds, as last written.
pub(crate) struct Run<'a> {
    engine: &'a SyncEngine,
    ctx: Ctx,
    tenant: TenantId,
    exec: Execution,
    task: SyncTask,
    integration: Integration,
    /// Records the run may still fetch.
    budget: usize,
}

fn lease(engine: &SyncEngine) -> Duration {
    Duration::seconds(i64::from(engine.limits.lease_seconds))
}

/// Runs (or resumes) one execution. A message for an execution that is
/// over, gone, or held by a live run is a no-op.
pub async fn run(
    engine: &SyncEngine,
    tenant: TenantId,
    execution_id: Uuid,
) -> Result<JobOutcome, JobError> {
    let ctx = Ctx::system(tenant, format!("sync-run-{execution_id}"));
    let Some(exec) = engine
        .store
        .get::<Execution>(&tenant.key(), &execution_id.to_string())
        .await?
    else {
        return Ok(JobOutcome::done().log("the execution is gone"));
    };
    let now = engine.clock.now();
    if exec.status.is_final() {
        return Ok(JobOutcome::done().log("the execution is over"));
    }
    if exec.status == ExecutionStatus::Running && exec.lease_until.is_some_and(|l| l > now) {
        return Ok(JobOutcome::done().log("a live run holds the execution"));
    }
    let Some(task) = engine
        .store
        .get::<SyncTask>(&tenant.key(), &exec.task_id.to_string())
        .await?
    else {
        finish::abandon(engine, &ctx, exec, "the task was deleted").await?;
        return Ok(JobOutcome::done().log("the task is gone"));
    };
    let slot = ledger::Slot {
        execution_id: exec.id,
        task_id: task.id,
        integration_id: task.integration_id,
        lease_until: now + lease(engine),
    };
    match ledger::claim(engine, tenant, slot).await? {
        Ok(()) => {}
        Err(refusal) => return start::refused_at_start(engine, exec, &refusal).await,
    }
    let Some(exec) = claim(engine, &ctx, exec).await? else {
        return Ok(JobOutcome::done().log("another worker claimed the execution"));
    };
    let integration = match integrations::get(&engine.integrations, &ctx, task.integration_id).await
    {
        Ok(i) => i,
        Err(Error::NotFound(_)) => {
            let stop = Stop::Failed {
                message: "the integration was deleted".into(),
                transient: false,
                retry_after: None,
            };
            finish::end(engine, &ctx, exec, task, Err(stop)).await?;
            return Ok(JobOutcome::done());
        }
        Err(e) => return Err(e.into()),
    };
    let budget = task
        .max_records_per_sync
        .unwrap_or(engine.limits.max_records)
        .min(engine.limits.max_records) as usize;
    let mut run = Run {
        engine,
        ctx: ctx.clone(),
        tenant,
        exec,
        task,
        integration,
        budget,
    };
    let (exec_id, runner) = (run.exec.id, run.exec.runner);
    let outcome = tokio::select! {
        outcome = body(&mut run) => outcome,
        () = heartbeat(engine, tenant, exec_id, runner) => Err(Stop::LostLease),
    };
    let Run { exec, task, .. } = run;
    finish::end(engine, &ctx, exec, task, outcome).await?;
    Ok(JobOutcome::done())
}

/// Marks the execution running under this worker, raising
/// `integration.sync.started` on its first start; `None` when another
/// worker claimed it first.
async fn claim(
    engine: &SyncEngine,
    ctx: &Ctx,
    mut exec: Execution,
) -> Result<Option<Execution>, JobError> {
    let now = engine.clock.now();
    let first = exec.started_at.is_none();
    let etag = ETag::new(exec.etag.clone());
    exec.status = ExecutionStatus::Running;
    exec.started_at.get_or_insert(now);
    exec.runner = Some(Uuid::new_v4());
    exec.lease_until = Some(now + lease(engine));
    let events = if first {
        vec![finish::event(engine, ctx, &exec, types::SYNC_STARTED)]
    } else {
        Vec::new()
    };
    let write = crate::platform::store::Write::put(&exec, Some(&etag)).map_err(Error::from)?;
    match engine
        .events
        .within(engine.store.as_ref(), events, write)
        .await
    {
        Ok(Some(doc)) => Ok(Some(crate::platform::store::as_written(exec, &doc))),
        Ok(None) => Ok(Some(exec)),
        Err(Error::PreconditionFailed | Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The run's work: each entity of the task, inbound.
async fn body(run: &mut Run<'_>) -> Result<bool, Stop> {
    let direction = run.task.direction;
    if direction == super::model::Direction::Outbound {
        return Ok(false);
    }
    if run.exec.full_resync && run.exec.counters == Counters::default() {
        run.reset_cursors().await?;
    }
    let adapter = adapter::open(&run.engine.adapters, &run.ctx, &run.integration)
        .await
        .map_err(|e| Stop::error(&e))?;
    let entities = run.task.entity_types.clone();
    for entity in &entities {
        let Some(mapping) = run
            .integration
            .sync_config
            .mapping(entity)
            .filter(|m| m.enabled)
            .cloned()
        else {
            run.error(entity, None, "the entity has no enabled mapping".into());
            continue;
        };
        if inbound::entity(run, adapter.as_ref(), &mapping).await? == inbound::Listed::BudgetSpent {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Run<'_> {
    /// Forgets the cursors of the task's entities (a full resync's start).
    async fn reset_cursors(&mut self) -> Result<(), Stop> {
        let entities = self.task.entity_types.clone();
        self.save_task(|t| {
            for e in &entities {
                t.cursors.remove(e);
            }
        })
        .await
    }

    /// Writes the task with `change` applied, re-reading it when a person
    /// changed it meanwhile.
    async fn save_task(&mut self, change: impl Fn(&mut SyncTask)) -> Result<(), Stop> {
        for _ in 0..8 {
            let mut next = self.task.clone();
            change(&mut next);
            match self
                .engine
                .store
                .put(&next, Some(&ETag::new(self.task.etag.clone())))
                .await
            {
                Ok(saved) => {
                    self.task = saved;
                    return Ok(());
                }
                Err(StoreError::PreconditionFailed) => {
                    let fresh = self
                        .engine
                        .store
                        .get::<SyncTask>(&self.tenant.key(), &self.task.id.to_string())
                        .await
                        .map_err(Stop::store)?;
                    let Some(fresh) = fresh else {
                        return Err(Stop::Failed {
                            message: "the task was deleted".into(),
                            transient: false,
                            retry_after: None,
                        });
                    };
                    self.task = fresh;
                }
                Err(e) => return Err(Stop::store(e)),
            }
        }
        Err(Stop::store(StoreError::PreconditionFailed))
    }

    /// After a page: the entity's cursor on the task, the counters (live
    /// progress) and a renewed lease on the execution.
    async fn checkpoint(
        &mut self,
        entity: &str,
        cursor: Option<Value>,
        counters: Counters,
    ) -> Result<(), Stop> {
        if let Some(c) = cursor {
            let name = entity.to_owned();
            self.save_task(|t| {
                t.cursors.insert(name.clone(), c.clone());
            })
            .await?;
        }
        self.add_counters(entity, &counters);
        self.save_exec().await?;
        Ok(())
    }

    fn add_counters(&mut self, entity: &str, counters: &Counters) {
        self.exec.counters.add(counters);
        match self
            .exec
            .entities
            .iter_mut()
            .find(|e| e.entity_type == entity)
        {
            Some(e) => e.counters.add(counters),
            None => self.exec.entities.push(EntityCounters {
                entity_type: entity.to_owned(),
                counters: *counters,
            }),
        }
    }

    /// Writes the execution under its ETag with a renewed lease. A changed
    /// ETag means a cancel (stop as cancelled) or a takeover (stop silently).
    async fn save_exec(&mut self) -> Result<(), Stop> {
        for _ in 0..8 {
            let mut next = self.exec.clone();
            next.lease_until = Some(self.engine.clock.now() + lease(self.engine));
            match self
                .engine
                .store
                .put(&next, Some(&ETag::new(self.exec.etag.clone())))
                .await
            {
                Ok(saved) => {
                    self.exec = saved;
                    return Ok(());
                }
                Err(StoreError::PreconditionFailed | StoreError::NotFound) => {
                    let fresh = self
                        .engine
                        .store
                        .get::<Execution>(&self.tenant.key(), &self.exec.id.to_string())
                        .await
                        .map_err(Stop::store)?;
                    let Some(fresh) = fresh else {
                        return Err(Stop::LostLease);
                    };
                    if fresh.runner != self.exec.runner || fresh.status.is_final() {
                        return Err(Stop::LostLease);
                    }
                    self.exec.etag = fresh.etag;
                    if fresh.cancel_requested {
                        self.exec.cancel_requested = true;
                        return Err(Stop::Cancelled);
                    }
                }
                Err(e) => return Err(Stop::store(e)),
            }
        }
        Err(Stop::store(StoreError::PreconditionFailed))
    }
}

/// Keeps a run's leases — the execution's and its tenant slot's — alive
/// every third of a lease while the run works, however long a page takes
/// (a slow provider, a large page on a busy store). Returns only when the
/// run lost the execution: another worker took it over, or it ended
/// elsewhere.
async fn heartbeat(engine: &SyncEngine, tenant: TenantId, exec_id: Uuid, runner: Option<Uuid>) {
    let every = (lease(engine) / 3)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let until = engine.clock.now() + lease(engine);
        match renew_execution(engine, tenant, exec_id, runner, until).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(execution.id = %exec_id, error = %e, "renewing a run's lease failed; retrying");
                continue;
            }
        }
        if let Err(e) = ledger::renew(engine, tenant, exec_id, until).await {
            tracing::warn!(execution.id = %exec_id, error = %e, "renewing a run's tenant slot failed; retrying");
        }
    }
}

/// Extends the execution's lease if `runner` still holds it; `false` when
/// it does not.
async fn renew_execution(
    engine: &SyncEngine,
    tenant: TenantId,
    exec_id: Uuid,
    runner: Option<Uuid>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    for _ in 0..8 {
        let Some(mut e) = engine
            .store
            .get::<Execution>(&tenant.key(), &exec_id.to_string())
            .await?
        else {
            return Ok(false);
        };
        if e.runner != runner || e.status.is_final() {
            return Ok(false);
        }
        let etag = ETag::new(e.etag.clone());
        e.lease_until = Some(until);
        match engine.store.put(&e, Some(&etag)).await {
            Ok(_) => return Ok(true),
            Err(StoreError::PreconditionFailed) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl Trigger {
    /// The trigger of the run that follows one that stopped at the record
    /// limit, or failed for a passing reason.
    fn follow_up(has_more: bool) -> Self {
        if has_more {
            Trigger::Continuation
        } else {
            Trigger::Retry
        }
    }
}
