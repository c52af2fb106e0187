//! Group commit: every write of the embedded database runs on one dedicated
//! thread that owns the writer connection.
//!
//! SQLite serialises writers, and a commit costs far more than the statements
//! it holds (a WAL append and, on checkpoint, a sync). Writers therefore queue
//! their work on a channel; the thread takes everything queued so far (up to
//! [`MAX_BATCH`] pieces), runs them inside one transaction and commits
//! once. Each piece is atomic on its own — a failing piece is undone and
//! fails alone (see [`Undo`]) — and its caller hears
//! of the outcome only after the commit, so a caller that got `Ok` reads its
//! write from any connection. Under load, N concurrent writes cost one commit
//! instead of N commits plus N hand-offs of a mutex between blocking threads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use super::unavailable;
use crate::platform::store::{StoreError, StoreResult};

/// Most pieces of work committed together.
const MAX_BATCH: usize = 256;

/// How long the writer sleeps before closing a group, while writers are
/// busy (the previous group held more than one piece). Every commit writes
/// each page it dirtied to the log, so many small commits of neighbouring
/// rows rewrite the same pages again and again; and asleep, the thread is
/// not woken by every piece queued meanwhile, as it was when it waited on
/// the channel. Each writer waits this much longer, so callers that wait
/// for their commit one after another go slower; the linger is kept short.
/// A lone write (the previous group held one piece) never waits.
const LINGER: Duration = Duration::from_micros(100);

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL pages past which the writer checkpoints by itself (a safety net
/// should the checkpointer fall behind; SQLite's default is 1000).
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 20_000;

/// How a finished piece learns the outcome of the commit.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Work on the writer connection: says whether it succeeded (to keep or
/// undo what it did) and how to report.
type Work = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// How the writer undoes a piece that fails in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Undo {
    /// The piece may fail after changing rows (several writes, the last
    /// one refused): it runs in a savepoint of its own.
    Savepoint,
    /// The piece fails, if at all, before it changes a row: one statement
    /// (SQLite undoes a failed statement by itself), or checks before its
    /// one write. It needs no savepoint (whose statements and copies of
    /// every page the piece touches cost the writer dearly). Should such a piece fail after a
    /// change all the same (an I/O error between its statements), the whole
    /// group is rolled back and every piece of it run so far fails.
    Nothing,
}

/// A queued piece of work.
struct Piece {
    work: Work,
    undo: Undo,
}

/// A write nobody waits for (see [`Writer::later`]).
type Chore = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

/// The sending side of the writer thread.
pub(super) struct Writer {
    tx: mpsc::Sender<Piece>,
    /// Chores not yet taken by a queued piece.
    chores: Arc<Mutex<Vec<Chore>>>,
}

impl Writer {
    /// Moves `conn` onto a new thread that commits queued work in groups.
    /// The thread ends when the last [`Writer`] handle is dropped.
    pub(super) fn spawn(conn: Connection) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Piece>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&conn, &rx))?;
        Ok(Self {
            tx,
            chores: Arc::default(),
        })
    }

    /// Queues a write nobody waits for (clean-up of what is already done:
    /// confirmed outbox entries, finished jobs). Chores are folded into one
    /// piece: the first chore queues a piece that, when the writer reaches
    /// it, runs every chore queued by then, so the busier the writer, the
    /// more chores share a commit and the pages they change. A failing chore
    /// is logged and skipped; chores are lost if the process dies first, so
    /// a chore must be one whose omission is harmless. Returns how many
    /// chores wait for the writer, this one included.
    pub(super) fn later<F>(&self, f: F) -> usize
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        let waiting = {
            let mut chores = self.chores.lock().unwrap_or_else(PoisonError::into_inner);
            chores.push(Box::new(f));
            chores.len()
        };
        if waiting > 1 {
            return waiting; // a queued piece will take it
        }
        let chores = Arc::clone(&self.chores);
        let work: Work = Box::new(move |conn| {
            let taken = std::mem::take(&mut *chores.lock().unwrap_or_else(PoisonError::into_inner));
            for chore in taken {
                if let Err(e) = chore(conn) {
                    tracing::warn!(error = %e, "a deferred database write failed");
                }
            }
            (true, Box::new(|_| {}))
        });
        // Never failing, the chores' piece is never undone.
        let piece = Piece {
            work,
            undo: Undo::Nothing,
        };
        if self.tx.send(piece).is_err() {
            tracing::warn!("the database writer has stopped; deferred writes dropped");
        }
        waiting
    }

    /// Queues `f`, undone as `undo` says should it fail; resolves with its
    /// result once its group is committed.
    pub(super) async fn submit<T, F>(&self, undo: Undo, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let out = f(conn);
            let ok = out.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = done.send(commit.and(out));
            });
            (ok, finish)
        });
        self.tx
            .send(Piece { work, undo })
            .map_err(|_| unavailable("the database writer has stopped"))?;
        outcome
            .await
            .map_err(|_| unavailable("a database write was abandoned"))?
    }
}

