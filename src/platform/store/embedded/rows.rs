//! The row-level writes of the embedded store, as plain functions on the
//! writer connection: each store operation runs one of them as its own
//! piece, and [`Store::write_all`](crate::platform::store::Store::write_all) runs
//! several in one piece (one transaction).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{ExecuteCached as _, unavailable};
use crate::platform::store::{
    Body, Container, Document, ETag, StoreError, StoreResult, Write, address_of, ttl_of,
};

/// A document ready to be written: its address, new ETag, text and expiry.
pub(super) struct Row {
    container: Container,
    /// `container.name()`, kept so that [`Row::values`] can lend it.
    name: &'static str,
    pk: String,
    id: String,
    etag: String,
    text: String,
    expires: Option<i64>,
}

impl Row {
    /// Prepares `body` for `container` at time `now_ms`; returns the row and
    /// the document the write produces.
    pub(super) fn new(
        container: Container,
        body: Body,
        now_ms: i64,
    ) -> StoreResult<(Self, Document)> {
        let (id, pk, text, own_ttl, body) = match body {
            Body::Tree(body) => {
                let (id, pk) = address_of(container, &body)?;
                let text =
                    serde_json::to_string(&body).map_err(|e| StoreError::Invalid(e.to_string()))?;
                (id, pk, text, ttl_of(&body), body)
            }
            Body::Text(e) => (e.id, e.pk, e.text, None, Value::Null),
        };
        let ttl = match own_ttl {
            Some(-1) => None,
            Some(t) => Some(t),
            None => container.default_ttl_seconds().map(i64::from),
        };
        let expires = ttl.map(|t| now_ms.saturating_add(t.saturating_mul(1000)));
        let etag = uuid::Uuid::new_v4().simple().to_string();
        let doc = Document {
            id: id.clone(),
            partition_key: pk.clone(),
            etag: ETag::new(etag.clone()),
            body,
        };
        Ok((
            Self {
                container,
                name: container.name(),
                pk,
                id,
                etag,
                text,
                expires,
            },
            doc,
        ))
    }
}

impl Row {
    /// The six values of an insert or update, in column order
    /// (container, pk, id, etag, body, expires_at).
    fn values(&self) -> [&dyn rusqlite::ToSql; 6] {
        [
            &self.name,
            &self.pk,
            &self.id,
            &self.etag,
            &self.text,
            &self.expires,
        ]
    }
}

/// One planned write of a unit of work.
pub(super) enum Planned {
    Create(Row),
    Replace(Row, Option<String>),
    Delete {
        container: Container,
        pk: String,
        id: String,
        expected: Option<String>,
    },
}

/// Turns a [`Write`] into a planned row write and the document it yields.
pub(super) fn plan(write: Write, now_ms: i64) -> StoreResult<(Planned, Option<Document>)> {
    Ok(match write {
        Write::Create { container, body } => {
            let (row, doc) = Row::new(container, body, now_ms)?;
            (Planned::Create(row), Some(doc))
        }
        Write::Replace {
            container,
            body,
            if_match,
        } => {
            let (row, doc) = Row::new(container, body, now_ms)?;
            let expected = if_match.map(|e| e.as_str().to_owned());
            (Planned::Replace(row, expected), Some(doc))
        }
        Write::Delete {
            container,
            pk,
            id,
            if_match,
        } => (
            Planned::Delete {
                container,
                pk,
                id,
                expected: if_match.map(|e| e.as_str().to_owned()),
            },
            None,
        ),
    })
}

/// Applies one planned write.
pub(super) fn apply(c: &Connection, planned: &Planned, now_ms: i64) -> StoreResult<()> {
    match planned {
        Planned::Create(row) => insert(c, row, now_ms),
        Planned::Replace(row, expected) => update(c, row, now_ms, expected.as_deref()),
        Planned::Delete {
            container,
            pk,
            id,
            expected,
        } => remove(c, *container, pk, id, now_ms, expected.as_deref()),
    }
}

