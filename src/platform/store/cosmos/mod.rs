//! The production store: Azure Cosmos DB NoSQL through `azure_data_cosmos`.
//!
//! Each [`Container`] is a Cosmos container with its own partition-key path
//! and default TTL. The Cosmos requests behind each operation (for RU cost):
//!
//! | operation | Cosmos requests |
//! |---|---|
//! | `read` | one point read (`GET …/docs/{id}`, partition key header) |
//! | `create` | one create; only on 409, a point read and, if the old document expired, a replace with If-Match |
//! | `replace` with ETag | one replace with `If-Match` |
//! | `replace` without ETag | a point read, then a replace with `If-Match` (re-read on 412) |
//! | `upsert` | one upsert |
//! | `delete` with ETag | one delete with `If-Match` |
//! | `delete` without ETag | a point read, then a delete with `If-Match` |
//! | `query`, one partition | query pages with the partition-key header (`max-item-count` = page size) |
//! | `query`, cross-partition | a locally planned fan-out, one request per physical partition range |
//! | `count` | `SELECT VALUE COUNT(1)` in one partition (cross-partition refused) |
//! | `provision` | create database + 12 containers, 409 tolerated (key auth only) |
//! | `health` | a container metadata read |
//!
//! The first use of each container per process also loads its properties
//! and partition key ranges (the SDK caches them).
//!
//! Things the port promises that Cosmos does not do by itself:
//! - **ETags are opaque strings without quotes.** Cosmos quotes them (`"…"`)
//!   in both `_etag` and the `ETag` header; we strip the quotes when
//!   returning and add them back for `If-Match`.
//! - **Expiry follows the store's clock.** Real Cosmos deletes expired
//!   documents lazily and the SDK's emulator never does, so every write also
//!   stores `_castielExpiresAt` (epoch ms, far future when the document never
//!   expires) and every read and query hides documents past it. Cosmos still
//!   gets the `ttl` (body) and `defaultTtl` (container) so it purges them.
//! - **System properties never leak**: `_rid`, `_self`, `_etag`, `_ts`,
//!   `_attachments` and our `_castielExpiresAt` are removed from bodies.

mod client;
mod documents;
mod errors;
mod paging;
mod sql;

use std::sync::Arc;

use async_trait::async_trait;
use azure_data_cosmos::clients::{ContainerClient, DatabaseClient};
use azure_data_cosmos::models::{ContainerProperties, TimeToLive};
use azure_data_cosmos::options::ItemWriteOptions;
use azure_data_cosmos::{CosmosClient, FeedScope};
use futures::StreamExt as _;
use serde_json::Value;
use tokio::sync::OnceCell;

pub use client::{
    THROTTLE_MAX_WAIT, THROTTLE_RETRIES, build, connect, is_emulator, throttling_retries,
};

use super::query::{Query, Scope};
use super::{Container, Document, ETag, Page, Store, StoreError, StoreResult, address_of, ttl_of};
use crate::clock::Clock;

pub(crate) use documents::EXPIRES_FIELD;
use documents::{NEVER_MS, Raw, document, from_stored, if_match, unquote};

/// How many times a write re-reads after losing a race it started itself
/// (unconditional replace/delete, re-creating over an expired document).
const RACE_ATTEMPTS: usize = 8;

/// How many SDK pages one `query` call may pull to find a non-empty one.
const MAX_PAGES_PER_CALL: usize = 64;

/// The Cosmos DB store.
pub struct CosmosStore {
    client: CosmosClient,
    database: String,
    clock: Arc<dyn Clock>,
    containers: [OnceCell<ContainerClient>; Container::ALL.len()],
}

impl std::fmt::Debug for CosmosStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosStore")
            .field("endpoint", &self.client.endpoint().as_str())
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

fn map(e: &azure_data_cosmos::CosmosError) -> StoreError {
    errors::map(e)
}

