//! The database handle of the embedded store: one SQLite file in WAL mode,
//! its writer thread (`writer.rs`), a checkpointer and a pool of reader
//! connections. The job queue keeps its tables in the same file.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use super::schema::apply_schema;
use super::unavailable;
use super::writer::{Checkpointer, Undo, WRITER_CHECKPOINT_PAGES, Writer};
use crate::config::SqliteSynchronous;
use crate::platform::store::StoreResult;

/// Reader connections kept open for reuse. It must cover the blocking
/// threads reading at once under load: a reader that finds the pool empty
/// opens a new connection (file open + pragmas + statement preparation),
/// and with a cap below the concurrency most reads would pay that.
const READER_POOL: usize = 64;

/// Bytes the write-ahead log file is truncated to when it restarts.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The writer connection's page cache (KiB). Every delivery is written
/// twice, the second time after its attempt: with a backlog of thousands of
/// deliveries waiting for workers, the pages of a delivery's first write
/// had left SQLite's default 2 MiB cache by its second, and the writer read
/// them back from the file. 64 MiB holds the pages of tens of thousands of
/// deliveries; SQLite takes the memory only as it is used.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// A shared SQLite database: one writer connection and a pool of readers.
///
/// Other embedded components (the job queue) keep their tables in the same file.
pub struct SqliteDb {
    path: std::path::PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    _checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// `execute` through the connection's statement cache: the hot writes run
/// thousands of times a second, and parsing their SQL each time showed up as
/// the largest SQLite cost in the profile.
pub(crate) trait ExecuteCached {
    /// Prepares (once) and runs a statement; returns the changed row count.
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl ExecuteCached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// Prepared statements kept per connection (the default of 16 is smaller
/// than the set of hot statements: queries differ by filter and order).
const STATEMENT_CACHE: usize = 128;

impl SqliteDb {
    /// Opens (creating if needed) the database file, creating what is missing
    /// and migrating older layouts.
    pub fn open(path: &Path) -> StoreResult<Arc<Self>> {
        Self::open_with(path, SqliteSynchronous::default())
    }

    /// [`SqliteDb::open`] with the writer's commits made as durable as
    /// `synchronous` says (`SQLITE_SYNCHRONOUS`).
    pub fn open_with(path: &Path, synchronous: SqliteSynchronous) -> StoreResult<Arc<Self>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let writer = open_connection(path).map_err(unavailable)?;
        apply_schema(&writer).map_err(unavailable)?;
        writer
            .pragma_update(None, "synchronous", synchronous.pragma())
            .map_err(unavailable)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(unavailable)?;
        // When the log restarts after a burst, give the disk space back.
        writer
            .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(unavailable)?;
        // Negative: KiB, not pages.
        writer
            .pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(unavailable)?;
        let checkpoints = open_connection(path).map_err(unavailable)?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            writer: Writer::spawn(writer).map_err(unavailable)?,
            readers: Mutex::new(Vec::new()),
            _checkpointer: Checkpointer::spawn(checkpoints).map_err(unavailable)?,
        }))
    }

    /// Runs `f` on the writer connection, atomically: it is committed with
    /// other queued writes, or rolled back alone if it fails. Resolves once
    /// committed.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.submit(Undo::Savepoint, f).await
    }

    /// [`SqliteDb::write`] for `f` that fails, if at all, before it changes
    /// a row: one statement, or checks before its one write. It runs
    /// without a savepoint of its own (see `writer::Undo::Nothing`).
    pub async fn write_single<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.submit(Undo::Nothing, f).await
    }

    /// Queues `f` to run on the writer connection in a later commit, without
    /// waiting for it: for clean-up of what is already done (confirmed outbox
    /// entries, finished jobs). Such writes share one piece per group; one
    /// that fails is logged and skipped, and all are lost if the process dies
    /// first, so `f` must be a write whose omission is harmless. Returns how
    /// many such writes wait for the writer, this one included.
    pub fn write_later<F>(&self, f: F) -> usize
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        self.writer.later(f)
    }

    /// Resolves once every write queued before it is committed (deferred
    /// ones included: the writer runs its queue in order).
    pub async fn settled(&self) -> StoreResult<()> {
        self.writer.submit(Undo::Nothing, |_| Ok(())).await
    }

    /// Runs `f` on a pooled reader connection on the blocking pool.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || db.read_now(f))
            .await
            .map_err(unavailable)?
    }

    /// Runs `f` on a pooled reader connection on the calling thread.
    ///
    /// Only for work bounded to microseconds (a primary-key lookup): in WAL
    /// mode readers never wait for the writer, and skipping the hop to the
    /// blocking pool is most of the cost of a point read.
    pub fn read_now<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T>,
    {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.path).map_err(unavailable)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        out
    }
}
