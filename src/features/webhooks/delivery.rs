//! The delivery engine (SPEC §8): one attempt per job, signed per Standard
//! Webhooks (the HTTP side: `send.rs`), recorded with its outcome, followed
//! by the next scheduled job or a final status and a `webhook.delivered` /
//! `webhook.failed` event.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::model::{Delivery, DeliveryStatus, Webhook};
use super::schedule::{self, honour_retry_after};
use super::send::{Sent, send};
use super::{AttemptQueue, Webhooks};
use super::{EVENT_DELIVERED, EVENT_FAILED};
use crate::domain::tenancy::{Ctx, TenantId};
use crate::jobs::{IntoOutcome, JobError, JobOutcome};
use crate::platform::queue::{JobMessage, JobQueue, QueueError};
use crate::platform::store::{StoreError, Write, as_written};

/// Receives of a job whose delivery is not found before the job is taken
/// for stale (its delivery expired or never committed).
pub const MISSING_DELIVERY_RECEIVES: u32 = 3;

/// Enqueues the next attempt of a pending delivery (deduplicated by
/// `{deliveryId}:{attempt}`, so re-driving is harmless).
pub async fn enqueue(
    queue: &dyn JobQueue,
    d: &Delivery,
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    let (msg, at, id) = next_job(d, now);
    queue.send(&msg, at, &id).await
}

/// Starts the first attempt of a delivery just written: a pending one due
/// now is handed straight to this process's workers, carrying the delivery
/// as written, with nothing more written (should the process die, the
/// pending delivery itself is what `serve`'s start-up re-drive sends again);
/// otherwise it is enqueued. A final (`skipped`) delivery has no attempt.
pub async fn start(
    queue: &AttemptQueue,
    d: Delivery,
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    if d.status != DeliveryStatus::Pending {
        return Ok(());
    }
    let (msg, at, id) = next_job(&d, now);
    if at.is_none()
        && let Some(local) = &queue.local
    {
        let bytes = d.approx_bytes();
        if local.hand_over(&msg, &id, d, bytes) {
            return Ok(());
        }
    }
    queue.jobs.send(&msg, at, &id).await
}

/// The job of a delivery's current attempt.
fn job_message(d: &Delivery) -> JobMessage {
    JobMessage::WebhookDelivery {
        tenant_id: d.tenant_id,
        delivery_id: d.id,
        attempt: d.attempt_count,
    }
}

/// The message, time and message id of a pending delivery's next attempt.
fn next_job(d: &Delivery, now: DateTime<Utc>) -> (JobMessage, Option<DateTime<Utc>>, String) {
    let at = d.next_attempt_at.filter(|t| *t > now);
    (job_message(d), at, format!("{}:{}", d.id, d.attempt_count))
}

/// Sends another copy of the current attempt's job, at `at` (now when
/// `None`), beside any scheduled one: its own message id keeps it from being
/// deduplicated away, and the stale-attempt check makes either copy harmless.
async fn send_copy(
    queue: &dyn JobQueue,
    d: &Delivery,
    at: Option<DateTime<Utc>>,
) -> Result<(), QueueError> {
    let id = format!("{}:{}:{}", d.id, d.attempt_count, Uuid::new_v4().simple());
    queue.send(&job_message(d), at, &id).await
}

/// Enqueues an attempt to run now, next to any scheduled one (manual retry).
pub async fn enqueue_now(queue: &dyn JobQueue, d: &Delivery) -> Result<(), QueueError> {
    send_copy(queue, d, None).await
}

fn store_err(e: StoreError) -> JobError {
    let retry_after = match &e {
        StoreError::Throttled { retry_after } => Some(*retry_after),
        _ => None,
    };
    JobError::Retry {
        cause: anyhow::Error::new(e).context("webhook delivery store access"),
        retry_after,
    }
}

/// What one delivery job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// An attempt was made and recorded, or the delivery finished without one.
    Done,
    /// Nothing to do (already done, stale or gone): the message is consumed.
    NoOp,
}

impl IntoOutcome for AttemptOutcome {
    fn into_outcome(self) -> JobOutcome {
        match self {
            Self::Done => JobOutcome::done(),
            Self::NoOp => JobOutcome::done().log("nothing to do (stale, duplicate or finished)"),
        }
    }
}

/// One delivery job: which attempt of which delivery, and how many times the
/// queue has handed its message out (1 = first).
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// The delivery's tenant.
    pub tenant: TenantId,
    /// The delivery.
    pub delivery_id: Uuid,
    /// The attempt to run (0-based).
    pub attempt: u32,
    /// Receives of this message so far, this one included.
    pub receives: u32,
}

