//! The local shard store: shards as documents of the store's shards
//! container (standalone mode's shard sink).

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Shard, ShardError, ShardRef, ShardSink, ShardWrite};
use crate::clock::Clock;
use crate::domain::tenancy::TenantId;
use crate::platform::store::{Container, Store, StoreError};

/// Shards kept in the document store.
pub struct LocalShards {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl LocalShards {
    /// A local shard store on `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

fn unavailable(e: StoreError) -> ShardError {
    ShardError::Unavailable(e.to_string())
}

#[async_trait]
impl ShardSink for LocalShards {
    async fn upsert_many(
        &self,
        tenant: TenantId,
        shards: Vec<ShardWrite>,
    ) -> Result<Vec<Result<ShardRef, ShardError>>, ShardError> {
        let now = self.clock.now();
        let mut out = Vec::with_capacity(shards.len());
        for w in shards {
            let old = self.get(tenant, w.id).await?;
            let revision = old.as_ref().map_or(1, |s| s.revision + 1);
            let shard = Shard {
                id: w.id,
                tenant_id: tenant,
                shard_type_id: w.shard_type_id,
                shard_type_name: w.shard_type_name,
                structured_data: w.structured_data,
                metadata: Some(w.metadata),
                source: "integration".into(),
                revision,
                created_at: old.map_or(now, |s| s.created_at),
                updated_at: now,
                etag: String::new(),
            };
            let body =
                serde_json::to_value(&shard).map_err(|e| ShardError::Rejected(e.to_string()))?;
            self.store
                .upsert(Container::Shards, body)
                .await
                .map_err(unavailable)?;
            out.push(Ok(ShardRef { id: w.id, revision }));
        }
        Ok(out)
    }

    async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<Shard>, ShardError> {
        let doc = self
            .store
            .read(Container::Shards, &tenant.key(), &id.to_string())
            .await
            .map_err(unavailable)?;
        doc.map(|d| {
            let mut s: Shard = serde_json::from_value(d.body).map_err(|e| {
                ShardError::Unavailable(format!("a stored shard is unreadable: {e}"))
            })?;
            s.etag = d.etag.to_string();
            Ok(s)
        })
        .transpose()
    }

    async fn health(&self) -> Result<(), ShardError> {
        self.store.health().await.map_err(unavailable)
    }

    fn name(&self) -> &'static str {
        "embedded"
    }
}
