//! `serve`'s in-process workers: a bounded pool (`WORKERS`) leasing jobs from
//! the embedded queue and running [`super::process_job`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{JobOutcome, process_job};
use crate::queue::embedded::{EmbeddedQueue, Leased};
use crate::state::{App, AppState};

/// How long an idle worker sleeps before looking for scheduled jobs.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How often `serve` looks for overdue deliveries whose job was lost.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// After this many receptions a job is dropped (its work is re-driven by the
/// webhook sweeper, which looks at the deliveries themselves).
const MAX_RECEIVES: u32 = 25;

/// The lease a job gets: longer than any attempt can take.
pub fn visibility_timeout(app: &App) -> Duration {
    Duration::from_secs(u64::from(app.config.webhooks.timeout_seconds) * 2 + 5)
}

/// A running pool; dropping the handle does not stop it, [`Workers::stop`] does.
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Workers {
    /// Stops taking jobs and waits for the running ones to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts `config.workers` workers on the app's embedded queue; `None` when
/// the queue is not embedded (Service Bus is worked by the Functions host).
pub fn start(state: &AppState) -> Option<Workers> {
    state.queue.as_embedded()?;
    let (stop, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for n in 0..state.config.workers {
        let app = Arc::clone(&state.0);
        let rx = rx.clone();
        tasks.spawn(async move { worker(n, app, rx).await });
    }
    let app = Arc::clone(&state.0);
    let mut sweep_stop = rx.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = sweep_stop.changed() => return,
            }
            let grace =
                chrono::Duration::from_std(visibility_timeout(&app) * 2).unwrap_or_default();
            if let Err(e) = crate::webhooks::delivery::sweep(&app, grace).await {
                tracing::warn!(error = %e, "sweeping overdue deliveries failed");
            }
        }
    });
    tracing::info!(workers = state.config.workers, "job workers started");
    Some(Workers { stop, tasks })
}

async fn worker(n: u32, app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let Some(queue) = app.queue.as_embedded() else {
        return;
    };
    let visibility = visibility_timeout(&app);
    loop {
        if *stop.borrow() {
            return;
        }
        let jobs = match queue.receive(1, visibility).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(worker = n, error = %e, "receiving jobs failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            tokio::select! {
                () = queue.wait_for_work() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        for job in jobs {
            run_one(&app, queue, job).await;
        }
    }
}

/// Runs one leased job and settles it (complete or abandon).
pub async fn run_one(app: &App, queue: &EmbeddedQueue, job: Leased) {
    let result = process_job(app, job.message.clone(), job.attempts).await;
    let settled = match result {
        Ok(outcome) => {
            if outcome == JobOutcome::Done {
                tracing::debug!(job.message_id = %job.message_id, "job done");
            }
            queue.complete(&job).await.map(|_| ())
        }
        Err(e) if job.attempts >= MAX_RECEIVES => {
            tracing::error!(job.message_id = %job.message_id, error = %e.cause, attempts = job.attempts, "job keeps failing; dropped");
            queue.complete(&job).await.map(|_| ())
        }
        Err(e) => {
            let delay = e
                .retry_after
                .unwrap_or_else(|| Duration::from_secs(2u64.saturating_pow(job.attempts.min(8))));
            tracing::warn!(job.message_id = %job.message_id, error = %e.cause, retry_in_s = delay.as_secs(), "job failed; will retry");
            queue.abandon(&job, delay).await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(job.message_id = %job.message_id, error = %e, "could not settle a job (it will reappear)");
    }
}

/// Runs every job that is due now, until none is (tests, benchmarks, tools).
/// Returns how many jobs ran.
pub async fn run_due(app: &App) -> anyhow::Result<usize> {
    let queue = app
        .queue
        .as_embedded()
        .ok_or_else(|| anyhow::anyhow!("the job queue is not embedded"))?;
    let mut ran = 0;
    loop {
        let jobs = queue.receive(16, visibility_timeout(app)).await?;
        if jobs.is_empty() {
            return Ok(ran);
        }
        for job in jobs {
            ran += 1;
            run_one(app, queue, job).await;
        }
    }
}
