//! The embedded durable job queue: one table in the embedded store's SQLite
//! file. A received job is leased for a visibility timeout; completing
//! deletes it, abandoning makes it visible again (after a delay), and a job
//! whose worker died reappears when its lease runs out. At-least-once.
//! Jobs due at once can be handed to this process's workers as they are
//! written, already leased ([`EmbeddedQueue::attach`]), or handed over
//! without a row at all, carrying what the sender holds (a `C`), when the
//! sender's own record re-drives them ([`HandOver`]). `C` is chosen by the
//! app's wiring (the webhook delivery as written); the queue never looks
//! inside it.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use tokio::sync::{Notify, mpsc};

mod hand_over;

use hand_over::Attached;
pub use hand_over::{HandedOver, MAX_WAITING};

use super::{JobMessage, JobQueue, QueueError};
use crate::clock::Clock;
use crate::platform::store::StoreError;
use crate::platform::store::embedded::{ExecuteCached as _, SqliteDb};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    queue      TEXT NOT NULL,
    body       TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    lease      TEXT
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (visible_at, seq);
";

/// Deletes a job if it is still under the given lease (a job whose lease
/// ran out and was taken over is not the caller's to delete).
const DELETE_LEASED: &str = "DELETE FROM jobs WHERE seq = ?1 AND lease = ?2";

/// A received job, leased until its visibility timeout.
#[derive(Debug, Clone)]
pub struct Leased<C = ()> {
    /// Row id; `None` for a job handed over unrecorded (nothing to delete,
    /// and giving it back writes its row).
    pub seq: Option<i64>,
    /// The lease token (completing needs it: an expired lease cannot complete).
    pub lease: String,
    /// The message id given at send time.
    pub message_id: String,
    /// The message.
    pub message: JobMessage,
    /// How many times it has been received, this one included (1 = first).
    pub receives: u32,
    /// When the lease runs out (epoch milliseconds): the job is then
    /// visible to every receiver again.
    pub leased_until_ms: i64,
    /// What the sender handed along (jobs handed over unrecorded only).
    pub carry: Option<C>,
    /// About how much memory `carry` holds (counted against the budget).
    pub carry_bytes: usize,
}

/// The embedded queue.
pub struct EmbeddedQueue<C = ()> {
    db: Arc<SqliteDb>,
    clock: Arc<dyn Clock>,
    notify: Notify,
    workers: std::sync::Mutex<Option<Attached<C>>>,
}

const INSERT: &str = "INSERT INTO jobs (message_id, queue, body, visible_at, attempts, lease)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (message_id) DO NOTHING RETURNING seq";

impl<C> std::fmt::Debug for EmbeddedQueue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "used as map_err(queue_error)"
)]
fn queue_error(e: StoreError) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

