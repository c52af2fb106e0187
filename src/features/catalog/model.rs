//! The provider catalog (SPEC §5.2): what tenants may connect to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::tenancy::TenantId;
use crate::domain::validation::{Violations, is_slug};
use crate::platform::store::{Container, ETag, Entity};

/// How a provider authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// OAuth 2.0 authorization code.
    Oauth2,
    /// A static API key.
    ApiKey,
    /// Username and password.
    Basic,
    /// A service account (Google).
    ServiceAccount,
    /// A static bearer token.
    Bearer,
}

/// Who can see an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Every allowed tenant.
    Public,
    /// Only super-admins (through the admin API).
    SuperadminOnly,
}

/// Lifecycle of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    /// Generally available.
    Active,
    /// Available, marked beta.
    Beta,
    /// No new integrations.
    Deprecated,
    /// Hidden and unusable.
    Disabled,
}

/// OAuth endpoints of a provider (client ids and secrets come from configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthEndpoints {
    /// Where users authorize.
    pub authorization_url: String,
    /// Where codes are exchanged.
    pub token_url: String,
    /// Scopes requested.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Use PKCE (S256).
    #[serde(default)]
    pub pkce: bool,
}

/// What a provider can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    /// Records can be read.
    #[serde(default)]
    pub pull: bool,
    /// Records can be written.
    #[serde(default)]
    pub push: bool,
    /// The provider can call us.
    #[serde(default)]
    pub webhooks: bool,
}

/// Which shard types an external entity may sync into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardMapping {
    /// External entity (`Opportunity`).
    pub integration_entity: String,
    /// Allowed shard types.
    pub supported_shard_types: Vec<String>,
    /// One of `supportedShardTypes`.
    pub default_shard_type: String,
    /// Can be synced both ways.
    #[serde(default)]
    pub bidirectional_sync: bool,
    /// What a new integration maps when its creator gives no mappings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_field_mappings: Vec<super::defaults::DefaultFieldMapping>,
}

/// The provider's own request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Requests per hour.
    pub requests_per_hour: u32,
}

/// The editable part of a catalog entry (admin create and replace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogEntryInput {
    /// Slug id (`salesforce`); taken from the path on replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub id: Option<String>,
    /// Category slug (`crm`, `communication`, `calendar`, `storage`, `custom`, …).
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub category: String,
    /// Short name.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\s\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180e\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufeff\\uffa0][^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
    )]
    pub name: String,
    /// Name shown in the UI.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\s\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180e\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufeff\\uffa0][^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
    )]
    pub display_name: String,
    /// What it is.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Accepted authentication methods (at least one).
    #[schema(min_items = 1)]
    pub auth_methods: Vec<AuthMethod>,
    /// OAuth endpoints, required when `oauth2` is accepted.
    #[serde(default)]
    pub oauth: Option<OauthEndpoints>,
    /// External entities.
    #[serde(default)]
    pub supported_entities: Vec<String>,
    /// Capabilities.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Who sees it.
    pub visibility: Visibility,
    /// Lifecycle.
    pub status: ProviderStatus,
    /// Only these tenants (`null`: all).
    #[serde(default)]
    pub allowed_tenants: Option<Vec<TenantId>>,
    /// Never these tenants.
    #[serde(default)]
    pub blocked_tenants: Vec<TenantId>,
    /// Entity → shard types.
    #[serde(default)]
    pub shard_mappings: Vec<ShardMapping>,
    /// Provider request limits.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// A catalog entry as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    /// Slug id.
    pub id: String,
    /// Category (Cosmos partition key).
    pub category: String,
    /// Short name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Authentication methods.
    pub auth_methods: Vec<AuthMethod>,
    /// OAuth endpoints.
    #[serde(default)]
    pub oauth: Option<OauthEndpoints>,
    /// External entities.
    #[serde(default)]
    pub supported_entities: Vec<String>,
    /// Capabilities.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Visibility.
    pub visibility: Visibility,
    /// Status.
    pub status: ProviderStatus,
    /// Allow list (`null`: all tenants).
    #[serde(default)]
    pub allowed_tenants: Option<Vec<TenantId>>,
    /// Block list.
    #[serde(default)]
    pub blocked_tenants: Vec<TenantId>,
    /// Entity → shard types.
    #[serde(default)]
    pub shard_mappings: Vec<ShardMapping>,
    /// Provider request limits.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Seeded by the service (built-in).
    #[serde(default)]
    pub built_in: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version tag (also the `ETag` header).
    #[serde(default)]
    pub etag: String,
}

