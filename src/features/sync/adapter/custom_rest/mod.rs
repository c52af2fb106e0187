//! The adapter for a tenant's own REST API described by `customApi` (SPEC §9.6).
//!
//! - [`pagination`]: the six paging types; [`cursor`]: the durable cursor
//!   (its shape is documented there); [`listing`]: `list_changes`.
//! - [`call`]: one call (rate limit, credential, renewal, error mapping);
//!   [`rate_limit`]: the limiter shared by an integration's adapters.
//! - [`records`]: ids, change times and inferred field types; [`urls`]:
//!   paths below the base URL, `{id}` substitution, the origin check.
//!
//! `describe` infers the fields from the first record the entity's list
//! call returns (the API publishes no schema we could read): names as
//! labels, types from the JSON values, none marked required (unknown).
//! An entity without any record is `Unsupported`.
//!
//! Not done here: `ChangesRequest::filters` are not sent (a description
//! names no filter syntax; its fixed `query` parameters filter at the
//! source) and `fields` are not selected (the API sends what it sends).
//! Waiting for the rate limit is not cancellable (the port passes no
//! cancellation), so `Cancelled` is never returned: a wait is at most a
//! second.

pub mod call;
pub mod cursor;
pub mod listing;
pub mod pagination;
pub mod rate_limit;
pub mod records;
pub mod urls;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;
use uuid::Uuid;

use super::{
    Adapter, AdapterContext, AdapterError, AdapterResult, ChangesPage, ChangesRequest, Credentials,
    FieldInfo, Record, RemoteWrite, TestOutcome,
};
use crate::domain::tenancy::Ctx;
use crate::error::Error;
use crate::features::integrations::custom_api::{CustomApi, CustomEntity, Method};
use crate::features::integrations::model::Integration;
use crate::platform::outbound::OutboundClient;
use call::{Call, Caller};
use cursor::{Listing, Position};
use rate_limit::RateLimiter;

/// A custom REST API, as one integration's connection reaches it.
pub struct CustomRestAdapter {
    api: CustomApi,
    caller: Caller,
}

impl std::fmt::Debug for CustomRestAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomRestAdapter")
            .field("base_url", &self.api.base_url)
            .finish_non_exhaustive()
    }
}

impl CustomRestAdapter {
    /// Opens the adapter for an integration: its `customApi`, its
    /// connection's credentials, and the integration's shared rate limit.
    pub async fn open(
        cx: &AdapterContext,
        ctx: &Ctx,
        integration: &Integration,
    ) -> crate::error::Result<Self> {
        let Some(api) = integration.custom_api.clone() else {
            return Err(Error::Conflict(
                "the integration has no customApi description; add one first".into(),
            ));
        };
        let credentials =
            Credentials::open(cx.connections.clone(), ctx.clone(), integration.id).await?;
        Self::new(cx.outbound.clone(), api, credentials)
            .map(|a| a.for_integration(integration.id))
            .map_err(|e| Error::Conflict(format!("the customApi cannot be used: {e}")))
    }

    /// An adapter from its parts (tests, benchmarks), with a rate limiter of
    /// its own; [`Self::for_integration`] shares an integration's instead.
    pub fn new(
        outbound: Arc<OutboundClient>,
        api: CustomApi,
        credentials: Credentials,
    ) -> AdapterResult<Self> {
        let base = Url::parse(&api.base_url)
            .map_err(|e| AdapterError::Rejected(format!("the base URL is not a URL: {e}")))?;
        let limiter = api
            .rate_limit_per_second
            .map(|n| Arc::new(RateLimiter::new(n)));
        Ok(Self {
            caller: Caller {
                outbound,
                base,
                auth: api.auth.clone(),
                credentials: Arc::new(credentials),
                limiter,
            },
            api,
        })
    }

    /// Shares the process-wide rate limit of `integration` with its other
    /// adapters (what [`Self::open`] does).
    pub fn for_integration(mut self, integration: Uuid) -> Self {
        self.caller.limiter = self
            .api
            .rate_limit_per_second
            .map(|n| RateLimiter::shared(integration, n));
        self
    }

    fn entity(&self, name: &str) -> AdapterResult<&CustomEntity> {
        self.api
            .entities
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| AdapterError::Rejected(format!("the API describes no entity {name:?}")))
    }

    /// The first page of an entity's listing, as a full listing starts.
    async fn first_page(&self, entity: &CustomEntity) -> AdapterResult<Vec<Value>> {
        let start = Listing {
            since: None,
            at: Position::First,
            skip: 0,
            max_seen: None,
        };
        let url = pagination::page_url(&self.caller.base, &entity.list, &start)?;
        let answer = self
            .caller
            .send(Call::new(entity.list.method, &url))
            .await
            .map_err(listing::listing_error)?;
        Ok(records::array(&answer.body, &entity.list.records_pointer)?.to_vec())
    }

    /// What a write answered: the record's id (from the body, else the
    /// `Location` header's last segment, else `known`) and its change time.
    fn written(
        entity: &CustomEntity,
        answer: &call::Answer,
        known: Option<&str>,
    ) -> AdapterResult<RemoteWrite> {
        let body = answer.body.as_object();
        let id = body
            .and_then(|b| records::id_of(b, &entity.list.id_field))
            .or_else(|| {
                let loc = answer
                    .headers
                    .get(reqwest::header::LOCATION)?
                    .to_str()
                    .ok()?;
                let seg = loc.trim_end_matches('/').rsplit('/').next()?;
                (!seg.is_empty()).then(|| seg.to_owned())
            })
            .or_else(|| known.map(str::to_owned))
            .ok_or_else(|| {
                AdapterError::BadAnswer(format!(
                    "the API did not say the new record's id ({:?} or Location)",
                    entity.list.id_field
                ))
            })?;
        let version = entity
            .list
            .updated_at_field
            .as_deref()
            .and_then(|f| body?.get(f))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        Ok(RemoteWrite { id, version })
    }
}

