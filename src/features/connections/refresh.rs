//! Token refresh: now (`…/connections/{id}/refresh`) and as periodic work
//! (`token-refresh`: tokens expiring within 15 minutes).
//!
//! Single flight across processes: a refresh first claims the connection
//! with a lease written under the document's ETag; whoever loses the race
//! (or finds a live lease) leaves it alone. The refreshed tokens and the
//! lease's release are one write, with `integration.token.refreshed` in the
//! same unit of work (the outbox). A refused grant (`invalid_grant`…), or
//! three failures in a row, ends the connection `expired`, the integration
//! `error`, with `integration.token.refresh_failed`.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use url::Url;
use uuid::Uuid;

use super::Connections;
use super::model::{Connection, ConnectionType, secret};
use super::service::{delete_secrets, owner, put_secrets};
use super::tokens::{self, Granted, TokenError};
use crate::domain::tenancy::Ctx;
use crate::domain::time::exact_text;
use crate::error::{Error, Result};
use crate::features::integrations::credentials::{self, CredentialsReport};
use crate::features::integrations::model::ConnectionStatus;
use crate::platform::events::types;
use crate::platform::store::{ETag, Filter, Op, Query, StoreError, Write, as_written};

/// Tokens expiring within this are refreshed by the periodic work.
pub const REFRESH_AHEAD_MINUTES: i64 = 15;
/// How long a refresh holds its connection.
const LEASE_SECONDS: i64 = 60;
/// Failures in a row (other than a refusal) that end the connection.
const MAX_FAILURES: u32 = 3;
/// Connections read per page by the periodic work.
const PAGE_SIZE: u32 = 100;
/// Pages per run (the rest wait for the next run).
const MAX_PAGES: usize = 50;

/// What one periodic run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// Connections found expiring.
    pub due: usize,
    /// Refreshed.
    pub refreshed: usize,
    /// Held by another refresh (or changed meanwhile): left alone.
    pub skipped: usize,
    /// Failed; `expired` counts those that ended.
    pub failed: usize,
    /// Ended `expired`.
    pub expired: usize,
}

/// How one refresh ended.
enum Outcome {
    Refreshed(Box<Connection>),
    Skipped,
    Failed { error: TokenError, ended: bool },
}

/// Refreshes one connection now (the API's refresh).
pub async fn refresh_now(
    app: &Connections,
    ctx: &Ctx,
    integration_id: Uuid,
    id: Uuid,
) -> Result<Connection> {
    let c = super::service::get(app, ctx, integration_id, id).await?;
    if !c.kind.refreshes() {
        return Err(Error::Conflict(
            "this connection type has no token to refresh".into(),
        ));
    }
    if c.status != ConnectionStatus::Active {
        return Err(Error::Conflict(
            "the connection is not active; connect the integration again".into(),
        ));
    }
    match refresh_one(app, c).await? {
        Outcome::Refreshed(c) => Ok(*c),
        Outcome::Skipped => Err(Error::Conflict(
            "a refresh of this connection is already running; retry in a minute".into(),
        )),
        Outcome::Failed { error, ended: true } => Err(Error::Conflict(format!(
            "the provider refused the refresh ({}); the connection is now expired",
            error.code()
        ))),
        Outcome::Failed {
            error,
            ended: false,
        } => Err(Error::Unavailable {
            detail: format!("the token refresh failed: {error}"),
            retry_after: Some(std::time::Duration::from_secs(60)),
        }),
    }
}

/// The periodic work: refreshes every active token expiring soon.
///
/// A refreshed token expires later, so it leaves what this reads while it
/// reads: each page is a fresh query for ids after the last one read
/// (keyset), not a continuation of the first, which may count positions in
/// the original result and skip as many connections as were refreshed (as
/// the Cosmos SDK's emulator does; see `webhooks::delivery::redrive`).
pub async fn refresh_due(app: &Connections) -> Result<RefreshReport> {
    let mut report = RefreshReport::default();
    let horizon = exact_text(&(app.clock.now() + Duration::minutes(REFRESH_AHEAD_MINUTES)));
    let due_after = |last: Option<&str>| {
        let q = Query::cross_partition()
            .eq("status", "active")
            .filter(Filter::new("oauth.expiresAt", Op::IsDefined, json!(null)))
            .filter(Filter::new("oauth.expiresAt", Op::Lte, horizon.as_str()))
            .order_by("id", false)
            .limit(PAGE_SIZE);
        match last {
            Some(id) => q.filter(Filter::new("id", Op::Gt, id)),
            None => q,
        }
    };
    let mut q = due_after(None);
    for _ in 0..MAX_PAGES {
        let (page, next): (Vec<Connection>, _) = app.store.page(&q).await?;
        let last = page.last().map(|c| c.id.to_string());
        for c in page {
            report.due += 1;
            match refresh_one(app, c).await {
                Ok(Outcome::Refreshed(_)) => report.refreshed += 1,
                Ok(Outcome::Skipped) => report.skipped += 1,
                Ok(Outcome::Failed { ended, .. }) => {
                    report.failed += 1;
                    report.expired += usize::from(ended);
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(error = %e, "token refresh could not run");
                }
            }
        }
        let Some(token) = next else { break };
        match last {
            Some(id) => q = due_after(Some(&id)),
            // An empty page that did not reach the end: continue it.
            None => q.continuation = Some(token),
        }
    }
    Ok(report)
}