impl Entity for CatalogEntry {
    const CONTAINER: Container = Container::Providers;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

impl CatalogEntry {
    /// Whether a tenant may see and use this entry (SPEC §5.2).
    pub fn visible_to(&self, tenant: TenantId) -> bool {
        self.visibility == Visibility::Public
            && matches!(self.status, ProviderStatus::Active | ProviderStatus::Beta)
            && self
                .allowed_tenants
                .as_ref()
                .is_none_or(|a| a.contains(&tenant))
            && !self.blocked_tenants.contains(&tenant)
    }

    /// Builds an entry from checked input.
    pub fn from_input(id: String, input: CatalogEntryInput, now: DateTime<Utc>) -> Self {
        Self {
            id,
            category: input.category,
            name: input.name,
            display_name: input.display_name,
            description: input.description,
            auth_methods: input.auth_methods,
            oauth: input.oauth,
            supported_entities: input.supported_entities,
            capabilities: input.capabilities,
            visibility: input.visibility,
            status: input.status,
            allowed_tenants: input.allowed_tenants,
            blocked_tenants: input.blocked_tenants,
            shard_mappings: input.shard_mappings,
            rate_limit: input.rate_limit,
            built_in: false,
            created_at: now,
            updated_at: now,
            etag: String::new(),
        }
    }
}

/// The form part of the one URL policy, https only (the service checks
/// where the token URL points before storing it).
fn check_https(v: &mut Violations, pointer: &str, value: &str) {
    match crate::platform::outbound::parse_stored(value) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(_) => v.add(pointer, "the URL must use https"),
        Err(e) => v.add(pointer, e.to_string()),
    }
}

impl CatalogEntryInput {
    /// Checks the rules serde cannot express.
    pub fn validate(&self, v: &mut Violations) {
        if let Some(id) = &self.id
            && !is_slug(id)
        {
            v.add(
                "/id",
                "must be a slug: lower-case letters, digits, `_` or `-`, at most 64",
            );
        }
        if !is_slug(&self.category) {
            v.add(
                "/category",
                "must be a slug: lower-case letters, digits, `_` or `-`, at most 64",
            );
        }
        v.line("/name", &self.name, 1, 100);
        v.line("/displayName", &self.display_name, 1, 200);
        v.text("/description", &self.description, 0, 2000);
        if self.auth_methods.is_empty() {
            v.add("/authMethods", "must list at least one method");
        }
        match &self.oauth {
            Some(o) => {
                check_https(v, "/oauth/authorizationUrl", &o.authorization_url);
                check_https(v, "/oauth/tokenUrl", &o.token_url);
            }
            None if self.auth_methods.contains(&AuthMethod::Oauth2) => {
                v.add("/oauth", "is required when authMethods includes oauth2");
            }
            None => {}
        }
        for (i, m) in self.shard_mappings.iter().enumerate() {
            if m.supported_shard_types.is_empty() {
                v.add(
                    format!("/shardMappings/{i}/supportedShardTypes"),
                    "must not be empty",
                );
            }
            if !m.supported_shard_types.contains(&m.default_shard_type) {
                v.add(
                    format!("/shardMappings/{i}/defaultShardType"),
                    "must be one of supportedShardTypes",
                );
            }
        }
        super::defaults::validate(&self.shard_mappings, v);
        if let Some(r) = &self.rate_limit {
            if r.requests_per_minute == 0 {
                v.add("/rateLimit/requestsPerMinute", "must be at least 1");
            }
            if r.requests_per_hour < r.requests_per_minute {
                v.add(
                    "/rateLimit/requestsPerHour",
                    "must be at least requestsPerMinute",
                );
            }
        }
    }
}

