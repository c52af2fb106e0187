//! Browsing and editing the local shard store (`/api/v1/shards`, SPEC §5.7):
//! what lets a user see and edit synced data without the rest of Castiel.
//!
//! An edit raises `shard.updated` as Castiel's shard-manager does
//! (reference Appendix A.1): `data {shardId, shardTypeId, shardTypeName,
//! opportunityId}`, where `opportunityId` is `structuredData.opportunityId`,
//! else `structuredData.id` (absent when neither is set), the tenant in the
//! envelope and the editing user in `metadata.userId`. The event is
//! recorded in the same unit of work as the write ([`Events::within`]).

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{LocalShards, SOURCE_USER, encode};
use crate::domain::pages::{PageRequest, Paged};
use crate::domain::tenancy::{Ctx, TenantId};
use crate::error::{Error, Result};
use crate::platform::events::{Event, types};
use crate::platform::shards::{Shard, ShardError};
use crate::platform::store::{Body, Container, ETag, Filter, Op, Query, Write, as_written};

/// The filters of `GET /api/v1/shards`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardFilter {
    /// Matches the shard type's name or its id.
    pub shard_type_name: Option<String>,
    /// Shards synced by this integration (`metadata.integrationId`).
    pub integration_id: Option<Uuid>,
}

/// `shard.updated` as shard-manager raises it.
fn updated_event(events: &crate::platform::events::Events, ctx: &Ctx, shard: &Shard) -> Event {
    let mut data = Map::new();
    data.insert("shardId".into(), json!(shard.id));
    data.insert("shardTypeId".into(), json!(shard.shard_type_id));
    if let Some(name) = &shard.shard_type_name {
        data.insert("shardTypeName".into(), json!(name));
    }
    // JavaScript's `a || b`: the first of the two that is truthy.
    let opportunity = ["opportunityId", "id"]
        .iter()
        .filter_map(|k| shard.structured_data.get(*k))
        .find(|v| truthy(v));
    if let Some(o) = opportunity {
        data.insert("opportunityId".into(), o.clone());
    }
    events.envelope(ctx, types::SHARD_UPDATED, Value::Object(data))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn store_error(e: ShardError) -> Error {
    match e {
        ShardError::Rejected(why) => Error::invalid("/structuredData", why),
        ShardError::Unavailable(cause) => {
            tracing::error!(error.cause = %cause, "the shard store is unavailable");
            Error::Unavailable {
                detail: "the shard store is unavailable".into(),
                retry_after: None,
            }
        }
    }
}

impl LocalShards {
    /// The tenant's shards, newest first.
    pub async fn list(
        &self,
        tenant: TenantId,
        filter: &ShardFilter,
        page: &PageRequest,
    ) -> Result<Paged<Shard>> {
        let mut q = Query::partition(tenant.key())
            .order_by("createdAt", true)
            .limit(page.limit)
            .after(page.continuation.clone())
            // Only shards (the container may hold other kinds of documents).
            .filter(Filter::new("shardTypeId", Op::IsDefined, Value::Null));
        if let Some(name) = &filter.shard_type_name {
            q = q.filter(Filter::new(
                "shardTypeKeys",
                Op::ArrayContains,
                name.as_str(),
            ));
        }
        if let Some(id) = filter.integration_id {
            q = q.eq("metadata.integrationId", id.to_string());
        }
        let (items, continuation_token) = self.store.page::<Shard>(&q).await?;
        Ok(Paged {
            items,
            continuation_token,
        })
    }

    /// One shard of the tenant (another tenant's answers 404, as a missing one).
    pub async fn find(&self, tenant: TenantId, id: Uuid) -> Result<Shard> {
        self.store
            .get::<Shard>(&tenant.key(), &id.to_string())
            .await?
            .ok_or(Error::NotFound("shard"))
    }

    /// A person's edit: replaces `structuredData` wholesale (as
    /// shard-manager's `PUT` does), bumps `revision`, marks the shard
    /// `source: "user"`, and raises `shard.updated` with the write.
    /// `if_match`, when given, must be the shard's current version (412).
    pub async fn put(
        &self,
        ctx: &Ctx,
        id: Uuid,
        structured_data: Map<String, Value>,
        if_match: Option<&ETag>,
    ) -> Result<Shard> {
        let current = self.find(ctx.tenant(), id).await?;
        if if_match.is_some_and(|m| m.as_str() != current.etag) {
            return Err(Error::PreconditionFailed);
        }
        let before = ETag::new(current.etag.clone());
        let mut next = current;
        next.etag.clear();
        next.structured_data = structured_data;
        next.revision += 1;
        next.updated_at = self.clock.now();
        next.source = SOURCE_USER.into();
        let encoded = encode(&next).map_err(store_error)?;
        let event = updated_event(&self.events, ctx, &next);
        let write = Write::Replace {
            container: Container::Shards,
            body: Body::Text(encoded),
            if_match: Some(before),
        };
        let doc = self
            .events
            .within(self.store.as_ref(), vec![event], write)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the write produced no document")))?;
        Ok(as_written(next, &doc))
    }
}
