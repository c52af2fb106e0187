//! The adapter port (SPEC §9.1): one trait for every external system a
//! sync reads from or writes to, and [`open`], which picks the adapter for
//! an integration's provider.
//!
//! A sync run pages through changes with [`Adapter::list_changes`]: each
//! call returns at most `max` records, the durable *cursor* after the last
//! of them (checkpointed by the run after every page, so a crash resumes
//! there), and an in-run *page token* that continues the same listing
//! without repeating its query. The cursor's shape belongs to the adapter
//! (Salesforce: the `(SystemModstamp, Id)` pair); the run stores it as
//! given and hands it back.

pub mod custom_rest;
pub mod salesforce;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::tenancy::Ctx;
use crate::features::connections::Connections;
use crate::features::connections::access::{self, Access, Credential};
use crate::features::integrations::model::{Integration, PullFilter};
use crate::platform::outbound::OutboundClient;

/// One record of an external system.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its id in the external system.
    pub id: String,
    /// When it last changed there, when the system says.
    pub modified_at: Option<DateTime<Utc>>,
    /// Its fields as the system sends them (nested objects kept: mappings
    /// read dotted paths such as `Account.Industry`).
    pub fields: Map<String, Value>,
}

/// What one listing call asks for.
#[derive(Debug, Clone, Copy)]
pub struct ChangesRequest<'a> {
    /// The external entity (`Opportunity`, a custom API entity's name).
    pub entity: &'a str,
    /// The durable cursor of the last checkpoint; `None` lists from the start.
    pub cursor: Option<&'a Value>,
    /// The page token of the previous call of this run, to continue its listing.
    pub page_token: Option<&'a str>,
    /// The most records to return (the run's remaining budget, ≥ 1).
    pub max: usize,
    /// The fields the mappings read: top-level names, or dotted paths
    /// through related records (`Account.Industry`). An adapter that must
    /// name the fields it reads (SOQL) selects these and what it needs itself.
    pub fields: &'a [String],
    /// The integration's pull filters (`syncConfig.pullFilters`), for
    /// adapters that can filter at the source.
    pub filters: &'a [PullFilter],
}

/// One page of changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangesPage {
    /// The records, oldest change first.
    pub records: Vec<Record>,
    /// The durable cursor after the last record returned (`None`: keep the
    /// previous one; nothing was returned).
    pub cursor: Option<Value>,
    /// Continues this listing in the same run; `None` when this call ended it.
    pub page_token: Option<String>,
    /// Whether the source holds more changes after `cursor` (the page token,
    /// when present, reads them).
    pub more: bool,
}

/// A write the remote accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWrite {
    /// The record's id there.
    pub id: String,
    /// Its new version or modification time, when the remote says.
    pub version: Option<String>,
}

/// One field of an external entity ([`Adapter::describe`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldInfo {
    /// API name.
    pub name: String,
    /// Label shown to people.
    pub label: String,
    /// Type (`string`, `number`, `boolean`, `date`, `datetime`, `reference`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether a create needs it.
    pub required: bool,
}

/// What a connection test found.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// What was checked, for people (`API v60.0 answered; 14,800 of 15,000 calls left today`).
    pub detail: String,
}

/// Everything an adapter call can fail with. Messages are for the
/// execution's `errors` and the API: the provider's own message where it
/// gave one, never a credential.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AdapterError {
    /// The credentials were refused (after one renewal, for OAuth types).
    #[error("the provider refused the credentials: {0}")]
    Unauthorized(String),
    /// The provider's rate or daily limit: retry after the given time.
    #[error("the provider's request limit is reached: {message}")]
    RateLimited {
        /// The provider's message.
        message: String,
        /// When to try again, when the provider says.
        retry_after: Option<std::time::Duration>,
    },
    /// The request was refused as invalid (a mapping names a field the
    /// entity lacks, a bad filter…): retrying does not help.
    #[error("the provider refused the request: {0}")]
    Rejected(String),
    /// No such record.
    #[error("not found: {0}")]
    NotFound(String),
    /// The remote's concurrency check failed (the record changed there).
    #[error("the record changed on the provider: {0}")]
    Conflict(String),
    /// The adapter cannot do this (an inbound-only system, a custom API
    /// entity without an update call).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The provider could not be reached, timed out, or failed (5xx).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something this adapter cannot read.
    #[error("the provider's answer could not be read: {0}")]
    BadAnswer(String),
    /// The URL the call needs is refused by the outbound policy.
    #[error("the provider's address is not allowed: {0}")]
    Blocked(String),
    /// The run was cancelled while the adapter waited (rate limit).
    #[error("cancelled")]
    Cancelled,
}

