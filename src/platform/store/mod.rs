//! The document-store port.
//!
//! It is shaped after Cosmos DB NoSQL so that the production backend is a thin
//! translation: logical containers with one partition-key path each, point
//! operations addressed by `(partition key, id)`, optimistic concurrency with
//! opaque ETags, queries with simple filters and opaque continuation tokens,
//! and per-document TTL. Aggregates exist only within one partition, because
//! the Cosmos SDK refuses cross-partition aggregates.

mod containers;
pub mod cosmos;
pub mod embedded;
mod query;
mod typed;

use async_trait::async_trait;
use serde_json::Value;

pub use containers::Container;
pub use query::{Filter, Op, OrderBy, Query, Scope};
pub use typed::{Entity, StoreExt, as_written, entity};

/// An opaque version tag of one stored document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Wraps a backend's version string (quotes, if any, are kept as given).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw version string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored document with its address and version.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The document id, unique within its partition.
    pub id: String,
    /// The value of the container's partition-key path.
    pub partition_key: String,
    /// The version the backend assigned on the last write.
    pub etag: ETag,
    /// The JSON body as written (system properties removed).
    pub body: Value,
}

/// A body in the form its backend holds it, for typed reads that
/// deserialize straight into an entity: no `Value` tree built from text, no
/// text rendered from a tree.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredBody {
    /// JSON text (the embedded store keeps bodies as text).
    Text(String),
    /// A parsed tree (Cosmos DB's SDK hands one over).
    Tree(Value),
}

/// One stored document with its body as the backend holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    /// The document id, unique within its partition.
    pub id: String,
    /// The value of the container's partition-key path.
    pub partition_key: String,
    /// The version the backend assigned on the last write.
    pub etag: ETag,
    /// The body as written (system properties removed).
    pub body: StoredBody,
}

/// The body of a document a [`Write`] creates or replaces.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A JSON tree.
    Tree(Value),
    /// An entity encoded straight to JSON text, never built as a tree: the
    /// embedded store writes the text as it is (other stores parse it). The
    /// [`Document`] such a write yields has a `null` body: take the entity
    /// with its new ETag ([`as_written`]).
    Text(Encoded),
}

/// An entity's JSON text and its address (see [`Body::Text`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The document id.
    pub id: String,
    /// The partition-key value.
    pub pk: String,
    /// The JSON text (an object without `ttl`: the container's default applies).
    pub text: String,
}

impl Body {
    /// The id and partition key of the document.
    pub fn address(&self, container: Container) -> StoreResult<(String, String)> {
        match self {
            Self::Tree(body) => address_of(container, body),
            Self::Text(e) => Ok((e.id.clone(), e.pk.clone())),
        }
    }

    /// The body as a JSON tree.
    pub fn into_tree(self) -> StoreResult<Value> {
        match self {
            Self::Tree(body) => Ok(body),
            Self::Text(e) => {
                serde_json::from_str(&e.text).map_err(|e| StoreError::Invalid(e.to_string()))
            }
        }
    }
}

/// One write of a unit of work ([`Store::write_all`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// [`Store::create`].
    Create {
        /// Where.
        container: Container,
        /// The new document.
        body: Body,
    },
    /// [`Store::replace`].
    Replace {
        /// Where.
        container: Container,
        /// The new version.
        body: Body,
        /// The version it must replace, if any.
        if_match: Option<ETag>,
    },
    /// [`Store::delete`].
    Delete {
        /// Where.
        container: Container,
        /// Partition key.
        pk: String,
        /// Id.
        id: String,
        /// The version it must delete, if any.
        if_match: Option<ETag>,
    },
}

impl Write {
    /// Applies this write alone, through [`Store::write_all`] (where a
    /// store writes text bodies as they are); a delete yields no document.
    pub async fn apply<S: Store + ?Sized>(self, store: &S) -> StoreResult<Option<Document>> {
        Ok(store.write_all(vec![self]).await?.pop().flatten())
    }

