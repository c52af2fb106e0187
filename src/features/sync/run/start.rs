//! Starting and stopping runs: `POST …/run` (limits checked at once, so a
//! refusal is a 429 the caller sees, recorded as a `rejected` execution),
//! `POST …/cancel`, and what a queued run does when a limit holds it back
//! at start.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::lease;
use super::ledger::{self, Refusal};
use crate::domain::tenancy::Ctx;
use crate::error::{Error, Result};
use crate::features::sync::SyncEngine;
use crate::features::sync::model::{Execution, ExecutionStatus, SyncTask, Trigger};
use crate::jobs::{JobError, JobOutcome};
use crate::platform::queue::JobMessage;
use crate::platform::store::{ETag, StoreError};

/// How long a manual run's slot is held while it waits for a worker.
const QUEUED_LEASES: i32 = 5;

/// What `POST …/run` did.
#[derive(Debug)]
pub enum Started {
    /// Queued: the execution.
    Queued(Execution),
    /// A limit refused it: the `rejected` execution, and when to try again.
    Rejected(Execution, std::time::Duration),
}

/// Sends the job of a queued execution (its id deduplicates the message).
pub async fn enqueue(
    engine: &SyncEngine,
    exec: &Execution,
    at: Option<DateTime<Utc>>,
) -> Result<()> {
    send(engine, exec, at, exec.id.to_string()).await
}

/// Sends the job of an execution again, for `at`, while its current
/// message is still being handled (so under another message id). The id
/// names the minute it is due in, so repeated sends for the same moment
/// (a limit holding a run back, the scheduler's recovery) stay one message.
pub(super) async fn enqueue_again(
    engine: &SyncEngine,
    exec: &Execution,
    at: DateTime<Utc>,
) -> Result<()> {
    let id = format!("{}@{}", exec.id, at.timestamp().div_euclid(60));
    send(engine, exec, Some(at), id).await
}

async fn send(
    engine: &SyncEngine,
    exec: &Execution,
    at: Option<DateTime<Utc>>,
    message_id: String,
) -> Result<()> {
    let message = JobMessage::SyncRun {
        tenant_id: exec.tenant_id,
        execution_id: exec.id,
    };
    let at = at.filter(|t| *t > engine.clock.now());
    engine
        .queue
        .send(&message, at, &message_id)
        .await
        .map_err(|e| Error::Unavailable {
            detail: format!("the job queue is unavailable: {e}"),
            retry_after: None,
        })
}

/// A new `queued` execution of `task`.
pub(super) fn new_execution(
    task: &SyncTask,
    trigger: Trigger,
    full: bool,
    now: DateTime<Utc>,
) -> Execution {
    Execution {
        id: Uuid::new_v4(),
        tenant_id: task.tenant_id,
        task_id: task.id,
        integration_id: task.integration_id,
        trigger,
        direction: task.direction,
        status: ExecutionStatus::Queued,
        rejection_reason: None,
        full_resync: full,
        created_at: now,
        started_at: None,
        completed_at: None,
        duration_ms: None,
        counters: Default::default(),
        entities: Vec::new(),
        errors: Vec::new(),
        has_more: false,
        cancel_requested: false,
        runner: None,
        lease_until: None,
        etag: String::new(),
    }
}

/// The task of the tenant (404 for another tenant's or a missing one).
async fn task_of(engine: &SyncEngine, ctx: &Ctx, task_id: Uuid) -> Result<SyncTask> {
    engine
        .store
        .get::<SyncTask>(&ctx.tenant().key(), &task_id.to_string())
        .await?
        .filter(|t| t.kind == crate::features::sync::model::TASK_KIND)
        .ok_or(Error::NotFound("sync task"))
}

/// The task's execution that is not over yet, if any.
pub(super) async fn unfinished(engine: &SyncEngine, task: &SyncTask) -> Result<Option<Execution>> {
    let Some(id) = task.last_execution_id else {
        return Ok(None);
    };
    Ok(engine
        .store
        .get::<Execution>(&task.tenant_id.key(), &id.to_string())
        .await?
        .filter(|e| !e.status.is_final()))
}