/// The webhook of a delivery: through the fan-out's cache when the job was
/// handed over with its delivery (the fan-out chose the webhook from it, at
/// most [`super::fanout::CACHE_TTL`] old, and this process's every webhook
/// write invalidates it), else read. A first attempt that waited past the
/// cache's life in a backlog reloads the cache for the attempts behind it:
/// reading each one's webhook by itself made a burst that outran the
/// workers cost more per delivery the longer it lasted.
async fn webhook_of(
    app: &Webhooks,
    d: &Delivery,
    handed: bool,
) -> Result<Option<Webhook>, JobError> {
    if handed {
        let hooks = super::fanout::tenant_webhooks(app.store.as_ref(), &app.hooks, d.tenant_id)
            .await
            .map_err(store_err)?;
        if let Some(w) = hooks.iter().find(|w| w.id == d.webhook_id) {
            return Ok(Some(w.clone()));
        }
    }
    app.store
        .get::<Webhook>(&d.tenant_id.key(), &d.webhook_id.to_string())
        .await
        .map_err(store_err)
}

/// Runs one attempt of a delivery. Stale or duplicate jobs are no-ops; a
/// crash anywhere leaves the job to run again. `handed` is the delivery as
/// the fan-out wrote it, when it handed the first attempt over (see
/// [`start`]): then neither it nor its webhook is read back.
pub async fn attempt(
    app: &Webhooks,
    job: Job,
    handed: Option<Delivery>,
) -> Result<AttemptOutcome, JobError> {
    let Job {
        tenant,
        delivery_id,
        attempt,
        receives,
    } = job;
    let carried = handed
        .filter(|d| d.id == delivery_id && d.tenant_id == tenant && d.attempt_count == attempt);
    let was_handed = carried.is_some();
    let read = match carried {
        Some(d) => Some(d),
        None => app
            .store
            .get::<Delivery>(&tenant.key(), &delivery_id.to_string())
            .await
            .map_err(store_err)?,
    };
    let Some(d) = read else {
        // The fan-out sends a delivery's first job once its write returned,
        // but the instance that receives the job may not see the write yet
        // (Cosmos DB read from another instance, at session consistency).
        // Dropping it then would leave the delivery pending with no job; try
        // again shortly, a few times.
        if receives < MISSING_DELIVERY_RECEIVES {
            return Err(JobError::retry_after(
                anyhow::anyhow!("delivery {delivery_id} is not written (yet)"),
                Duration::from_secs(1),
            ));
        }
        return Ok(AttemptOutcome::NoOp);
    };
    if d.status != DeliveryStatus::Pending {
        return Ok(AttemptOutcome::NoOp);
    }
    if d.attempt_count != attempt {
        if d.attempt_count == attempt + 1 {
            // The previous run recorded its attempt but may have died before
            // enqueueing the next one: make sure it exists (deduplicated).
            enqueue(app.queue.jobs.as_ref(), &d, app.clock.now())
                .await
                .context("re-enqueueing a follow-up attempt")?;
        }
        return Ok(AttemptOutcome::NoOp);
    }
    let Some(webhook) = webhook_of(app, &d, was_handed).await? else {
        finish(app, d, DeliveryStatus::Failed, None).await?;
        return Ok(AttemptOutcome::Done);
    };
    if !webhook.enabled {
        finish(app, d, DeliveryStatus::Skipped, None).await?;
        return Ok(AttemptOutcome::Done);
    }
    if let Some(wait) = webhook
        .rate_limit_per_second
        .and_then(|r| super::limit::take(webhook.id, r))
    {
        // Over the endpoint's rate: run this attempt later, as a new message
        // (the stale-attempt check makes either copy harmless).
        let at = app.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
        send_copy(app.queue.jobs.as_ref(), &d, Some(at))
            .await
            .context("deferring a rate-limited attempt")?;
        return Ok(AttemptOutcome::NoOp);
    }
    if receives > 1 {
        tracing::debug!(delivery.id = %d.id, receives, "re-running a delivery attempt");
    }
    let sent = send(app, &webhook, &d).await?;
    record(app, d, webhook, sent).await?;
    Ok(AttemptOutcome::Done)
}

