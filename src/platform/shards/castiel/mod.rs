//! Castiel's shard-manager over HTTP (`SHARDS=castiel`,
//! `SHARD_MANAGER_URL`; the contract is reference Appendix A.1).
//!
//! - create: `POST {base}/api/v1/shards` `{shardTypeId, shardTypeName?,
//!   structuredData, metadata {integrationId, externalId, externalSource,
//!   syncedAt}, source: "integration", sourceDetails {integrationId,
//!   externalId, originalId, syncedAt}}` → 201 with the shard and the id
//!   shard-manager generated (it takes none);
//! - update: `PUT {base}/api/v1/shards/{id}` `{structuredData, metadata}`
//!   (structuredData replaced, metadata merged) → 200, `revisionNumber + 1`;
//! - read: `GET {base}/api/v1/shards/{id}` (404 when missing or deleted);
//! - the check after a create without an answer: `GET {base}/api/v1/shards?
//!   shardTypeId=…&limit=100` (newest first), looking for
//!   `sourceDetails.originalId`;
//! - health: `GET {base}/health`.
//!
//! Every `/api` call carries `Authorization: Bearer` with a service token of
//! the shard's tenant minted per call ([`TokenKeys::mint_service`], signed
//! with the JWT secret Castiel's services share) and `X-Tenant-ID`.
//!
//! Ids: the sync chooses a shard's id ([`ShardWrite::id`]) so that writing
//! a record twice never makes a second shard; shard-manager generates its
//! own on create. So the client keeps an id map in the document store
//! (container `integration_shards`, documents `castiel:<sync id>` of kind
//! `castielShard` holding shard-manager's id). Before a create, the entry
//! is written without an id (pending); after the 201, with it. An entry
//! found pending (a create that got no answer, or a crash) is checked
//! against shard-manager's list before anything is created again.
//!
//! Failures: a request times out after [`REQUEST_TIMEOUT`]; reads and
//! updates are retried twice on a 5xx, a timeout or a lost connection; a
//! create only when no connection was opened; nothing on a 4xx. A 400, 403
//! (archived) or 413 refuses that shard alone ([`ShardError::Rejected`]);
//! anything else stops the page ([`ShardError::Unavailable`]). No body is
//! ever quoted in an error or a log line.

mod http;

use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

pub use self::http::{CONSUMER_MODULE, REQUEST_TIMEOUT};
use self::http::{Client, Remote, RemotePage, Sent, refused, unreadable};
use super::{Shard, ShardError, ShardRef, ShardSink, ShardWrite};
use crate::domain::tenancy::TenantId;
use crate::platform::auth::TokenKeys;
use crate::platform::store::{Container, ETag, Entity, Filter, Op, Query, Store, StoreError};

/// How many shards of a page are sent at once.
const IN_FLIGHT: usize = 8;

/// How many pages of the newest shards the check after an unanswered
/// create reads (100 a page).
const CHECK_PAGES: usize = 5;

/// The id-map entry kind.
const KIND: &str = "castielShard";

/// Shards in Castiel's shard-manager.
pub struct CastielShards {
    client: Client,
    ids: Arc<dyn Store>,
}

impl std::fmt::Debug for CastielShards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CastielShards")
            .field("base", &self.client.base.as_str())
            .finish_non_exhaustive()
    }
}

/// One id-map entry: the sync's id → shard-manager's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alias {
    id: String,
    tenant_id: String,
    kind: String,
    /// `None` while its create has no answer.
    #[serde(default)]
    castiel_id: Option<Uuid>,
    #[serde(skip)]
    etag: String,
}

impl Entity for Alias {
    const CONTAINER: Container = Container::Shards;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

fn alias_id(id: Uuid) -> String {
    format!("castiel:{id}")
}

fn store_failed(e: &StoreError) -> ShardError {
    ShardError::Unavailable(format!("the shard id map: {e}"))
}

/// What a create or update answered, for one shard.
type Item = Result<ShardRef, ShardError>;

impl CastielShards {
    /// A client of shard-manager at `base` (`SHARD_MANAGER_URL`), signing
    /// service tokens with `tokens`, keeping its id map in `ids`.
    pub fn new(base: Url, tokens: TokenKeys, ids: Arc<dyn Store>) -> Result<Self, ShardError> {
        Ok(Self {
            client: Client::new(base, tokens)?,
            ids,
        })
    }