#[async_trait]
impl Adapter for CustomRestAdapter {
    async fn list_changes(&self, req: ChangesRequest<'_>) -> AdapterResult<ChangesPage> {
        self.list(req).await
    }

    /// The entity's `get` call; the answer is the record, or wraps it at
    /// the list's records pointer (an object, or an array of one).
    async fn get(&self, entity: &str, id: &str) -> AdapterResult<Option<Record>> {
        let e = self.entity(entity)?;
        let Some(g) = &e.get else {
            return Err(AdapterError::Unsupported(format!(
                "the API describes no get call for {entity}"
            )));
        };
        let url = urls::below(&self.caller.base, &urls::with_id(&g.path, id)?)?;
        let answer = match self.caller.send(Call::new(Method::Get, &url)).await {
            Ok(a) => a,
            Err(AdapterError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other),
        };
        let body = &answer.body;
        let value = if body.get(&e.list.id_field).is_some() {
            body
        } else {
            match body.pointer(&e.list.records_pointer) {
                Some(Value::Array(items)) => match items.first() {
                    Some(first) => first,
                    None => return Ok(None),
                },
                Some(inner @ Value::Object(_)) => inner,
                _ => body,
            }
        };
        records::record(&e.list, value).map(Some)
    }

    async fn create(
        &self,
        entity: &str,
        fields: &Map<String, Value>,
    ) -> AdapterResult<RemoteWrite> {
        let e = self.entity(entity)?;
        let Some(c) = &e.create else {
            return Err(AdapterError::Unsupported(format!(
                "the API describes no create call for {entity}"
            )));
        };
        let url = urls::below(&self.caller.base, &c.path)?;
        let body = Value::Object(fields.clone());
        let answer = self
            .caller
            .send(Call {
                body: Some(&body),
                ..Call::new(c.method, &url)
            })
            .await?;
        Self::written(e, &answer, None)
    }

    /// The entity's `update` call with the mapped fields as its JSON body;
    /// `if_version` goes out as `If-Match` (412 or 409 → `Conflict`).
    async fn update(
        &self,
        entity: &str,
        id: &str,
        fields: &Map<String, Value>,
        if_version: Option<&str>,
    ) -> AdapterResult<RemoteWrite> {
        let e = self.entity(entity)?;
        let Some(u) = &e.update else {
            return Err(AdapterError::Unsupported(format!(
                "the API describes no update call for {entity}"
            )));
        };
        let url = urls::below(&self.caller.base, &urls::with_id(&u.path, id)?)?;
        let body = Value::Object(fields.clone());
        let answer = self
            .caller
            .send(Call {
                body: Some(&body),
                if_match: if_version,
                ..Call::new(u.method, &url)
            })
            .await?;
        Self::written(e, &answer, Some(id))
    }

    /// Fields inferred from the first listed record (see the module doc).
    async fn describe(&self, entity: &str) -> AdapterResult<Vec<FieldInfo>> {
        let e = self.entity(entity)?;
        let first = self.first_page(e).await?;
        match first.first() {
            Some(Value::Object(rec)) => Ok(records::infer_fields(rec)),
            Some(_) => Err(AdapterError::BadAnswer(
                "a record is not a JSON object".into(),
            )),
            None => Err(AdapterError::Unsupported(format!(
                "{entity} has no record to infer its fields from, and the API publishes no schema"
            ))),
        }
    }

    /// The `healthCheck` call, else the first page of the first entity.
    async fn test(&self) -> AdapterResult<TestOutcome> {
        if let Some(h) = &self.api.health_check {
            let url = urls::below(&self.caller.base, &h.path)?;
            self.caller
                .send(Call::new(h.method, &url))
                .await
                .map_err(listing::listing_error)?;
            return Ok(TestOutcome {
                detail: format!("the health check {} answered", h.path),
            });
        }
        let Some(e) = self.api.entities.first() else {
            return Err(AdapterError::Unsupported(
                "the API describes no entity".into(),
            ));
        };
        let n = self.first_page(e).await?.len();
        Ok(TestOutcome {
            detail: format!("listing {} answered {n} records on its first page", e.name),
        })
    }
}
