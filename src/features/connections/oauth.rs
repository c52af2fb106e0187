//! The OAuth 2.0 authorization-code flow with PKCE (RFC 6749 §4.1, RFC
//! 7636): `oauth/start` makes a one-time state, the public callback
//! exchanges the code and stores the tokens as an `oauth2` connection.
//!
//! The state names its tenant (the callback has no token), so its record
//! is read from that tenant's partition only: a state altered to point at
//! another tenant finds nothing. Redirects go only to a `returnUrl` whose
//! origin was allow-listed at start, or, when the state is unknown, to the
//! first allowed origin: never an open redirect.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Connections;
use super::model::{Connection, ConnectionType, OauthAttempt, OauthInfo, RefreshState, secret};
use super::service::install;
use super::tokens;
use crate::config::OauthClient;
use crate::domain::tenancy::{Ctx, TenantId};
use crate::error::{Error, Result};
use crate::features::catalog::model::CatalogEntry;
use crate::features::catalog::service as catalog;
use crate::features::integrations::model::ConnectionStatus;
use crate::features::integrations::service as integrations;
use crate::platform::store::StoreError;

/// How long a state can be used.
pub const STATE_TTL_SECONDS: i64 = 600;

/// The callback's path (public: the provider's redirect carries no token).
pub const CALLBACK_PATH: &str = "/api/v1/integrations/oauth/callback";

/// Body of `POST /api/v1/integrations/{id}/oauth/start`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartOauth {
    /// Where the browser returns; its origin must be in `OAUTH_ALLOWED_RETURN_ORIGINS`.
    #[schema(min_length = 1, max_length = 2048)]
    pub return_url: String,
}

/// Answer of `oauth/start`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OauthStarted {
    /// Send the user's browser here.
    pub authorization_url: String,
    /// The one-time state (also in the URL).
    pub state: String,
}

/// The callback's query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state of `oauth/start`.
    pub state: Option<String>,
    /// The provider's error code (`access_denied`…).
    pub error: Option<String>,
}

/// A provider's OAuth endpoints and client, as configured.
struct Client {
    authorization_url: Url,
    token_url: Url,
    client_id: String,
    client_secret: Option<SecretString>,
    scopes: Vec<String>,
    pkce: bool,
}

fn not_configured(provider: &str) -> Error {
    Error::Conflict(format!(
        "OAuth is not configured for {provider} on this service (set {}_CLIENT_ID)",
        provider.to_ascii_uppercase()
    ))
}

/// The OAuth client of a provider: catalog endpoints, configured overrides.
fn client_of(settings: Option<&OauthClient>, provider: &CatalogEntry) -> Result<Client> {
    let endpoints = provider.oauth.as_ref().ok_or_else(|| {
        Error::Conflict(format!("{} does not use OAuth authorization", provider.id))
    })?;
    let settings = settings.ok_or_else(|| not_configured(&provider.id))?;
    let client_id = settings
        .client_id
        .clone()
        .ok_or_else(|| not_configured(&provider.id))?;
    let parse = |configured: &Option<Url>, listed: &str| {
        configured
            .clone()
            .or_else(|| Url::parse(listed).ok())
            .ok_or_else(|| not_configured(&provider.id))
    };
    Ok(Client {
        authorization_url: parse(&settings.authorization_url, &endpoints.authorization_url)?,
        token_url: parse(&settings.token_url, &endpoints.token_url)?,
        client_id,
        client_secret: settings.client_secret.clone(),
        scopes: endpoints.scopes.clone(),
        pkce: endpoints.pkce,
    })
}

async fn client_for(app: &Connections, tenant: TenantId, provider_id: &str) -> Result<Client> {
    let provider = catalog::get_visible(&app.catalog, tenant, provider_id).await?;
    client_of(app.oauth.clients.get(provider_id), &provider)
}

fn random_text(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(raw)
}

/// `<tenant as 32 hex digits>.<32 random characters>`.
fn make_state(tenant: TenantId, id: &str) -> String {
    format!("{}.{id}", tenant.0.simple())
}