impl<C: Send + 'static> EmbeddedQueue<C> {
    /// Opens the queue in a database, creating its table if needed.
    pub async fn open(db: Arc<SqliteDb>, clock: Arc<dyn Clock>) -> Result<Self, QueueError> {
        db.write(|c| c.execute_batch(SCHEMA).map_err(unavailable))
            .await
            .map_err(queue_error)?;
        Ok(Self {
            db,
            clock,
            notify: Notify::new(),
            workers: std::sync::Mutex::default(),
        })
    }

    /// Hands jobs from now on straight to this process's workers.
    ///
    /// A job sent due at once, while fewer than `capacity` wait, is written
    /// already leased for `visibility` and, once committed, passed on,
    /// saving a lease write and a poll per job. The row stays the guarantee:
    /// should the process die before completing it, the lease runs out and
    /// the job is received again like any other. Jobs not due yet, or sent
    /// while `capacity` wait, are queued as usual.
    ///
    /// A job handed over unrecorded ([`HandOver`]) is always
    /// passed on, with no row, while fewer than [`MAX_WAITING`] wait. It
    /// keeps its carry while the carries waiting hold at most
    /// `carry_budget` bytes; beyond that it leaves the carry behind (a
    /// backlog of bare job ids costs little memory, and its jobs read what
    /// they need). The budget is in bytes, not jobs, so that a burst that
    /// outruns the workers keeps its carries while they fit.
    pub fn attach(
        &self,
        capacity: usize,
        carry_budget: usize,
        visibility: Duration,
    ) -> HandedOver<C> {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let carried = Arc::new(AtomicUsize::new(0));
        *self.workers.lock().unwrap_or_else(PoisonError::into_inner) = Some(Attached {
            tx,
            visibility_ms: i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX / 2),
            capacity: capacity.max(1),
            waiting: Arc::clone(&waiting),
            carried: Arc::clone(&carried),
            carry_budget,
        });
        HandedOver {
            rx,
            waiting,
            carried,
        }
    }

    /// Stops handing jobs over (workers stopping).
    pub fn detach(&self) {
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Whether a job sent now can be handed over, and the lease it gets.
    fn hand_over_lease(&self, now_ms: i64) -> Option<i64> {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let h = workers.as_ref().filter(|h| h.has_room())?;
        Some(now_ms.saturating_add(h.visibility_ms))
    }

    /// Hands a job to the workers; `false` if none are attached.
    fn hand(&self, job: Leased<C>) -> bool {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.as_ref().is_some_and(|w| w.hand(job))
    }

    /// Leases up to `max` due jobs for `visibility`.
    pub async fn receive(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<Leased<C>>, QueueError> {
        let now = self.clock.now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX));
        let rows = self
            .db
            .write(move |c| {
                let mut out = Vec::new();
                {
                    // The limit is literal: a bound LIMIT recompiles the
                    // statement on every run (SQLite 3.50).
                    let mut pick = c
                        .prepare_cached(&format!(
                            "SELECT seq, message_id, body, attempts FROM jobs
                             WHERE visible_at <= ?1 ORDER BY visible_at, seq LIMIT {max}"
                        ))
                        .map_err(unavailable)?;
                    let picked = pick
                        .query_map(params![now], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, u32>(3)?,
                            ))
                        })
                        .map_err(unavailable)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(unavailable)?;
                    let mut lease_st = c
                        .prepare_cached(
                            "UPDATE jobs SET visible_at = ?2, attempts = attempts + 1, lease = ?3 WHERE seq = ?1",
                        )
                        .map_err(unavailable)?;
                    for (seq, message_id, body, attempts) in picked {
                        let lease = uuid::Uuid::new_v4().simple().to_string();
                        lease_st
                            .execute(params![seq, until, lease])
                            .map_err(unavailable)?;
                        out.push((seq, lease, message_id, body, attempts + 1));
                    }
                }
                Ok(out)
            })
            .await
            .map_err(queue_error)?;
        let mut leased = Vec::with_capacity(rows.len());
        for (seq, lease, message_id, body, receives) in rows {
            match serde_json::from_str::<JobMessage>(&body) {
                Ok(message) => leased.push(Leased {
                    seq: Some(seq),
                    lease,
                    message_id,
                    message,
                    receives,
                    leased_until_ms: until,
                    carry: None,
                    carry_bytes: 0,
                }),
                Err(e) => {
                    // A message this build cannot read would block nothing but
                    // would reappear forever: drop it, loudly.
                    tracing::error!(job.message_id = %message_id, error = %e, "dropping an unreadable job");
                    let _ = self.delete(seq, lease).await;
                }
            }
        }
        Ok(leased)
    }

    async fn delete(&self, seq: i64, lease: String) -> Result<bool, QueueError> {
        self.db
            .write(move |c| {
                c.execute_cached(DELETE_LEASED, params![seq, lease])
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
            .map_err(queue_error)
    }

    /// Deletes a finished job; `false` if its lease had expired and another
    /// worker took it over (it then runs again, which jobs tolerate), or it
    /// has no row.
    pub async fn complete(&self, job: &Leased<C>) -> Result<bool, QueueError> {
        match job.seq {
            Some(seq) => self.delete(seq, job.lease.clone()).await,
            None => Ok(false),
        }
    }

    /// Deletes a finished job in a later commit, without waiting: workers
    /// need not hold a slot for the clean-up, and the deletes of many jobs
    /// share a commit. If the process dies first, the job reappears when its
    /// lease runs out and runs again, which jobs tolerate.
    pub fn complete_later(&self, job: &Leased<C>) {
        let Some(seq) = job.seq else { return };
        let lease = job.lease.clone();
        self.db.write_later(move |c| {
            c.execute_cached(DELETE_LEASED, params![seq, lease])
                .map(|_| ())
        });
    }

    /// Resolves once every change queued before it, deferred completions
    /// included, is committed.
    pub async fn settled(&self) -> Result<(), QueueError> {
        self.db.settled().await.map_err(queue_error)
    }

    /// Gives a job back, visible again after `delay` (a job handed over
    /// unrecorded is written now, keeping its receive count).
    pub async fn abandon(&self, job: &Leased<C>, delay: Duration) -> Result<(), QueueError> {
        let at = self.clock.now().timestamp_millis()
            + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let lease = job.lease.clone();
        let Some(seq) = job.seq else {
            self.insert(&job.message, &job.message_id, at, job.receives, None)
                .await?;
            if delay.is_zero() {
                self.notify.notify_one();
            }
            return Ok(());
        };
        self.db
            .write(move |c| {
                c.execute_cached(
                    "UPDATE jobs SET visible_at = ?3, lease = NULL WHERE seq = ?1 AND lease = ?2",
                    params![seq, lease, at],
                )
                .map_err(unavailable)
            })
            .await
            .map_err(queue_error)?;
        if delay.is_zero() {
            self.notify.notify_one();
        }
        Ok(())
    }

    /// Writes a job's row unless one with its message id is queued; its
    /// row id if written.
    async fn insert(
        &self,
        message: &JobMessage,
        message_id: &str,
        visible_at: i64,
        attempts: u32,
        lease: Option<String>,
    ) -> Result<Option<i64>, QueueError> {
        let body = serde_json::to_string(message).map_err(|e| QueueError::Encode(e.to_string()))?;
        let queue = message.queue();
        let id = message_id.to_owned();
        self.db
            .write(move |c| {
                c.prepare_cached(INSERT)
                    .and_then(|mut st| {
                        st.query_row(params![id, queue, body, visible_at, attempts, lease], |r| {
                            r.get::<_, i64>(0)
                        })
                        .optional()
                    })
                    .map_err(unavailable)
            })
            .await
            .map_err(queue_error)
    }

    /// Number of queued jobs (due or not, leased or not).
    pub async fn len(&self) -> Result<u64, QueueError> {
        self.db
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get::<_, i64>(0))
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(unavailable)
            })
            .await
            .map_err(queue_error)
    }

    /// Whether no job is queued.
    pub async fn is_empty(&self) -> Result<bool, QueueError> {
        Ok(self.len().await? == 0)
    }

    /// The time the next job becomes visible, if any job is queued.
    pub async fn next_visible_at(&self) -> Result<Option<DateTime<Utc>>, QueueError> {
        let ms: Option<i64> = self
            .db
            .read(|c| {
                c.query_row("SELECT MIN(visible_at) FROM jobs", [], |r| r.get(0))
                    .optional()
                    .map(Option::flatten)
                    .map_err(unavailable)
            })
            .await
            .map_err(queue_error)?;
        Ok(ms.and_then(DateTime::from_timestamp_millis))
    }

    /// Resolves when a job was sent (or after a spurious wake-up).
    pub async fn wait_for_work(&self) {
        self.notify.notified().await;
    }
}

