//! Typed access on top of [`Store`]: entities (de)serialize themselves, carry
//! their ETag in an `etag` field that is never stored, and updates are
//! read → replace(If-Match) loops that work the same on every backend.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    Body, Container, Document, ETag, Encoded, Query, Store, StoreError, StoreResult, StoredBody,
    StoredDocument, Write,
};

/// A document type kept in one container.
pub trait Entity: Serialize + DeserializeOwned + Send + Sync {
    /// The container that holds it.
    const CONTAINER: Container;
    /// Sets the version read from the store.
    fn set_etag(&mut self, etag: &ETag);
    /// Its id and partition key when [`Write::insert`] and [`Write::put`]
    /// may encode it straight to JSON text ([`Body::Text`]), which needs
    /// its serialization to hold no `etag` (and no `ttl`). `None`, the
    /// default: it is written as a JSON tree.
    fn text_address(&self) -> Option<(String, String)> {
        None
    }
}

/// The buffer an entity's text starts with (a delivery with one attempt
/// takes about 1.5 KiB).
const TEXT_CAPACITY: usize = 2048;

/// The body a write of `entity` carries: its text when the entity allows
/// (see [`Entity::text_address`]), else its tree.
fn to_write_body<T: Entity>(entity: &T) -> StoreResult<Body> {
    let Some((id, pk)) = entity.text_address() else {
        return to_body(entity).map(Body::Tree);
    };
    // Sized for a typical document at once: grown step by step from
    // nothing, the buffer was reallocated several times per write.
    let mut buf = Vec::with_capacity(TEXT_CAPACITY);
    serde_json::to_writer(&mut buf, entity)
        .map_err(|e| StoreError::Invalid(format!("serialize {}: {e}", T::CONTAINER.name())))?;
    let text = String::from_utf8(buf).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(Body::Text(Encoded { id, pk, text }))
}

/// How many times [`Store::update`] re-reads after losing a race.
const UPDATE_ATTEMPTS: usize = 16;

fn to_body<T: Entity>(entity: &T) -> StoreResult<Value> {
    let mut body = serde_json::to_value(entity)
        .map_err(|e| StoreError::Invalid(format!("serialize {}: {e}", T::CONTAINER.name())))?;
    if let Some(obj) = body.as_object_mut() {
        obj.remove("etag");
    }
    Ok(body)
}

fn from_doc<T: Entity>(doc: Document) -> StoreResult<T> {
    let parsed = serde_json::from_value(doc.body);
    with_etag(parsed, &doc.id, &doc.etag)
}

fn from_stored<T: Entity>(doc: StoredDocument) -> StoreResult<T> {
    let parsed = match doc.body {
        StoredBody::Text(text) => serde_json::from_str(&text),
        StoredBody::Tree(tree) => serde_json::from_value(tree),
    };
    with_etag(parsed, &doc.id, &doc.etag)
}

fn with_etag<T: Entity>(parsed: serde_json::Result<T>, id: &str, etag: &ETag) -> StoreResult<T> {
    let mut entity = parsed.map_err(|e| {
        StoreError::Invalid(format!(
            "stored {} {id} does not parse: {e}",
            T::CONTAINER.name()
        ))
    })?;
    entity.set_etag(etag);
    Ok(entity)
}

/// The entity a write produced (with its new ETag).
pub fn entity<T: Entity>(doc: Document) -> StoreResult<T> {
    from_doc(doc)
}

/// The entity a write of `entity` produced: the same value with the new
/// document's ETag (its body is what was written, so it is not parsed back).
pub fn as_written<T: Entity>(mut entity: T, doc: &Document) -> T {
    entity.set_etag(&doc.etag);
    entity
}

impl Write {
    /// Creates an entity (the document it yields may have no body: take
    /// the entity [`as_written`]).
    pub fn insert<T: Entity>(entity: &T) -> StoreResult<Self> {
        Ok(Self::Create {
            container: T::CONTAINER,
            body: to_write_body(entity)?,
        })
    }

