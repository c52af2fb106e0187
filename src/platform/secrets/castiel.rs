//! Castiel's secret-management service over HTTP (`SECRET_MANAGEMENT_URL`;
//! the contract is reference Appendix A.2, not the paths the original Node
//! modules called).
//!
//! - put: `POST {base}/api/secrets` with `{name, type: "GENERIC", value,
//!   scope: "ORGANIZATION", organizationId: <tenant>, tags, metadata:
//!   {ownerKind, ownerId, tenantId}}` → 201 with the generated `id`; the
//!   reference is `castiel:<id>`.
//! - get: `GET {base}/api/secrets/{id}` (metadata) for the owner check, then
//!   `GET {base}/api/secrets/{id}/value` → `{value}`, only for the owner.
//! - delete: the same owner check, then `DELETE {base}/api/secrets/{id}`
//!   (204; 404 is fine).
//! - health: `GET {base}/health`.
//!
//! Every call carries `X-Tenant-ID: <owner tenant>`, `x-consumer-module:
//! integration-manager`, `x-consumer-resource-id: <owner id>` (form-encoded
//! when it is not plain text) and `Authorization: Bearer` with a service
//! token minted per call for the owner's tenant, valid for a minute
//! ([`TokenKeys::mint_service`], the secret every Castiel service shares).
//!
//! Owner check: another organization (by `organizationId`, or the service
//! answering 403 or 404) is `NotFound`, as another tenant sees nothing;
//! a secret of the tenant whose metadata names another owner (or none) is
//! `Forbidden`, so a reference can never read one of the tenant's other
//! Castiel secrets.
//!
//! Failures: a request times out after [`REQUEST_TIMEOUT`]. Reads and deletes
//! are retried twice (200 ms, then 800 ms) on a 5xx, a timeout or a lost
//! connection; a create only when the connection could not be opened (it may
//! have been stored otherwise); nothing is retried on a 4xx. 401 (our token
//! refused) and other unexpected answers are `Unavailable`, described by
//! method, path and status: no body is ever quoted, so no value can leak.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{SecretError, SecretOwner, SecretRef, SecretStore};
use crate::platform::auth::TokenKeys;

const PREFIX: &str = "castiel:";

/// The consumer module this service calls as (`x-consumer-module`, and the
/// service token's subject).
pub const CONSUMER_MODULE: &str = "integration-manager";

/// Lifetime of a service token (minted per call).
const TOKEN_TTL_SECONDS: i64 = 60;

/// The most a single request may take.
pub use crate::platform::castiel_http::REQUEST_TIMEOUT;

/// Waits before the retries of a request that may be retried.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(800)];

/// Secrets in Castiel's secret-management service.
pub struct CastielSecretStore {
    base: Url,
    http: reqwest::Client,
    tokens: TokenKeys,
}

impl std::fmt::Debug for CastielSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CastielSecretStore")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Whether a request may be sent again after a failure that may have reached
/// the service.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads and deletes: on 5xx, timeouts and lost connections.
    Idempotent,
    /// Creates: only when no connection was opened.
    ConnectOnly,
}

/// A try that may be retried: a 5xx answer, or a request lost on the way.
enum Failure {
    Answer(Response),
    Lost(reqwest::Error),
}

/// The secret-management answer to a create.
#[derive(Deserialize)]
struct Created {
    id: String,
}

/// The part of a secret's metadata the owner check reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    organization_id: Option<String>,
    #[serde(default)]
    metadata: Option<OwnerMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerMetadata {
    owner_kind: Option<String>,
    owner_id: Option<String>,
}

/// The answer of `GET /api/secrets/{id}/value`.
#[derive(Deserialize)]
struct Value {
    value: String,
}

impl CastielSecretStore {
    /// A store over the service at `base` (`SECRET_MANAGEMENT_URL`), signing
    /// service tokens with `tokens`.
    pub fn new(base: Url, tokens: TokenKeys) -> Result<Self, SecretError> {
        let http = crate::platform::castiel_http::client("secret-management", &base)
            .map_err(SecretError::Unavailable)?;
        Ok(Self { base, http, tokens })
    }

    /// `{base}/<segments>`, each segment encoded as one path segment.
    fn url(&self, segments: &[&str]) -> Url {
        crate::platform::castiel_http::route(&self.base, segments)
    }

    fn request(&self, method: Method, url: Url, owner: &SecretOwner) -> RequestBuilder {
        let resource: String = url::form_urlencoded::byte_serialize(owner.id.as_bytes()).collect();
        let token = self
            .tokens
            .mint_service(owner.tenant_id, CONSUMER_MODULE, TOKEN_TTL_SECONDS);
        self.http
            .request(method, url)
            .bearer_auth(token)
            .header("x-tenant-id", owner.tenant_id.to_string())
            .header("x-consumer-module", CONSUMER_MODULE)
            .header("x-consumer-resource-id", resource)
    }