/// `POST /sync-tasks/{id}/run`.
pub async fn request(
    engine: &SyncEngine,
    ctx: &Ctx,
    task_id: Uuid,
    full_resync: bool,
) -> Result<Started> {
    let task = task_of(engine, ctx, task_id).await?;
    if unfinished(engine, &task).await?.is_some() {
        return Err(Error::Conflict(
            "a run of this task is queued or running; cancel it or wait for it to end".into(),
        ));
    }
    let now = engine.clock.now();
    let mut exec = new_execution(&task, Trigger::Manual, full_resync, now);
    let slot = ledger::Slot {
        execution_id: exec.id,
        task_id: task.id,
        integration_id: task.integration_id,
        lease_until: now + lease(engine) * QUEUED_LEASES,
    };
    if let Err(refusal) = ledger::claim(engine, ctx.tenant(), slot).await? {
        if refusal == Refusal::TaskRunning {
            return Err(Error::Conflict(refusal.reason(&engine.limits)));
        }
        let wait = refusal
            .retry_after()
            .and_then(|d| d.to_std().ok())
            .unwrap_or(std::time::Duration::from_secs(30));
        exec.status = ExecutionStatus::Rejected;
        exec.rejection_reason = Some(refusal.reason(&engine.limits));
        exec.completed_at = Some(now);
        let exec = engine.store.insert(&exec).await?;
        return Ok(Started::Rejected(exec, wait));
    }
    let exec = match engine.store.insert(&exec).await {
        Ok(e) => e,
        Err(e) => {
            ledger::release(engine, ctx.tenant(), exec.id, task.integration_id, None).await?;
            return Err(e.into());
        }
    };
    point_task_at(engine, &task, exec.id).await?;
    if let Err(e) = enqueue(engine, &exec, None).await {
        // The scheduler's recovery re-sends queued runs whose job was lost;
        // the caller is told the queue is down and the run will follow.
        tracing::warn!(execution.id = %exec.id, error = %e, "a sync run's job was not sent; recovery will send it");
    }
    Ok(Started::Queued(exec))
}

/// Makes the task's `lastExecutionId` the new execution.
pub(super) async fn point_task_at(engine: &SyncEngine, task: &SyncTask, exec: Uuid) -> Result<()> {
    let pk = task.tenant_id.key();
    let id = task.id.to_string();
    for _ in 0..8 {
        let Some(mut t) = engine.store.get::<SyncTask>(&pk, &id).await? else {
            return Err(Error::NotFound("sync task"));
        };
        let etag = ETag::new(t.etag.clone());
        t.last_execution_id = Some(exec);
        match engine.store.put(&t, Some(&etag)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::PreconditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::PreconditionFailed)
}

/// `POST /sync-tasks/{id}/cancel`: a queued run ends `cancelled` now; a
/// running one is asked to stop and stops after its current page.
pub async fn cancel(engine: &SyncEngine, ctx: &Ctx, task_id: Uuid) -> Result<Execution> {
    let task = task_of(engine, ctx, task_id).await?;
    for _ in 0..8 {
        let Some(mut exec) = unfinished(engine, &task).await? else {
            return Err(Error::Conflict("no run of this task is in progress".into()));
        };
        let etag = ETag::new(exec.etag.clone());
        if exec.status == ExecutionStatus::Queued {
            exec.status = ExecutionStatus::Cancelled;
            exec.completed_at = Some(engine.clock.now());
        } else {
            exec.cancel_requested = true;
        }
        match engine.store.put(&exec, Some(&etag)).await {
            Ok(saved) => {
                if saved.status == ExecutionStatus::Cancelled {
                    ledger::release(engine, ctx.tenant(), saved.id, saved.integration_id, None)
                        .await?;
                }
                return Ok(saved);
            }
            Err(StoreError::PreconditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::PreconditionFailed)
}

/// A queued run that a limit holds back when its job arrives: a manual
/// run whose slot lapsed, or a scheduled run, continuation or retry. A run
/// of a task that is running already ends `rejected`; one held by the
/// tenant's concurrency or the integration's interval waits and is sent
/// again then, so a continuation is never dropped.
pub(super) async fn refused_at_start(
    engine: &SyncEngine,
    mut exec: Execution,
    refusal: &Refusal,
) -> std::result::Result<JobOutcome, JobError> {
    let now = engine.clock.now();
    match refusal.retry_after() {
        Some(wait) => {
            enqueue_again(engine, &exec, now + wait).await?;
            Ok(JobOutcome::done().log(format!(
                "held back by a limit; sent again for {}",
                now + wait
            )))
        }
        None => {
            exec.status = ExecutionStatus::Rejected;
            exec.rejection_reason = Some(refusal.reason(&engine.limits));
            exec.completed_at = Some(now);
            engine
                .store
                .put(&exec, Some(&ETag::new(exec.etag.clone())))
                .await
                .map(drop)
                .or_else(|e| match e {
                    StoreError::PreconditionFailed => Ok(()),
                    e => Err(e),
                })?;
            Ok(JobOutcome::done().log("rejected: the task is running already"))
        }
    }
}