#[async_trait]
impl<C: Send + Sync + 'static> JobQueue for EmbeddedQueue<C> {
    async fn send(
        &self,
        message: &JobMessage,
        not_before: Option<DateTime<Utc>>,
        message_id: &str,
    ) -> Result<(), QueueError> {
        let now = self.clock.now();
        let due_now = not_before.is_none_or(|t| t <= now);
        // Leased at birth when this process's workers can take it at once.
        let handed = due_now
            .then(|| self.hand_over_lease(now.timestamp_millis()))
            .flatten()
            .map(|until| (until, uuid::Uuid::new_v4().simple().to_string()));
        let (visible_at, attempts, lease) = match &handed {
            Some((until, lease)) => (*until, 1, Some(lease.clone())),
            None => (not_before.unwrap_or(now).timestamp_millis(), 0, None),
        };
        let seq = self
            .insert(message, message_id, visible_at, attempts, lease)
            .await?;
        match (handed, seq) {
            (Some((until, lease)), Some(seq)) => {
                // Workers gone meanwhile: the lease runs out, and it is received.
                self.hand(Leased {
                    seq: Some(seq),
                    lease,
                    message_id: message_id.to_owned(),
                    message: message.clone(),
                    receives: 1,
                    leased_until_ms: until,
                    carry: None,
                    carry_bytes: 0,
                });
            }
            (None, Some(_)) if due_now => self.notify.notify_one(),
            // Not due yet, or a duplicate message id (the job exists).
            _ => {}
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), QueueError> {
        self.len().await.map(|_| ())
    }

    fn name(&self) -> &'static str {
        "embedded"
    }
}
