//! Sync tasks and their execution history (SPEC §5.6). The `run` and
//! `cancel` routes belong to the run engine and join [`router`] there.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, IdempotencyKey, IfMatch, Path, QueryParams, Valid};
use super::idempotency::idempotent;
use super::integrations::parse_id;
use super::respond::{created, with_etag};
use crate::app::AppState;
use crate::domain::pages::Paged;
use crate::features::sync::executions;
use crate::features::sync::model::{Execution, SyncTask};
use crate::features::sync::tasks::{self, NewSyncTask, SyncTaskUpdate, TaskFilter};

/// Fields of a task that only the service writes.
const SERVER_OWNED: &[&str] = &[
    "id",
    "tenantId",
    "kind",
    "nextRunAt",
    "lastRunAt",
    "lastExecutionId",
    "lastStatus",
    "cursors",
    "createdAt",
    "updatedAt",
    "createdBy",
    "etag",
];

impl ApiInput for NewSyncTask {
    const READ_ONLY: &'static [&'static str] = SERVER_OWNED;
}
impl ApiInput for SyncTaskUpdate {
    const READ_ONLY: &'static [&'static str] = SERVER_OWNED;
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sync_tasks, create_sync_task))
        .routes(routes!(get_sync_task, update_sync_task, delete_sync_task))
        .routes(routes!(list_executions))
        .routes(routes!(get_execution))
}

/// The caller's sync tasks, newest first.
#[utoipa::path(get, path = "/api/v1/sync-tasks", tag = "sync",
    params(("integrationId" = Option<Uuid>, Query), ("enabled" = Option<bool>, Query),
           ("limit" = Option<u32>, Query), ("continuationToken" = Option<String>, Query)),
    responses((status = 200, body = Paged<SyncTask>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
async fn list_sync_tasks(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    mut q: QueryParams,
) -> Result<Json<Paged<SyncTask>>, ApiError> {
    let filter = TaskFilter {
        integration_id: q.parse("integrationId"),
        enabled: q.parse("enabled"),
    };
    let page = q.page();
    q.finish()?;
    Ok(Json(tasks::list(&app.sync, &ctx, &filter, &page).await?))
}

/// Creates a sync task (`nextRunAt` set when enabled and scheduled);
/// honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/sync-tasks", tag = "sync",
    request_body = NewSyncTask,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 h")),
    responses((status = 201, body = SyncTask), (status = 400, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
async fn create_sync_task(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    key: IdempotencyKey,
    body: Valid<NewSyncTask>,
) -> Result<Response, ApiError> {
    idempotent(
        &app,
        &ctx,
        &key,
        "POST /api/v1/sync-tasks",
        &body.digest,
        || async {
            let t = tasks::create(&app.sync, &ctx, body.value).await?;
            Ok(created(
                &format!("/api/v1/sync-tasks/{}", t.id),
                &t.etag,
                &t,
            ))
        },
    )
    .await
}

/// One sync task.
#[utoipa::path(get, path = "/api/v1/sync-tasks/{id}", tag = "sync",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SyncTask), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_sync_task(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let t = tasks::get(&app.sync, &ctx, parse_id(&id, "sync task")?).await?;
    Ok(with_etag(StatusCode::OK, &t.etag, &t))
}

/// Replaces a task's editable fields (honours `If-Match`).
#[utoipa::path(put, path = "/api/v1/sync-tasks/{id}", tag = "sync",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = SyncTaskUpdate,
    responses((status = 200, body = SyncTask), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn update_sync_task(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    if_match: IfMatch,
    body: Valid<SyncTaskUpdate>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "sync task")?;
    let t = tasks::replace(&app.sync, &ctx, id, body.value, if_match.etag()).await?;
    Ok(with_etag(StatusCode::OK, &t.etag, &t))
}

/// Deletes a sync task (honours `If-Match`).
#[utoipa::path(delete, path = "/api/v1/sync-tasks/{id}", tag = "sync",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn delete_sync_task(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    if_match: IfMatch,
) -> Result<Response, ApiError> {
    tasks::delete(
        &app.sync,
        &ctx,
        parse_id(&id, "sync task")?,
        if_match.etag(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A task's executions, newest first.
#[utoipa::path(get, path = "/api/v1/sync-tasks/{id}/executions", tag = "sync",
    params(("id" = Uuid, Path),
           ("limit" = Option<u32>, Query), ("continuationToken" = Option<String>, Query)),
    responses((status = 200, body = Paged<Execution>), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_executions(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> Result<Json<Paged<Execution>>, ApiError> {
    let id = parse_id(&id, "sync task")?;
    let page = q.page();
    q.finish()?;
    Ok(Json(executions::list(&app.sync, &ctx, id, &page).await?))
}

/// One execution of a task, with its counters and first errors.
#[utoipa::path(get, path = "/api/v1/sync-tasks/{id}/executions/{executionId}", tag = "sync",
    params(("id" = Uuid, Path), ("executionId" = Uuid, Path)),
    responses((status = 200, body = Execution), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_execution(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, execution_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "sync task")?;
    let execution_id = parse_id(&execution_id, "execution")?;
    let e = executions::get(&app.sync, &ctx, id, execution_id).await?;
    Ok(with_etag(StatusCode::OK, &e.etag, &e))
}
