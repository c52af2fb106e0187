//! Connections (SPEC §5.4): how an integration authenticates to its
//! provider. A connection document holds references to its secrets, never
//! the secrets themselves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::tenancy::TenantId;
use crate::features::integrations::model::ConnectionStatus;
use crate::platform::secrets::SecretRef;
use crate::platform::store::{Container, ETag, Entity};

/// How a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionType {
    /// A static API key.
    ApiKey,
    /// User name and password.
    Basic,
    /// A static bearer token.
    Bearer,
    /// OAuth 2.0 authorization code (with PKCE), made by `oauth/start`.
    Oauth2,
    /// OAuth 2.0 client credentials.
    Oauth2ClientCredentials,
    /// A Google service account: a signed JWT assertion exchanged for a token.
    ServiceAccount,
}

impl ConnectionType {
    /// Whether its access token expires and is renewed by token refresh.
    pub fn refreshes(self) -> bool {
        matches!(
            self,
            ConnectionType::Oauth2
                | ConnectionType::Oauth2ClientCredentials
                | ConnectionType::ServiceAccount
        )
    }
}

/// The names under which a connection's secrets are kept in `secretRefs`.
pub mod secret {
    /// `api_key`.
    pub const API_KEY: &str = "apiKey";
    /// `basic`.
    pub const PASSWORD: &str = "password";
    /// `bearer`.
    pub const TOKEN: &str = "token";
    /// `oauth2_client_credentials`.
    pub const CLIENT_SECRET: &str = "clientSecret";
    /// `service_account`: the whole key file.
    pub const SERVICE_ACCOUNT: &str = "serviceAccountJson";
    /// The current access token of the token-based types.
    pub const ACCESS_TOKEN: &str = "accessToken";
    /// `oauth2`: the refresh token.
    pub const REFRESH_TOKEN: &str = "refreshToken";
}

/// The token part of a connection (no token itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OauthInfo {
    /// When the current access token expires (absent: not known). Written
    /// with fixed digits so that token refresh can compare it as text.
    #[serde(
        default,
        with = "crate::domain::time::exact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Token-refresh bookkeeping: who holds the refresh lease and how the last
/// attempts went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshState {
    /// A refresh holds the connection until then (single flight across
    /// processes; claimed with the document's ETag).
    #[serde(
        default,
        with = "crate::domain::time::exact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub lease_until: Option<DateTime<Utc>>,
    /// Failed refreshes in a row (not counting refusals, which end it at once).
    #[serde(default)]
    pub failures: u32,
    /// The last refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Why the last refresh failed (the provider's error code, never a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A connection: the credentials of one integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Id.
    pub id: Uuid,
    /// The integration (partition key).
    pub integration_id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// How it authenticates.
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// Name shown to people.
    #[serde(default)]
    pub display_name: String,
    /// `active`, `expired`, `revoked` or `error`.
    pub status: ConnectionStatus,
    /// References to the secrets (never values).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub secret_refs: BTreeMap<String, SecretRef>,
    /// User name (`basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Client id (`oauth2_client_credentials`) or service-account email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Token endpoint (`oauth2_client_credentials`, `service_account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// The user a service account acts for (domain-wide delegation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Token expiry and scopes (token-based types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OauthInfo>,
    /// Token-refresh bookkeeping.
    #[serde(default)]
    pub refresh: RefreshState,
    /// When the credentials last worked.
    #[serde(default)]
    pub last_validated_at: Option<DateTime<Utc>>,
    /// Created.
    #[serde(with = "crate::domain::time::sortable")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[serde(with = "crate::domain::time::sortable")]
    pub updated_at: DateTime<Utc>,
    /// Version tag.
    #[serde(default)]
    pub etag: String,
}

impl Entity for Connection {
    const CONTAINER: Container = Container::Connections;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

/// An OAuth authorization in progress: the `state` of `oauth/start`, kept
/// for ten minutes and usable once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OauthAttempt {
    /// The random part of the state.
    pub id: String,
    /// Owning tenant (partition key).
    pub tenant_id: TenantId,
    /// The integration being connected.
    pub integration_id: Uuid,
    /// Where the browser goes back to (origin allow-listed at start).
    pub return_url: String,
    /// The `redirect_uri` sent to the provider (the code exchange repeats it).
    pub redirect_uri: String,
    /// The PKCE verifier (absent when the provider does not use PKCE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    /// Set when the callback used it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// After this the state is refused, even before the TTL removes it.
    pub expires_at: DateTime<Utc>,
    /// Seconds to live (the container's TTL).
    pub ttl: i64,
    /// Version tag.
    #[serde(default)]
    pub etag: String,
}

impl Entity for OauthAttempt {
    const CONTAINER: Container = Container::OauthStates;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}
