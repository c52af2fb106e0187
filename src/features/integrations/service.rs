//! Tenants' integrations: create, read, replace, delete, field mappings.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Integrations;
use super::custom_api::CustomApi;
use crate::domain::pages::{PageRequest, Paged};
use crate::domain::tenancy::Ctx;
use crate::domain::validation::Violations;
use crate::error::{Error, Result};
use crate::features::catalog::service as catalog;
use crate::features::integrations::model::{
    ConnectionStatus, EntityMapping, FieldMapping, Integration, IntegrationStatus, SyncConfig,
    validate_field_mapping, validate_settings,
};
use crate::platform::events::{Event, types};
use crate::platform::store::{Document, ETag, Query, Write, as_written};

/// The catalog id of custom REST integrations.
pub const CUSTOM_REST: &str = "custom_rest";

/// Body of `POST /api/v1/integrations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewIntegration {
    /// Catalog entry id (must be visible to the tenant).
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub provider_id: String,
    /// Name (1–200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\s\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180e\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufeff\\uffa0][^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
    )]
    pub name: String,
    /// Description.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Provider instance URL (https).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048, pattern = "^https://")]
    pub instance_url: Option<String>,
    /// Free-form settings (no credentials).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    /// Sync configuration.
    #[serde(default)]
    pub sync_config: Option<SyncConfig>,
    /// Custom REST API description (`custom_rest` only).
    #[serde(default)]
    pub custom_api: Option<CustomApi>,
}

/// Body of `PUT /api/v1/integrations/{id}`: the editable fields, replaced whole.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationUpdate {
    /// Name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\s\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180e\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufeff\\uffa0][^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
    )]
    pub name: String,
    /// Description (absent clears it).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Instance URL (absent clears it).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048, pattern = "^https://")]
    pub instance_url: Option<String>,
    /// Settings (absent clears them).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    /// Sync configuration (absent clears it).
    #[serde(default)]
    pub sync_config: Option<SyncConfig>,
    /// Custom REST API description (`custom_rest` only; absent clears it).
    #[serde(default)]
    pub custom_api: Option<CustomApi>,
    /// Only `disabled`, or back from `disabled` to the previous status (absent: unchanged).
    #[serde(default)]
    pub status: Option<IntegrationStatus>,
}

/// Body of `PUT /api/v1/integrations/{id}/field-mappings/{entityType}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityMappingUpdate {
    /// Target shard type id.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\s\\u00ad\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180e\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufeff\\uffa0][^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
    )]
    pub shard_type_id: String,
    /// Target shard type name.
    #[serde(default)]
    pub shard_type_name: Option<String>,
    /// Whether it syncs (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Field mappings.
    pub field_mappings: Vec<FieldMapping>,
}

/// Filters of the integration list.
#[derive(Debug, Clone, Default)]
pub struct IntegrationFilter {
    /// Only this provider.
    pub provider_id: Option<String>,
    /// Only this status.
    pub status: Option<IntegrationStatus>,
}

/// The editable fields of create and replace, checked alike.
struct Editable<'a> {
    name: &'a str,
    description: Option<&'a str>,
    instance_url: &'a mut Option<String>,
    settings: Option<&'a Map<String, Value>>,
    sync_config: Option<&'a mut SyncConfig>,
    custom_api: Option<&'a mut CustomApi>,
}

/// Both bodies carry the editable fields under the same names.
macro_rules! editable {
    ($($input:ty),*) => {$(
        impl $input {
            fn editable(&mut self) -> Editable<'_> {
                Editable {
                    name: &self.name,
                    description: self.description.as_deref(),
                    instance_url: &mut self.instance_url,
                    settings: self.settings.as_ref(),
                    sync_config: self.sync_config.as_mut(),
                    custom_api: self.custom_api.as_mut(),
                }
            }
        }
    )*};
}
editable!(NewIntegration, IntegrationUpdate);