async fn record(
    app: &Webhooks,
    mut d: Delivery,
    webhook: Webhook,
    sent: Sent,
) -> Result<(), JobError> {
    let now = app.clock.now();
    // Taken out: a delivery without one is written as text.
    let etag = crate::platform::store::ETag::new(std::mem::take(&mut d.etag));
    d.attempt_count += 1;
    d.updated_at = now;
    d.attempts.push(sent.attempt.clone());
    if sent.attempt.succeeded {
        d.status = DeliveryStatus::Succeeded;
    } else if sent.gone {
        d.status = DeliveryStatus::Failed;
    } else {
        match schedule::next_gap(d.attempt_count - d.round_start) {
            Some(gap) => {
                let wait = if sent.throttled {
                    honour_retry_after(sent.retry_after.as_deref(), gap, now)
                } else {
                    gap
                };
                d.status = DeliveryStatus::Pending;
                d.next_attempt_at =
                    Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
            }
            None => d.status = DeliveryStatus::Exhausted,
        }
    }
    if d.status.is_final() {
        d.next_attempt_at = None;
        d.completed_at = Some(now);
    }
    let Some(saved) = save_with_announcement(app, d, &etag).await? else {
        return Ok(()); // another run of this job recorded first: its record stands
    };
    update_webhook_health(app, &webhook, &sent, now).await;
    if saved.status == DeliveryStatus::Pending {
        enqueue(app.queue.jobs.as_ref(), &saved, now)
            .await
            .context("enqueueing the next attempt")?;
    }
    Ok(())
}

/// Saves a delivery read at `etag`; a final one raises `webhook.delivered`
/// or `webhook.failed` in the same unit of work (one transaction on the
/// embedded store: the record and its event stand or fall together). A
/// final one with nothing to announce is saved later, not waited for, and
/// comes back as it will be written. `None` if another run changed the
/// delivery first.
async fn save_with_announcement(
    app: &Webhooks,
    d: Delivery,
    etag: &crate::platform::store::ETag,
) -> Result<Option<Delivery>, JobError> {
    let events = match announced_as(d.status) {
        Some(kind) if app.events.wanted(kind) => vec![announcement(app, &d, kind)],
        _ => Vec::new(),
    };
    let write = Write::put(&d, Some(etag)).map_err(store_err)?;
    if events.is_empty() && d.status.is_final() {
        // Nothing follows from this record, so nothing waits for it: should
        // the process die before it lands, the delivery is still pending
        // and the re-drive sends it again, under the same `webhook-id` (at
        // least once, as ever). Not waiting frees the worker at once
        // instead of holding it through a group commit.
        app.store.write_later(write).await;
        return Ok(Some(d));
    }
    match app.events.within(app.store.as_ref(), events, write).await {
        Ok(Some(doc)) => Ok(Some(as_written(d, &doc))),
        Ok(None) => Err(anyhow::anyhow!("saving a delivery produced no document").into()),
        Err(crate::error::Error::PreconditionFailed) => Ok(None),
        Err(e) => Err(JobError::from(e)),
    }
}

/// Sets a final status without an attempt (webhook gone or disabled).
async fn finish(
    app: &Webhooks,
    mut d: Delivery,
    status: DeliveryStatus,
    error: Option<String>,
) -> Result<(), JobError> {
    let now = app.clock.now();
    let etag = crate::platform::store::ETag::new(std::mem::take(&mut d.etag));
    d.status = status;
    d.next_attempt_at = None;
    d.completed_at = Some(now);
    d.updated_at = now;
    if let Some(e) = error {
        tracing::debug!(delivery.id = %d.id, reason = %e, "delivery finished without attempt");
    }
    save_with_announcement(app, d, &etag).await?;
    Ok(())
}

/// While a webhook is healthy, `lastDeliveryAt` is refreshed at most this
/// often: rewriting the webhook after every success made all workers contend
/// on one document (read, If-Match write, retry) for a timestamp.
const HEALTHY_REFRESH_SECONDS: i64 = 5;

