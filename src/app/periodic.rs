//! The one table of periodic work. `serve` runs each entry in a loop every
//! [`Periodic::every`]; the Functions handler registers each as the timer
//! function [`Periodic::name`], which the host fires on
//! [`Periodic::schedule`] (its `functions/<name>/function.json` declares
//! the same schedule: a test compares them). The work itself is the same
//! in both modes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::features::connections::refresh;
use crate::features::webhooks::delivery;
use crate::jobs::{IntoOutcome, JobError, JobOutcome, Summary};

/// What one run of periodic work is told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// The first run since this process started (`serve` only: a Functions
    /// timer never knows), when work left behind by an earlier process of
    /// the same data directory is picked up at once.
    pub first: bool,
}

/// A boxed run of periodic work.
pub type PeriodicFuture = Pin<Box<dyn Future<Output = Result<JobOutcome, JobError>> + Send>>;

/// One kind of periodic work.
#[derive(Clone, Copy)]
pub struct Periodic {
    /// Its name: the timer function's folder under `functions/`.
    pub name: &'static str,
    /// How often `serve` runs it.
    pub every: Duration,
    /// The timer function's NCRONTAB schedule (six fields, seconds first).
    pub schedule: &'static str,
    /// Whether `serve` runs it as soon as it starts (else after `every`).
    pub at_start: bool,
    /// The work.
    pub run: fn(Arc<App>, Tick) -> PeriodicFuture,
}

impl std::fmt::Debug for Periodic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.name)
            .field("every", &self.every)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// Every kind of periodic work.
pub const TABLE: &[Periodic] = &[
    Periodic {
        name: "outbox-relay",
        every: Duration::from_secs(2),
        schedule: "0 */1 * * * *",
        at_start: true,
        run: |app, _| Box::pin(async move { relay(&app).await }),
    },
    Periodic {
        name: "webhook-redrive",
        every: Duration::from_secs(60),
        schedule: "0 */1 * * * *",
        at_start: true,
        run: |app, tick| Box::pin(async move { redrive(&app, tick).await }),
    },
    Periodic {
        name: "purge-expired",
        every: Duration::from_secs(600),
        schedule: "0 */10 * * * *",
        at_start: false,
        run: |app, _| Box::pin(async move { purge(&app).await }),
    },
    Periodic {
        name: "token-refresh",
        every: Duration::from_secs(600),
        schedule: "0 */10 * * * *",
        at_start: true,
        run: |app, _| Box::pin(async move { refresh_tokens(&app).await }),
    },
    Periodic {
        name: "sync-scheduler",
        every: Duration::from_secs(10),
        schedule: "0 */1 * * * *",
        at_start: true,
        run: |app, _| Box::pin(async move { schedule_syncs(&app).await }),
    },
];

/// Queues due sync tasks and sends again the runs left behind (lapsed
/// leases, lost jobs). `serve` looks every 10 s, so a cron task starts
/// within seconds of its minute and a dead run resumes soon after its
/// lease lapses; the Functions timer fires each minute.
async fn schedule_syncs(app: &App) -> Result<JobOutcome, JobError> {
    let r = crate::features::sync::run::scheduler::tick(&app.sync).await?;
    if r.due + r.resumed + r.resent > 0 {
        tracing::info!(
            due = r.due,
            queued = r.queued,
            skipped = r.skipped,
            resumed = r.resumed,
            resent = r.resent,
            "sync scheduler"
        );
    }
    Ok(Summary(r).into_outcome())
}

/// Refreshes OAuth tokens expiring within 15 minutes (single flight per
/// connection across processes: see [`refresh`]).
async fn refresh_tokens(app: &App) -> Result<JobOutcome, JobError> {
    let r = refresh::refresh_due(&app.connections).await?;
    if r.due > 0 {
        tracing::info!(
            due = r.due,
            refreshed = r.refreshed,
            skipped = r.skipped,
            failed = r.failed,
            expired = r.expired,
            "token refresh"
        );
    }
    Ok(Summary(r).into_outcome())
}

/// Republishes unconfirmed events, in order per tenant, and re-drives
/// local handlers that failed (the outbox guarantee: `docs/architecture.md`).
async fn relay(app: &App) -> Result<JobOutcome, JobError> {
    let r = app.events.relay().await?;
    if r.published + r.dropped + r.failed > 0 {
        tracing::info!(
            published = r.published,
            failed = r.failed,
            dropped = r.dropped,
            waiting = r.waiting,
            "outbox relay"
        );
    }
    Ok(Summary(r).into_outcome())
}

/// Re-enqueues pending webhook deliveries whose attempt is overdue: a job
/// lost between writing a delivery and sending its message (the queue was
/// down), or a first attempt handed over to workers of a process that died.
/// On a first tick every delivery due before now is re-driven at once (the
/// jobs that do exist deduplicate it); later, those overdue by more than
/// twice a job's visibility timeout.
async fn redrive(app: &App, tick: Tick) -> Result<JobOutcome, JobError> {
    let now = app.clock.now();
    let before = if tick.first {
        now
    } else {
        let grace = app.webhooks.settings.visibility_timeout() * 2;
        now - chrono::Duration::from_std(grace).unwrap_or_default()
    };
    let count = delivery::redrive(&app.webhooks, before).await?;
    Ok(count.into_outcome())
}

/// Deletes expired documents (delivery logs, idempotency records…) for
/// good: they are invisible once expired, but the embedded store keeps
/// their rows until purged (Cosmos DB expires them itself).
async fn purge(app: &App) -> Result<JobOutcome, JobError> {
    let n = app.store.purge_expired().await?;
    if n > 0 {
        tracing::info!(count = n, "purged expired documents");
    }
    Ok(n.into_outcome())
}

/// The entry named `name`.
pub fn find(name: &str) -> Option<&'static Periodic> {
    TABLE.iter().find(|p| p.name == name)
}
