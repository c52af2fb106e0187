//! Field-mapping tools: the built-in transforms and trying mappings on
//! sample data (SPEC §5.3, §9.4).

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, Path, Valid};
use super::integrations::parse_id;
use crate::app::AppState;
use crate::features::integrations::mapping::preview::{
    self, MappingTest, MappingTestResult, TransformList,
};

impl ApiInput for MappingTest {}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_transforms))
        .routes(routes!(test_field_mapping))
}

/// The built-in transforms with their options (names, types, defaults).
#[utoipa::path(get, path = "/api/v1/integrations/transform-functions", tag = "integrations",
    responses((status = 200, body = TransformList), (status = 401, body = Problem)),
    security(("bearer" = [])))]
async fn list_transforms(Caller(_ctx): Caller) -> Json<TransformList> {
    Json(preview::list())
}

/// Applies the given field mappings, or the stored ones of the entity, to
/// `testData` and tells what a sync would write.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/field-mappings/{entityType}/test", tag = "integrations",
    params(("id" = Uuid, Path), ("entityType" = String, Path)),
    request_body = MappingTest,
    responses((status = 200, body = MappingTestResult), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn test_field_mapping(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, entity)): Path<(String, String)>,
    body: Valid<MappingTest>,
) -> Result<Json<MappingTestResult>, ApiError> {
    let id = parse_id(&id, "integration")?;
    Ok(Json(
        preview::test(&app.integrations, &ctx, id, &entity, body.value).await?,
    ))
}
