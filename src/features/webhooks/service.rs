//! Webhook operations any trigger can call: CRUD and secret rotation (the
//! delivery log, test send, retry and recover: [`super::deliveries`]).

use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::{SigningSecret, Webhook, WebhookView, is_valid_pattern, pattern_matches};
use super::signing::{generate_secret, secret_key};
use super::{Webhooks, secret_owner};
use crate::domain::pages::{PageRequest, Paged};
use crate::domain::tenancy::Ctx;
use crate::domain::validation::Violations;
use crate::error::{Error, Result};
use crate::platform::events::types;
use crate::platform::store::{Container, ETag, Query};

/// Default grace period of a rotated-out secret.
pub const DEFAULT_GRACE_SECONDS: u32 = 86_400;
/// Longest grace period.
pub const MAX_GRACE_SECONDS: u32 = 604_800;

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhook {
    /// Target URL (https, unless allowed by `OUTBOUND_ALLOWED_CIDRS`).
    #[schema(min_length = 1, max_length = 2048, pattern = "^https?://")]
    pub url: String,
    /// Event types or patterns (`integration.created`, `integration.*`, `*`).
    #[schema(min_items = 1, max_items = 50)]
    pub events: Vec<String>,
    /// Only this integration's events.
    #[serde(default)]
    pub integration_id: Option<Uuid>,
    /// Free text (≤ 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Your own secret (`whsec_` + base64 of 24–64 bytes); generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Maximum deliveries per second (1–1000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub rate_limit_per_second: Option<u32>,
}

/// Body of `PUT /api/v1/webhooks/{id}`: the editable fields, replaced whole.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookUpdate {
    /// Target URL.
    #[schema(min_length = 1, max_length = 2048, pattern = "^https?://")]
    pub url: String,
    /// Event types or patterns.
    #[schema(min_items = 1, max_items = 50)]
    pub events: Vec<String>,
    /// Only this integration's events (absent: all).
    #[serde(default)]
    pub integration_id: Option<Uuid>,
    /// Free text (absent clears it).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Enabling clears `disabledReason` and the failure count (absent: unchanged).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Maximum deliveries per second (absent: none).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub rate_limit_per_second: Option<u32>,
}

/// Body of `POST /api/v1/webhooks/{id}/rotate-secret`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps signing (0–604800, default 86400).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_period_seconds: Option<u32>,
}

/// Filters of the webhook list.
#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    /// Only webhooks of this integration.
    pub integration_id: Option<Uuid>,
    /// Only enabled or disabled ones.
    pub enabled: Option<bool>,
}

/// The editable fields shared by create and replace.
struct Fields<'a> {
    url: &'a str,
    events: &'a [String],
    integration_id: Option<Uuid>,
    description: Option<&'a str>,
    rate: Option<u32>,
}

/// Checks the editable fields; returns the URL to store (normalised), when
/// it passed the URL policy.
async fn check_fields(
    app: &Webhooks,
    ctx: &Ctx,
    v: &mut Violations,
    f: Fields<'_>,
) -> Option<String> {
    let Fields {
        url,
        events,
        integration_id,
        description,
        rate,
    } = f;
    let url = match app.outbound.policy().parse_for_storage(url).await {
        Ok(u) => Some(u.to_string()),
        Err(e) => {
            v.add("/url", e.to_string());
            None
        }
    };
    if events.is_empty() {
        v.add("/events", "must name at least one event type or pattern");
    } else if events.len() > 50 {
        v.add("/events", "must have at most 50 entries");
    }
    for (i, e) in events.iter().enumerate() {
        if !is_valid_pattern(e) {
            v.add(
                format!("/events/{i}"),
                "must be an event type (`integration.created`), a prefix pattern (`integration.*`) or `*`",
            );
        } else if e.starts_with("webhook.") {
            v.add(
                format!("/events/{i}"),
                "webhook.* events are not delivered to webhooks",
            );
        } else if !types::PUBLISHED
            .iter()
            .any(|t| !t.starts_with("webhook.") && pattern_matches(e, t))
        {
            v.add(
                format!("/events/{i}"),
                "matches no event type this service publishes (see SPEC §7)",
            );
        }
    }
    if let Some(d) = description {
        v.text("/description", d, 0, 2000);
    }
    if rate.is_some_and(|r| !(1..=1000).contains(&r)) {
        v.add("/rateLimitPerSecond", "must be from 1 to 1000");
    }
    if let Some(id) = integration_id {
        let found = app
            .store
            .read(
                Container::Integrations,
                &ctx.tenant().key(),
                &id.to_string(),
            )
            .await;
        if !matches!(found, Ok(Some(_))) {
            v.add("/integrationId", "is not an integration of this tenant");
        }
    }
    url
}

