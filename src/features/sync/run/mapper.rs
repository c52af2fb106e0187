//! Stand-in for the mapping engine (`integrations::mapping`) until it lands:
//! copies each mapped external field (dotted paths) to its shard field.

use serde_json::{Map, Value};

use crate::features::integrations::model::{FieldMapping, MappingDirection};

/// A problem with one field.
#[derive(Debug, Clone)]
pub struct MappingIssue {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A mapped record.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// The shard's fields.
    pub data: Map<String, Value>,
    /// Problems that fail the record.
    pub errors: Vec<MappingIssue>,
}

/// Mappings ready to apply.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    fields: Vec<(Vec<String>, String, Option<Value>, bool)>,
}

impl CompiledMapping {
    /// The inbound mappings.
    pub fn inbound(fields: &[FieldMapping]) -> Self {
        Self {
            fields: fields
                .iter()
                .filter(|f| f.direction != Some(MappingDirection::Outbound))
                .map(|f| {
                    (
                        f.external_field.split('.').map(str::to_owned).collect(),
                        f.shard_field.clone(),
                        f.default_value.clone(),
                        f.required.unwrap_or(false),
                    )
                })
                .collect(),
        }
    }

    /// External fields read.
    pub fn external_fields(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.0.join(".")).collect()
    }

    /// Maps a record.
    pub fn apply(&self, record: &Map<String, Value>) -> Mapped {
        let mut out = Mapped::default();
        for (path, shard, default, required) in &self.fields {
            let mut cur: Option<&Value> = None;
            let mut obj = Some(record);
            for seg in path {
                cur = obj.and_then(|o| o.get(seg));
                obj = cur.and_then(Value::as_object);
            }
            let v = match cur {
                Some(Value::Null) | None => default.clone(),
                Some(v) => Some(v.clone()),
            };
            match v {
                Some(v) => {
                    out.data.insert(shard.clone(), v);
                }
                None if *required => out.errors.push(MappingIssue {
                    field: shard.clone(),
                    message: "is required".into(),
                }),
                None => {}
            }
        }
        out
    }
}