    /// Sends a request (built anew for each try), retrying as `retry` allows.
    async fn send(
        &self,
        what: &str,
        retry: Retry,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, SecretError> {
        let idempotent = retry == Retry::Idempotent;
        let mut delays = RETRY_DELAYS.iter();
        loop {
            let failure = match build().send().await {
                Ok(rsp) if idempotent && rsp.status().is_server_error() => Failure::Answer(rsp),
                Ok(rsp) => return Ok(rsp),
                Err(e) if e.is_connect() || (idempotent && (e.is_timeout() || e.is_request())) => {
                    Failure::Lost(e)
                }
                Err(e) => return Err(failed(what, &e)),
            };
            let Some(delay) = delays.next() else {
                return match failure {
                    Failure::Answer(rsp) => Ok(rsp),
                    Failure::Lost(e) => Err(failed(what, &e)),
                };
            };
            drop(failure);
            tokio::time::sleep(*delay).await;
        }
    }

    /// The owner check: `Ok` when the secret is this owner's.
    async fn check_owner(&self, id: &str, owner: &SecretOwner) -> Result<(), SecretError> {
        let what = "GET /api/secrets/{id}";
        let rsp = self
            .send(what, Retry::Idempotent, || {
                self.request(Method::GET, self.url(&["api", "secrets", id]), owner)
            })
            .await?;
        match rsp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => return Err(SecretError::NotFound),
            status => return Err(refused(what, status)),
        }
        let meta: Metadata = rsp.json().await.map_err(|_| unreadable(what))?;
        if meta.organization_id.as_deref() != Some(&owner.tenant_id.to_string()) {
            return Err(SecretError::NotFound);
        }
        let mine = meta.metadata.is_some_and(|m| {
            m.owner_kind.as_deref() == Some(owner.kind) && m.owner_id.as_deref() == Some(&owner.id)
        });
        if mine {
            Ok(())
        } else {
            Err(SecretError::Forbidden)
        }
    }
}

/// The id a reference names, if it has the shape of one (letters, digits,
/// `-` and `_`, as secret-management's generated ids); else it names nothing.
fn id_of(r: &SecretRef) -> Option<&str> {
    r.0.strip_prefix(PREFIX).filter(|id| {
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn failed(what: &str, e: &reqwest::Error) -> SecretError {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    SecretError::Unavailable(format!("secret-management {what}: {why}"))
}

fn refused(what: &str, status: StatusCode) -> SecretError {
    SecretError::Unavailable(format!("secret-management {what}: answered {status}"))
}

fn unreadable(what: &str) -> SecretError {
    SecretError::Unavailable(format!("secret-management {what}: unreadable answer"))
}

#[async_trait]
impl SecretStore for CastielSecretStore {
    async fn put(
        &self,
        owner: &SecretOwner,
        value: &SecretString,
    ) -> Result<SecretRef, SecretError> {
        super::check_size(value.expose_secret())?;
        let tenant = owner.tenant_id.to_string();
        let body = json!({
            "name": format!("integrations-{}-{}", owner.kind, uuid::Uuid::new_v4().simple()),
            "description": format!("castiel-integrations {} secret", owner.kind),
            "type": "GENERIC",
            "value": value.expose_secret(),
            "scope": "ORGANIZATION",
            "organizationId": tenant,
            "tags": ["castiel-integrations", format!("owner-kind:{}", owner.kind)],
            "metadata": {"ownerKind": owner.kind, "ownerId": owner.id, "tenantId": tenant},
        });
        let what = "POST /api/secrets";
        let rsp = self
            .send(what, Retry::ConnectOnly, || {
                self.request(Method::POST, self.url(&["api", "secrets"]), owner)
                    .json(&body)
            })
            .await?;
        if !matches!(rsp.status(), StatusCode::CREATED | StatusCode::OK) {
            return Err(refused(what, rsp.status()));
        }
        let created: Created = rsp.json().await.map_err(|_| unreadable(what))?;
        let r = SecretRef(format!("{PREFIX}{}", created.id));
        if id_of(&r).is_none() {
            return Err(unreadable(what));
        }
        Ok(r)
    }

    async fn get(&self, owner: &SecretOwner, r: &SecretRef) -> Result<SecretString, SecretError> {
        let id = id_of(r).ok_or(SecretError::NotFound)?;
        self.check_owner(id, owner).await?;
        let what = "GET /api/secrets/{id}/value";
        let rsp = self
            .send(what, Retry::Idempotent, || {
                self.request(
                    Method::GET,
                    self.url(&["api", "secrets", id, "value"]),
                    owner,
                )
            })
            .await?;
        match rsp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(SecretError::NotFound),
            status => return Err(refused(what, status)),
        }
        let answer: Value = rsp.json().await.map_err(|_| unreadable(what))?;
        Ok(SecretString::from(answer.value))
    }

    async fn delete(&self, owner: &SecretOwner, r: &SecretRef) -> Result<(), SecretError> {
        let Some(id) = id_of(r) else {
            return Ok(());
        };
        match self.check_owner(id, owner).await {
            Ok(()) => {}
            Err(SecretError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        }
        let what = "DELETE /api/secrets/{id}";
        let rsp = self
            .send(what, Retry::Idempotent, || {
                self.request(Method::DELETE, self.url(&["api", "secrets", id]), owner)
            })
            .await?;
        match rsp.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            status => Err(refused(what, status)),
        }
    }

    async fn health(&self) -> Result<(), SecretError> {
        let what = "GET /health";
        let rsp = self
            .send(what, Retry::Idempotent, || {
                self.http.get(self.url(&["health"]))
            })
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
