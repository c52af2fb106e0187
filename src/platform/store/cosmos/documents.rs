//! How documents look in Cosmos DB and to the port: the system fields
//! Cosmos adds (removed from what callers see), the expiry field this store
//! adds, and ETags in Cosmos's quoted form.

use azure_data_cosmos::options::{ItemWriteOptions, Precondition};
use serde_json::Value;

use super::super::{Container, Document, ETag, StoreError, StoreResult, address_of};

/// The helper field holding a document's expiry (epoch milliseconds).
pub(crate) const EXPIRES_FIELD: &str = "_castielExpiresAt";

/// The expiry written for documents that never expire (year 9999).
pub(super) const NEVER_MS: i64 = 253_402_300_799_000;

/// Properties Cosmos (or this store) adds to every stored document.
const SYSTEM_FIELDS: [&str; 6] = [
    "_rid",
    "_self",
    "_etag",
    "_ts",
    "_attachments",
    EXPIRES_FIELD,
];

/// A read document before it is turned into a [`Document`].
pub(super) struct Raw {
    pub(super) etag: ETag,
    pub(super) body: Value,
    pub(super) expires_ms: i64,
}

pub(super) fn unquote(etag: &str) -> ETag {
    ETag::new(etag.trim_matches('"'))
}

pub(super) fn if_match(etag: &ETag) -> ItemWriteOptions {
    ItemWriteOptions::default()
        .with_precondition(Precondition::if_match(format!("\"{}\"", etag.as_str())))
}

/// Splits a stored body into the port's view (system fields removed).
pub(super) fn from_stored(mut body: Value) -> StoreResult<Raw> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| StoreError::Invalid("stored document is not a JSON object".into()))?;
    let etag = obj
        .get("_etag")
        .and_then(Value::as_str)
        .map(unquote)
        .unwrap_or_else(|| ETag::new(""));
    let expires_ms = obj
        .get(EXPIRES_FIELD)
        .and_then(Value::as_i64)
        .unwrap_or(NEVER_MS);
    for f in SYSTEM_FIELDS {
        obj.remove(f);
    }
    Ok(Raw {
        etag,
        body,
        expires_ms,
    })
}

pub(super) fn document(container: Container, raw: Raw) -> StoreResult<Document> {
    let (id, partition_key) = address_of(container, &raw.body)?;
    Ok(Document {
        id,
        partition_key,
        etag: raw.etag,
        body: raw.body,
    })
}
