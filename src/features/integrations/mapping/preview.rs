//! Trying mappings on sample data (`POST …/field-mappings/{entityType}/test`)
//! and listing the built-in transforms (`GET …/transform-functions`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::transforms::TRANSFORMS;
use super::{CompiledMapping, MappingIssue};
use crate::domain::tenancy::Ctx;
use crate::domain::validation::Violations;
use crate::error::{Error, Result};
use crate::features::integrations::Integrations;
use crate::features::integrations::model::{FieldMapping, validate_field_mapping};
use crate::features::integrations::service;

/// Body of `POST /api/v1/integrations/{id}/field-mappings/{entityType}/test`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingTest {
    /// A sample external record.
    #[schema(value_type = Object)]
    pub test_data: Map<String, Value>,
    /// Mappings to try (else the stored mapping of the entity).
    #[serde(default)]
    pub field_mappings: Option<Vec<FieldMapping>>,
}

/// What the mappings made of the sample.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingTestResult {
    /// The mapped fields.
    #[schema(value_type = Object)]
    pub transformed_data: Map<String, Value>,
    /// No errors.
    pub valid: bool,
    /// Field errors (a sync would not write this record).
    pub errors: Vec<MappingIssue>,
    /// Warnings.
    pub warnings: Vec<MappingIssue>,
}

/// Applies the given mappings, or the stored ones of `entity`, inbound to
/// the sample. The integration must be the caller's (404 otherwise).
pub async fn test(
    app: &Integrations,
    ctx: &Ctx,
    id: Uuid,
    entity: &str,
    input: MappingTest,
) -> Result<MappingTestResult> {
    if let Some(fields) = &input.field_mappings {
        let mut v = Violations::default();
        for (j, f) in fields.iter().enumerate() {
            validate_field_mapping(&format!("/fieldMappings/{j}"), f, &mut v);
        }
        v.into_result()?;
    }
    let integration = service::get(app, ctx, id).await?;
    let compiled = match &input.field_mappings {
        Some(fields) => CompiledMapping::inbound(fields),
        None => CompiledMapping::inbound(
            &integration
                .sync_config
                .mapping(entity)
                .ok_or(Error::NotFound("entity mapping"))?
                .field_mappings,
        ),
    };
    let mapped = compiled.apply(&input.test_data);
    Ok(MappingTestResult {
        valid: mapped.is_valid(),
        transformed_data: mapped.data,
        errors: mapped.errors,
        warnings: mapped.warnings,
    })
}

/// One option of a listed transform.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TransformOptionInfo {
    /// Key in `transformOptions`.
    pub name: String,
    /// `integer`, `string`, `object` or `any`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Must be given.
    pub required: bool,
    /// Used when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What it does.
    pub description: String,
}

/// One listed transform.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TransformInfo {
    /// Name used in `transform`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its options.
    pub options: Vec<TransformOptionInfo>,
}

/// Body of `GET /api/v1/integrations/transform-functions`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TransformList {
    /// The built-in transforms.
    pub transforms: Vec<TransformInfo>,
}

/// The built-in transforms with their option schemas.
pub fn list() -> TransformList {
    TransformList {
        transforms: TRANSFORMS
            .iter()
            .map(|t| TransformInfo {
                name: t.name.to_owned(),
                description: t.description.to_owned(),
                options: t
                    .options
                    .iter()
                    .map(|o| TransformOptionInfo {
                        name: o.name.to_owned(),
                        kind: o.kind.name().to_owned(),
                        required: o.required,
                        default: o.default.map(|d| d.to_json()),
                        description: o.description.to_owned(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
