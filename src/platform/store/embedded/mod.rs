//! The embedded store: one SQLite file in WAL mode holding every logical
//! container as rows of `(container, pk, id) → (etag, body, expires_at)`
//! (the tables and their migrations: `schema.rs`).
//!
//! Writes go through one connection on a dedicated thread that commits them
//! in groups (`writer.rs`); point reads run inline on pooled reader
//! connections, queries on the blocking pool (the database handle that
//! holds them: `db.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

mod db;
mod rows;
mod schema;
mod sql;
mod writer;

pub(crate) use self::db::ExecuteCached;
pub use self::db::SqliteDb;

use self::rows::Row;
use self::schema::apply_schema;
use self::sql::{SqlQuery, encode_token};

use super::query::{Query, Scope};
use super::{
    Body, Container, Document, ETag, Page, Store, StoreError, StoreResult, StoredBody,
    StoredDocument, Write, deferred_write_failed,
};
use crate::clock::Clock;

/// Deferred writes ([`Store::write_later`]) that may wait for the writer:
/// past it a caller waits for its own to commit (a few MiB of documents of
/// a few KiB each).
const MAX_WRITES_WAITING: usize = 4096;

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
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
    use crate::platform::store::{Container, Store};

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