fn run(conn: &Connection, rx: &mpsc::Receiver<Piece>) {
    let mut busy = false;
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        drain(rx, &mut batch);
        if busy && batch.len() < MAX_BATCH {
            // Asleep rather than waiting on the channel: writers queueing
            // meanwhile need not wake this thread, one by one.
            std::thread::sleep(LINGER);
            drain(rx, &mut batch);
        }
        busy = batch.len() > 1;
        commit_group(conn, batch);
    }
}

/// Adds what is queued to `batch`, up to [`MAX_BATCH`] pieces.
fn drain(rx: &mpsc::Receiver<Piece>, batch: &mut Vec<Piece>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(piece) => batch.push(piece),
            Err(_) => break,
        }
    }
}

/// Runs one group in one transaction; every piece hears the commit's outcome.
fn commit_group(conn: &Connection, batch: Vec<Piece>) {
    if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
        // Nothing ran: dropping the pieces fails each caller with Unavailable.
        tracing::warn!(error = %e, pieces = batch.len(), "could not begin a database write");
        return;
    }
    // A piece alone in its group needs no savepoint: the transaction is its
    // own, and rolling it back undoes exactly that piece (the usual case
    // under light load, saving two statements and the savepoint journal).
    let alone = batch.len() == 1;
    let mut finished: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut pieces = batch.into_iter();
    while let Some(Piece { work, undo }) = pieces.next() {
        let guarded = !alone && undo == Undo::Savepoint;
        if guarded && let Err(e) = run_cached(conn, "SAVEPOINT piece") {
            tracing::warn!(error = %e, "could not open a savepoint");
            continue; // the piece is dropped: its caller gets Unavailable
        }
        let changes_before = conn.total_changes();
        let failed = match catch_unwind(AssertUnwindSafe(|| work(conn))) {
            Ok((true, finish)) => {
                if !guarded || run_cached(conn, "RELEASE piece").is_ok() {
                    finished.push(finish);
                } else {
                    rollback_piece(conn);
                    finish(Err(unavailable("could not release a savepoint")));
                }
                continue;
            }
            // The piece's own error wins over the commit's outcome.
            Ok((false, finish)) => Some(finish),
            Err(_) => {
                tracing::error!("a database write panicked; it was rolled back");
                None
            }
        };
        let undone = if alone {
            let _ = run_cached(conn, "ROLLBACK");
            true
        } else if guarded {
            rollback_piece(conn);
            true
        } else {
            // Nothing to undo, unless it changed rows after all.
            conn.total_changes() == changes_before
        };
        if let Some(finish) = failed {
            finish(Ok(()));
        }
        if !undone {
            // Only the whole transaction can undo it: the pieces run so far
            // fail with it, and the rest start a group of their own.
            tracing::warn!(
                pieces = finished.len(),
                "a database write failed half done; its group was rolled back"
            );
            let _ = conn.execute_batch("ROLLBACK");
            for finish in finished {
                finish(Err(unavailable(
                    "a database write was rolled back with its group",
                )));
            }
            let rest: Vec<Piece> = pieces.collect();
            if !rest.is_empty() {
                commit_group(conn, rest);
            }
            return;
        }
    }
    if alone && finished.is_empty() {
        return; // its transaction is already rolled back
    }
    let outcome = run_cached(conn, "COMMIT").map_err(unavailable);
    if outcome.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for finish in finished {
        finish(outcome.as_ref().copied().map_err(clone_error));
    }
}

fn rollback_piece(conn: &Connection) {
    let _ = run_cached(conn, "ROLLBACK TO piece");
    let _ = run_cached(conn, "RELEASE piece");
}