    /// Applies this write through the store's single-document operations
    /// (the default [`Store::write_all`]).
    async fn apply_each<S: Store + ?Sized>(self, store: &S) -> StoreResult<Option<Document>> {
        match self {
            Self::Create { container, body } => {
                store.create(container, body.into_tree()?).await.map(Some)
            }
            Self::Replace {
                container,
                body,
                if_match,
            } => store
                .replace(container, body.into_tree()?, if_match.as_ref())
                .await
                .map(Some),
            Self::Delete {
                container,
                pk,
                id,
                if_match,
            } => store
                .delete(container, &pk, &id, if_match.as_ref())
                .await
                .map(|()| None),
        }
    }
}

/// One page of a query.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The documents of this page, in query order.
    pub items: Vec<Document>,
    /// Present when more documents may follow; pass it back to continue.
    pub continuation: Option<String>,
}

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No live document at that address.
    #[error("document not found")]
    NotFound,
    /// A document with that id already exists in the partition.
    #[error("document already exists")]
    Conflict,
    /// The document changed since the given ETag was read.
    #[error("document was modified concurrently (etag mismatch)")]
    PreconditionFailed,
    /// The backend throttled the request; retry after the given delay.
    #[error("store throttled the request")]
    Throttled {
        /// How long the backend asked us to wait.
        retry_after: std::time::Duration,
    },
    /// A continuation token that this store did not issue, or for another query.
    #[error("invalid continuation token")]
    InvalidContinuation,
    /// The document or query is not acceptable to the store (a bug in the caller).
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// The backend cannot be reached or failed in a way that may pass.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Logs a deferred write ([`Store::write_later`]) that did not happen. One
/// that lost a race (the document changed or went meanwhile) is expected;
/// anything else is not.
pub(crate) fn deferred_write_failed(e: &StoreError) {
    match e {
        StoreError::PreconditionFailed | StoreError::NotFound | StoreError::Conflict => {
            tracing::debug!(error = %e, "a deferred write was overtaken");
        }
        _ => tracing::warn!(error = %e, "a deferred write failed"),
    }
}