fn parse_state(state: &str) -> Option<(TenantId, &str)> {
    let (tenant, id) = state.split_once('.')?;
    let ok = tenant.len() == 32
        && id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(())?;
    Some((TenantId(Uuid::parse_str(tenant).ok()?), id))
}

/// The return URL, if its origin is allowed.
fn allowed_return(app: &Connections, raw: &str) -> Option<Url> {
    let url = Url::parse(raw).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && raw.len() <= 2048;
    (ok && app
        .oauth
        .allowed_return_origins
        .iter()
        .any(|o| o.origin() == url.origin()))
    .then_some(url)
}

/// The provider's redirect target.
pub fn redirect_uri(app: &Connections) -> String {
    let base = app.oauth.redirect_base_url.as_str().trim_end_matches('/');
    format!("{base}{CALLBACK_PATH}")
}

/// Starts an authorization: persists a one-time state and PKCE verifier and
/// answers the provider URL to send the browser to.
pub async fn start(
    app: &Connections,
    ctx: &Ctx,
    integration_id: Uuid,
    input: StartOauth,
) -> Result<OauthStarted> {
    let return_url = allowed_return(app, &input.return_url).ok_or_else(|| {
        Error::invalid(
            "/returnUrl",
            "must be an absolute URL whose origin is in OAUTH_ALLOWED_RETURN_ORIGINS",
        )
    })?;
    let integration = integrations::get(&app.integrations, ctx, integration_id).await?;
    let client = client_for(app, ctx.tenant(), &integration.provider_id).await?;
    let now = app.clock.now();
    let id = random_text(24);
    let verifier = client.pkce.then(|| random_text(32));
    let redirect_uri = redirect_uri(app);
    let attempt = OauthAttempt {
        id: id.clone(),
        tenant_id: ctx.tenant(),
        integration_id,
        return_url: return_url.to_string(),
        redirect_uri: redirect_uri.clone(),
        code_verifier: verifier.clone(),
        used_at: None,
        created_at: now,
        expires_at: now + Duration::seconds(STATE_TTL_SECONDS),
        ttl: STATE_TTL_SECONDS,
        etag: String::new(),
    };
    app.store.insert(&attempt).await?;
    let state = make_state(ctx.tenant(), &id);
    let mut url = client.authorization_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state);
        if !client.scopes.is_empty() {
            q.append_pair("scope", &client.scopes.join(" "));
        }
        if let Some(v) = &verifier {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
            q.append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    Ok(OauthStarted {
        authorization_url: url.to_string(),
        state,
    })
}

fn with_param(mut url: Url, key: &str, value: &str) -> Url {
    url.query_pairs_mut().append_pair(key, value);
    url
}

/// The OAuth error codes a provider may send back (RFC 6749 §4.1.2.1);
/// anything else is reported as `authorization_failed`.
fn provider_error(raw: &str) -> &'static str {
    [
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    ]
    .into_iter()
    .find(|c| *c == raw)
    .unwrap_or("authorization_failed")
}

/// Handles the provider's redirect: answers where to send the browser. An
/// error is answered only when there is no safe place to redirect to.
pub async fn callback(app: &Connections, query: CallbackQuery) -> Result<Url> {
    let unknown = || {
        app.oauth
            .allowed_return_origins
            .first()
            .map(|o| with_param(o.clone(), "error", "invalid_state"))
            .ok_or_else(|| Error::invalid("/state", "unknown, used or expired OAuth state"))
    };
    let Some((tenant, id)) = query.state.as_deref().and_then(parse_state) else {
        return unknown();
    };
    let attempt = match app.store.get::<OauthAttempt>(&tenant.key(), id).await? {
        Some(a) if a.tenant_id == tenant => a,
        _ => return unknown(),
    };
    let Ok(back) = Url::parse(&attempt.return_url) else {
        return unknown();
    };
    let fail = |code: &str| Ok(with_param(back.clone(), "error", code));
    if attempt.used_at.is_some() {
        return fail("state_already_used");
    }
    // Claim the state before anything else: a replay racing this one loses.
    let mut used = attempt.clone();
    used.used_at = Some(app.clock.now());
    match app
        .store
        .put(
            &used,
            Some(&crate::platform::store::ETag::new(attempt.etag.clone())),
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::PreconditionFailed | StoreError::NotFound) => {
            return fail("state_already_used");
        }
        Err(e) => return Err(e.into()),
    }
    if attempt.expires_at <= app.clock.now() {
        return fail("state_expired");
    }
    if let Some(e) = &query.error {
        return fail(provider_error(e));
    }
    let Some(code) = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        return fail("invalid_request");
    };
    let ctx = Ctx::system(tenant, format!("oauth:{}", Uuid::new_v4()));
    match exchange(app, &ctx, &attempt, code).await {
        Ok(()) => Ok(with_param(
            with_param(back, "status", "connected"),
            "integrationId",
            &attempt.integration_id.to_string(),
        )),
        Err(code) => fail(&code),
    }
}

