//! The embedded database's schema, and the migrations of databases made by
//! earlier builds (applied when the database is opened).

use rusqlite::Connection;

/// The columns of the documents table (shared by [`SCHEMA`] and the
/// migration that builds the table anew).
macro_rules! document_columns {
    () => {
        "
    rid        INTEGER PRIMARY KEY,
    container  TEXT NOT NULL,
    pk         TEXT NOT NULL,
    id         TEXT NOT NULL,
    etag       TEXT NOT NULL,
    body       TEXT NOT NULL,
    expires_at INTEGER,
    UNIQUE (container, pk, id)
"
    };
}

const SCHEMA: &str = concat!(
    "
-- Bodies live in a rowid table, in the order they were written, and the
-- address in a small unique index beside it. Keyed by address itself
-- (WITHOUT ROWID), every new document's ~1 KiB body landed at a random
-- place of the tree, splitting full leaves and dirtying a page of its own
-- in every commit; appended by rowid, the bodies written by one commit
-- share their pages, and only the index entries (~100 bytes) are
-- scattered. Measured on the events bench's create burst: 38% fewer WAL
-- page writes, 15% less CPU.
CREATE TABLE IF NOT EXISTS documents (",
    document_columns!(),
    ");
-- When documents expire, for the purge only: one row per (expiry, address)
-- a write gave a document. An index on documents.expires_at held an entry
-- for every document, NULL for those that never expire, so every insert and
-- delete of an integration or outbox entry also changed a leaf of that index
-- at a random place (39% of the WAL frames of a create). Rows here are few
-- and appended in time order; a row left behind by a later write of the
-- same document is harmless (the purge checks the document's own expiry).
CREATE TABLE IF NOT EXISTS expiries (
    expires_at INTEGER NOT NULL,
    container  TEXT NOT NULL,
    pk         TEXT NOT NULL,
    id         TEXT NOT NULL,
    PRIMARY KEY (expires_at, container, pk, id)
) WITHOUT ROWID;
DROP INDEX IF EXISTS documents_expiry;
"
);

/// Moves a database whose documents were keyed by address (`WITHOUT
/// ROWID`) to the rowid layout of [`SCHEMA`], in one transaction.
const MIGRATE_TO_ROWID: &str = concat!(
    "
BEGIN;
CREATE TABLE documents_by_rowid (",
    document_columns!(),
    ");
INSERT INTO documents_by_rowid (container, pk, id, etag, body, expires_at)
    SELECT container, pk, id, etag, body, expires_at FROM documents;
DROP TABLE documents;
ALTER TABLE documents_by_rowid RENAME TO documents;
COMMIT;
"
);

/// Moves a database made before the `expiries` table onto it (once: the
/// old index is dropped in the same transaction).
const MIGRATE_EXPIRY_INDEX: &str = "
BEGIN;
INSERT OR IGNORE INTO expiries (expires_at, container, pk, id)
    SELECT expires_at, container, pk, id FROM documents WHERE expires_at IS NOT NULL;
DROP INDEX documents_expires_at;
COMMIT;
";

/// Creates what is missing and migrates older layouts (at every open).
pub(super) fn apply_schema(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(SCHEMA)?;
    let old_index: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'documents_expires_at')",
        [],
        |r| r.get(0),
    )?;
    if old_index {
        c.execute_batch(MIGRATE_EXPIRY_INDEX)?;
    }
    let keyed_by_address: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'documents'
           AND sql LIKE '%WITHOUT ROWID%')",
        [],
        |r| r.get(0),
    )?;
    if keyed_by_address {
        c.execute_batch(MIGRATE_TO_ROWID)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::{Connection, params};

    use super::super::{EmbeddedStore, SqliteDb, unavailable};
    use crate::clock::SystemClock;
    use crate::platform::store::{Container, Store};

    /// A database made before the `expiries` table and the rowid layout:
    /// its documents move over, the expiring ones are still purged, the
    /// others kept, and the old index is gone.
    #[tokio::test]
    async fn databases_in_older_layouts_are_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        let now = chrono::Utc::now().timestamp_millis();
        {
            let c = Connection::open(&path).expect("open");
            c.execute_batch(
                "CREATE TABLE documents (container TEXT NOT NULL, pk TEXT NOT NULL,
                   id TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL, expires_at INTEGER,
                   PRIMARY KEY (container, pk, id)) WITHOUT ROWID;
                 CREATE INDEX documents_expires_at ON documents (expires_at);",
            )
            .expect("old schema");
            for (id, expires) in [
                ("gone", Some(now - 1000)),
                ("kept", None),
                ("later", Some(now + 60_000)),
            ] {
                c.execute(
                    "INSERT INTO documents VALUES ('integration_webhook_deliveries', 't', ?1, 'e', '{}', ?2)",
                    params![id, expires],
                )
                .expect("insert");
            }
        }
        let db = SqliteDb::open(&path).expect("migrated");
        let store = EmbeddedStore::new(Arc::clone(&db), Arc::new(SystemClock));
        assert_eq!(store.purge_expired().await.expect("purge"), 1);
        let (ids, old_layout): (Vec<String>, bool) = db
            .read(|c| {
                let mut st = c.prepare("SELECT id FROM documents ORDER BY id").map_err(unavailable)?;
                let ids = st
                    .query_map([], |r| r.get(0))
                    .and_then(Iterator::collect)
                    .map_err(unavailable)?;
                let old = c
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'documents_expires_at'
                           OR (name = 'documents' AND sql LIKE '%WITHOUT ROWID%'))",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                Ok((ids, old))
            })
            .await
            .expect("read");
        assert_eq!(ids, ["kept", "later"]);
        assert!(!old_layout);
        // The moved documents are readable and writable at their addresses.
        let kept = store
            .read(Container::WebhookDeliveries, "t", "kept")
            .await
            .expect("read");
        assert!(kept.is_some());
    }
}
