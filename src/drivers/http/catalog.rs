//! The provider catalog: tenant-visible reads and super-admin CRUD.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Caller};
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, IfMatch, Path, QueryParams, Valid};
use super::respond::{created, with_etag};
use crate::app::AppState;
use crate::domain::pages::Paged;
use crate::domain::validation::Violations;
use crate::features::catalog::model::{CatalogEntry, CatalogEntryInput};
use crate::features::catalog::service::{self as catalog, CatalogFilter};

impl ApiInput for CatalogEntryInput {
    const READ_ONLY: &'static [&'static str] = &["createdAt", "updatedAt", "etag", "builtIn"];
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_catalog))
        .routes(routes!(get_catalog_entry))
        .routes(routes!(admin_list_catalog, admin_create_catalog_entry))
        .routes(routes!(
            admin_get_catalog_entry,
            admin_replace_catalog_entry,
            admin_delete_catalog_entry
        ))
}

/// Catalog entries the caller's tenant may use.
#[utoipa::path(get, path = "/api/v1/integrations/catalog", tag = "catalog",
    params(("category" = Option<String>, Query, description = "Only this category"),
           ("search" = Option<String>, Query, description = "Text in name or description")),
    responses((status = 200, body = Paged<CatalogEntry>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
async fn list_catalog(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    mut q: QueryParams,
) -> Result<Json<Paged<CatalogEntry>>, ApiError> {
    let filter = CatalogFilter {
        category: q.text("category"),
        search: q.text("search"),
    };
    q.finish()?;
    let items = catalog::list_visible(&app.catalog, &ctx, &filter).await?;
    Ok(Json(Paged {
        items,
        continuation_token: None,
    }))
}

/// One catalog entry (404 if the tenant may not use it).
#[utoipa::path(get, path = "/api/v1/integrations/catalog/{providerId}", tag = "catalog",
    params(("providerId" = String, Path, description = "Catalog entry id")),
    responses((status = 200, body = CatalogEntry), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_catalog_entry(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = catalog::get_visible(&app.catalog, ctx.tenant(), &id).await?;
    Ok(with_etag(StatusCode::OK, &e.etag.clone(), &e))
}

/// Every catalog entry (super-admin).
#[utoipa::path(get, path = "/api/v1/admin/integrations/catalog", tag = "admin",
    params(("limit" = Option<u32>, Query), ("continuationToken" = Option<String>, Query)),
    responses((status = 200, body = Paged<CatalogEntry>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
async fn admin_list_catalog(
    State(app): State<AppState>,
    Admin(_ctx): Admin,
    mut q: QueryParams,
) -> Result<Json<Paged<CatalogEntry>>, ApiError> {
    let page = q.page();
    q.finish()?;
    Ok(Json(catalog::admin_list(&app.catalog, &page).await?))
}

/// Creates a catalog entry (super-admin).
#[utoipa::path(post, path = "/api/v1/admin/integrations/catalog", tag = "admin",
    request_body = CatalogEntryInput,
    responses((status = 201, body = CatalogEntry), (status = 400, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn admin_create_catalog_entry(
    State(app): State<AppState>,
    Admin(_ctx): Admin,
    body: Valid<CatalogEntryInput>,
) -> Result<Response, ApiError> {
    let input = body.value;
    let mut v = Violations::default();
    if input.id.is_none() {
        v.add("/id", "is required");
    }
    input.validate(&mut v);
    v.into_result()?;
    let e = catalog::admin_create(&app.catalog, input).await?;
    Ok(created(
        &format!("/api/v1/admin/integrations/catalog/{}", e.id),
        &e.etag.clone(),
        &e,
    ))
}

/// One catalog entry, whatever its visibility (super-admin).
#[utoipa::path(get, path = "/api/v1/admin/integrations/catalog/{providerId}", tag = "admin",
    params(("providerId" = String, Path)),
    responses((status = 200, body = CatalogEntry), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn admin_get_catalog_entry(
    State(app): State<AppState>,
    Admin(_ctx): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = catalog::admin_get(&app.catalog, &id).await?;
    Ok(with_etag(StatusCode::OK, &e.etag.clone(), &e))
}

/// Replaces a catalog entry (super-admin; honours If-Match).
#[utoipa::path(put, path = "/api/v1/admin/integrations/catalog/{providerId}", tag = "admin",
    params(("providerId" = String, Path)), request_body = CatalogEntryInput,
    responses((status = 200, body = CatalogEntry), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn admin_replace_catalog_entry(
    State(app): State<AppState>,
    Admin(_ctx): Admin,
    Path(id): Path<String>,
    if_match: IfMatch,
    body: Valid<CatalogEntryInput>,
) -> Result<Response, ApiError> {
    let input = body.value;
    let mut v = Violations::default();
    input.validate(&mut v);
    v.into_result()?;
    let e = catalog::admin_replace(&app.catalog, &id, input, if_match.etag()).await?;
    Ok(with_etag(StatusCode::OK, &e.etag.clone(), &e))
}

/// Deletes a catalog entry (super-admin; 409 while integrations use it).
#[utoipa::path(delete, path = "/api/v1/admin/integrations/catalog/{providerId}", tag = "admin",
    params(("providerId" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn admin_delete_catalog_entry(
    State(app): State<AppState>,
    Admin(_ctx): Admin,
    Path(id): Path<String>,
    if_match: IfMatch,
) -> Result<Response, ApiError> {
    catalog::admin_delete(&app.catalog, &id, if_match.etag()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