fn mapping(entity: &str, shard: &str, bidirectional: bool) -> ShardMapping {
    ShardMapping {
        integration_entity: entity.into(),
        supported_shard_types: vec![shard.into()],
        default_shard_type: shard.into(),
        bidirectional_sync: bidirectional,
        default_field_mappings: vec![],
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The four built-in entries seeded at start (SPEC §5.2).
pub fn built_ins() -> Vec<CatalogEntryInput> {
    let base = |id: &str, category: &str, name: &str, display: &str, description: &str| {
        CatalogEntryInput {
            id: Some(id.into()),
            category: category.into(),
            name: name.into(),
            display_name: display.into(),
            description: description.into(),
            auth_methods: vec![],
            oauth: None,
            supported_entities: vec![],
            capabilities: Capabilities {
                pull: true,
                push: false,
                webhooks: false,
            },
            visibility: Visibility::Public,
            status: ProviderStatus::Active,
            allowed_tenants: None,
            blocked_tenants: vec![],
            shard_mappings: vec![],
            rate_limit: None,
        }
    };
    vec![
        CatalogEntryInput {
            auth_methods: vec![AuthMethod::Oauth2],
            oauth: Some(OauthEndpoints {
                authorization_url: "https://login.salesforce.com/services/oauth2/authorize".into(),
                token_url: "https://login.salesforce.com/services/oauth2/token".into(),
                scopes: strings(&["api", "refresh_token", "offline_access"]),
                pkce: true,
            }),
            supported_entities: strings(&["Opportunity", "Account", "Contact"]),
            capabilities: Capabilities {
                pull: true,
                push: true,
                webhooks: false,
            },
            shard_mappings: super::defaults::salesforce(),
            rate_limit: Some(RateLimit {
                requests_per_minute: 100,
                requests_per_hour: 5000,
            }),
            ..base(
                "salesforce",
                "crm",
                "salesforce",
                "Salesforce",
                "Sync opportunities, accounts and contacts with Salesforce.",
            )
        },
        CatalogEntryInput {
            auth_methods: vec![AuthMethod::Oauth2, AuthMethod::Bearer],
            oauth: Some(OauthEndpoints {
                authorization_url: "https://app.hubspot.com/oauth/authorize".into(),
                token_url: "https://api.hubapi.com/oauth/v1/token".into(),
                scopes: strings(&[
                    "crm.objects.deals.read",
                    "crm.objects.deals.write",
                    "crm.objects.companies.read",
                    "crm.objects.contacts.read",
                ]),
                pkce: false,
            }),
            supported_entities: strings(&["deals", "companies", "contacts"]),
            capabilities: Capabilities {
                pull: true,
                push: true,
                webhooks: false,
            },
            shard_mappings: vec![
                mapping("deals", "c_opportunity", true),
                mapping("companies", "c_account", true),
                mapping("contacts", "c_contact", true),
            ],
            rate_limit: Some(RateLimit {
                requests_per_minute: 100,
                requests_per_hour: 6000,
            }),
            ..base(
                "hubspot",
                "crm",
                "hubspot",
                "HubSpot",
                "Sync deals, companies and contacts with HubSpot CRM.",
            )
        },
        CatalogEntryInput {
            auth_methods: vec![AuthMethod::ServiceAccount],
            supported_entities: strings(&["Event", "File", "Message"]),
            shard_mappings: vec![
                mapping("Event", "calendarevent", false),
                mapping("File", "document", false),
                mapping("Message", "email", false),
            ],
            rate_limit: Some(RateLimit {
                requests_per_minute: 60,
                requests_per_hour: 3000,
            }),
            ..base(
                "google_workspace",
                "communication",
                "google_workspace",
                "Google Workspace",
                "Sync Calendar, Drive and Gmail with domain-wide delegation (service account), read-only.",
            )
        },
        CatalogEntryInput {
            auth_methods: vec![AuthMethod::ApiKey, AuthMethod::Bearer, AuthMethod::Basic],
            oauth: None,
            capabilities: Capabilities {
                pull: true,
                push: true,
                webhooks: false,
            },
            ..base(
                "custom_rest",
                "custom",
                "custom_rest",
                "Custom REST API",
                "Describe any REST/JSON API declaratively and sync it.",
            )
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_are_valid() {
        for entry in built_ins() {
            let mut v = Violations::default();
            entry.validate(&mut v);
            assert!(v.is_empty(), "{:?}: {v:?}", entry.id);
        }
    }
}
