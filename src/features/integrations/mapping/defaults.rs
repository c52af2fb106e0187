//! A provider's default mappings (SPEC §9.5) as an integration's entity
//! mappings: what a new integration gets when its creator sends no
//! `syncConfig`.

use uuid::Uuid;

use crate::domain::validation::Violations;
use crate::features::catalog::model::CatalogEntry;
use crate::features::integrations::model::{EntityMapping, FieldMapping, validate_field_mapping};

/// The entity mappings of the provider's shard mappings that ship default
/// field mappings. A default that does not pass the integration's rules (an
/// admin-edited catalog entry naming an unknown transform) is left out and
/// logged, so creating the integration never fails on the catalog's data.
pub fn entity_mappings(provider: &CatalogEntry) -> Vec<EntityMapping> {
    provider
        .shard_mappings
        .iter()
        .filter(|m| !m.default_field_mappings.is_empty())
        .map(|m| EntityMapping {
            id: Some(Uuid::new_v4().to_string()),
            external_entity: m.integration_entity.clone(),
            shard_type_id: m.default_shard_type.clone(),
            shard_type_name: Some(m.default_shard_type.clone()),
            enabled: true,
            field_mappings: m
                .default_field_mappings
                .iter()
                .filter_map(|d| {
                    let f = serde_json::to_value(d)
                        .and_then(serde_json::from_value::<FieldMapping>)
                        .ok();
                    let mut v = Violations::default();
                    if let Some(f) = &f {
                        validate_field_mapping("", f, &mut v);
                    }
                    if f.is_none() || !v.is_empty() {
                        tracing::warn!(
                            provider = %provider.id,
                            entity = %m.integration_entity,
                            field = %d.external_field,
                            "a default field mapping of the catalog does not pass the mapping rules; left out"
                        );
                        return None;
                    }
                    f
                })
                .collect(),
        })
        .collect()
}