/// Claims the connection for a refresh; `None` when someone else holds it
/// or changed it since it was read.
async fn claim(
    app: &Connections,
    c: &Connection,
    now: DateTime<Utc>,
) -> Result<Option<Connection>> {
    if c.refresh.lease_until.is_some_and(|t| t > now) {
        return Ok(None);
    }
    let mut claimed = c.clone();
    claimed.refresh.lease_until = Some(now + Duration::seconds(LEASE_SECONDS));
    match app
        .store
        .put(&claimed, Some(&ETag::new(c.etag.clone())))
        .await
    {
        Ok(saved) => Ok(Some(saved)),
        Err(StoreError::PreconditionFailed | StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn read_secret(
    app: &Connections,
    c: &Connection,
    name: &str,
) -> Result<Option<SecretString>> {
    let Some(r) = c.secret_refs.get(name) else {
        return Ok(None);
    };
    app.secrets
        .get(&owner(c.tenant_id, c.id), r)
        .await
        .map(Some)
        .map_err(|e| Error::Unavailable {
            detail: format!("the secret store is unavailable: {e}"),
            retry_after: None,
        })
}

fn token_url(c: &Connection) -> Result<Url, TokenError> {
    c.token_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .ok_or_else(|| TokenError::BadAnswer("the connection has no token URL".into()))
}

/// Asks the token endpoint for a new access token, by connection type.
async fn grant(app: &Connections, c: &Connection) -> Result<Result<Granted, TokenError>> {
    let now = app.clock.now();
    let url = match token_url(c) {
        Ok(u) => u,
        Err(e) => return Ok(Err(e)),
    };
    let scopes = c
        .oauth
        .as_ref()
        .map(|o| o.scopes.clone())
        .unwrap_or_default();
    let missing = |what: &str| {
        Ok(Err(TokenError::Refused {
            code: format!("no_{what}"),
            status: 0,
        }))
    };
    Ok(match c.kind {
        ConnectionType::Oauth2 => {
            let Some(refresh) = read_secret(app, c, secret::REFRESH_TOKEN).await? else {
                return missing("refresh_token");
            };
            let integration = crate::features::integrations::service::get(
                &app.integrations,
                &Ctx::system(c.tenant_id, "token-refresh"),
                c.integration_id,
            )
            .await?;
            let client = app.oauth.clients.get(&integration.provider_id);
            let client_id = client.and_then(|k| k.client_id.clone()).unwrap_or_default();
            let client_secret = client.and_then(|k| k.client_secret.clone());
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose_secret()),
                ("client_id", client_id.as_str()),
            ];
            if let Some(s) = &client_secret {
                form.push(("client_secret", s.expose_secret()));
            }
            tokens::request(&app.outbound, &url, &form, now).await
        }
        ConnectionType::Oauth2ClientCredentials => {
            let Some(secret) = read_secret(app, c, secret::CLIENT_SECRET).await? else {
                return missing("client_secret");
            };
            let joined = scopes.join(" ");
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_deref().unwrap_or_default()),
                ("client_secret", secret.expose_secret()),
            ];
            if !joined.is_empty() {
                form.push(("scope", &joined));
            }
            tokens::request(&app.outbound, &url, &form, now).await
        }
        ConnectionType::ServiceAccount => {
            let Some(text) = read_secret(app, c, secret::SERVICE_ACCOUNT).await? else {
                return missing("service_account");
            };
            let Ok(key) = tokens::parse_service_account(&text) else {
                return missing("valid_service_account");
            };
            let Ok(assertion) =
                tokens::assertion(&key, url.as_str(), &scopes, c.subject.as_deref(), now)
            else {
                return missing("valid_service_account");
            };
            let form = [
                ("grant_type", tokens::JWT_BEARER),
                ("assertion", assertion.expose_secret()),
            ];
            tokens::request(&app.outbound, &url, &form, now).await
        }
        ConnectionType::ApiKey | ConnectionType::Basic | ConnectionType::Bearer => {
            return missing("token");
        }
    })
}

async fn refresh_one(app: &Connections, c: Connection) -> Result<Outcome> {
    let now = app.clock.now();
    let Some(claimed) = claim(app, &c, now).await? else {
        return Ok(Outcome::Skipped);
    };
    let ctx = Ctx::system(c.tenant_id, format!("token-refresh:{}", Uuid::new_v4()));
    match grant(app, &claimed).await {
        Ok(Ok(granted)) => succeeded(app, &ctx, claimed, granted).await,
        Ok(Err(error)) => failed(app, &ctx, claimed, error).await,
        Err(e) => {
            // Could not even ask (secret store down): free the lease, count it.
            failed(app, &ctx, claimed, TokenError::Unavailable(e.to_string())).await?;
            Err(e)
        }
    }
}

