//! Default field mappings a catalog entry ships (SPEC §9.5): what a new
//! integration of the provider maps when its creator gives no mappings.
//!
//! They are data in the catalog's own type, in the JSON shape of an
//! integration's field mapping; the integrations feature (which owns the
//! mapping rules and may import the catalog, not the other way round)
//! checks and copies them. The Salesforce table and its reasons are in
//! `docs/salesforce-to-shard-mapping.md`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::model::ShardMapping;
use crate::domain::validation::Violations;

/// Which way a default field mapping applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DefaultDirection {
    /// External → shard only.
    Inbound,
    /// Shard → external only.
    Outbound,
    /// Both ways.
    Both,
}

/// One default field mapping, in the shape of an integration's field mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultFieldMapping {
    /// External field or dotted path (`Account.Industry`).
    pub external_field: String,
    /// Shard field.
    pub shard_field: String,
    /// A built-in transform name (checked when an integration takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Its options.
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
    pub direction: Option<DefaultDirection>,
}

/// Checks the form of the default field mappings of `shardMappings`.
pub fn validate(mappings: &[ShardMapping], v: &mut Violations) {
    for (i, m) in mappings.iter().enumerate() {
        for (j, f) in m.default_field_mappings.iter().enumerate() {
            let p = format!("/shardMappings/{i}/defaultFieldMappings/{j}");
            v.line(&format!("{p}/externalField"), &f.external_field, 1, 200);
            v.line(&format!("{p}/shardField"), &f.shard_field, 1, 200);
        }
    }
}

/// A plain copy: external field → shard field.
fn copy(external: &str, shard: &str) -> DefaultFieldMapping {
    DefaultFieldMapping {
        external_field: external.into(),
        shard_field: shard.into(),
        transform: None,
        transform_options: None,
        default_value: None,
        required: None,
        direction: None,
    }
}

/// A copy through a transform without options.
fn with(external: &str, shard: &str, transform: &str) -> DefaultFieldMapping {
    DefaultFieldMapping {
        transform: Some(transform.into()),
        ..copy(external, shard)
    }
}

/// A field the shard cannot do without.
fn required(mut f: DefaultFieldMapping) -> DefaultFieldMapping {
    f.required = Some(true);
    f
}

/// Only from Salesforce into shards (a computed or read-only field).
fn inbound(mut f: DefaultFieldMapping) -> DefaultFieldMapping {
    f.direction = Some(DefaultDirection::Inbound);
    f
}

fn options(value: Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Opportunity → `c_opportunity`: the standard fields, then the optional
/// BI Sales Risk ones (custom fields end in `__c`).
fn opportunity() -> Vec<DefaultFieldMapping> {
    vec![
        required(with("Name", "name", "trim")),
        with("Amount", "amount", "stringToNumber"),
        copy("StageName", "stage"),
        with("CloseDate", "closeDate", "dateToISO"),
        with("Probability", "probability", "stringToNumber"),
        inbound(copy("IsClosed", "isClosed")),
        inbound(copy("IsWon", "isWon")),
        copy("AccountId", "accountId"),
        copy("OwnerId", "ownerId"),
        inbound(with("CreatedDate", "createdDate", "dateToISO")),
        inbound(with("LastActivityDate", "lastActivityDate", "dateToISO")),
        inbound(copy("Account.Industry", "industry")),
        inbound(copy("Account.Industry_Code__c", "industryId")),
        DefaultFieldMapping {
            transform_options: options(json!({"separator": ";"})),
            ..inbound(with("Competitor_Ids__c", "competitorIds", "splitToArray"))
        },
        inbound(with("LastStageChangeDate", "stageUpdatedAt", "dateToISO")),
        inbound(copy("Stage_Dates__c", "stageDates")),
        copy("Loss_Reason__c", "lossReason"),
        copy("Win_Reason__c", "winReason"),
        copy("Competitor__c", "competitorId"),
    ]
}

/// Account → `c_account`.
fn account() -> Vec<DefaultFieldMapping> {
    vec![
        required(with("Name", "name", "trim")),
        copy("Type", "type"),
        copy("Industry", "industry"),
        copy("Industry_Code__c", "industryId"),
        copy("Website", "website"),
        with("AnnualRevenue", "annualRevenue", "stringToNumber"),
        with("NumberOfEmployees", "numberOfEmployees", "stringToNumber"),
        copy("BillingCountry", "billingCountry"),
        copy("OwnerId", "ownerId"),
        inbound(with("CreatedDate", "createdDate", "dateToISO")),
    ]
}

/// Contact → `c_contact`; the role normalised to the three BI Sales Risk roles.
fn contact() -> Vec<DefaultFieldMapping> {
    let roles = json!({
        "map": {
            "Decision Maker": "decision_maker",
            "Economic Buyer": "decision_maker",
            "Economic Decision Maker": "decision_maker",
            "Executive Sponsor": "executive_sponsor",
            "Influencer": "influencer",
            "Evaluator": "influencer",
            "Technical Buyer": "influencer",
            "Business User": "influencer"
        },
        "default": null
    });
    vec![
        copy("FirstName", "firstName"),
        required(with("LastName", "lastName", "trim")),
        with("Email", "email", "toLowerCase"),
        copy("Phone", "phone"),
        copy("Title", "title"),
        copy("AccountId", "accountId"),
        copy("OwnerId", "ownerId"),
        DefaultFieldMapping {
            transform_options: options(roles),
            ..inbound(with("Contact_Role__c", "role", "valueMap"))
        },
        inbound(with("CreatedDate", "createdDate", "dateToISO")),
    ]
}

/// The Salesforce entry's shard mappings with their default field mappings.
pub fn salesforce() -> Vec<ShardMapping> {
    [
        ("Opportunity", "c_opportunity", opportunity()),
        ("Account", "c_account", account()),
        ("Contact", "c_contact", contact()),
    ]
    .into_iter()
    .map(|(entity, shard, fields)| ShardMapping {
        integration_entity: entity.into(),
        supported_shard_types: vec![shard.into()],
        default_shard_type: shard.into(),
        bidirectional_sync: true,
        default_field_mappings: fields,
    })
    .collect()
}

/// Fills in the default field mappings of a built-in entry's shard
/// mappings that have none, from the seed (`true` when something changed).
/// Mappings that have some are left as they are, so an admin's edits stay
/// and a second seeding changes nothing.
pub fn fill_missing(stored: &mut [ShardMapping], seed: &[ShardMapping]) -> bool {
    let mut changed = false;
    for m in stored.iter_mut() {
        if !m.default_field_mappings.is_empty() {
            continue;
        }
        if let Some(s) = seed
            .iter()
            .find(|s| s.integration_entity == m.integration_entity)
            .filter(|s| !s.default_field_mappings.is_empty())
        {
            m.default_field_mappings = s.default_field_mappings.clone();
            changed = true;
        }
    }
    changed
}
