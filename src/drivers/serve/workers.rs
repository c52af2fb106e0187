//! `serve`'s in-process workers: a fixed pool (`WORKERS` jobs at once)
//! taking jobs from the embedded queue, which they hold themselves, and
//! running each through the app's one job dispatch ([`crate::app::jobs::run`]),
//! retried per [`crate::jobs::QUEUE_JOBS`].

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::app::{App, AppState, Carried};
use crate::jobs::QUEUE_JOBS;
use crate::platform::queue::embedded::{EmbeddedQueue, Leased};

/// The embedded queue as the workers hold it.
type Queue = EmbeddedQueue<Carried>;
/// A job as the workers get it.
type Job = Leased<Carried>;

/// How long an idle worker sleeps before looking for scheduled jobs.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// The lease a job gets: longer than any attempt can take.
pub fn visibility_timeout(app: &App) -> Duration {
    app.config.webhooks.visibility_timeout()
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

/// Starts the pool on the app's embedded queue: at most `config.workers`
/// jobs run at once. `None` when the queue is not embedded (Service Bus is
/// worked by the Functions host).
pub fn start(state: &AppState) -> Option<Workers> {
    let queue = Arc::clone(state.local_queue.as_ref()?);
    let (stop, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(dispatch(Arc::clone(&state.0), queue, rx));
    tracing::info!(workers = state.config.workers, "job workers started");
    Some(Workers { stop, tasks })
}

/// Most jobs leased in one go.
const MAX_LEASE: usize = 64;
/// Jobs sent due now that are written already leased and handed over
/// while fewer wait (see [`EmbeddedQueue::attach`]).
const HAND_OVER_CAPACITY: usize = 1024;
/// Memory the deliveries carried by jobs handed over unrecorded may hold
/// while they wait for a slot: a full backlog ([`crate::platform::queue::embedded::MAX_WAITING`])
/// of deliveries of a few KiB, or 64 with 1 MiB payloads; beyond it their
/// jobs read them back.
const CARRY_BUDGET_BYTES: usize = 64 << 20;

/// `config.workers` long-lived tasks, each running one job at a time: a
/// task per job would cost a task allocation, a copy of the job's future
/// and its bookkeeping for every delivery; a worker reuses its own.
struct Pool {
    /// Each worker's job channel, by worker number.
    jobs: Vec<mpsc::Sender<Job>>,
    /// Numbers of workers with nothing to do: a job is given to one taken
    /// from here, which comes back when the job is done.
    idle: mpsc::UnboundedReceiver<usize>,
    /// For giving back idle workers that got no job.
    back: mpsc::UnboundedSender<usize>,
    tasks: JoinSet<()>,
}

impl Pool {
    fn start(app: &Arc<App>, queue: &Arc<Queue>, size: usize) -> Self {
        let (back, idle) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        let mut senders = Vec::with_capacity(size);
        for n in 0..size {
            let (tx, mut jobs) = mpsc::channel::<Job>(1);
            senders.push(tx);
            let _ = back.send(n);
            let (back, app, queue) = (back.clone(), Arc::clone(app), Arc::clone(queue));
            tasks.spawn(async move {
                while let Some(job) = jobs.recv().await {
                    // A job that panics must not take its worker with it (a
                    // task per job lost only the job); its lease, or the
                    // re-drive for one handed over unrecorded, brings it back.
                    let run = AssertUnwindSafe(run_one(&app, &queue, job));
                    if run.catch_unwind().await.is_err() {
                        // Not the panic's text: it could quote the job's data.
                        tracing::error!("a job panicked; it runs again later");
                    }
                    let _ = back.send(n);
                }
            });
        }
        Self {
            jobs: senders,
            idle,
            back,
            tasks,
        }
    }

    /// Gives `job` to idle worker `n`.
    fn run(&self, n: usize, job: Job) {
        let Some(worker) = self.jobs.get(n) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
            worker.try_send(job)
        {
            // An idle worker's channel is empty and open while the pool
            // runs; should it not be, the job's lease brings it back.
            tracing::warn!(job.message_id = %job.message_id, "a worker could not take a job");
        }
    }

    /// Puts workers that got no job back among the idle.
    fn give_back(&self, workers: impl IntoIterator<Item = usize>) {
        for n in workers {
            let _ = self.back.send(n);
        }
    }

    /// Waits for the running jobs to finish.
    async fn finish(self) {
        let Self {
            jobs, mut tasks, ..
        } = self;
        // Their channels closed, idle workers end at once and busy ones
        // after their job.
        drop(jobs);
        while tasks.join_next().await.is_some() {}
    }
}

/// Runs jobs as workers free up: jobs handed over at birth first (see
/// [`EmbeddedQueue::attach`]), else leased from the queue — every idle
/// worker's worth in one lease, one write for many jobs. The queue is also
/// polled at least every [`IDLE_POLL`] so that retries and jobs from other
/// processes are not starved by a steady stream of new ones.
async fn dispatch(app: Arc<App>, queue: Arc<Queue>, mut stop: watch::Receiver<bool>) {
    let visibility = visibility_timeout(&app);
    let mut handed = queue.attach(HAND_OVER_CAPACITY, CARRY_BUDGET_BYTES, visibility);
    let size = usize::try_from(app.config.workers).unwrap_or(1).max(1);
    let mut pool = Pool::start(&app, &queue, size);
    let mut polled = Instant::now();
    while !*stop.borrow() {
        let first = tokio::select! {
            worker = pool.idle.recv() => worker,
            _ = stop.changed() => continue,
        };
        let Some(first) = first else { break };
        if polled.elapsed() < IDLE_POLL
            && let Some(job) = handed.try_recv()
        {
            if still_leased(&app, &job) {
                pool.run(first, job);
            } else {
                pool.give_back([first]);
            }
            continue;
        }
        let mut workers = vec![first];
        while workers.len() < MAX_LEASE {
            match pool.idle.try_recv() {
                Ok(w) => workers.push(w),
                Err(_) => break,
            }
        }
        let wanted = u32::try_from(workers.len()).unwrap_or(1);
        polled = Instant::now();
        let jobs = match queue.receive(wanted, visibility).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "receiving jobs failed");
                pool.give_back(workers);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            pool.give_back(workers.drain(1..));
            tokio::select! {
                job = handed.recv() => match job.filter(|j| still_leased(&app, j)) {
                    Some(job) => pool.run(first, job),
                    None => pool.give_back([first]),
                },
                () = queue.wait_for_work() => pool.give_back([first]),
                () = tokio::time::sleep(IDLE_POLL) => pool.give_back([first]),
                _ = stop.changed() => pool.give_back([first]),
            }
            continue;
        }
        let mut workers = workers.into_iter();
        for (job, n) in jobs.into_iter().zip(workers.by_ref()) {
            pool.run(n, job);
        }
        pool.give_back(workers);
    }
    // Jobs handed over but not started go back to the queue at once rather
    // than waiting for their lease to run out.
    queue.detach();
    handed.close();
    while let Some(job) = handed.recv().await {
        if let Err(e) = queue.abandon(&job, Duration::ZERO).await {
            tracing::warn!(job.message_id = %job.message_id, error = %e, "could not give a job back (it reappears when its lease runs out)");
        }
    }
    pool.finish().await;
}

