//! A task's execution history (SPEC §5.6): newest first, paged; one
//! execution with its counters and errors. Executions are written by the
//! run engine and expire after 30 days (the container's TTL).

use uuid::Uuid;

use super::SyncEngine;
use super::model::Execution;
use super::tasks;
use crate::domain::pages::{PageRequest, Paged};
use crate::domain::tenancy::Ctx;
use crate::error::{Error, Result};
use crate::platform::store::Query;

/// The executions of one of the caller's tasks, newest first (`createdAt`
/// descending; ties by id).
pub async fn list(
    engine: &SyncEngine,
    ctx: &Ctx,
    task_id: Uuid,
    page: &PageRequest,
) -> Result<Paged<Execution>> {
    tasks::get(engine, ctx, task_id).await?;
    let q = Query::partition(ctx.tenant().key())
        .eq("taskId", task_id.to_string())
        .order_by("createdAt", true)
        .limit(page.limit)
        .after(page.continuation.clone());
    let (items, continuation_token) = engine.store.page::<Execution>(&q).await?;
    Ok(Paged {
        items,
        continuation_token,
    })
}

/// One execution of one of the caller's tasks (404 for another task's or
/// another tenant's).
pub async fn get(
    engine: &SyncEngine,
    ctx: &Ctx,
    task_id: Uuid,
    execution_id: Uuid,
) -> Result<Execution> {
    tasks::get(engine, ctx, task_id).await?;
    engine
        .store
        .get::<Execution>(&ctx.tenant().key(), &execution_id.to_string())
        .await?
        .filter(|e| e.task_id == task_id)
        .ok_or(Error::NotFound("execution"))
}
