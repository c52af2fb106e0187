//! Connections and OAuth (SPEC §5.4): credentials of an integration, the
//! authorization-code flow and its public callback, refresh now.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, IdempotencyKey, Path, Valid};
use super::idempotency::idempotent;
use super::integrations::parse_id;
use super::respond::created;
use crate::app::AppState;
use crate::domain::pages::Paged;
use crate::features::connections::model::Connection;
use crate::features::connections::oauth::{self, CallbackQuery, OauthStarted, StartOauth};
use crate::features::connections::refresh;
use crate::features::connections::service::{self as connections, NewConnection};

impl ApiInput for NewConnection {
    const READ_ONLY: &'static [&'static str] = &[
        "id",
        "integrationId",
        "tenantId",
        "status",
        "secretRefs",
        "oauth",
        "refresh",
        "lastValidatedAt",
        "createdAt",
        "updatedAt",
        "etag",
    ];
}
impl ApiInput for StartOauth {}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections, create_connection))
        .routes(routes!(delete_connection))
        .routes(routes!(refresh_connection))
        .routes(routes!(start_oauth))
        .routes(routes!(oauth_callback))
}

/// The integration's connections (at most one is active).
#[utoipa::path(get, path = "/api/v1/integrations/{id}/connections", tag = "connections",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Paged<Connection>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_connections(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Json<Paged<Connection>>, ApiError> {
    let items = connections::list(&app.connections, &ctx, parse_id(&id, "integration")?).await?;
    Ok(Json(Paged {
        items,
        continuation_token: None,
    }))
}

/// Creates the integration's connection (replacing the previous one); the
/// integration becomes `connected`. Secrets go to the secret store only.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/connections", tag = "connections",
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 h")),
    request_body = NewConnection,
    responses((status = 201, body = Connection), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn create_connection(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    key: IdempotencyKey,
    body: Valid<NewConnection>,
) -> Result<Response, ApiError> {
    let integration_id = parse_id(&id, "integration")?;
    let scope = format!("POST /api/v1/integrations/{integration_id}/connections");
    idempotent(&app, &ctx, &key, &scope, &body.digest, || async {
        let c = connections::create(&app.connections, &ctx, integration_id, body.value).await?;
        Ok(created(
            &format!("/api/v1/integrations/{integration_id}/connections/{}", c.id),
            &c.etag,
            &c,
        ))
    })
    .await
}

/// Deletes a connection and its secrets.
#[utoipa::path(delete, path = "/api/v1/integrations/{id}/connections/{connectionId}", tag = "connections",
    params(("id" = Uuid, Path), ("connectionId" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn delete_connection(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, connection_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    connections::delete(
        &app.connections,
        &ctx,
        parse_id(&id, "integration")?,
        parse_id(&connection_id, "connection")?,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Refreshes the connection's access token now.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/connections/{connectionId}/refresh", tag = "connections",
    params(("id" = Uuid, Path), ("connectionId" = Uuid, Path)),
    responses((status = 200, body = Connection), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn refresh_connection(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, connection_id)): Path<(String, String)>,
) -> Result<Json<Connection>, ApiError> {
    let c = refresh::refresh_now(
        &app.connections,
        &ctx,
        parse_id(&id, "integration")?,
        parse_id(&connection_id, "connection")?,
    )
    .await?;
    Ok(Json(c))
}

/// Starts the OAuth authorization of an integration: answers the provider
/// URL to send the user's browser to.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/oauth/start", tag = "connections",
    params(("id" = Uuid, Path)), request_body = StartOauth,
    responses((status = 200, body = OauthStarted), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
async fn start_oauth(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    body: Valid<StartOauth>,
) -> Result<Json<OauthStarted>, ApiError> {
    let started = oauth::start(
        &app.connections,
        &ctx,
        parse_id(&id, "integration")?,
        body.value,
    )
    .await?;
    Ok(Json(started))
}

/// The provider's redirect after authorization (public): exchanges the code
/// and redirects to the `returnUrl` with `status=connected` or `error=<code>`.
#[utoipa::path(get, path = "/api/v1/integrations/oauth/callback", tag = "connections",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query)),
    responses((status = 302, description = "To the returnUrl, with status=connected or error=<code>"),
              (status = 400, body = Problem)))]
async fn oauth_callback(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut query = CallbackQuery::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut query.code,
            "state" => &mut query.state,
            "error" => &mut query.error,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v.into_owned());
        }
    }
    let to = oauth::callback(&app.connections, query).await?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, to.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response())
}
