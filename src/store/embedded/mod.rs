//! The embedded store: one SQLite file in WAL mode holding every logical
//! container as rows of `(container, pk, id) → (etag, body, expires_at)`
//! (the tables and their migrations: `schema.rs`).
//!
//! Writes go through one connection on a dedicated thread that commits them
//! in groups (`writer.rs`); point reads run inline on pooled reader
//! connections, queries on the blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

mod rows;
mod schema;
mod sql;
mod writer;

use self::rows::Row;
use self::schema::apply_schema;
use self::sql::{SqlQuery, encode_token};
use self::writer::{Checkpointer, Undo, WRITER_CHECKPOINT_PAGES, Writer};

use super::query::{Query, Scope};
use super::{
    Body, Container, Document, ETag, Page, Store, StoreError, StoreResult, StoredBody,
    StoredDocument, Write, deferred_write_failed,
};
use crate::clock::Clock;

/// Reader connections kept open for reuse. It must cover the blocking
/// threads reading at once under load: a reader that finds the pool empty
/// opens a new connection (file open + pragmas + statement preparation),
/// and with a cap below the concurrency most reads paid that on every call
/// (the bench measured GET by id at 0.15× bare axum with a cap of 8).
const READER_POOL: usize = 64;

/// Bytes the write-ahead log file is truncated to when it restarts.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The writer connection's page cache (KiB). Every delivery is written
/// twice, the second time after its attempt: with a backlog of thousands of
/// deliveries waiting for workers, the pages of a delivery's first write
/// had left SQLite's default 2 MiB cache by its second, and the writer read
/// them back from the file (a quarter of a page read per delivery in a
/// burst of bench/webhooks). 64 MiB holds the pages of tens of thousands of
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

/// Deferred writes ([`Store::write_later`]) that may wait for the writer:
/// past it a caller waits for its own to commit (a few MiB of documents of
/// a few KiB each).
const MAX_WRITES_WAITING: usize = 4096;

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteDb {
    /// Opens (creating if needed) the database file, creating what is missing
    /// and migrating older layouts.
    pub fn open(path: &Path) -> StoreResult<Arc<Self>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let writer = open_connection(path).map_err(unavailable)?;
        apply_schema(&writer).map_err(unavailable)?;
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
    /// without a savepoint of its own (see [`Undo::Nothing`]).
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

/// The embedded document store.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<SqliteDb>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// A store on an open database.
    pub fn new(db: Arc<SqliteDb>, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// The underlying database (shared with the embedded queue).
    pub fn db(&self) -> &Arc<SqliteDb> {
        &self.db
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }
}

fn parse_body(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("stored body: {e}")))
}

/// The condition that hides expired documents (one `?`: now in ms).
pub(crate) const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";

/// A point read of a live document (the condition is [`LIVE`], spelled out
/// so that the hot path formats nothing).
const POINT_READ: &str = "SELECT etag, body FROM documents
     WHERE container = ? AND pk = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)";

#[async_trait]
impl Store for EmbeddedStore {
    async fn read(
        &self,
        container: Container,
        pk: &str,
        id: &str,
    ) -> StoreResult<Option<Document>> {
        self.read_stored(container, pk, id)
            .await?
            .map(|d| {
                let body = match d.body {
                    StoredBody::Text(text) => parse_body(&text)?,
                    StoredBody::Tree(tree) => tree,
                };
                Ok(Document {
                    body,
                    id: d.id,
                    partition_key: d.partition_key,
                    etag: d.etag,
                })
            })
            .transpose()
    }

