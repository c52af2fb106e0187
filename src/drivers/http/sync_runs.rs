//! Runs of sync tasks (SPEC §5.6): start one now, cancel the one in
//! progress; and the connection test of an integration, which goes through
//! the same adapters.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, Path};
use super::integrations::parse_id;
use super::webhooks::optional_body;
use crate::app::AppState;
use crate::error::Error;
use crate::features::sync::connection_test::{self, ConnectionTest};
use crate::features::sync::model::{Execution, ExecutionStatus};
use crate::features::sync::run::start::{self, Started};

/// `POST /sync-tasks/{id}/run`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    /// List from the start, ignoring the cursors.
    #[serde(default)]
    pub full_resync: bool,
}
impl ApiInput for RunRequest {}

/// A queued run.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunQueued {
    /// The execution.
    pub execution_id: Uuid,
    /// `queued`.
    pub status: ExecutionStatus,
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_task))
        .routes(routes!(cancel_task))
        .routes(routes!(test_integration))
}

/// Runs the task now: 202 with the queued execution; 409 while a run of it
/// is queued or running; 429 with `Retry-After` when the tenant runs as many
/// syncs as it may or the integration's last run ended too recently (the
/// refusal is recorded as a `rejected` execution).
#[utoipa::path(post, path = "/api/v1/sync-tasks/{id}/run", tag = "sync",
    params(("id" = Uuid, Path)), request_body(content = RunRequest, description = "May be left out: no full resync"),
    responses((status = 202, body = RunQueued), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 415, body = Problem), (status = 429, body = Problem),
              (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn run_task(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let task_id = parse_id(&id, "sync task")?;
    let input: RunRequest = optional_body(&headers, &body)?;
    let full = input.full_resync;
    match start::request(&app.sync, &ctx, task_id, full).await? {
        Started::Queued(exec) => Ok((
            StatusCode::ACCEPTED,
            [(
                header::LOCATION,
                format!("/api/v1/sync-tasks/{task_id}/executions/{}", exec.id),
            )],
            Json(RunQueued {
                execution_id: exec.id,
                status: exec.status,
            }),
        )
            .into_response()),
        Started::Rejected(exec, retry_after) => Err(Error::TooManyRequests {
            detail: format!(
                "{} (recorded as rejected execution {})",
                exec.rejection_reason.unwrap_or_default(),
                exec.id
            ),
            retry_after,
        }
        .into()),
    }
}

/// Cancels the task's run in progress: a queued run ends at once, a
/// running one after its current page.
#[utoipa::path(post, path = "/api/v1/sync-tasks/{id}/cancel", tag = "sync",
    params(("id" = Uuid, Path)),
    responses((status = 202, body = Execution), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn cancel_task(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let exec = start::cancel(&app.sync, &ctx, parse_id(&id, "sync task")?).await?;
    Ok((StatusCode::ACCEPTED, Json(exec)).into_response())
}

/// Calls the provider with the integration's active connection and records
/// the result on the integration.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/test", tag = "integrations",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ConnectionTest), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn test_integration(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionTest>, ApiError> {
    let t = connection_test::test(&app.sync, &ctx, parse_id(&id, "integration")?).await?;
    Ok(Json(t))
}
