//! Tenants' integrations and their field mappings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, IdempotencyKey, IfMatch, Path, QueryParams, Valid};
use super::idempotency::idempotent;
use super::respond::{created, with_etag};
use crate::app::AppState;
use crate::domain::pages::Paged;
use crate::features::integrations::model::{EntityMapping, Integration};
use crate::features::integrations::service::{
    self as integrations, EntityMappingUpdate, IntegrationFilter, IntegrationUpdate, NewIntegration,
};

impl ApiInput for NewIntegration {
    const READ_ONLY: &'static [&'static str] = SERVER_OWNED;
}
impl ApiInput for IntegrationUpdate {
    const READ_ONLY: &'static [&'static str] = SERVER_OWNED;
}
impl ApiInput for EntityMappingUpdate {}

/// Fields of an integration that only the service writes.
const SERVER_OWNED: &[&str] = &[
    "id",
    "tenantId",
    "providerName",
    "category",
    "connectionStatus",
    "lastConnectionTestAt",
    "lastConnectionTestResult",
    "connectionError",
    "lastSyncAt",
    "lastSyncStatus",
    "createdAt",
    "updatedAt",
    "createdBy",
    "etag",
];

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations, create_integration))
        .routes(routes!(
            get_integration,
            update_integration,
            delete_integration
        ))
        .routes(routes!(get_field_mapping, put_field_mapping))
}

/// A path id that is not a UUID names nothing: 404, like a missing one.
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

/// The caller's integrations, newest first.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations",
    params(("providerId" = Option<String>, Query), ("status" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("continuationToken" = Option<String>, Query)),
    responses((status = 200, body = Paged<Integration>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
async fn list_integrations(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    mut q: QueryParams,
) -> Result<Json<Paged<Integration>>, ApiError> {
    let filter = IntegrationFilter {
        provider_id: q.text("providerId"),
        status: q.parse("status"),
    };
    let page = q.page();
    q.finish()?;
    Ok(Json(
        integrations::list(&app.integrations, &ctx, &filter, &page).await?,
    ))
}

/// Creates an integration (status `pending`); honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations",
    request_body = NewIntegration,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 h")),
    responses((status = 201, body = Integration), (status = 400, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
async fn create_integration(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    key: IdempotencyKey,
    body: Valid<NewIntegration>,
) -> Result<Response, ApiError> {
    idempotent(
        &app,
        &ctx,
        &key,
        "POST /api/v1/integrations",
        &body.digest,
        || async {
            let i = integrations::create(&app.integrations, &ctx, body.value).await?;
            Ok(created(
                &format!("/api/v1/integrations/{}", i.id),
                &i.etag,
                &i,
            ))
        },
    )
    .await
}

/// One integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Integration), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_integration(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let i = integrations::get(&app.integrations, &ctx, parse_id(&id, "integration")?).await?;
    Ok(with_etag(StatusCode::OK, &i.etag, &i))
}

/// Replaces an integration's editable fields (honours `If-Match`).
#[utoipa::path(put, path = "/api/v1/integrations/{id}", tag = "integrations",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = IntegrationUpdate,
    responses((status = 200, body = Integration), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn update_integration(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    if_match: IfMatch,
    body: Valid<IntegrationUpdate>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "integration")?;
    let i = integrations::replace(&app.integrations, &ctx, id, body.value, if_match.etag()).await?;
    Ok(with_etag(StatusCode::OK, &i.etag, &i))
}

/// Deletes an integration.
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn delete_integration(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    if_match: IfMatch,
) -> Result<Response, ApiError> {
    integrations::delete(
        &app.integrations,
        &ctx,
        parse_id(&id, "integration")?,
        if_match.etag(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The mapping of one external entity; the `ETag` is the integration's.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/field-mappings/{entityType}", tag = "integrations",
    params(("id" = Uuid, Path), ("entityType" = String, Path)),
    responses((status = 200, body = EntityMapping), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_field_mapping(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, entity)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (m, etag) = integrations::get_field_mapping(
        &app.integrations,
        &ctx,
        parse_id(&id, "integration")?,
        &entity,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, &etag, &m))
}

/// Creates or replaces the mapping of one external entity (honours `If-Match`).
#[utoipa::path(put, path = "/api/v1/integrations/{id}/field-mappings/{entityType}", tag = "integrations",
    params(("id" = Uuid, Path), ("entityType" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = EntityMappingUpdate,
    responses((status = 200, body = EntityMapping), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn put_field_mapping(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, entity)): Path<(String, String)>,
    if_match: IfMatch,
    body: Valid<EntityMappingUpdate>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "integration")?;
    let (m, etag) = integrations::put_field_mapping(
        &app.integrations,
        &ctx,
        id,
        &entity,
        body.value,
        if_match.etag(),
    )
    .await?;
    Ok(with_etag(StatusCode::OK, &etag, &m))
}
