//! The delivery log of a webhook and what a tenant can do with it: read it,
//! send a test event, deliver one again now, recover failed ones since a time.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::delivery::enqueue_now;
use super::fanout::{Offer, offer};
use super::model::{Delivery, DeliveryStatus, DeliverySummary};
use super::service::get;
use super::{EVENT_TEST, Webhooks};
use crate::domain::pages::{PageRequest, Paged};
use crate::domain::tenancy::Ctx;
use crate::error::{Error, Result};
use crate::platform::store::{ETag, Filter, Op, Query, StoreError};

/// Most deliveries one `recover` re-queues.
pub const RECOVER_MAX: usize = 10_000;

/// Body of `POST /api/v1/webhooks/{id}/recover`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recover {
    /// Re-queue failed, exhausted and skipped deliveries created since then.
    pub since: DateTime<Utc>,
}

/// Sends a `webhook.test` event to this webhook only; returns the delivery id.
pub async fn test(app: &Webhooks, ctx: &Ctx, id: Uuid) -> Result<Uuid> {
    let w = get(app, ctx, id).await?;
    if !w.enabled {
        return Err(Error::Conflict(
            "the webhook is disabled; enable it before sending a test".into(),
        ));
    }
    let now = app.clock.now();
    let data = json!({ "webhookId": w.id, "message": "This is a test event from Castiel." });
    let o = Offer {
        event_id: Uuid::new_v4(),
        event_type: EVENT_TEST,
        timestamp: now,
        data: &data,
        integration_id: w.integration_id,
    };
    let d = offer(app.store.as_ref(), &app.queue, now, &w, &o)
        .await
        .map_err(Error::Internal)?;
    Ok(d.id)
}

/// The delivery log of a webhook, newest first.
pub async fn deliveries(
    app: &Webhooks,
    ctx: &Ctx,
    id: Uuid,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> Result<Paged<DeliverySummary>> {
    get(app, ctx, id).await?;
    let mut q = Query::partition(ctx.tenant().key())
        .eq("webhookId", id.to_string())
        .order_by("sortKey", true)
        .limit(page.limit)
        .after(page.continuation.clone());
    if let Some(s) = status {
        q = q.eq("status", json!(s));
    }
    let (items, continuation_token) = app.store.page::<Delivery>(&q).await?;
    Ok(Paged {
        items: items.iter().map(DeliverySummary::from).collect(),
        continuation_token,
    })
}

/// One delivery with every attempt.
pub async fn delivery(app: &Webhooks, ctx: &Ctx, id: Uuid, delivery_id: Uuid) -> Result<Delivery> {
    let d = app
        .store
        .get::<Delivery>(&ctx.tenant().key(), &delivery_id.to_string())
        .await?
        .filter(|d| d.webhook_id == id)
        .ok_or(Error::NotFound("delivery"))?;
    Ok(d)
}

async fn requeue(app: &Webhooks, d: Delivery) -> Result<Delivery> {
    let now = app.clock.now();
    let etag = ETag::new(d.etag.clone());
    let mut next = d;
    if next.status != DeliveryStatus::Pending {
        next.round_start = next.attempt_count;
    }
    next.status = DeliveryStatus::Pending;
    next.next_attempt_at = Some(now);
    next.completed_at = None;
    next.updated_at = now;
    let saved = match app.store.put(&next, Some(&etag)).await {
        Ok(s) => s,
        Err(StoreError::PreconditionFailed) => {
            return Err(Error::Conflict(
                "the delivery is being attempted right now; retry shortly".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    enqueue_now(app.queue.jobs.as_ref(), &saved)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "enqueueing a delivery failed");
            Error::Unavailable {
                detail: "the job queue is unavailable".into(),
                retry_after: None,
            }
        })?;
    Ok(saved)
}

/// Delivers again now (a new round of the schedule when it had finished).
pub async fn retry(app: &Webhooks, ctx: &Ctx, id: Uuid, delivery_id: Uuid) -> Result<Delivery> {
    let w = get(app, ctx, id).await?;
    if !w.enabled {
        return Err(Error::Conflict(
            "the webhook is disabled; enable it first".into(),
        ));
    }
    let d = delivery(app, ctx, id, delivery_id).await?;
    requeue(app, d).await
}

/// Re-queues every failed, exhausted or skipped delivery created since `since`.
pub async fn recover(app: &Webhooks, ctx: &Ctx, id: Uuid, input: Recover) -> Result<usize> {
    let w = get(app, ctx, id).await?;
    if !w.enabled {
        return Err(Error::Conflict(
            "the webhook is disabled; enable it first".into(),
        ));
    }
    let q = Query::partition(ctx.tenant().key())
        .eq("webhookId", id.to_string())
        .filter(Filter::new(
            "status",
            Op::In,
            json!(["failed", "exhausted", "skipped"]),
        ))
        .filter(Filter::new(
            "sortKey",
            Op::Gte,
            input.since.timestamp_millis() * 1000,
        ))
        .order_by("sortKey", false)
        .limit(500);
    let found = app.store.all::<Delivery>(q, RECOVER_MAX / 500).await?;
    let mut n = 0;
    for d in found {
        match requeue(app, d).await {
            Ok(_) => n += 1,
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