async fn store_secret(app: &Webhooks, w: &mut Webhook, secret: &str) -> Result<()> {
    w.secret_version += 1;
    let owner_id = format!("{}.{}", w.id, w.secret_version);
    let owner = secret_owner(w.tenant_id, &owner_id);
    let secret_ref = app
        .secrets
        .put(&owner, &SecretString::from(secret.to_owned()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "storing a webhook secret failed");
            Error::Unavailable {
                detail: "the secret store is unavailable".into(),
                retry_after: None,
            }
        })?;
    w.secrets.push(SigningSecret {
        secret_ref,
        owner_id,
        expires_at: None,
    });
    Ok(())
}

async fn forget_secret(app: &Webhooks, w: &Webhook, s: &SigningSecret) {
    let owner = secret_owner(w.tenant_id, &s.owner_id);
    if let Err(e) = app.secrets.delete(&owner, &s.secret_ref).await {
        tracing::warn!(webhook.id = %w.id, error = %e, "deleting a webhook secret failed");
    }
}

/// Creates a webhook; the answer carries its secret, this once.
pub async fn create(app: &Webhooks, ctx: &Ctx, input: NewWebhook) -> Result<WebhookView> {
    let mut v = Violations::default();
    let url = check_fields(
        app,
        ctx,
        &mut v,
        Fields {
            url: &input.url,
            events: &input.events,
            integration_id: input.integration_id,
            description: input.description.as_deref(),
            rate: input.rate_limit_per_second,
        },
    )
    .await;
    if let Some(s) = &input.secret
        && secret_key(s).is_none()
    {
        v.add(
            "/secret",
            "must be `whsec_` followed by the base64 of 24 to 64 bytes",
        );
    }
    v.into_result()?;
    let now = app.clock.now();
    let secret = input.secret.unwrap_or_else(generate_secret);
    let mut w = Webhook {
        id: Uuid::new_v4(),
        tenant_id: ctx.tenant(),
        integration_id: input.integration_id,
        url: url.unwrap_or_default(),
        events: input.events,
        description: input.description.unwrap_or_default(),
        enabled: input.enabled.unwrap_or(true),
        disabled_reason: None,
        rate_limit_per_second: input.rate_limit_per_second,
        consecutive_failures: 0,
        failing_since: None,
        last_delivery_at: None,
        last_delivery_status: None,
        secrets: Vec::new(),
        secret_version: 0,
        created_at: now,
        updated_at: now,
        created_by: ctx.principal.user_id.clone(),
        etag: String::new(),
    };
    store_secret(app, &mut w, &secret).await?;
    let saved = app.store.insert(&w).await?;
    app.hooks.invalidate(&saved.tenant_id);
    let mut view = WebhookView::of(&saved, now);
    view.secret = Some(secret);
    Ok(view)
}

/// One webhook of the caller's tenant.
pub async fn get(app: &Webhooks, ctx: &Ctx, id: Uuid) -> Result<Webhook> {
    app.store
        .get::<Webhook>(&ctx.tenant().key(), &id.to_string())
        .await?
        .ok_or(Error::NotFound("webhook"))
}

/// The caller's webhooks, newest first.
pub async fn list(
    app: &Webhooks,
    ctx: &Ctx,
    filter: &WebhookFilter,
    page: &PageRequest,
) -> Result<Paged<WebhookView>> {
    let mut q = Query::partition(ctx.tenant().key())
        .order_by("createdAt", true)
        .limit(page.limit)
        .after(page.continuation.clone());
    if let Some(i) = filter.integration_id {
        q = q.eq("integrationId", i.to_string());
    }
    if let Some(e) = filter.enabled {
        q = q.eq("enabled", e);
    }
    let (items, continuation_token) = app.store.page::<Webhook>(&q).await?;
    let now = app.clock.now();
    Ok(Paged {
        items: items.iter().map(|w| WebhookView::of(w, now)).collect(),
        continuation_token,
    })
}