impl CosmosStore {
    /// A store on a connected client; containers are opened on first use.
    pub fn new(client: CosmosClient, database: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            database: database.into(),
            clock,
            containers: std::array::from_fn(|_| OnceCell::new()),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn db(&self) -> DatabaseClient {
        self.client.database_client(self.database.as_str())
    }

    async fn container(&self, container: Container) -> StoreResult<&ContainerClient> {
        let slot = Container::ALL
            .iter()
            .position(|c| *c == container)
            .and_then(|i| self.containers.get(i))
            .ok_or_else(|| StoreError::Invalid(format!("unknown container {container:?}")))?;
        slot.get_or_try_init(|| async {
            self.db()
                .container_client(container.name(), None)
                .await
                .map_err(|e| {
                    StoreError::Unavailable(format!(
                        "opening Cosmos container {} (run `provision`?): {e}",
                        container.name()
                    ))
                })
        })
        .await
    }

    /// The body as stored: the caller's body plus the expiry field.
    fn stored_body(&self, container: Container, body: &Value) -> StoreResult<Value> {
        let mut stored = body.clone();
        let expires = match ttl_of(body) {
            Some(-1) => NEVER_MS,
            Some(t) => self.now_ms().saturating_add(t.saturating_mul(1000)),
            None => container.default_ttl_seconds().map_or(NEVER_MS, |t| {
                self.now_ms().saturating_add(i64::from(t) * 1000)
            }),
        };
        stored
            .as_object_mut()
            .ok_or_else(|| StoreError::Invalid("a document must be a JSON object".into()))?
            .insert(EXPIRES_FIELD.into(), Value::from(expires));
        Ok(stored)
    }

    /// Point read, expired documents included.
    async fn read_raw(&self, container: Container, pk: &str, id: &str) -> StoreResult<Option<Raw>> {
        let c = self.container(container).await?;
        match c.read_item(pk.to_owned(), id, None).await {
            Ok(resp) => {
                let header_etag = resp.headers().etag().map(|e| unquote(e.as_ref()));
                let body: Value = resp
                    .into_model()
                    .map_err(|e| StoreError::Unavailable(format!("Cosmos read body: {e}")))?;
                let mut raw = from_stored(body)?;
                if let Some(etag) = header_etag {
                    raw.etag = etag;
                }
                Ok(Some(raw))
            }
            Err(e) => match map(&e) {
                StoreError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Point read of a live document.
    async fn read_live(
        &self,
        container: Container,
        pk: &str,
        id: &str,
    ) -> StoreResult<Option<Raw>> {
        let now = self.now_ms();
        Ok(self
            .read_raw(container, pk, id)
            .await?
            .filter(|r| r.expires_ms > now))
    }

    /// One write call; returns the new ETag from the response headers.
    async fn write(
        &self,
        container: Container,
        kind: Write,
        pk: &str,
        id: &str,
        stored: &Value,
        options: Option<ItemWriteOptions>,
    ) -> StoreResult<ETag> {
        let c = self.container(container).await?;
        let result = match kind {
            Write::Create => c.create_item(pk.to_owned(), id, stored, options).await,
            Write::Replace => c.replace_item(pk.to_owned(), id, stored, options).await,
            Write::Upsert => c.upsert_item(pk.to_owned(), id, stored, options).await,
        };
        let resp = result.map_err(|e| map(&e))?;
        resp.headers()
            .etag()
            .map(|e| unquote(e.as_ref()))
            .ok_or_else(|| StoreError::Unavailable("Cosmos write answered without an ETag".into()))
    }
}

#[derive(Debug, Clone, Copy)]
enum Write {
    Create,
    Replace,
    Upsert,
}

#[async_trait]
impl Store for CosmosStore {
    async fn read(
        &self,
        container: Container,
        pk: &str,
        id: &str,
    ) -> StoreResult<Option<Document>> {
        self.read_live(container, pk, id)
            .await?
            .map(|raw| document(container, raw))
            .transpose()
    }

    async fn create(&self, container: Container, body: Value) -> StoreResult<Document> {
        let (id, pk) = address_of(container, &body)?;
        let stored = self.stored_body(container, &body)?;
        for _ in 0..RACE_ATTEMPTS {
            match self
                .write(container, Write::Create, &pk, &id, &stored, None)
                .await
            {
                Ok(etag) => {
                    return Ok(Document {
                        id,
                        partition_key: pk,
                        etag,
                        body,
                    });
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
            // The id is taken; an expired document no longer holds it.
            let Some(old) = self.read_raw(container, &pk, &id).await? else {
                continue; // deleted meanwhile: create again
            };
            if old.expires_ms > self.now_ms() {
                return Err(StoreError::Conflict);
            }
            match self
                .write(
                    container,
                    Write::Replace,
                    &pk,
                    &id,
                    &stored,
                    Some(if_match(&old.etag)),
                )
                .await
            {
                Ok(etag) => {
                    return Ok(Document {
                        id,
                        partition_key: pk,
                        etag,
                        body,
                    });
                }
                // Someone else re-created or removed it first: look again.
                Err(StoreError::PreconditionFailed | StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn replace(
        &self,
        container: Container,
        body: Value,
        if_match_etag: Option<&ETag>,
    ) -> StoreResult<Document> {
        let (id, pk) = address_of(container, &body)?;
        let stored = self.stored_body(container, &body)?;
        let done = |etag| Document {
            id: id.clone(),
            partition_key: pk.clone(),
            etag,
            body: body.clone(),
        };
        if let Some(expected) = if_match_etag {
            let etag = self
                .write(
                    container,
                    Write::Replace,
                    &pk,
                    &id,
                    &stored,
                    Some(if_match(expected)),
                )
                .await?;
            return Ok(done(etag));
        }
        // Unconditional: replace the live version we see (an expired one is absent).
        for _ in 0..RACE_ATTEMPTS {
            let current = self
                .read_live(container, &pk, &id)
                .await?
                .ok_or(StoreError::NotFound)?;
            match self
                .write(
                    container,
                    Write::Replace,
                    &pk,
                    &id,
                    &stored,
                    Some(if_match(&current.etag)),
                )
                .await
            {
                Ok(etag) => return Ok(done(etag)),
                Err(StoreError::PreconditionFailed) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::PreconditionFailed)
    }

    async fn upsert(&self, container: Container, body: Value) -> StoreResult<Document> {
        let (id, pk) = address_of(container, &body)?;
        let stored = self.stored_body(container, &body)?;
        let etag = self
            .write(container, Write::Upsert, &pk, &id, &stored, None)
            .await?;
        Ok(Document {
            id,
            partition_key: pk,
            etag,
            body,
        })
    }

    async fn delete(
        &self,
        container: Container,
        pk: &str,
        id: &str,
        if_match_etag: Option<&ETag>,
    ) -> StoreResult<()> {
        let c = self.container(container).await?;
        if let Some(expected) = if_match_etag {
            return c
                .delete_item(pk.to_owned(), id, Some(if_match(expected)))
                .await
                .map(|_| ())
                .map_err(|e| map(&e));
        }
        for _ in 0..RACE_ATTEMPTS {
            let current = self
                .read_live(container, pk, id)
                .await?
                .ok_or(StoreError::NotFound)?;
            match c
                .delete_item(pk.to_owned(), id, Some(if_match(&current.etag)))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => match map(&e) {
                    StoreError::PreconditionFailed => continue,
                    other => return Err(other),
                },
            }
        }
        Err(StoreError::PreconditionFailed)
    }

    async fn query(&self, container: Container, query: &Query) -> StoreResult<Page> {
        self.query_page(container, query).await
    }

    async fn count(&self, container: Container, query: &Query) -> StoreResult<u64> {
        let Scope::Partition(pk) = &query.scope else {
            return Err(StoreError::Invalid(
                "count is only allowed within one partition".into(),
            ));
        };
        let text = sql::build(query, self.now_ms(), true)?;
        let c = self.container(container).await?;
        let mut items = c
            .query_items::<Value>(text.to_cosmos()?, FeedScope::partition(pk.clone()), None)
            .await
            .map_err(|e| map(&e))?;
        let mut total = 0_u64;
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| map(&e))?;
            total += item.as_u64().unwrap_or(0);
        }
        Ok(total)
    }

    async fn provision(&self) -> StoreResult<()> {
        match self.client.create_database(&self.database, None).await {
            Ok(_) => {}
            Err(e) => match map(&e) {
                StoreError::Conflict => {}
                other => return Err(other),
            },
        }
        let db = self.db();
        for container in Container::ALL {
            let ttl = match container.default_ttl_seconds() {
                Some(seconds) => TimeToLive::Seconds(seconds),
                // -1: on, without a default, so a document's own `ttl` applies.
                None => TimeToLive::NoDefault,
            };
            let props =
                ContainerProperties::new(container.name(), container.partition_key_path().into())
                    .with_default_ttl(ttl);
            match db.create_container(props, None).await {
                Ok(_) => {}
                Err(e) => match map(&e) {
                    StoreError::Conflict => {}
                    other => return Err(other),
                },
            }
        }
        Ok(())
    }

    async fn health(&self) -> StoreResult<()> {
        // A container read works with Entra ID too (database reads need a key).
        let c = self.container(Container::Integrations).await?;
        c.read(None).await.map(|_| ()).map_err(|e| map(&e))
    }
}
