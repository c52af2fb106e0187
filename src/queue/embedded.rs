//! The embedded durable job queue: one table in the embedded store's SQLite
//! file. A received job is leased for a visibility timeout; completing
//! deletes it, abandoning makes it visible again (after a delay), and a job
//! whose worker died reappears when its lease runs out. At-least-once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;

use super::{JobQueue, QueueError};
use crate::clock::Clock;
use crate::jobs::JobMessage;
use crate::store::StoreError;
use crate::store::embedded::{ExecuteCached as _, SqliteDb};

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
pub struct Leased {
    /// Row id.
    pub seq: i64,
    /// The lease token (completing needs it: an expired lease cannot complete).
    pub lease: String,
    /// The message id given at send time.
    pub message_id: String,
    /// The message.
    pub message: JobMessage,
    /// How many times it has been received, this one included (1 = first).
    pub attempts: u32,
}

/// The embedded queue.
pub struct EmbeddedQueue {
    db: Arc<SqliteDb>,
    clock: Arc<dyn Clock>,
    notify: Notify,
}

impl std::fmt::Debug for EmbeddedQueue {
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

impl EmbeddedQueue {
    /// Opens the queue in a database, creating its table if needed.
    pub async fn open(db: Arc<SqliteDb>, clock: Arc<dyn Clock>) -> Result<Self, QueueError> {
        db.write(|c| c.execute_batch(SCHEMA).map_err(unavailable))
            .await
            .map_err(queue_error)?;
        Ok(Self {
            db,
            clock,
            notify: Notify::new(),
        })
    }

    /// Leases up to `max` due jobs for `visibility`.
    pub async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Leased>, QueueError> {
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
        for (seq, lease, message_id, body, attempts) in rows {
            match serde_json::from_str::<JobMessage>(&body) {
                Ok(message) => leased.push(Leased {
                    seq,
                    lease,
                    message_id,
                    message,
                    attempts,
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
    /// worker took it over (it then runs again, which jobs tolerate).
    pub async fn complete(&self, job: &Leased) -> Result<bool, QueueError> {
        self.delete(job.seq, job.lease.clone()).await
    }

    /// Deletes a finished job in a later commit, without waiting: workers
    /// need not hold a slot for the clean-up, and the deletes of many jobs
    /// share a commit. If the process dies first, the job reappears when its
    /// lease runs out and runs again, which jobs tolerate.
    pub fn complete_later(&self, job: &Leased) {
        let (seq, lease) = (job.seq, job.lease.clone());
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

    /// Gives a job back, visible again after `delay`.
    pub async fn abandon(&self, job: &Leased, delay: Duration) -> Result<(), QueueError> {
        let at = self.clock.now().timestamp_millis()
            + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let (seq, lease) = (job.seq, job.lease.clone());
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
impl JobQueue for EmbeddedQueue {
    async fn send(
        &self,
        message: &JobMessage,
        not_before: Option<DateTime<Utc>>,
        message_id: &str,
    ) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).map_err(|e| QueueError::Encode(e.to_string()))?;
        let now = self.clock.now();
        let at = not_before.unwrap_or(now).timestamp_millis();
        let queue = message.queue().to_owned();
        let id = message_id.to_owned();
        self.db
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO jobs (message_id, queue, body, visible_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .and_then(|mut st| st.execute(params![id, queue, body, at]))
                .map_err(unavailable)
            })
            .await
            .map_err(queue_error)?;
        if not_before.is_none_or(|t| t <= now) {
            self.notify.notify_one();
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), QueueError> {
        self.len().await.map(|_| ())
    }

    fn name(&self) -> &'static str {
        "embedded"
    }

    fn as_embedded(&self) -> Option<&EmbeddedQueue> {
        Some(self)
    }
}