/// Checks the editable fields of an integration of `provider_id`; the URLs
/// to be stored are replaced with their normalised form.
async fn check_editable(
    app: &Integrations,
    v: &mut Violations,
    provider_id: &str,
    e: Editable<'_>,
) {
    v.line("/name", e.name, 1, 200);
    if let Some(d) = e.description {
        v.text("/description", d, 0, 2000);
    }
    if let Some(s) = e.settings {
        validate_settings("/settings", s, v);
    }
    if let Some(c) = e.sync_config {
        c.validate("/syncConfig", v);
    }
    match e.custom_api.as_deref() {
        Some(_) if provider_id != CUSTOM_REST => {
            v.add("/customApi", "is only allowed for custom_rest integrations");
        }
        Some(api) => api.validate("/customApi", v),
        None => {}
    }
    check_urls(app, v, e.instance_url, e.custom_api).await;
}

fn event(app: &Integrations, ctx: &Ctx, kind: &str, i: &Integration) -> Event {
    app.events.envelope(
        ctx,
        kind,
        json!({ "integrationId": i.id, "providerId": i.provider_id, "name": i.name, "status": i.status }),
    )
}

/// Puts the URLs to be stored (`instanceUrl`, `customApi.baseUrl`) through
/// the one URL policy, replacing each with its normalised form, or reports
/// it.
async fn check_urls(
    app: &Integrations,
    v: &mut Violations,
    instance_url: &mut Option<String>,
    custom_api: Option<&mut CustomApi>,
) {
    let policy = app.outbound.policy();
    let targets = [
        ("/instanceUrl", instance_url.as_mut()),
        (
            "/customApi/baseUrl",
            custom_api.map(|api| &mut api.base_url),
        ),
    ];
    for (pointer, raw) in targets {
        let Some(raw) = raw else { continue };
        match policy.parse_for_storage(raw).await {
            Ok(url) => *raw = url.to_string(),
            Err(e) => v.add(pointer, e.to_string()),
        }
    }
}

