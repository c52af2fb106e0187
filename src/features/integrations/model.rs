//! Tenants' integrations (SPEC §5.3) and their sync configuration.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::tenancy::TenantId;
use crate::domain::validation::{Violations, escape_token};
use crate::platform::store::{Container, ETag, Entity};

/// Lifecycle of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Created, not connected yet.
    Pending,
    /// Has an active connection.
    Connected,
    /// The connection failed.
    Error,
    /// Switched off by the tenant.
    Disabled,
}

/// State of the integration's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// No connection yet.
    None,
    /// Working.
    Active,
    /// Token expired and could not be refreshed.
    Expired,
    /// Revoked by the provider or the user.
    Revoked,
    /// Failing.
    Error,
}

/// Which way a field mapping applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MappingDirection {
    /// External → shard only.
    Inbound,
    /// Shard → external only.
    Outbound,
    /// Both ways.
    Both,
}

/// One field of an entity mapping (SPEC §9.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldMapping {
    /// External field, possibly a dotted path (`Account.Industry`).
    pub external_field: String,
    /// Shard field in `structuredData`.
    pub shard_field: String,
    /// A built-in transform name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Options of the transform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub transform_options: Option<Map<String, Value>>,
    /// Used when the external value is absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub default_value: Option<Value>,
    /// The record fails mapping without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Which way it applies (default both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<MappingDirection>,
}

/// How one external entity maps into one shard type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityMapping {
    /// Stable id of the mapping (generated when absent).
    #[serde(default)]
    pub id: Option<String>,
    /// External entity (`Opportunity`).
    pub external_entity: String,
    /// Target shard type id.
    pub shard_type_id: String,
    /// Target shard type name (`c_opportunity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_type_name: Option<String>,
    /// Whether it syncs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Field mappings.
    #[serde(default)]
    pub field_mappings: Vec<FieldMapping>,
}

fn yes() -> bool {
    true
}

/// Operators of pull filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterOperator {
    /// `=`.
    Equals,
    /// `!=`.
    NotEquals,
    /// Substring.
    Contains,
    /// `>`.
    Gt,
    /// `<`.
    Lt,
    /// One of.
    In,
    /// None of.
    NotIn,
}

/// A condition on external records pulled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullFilter {
    /// External field.
    pub field: String,
    /// Operator.
    pub operator: FilterOperator,
    /// Operand.
    #[schema(value_type = Object)]
    pub value: Value,
}

/// What and how an integration syncs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncConfig {
    /// Entity mappings.
    #[serde(default)]
    pub entity_mappings: Vec<EntityMapping>,
    /// Pull filters.
    #[serde(default)]
    pub pull_filters: Vec<PullFilter>,
}

impl SyncConfig {
    /// Checks the mappings; `base` is the pointer of the config in the body.
    pub fn validate(&mut self, base: &str, v: &mut Violations) {
        let mut seen = std::collections::HashSet::new();
        for (i, m) in self.entity_mappings.iter_mut().enumerate() {
            let p = format!("{base}/entityMappings/{i}");
            if m.id.as_deref().is_none_or(str::is_empty) {
                m.id = Some(Uuid::new_v4().to_string());
            }
            v.text(&format!("{p}/externalEntity"), &m.external_entity, 1, 100);
            v.text(&format!("{p}/shardTypeId"), &m.shard_type_id, 1, 200);
            if !seen.insert(m.external_entity.clone()) {
                v.add(format!("{p}/externalEntity"), "is mapped twice");
            }
            for (j, f) in m.field_mappings.iter().enumerate() {
                let fp = format!("{p}/fieldMappings/{j}");
                validate_field_mapping(&fp, f, v);
            }
        }
        for (i, f) in self.pull_filters.iter().enumerate() {
            v.text(&format!("{base}/pullFilters/{i}/field"), &f.field, 1, 200);
            if matches!(f.operator, FilterOperator::In | FilterOperator::NotIn)
                && !f.value.is_array()
            {
                v.add(
                    format!("{base}/pullFilters/{i}/value"),
                    "must be an array for in / not_in",
                );
            }
        }
    }

    /// The mapping of one external entity.
    pub fn mapping(&self, entity: &str) -> Option<&EntityMapping> {
        self.entity_mappings
            .iter()
            .find(|m| m.external_entity == entity)
    }
}

/// Checks one field mapping; `p` is its pointer.
pub fn validate_field_mapping(p: &str, f: &FieldMapping, v: &mut Violations) {
    v.text(&format!("{p}/externalField"), &f.external_field, 1, 200);
    if f.external_field.split('.').any(str::is_empty) {
        v.add(
            format!("{p}/externalField"),
            "must be a field name or a dotted path",
        );
    }
    v.text(&format!("{p}/shardField"), &f.shard_field, 1, 200);
    // The transform and its typed options (the built-ins live with the engine).
    super::mapping::validate_transform(p, f, v);
}

/// A tenant's integration with one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    /// Id.
    pub id: Uuid,
    /// Owner (partition key).
    pub tenant_id: TenantId,
    /// Catalog entry id.
    pub provider_id: String,
    /// Catalog entry name, denormalised.
    pub provider_name: String,
    /// Catalog category.
    pub category: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// The provider instance (https).
    #[serde(default)]
    pub instance_url: Option<String>,
    /// Free-form settings.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Sync configuration.
    #[serde(default)]
    pub sync_config: SyncConfig,
    /// Custom REST API description (`custom_rest` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_api: Option<super::custom_api::CustomApi>,
    /// Lifecycle.
    pub status: IntegrationStatus,
    /// The status before it was disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_before_disable: Option<IntegrationStatus>,
    /// Credentials state.
    pub connection_status: ConnectionStatus,
    /// Last connection test.
    #[serde(default)]
    pub last_connection_test_at: Option<DateTime<Utc>>,
    /// `success` or `failed`.
    #[serde(default)]
    pub last_connection_test_result: Option<String>,
    /// Last connection error.
    #[serde(default)]
    pub connection_error: Option<String>,
    /// Last sync.
    #[serde(default)]
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Status of the last sync.
    #[serde(default)]
    pub last_sync_status: Option<String>,
    /// Created (sort key of the list: written so that text order is time order).
    #[serde(with = "crate::domain::time::sortable")]
    pub created_at: DateTime<Utc>,
    /// Last changed.
    #[serde(with = "crate::domain::time::sortable")]
    pub updated_at: DateTime<Utc>,
    /// Creating user.
    #[serde(default)]
    pub created_by: Option<String>,
    /// Version tag.
    #[serde(default)]
    pub etag: String,
}

impl Entity for Integration {
    const CONTAINER: Container = Container::Integrations;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

/// Checks free-form `settings`: size and no secrets-looking keys.
pub fn validate_settings(pointer: &str, settings: &Map<String, Value>, v: &mut Violations) {
    let size = serde_json::to_vec(settings).map(|b| b.len()).unwrap_or(0);
    if size > 64 * 1024 {
        v.add(pointer, "must be at most 64 KiB");
    }
    for key in settings.keys() {
        let k = key.to_ascii_lowercase();
        if [
            "password",
            "secret",
            "apikey",
            "api_key",
            "token",
            "clientsecret",
            "client_secret",
        ]
        .iter()
        .any(|s| k.contains(s))
        {
            v.add(
                format!("{pointer}/{}", escape_token(key)),
                "looks like a credential; store credentials through a connection, not in settings",
            );
        }
    }
}