    async fn read_stored(
        &self,
        container: Container,
        pk: &str,
        id: &str,
    ) -> StoreResult<Option<StoredDocument>> {
        let now = self.now_ms();
        let row = self.db.read_now(|c| {
            c.prepare_cached(POINT_READ)
                .and_then(|mut st| {
                    st.query_row(params![container.name(), pk, id, now], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()
                })
                .map_err(unavailable)
        })?;
        Ok(row.map(|(etag, body)| StoredDocument {
            id: id.to_owned(),
            partition_key: pk.to_owned(),
            etag: ETag::new(etag),
            body: StoredBody::Text(body),
        }))
    }

    async fn create(&self, container: Container, body: Value) -> StoreResult<Document> {
        let now = self.now_ms();
        let (row, doc) = Row::new(container, Body::Tree(body), now)?;
        self.db
            .write_single(move |c| rows::insert(c, &row, now))
            .await?;
        Ok(doc)
    }

    async fn replace(
        &self,
        container: Container,
        body: Value,
        if_match: Option<&ETag>,
    ) -> StoreResult<Document> {
        let now = self.now_ms();
        let (row, doc) = Row::new(container, Body::Tree(body), now)?;
        let expected = if_match.map(|e| e.as_str().to_owned());
        self.db
            .write_single(move |c| rows::update(c, &row, now, expected.as_deref()))
            .await?;
        Ok(doc)
    }

    async fn upsert(&self, container: Container, body: Value) -> StoreResult<Document> {
        let (row, doc) = Row::new(container, Body::Tree(body), self.now_ms())?;
        self.db.write_single(move |c| rows::upsert(c, &row)).await?;
        Ok(doc)
    }

    async fn delete(
        &self,
        container: Container,
        pk: &str,
        id: &str,
        if_match: Option<&ETag>,
    ) -> StoreResult<()> {
        let (pk, id, now) = (pk.to_owned(), id.to_owned(), self.now_ms());
        let expected = if_match.map(|e| e.as_str().to_owned());
        self.db
            .write_single(move |c| rows::remove(c, container, &pk, &id, now, expected.as_deref()))
            .await
    }

    fn transactional(&self) -> bool {
        true
    }

    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<Vec<Option<Document>>> {
        let now = self.now_ms();
        let (planned, docs): (Vec<_>, Vec<_>) = writes
            .into_iter()
            .map(|w| rows::plan(w, now))
            .collect::<StoreResult<Vec<_>>>()?
            .into_iter()
            .unzip();
        // One piece: the writer rolls all of it back if any write fails
        // (a lone write fails, if at all, before it changes anything: it
        // needs no savepoint). The rows come back to be freed here, by the
        // threads that made them: freed on the writer thread, each took the
        // lock of another thread's malloc arena, contending with its
        // allocations.
        let several = planned.len() > 1;
        let apply = move |c: &Connection| {
            planned
                .iter()
                .try_for_each(|p| rows::apply(c, p, now))
                .map(|()| planned)
        };
        let planned = if several {
            self.db.write(apply).await?
        } else {
            self.db.write_single(apply).await?
        };
        drop(planned);
        Ok(docs)
    }

    async fn query(&self, container: Container, query: &Query) -> StoreResult<Page> {
        let sql = SqlQuery::build(container, query, self.now_ms())?;
        let limit = query.max_items as usize;
        self.db
            .read(move |c| {
                let mut st = c.prepare_cached(&sql.text).map_err(unavailable)?;
                let mut rows = st
                    .query(params_from_iter(sql.params.iter()))
                    .map_err(unavailable)?;
                let mut items = Vec::with_capacity(limit);
                let mut last_sort = SqlValue::Null;
                let mut more = false;
                while let Some(r) = rows.next().map_err(unavailable)? {
                    if items.len() == limit {
                        more = true;
                        break;
                    }
                    let body: String = r.get(3).map_err(unavailable)?;
                    last_sort = r.get(4).map_err(unavailable)?;
                    items.push(Document {
                        partition_key: r.get(0).map_err(unavailable)?,
                        id: r.get(1).map_err(unavailable)?,
                        etag: ETag::new(r.get::<_, String>(2).map_err(unavailable)?),
                        body: parse_body(&body)?,
                    });
                }
                let continuation = match (more, items.last()) {
                    (true, Some(last)) => Some(encode_token(
                        sql.fingerprint,
                        &last_sort,
                        &last.partition_key,
                        &last.id,
                    )),
                    _ => None,
                };
                Ok(Page {
                    items,
                    continuation,
                })
            })
            .await
    }

    async fn count(&self, container: Container, query: &Query) -> StoreResult<u64> {
        if query.scope == Scope::CrossPartition {
            return Err(StoreError::Invalid(
                "count is only allowed within one partition".into(),
            ));
        }
        let mut q = query.clone();
        q.continuation = None;
        let sql = SqlQuery::build(container, &q, self.now_ms())?;
        let unlimited = sql
            .text
            .rsplit_once(" LIMIT ")
            .map_or(&*sql.text, |(q, _)| q);
        let text = format!("SELECT COUNT(*) FROM ({unlimited})");
        let params = sql.params;
        self.db
            .read(move |c| {
                c.query_row(&text, params_from_iter(params.iter()), |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(unavailable)
            })
            .await
    }

    async fn discard(&self, container: Container, addresses: Vec<(String, String)>) {
        self.db.write_later(move |c| {
            addresses
                .iter()
                .try_for_each(|(pk, id)| rows::erase(c, container, pk, id))
        });
    }

    async fn write_later(&self, write: Write) {
        let now = self.now_ms();
        let planned = match rows::plan(write, now) {
            Ok((planned, _)) => planned,
            Err(e) => return deferred_write_failed(&e),
        };
        let waiting = self.db.write_later(move |c| {
            if let Err(e) = rows::apply(c, &planned, now) {
                deferred_write_failed(&e);
            }
            Ok(())
        });
        if waiting >= MAX_WRITES_WAITING {
            // The writer is behind: this caller waits for its write to
            // commit, so that deferred writes cannot pile up in memory
            // without bound.
            if let Err(e) = self.db.settled().await {
                deferred_write_failed(&e);
            }
        }
    }

    async fn purge_expired(&self) -> StoreResult<usize> {
        // In slices, so that other writes are never held up for long. The
        // same ordered slice of `expiries` is read twice in one transaction.
        const SLICE: usize = 1000;
        let now = self.now_ms();
        let mut total = 0;
        loop {
            let (docs, hints) = self
                .db
                .write(move |c| {
                    let docs = c
                        .execute_cached(
                            "DELETE FROM documents WHERE expires_at <= ?1 AND (container, pk, id) IN
                             (SELECT container, pk, id FROM expiries WHERE expires_at <= ?1
                              ORDER BY expires_at, container, pk, id LIMIT 1000)",
                            [now],
                        )
                        .map_err(unavailable)?;
                    // A document the slice hints at that lives on (written
                    // again since) gets a hint at its current expiry.
                    c.execute_cached(
                        "INSERT OR IGNORE INTO expiries (expires_at, container, pk, id)
                         SELECT d.expires_at, d.container, d.pk, d.id FROM documents d
                         JOIN (SELECT container, pk, id FROM expiries WHERE expires_at <= ?1
                               ORDER BY expires_at, container, pk, id LIMIT 1000) h
                         ON d.container = h.container AND d.pk = h.pk AND d.id = h.id
                         WHERE d.expires_at > ?1",
                        [now],
                    )
                    .map_err(unavailable)?;
                    let hints = c
                        .execute_cached(
                            "DELETE FROM expiries WHERE (expires_at, container, pk, id) IN
                             (SELECT expires_at, container, pk, id FROM expiries WHERE expires_at <= ?1
                              ORDER BY expires_at, container, pk, id LIMIT 1000)",
                            [now],
                        )
                        .map_err(unavailable)?;
                    Ok((docs, hints))
                })
                .await?;
            total += docs;
            if hints < SLICE {
                return Ok(total);
            }
        }
    }

    async fn provision(&self) -> StoreResult<()> {
        self.db
            .write(|c| apply_schema(c).map_err(unavailable))
            .await
    }

    async fn health(&self) -> StoreResult<()> {
        self.db
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::{EmbeddedStore, SqliteDb, unavailable};
    use crate::clock::ManualClock;
    use crate::store::{Container, Store};

    /// Rewriting a document of a container with a default time to live adds
    /// no expiry hint: the purge, reaching the hint of its first write,
    /// finds it alive and hints it at its current expiry, and purges it
    /// once that has passed.
    #[tokio::test]
    async fn a_rewritten_document_is_purged_at_its_last_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("t.db")).expect("open");
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let store = EmbeddedStore::new(Arc::clone(&db), clock.clone());
        let c = Container::WebhookDeliveries;
        let first = store
            .create(c, json!({"id": "d", "tenantId": "t", "n": 1}))
            .await
            .expect("create");
        clock.advance(chrono::Duration::days(6));
        store
            .replace(
                c,
                json!({"id": "d", "tenantId": "t", "n": 2}),
                Some(&first.etag),
            )
            .await
            .expect("replace");
        let rows = |db: Arc<SqliteDb>| async move {
            db.read(|c| {
                let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
                Ok((
                    count("SELECT COUNT(*) FROM documents").map_err(unavailable)?,
                    count("SELECT COUNT(*) FROM expiries").map_err(unavailable)?,
                ))
            })
            .await
            .expect("count")
        };
        assert_eq!(
            rows(Arc::clone(&db)).await,
            (1, 1),
            "one hint, from the create"
        );

        clock.advance(chrono::Duration::days(2)); // past the first expiry
        assert_eq!(store.purge_expired().await.expect("purge"), 0);
        assert_eq!(rows(Arc::clone(&db)).await, (1, 1), "kept, hinted again");
        assert!(store.read(c, "t", "d").await.expect("read").is_some());

        clock.advance(chrono::Duration::days(6)); // past the rewrite's expiry
        assert_eq!(store.purge_expired().await.expect("purge"), 1);
        assert_eq!(rows(db).await, (0, 0));
    }
}