/// Creates an integration in `pending` state and raises `integration.created`.
pub async fn create(
    app: &Integrations,
    ctx: &Ctx,
    mut input: NewIntegration,
) -> Result<Integration> {
    let mut v = Violations::default();
    let provider_id = input.provider_id.clone();
    check_editable(app, &mut v, &provider_id, input.editable()).await;
    // Only "not visible" is the caller's fault; a store failure stays a 5xx.
    let provider = match catalog::get_visible(&app.catalog, ctx.tenant(), &input.provider_id).await
    {
        Ok(p) => Some(p),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    if provider.is_none() {
        v.add(
            "/providerId",
            "is not a catalog entry available to this tenant",
        );
    }
    v.into_result()?;
    let provider = provider.ok_or(Error::NotFound("catalog entry"))?;
    // No `syncConfig` at all: the provider's default mappings (SPEC §9.5).
    let sync_config = input.sync_config.unwrap_or_else(|| SyncConfig {
        entity_mappings: super::mapping::defaults::entity_mappings(&provider),
        ..SyncConfig::default()
    });
    let now = app.clock.now();
    let integration = Integration {
        id: Uuid::new_v4(),
        tenant_id: ctx.tenant(),
        provider_id: provider.id.clone(),
        provider_name: provider.name.clone(),
        category: provider.category.clone(),
        name: input.name.trim().to_owned(),
        description: input.description.unwrap_or_default(),
        instance_url: input.instance_url,
        settings: input.settings.unwrap_or_default(),
        sync_config,
        custom_api: input.custom_api,
        status: IntegrationStatus::Pending,
        status_before_disable: None,
        connection_status: ConnectionStatus::None,
        last_connection_test_at: None,
        last_connection_test_result: None,
        connection_error: None,
        last_sync_at: None,
        last_sync_status: None,
        created_at: now,
        updated_at: now,
        created_by: ctx.principal.user_id.clone(),
        etag: String::new(),
    };
    let events = vec![event(app, ctx, types::INTEGRATION_CREATED, &integration)];
    let write = Write::insert(&integration)?;
    let doc = app.events.within(app.store.as_ref(), events, write).await?;
    written(integration, doc)
}

/// The integration a write with events produced.
fn written(integration: Integration, doc: Option<Document>) -> Result<Integration> {
    let doc =
        doc.ok_or_else(|| Error::Internal(anyhow::anyhow!("the write produced no document")))?;
    Ok(as_written(integration, &doc))
}

/// One integration of the caller's tenant.
pub async fn get(app: &Integrations, ctx: &Ctx, id: Uuid) -> Result<Integration> {
    app.store
        .get::<Integration>(&ctx.tenant().key(), &id.to_string())
        .await?
        .ok_or(Error::NotFound("integration"))
}

/// The caller's integrations, newest first.
pub async fn list(
    app: &Integrations,
    ctx: &Ctx,
    filter: &IntegrationFilter,
    page: &PageRequest,
) -> Result<Paged<Integration>> {
    let mut q = Query::partition(ctx.tenant().key())
        .order_by("createdAt", true)
        .limit(page.limit)
        .after(page.continuation.clone());
    if let Some(p) = &filter.provider_id {
        q = q.eq("providerId", p.as_str());
    }
    if let Some(s) = filter.status {
        q = q.eq("status", json!(s));
    }
    let (items, continuation_token) = app.store.page::<Integration>(&q).await?;
    Ok(Paged {
        items,
        continuation_token,
    })
}

fn next_status(
    current: &Integration,
    wanted: Option<IntegrationStatus>,
) -> Result<(IntegrationStatus, Option<IntegrationStatus>)> {
    let keep = (current.status, current.status_before_disable);
    match wanted {
        None => Ok(keep),
        Some(w) if w == current.status => Ok(keep),
        Some(IntegrationStatus::Disabled) => {
            Ok((IntegrationStatus::Disabled, Some(current.status)))
        }
        Some(w)
            if current.status == IntegrationStatus::Disabled
                && Some(w) == current.status_before_disable =>
        {
            Ok((w, None))
        }
        Some(_) => Err(Error::invalid(
            "/status",
            match current.status_before_disable {
                Some(prev) if current.status == IntegrationStatus::Disabled => {
                    format!(
                        "can only go back to {} from disabled",
                        json!(prev).as_str().unwrap_or_default()
                    )
                }
                _ => "can only be set to disabled; the service owns the other states".to_owned(),
            },
        )),
    }
}

/// Replaces the editable fields and raises `integration.updated`.
pub async fn replace(
    app: &Integrations,
    ctx: &Ctx,
    id: Uuid,
    mut input: IntegrationUpdate,
    if_match: Option<&ETag>,
) -> Result<Integration> {
    let current = get(app, ctx, id).await?;
    let mut v = Violations::default();
    check_editable(app, &mut v, &current.provider_id, input.editable()).await;
    // A refused status is reported together with every other bad field.
    let next = next_status(&current, input.status);
    if let Err(Error::Invalid(status)) = &next {
        for x in status.as_slice() {
            v.add(&x.pointer, &x.detail);
        }
    }
    // A bad body is a 400 whatever its If-Match: the body is checked first.
    v.into_result()?;
    if if_match.is_some_and(|m| m.as_str() != current.etag) {
        return Err(Error::PreconditionFailed);
    }
    let (status, before) = next?;
    let mut next = current.clone();
    next.name = input.name.trim().to_owned();
    next.description = input.description.unwrap_or_default();
    next.instance_url = input.instance_url;
    next.settings = input.settings.unwrap_or_default();
    next.sync_config = input.sync_config.unwrap_or_default();
    next.custom_api = input.custom_api;
    next.status = status;
    next.status_before_disable = before;
    next.updated_at = app.clock.now();
    save_with_event(app, ctx, next, current.etag).await
}

/// Replaces an integration read at `before` and raises `integration.updated`
/// in the same unit of work (see [`crate::platform::events::outbox`]).
pub(super) async fn save_with_event(
    app: &Integrations,
    ctx: &Ctx,
    next: Integration,
    before: String,
) -> Result<Integration> {
    let events = vec![event(app, ctx, types::INTEGRATION_UPDATED, &next)];
    let write = Write::put(&next, Some(&ETag::new(before)))?;
    let doc = app.events.within(app.store.as_ref(), events, write).await?;
    written(next, doc)
}

/// Deletes an integration and raises `integration.deleted`.
pub async fn delete(
    app: &Integrations,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<&ETag>,
) -> Result<()> {
    let current = get(app, ctx, id).await?;
    if if_match.is_some_and(|m| m.as_str() != current.etag) {
        return Err(Error::PreconditionFailed);
    }
    let events = vec![event(app, ctx, types::INTEGRATION_DELETED, &current)];
    let write = Write::remove::<Integration>(
        &ctx.tenant().key(),
        &id.to_string(),
        Some(&ETag::new(current.etag.clone())),
    );
    app.events.within(app.store.as_ref(), events, write).await?;
    // Webhooks scoped to a deleted integration can never fire again.
    if let Err(e) =
        crate::features::webhooks::service::delete_for_integration(&app.webhooks, ctx, id).await
    {
        tracing::warn!(integration.id = %id, error = %e, "deleting the integration's webhooks failed");
    }
    for dependent in app.dependents() {
        if let Err(e) = dependent.integration_deleted(ctx, id).await {
            tracing::warn!(integration.id = %id, error = %e, "deleting what belonged to the integration failed");
        }
    }
    Ok(())
}

/// The mapping of one external entity, with the integration's ETag.
pub async fn get_field_mapping(
    app: &Integrations,
    ctx: &Ctx,
    id: Uuid,
    entity: &str,
) -> Result<(EntityMapping, String)> {
    let i = get(app, ctx, id).await?;
    let m = i
        .sync_config
        .mapping(entity)
        .cloned()
        .ok_or(Error::NotFound("entity mapping"))?;
    Ok((m, i.etag))
}

/// Creates or replaces the mapping of one external entity.
pub async fn put_field_mapping(
    app: &Integrations,
    ctx: &Ctx,
    id: Uuid,
    entity: &str,
    input: EntityMappingUpdate,
    if_match: Option<&ETag>,
) -> Result<(EntityMapping, String)> {
    let mut v = Violations::default();
    v.line("/shardTypeId", &input.shard_type_id, 1, 200);
    for (j, f) in input.field_mappings.iter().enumerate() {
        validate_field_mapping(&format!("/fieldMappings/{j}"), f, &mut v);
    }
    v.into_result()?;
    if entity.is_empty() || entity.len() > 100 {
        return Err(Error::NotFound("entity mapping"));
    }
    let current = get(app, ctx, id).await?;
    if if_match.is_some_and(|m| m.as_str() != current.etag) {
        return Err(Error::PreconditionFailed);
    }
    let mut next = current.clone();
    let existing_id = next.sync_config.mapping(entity).and_then(|m| m.id.clone());
    let mapping = EntityMapping {
        id: Some(existing_id.unwrap_or_else(|| Uuid::new_v4().to_string())),
        external_entity: entity.to_owned(),
        shard_type_id: input.shard_type_id,
        shard_type_name: input.shard_type_name,
        enabled: input.enabled.unwrap_or(true),
        field_mappings: input.field_mappings,
    };
    match next
        .sync_config
        .entity_mappings
        .iter_mut()
        .find(|m| m.external_entity == entity)
    {
        Some(slot) => *slot = mapping.clone(),
        None => next.sync_config.entity_mappings.push(mapping.clone()),
    }
    next.updated_at = app.clock.now();
    let saved = save_with_event(app, ctx, next, current.etag).await?;
    Ok((mapping, saved.etag))
}
