//! The scheduler (SPEC §9.2.6), one entry of the periodic-work table: due
//! tasks are claimed under their ETag — so two instances never run the same
//! due task — given their next `nextRunAt` and a queued run; and runs left
//! behind are sent again: a running execution whose lease lapsed (its
//! process died) resumes from its checkpoints, a queued one whose job was
//! lost is re-sent.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{finish, lease, start};
use crate::domain::time::exact_text;
use crate::error::Result;
use crate::features::sync::SyncEngine;
use crate::features::sync::model::{Execution, SyncTask, Trigger};
use crate::features::sync::tasks;
use crate::platform::store::{ETag, Filter, Op, Query, StoreError};

/// Tasks read per query.
const PAGE: u32 = 100;
/// Queries per tick (the rest wait for the next tick).
const MAX_PAGES: usize = 20;

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SchedulerReport {
    /// Due tasks found.
    pub due: usize,
    /// Runs queued for them.
    pub queued: usize,
    /// Due tasks another instance claimed first, or whose last run is not over.
    pub skipped: usize,
    /// Lapsed runs sent again to resume.
    pub resumed: usize,
    /// Queued runs whose job was sent again.
    pub resent: usize,
}

/// One tick: due tasks, then runs left behind.
pub async fn tick(engine: &SyncEngine) -> Result<SchedulerReport> {
    let mut report = SchedulerReport::default();
    let now = engine.clock.now();
    schedule_due(engine, now, &mut report).await?;
    recover(engine, now, &mut report).await?;
    Ok(report)
}

async fn schedule_due(
    engine: &SyncEngine,
    now: DateTime<Utc>,
    report: &mut SchedulerReport,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        // Claimed tasks move their nextRunAt past now, so each query reads
        // what is still due rather than continuing the first one.
        let tasks = tasks::due(engine, now, PAGE).await?;
        let fresh: Vec<SyncTask> = tasks.into_iter().filter(|t| seen.insert(t.id)).collect();
        if fresh.is_empty() {
            break;
        }
        for task in fresh {
            report.due += 1;
            if claim_due(engine, task, now).await? {
                report.queued += 1;
            } else {
                report.skipped += 1;
            }
        }
    }
    Ok(())
}

/// Claims one due task: moves its `nextRunAt` on under its ETag, then
/// queues a run unless its last run is not over. `false` when another
/// instance claimed it first or nothing was queued.
async fn claim_due(engine: &SyncEngine, mut task: SyncTask, now: DateTime<Utc>) -> Result<bool> {
    let etag = ETag::new(task.etag.clone());
    let busy = start::unfinished(engine, &task).await?.is_some();
    tasks::advance(&mut task, now);
    task.updated_at = now;
    let saved = match engine.store.put(&task, Some(&etag)).await {
        Ok(t) => t,
        Err(StoreError::PreconditionFailed | StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if busy {
        return Ok(false);
    }
    let exec = finish::queue(engine, &saved, Trigger::Scheduled, now).await?;
    start::point_task_at(engine, &saved, exec.id).await?;
    Ok(true)
}

/// Sends again the runs left behind.
async fn recover(
    engine: &SyncEngine,
    now: DateTime<Utc>,
    report: &mut SchedulerReport,
) -> Result<()> {
    let lapsed = Query::cross_partition()
        .eq("status", "running")
        .filter(Filter::new("leaseUntil", Op::Lt, exact_text(&now)))
        .order_by("leaseUntil", false)
        .limit(PAGE);
    let (runs, _) = engine.store.page::<Execution>(&lapsed).await?;
    for exec in runs {
        tracing::warn!(execution.id = %exec.id, task.id = %exec.task_id, "a sync run's lease lapsed (its process stopped); resuming it");
        start::enqueue_again(engine, &exec, now).await?;
        report.resumed += 1;
    }
    let stale = now - lease(engine) * 2;
    let waiting = Query::cross_partition()
        .eq("status", "queued")
        .filter(Filter::new("createdAt", Op::Lt, json!(sortable(&stale))))
        .order_by("createdAt", false)
        .limit(PAGE);
    let (queued, _) = engine.store.page::<Execution>(&waiting).await?;
    for exec in queued {
        // The message id is the execution's: a job still queued absorbs it.
        start::enqueue(engine, &exec, None).await?;
        report.resent += 1;
    }
    Ok(())
}

fn sortable(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
