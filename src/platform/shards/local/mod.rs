//! The local shard store: shards as documents of the store's shards
//! container (partition `/tenantId`), standalone mode's shard sink.
//!
//! [`ShardSink::upsert_many`] is the sync's hot path (one call per page of
//! up to 2,000 records): it reads the page's existing shards with one `in`
//! query per 1,000 ids (the store's page size) to keep `createdAt` and
//! bump `revision`, then writes every shard in one [`Store::write_all`] —
//! one transaction on the embedded store. Shards are encoded straight to
//! JSON text, never built as a tree. Stores without transactions (Cosmos)
//! get the writes one by one (several in flight), so that one refused
//! document fails alone.
//!
//! The browse side (`list`, `find`, `put`: `/api/v1/shards`) is in
//! [`browse`].

pub mod browse;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{Shard, ShardError, ShardRef, ShardSink, ShardWrite};
use crate::clock::Clock;
use crate::domain::tenancy::TenantId;
use crate::platform::events::Events;
use crate::platform::store::{
    Body, Container, ETag, Encoded, Entity, Filter, Op, Query, Store, StoreError, Write,
};

/// The largest shard document accepted, as JSON text: Cosmos DB refuses
/// items over 2 MB, so a shard the embedded store would take could not
/// move to Cosmos. A bigger one is refused alone ([`ShardError::Rejected`]).
pub const MAX_SHARD_BYTES: usize = 2_000_000;

/// How many times a page is written again after another writer changed one
/// of its shards between the read and the write.
const WRITE_ATTEMPTS: usize = 8;

/// The ids a query reads at once (the store's largest page).
const READ_CHUNK: usize = 1000;

/// Writes in flight at once on a store without transactions (Cosmos
/// answers each in milliseconds; one after another, a page of 2,000 took
/// seconds).
const IN_FLIGHT: usize = 16;

/// `source` of a shard the sync wrote.
pub const SOURCE_INTEGRATION: &str = "integration";

/// `source` of a shard edited through `PUT /api/v1/shards/{id}`.
pub const SOURCE_USER: &str = "user";

/// Shards kept in the document store.
pub struct LocalShards {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: Arc<Events>,
}

impl std::fmt::Debug for LocalShards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalShards").finish_non_exhaustive()
    }
}

impl Entity for Shard {
    const CONTAINER: Container = Container::Shards;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

/// A shard as stored: its fields and `shardTypeKeys` (its type id and
/// name), which lets `?shardTypeName=` match either with one condition.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored<'a> {
    #[serde(flatten)]
    shard: &'a Shard,
    shard_type_keys: Vec<&'a str>,
}

/// What a write keeps of the shard it replaces.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Existing {
    id: Uuid,
    #[serde(default)]
    revision: u64,
    created_at: DateTime<Utc>,
}

/// A shard read before the write: its revision, creation and version.
#[derive(Clone)]
struct Before {
    revision: u64,
    created_at: DateTime<Utc>,
    /// `None` when an earlier write of the same page made it (no version yet).
    etag: Option<ETag>,
}

/// The JSON text of a shard as stored (its `etag` is never stored).
pub(crate) fn encode(shard: &Shard) -> Result<Encoded, ShardError> {
    let mut keys = vec![shard.shard_type_id.as_str()];
    if let Some(name) = shard.shard_type_name.as_deref().filter(|n| !n.is_empty()) {
        keys.push(name);
    }
    let text = if shard.etag.is_empty() {
        serde_json::to_string(&Stored {
            shard,
            shard_type_keys: keys,
        })
    } else {
        let mut clean = shard.clone();
        clean.etag.clear();
        serde_json::to_string(&Stored {
            shard: &clean,
            shard_type_keys: keys,
        })
    }
    .map_err(|e| ShardError::Rejected(format!("the shard cannot be encoded: {e}")))?;
    if text.len() > MAX_SHARD_BYTES {
        return Err(ShardError::Rejected(format!(
            "the shard takes {} bytes, more than {MAX_SHARD_BYTES}",
            text.len()
        )));
    }
    Ok(Encoded {
        id: shard.id.to_string(),
        pk: shard.tenant_id.key(),
        text,
    })
}