/// Whether a handed-over job's lease still holds: one that waited past it is
/// visible in the table again and is left to whoever receives it there, so
/// that it never has two runners. A job handed over unrecorded has no row
/// for anyone else to receive: it is always run.
fn still_leased(app: &App, job: &Job) -> bool {
    job.seq.is_none() || job.leased_until_ms > app.clock.now().timestamp_millis()
}

/// Runs one leased job and settles it: done (or given up, per
/// [`QUEUE_JOBS`]) → completed; failed → given back for a later receive.
pub async fn run_one(app: &App, queue: &Queue, mut job: Job) {
    let carried = job.carry.take();
    let result = crate::app::jobs::run(app, job.message.clone(), job.receives, carried).await;
    let settled = match result {
        Ok(_) => {
            queue.complete_later(&job);
            Ok(())
        }
        Err(e) if !e.is_retryable() || QUEUE_JOBS.exhausted(job.receives) => {
            // Its work's own record re-drives it (the webhook re-drive).
            tracing::error!(job.message_id = %job.message_id, error = %e, receives = job.receives, "job given up");
            queue.complete_later(&job);
            Ok(())
        }
        Err(e) => {
            let delay = e
                .wait_hint()
                .unwrap_or_else(|| QUEUE_JOBS.backoff(job.receives));
            tracing::warn!(job.message_id = %job.message_id, error = %e, retry_in_s = delay.as_secs(), "job failed; will retry");
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
        .local_queue
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the job queue is not embedded"))?;
    let mut ran = 0;
    loop {
        queue.settled().await?;
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
