//! Declarative field mapping (SPEC §9.4): an entity mapping's field
//! mappings compiled once per sync run, then applied to each record.
//!
//! For each field, in order: read `externalField` (a dotted path through
//! nested objects, `Account.Industry`), use `defaultValue` when that is
//! absent or null, apply the `transform`, then check `required`. A
//! transform that cannot take the value, or a required field left without
//! one, is an error for that field; the other fields still map.
//!
//! Compiling splits the paths and types the transform options, so applying
//! parses nothing. A compiled field reads one side and writes the other;
//! [`CompiledMapping::inbound`] reads the external record and writes shard
//! fields, and an outbound mapping (issue 22) is the same with the sides
//! swapped and the directions `outbound`/`both`.

pub mod dates;
pub mod defaults;
pub mod preview;
pub mod specs;
pub mod transforms;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use self::transforms::{OptionProblem, Transform};
use super::model::{FieldMapping, MappingDirection};
use crate::domain::validation::{Violations, escape_token};

pub use self::transforms::TRANSFORMS;

/// One problem with one field of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingIssue {
    /// The field written (the shard field, inbound).
    pub field: String,
    /// What went wrong.
    pub message: String,
}

/// A record mapped: the fields written, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// The mapped fields (a shard's `structuredData`, inbound).
    pub data: Map<String, Value>,
    /// Field errors: the record should not be written as it is.
    pub errors: Vec<MappingIssue>,
    /// Worth telling, not blocking.
    pub warnings: Vec<MappingIssue>,
}

impl Mapped {
    /// No errors.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A field path split once: the first key, then keys into nested objects.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldPath {
    written: String,
    keys: Box<[String]>,
}

impl FieldPath {
    fn new(path: &str) -> Self {
        Self {
            written: path.to_owned(),
            keys: path.split('.').map(str::to_owned).collect(),
        }
    }

    /// The value at the path; a missing key or a non-object on the way is absent.
    fn read<'a>(&self, record: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.keys.split_first()?;
        let mut at = record.get(first)?;
        for key in rest {
            at = at.as_object()?.get(key)?;
        }
        Some(at)
    }
}

/// One field mapping, ready to apply.
#[derive(Debug, Clone, PartialEq)]
struct CompiledField {
    read: FieldPath,
    write: String,
    default: Option<Value>,
    /// `Err`: the stored options do not compile (stored before a rule
    /// existed); every record reports it rather than mapping wrongly.
    transform: Option<Result<Transform, String>>,
    required: bool,
}

/// Field mappings compiled for one direction: build once per run, apply
/// per record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompiledMapping {
    fields: Vec<CompiledField>,
}

impl CompiledMapping {
    /// External record → shard fields. Only mappings whose direction is
    /// inbound, both or unset apply inbound. The input was validated on
    /// write; a transform that no longer compiles is reported per record.
    pub fn inbound(fields: &[FieldMapping]) -> CompiledMapping {
        let fields = fields
            .iter()
            .filter(|f| f.direction != Some(MappingDirection::Outbound))
            .map(|f| CompiledField {
                read: FieldPath::new(&f.external_field),
                write: f.shard_field.clone(),
                default: f.default_value.clone(),
                transform: compile_transform(f),
                required: f.required.unwrap_or(false),
            })
            .collect();
        CompiledMapping { fields }
    }

    /// Maps one record.
    pub fn apply(&self, record: &Map<String, Value>) -> Mapped {
        let mut out = Mapped::default();
        for f in &self.fields {
            let mut value = match f.read.read(record) {
                None | Some(Value::Null) if f.default.is_some() => f.default.clone(),
                found => found.cloned(),
            };
            match &f.transform {
                None => {}
                Some(Err(message)) => {
                    out.errors.push(issue(f, message.clone()));
                    continue;
                }
                Some(Ok(t)) => match t.apply(value) {
                    Ok(applied) => {
                        value = applied.value;
                        if let Some(w) = applied.warning {
                            out.warnings.push(issue(f, w));
                        }
                    }
                    Err(message) => {
                        out.errors.push(issue(f, message));
                        continue;
                    }
                },
            }
            if f.required && is_missing(value.as_ref()) {
                out.errors.push(issue(
                    f,
                    format!(
                        "required field {} is missing or empty (read from {})",
                        f.write, f.read.written
                    ),
                ));
                continue;
            }
            if let Some(v) = value {
                out.data.insert(f.write.clone(), v);
            }
        }
        out
    }

    /// The fields the mappings read, as written (`Name`, `Account.Industry`),
    /// each once, in mapping order: for adapters that must name the fields
    /// they fetch (SOQL `SELECT`).
    pub fn external_fields(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.fields
            .iter()
            .filter(|f| seen.insert(f.read.written.as_str()))
            .map(|f| f.read.written.clone())
            .collect()
    }

    /// No field maps in this direction.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

fn issue(f: &CompiledField, message: String) -> MappingIssue {
    MappingIssue {
        field: f.write.clone(),
        message,
    }
}

fn is_missing(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    }
}

fn compile_transform(f: &FieldMapping) -> Option<Result<Transform, String>> {
    match transforms::check(f.transform.as_deref(), f.transform_options.as_ref()) {
        Ok(t) => t.map(Ok),
        Err(problems) => Some(Err(format!(
            "the mapping's transform cannot be used: {}",
            problems
                .iter()
                .map(describe_problem)
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

fn describe_problem(p: &OptionProblem) -> String {
    match p {
        OptionProblem::UnknownTransform(name) => format!("unknown transform {name:?}"),
        OptionProblem::OptionsWithoutTransform => "transformOptions without a transform".into(),
        OptionProblem::Option(key, detail) => format!("option {key:?} {detail}"),
    }
}

/// Checks a field mapping's transform and options; `p` is the mapping's
/// pointer (`/syncConfig/entityMappings/0/fieldMappings/2`).
pub fn validate_transform(p: &str, f: &FieldMapping, v: &mut Violations) {
    let Err(problems) = transforms::check(f.transform.as_deref(), f.transform_options.as_ref())
    else {
        return;
    };
    for problem in problems {
        match problem {
            OptionProblem::UnknownTransform(_) => v.add(
                format!("{p}/transform"),
                format!(
                    "unknown transform; one of: {}",
                    transforms::names().collect::<Vec<_>>().join(", ")
                ),
            ),
            OptionProblem::OptionsWithoutTransform => {
                v.add(format!("{p}/transformOptions"), "options need a transform")
            }
            OptionProblem::Option(key, detail) => v.add(
                format!("{p}/transformOptions/{}", escape_token(&key)),
                detail,
            ),
        }
    }
}
