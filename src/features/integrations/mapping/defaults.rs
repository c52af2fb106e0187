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

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::features::integrations::mapping::CompiledMapping;

    fn record(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn salesforce_defaults_pass_the_mapping_rules() {
        let entries = crate::features::catalog::model::built_ins();
        let sf = entries
            .iter()
            .find(|e| e.id.as_deref() == Some("salesforce"))
            .expect("salesforce");
        let mut seen = Vec::new();
        for m in &sf.shard_mappings {
            assert!(
                !m.default_field_mappings.is_empty(),
                "{}",
                m.integration_entity
            );
            for (j, d) in m.default_field_mappings.iter().enumerate() {
                let f: FieldMapping =
                    serde_json::from_value(serde_json::to_value(d).expect("json")).expect("shape");
                let mut v = Violations::default();
                validate_field_mapping(&format!("/{j}"), &f, &mut v);
                assert!(v.is_empty(), "{}: {v:?}", m.integration_entity);
            }
            seen.push((m.integration_entity.as_str(), m.default_shard_type.as_str()));
        }
        assert_eq!(
            seen,
            [
                ("Opportunity", "c_opportunity"),
                ("Account", "c_account"),
                ("Contact", "c_contact")
            ]
        );
    }

    #[test]
    fn salesforce_contact_roles_normalise() {
        let entries = crate::features::catalog::model::built_ins();
        let sf = entries
            .iter()
            .find(|e| e.id.as_deref() == Some("salesforce"))
            .expect("salesforce");
        let contact = sf
            .shard_mappings
            .iter()
            .find(|m| m.integration_entity == "Contact")
            .expect("contact");
        let fields: Vec<FieldMapping> = contact
            .default_field_mappings
            .iter()
            .map(|d| serde_json::from_value(serde_json::to_value(d).expect("json")).expect("shape"))
            .collect();
        let m = CompiledMapping::inbound(&fields);
        for (role, want) in [
            ("Economic Buyer", json!("decision_maker")),
            ("Executive Sponsor", json!("executive_sponsor")),
            ("technical buyer", json!("influencer")),
            ("Other", Value::Null),
        ] {
            let out = m.apply(&record(&json!({"LastName": "Doe", "Contact_Role__c": role,
                                             "Email": "A@B.example"})));
            assert!(out.is_valid(), "{out:?}");
            assert_eq!(out.data["role"], want, "{role}");
            assert_eq!(out.data["email"], "a@b.example");
        }
    }
}