fn token_event(
    app: &Connections,
    ctx: &Ctx,
    kind: &str,
    c: &Connection,
    error: Option<&str>,
) -> crate::platform::events::Event {
    let mut data = json!({ "integrationId": c.integration_id, "connectionId": c.id });
    if let Some(at) = c.oauth.as_ref().and_then(|o| o.expires_at) {
        data["expiresAt"] = json!(at);
    }
    if let Some(e) = error {
        data["error"] = json!(e);
    }
    app.events.envelope(ctx, kind, data)
}

async fn succeeded(
    app: &Connections,
    ctx: &Ctx,
    claimed: Connection,
    granted: Granted,
) -> Result<Outcome> {
    let now = app.clock.now();
    let owner = owner(claimed.tenant_id, claimed.id);
    let mut fresh = vec![(secret::ACCESS_TOKEN, granted.access_token)];
    // A provider that does not rotate refresh tokens omits it: keep the old one.
    if let Some(r) = granted.refresh_token {
        fresh.push((secret::REFRESH_TOKEN, r));
    }
    let new_refs = put_secrets(app.secrets.as_ref(), &owner, fresh).await?;
    let mut next = claimed.clone();
    let mut replaced = std::collections::BTreeMap::new();
    for (name, r) in &new_refs {
        if let Some(old) = next.secret_refs.insert(name.clone(), r.clone()) {
            replaced.insert(name.clone(), old);
        }
    }
    let oauth = next.oauth.get_or_insert_with(Default::default);
    oauth.expires_at = granted.expires_at;
    if let Some(s) = granted.scopes {
        oauth.scopes = s;
    }
    next.status = ConnectionStatus::Active;
    next.refresh = super::model::RefreshState {
        last_refreshed_at: Some(now),
        ..Default::default()
    };
    next.last_validated_at = Some(now);
    next.updated_at = now;
    let events = vec![token_event(app, ctx, types::TOKEN_REFRESHED, &next, None)];
    let write = Write::put(&next, Some(&ETag::new(claimed.etag.clone())))?;
    match app.events.within(app.store.as_ref(), events, write).await {
        Ok(doc) => {
            delete_secrets(app.secrets.as_ref(), &owner, &replaced).await;
            let saved = match doc {
                Some(d) => as_written(next, &d),
                None => next,
            };
            Ok(Outcome::Refreshed(Box::new(saved)))
        }
        Err(e) => {
            // Deleted or replaced while refreshing: the new tokens belong to nothing.
            delete_secrets(app.secrets.as_ref(), &owner, &new_refs).await;
            match e {
                Error::PreconditionFailed | Error::NotFound(_) => Ok(Outcome::Skipped),
                other => Err(other),
            }
        }
    }
}

async fn failed(
    app: &Connections,
    ctx: &Ctx,
    claimed: Connection,
    error: TokenError,
) -> Result<Outcome> {
    let now = app.clock.now();
    let mut next = claimed.clone();
    next.refresh.failures += 1;
    next.refresh.last_error = Some(error.code().to_owned());
    let ended = error.is_final() || next.refresh.failures >= MAX_FAILURES;
    // Back off before the next try: the lease stays, longer each time.
    next.refresh.lease_until =
        (!ended).then(|| now + Duration::minutes(i64::from(next.refresh.failures)));
    next.updated_at = now;
    let mut events = Vec::new();
    if ended {
        next.status = ConnectionStatus::Expired;
        next.refresh.lease_until = None;
        events.push(token_event(
            app,
            ctx,
            types::TOKEN_REFRESH_FAILED,
            &next,
            Some(error.code()),
        ));
    }
    tracing::warn!(connection.id = %claimed.id, integration.id = %claimed.integration_id, error = %error, ended, "token refresh failed");
    let write = Write::put(&next, Some(&ETag::new(claimed.etag.clone())))?;
    match app.events.within(app.store.as_ref(), events, write).await {
        Ok(_) => {}
        Err(Error::PreconditionFailed | Error::NotFound(_)) => return Ok(Outcome::Skipped),
        Err(e) => return Err(e),
    }
    if ended {
        let report = CredentialsReport {
            connection_status: ConnectionStatus::Expired,
            error: Some(format!("token refresh failed: {}", error.code())),
            instance_url: None,
            tested_at: Some(now),
        };
        if let Err(e) =
            credentials::record(&app.integrations, ctx, claimed.integration_id, &report).await
        {
            tracing::warn!(integration.id = %claimed.integration_id, error = %e, "recording the expired connection on its integration failed");
        }
    }
    Ok(Outcome::Failed { error, ended })
}