/// Exchanges the code and installs the connection; the error is the code
/// to redirect with (the cause is logged).
async fn exchange(
    app: &Connections,
    ctx: &Ctx,
    attempt: &OauthAttempt,
    code: &str,
) -> Result<(), String> {
    let integration = integrations::get(&app.integrations, ctx, attempt.integration_id)
        .await
        .map_err(|_| "integration_not_found".to_owned())?;
    let client = client_for(app, ctx.tenant(), &integration.provider_id)
        .await
        .map_err(|_| "provider_not_configured".to_owned())?;
    let secret = client
        .client_secret
        .as_ref()
        .map(ExposeSecret::expose_secret);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", attempt.redirect_uri.as_str()),
        ("client_id", client.client_id.as_str()),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    if let Some(v) = &attempt.code_verifier {
        form.push(("code_verifier", v.as_str()));
    }
    let now = app.clock.now();
    let granted = tokens::request(&app.outbound, &client.token_url, &form, now)
        .await
        .map_err(|e| {
            tracing::warn!(integration.id = %integration.id, error = %e, "OAuth code exchange failed");
            "token_exchange_failed".to_owned()
        })?;
    let instance_url = match &granted.instance_url {
        Some(raw) => Some(
            app.outbound
                .policy()
                .parse_for_storage(raw)
                .await
                .map_err(|_| "invalid_instance_url".to_owned())?
                .to_string(),
        ),
        None => None,
    };
    let mut values = vec![(secret::ACCESS_TOKEN, granted.access_token)];
    if let Some(r) = granted.refresh_token {
        values.push((secret::REFRESH_TOKEN, r));
    }
    let connection = Connection {
        id: Uuid::new_v4(),
        integration_id: integration.id,
        tenant_id: ctx.tenant(),
        kind: ConnectionType::Oauth2,
        display_name: integration.provider_name.clone(),
        status: ConnectionStatus::Active,
        secret_refs: BTreeMap::new(),
        username: None,
        client_id: None,
        token_url: Some(client.token_url.to_string()),
        subject: None,
        oauth: Some(OauthInfo {
            expires_at: granted.expires_at,
            scopes: granted.scopes.unwrap_or(client.scopes),
        }),
        refresh: RefreshState::default(),
        last_validated_at: Some(now),
        created_at: now,
        updated_at: now,
        etag: String::new(),
    };
    install(app, ctx, connection, values, instance_url)
        .await
        .map(|_| ())
        .map_err(|e| {
            tracing::warn!(integration.id = %integration.id, error = %e, "storing the OAuth connection failed");
            "storage_failed".to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_name_their_tenant_and_nothing_else() {
        let tenant = TenantId(Uuid::new_v4());
        let id = random_text(24);
        assert_eq!(id.len(), 32);
        let state = make_state(tenant, &id);
        assert_eq!(parse_state(&state), Some((tenant, id.as_str())));
        assert_eq!(parse_state("x.y"), None);
        assert_eq!(
            parse_state(&format!("{}.{}", tenant.0.simple(), "a/b")),
            None
        );
    }

    #[test]
    fn provider_errors_are_from_the_rfc_or_generic() {
        assert_eq!(provider_error("access_denied"), "access_denied");
        assert_eq!(provider_error("<b>"), "authorization_failed");
    }
}