/// Counts failures, clears them on success, disables on 410 or after
/// `WEBHOOK_DISABLE_AFTER_HOURS` of failing.
async fn update_webhook_health(app: &Webhooks, webhook: &Webhook, sent: &Sent, now: DateTime<Utc>) {
    let healthy = webhook.consecutive_failures == 0
        && webhook.failing_since.is_none()
        && webhook.last_delivery_status.as_deref() == Some("succeeded");
    let recent = webhook
        .last_delivery_at
        .is_some_and(|t| now - t < chrono::Duration::seconds(HEALTHY_REFRESH_SECONDS));
    if sent.attempt.succeeded && healthy && recent {
        return;
    }
    let limit = chrono::Duration::hours(i64::from(app.settings.disable_after_hours));
    let result = app
        .store
        .update::<Webhook, StoreError, _>(&webhook.tenant_id.key(), &webhook.id.to_string(), |w| {
            w.last_delivery_at = Some(now);
            if sent.attempt.succeeded {
                w.last_delivery_status = Some("succeeded".into());
                w.consecutive_failures = 0;
                w.failing_since = None;
                return Ok(());
            }
            w.last_delivery_status = Some("failed".into());
            w.consecutive_failures = w.consecutive_failures.saturating_add(1);
            let since = *w.failing_since.get_or_insert(now);
            if w.enabled && sent.gone {
                w.enabled = false;
                w.disabled_reason = Some("the endpoint answered 410 Gone".into());
                w.updated_at = now;
            } else if w.enabled && now - since >= limit {
                w.enabled = false;
                w.disabled_reason = Some(format!(
                    "deliveries have been failing since {} ({} consecutive failed attempts)",
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    w.consecutive_failures
                ));
                w.updated_at = now;
            }
            Ok(())
        })
        .await;
    match result {
        Ok(w) => {
            // Attempts handed over with their delivery read webhooks from
            // this cache.
            app.hooks.invalidate(&w.tenant_id);
            if !w.enabled && webhook.enabled {
                tracing::info!(webhook.id = %w.id, tenant.id = %w.tenant_id, "webhook disabled after failures");
            }
        }
        Err(StoreError::NotFound) => {}
        Err(e) => {
            tracing::warn!(webhook.id = %webhook.id, error = %e, "could not update webhook health")
        }
    }
}

/// Re-enqueues pending deliveries whose attempt was due before `before`: a
/// job lost between writing a delivery and sending its message (the queue
/// was down), or a first attempt handed over unrecorded to workers of a
/// process that died. Enqueueing is deduplicated and stale jobs are no-ops,
/// so this is always safe. Reads every such delivery, page by page; returns
/// how many were re-enqueued.
///
/// The jobs it enqueues run while it reads, taking deliveries out of what
/// it reads (no longer pending). So each page is a fresh query for ids
/// after the last one read (keyset), not a continuation of the first: a
/// continuation may count positions in the original result, and on the
/// Cosmos SDK's emulator a page after completed deliveries skipped as many
/// others (1500 of 1867 re-driven after a crash; the rest waited for the
/// next run, a minute later).
pub async fn redrive(app: &Webhooks, before: DateTime<Utc>) -> anyhow::Result<usize> {
    use crate::platform::store::{Filter, Op, Query};
    let now = app.clock.now();
    // As `nextAttemptAt` is stored: at a fixed width, so text order is time order.
    let before = crate::domain::time::exact_text(&before);
    let overdue_after = |last: Option<&str>| {
        let q = Query::cross_partition()
            .eq("status", "pending")
            .filter(Filter::new("nextAttemptAt", Op::Lt, before.as_str()))
            .order_by("id", false)
            .limit(500);
        match last {
            Some(id) => q.filter(Filter::new("id", Op::Gt, id)),
            None => q,
        }
    };
    let mut q = overdue_after(None);
    let mut count = 0;
    loop {
        let (overdue, next) = app.store.page::<Delivery>(&q).await?;
        for d in &overdue {
            enqueue(app.queue.jobs.as_ref(), d, now).await?;
        }
        count += overdue.len();
        let Some(token) = next else { break };
        match overdue.last() {
            Some(d) => q = overdue_after(Some(&d.id.to_string())),
            // An empty page that did not reach the end: continue it.
            None => q.continuation = Some(token),
        }
    }
    if count > 0 {
        tracing::info!(count, "re-enqueued overdue webhook deliveries");
    }
    Ok(count)
}

/// The event announcing a delivery that reached `status`: `webhook.delivered`
/// or `webhook.failed` for a final one (a skipped one is not announced).
fn announced_as(status: DeliveryStatus) -> Option<&'static str> {
    match status {
        DeliveryStatus::Succeeded => Some(EVENT_DELIVERED),
        DeliveryStatus::Skipped => None,
        s if s.is_final() => Some(EVENT_FAILED),
        _ => None,
    }
}

/// The `kind` event for a final delivery.
fn announcement(app: &Webhooks, d: &Delivery, kind: &str) -> crate::platform::events::Event {
    let mut ctx = Ctx::system(d.tenant_id, d.event_id.to_string());
    ctx.causation_id = Some(d.event_id.to_string());
    let status = serde_json::to_value(d.status).unwrap_or_default();
    app.events.envelope(
        &ctx,
        kind,
        json!({
            "webhookId": d.webhook_id, "deliveryId": d.id, "eventId": d.event_id,
            "eventType": d.event_type, "attempts": d.attempt_count, "status": status,
        }),
    )
}