    /// The id-map entries of `ids`, one query per 1,000.
    async fn aliases(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Alias>, ShardError> {
        let mut out = std::collections::HashMap::new();
        for chunk in ids.chunks(1000) {
            let wanted: Vec<String> = chunk.iter().map(|id| alias_id(*id)).collect();
            let q = Query::partition(tenant.key())
                .filter(Filter::new("id", Op::In, json!(wanted)))
                .eq("kind", KIND)
                .limit(1000);
            let found = self
                .ids
                .all::<Alias>(q, 4)
                .await
                .map_err(|e| store_failed(&e))?;
            for a in found {
                if let Some(id) = a.id.strip_prefix("castiel:").and_then(|s| s.parse().ok()) {
                    out.insert(id, a);
                }
            }
        }
        Ok(out)
    }

    async fn save_alias(
        &self,
        tenant: TenantId,
        id: Uuid,
        castiel_id: Option<Uuid>,
    ) -> Result<(), ShardError> {
        let alias = Alias {
            id: alias_id(id),
            tenant_id: tenant.key(),
            kind: KIND.into(),
            castiel_id,
            etag: String::new(),
        };
        self.ids
            .save(&alias)
            .await
            .map(drop)
            .map_err(|e| store_failed(&e))
    }

    /// `GET /api/v1/shards/{id}`: `None` when shard-manager has none.
    async fn fetch(&self, tenant: TenantId, id: Uuid) -> Result<Option<Remote>, ShardError> {
        let what = "GET /api/v1/shards/{id}";
        let id = id.to_string();
        let rsp = self
            .client
            .send(what, || {
                self.client.request(
                    Method::GET,
                    self.client.url(&["api", "v1", "shards", &id]),
                    tenant,
                )
            })
            .await?;
        match rsp.status() {
            StatusCode::OK => {}
            // A shard of another tenant (or not a shard id at all) is none.
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST => {
                return Ok(None);
            }
            status => return Err(refused(what, status)),
        }
        let remote: Remote = rsp.json().await.map_err(|_| unreadable(what))?;
        Ok((remote.tenant_id == tenant).then_some(remote))
    }

    /// The shard the sync wrote as `w.id`, among the newest of its type.
    async fn find_written(&self, w: &ShardWrite) -> Result<Option<Uuid>, ShardError> {
        let what = "GET /api/v1/shards";
        let mut token: Option<String> = None;
        for _ in 0..CHECK_PAGES {
            let rsp = self
                .client
                .send(what, || {
                    let mut url = self.client.url(&["api", "v1", "shards"]);
                    {
                        let mut q = url.query_pairs_mut();
                        q.append_pair("shardTypeId", &w.shard_type_id);
                        q.append_pair("limit", "100");
                        if let Some(t) = &token {
                            q.append_pair("continuationToken", t);
                        }
                    }
                    self.client.request(Method::GET, url, w.tenant_id)
                })
                .await?;
            if rsp.status() != StatusCode::OK {
                return Err(refused(what, rsp.status()));
            }
            let page: RemotePage = rsp.json().await.map_err(|_| unreadable(what))?;
            let hit = page
                .items
                .into_iter()
                .filter_map(|v| serde_json::from_value::<Remote>(v).ok())
                .find(|r| r.written_as(w.id));
            if let Some(r) = hit {
                return Ok(Some(r.id));
            }
            match page.continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(None)
    }

    /// The body of a create or update: the record, where it came from.
    fn body(w: &ShardWrite, create: bool) -> Value {
        let metadata = json!({
            "integrationId": w.metadata.integration_id,
            "externalId": w.metadata.external_id,
            "externalSource": w.metadata.external_source,
            "syncedAt": w.metadata.synced_at,
        });
        let mut body = json!({
            "structuredData": w.structured_data,
            "metadata": metadata,
        });
        if create {
            body["shardTypeId"] = json!(w.shard_type_id);
            if let Some(name) = &w.shard_type_name {
                body["shardTypeName"] = json!(name);
            }
            body["source"] = json!("integration");
            body["sourceDetails"] = json!({
                "integrationId": w.metadata.integration_id,
                "externalId": w.metadata.external_id,
                "originalId": w.id,
                "syncedAt": w.metadata.synced_at,
            });
        }
        body
    }

    /// Reads a shard answer of a create or update into the shard's result.
    async fn answered(
        what: &str,
        w: &ShardWrite,
        rsp: reqwest::Response,
    ) -> Result<Item, ShardError> {
        match rsp.status() {
            StatusCode::OK | StatusCode::CREATED => {
                let remote: Remote = rsp.json().await.map_err(|_| unreadable(what))?;
                Ok(Ok(ShardRef {
                    id: w.id,
                    sink_id: remote.id,
                    revision: remote.revision_number,
                }))
            }
            s @ (StatusCode::BAD_REQUEST
            | StatusCode::FORBIDDEN
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNPROCESSABLE_ENTITY) => Ok(Err(ShardError::Rejected(format!(
                "shard-manager {what} answered {s}"
            )))),
            s => Err(refused(what, s)),
        }
    }

    /// `PUT /api/v1/shards/{id}`; `None` when shard-manager has no such shard.
    async fn update(&self, w: &ShardWrite, castiel_id: Uuid) -> Result<Option<Item>, ShardError> {
        let what = "PUT /api/v1/shards/{id}";
        let id = castiel_id.to_string();
        let body = Self::body(w, false);
        let rsp = self
            .client
            .send(what, || {
                self.client
                    .request(
                        Method::PUT,
                        self.client.url(&["api", "v1", "shards", &id]),
                        w.tenant_id,
                    )
                    .json(&body)
            })
            .await?;
        if rsp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::answered(what, w, rsp).await.map(Some)
    }

    /// `POST /api/v1/shards`, after recording the create as pending.
    async fn create(&self, w: &ShardWrite) -> Result<Item, ShardError> {
        let what = "POST /api/v1/shards";
        self.save_alias(w.tenant_id, w.id, None).await?;
        let body = Self::body(w, true);
        let sent = self
            .client
            .send_with(what, http::Retry::ConnectOnly, || {
                self.client
                    .request(
                        Method::POST,
                        self.client.url(&["api", "v1", "shards"]),
                        w.tenant_id,
                    )
                    .json(&body)
            })
            .await?;
        let rsp = match sent {
            Sent::Answer(rsp) => rsp,
            Sent::Unknown => {
                // Never sent again blindly: look for it first.
                return match self.find_written(w).await? {
                    Some(found) => {
                        self.save_alias(w.tenant_id, w.id, Some(found)).await?;
                        self.update(w, found).await?.ok_or_else(|| {
                            ShardError::Unavailable(format!("shard-manager {what}: no answer"))
                        })
                    }
                    None => Err(ShardError::Unavailable(format!(
                        "shard-manager {what}: no answer; the create is checked on the next write"
                    ))),
                };
            }
        };
        let item = Self::answered(what, w, rsp).await?;
        if let Ok(r) = &item {
            self.save_alias(w.tenant_id, w.id, Some(r.sink_id)).await?;
        }
        Ok(item)
    }

    /// Creates or updates one shard.
    async fn upsert_one(&self, w: &ShardWrite, alias: Option<&Alias>) -> Result<Item, ShardError> {
        let known = match alias {
            Some(Alias {
                castiel_id: Some(id),
                ..
            }) => Some(*id),
            // A create that got no answer (or a crash after it): look first.
            Some(_) => self.find_written(w).await?,
            None => None,
        };
        if let Some(castiel_id) = known {
            if alias.and_then(|a| a.castiel_id).is_none() {
                self.save_alias(w.tenant_id, w.id, Some(castiel_id)).await?;
            }
            if let Some(item) = self.update(w, castiel_id).await? {
                return Ok(item);
            }
            // Deleted in shard-manager since: the record makes a new one.
        }
        self.create(w).await
    }
}

#[async_trait]
impl ShardSink for CastielShards {
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
        let ids: Vec<Uuid> = shards.iter().map(|w| w.id).collect();
        let aliases = self.aliases(tenant, &ids).await?;
        let calls: Vec<futures::future::BoxFuture<'_, Result<Item, ShardError>>> = shards
            .iter()
            .map(|w| Box::pin(self.upsert_one(w, aliases.get(&w.id))) as _)
            .collect();
        futures::stream::iter(calls)
            .buffered(IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<Shard>, ShardError> {
        let mapped = self
            .ids
            .get::<Alias>(&tenant.key(), &alias_id(id))
            .await
            .map_err(|e| store_failed(&e))?
            .and_then(|a| a.castiel_id);
        let remote = self.fetch(tenant, mapped.unwrap_or(id)).await?;
        Ok(remote.map(Remote::into_shard))
    }

    async fn health(&self) -> Result<(), ShardError> {
        let what = "GET /health";
        let rsp = self
            .client
            .send(what, || self.client.plain(self.client.url(&["health"])))
            .await?;
        if rsp.status().is_success() {
            Ok(())
        } else {
            Err(refused(what, rsp.status()))
        }
    }

    fn name(&self) -> &'static str {
        "castiel"
    }
}