fn check_etag(current: &Webhook, if_match: Option<&ETag>) -> Result<()> {
    if if_match.is_some_and(|m| m.as_str() != current.etag) {
        return Err(Error::PreconditionFailed);
    }
    Ok(())
}

/// Replaces a webhook's editable fields.
pub async fn replace(
    app: &Webhooks,
    ctx: &Ctx,
    id: Uuid,
    input: WebhookUpdate,
    if_match: Option<&ETag>,
) -> Result<Webhook> {
    let current = get(app, ctx, id).await?;
    let mut v = Violations::default();
    let url = check_fields(
        app,
        ctx,
        &mut v,
        Fields {
            url: &input.url,
            events: &input.events,
            integration_id: input.integration_id,
            description: input.description.as_deref(),
            rate: input.rate_limit_per_second,
        },
    )
    .await;
    // A bad body is a 400 whatever its If-Match: the body is checked first.
    v.into_result()?;
    check_etag(&current, if_match)?;
    let mut next = current.clone();
    next.url = url.unwrap_or_default();
    next.events = input.events;
    next.integration_id = input.integration_id;
    next.description = input.description.unwrap_or_default();
    next.rate_limit_per_second = input.rate_limit_per_second;
    match input.enabled {
        Some(true) if !current.enabled => {
            next.enabled = true;
            next.disabled_reason = None;
            next.consecutive_failures = 0;
            next.failing_since = None;
        }
        Some(false) => next.enabled = false,
        _ => {}
    }
    next.updated_at = app.clock.now();
    let saved = app.store.put(&next, Some(&ETag::new(current.etag))).await;
    app.hooks.invalidate(&ctx.tenant());
    Ok(saved?)
}

/// Deletes a webhook and its secrets (its delivery log expires with its TTL).
pub async fn delete(app: &Webhooks, ctx: &Ctx, id: Uuid, if_match: Option<&ETag>) -> Result<()> {
    let current = get(app, ctx, id).await?;
    check_etag(&current, if_match)?;
    app.store
        .remove::<Webhook>(
            &ctx.tenant().key(),
            &id.to_string(),
            Some(&ETag::new(current.etag.clone())),
        )
        .await?;
    app.hooks.invalidate(&ctx.tenant());
    for s in &current.secrets {
        forget_secret(app, &current, s).await;
    }
    Ok(())
}

/// Deletes every webhook scoped to an integration (its deletion cascades here).
pub async fn delete_for_integration(
    app: &Webhooks,
    ctx: &Ctx,
    integration_id: Uuid,
) -> Result<usize> {
    let q = Query::partition(ctx.tenant().key())
        .eq("integrationId", integration_id.to_string())
        .limit(200);
    let hooks = app.store.all::<Webhook>(q, 50).await?;
    let mut n = 0;
    for w in hooks {
        match delete(app, ctx, w.id, None).await {
            Ok(()) | Err(Error::NotFound(_)) => n += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Issues a new secret; the old one keeps signing for the grace period.
pub async fn rotate_secret(
    app: &Webhooks,
    ctx: &Ctx,
    id: Uuid,
    input: RotateSecret,
) -> Result<(String, Webhook)> {
    let grace = input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(Error::invalid(
            "/gracePeriodSeconds",
            format!("must be from 0 to {MAX_GRACE_SECONDS}"),
        ));
    }
    let current = get(app, ctx, id).await?;
    let now = app.clock.now();
    let secret = generate_secret();
    let mut next = current.clone();
    let until = now + chrono::Duration::seconds(i64::from(grace));
    for s in &mut next.secrets {
        let end = s.expires_at.map_or(until, |t| t.min(until));
        s.expires_at = Some(end);
    }
    let (live, dead): (Vec<_>, Vec<_>) = next
        .secrets
        .drain(..)
        .partition(|s| s.expires_at.is_some_and(|t| t > now));
    next.secrets = live;
    store_secret(app, &mut next, &secret).await?;
    next.updated_at = now;
    let saved = app.store.put(&next, Some(&ETag::new(current.etag))).await;
    app.hooks.invalidate(&ctx.tenant());
    let saved = match saved {
        Ok(s) => s,
        Err(e) => {
            if let Some(new) = next.secrets.last() {
                forget_secret(app, &next, new).await;
            }
            return Err(e.into());
        }
    };
    for s in &dead {
        forget_secret(app, &saved, s).await;
    }
    Ok((secret, saved))
}