impl AdapterError {
    /// Whether a later run may succeed where this one failed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AdapterError::RateLimited { .. } | AdapterError::Unavailable(_)
        )
    }
}

/// The result type of adapter calls.
pub type AdapterResult<T> = Result<T, AdapterError>;

/// An external system, as one integration's connection reaches it.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Lists records of `req.entity` changed since `req.cursor`, page by page.
    async fn list_changes(&self, req: ChangesRequest<'_>) -> AdapterResult<ChangesPage>;

    /// Reads one record; `Ok(None)` when it does not exist.
    async fn get(&self, entity: &str, id: &str) -> AdapterResult<Option<Record>>;

    /// Creates a record from mapped fields.
    async fn create(&self, entity: &str, fields: &Map<String, Value>)
    -> AdapterResult<RemoteWrite>;

    /// Updates a record; `if_version` is the remote's concurrency check
    /// where it has one (a version or last-modified time read earlier).
    async fn update(
        &self,
        entity: &str,
        id: &str,
        fields: &Map<String, Value>,
        if_version: Option<&str>,
    ) -> AdapterResult<RemoteWrite>;

    /// The fields of an entity.
    async fn describe(&self, entity: &str) -> AdapterResult<Vec<FieldInfo>>;

    /// Checks that the connection works.
    async fn test(&self) -> AdapterResult<TestOutcome>;
}

/// Where adapters send their calls and how they renew credentials: what
/// [`open`] needs besides the integration.
#[derive(Clone)]
pub struct AdapterContext {
    /// The connections (credentials, and their renewal after a 401).
    pub connections: Arc<Connections>,
    /// The SSRF-guarded client every call goes through.
    pub outbound: Arc<OutboundClient>,
    /// Provider settings (API versions, base-URL overrides).
    pub providers: ProviderSettings,
}

/// Per-provider settings from configuration.
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    /// Salesforce REST API version (`v60.0`).
    pub salesforce_api_version: String,
}

/// The credentials of one integration, renewed at most once per run after
/// a 401 (shared by the adapters).
pub struct Credentials {
    renewal: Option<(Arc<Connections>, Ctx)>,
    current: tokio::sync::RwLock<Option<Access>>,
    fixed: Option<Credential>,
    renewed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// The integration's credentials as they are now.
    pub async fn open(
        connections: Arc<Connections>,
        ctx: Ctx,
        integration_id: Uuid,
    ) -> crate::error::Result<Self> {
        let current = access::for_calls(&connections, &ctx, integration_id).await?;
        Ok(Self {
            renewal: Some((connections, ctx)),
            current: tokio::sync::RwLock::new(Some(current)),
            fixed: None,
            renewed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A credential that is never renewed (tests, benchmarks).
    pub fn fixed(credential: Credential) -> Self {
        Self {
            renewal: None,
            current: tokio::sync::RwLock::new(None),
            fixed: Some(credential),
            renewed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The credential to send now.
    pub async fn current(&self) -> Credential {
        if let Some(c) = &self.fixed {
            return c.clone();
        }
        match &*self.current.read().await {
            Some(a) => a.credential.clone(),
            None => Credential::Bearer(secrecy::SecretString::from(String::new())),
        }
    }

    /// After a 401: renews once per run (`false` when already renewed, not
    /// renewable, or renewal failed; the 401 is then final).
    pub async fn renew(&self) -> bool {
        let Some((connections, ctx)) = &self.renewal else {
            return false;
        };
        if self.renewed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let Some(old) = self.current.read().await.clone() else {
            return false;
        };
        match access::renewed(connections, ctx, &old).await {
            Ok(new) => {
                *self.current.write().await = Some(new);
                true
            }
            Err(e) => {
                tracing::warn!(integration.id = %old.connection.integration_id, error = %e, "renewing credentials after a 401 failed");
                false
            }
        }
    }
}

/// The adapter for an integration's provider, with its credentials.
pub async fn open(
    cx: &AdapterContext,
    ctx: &Ctx,
    integration: &Integration,
) -> crate::error::Result<Box<dyn Adapter>> {
    match integration.provider_id.as_str() {
        "salesforce" => Ok(Box::new(
            salesforce::SalesforceAdapter::open(cx, ctx, integration).await?,
        )),
        "custom_rest" => Ok(Box::new(
            custom_rest::CustomRestAdapter::open(cx, ctx, integration).await?,
        )),
        other => Err(crate::error::Error::Conflict(format!(
            "provider {other} has no sync adapter yet"
        ))),
    }
}