/// Runs a transaction-control statement through the statement cache (a
/// group runs two per guarded piece; parsing them each time is measurable).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn clone_error(e: &StoreError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Checkpoints the write-ahead log on its own connection and thread.
///
/// SQLite's automatic checkpoint would copy the log into the database (and
/// sync it) inside some unlucky commit, on the one thread every write
/// waits for. A passive checkpoint never blocks the writer or readers.
/// The thread ends when the handle is dropped.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing through `conn` every [`CHECKPOINT_EVERY`].
    pub(super) fn spawn(conn: Connection) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "checkpointing the database log failed");
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::SqliteDb;
    use super::unavailable;
    use crate::platform::store::StoreError;

    fn db() -> (tempfile::TempDir, Arc<SqliteDb>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("t.db")).expect("open");
        (dir, db)
    }

    async fn setup(db: &SqliteDb) {
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
                .map_err(unavailable)
        })
        .await
        .expect("schema");
    }

    /// Inserts row `k` with value `v` into the test table.
    fn insert(c: &rusqlite::Connection, k: i64, v: &str) -> rusqlite::Result<()> {
        c.execute(
            "INSERT INTO t (k, v) VALUES (?1, ?2)",
            rusqlite::params![k, v],
        )
        .map(|_| ())
    }

    async fn keys(db: &SqliteDb) -> Vec<i64> {
        db.read_now(|c| {
            let mut st = c.prepare("SELECT k FROM t ORDER BY k").expect("prepare");
            let rows = st.query_map([], |r| r.get(0)).expect("query");
            Ok(rows.map(|r| r.expect("row")).collect())
        })
        .expect("read")
    }

    /// Deferred writes all run, in order, a failing one alone is skipped, and
    /// `settled` waits for every one queued before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_writes_run_by_the_time_the_writer_settles() {
        let (_dir, db) = db();
        setup(&db).await;
        for k in 0..500_i64 {
            db.write_later(move |c| insert(c, k, "x"));
        }
        // A duplicate key fails; the chores around it still commit.
        db.write_later(|c| insert(c, 7, "dup"));
        db.write_later(|c| insert(c, 1000, "x"));
        db.settled().await.expect("settled");
        let got = keys(&db).await;
        assert_eq!(got.len(), 501);
        assert_eq!(got.last(), Some(&1000));
    }

    /// Many writers at once land in shared groups; a failing piece rolls back
    /// only its own statements and fails alone, a panicking one too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_piece_of_a_group_stands_or_falls_alone() {
        let (_dir, db) = db();
        setup(&db).await;
        let mut tasks = Vec::new();
        for k in 0..200_i64 {
            let db = Arc::clone(&db);
            tasks.push(tokio::spawn(async move {
                db.write(move |c| {
                    insert(c, k, "a").map_err(unavailable)?;
                    // Every 10th piece writes twice and then fails: neither row may stay.
                    if k % 10 == 3 {
                        insert(c, k + 10_000, "b").map_err(unavailable)?;
                        return Err(StoreError::Conflict);
                    }
                    assert!(k % 10 != 7, "a piece that panics");
                    Ok(k)
                })
                .await
            }));
        }
        for (k, task) in (0_i64..).zip(tasks) {
            let out = task.await.expect("join");
            match k % 10 {
                3 => assert!(matches!(out, Err(StoreError::Conflict)), "{k}: {out:?}"),
                7 => assert!(
                    matches!(out, Err(StoreError::Unavailable(_))),
                    "{k}: {out:?}"
                ),
                _ => assert_eq!(out.expect("written"), k),
            }
        }
        let want: Vec<i64> = (0..200).filter(|k| k % 10 != 3 && k % 10 != 7).collect();
        assert_eq!(keys(&db).await, want);
    }

    /// Pieces without savepoints share groups too: one that fails before
    /// changing anything fails alone; one that fails half done takes down
    /// the pieces run before it in its group (never leaving half of
    /// itself), and the pieces after it commit in a group of their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_without_savepoints_never_leave_half_a_write() {
        let (_dir, db) = db();
        setup(&db).await;
        db.write_single(|c| insert(c, -1, "taken").map_err(unavailable))
            .await
            .expect("seed");
        let mut tasks = Vec::new();
        for k in 0..300_i64 {
            let db = Arc::clone(&db);
            tasks.push(tokio::spawn(async move {
                db.write_single(move |c| {
                    if k % 10 == 3 {
                        // One statement that fails: SQLite undoes it.
                        insert(c, -1, "dup").map_err(|_| StoreError::Conflict)?;
                    }
                    insert(c, k, "a").map_err(unavailable)?;
                    if k % 10 == 7 {
                        // Written, then refused: only the group can undo it.
                        return Err(StoreError::PreconditionFailed);
                    }
                    Ok(k)
                })
                .await
            }));
        }
        let mut acknowledged = vec![-1];
        for (k, task) in (0_i64..).zip(tasks) {
            match (k % 10, task.await.expect("join")) {
                (3, out) => assert!(matches!(out, Err(StoreError::Conflict)), "{k}: {out:?}"),
                (7, out) => assert!(
                    matches!(out, Err(StoreError::PreconditionFailed)),
                    "{k}: {out:?}"
                ),
                (_, Ok(got)) => acknowledged.push(got),
                (_, Err(StoreError::Unavailable(_))) => {} // rolled back with its group
                (_, out) => panic!("{k}: {out:?}"),
            }
        }
        assert_eq!(
            keys(&db).await,
            acknowledged,
            "exactly the acknowledged writes"
        );
    }

    /// A piece alone in its group (no savepoint) that fails leaves nothing
    /// behind, and the writer goes on with the next one.
    #[tokio::test]
    async fn a_lone_failing_piece_is_rolled_back() {
        let (_dir, db) = db();
        setup(&db).await;
        let failed = db
            .write(|c| {
                insert(c, 1, "a").map_err(unavailable)?;
                Err::<(), _>(StoreError::PreconditionFailed)
            })
            .await;
        assert!(matches!(failed, Err(StoreError::PreconditionFailed)));
        db.write(|c| insert(c, 2, "b").map_err(unavailable))
            .await
            .expect("the next write");
        assert_eq!(keys(&db).await, [2]);
    }

    /// A caller told `Ok` reads its write from any other connection.
    #[tokio::test]
    async fn an_acknowledged_write_is_visible_to_readers() {
        let (_dir, db) = db();
        setup(&db).await;
        for k in 0..20_i64 {
            db.write(move |c| insert(c, k, "a").map_err(unavailable))
                .await
                .expect("write");
            assert_eq!(
                keys(&db).await.len(),
                usize::try_from(k + 1).expect("small")
            );
        }
    }
}
