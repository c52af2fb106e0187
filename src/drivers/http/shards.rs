//! The local shard store (SPEC §5.7, standalone only): browse synced
//! shards and edit their `structuredData`. With Castiel's shard-manager as
//! the sink (`SHARDS=castiel`) every route answers 404: the shards live in
//! Castiel, which has its own API.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, IfMatch, Path, QueryParams, Valid};
use super::respond::with_etag;
use crate::app::AppState;
use crate::domain::pages::Paged;
use crate::platform::shards::Shard;
use crate::platform::shards::local::LocalShards;
use crate::platform::shards::local::browse::ShardFilter;

/// Body of `PUT /api/v1/shards/{id}`: the shard's new fields, replaced whole.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardUpdate {
    /// The record's fields.
    #[schema(value_type = Object)]
    pub structured_data: Map<String, Value>,
}

impl ApiInput for ShardUpdate {
    const READ_ONLY: &'static [&'static str] = &[
        "id",
        "tenantId",
        "shardTypeId",
        "shardTypeName",
        "metadata",
        "source",
        "revision",
        "createdAt",
        "updatedAt",
        "etag",
    ];
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shards))
        .routes(routes!(get_shard, put_shard))
}

/// The local shard store, or 404 when it is not the sink.
fn local(app: &AppState) -> Result<&Arc<LocalShards>, ApiError> {
    app.local_shards
        .as_ref()
        .ok_or_else(|| ApiError::not_found("route"))
}

/// A path id that is not a UUID names nothing: 404, like a missing one.
fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("shard"))
}

/// The caller's shards, newest first.
#[utoipa::path(get, path = "/api/v1/shards", tag = "shards",
    params(("shardTypeName" = Option<String>, Query, description = "The shard type's name or id"),
           ("integrationId" = Option<Uuid>, Query, description = "Shards synced by this integration"),
           ("limit" = Option<u32>, Query), ("continuationToken" = Option<String>, Query)),
    responses((status = 200, body = Paged<Shard>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_shards(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    mut q: QueryParams,
) -> Result<Json<Paged<Shard>>, ApiError> {
    let shards = local(&app)?;
    let filter = ShardFilter {
        shard_type_name: q.text("shardTypeName"),
        integration_id: q.parse("integrationId"),
    };
    let page = q.page();
    q.finish()?;
    Ok(Json(shards.list(ctx.tenant(), &filter, &page).await?))
}

/// One shard.
#[utoipa::path(get, path = "/api/v1/shards/{id}", tag = "shards",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Shard), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_shard(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let shards = local(&app)?;
    let s = shards.find(ctx.tenant(), parse_id(&id)?).await?;
    Ok(with_etag(StatusCode::OK, &s.etag, &s))
}

/// Replaces a shard's `structuredData` (honours `If-Match`) and raises
/// `shard.updated`, as Castiel's shard-manager does.
#[utoipa::path(put, path = "/api/v1/shards/{id}", tag = "shards",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = ShardUpdate,
    responses((status = 200, body = Shard), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn put_shard(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    if_match: IfMatch,
    body: Result<Valid<ShardUpdate>, ApiError>,
) -> Result<Response, ApiError> {
    // Without the local store the route names nothing, whatever the body.
    let shards = local(&app)?;
    let id = parse_id(&id)?;
    let body = body?;
    let s = shards
        .put(&ctx, id, body.value.structured_data, if_match.etag())
        .await?;
    Ok(with_etag(StatusCode::OK, &s.etag, &s))
}
