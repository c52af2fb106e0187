//! Outbound webhooks (SPEC §5.5): subscriptions, secret rotation, test send,
//! the delivery log, retry and recover.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiInput, IdempotencyKey, IfMatch, Path, QueryParams, Valid, parse_value};
use super::idempotency::idempotent;
use super::integrations::parse_id;
use super::respond::{created, with_etag};
use crate::app::AppState;
use crate::domain::pages::Paged;
use crate::features::webhooks::deliveries::{self, Recover};
use crate::features::webhooks::model::{Delivery, DeliveryStatus, DeliverySummary, WebhookView};
use crate::features::webhooks::service::{
    self, NewWebhook, RotateSecret, WebhookFilter, WebhookUpdate,
};

/// Fields of a webhook that only the service writes.
const SERVER_OWNED: &[&str] = &[
    "id",
    "tenantId",
    "disabledReason",
    "consecutiveFailures",
    "lastDeliveryAt",
    "lastDeliveryStatus",
    "createdAt",
    "updatedAt",
    "etag",
];

impl ApiInput for NewWebhook {
    const READ_ONLY: &'static [&'static str] = SERVER_OWNED;
}
impl ApiInput for WebhookUpdate {
    const READ_ONLY: &'static [&'static str] = SERVER_OWNED;
}
impl ApiInput for RotateSecret {}
impl ApiInput for Recover {}

/// Answer of rotate-secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretAnswer {
    /// The new secret, shown this once.
    pub secret: String,
    /// Until when the previous secret still signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Answer of test send.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestAnswer {
    /// The delivery of the test event.
    pub delivery_id: Uuid,
}

/// Answer of recover.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverAnswer {
    /// How many deliveries were re-queued.
    pub requeued: usize,
}

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
        .routes(routes!(recover))
}

/// An optional JSON body: empty means the type's default.
pub(super) fn optional_body<T: ApiInput + Default>(
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(ApiError::unsupported_media_type());
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(crate::domain::validation::Violations::one(
            "",
            format!("is not valid JSON: {e}"),
        ))
    })?;
    parse_json::<T>(value)
}

fn parse_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    parse_value::<T>(value, &[], &[]).map_err(ApiError::invalid)
}

/// The caller's webhooks, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    params(("integrationId" = Option<Uuid>, Query), ("enabled" = Option<bool>, Query),
           ("limit" = Option<u32>, Query), ("continuationToken" = Option<String>, Query)),
    responses((status = 200, body = Paged<WebhookView>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
async fn list_webhooks(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    mut q: QueryParams,
) -> Result<Json<Paged<WebhookView>>, ApiError> {
    let filter = WebhookFilter {
        integration_id: q.parse("integrationId"),
        enabled: q.parse("enabled"),
    };
    let page = q.page();
    q.finish()?;
    Ok(Json(
        service::list(&app.webhooks, &ctx, &filter, &page).await?,
    ))
}

/// Creates a webhook; the answer carries its `secret`, shown this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 h")),
    responses((status = 201, body = WebhookView), (status = 400, body = Problem), (status = 409, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
async fn create_webhook(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    key: IdempotencyKey,
    body: Valid<NewWebhook>,
) -> Result<Response, ApiError> {
    idempotent(
        &app,
        &ctx,
        &key,
        "POST /api/v1/webhooks",
        &body.digest,
        || async {
            let w = service::create(&app.webhooks, &ctx, body.value).await?;
            Ok(created(&format!("/api/v1/webhooks/{}", w.id), &w.etag, &w))
        },
    )
    .await
}

/// One webhook.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_webhook(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let w = service::get(&app.webhooks, &ctx, parse_id(&id, "webhook")?).await?;
    Ok(with_etag(
        StatusCode::OK,
        &w.etag,
        &WebhookView::of(&w, app.clock.now()),
    ))
}

/// Replaces a webhook's editable fields (honours `If-Match`).
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = WebhookUpdate,
    responses((status = 200, body = WebhookView), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn update_webhook(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    if_match: IfMatch,
    body: Valid<WebhookUpdate>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let w = service::replace(&app.webhooks, &ctx, id, body.value, if_match.etag()).await?;
    Ok(with_etag(
        StatusCode::OK,
        &w.etag,
        &WebhookView::of(&w, app.clock.now()),
    ))
}

/// Deletes a webhook and its secrets.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn delete_webhook(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    if_match: IfMatch,
) -> Result<Response, ApiError> {
    service::delete(
        &app.webhooks,
        &ctx,
        parse_id(&id, "webhook")?,
        if_match.etag(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Issues a new secret (shown this once); the old one signs during the grace period.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path)), request_body(content = RotateSecret, description = "May be left out: the defaults apply"),
    responses((status = 200, body = SecretAnswer), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn rotate_secret(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let input: RotateSecret = optional_body(&headers, &body)?;
    let (secret, w) = service::rotate_secret(&app.webhooks, &ctx, id, input).await?;
    let view = WebhookView::of(&w, app.clock.now());
    Ok(with_etag(
        StatusCode::OK,
        &w.etag,
        &SecretAnswer {
            secret,
            previous_secret_expires_at: view.previous_secret_expires_at,
        },
    ))
}

/// Sends a `webhook.test` event to this webhook only.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 202, body = TestAnswer), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn test_webhook(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let delivery_id = deliveries::test(&app.webhooks, &ctx, parse_id(&id, "webhook")?).await?;
    Ok((StatusCode::ACCEPTED, Json(TestAnswer { delivery_id })).into_response())
}

/// The delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path), ("status" = Option<DeliveryStatus>, Query),
           ("limit" = Option<u32>, Query), ("continuationToken" = Option<String>, Query)),
    responses((status = 200, body = Paged<DeliverySummary>), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_deliveries(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> Result<Json<Paged<DeliverySummary>>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let status = q.parse("status");
    let page = q.page();
    q.finish()?;
    Ok(Json(
        deliveries::deliveries(&app.webhooks, &ctx, id, status, &page).await?,
    ))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries/{deliveryId}", tag = "webhooks",
    params(("id" = Uuid, Path), ("deliveryId" = Uuid, Path)),
    responses((status = 200, body = Delivery), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_delivery(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let delivery_id = parse_id(&delivery_id, "delivery")?;
    Ok(Json(
        deliveries::delivery(&app.webhooks, &ctx, id, delivery_id).await?,
    ))
}

/// Delivers again now.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{deliveryId}/retry", tag = "webhooks",
    params(("id" = Uuid, Path), ("deliveryId" = Uuid, Path)),
    responses((status = 202, body = DeliverySummary), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn retry_delivery(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let delivery_id = parse_id(&delivery_id, "delivery")?;
    let d = deliveries::retry(&app.webhooks, &ctx, id, delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliverySummary::from(&d))).into_response())
}

/// Re-queues every failed, exhausted or skipped delivery since a time.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/recover", tag = "webhooks",
    params(("id" = Uuid, Path)), request_body = Recover,
    responses((status = 202, body = RecoverAnswer), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn recover(
    State(app): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    body: Valid<Recover>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "webhook")?;
    let requeued = deliveries::recover(&app.webhooks, &ctx, id, body.value).await?;
    Ok((StatusCode::ACCEPTED, Json(RecoverAnswer { requeued })).into_response())
}