    /// Replaces an entity, if `if_match` (when given) is still its version
    /// (the document it yields may have no body: take the entity
    /// [`as_written`]).
    pub fn put<T: Entity>(entity: &T, if_match: Option<&ETag>) -> StoreResult<Self> {
        Ok(Self::Replace {
            container: T::CONTAINER,
            body: to_write_body(entity)?,
            if_match: if_match.cloned(),
        })
    }

    /// Deletes an entity, if `if_match` (when given) is still its version.
    pub fn remove<T: Entity>(pk: &str, id: &str, if_match: Option<&ETag>) -> Self {
        Self::Delete {
            container: T::CONTAINER,
            pk: pk.to_owned(),
            id: id.to_owned(),
            if_match: if_match.cloned(),
        }
    }
}

/// Marker so that `StoreExt` is importable where the methods are used.
pub trait StoreExt {}
impl StoreExt for dyn Store {}

impl dyn Store {
    /// Reads an entity; `None` if absent.
    pub async fn get<T: Entity>(&self, pk: &str, id: &str) -> StoreResult<Option<T>> {
        self.read_stored(T::CONTAINER, pk, id)
            .await?
            .map(from_stored)
            .transpose()
    }

    /// Creates an entity and returns it with its ETag.
    pub async fn insert<T: Entity>(&self, entity: &T) -> StoreResult<T> {
        from_doc(self.create(T::CONTAINER, to_body(entity)?).await?)
    }

    /// Replaces an entity, if `if_match` (when given) is still its version.
    pub async fn put<T: Entity>(&self, entity: &T, if_match: Option<&ETag>) -> StoreResult<T> {
        from_doc(
            self.replace(T::CONTAINER, to_body(entity)?, if_match)
                .await?,
        )
    }

    /// Creates or replaces an entity.
    pub async fn save<T: Entity>(&self, entity: &T) -> StoreResult<T> {
        from_doc(self.upsert(T::CONTAINER, to_body(entity)?).await?)
    }

    /// Deletes an entity (absent is an error: [`StoreError::NotFound`]).
    pub async fn remove<T: Entity>(
        &self,
        pk: &str,
        id: &str,
        if_match: Option<&ETag>,
    ) -> StoreResult<()> {
        self.delete(T::CONTAINER, pk, id, if_match).await
    }

    /// One page of entities.
    pub async fn page<T: Entity>(&self, query: &Query) -> StoreResult<(Vec<T>, Option<String>)> {
        let page = self.query(T::CONTAINER, query).await?;
        let items = page
            .items
            .into_iter()
            .map(from_doc)
            .collect::<StoreResult<Vec<T>>>()?;
        Ok((items, page.continuation))
    }

    /// Every entity matching the query, reading at most `max_pages` pages.
    pub async fn all<T: Entity>(&self, query: Query, max_pages: usize) -> StoreResult<Vec<T>> {
        let mut query = query;
        let mut out = Vec::new();
        for _ in 0..max_pages {
            let (items, next) = self.page::<T>(&query).await?;
            out.extend(items);
            match next {
                Some(token) => query.continuation = Some(token),
                None => break,
            }
        }
        Ok(out)
    }

    /// Read → change → replace(If-Match), re-reading when another writer won.
    ///
    /// `change` may refuse by returning an error, which is passed through
    /// unchanged (nothing is written). An absent entity is
    /// [`StoreError::NotFound`].
    pub async fn update<T, E, F>(&self, pk: &str, id: &str, mut change: F) -> Result<T, E>
    where
        T: Entity,
        E: From<StoreError>,
        F: FnMut(&mut T) -> Result<(), E> + Send,
    {
        for _ in 0..UPDATE_ATTEMPTS {
            let doc = self
                .read(T::CONTAINER, pk, id)
                .await?
                .ok_or(StoreError::NotFound)?;
            let etag = doc.etag.clone();
            let mut entity: T = from_doc(doc)?;
            change(&mut entity)?;
            match self.put(&entity, Some(&etag)).await {
                Ok(saved) => return Ok(saved),
                Err(StoreError::PreconditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::PreconditionFailed.into())
    }
}