/// The result type of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A document store partitioned like Cosmos DB.
///
/// Bodies written through it must carry `id` (string) and the container's
/// partition-key path (string); the store keeps them as given and adds nothing
/// visible. A body's numeric `ttl` (seconds) overrides the container's default
/// time to live; expired documents are invisible to every operation.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one document; `Ok(None)` if absent or expired.
    async fn read(&self, container: Container, pk: &str, id: &str)
    -> StoreResult<Option<Document>>;

    /// [`Store::read`] with the body in the form the backend holds it.
    /// Backends that keep text override it; the default hands over the tree
    /// `read` returns.
    async fn read_stored(
        &self,
        container: Container,
        pk: &str,
        id: &str,
    ) -> StoreResult<Option<StoredDocument>> {
        Ok(self
            .read(container, pk, id)
            .await?
            .map(|doc| StoredDocument {
                id: doc.id,
                partition_key: doc.partition_key,
                etag: doc.etag,
                body: StoredBody::Tree(doc.body),
            }))
    }

    /// Creates a document; [`StoreError::Conflict`] if its id is taken in the partition.
    async fn create(&self, container: Container, body: Value) -> StoreResult<Document>;

    /// Replaces an existing document, only if its ETag still matches when given.
    async fn replace(
        &self,
        container: Container,
        body: Value,
        if_match: Option<&ETag>,
    ) -> StoreResult<Document>;

    /// Creates or replaces a document unconditionally.
    async fn upsert(&self, container: Container, body: Value) -> StoreResult<Document>;

    /// Deletes a document, only if its ETag still matches when given.
    async fn delete(
        &self,
        container: Container,
        pk: &str,
        id: &str,
        if_match: Option<&ETag>,
    ) -> StoreResult<()>;

    /// Deletes documents nobody needs any more (`(partition key, id)` pairs
    /// of one container), as clean-up: failures are logged, never returned,
    /// so a document left behind must be harmless. The embedded store folds
    /// the deletes into a later commit and returns at once; others delete
    /// them one by one before returning.
    async fn discard(&self, container: Container, addresses: Vec<(String, String)>) {
        for (pk, id) in addresses {
            match self.delete(container, &pk, &id, None).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => {
                    tracing::warn!(container = container.name(), id = %id, error = %e, "could not delete a discarded document");
                }
            }
        }
    }

    /// Applies `write` as an afterthought: for a record whose loss is
    /// harmless because what it records is re-derived should it never land
    /// (a delivery left pending is sent again by the re-drive). Failures are
    /// logged, never returned; one that lost a race (If-Match, gone) is
    /// expected. It lands no later than any write the caller makes after
    /// this returns. The embedded store folds it into a later commit and
    /// returns at once, unless many such writes wait already; others write
    /// it before returning.
    async fn write_later(&self, write: Write) {
        if let Err(e) = write.apply(self).await {
            deferred_write_failed(&e);
        }
    }

    /// Whether [`Store::write_all`] is atomic here (a transaction across
    /// containers and partitions). Cosmos DB's transactional batches stay
    /// within one partition of one container, so it is not.
    fn transactional(&self) -> bool {
        false
    }

    /// Applies `writes` in order and returns what each produced. Atomic —
    /// all or none — when [`Store::transactional`]; otherwise the writes run
    /// one by one and stop at the first failure, leaving the earlier ones
    /// (callers that need atomicity must tolerate that, as the outbox does).
    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<Vec<Option<Document>>> {
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            out.push(w.apply_each(self).await?);
        }
        Ok(out)
    }

    /// Runs a query and returns one page of at most `query.max_items` documents.
    async fn query(&self, container: Container, query: &Query) -> StoreResult<Page>;

    /// Counts the documents matching a query within one partition.
    ///
    /// Cross-partition scopes are refused with [`StoreError::Invalid`].
    async fn count(&self, container: Container, query: &Query) -> StoreResult<u64>;

    /// Physically deletes expired documents (already invisible to every
    /// operation); returns how many. Backends whose service expires
    /// documents itself (Cosmos DB's TTL) do nothing.
    async fn purge_expired(&self) -> StoreResult<usize> {
        Ok(0)
    }

    /// Creates the database and containers if they are missing (idempotent).
    async fn provision(&self) -> StoreResult<()>;

    /// Checks that the backend answers.
    async fn health(&self) -> StoreResult<()>;
}

/// Extracts `id` and the partition key of `container` from a body.
pub fn address_of(container: Container, body: &Value) -> StoreResult<(String, String)> {
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StoreError::Invalid("document has no string `id`".into()))?;
    let path = container.partition_key_field();
    let pk = body.get(path).and_then(Value::as_str).ok_or_else(|| {
        StoreError::Invalid(format!(
            "document has no string partition key `{path}` for container {}",
            container.name()
        ))
    })?;
    Ok((id.to_owned(), pk.to_owned()))
}

/// Reads the per-document TTL (`ttl` in seconds), if any.
pub fn ttl_of(body: &Value) -> Option<i64> {
    body.get("ttl").and_then(Value::as_i64)
}

/// How a service call reports a store failure (a tenant sees no cause).
impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("resource"),
            StoreError::Conflict => Self::Conflict("a resource with that id already exists".into()),
            StoreError::PreconditionFailed => Self::PreconditionFailed,
            StoreError::InvalidContinuation => Self::invalid(
                "/continuationToken",
                "is not a continuation token of this list",
            ),
            StoreError::Throttled { retry_after } => Self::Unavailable {
                detail: "the store is busy; retry shortly".into(),
                retry_after: Some(retry_after),
            },
            StoreError::Unavailable(cause) => {
                tracing::error!(error.cause = %cause, "store unavailable");
                Self::Unavailable {
                    detail: "the store is unavailable".into(),
                    retry_after: None,
                }
            }
            StoreError::Invalid(cause) => {
                Self::Internal(anyhow::anyhow!("store refused a request: {cause}"))
            }
        }
    }
}

impl From<StoreError> for crate::jobs::JobError {
    fn from(e: StoreError) -> Self {
        crate::error::Error::from(e).into()
    }
}