fn unavailable(e: &StoreError) -> ShardError {
    ShardError::Unavailable(format!("the shard store: {e}"))
}

/// One shard of a page, ready to write.
struct Planned {
    index: usize,
    id: Uuid,
    revision: u64,
    write: Write,
}

impl LocalShards {
    /// A local shard store on `store`; `events` raises `shard.updated` for
    /// people's edits.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, events: Arc<Events>) -> Self {
        Self {
            store,
            clock,
            events,
        }
    }

    /// The tenant's existing shards among `ids`, one query per 1,000 ids.
    async fn existing(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Before>, ShardError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(READ_CHUNK) {
            let wanted: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
            let mut query = Query::partition(tenant.key())
                .filter(Filter::new("id", Op::In, json!(wanted)))
                .limit(u32::try_from(READ_CHUNK).unwrap_or(1000));
            loop {
                let page = self
                    .store
                    .query(Container::Shards, &query)
                    .await
                    .map_err(|e| unavailable(&e))?;
                for doc in page.items {
                    let old: Existing = serde_json::from_value(doc.body).map_err(|e| {
                        ShardError::Unavailable(format!("a stored shard is unreadable: {e}"))
                    })?;
                    out.insert(
                        old.id,
                        Before {
                            revision: old.revision,
                            created_at: old.created_at,
                            etag: Some(doc.etag),
                        },
                    );
                }
                match page.continuation {
                    Some(token) => query.continuation = Some(token),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    /// The writes of a page against what is stored; a shard refused on its
    /// own (too large) gets its result at once.
    fn plan(
        &self,
        tenant: TenantId,
        shards: &[ShardWrite],
        which: &[usize],
        mut before: HashMap<Uuid, Before>,
        results: &mut [Option<Result<ShardRef, ShardError>>],
    ) -> Vec<Planned> {
        let now = self.clock.now();
        let mut planned = Vec::with_capacity(which.len());
        for &index in which {
            let w = &shards[index];
            let old = before.get(&w.id);
            let revision = old.map_or(1, |b| b.revision + 1);
            let shard = Shard {
                id: w.id,
                tenant_id: tenant,
                shard_type_id: w.shard_type_id.clone(),
                shard_type_name: w.shard_type_name.clone(),
                structured_data: w.structured_data.clone(),
                metadata: Some(w.metadata.clone()),
                source: SOURCE_INTEGRATION.into(),
                revision,
                created_at: old.map_or(now, |b| b.created_at),
                updated_at: now,
                etag: String::new(),
            };
            let encoded = match encode(&shard) {
                Ok(e) => e,
                Err(e) => {
                    results[index] = Some(Err(e));
                    continue;
                }
            };
            let body = Body::Text(encoded);
            let write = match old {
                Some(b) => Write::Replace {
                    container: Container::Shards,
                    body,
                    if_match: b.etag.clone(),
                },
                None => Write::Create {
                    container: Container::Shards,
                    body,
                },
            };
            // A second write of the same id in this page replaces the first.
            before.insert(
                w.id,
                Before {
                    revision,
                    created_at: shard.created_at,
                    etag: None,
                },
            );
            planned.push(Planned {
                index,
                id: w.id,
                revision,
                write,
            });
        }
        planned
    }

    /// One transaction for the page; `Ok(false)` when another writer won a
    /// race (nothing was written: read and plan again).
    async fn write_together(
        &self,
        planned: Vec<Planned>,
        results: &mut [Option<Result<ShardRef, ShardError>>],
    ) -> Result<bool, ShardError> {
        let mut refs = Vec::with_capacity(planned.len());
        let mut writes = Vec::with_capacity(planned.len());
        for p in planned {
            refs.push((p.index, p.id, p.revision));
            writes.push(p.write);
        }
        match self.store.write_all(writes).await {
            Ok(_) => {
                for (index, id, revision) in refs {
                    results[index] = Some(Ok(ShardRef {
                        id,
                        sink_id: id,
                        revision,
                    }));
                }
                Ok(true)
            }
            Err(StoreError::PreconditionFailed | StoreError::Conflict | StoreError::NotFound) => {
                Ok(false)
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// The writes one by one (stores without transactions), up to
    /// [`IN_FLIGHT`] at once (in order when an id repeats in the page);
    /// `Ok(false)` when some lost a race: those are left without a result,
    /// to be read and planned again.
    async fn write_each(
        &self,
        planned: Vec<Planned>,
        results: &mut [Option<Result<ShardRef, ShardError>>],
    ) -> Result<bool, ShardError> {
        use futures::StreamExt as _;
        let distinct: std::collections::HashSet<Uuid> = planned.iter().map(|p| p.id).collect();
        let at_once = if distinct.len() == planned.len() {
            IN_FLIGHT
        } else {
            1
        };
        let store = self.store.as_ref();
        let calls: Vec<futures::future::BoxFuture<'_, _>> = planned
            .into_iter()
            .map(|p| {
                Box::pin(async move {
                    let outcome = p.write.apply(store).await;
                    (p.index, p.id, p.revision, outcome)
                }) as _
            })
            .collect();
        let mut outcomes = futures::stream::iter(calls).buffered(at_once);
        let mut all = true;
        while let Some((index, id, revision, outcome)) = outcomes.next().await {
            match outcome {
                Ok(_) => {
                    results[index] = Some(Ok(ShardRef {
                        id,
                        sink_id: id,
                        revision,
                    }));
                }
                Err(
                    StoreError::PreconditionFailed | StoreError::Conflict | StoreError::NotFound,
                ) => all = false,
                Err(StoreError::Invalid(why)) => {
                    results[index] = Some(Err(ShardError::Rejected(why)));
                }
                Err(e) => return Err(unavailable(&e)),
            }
        }
        Ok(all)
    }
}

#[async_trait]
impl ShardSink for LocalShards {
    async fn upsert_many(
        &self,
        tenant: TenantId,
        shards: Vec<ShardWrite>,
    ) -> Result<Vec<Result<ShardRef, ShardError>>, ShardError> {
        if let Some(w) = shards.iter().find(|w| w.tenant_id != tenant) {
            return Err(ShardError::Rejected(format!(
                "shard {} belongs to another tenant than the page",
                w.id
            )));
        }
        let mut results: Vec<Option<Result<ShardRef, ShardError>>> =
            (0..shards.len()).map(|_| None).collect();
        for _ in 0..WRITE_ATTEMPTS {
            let which: Vec<usize> = (0..shards.len())
                .filter(|&i| results[i].is_none())
                .collect();
            if which.is_empty() {
                break;
            }
            let ids: Vec<Uuid> = which.iter().map(|&i| shards[i].id).collect();
            let before = self.existing(tenant, &ids).await?;
            let planned = self.plan(tenant, &shards, &which, before, &mut results);
            let done = if self.store.transactional() {
                self.write_together(planned, &mut results).await?
            } else {
                self.write_each(planned, &mut results).await?
            };
            if done {
                break;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ShardError::Unavailable(
                        "the shard kept changing while it was written".into(),
                    ))
                })
            })
            .collect())
    }

    async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<Shard>, ShardError> {
        self.store
            .get::<Shard>(&tenant.key(), &id.to_string())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn health(&self) -> Result<(), ShardError> {
        self.store.health().await.map_err(|e| unavailable(&e))
    }

    fn name(&self) -> &'static str {
        "embedded"
    }
}
