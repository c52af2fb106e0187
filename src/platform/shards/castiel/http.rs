//! The HTTP side of the shard-manager client: requests with a service
//! token, bounded retries, and answers read into [`Shard`]s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;
use uuid::Uuid;

use crate::domain::tenancy::TenantId;
use crate::platform::auth::TokenKeys;
use crate::platform::shards::{Shard, ShardError, ShardMetadata};

/// The module this service calls as (the service token's subject).
pub const CONSUMER_MODULE: &str = "integration-manager";

/// Lifetime of a service token (minted per call).
const TOKEN_TTL_SECONDS: i64 = 60;

/// The most a single request may take.
pub use crate::platform::castiel_http::REQUEST_TIMEOUT;

/// Waits before the retries of a request that may be retried.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(800)];

/// Whether a request may be sent again after a failure that may have
/// reached the service.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Reads and replaces: on a 5xx, a timeout or a lost connection.
    Idempotent,
    /// Creates: only when no connection was opened (else the outcome is
    /// unknown and must be checked, never guessed by sending it again).
    ConnectOnly,
}

/// How a create ended when it got no clear answer.
pub(super) enum Sent {
    /// An answer (any status but a 5xx on a create).
    Answer(Response),
    /// The service may or may not have done it: a 5xx, a timeout, or the
    /// connection lost after the request went out.
    Unknown,
}

/// The HTTP client of shard-manager.
pub(super) struct Client {
    pub(super) base: Url,
    http: reqwest::Client,
    tokens: TokenKeys,
}

impl Client {
    pub(super) fn new(base: Url, tokens: TokenKeys) -> Result<Self, ShardError> {
        let http = crate::platform::castiel_http::client("shard-manager", &base)
            .map_err(ShardError::Unavailable)?;
        Ok(Self { base, http, tokens })
    }

    /// `{base}/<segments>`, each segment encoded as one path segment.
    pub(super) fn url(&self, segments: &[&str]) -> Url {
        crate::platform::castiel_http::route(&self.base, segments)
    }

    /// A request for `tenant`: a service token of that tenant, minted for
    /// this call, and `X-Tenant-ID` (shard-manager requires both).
    pub(super) fn request(&self, method: Method, url: Url, tenant: TenantId) -> RequestBuilder {
        let token = self
            .tokens
            .mint_service(tenant, CONSUMER_MODULE, TOKEN_TTL_SECONDS);
        self.http
            .request(method, url)
            .bearer_auth(token)
            .header("x-tenant-id", tenant.to_string())
    }

    /// A request without a token (`/health`).
    pub(super) fn plain(&self, url: Url) -> RequestBuilder {
        self.http.get(url)
    }

    /// Sends an idempotent request (built anew for each try), retrying a
    /// 5xx, a timeout or a lost connection twice; never a 4xx.
    pub(super) async fn send(
        &self,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ShardError> {
        match self.send_with(what, Retry::Idempotent, build).await? {
            Sent::Answer(rsp) => Ok(rsp),
            Sent::Unknown => Err(ShardError::Unavailable(format!(
                "shard-manager {what}: no answer"
            ))),
        }
    }

    /// Sends a request, retrying as `retry` allows.
    pub(super) async fn send_with(
        &self,
        what: &str,
        retry: Retry,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Sent, ShardError> {
        let idempotent = retry == Retry::Idempotent;
        let mut delays = RETRY_DELAYS.iter();
        loop {
            let outcome = build().send().await;
            let retry_it = match &outcome {
                Ok(rsp) if rsp.status().is_server_error() => {
                    // A create answered 5xx may have been stored: its
                    // outcome is unknown, and it is never sent again.
                    if !idempotent {
                        return Ok(Sent::Unknown);
                    }
                    true
                }
                Ok(_) => false,
                Err(e) if e.is_connect() => true,
                Err(e) if e.is_timeout() || e.is_request() || e.is_body() => {
                    if !idempotent {
                        return Ok(Sent::Unknown);
                    }
                    true
                }
                Err(_) => false,
            };
            let delay = if retry_it { delays.next() } else { None };
            let Some(delay) = delay else {
                return match outcome {
                    Ok(rsp) => Ok(Sent::Answer(rsp)),
                    Err(e) => Err(failed(what, &e)),
                };
            };
            drop(outcome);
            tokio::time::sleep(*delay).await;
        }
    }
}

pub(super) fn failed(what: &str, e: &reqwest::Error) -> ShardError {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    ShardError::Unavailable(format!("shard-manager {what}: {why}"))
}

/// An answer that is neither success nor a refusal of the shard itself:
/// described by method, path and status, never by its body.
pub(super) fn refused(what: &str, status: StatusCode) -> ShardError {
    ShardError::Unavailable(format!("shard-manager {what}: answered {status}"))
}

pub(super) fn unreadable(what: &str) -> ShardError {
    ShardError::Unavailable(format!("shard-manager {what}: unreadable answer"))
}

/// A shard as shard-manager answers it (reference §3.10; the fields read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Remote {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub shard_type_id: String,
    #[serde(default)]
    pub shard_type_name: Option<String>,
    #[serde(default)]
    pub structured_data: Map<String, Value>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub source_details: Option<Value>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub revision_id: Option<String>,
    #[serde(default)]
    pub revision_number: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Remote {
    /// Whether this is the shard the sync wrote under `derived` (its id in
    /// `sourceDetails.originalId`).
    pub(super) fn written_as(&self, derived: Uuid) -> bool {
        self.source_details
            .as_ref()
            .and_then(|d| d.get("originalId"))
            .and_then(Value::as_str)
            .is_some_and(|s| s == derived.to_string())
    }

    pub(super) fn into_shard(self) -> Shard {
        let metadata = self
            .metadata
            .and_then(|m| serde_json::from_value::<ShardMetadata>(m).ok());
        Shard {
            id: self.id,
            tenant_id: self.tenant_id,
            shard_type_id: self.shard_type_id,
            shard_type_name: self.shard_type_name,
            structured_data: self.structured_data,
            metadata,
            source: self.source.unwrap_or_default(),
            revision: self.revision_number,
            created_at: self.created_at,
            updated_at: self.updated_at,
            etag: self.revision_id.unwrap_or_default(),
        }
    }
}

/// A page of `GET /api/v1/shards`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RemotePage {
    #[serde(default)]
    pub items: Vec<Value>,
    #[serde(default)]
    pub continuation_token: Option<String>,
}