/// Inserts a new document; [`StoreError::Conflict`] if its id is live.
pub(super) fn insert(c: &Connection, row: &Row, now_ms: i64) -> StoreResult<()> {
    // An expired document no longer holds its id: it is overwritten in the
    // same statement (one lookup of the address instead of two).
    let [container, pk, id, etag, text, expires] = row.values();
    let inserted = c
        .execute_cached(
            "INSERT INTO documents (container, pk, id, etag, body, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (container, pk, id) DO UPDATE
             SET etag = excluded.etag, body = excluded.body, expires_at = excluded.expires_at
             WHERE documents.expires_at <= ?7",
            params![container, pk, id, etag, text, expires, now_ms],
        )
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::Conflict);
    }
    note_expiry(c, row)
}

/// Records when a written document expires (for the purge), if it does.
fn note_expiry(c: &Connection, row: &Row) -> StoreResult<()> {
    let Some(at) = row.expires else {
        return Ok(());
    };
    c.execute_cached(
        "INSERT OR IGNORE INTO expiries (expires_at, container, pk, id) VALUES (?1, ?2, ?3, ?4)",
        params![at, row.name, row.pk, row.id],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Replaces a live document, if `expected` (when given) is still its ETag.
pub(super) fn update(
    c: &Connection,
    row: &Row,
    now_ms: i64,
    expected: Option<&str>,
) -> StoreResult<()> {
    // One statement when the document is live and at the expected version
    // (the usual case); only a write that changed nothing looks for why.
    let [container, pk, id, etag, text, expires] = row.values();
    let changed = c
        .execute_cached(
            "UPDATE documents SET etag = ?4, body = ?5, expires_at = ?6
             WHERE container = ?1 AND pk = ?2 AND id = ?3
             AND (expires_at IS NULL OR expires_at > ?7) AND (?8 IS NULL OR etag = ?8)",
            params![container, pk, id, etag, text, expires, now_ms, expected],
        )
        .map_err(unavailable)?;
    if changed == 0 {
        check_version(c, row.container, &row.pk, &row.id, now_ms, expected)?;
        return Err(StoreError::PreconditionFailed);
    }
    // In a container with a default time to live the document got its hint
    // when it was created, and a later write only moves its expiry on: the
    // purge, reaching the old hint, finds it alive and hints it again.
    if row.container.default_ttl_seconds().is_some() {
        return Ok(());
    }
    note_expiry(c, row)
}

/// Creates or replaces a document unconditionally.
pub(super) fn upsert(c: &Connection, row: &Row) -> StoreResult<()> {
    c.execute_cached(
        "INSERT INTO documents (container, pk, id, etag, body, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (container, pk, id) DO UPDATE
         SET etag = excluded.etag, body = excluded.body, expires_at = excluded.expires_at",
        row.values(),
    )
    .map_err(unavailable)?;
    note_expiry(c, row)
}

/// Deletes a live document, if `expected` (when given) is still its ETag.
pub(super) fn remove(
    c: &Connection,
    container: Container,
    pk: &str,
    id: &str,
    now_ms: i64,
    expected: Option<&str>,
) -> StoreResult<()> {
    check_version(c, container, pk, id, now_ms, expected)?;
    erase(c, container, pk, id).map_err(unavailable)
}

/// Deletes whatever document is at an address, live or not (the row-level
/// delete of [`remove`] and of discarded documents).
pub(super) fn erase(
    c: &Connection,
    container: Container,
    pk: &str,
    id: &str,
) -> rusqlite::Result<()> {
    c.execute_cached(
        "DELETE FROM documents WHERE container = ?1 AND pk = ?2 AND id = ?3",
        params![container.name(), pk, id],
    )
    .map(|_| ())
}

/// Fails unless a live document exists at the address and, when `expected`
/// is given, still has that ETag (the If-Match check of replace and delete).
fn check_version(
    conn: &Connection,
    container: Container,
    pk: &str,
    id: &str,
    now_ms: i64,
    expected: Option<&str>,
) -> StoreResult<()> {
    let current: String = conn
        .prepare_cached(
            "SELECT etag FROM documents WHERE container = ? AND pk = ? AND id = ?
             AND (expires_at IS NULL OR expires_at > ?)",
        )
        .and_then(|mut st| st.query_row(params![container.name(), pk, id, now_ms], |r| r.get(0)))
        .optional()
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)?;
    match expected {
        Some(e) if e != current => Err(StoreError::PreconditionFailed),
        _ => Ok(()),
    }
}
