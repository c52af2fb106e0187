//! How a run ends: its final status and counters with its events in one
//! unit of work, the task's and the integration's last-run fields, the
//! tenant slot freed, and the run that follows — a `continuation` when the
//! record limit stopped it, a `retry` when it failed for a passing reason.

use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use super::{Stop, Trigger, ledger};
use crate::domain::tenancy::Ctx;
use crate::error::{Error, Result};
use crate::features::integrations::sync_state;
use crate::features::sync::SyncEngine;
use crate::features::sync::model::{Execution, ExecutionError, ExecutionStatus, SyncTask};
use crate::platform::events::{Event, types};
use crate::platform::store::{ETag, Write};

/// The least wait before a failed run is retried.
const RETRY_MINUTES: i64 = 5;

/// An `integration.sync.*` or `sync.task.completed` event about `exec`.
pub(super) fn event(engine: &SyncEngine, ctx: &Ctx, exec: &Execution, kind: &str) -> Event {
    engine.events.envelope(
        ctx,
        kind,
        json!({
            "taskId": exec.task_id,
            "executionId": exec.id,
            "integrationId": exec.integration_id,
            "status": exec.status,
            "counters": exec.counters,
        }),
    )
}

/// Ends a run with the outcome of its body (`Ok(has_more)` or why it stopped).
pub(super) async fn end(
    engine: &SyncEngine,
    ctx: &Ctx,
    mut exec: Execution,
    task: SyncTask,
    outcome: std::result::Result<bool, Stop>,
) -> Result<()> {
    let now = engine.clock.now();
    let mut follow_up: Option<(Trigger, Duration)> = None;
    let interval = Duration::minutes(i64::from(engine.limits.min_interval_minutes));
    match outcome {
        Err(Stop::LostLease) => {
            tracing::info!(execution.id = %exec.id, "another worker took the run over");
            return Ok(());
        }
        Ok(has_more) => {
            exec.has_more = has_more;
            exec.status = if exec.counters.failed > 0 {
                ExecutionStatus::Partial
            } else {
                ExecutionStatus::Completed
            };
            if has_more {
                follow_up = Some((Trigger::follow_up(true), interval));
            }
        }
        Err(Stop::Cancelled) => exec.status = ExecutionStatus::Cancelled,
        Err(Stop::Failed {
            message,
            transient,
            retry_after,
        }) => {
            exec.status = ExecutionStatus::Failed;
            if exec.errors.len() < crate::features::sync::model::MAX_ERRORS {
                exec.errors.push(ExecutionError {
                    entity_type: String::new(),
                    external_id: None,
                    message,
                    at: now,
                });
            }
            if transient && exec.trigger != Trigger::Retry {
                let hinted = retry_after
                    .and_then(|d| Duration::from_std(d).ok())
                    .unwrap_or_default();
                let wait = hinted.max(interval).max(Duration::minutes(RETRY_MINUTES));
                follow_up = Some((Trigger::follow_up(false), wait));
            }
        }
    }
    exec.completed_at = Some(now);
    exec.duration_ms = exec
        .started_at
        .map(|s| u64::try_from((now - s).num_milliseconds()).unwrap_or(0));
    exec.lease_until = None;
    exec.runner = None;
    write_final(engine, ctx, exec.clone()).await?;
    ledger::release(
        engine,
        ctx.tenant(),
        exec.id,
        exec.integration_id,
        Some(now),
    )
    .await?;
    let next = match follow_up {
        Some((trigger, wait)) => {
            let e = queue(engine, &task, trigger, now + wait).await?;
            Some(e.id)
        }
        None => None,
    };
    record_on_task(engine, ctx, &task, &exec, next).await?;
    let status = serde_json::to_value(exec.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    sync_state::record_sync(&engine.integrations, ctx, exec.integration_id, now, &status)
        .await
        .or_else(|e| match e {
            Error::NotFound(_) => Ok(()),
            e => Err(e),
        })?;
    tracing::info!(
        execution.id = %exec.id,
        task.id = %exec.task_id,
        status = %status,
        fetched = exec.counters.fetched,
        created = exec.counters.created,
        updated = exec.counters.updated,
        unchanged = exec.counters.unchanged,
        failed = exec.counters.failed,
        has_more = exec.has_more,
        "sync run ended"
    );
    Ok(())
}

/// Writes the final execution with its events; a cancel asked meanwhile
/// does not change how it ended.
async fn write_final(engine: &SyncEngine, ctx: &Ctx, exec: Execution) -> Result<()> {
    let kind = match exec.status {
        ExecutionStatus::Completed | ExecutionStatus::Partial => types::SYNC_COMPLETED,
        _ => types::SYNC_FAILED,
    };
    let events = vec![
        event(engine, ctx, &exec, kind),
        event(engine, ctx, &exec, types::TASK_COMPLETED),
    ];
    let write = Write::put(&exec, None)?;
    engine
        .events
        .within(engine.store.as_ref(), events, write)
        .await?;
    Ok(())
}

/// Ends an execution that cannot run (its task is gone).
pub(super) async fn abandon(
    engine: &SyncEngine,
    ctx: &Ctx,
    mut exec: Execution,
    reason: &str,
) -> Result<()> {
    let now = engine.clock.now();
    exec.status = ExecutionStatus::Failed;
    exec.completed_at = Some(now);
    exec.lease_until = None;
    exec.errors.push(ExecutionError {
        entity_type: String::new(),
        external_id: None,
        message: reason.to_owned(),
        at: now,
    });
    write_final(engine, ctx, exec.clone()).await?;
    ledger::release(engine, ctx.tenant(), exec.id, exec.integration_id, None).await
}

/// A new queued execution of `task` and its job, due at `at`.
pub(super) async fn queue(
    engine: &SyncEngine,
    task: &SyncTask,
    trigger: Trigger,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Execution> {
    let exec = super::start::new_execution(task, trigger, false, engine.clock.now());
    let exec = engine.store.insert(&exec).await?;
    super::start::enqueue(engine, &exec, Some(at)).await?;
    Ok(exec)
}

/// The task's last-run fields (and the next run queued, if any).
async fn record_on_task(
    engine: &SyncEngine,
    ctx: &Ctx,
    task: &SyncTask,
    exec: &Execution,
    next: Option<Uuid>,
) -> Result<()> {
    let pk = ctx.tenant().key();
    let id = task.id.to_string();
    for _ in 0..8 {
        let Some(mut t) = engine.store.get::<SyncTask>(&pk, &id).await? else {
            return Ok(());
        };
        let etag = ETag::new(t.etag.clone());
        t.last_run_at = exec.started_at.or(t.last_run_at);
        t.last_status = Some(exec.status);
        t.last_execution_id = Some(next.unwrap_or(exec.id));
        t.updated_at = engine.clock.now();
        match engine.store.put(&t, Some(&etag)).await {
            Ok(_) => return Ok(()),
            Err(crate::platform::store::StoreError::PreconditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::PreconditionFailed)
}
