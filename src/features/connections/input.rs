//! The body of a new connection, checked per type with JSON pointers; the
//! token-based types prove their credentials at the token endpoint before
//! anything is stored.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::Connections;
use super::model::{ConnectionType, secret};
use super::tokens::{self, Granted, TokenError};
use crate::domain::tenancy::Ctx;
use crate::domain::validation::Violations;
use crate::error::{Error, Result};
use crate::features::catalog::model::AuthMethod;
use crate::features::catalog::service as catalog;
use crate::features::integrations::model::Integration;

/// Body of `POST /api/v1/integrations/{id}/connections`. Which fields a
/// type takes: `api_key` → `apiKey`; `basic` → `username`, `password`;
/// `bearer` → `token`; `oauth2_client_credentials` → `clientId`,
/// `clientSecret`, `tokenUrl`, `scopes?`; `service_account` →
/// `serviceAccountJson`, `scopes`, `subject?`. `oauth2` connections are
/// made by `oauth/start`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewConnection {
    /// How it authenticates.
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// Name shown to people.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// `api_key`.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 8192)]
    pub api_key: Option<SecretString>,
    /// `basic`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub username: Option<String>,
    /// `basic`.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 8192)]
    pub password: Option<SecretString>,
    /// `bearer`.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 8192)]
    pub token: Option<SecretString>,
    /// `oauth2_client_credentials`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 512)]
    pub client_id: Option<String>,
    /// `oauth2_client_credentials`.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 8192)]
    pub client_secret: Option<SecretString>,
    /// `oauth2_client_credentials`: the token endpoint (https).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048, pattern = "^https://")]
    pub token_url: Option<String>,
    /// Scopes to ask for.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// `service_account`: the Google key file, as an object or its JSON text.
    #[serde(default, deserialize_with = "secret_json")]
    #[schema(value_type = Option<Object>)]
    pub service_account_json: Option<SecretString>,
    /// `service_account`: the user to act for (domain-wide delegation).
    #[serde(default)]
    #[schema(max_length = 320)]
    pub subject: Option<String>,
}

impl std::fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConnection")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A key file given as an object or as text, kept secret either way.
fn secret_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(SecretString::from(s)),
        Some(v @ serde_json::Value::Object(_)) => Some(SecretString::from(v.to_string())),
        Some(_) => {
            return Err(serde::de::Error::custom(
                "must be the key file as an object or as its JSON text",
            ));
        }
    })
}

/// A secret-valued field: required by some types, refused by the others.
fn check_secret(v: &mut Violations, pointer: &str, value: Option<&SecretString>, wanted: bool) {
    match (value, wanted) {
        (None, true) => v.add(pointer, "is required for this connection type"),
        (Some(_), false) => v.add(pointer, "is not used by this connection type"),
        (Some(s), true) => {
            let s = s.expose_secret();
            if s.is_empty() || s.len() > 8192 {
                v.add(pointer, "must be 1 to 8192 bytes long");
            } else if s.chars().any(char::is_control) {
                v.add(pointer, "must not contain control characters");
            }
        }
        (None, false) => {}
    }
}

/// A plain text field, required by some types, refused by the others.
fn check_text(v: &mut Violations, pointer: &str, value: Option<&str>, wanted: bool, max: usize) {
    match (value, wanted) {
        (None, true) => v.add(pointer, "is required for this connection type"),
        (Some(_), false) => v.add(pointer, "is not used by this connection type"),
        (Some(s), true) => v.line(pointer, s, 1, max),
        (None, false) => {}
    }
}

/// The credentials of a connection being made, checked.
pub(super) struct Checked {
    pub(super) secrets: Vec<(&'static str, SecretString)>,
    pub(super) token_url: Option<url::Url>,
    pub(super) key: Option<tokens::ServiceAccountKey>,
    pub(super) scopes: Vec<String>,
}

/// Checks a body against its type; every bad field is reported.
pub(super) async fn check(app: &Connections, input: &NewConnection) -> Result<Checked> {
    use ConnectionType as T;
    let k = input.kind;
    let mut v = Violations::default();
    if k == T::Oauth2 {
        v.add(
            "/type",
            "oauth2 connections are made by POST /api/v1/integrations/{id}/oauth/start",
        );
    }
    if let Some(name) = &input.display_name {
        v.line("/displayName", name, 0, 200);
    }
    check_secret(&mut v, "/apiKey", input.api_key.as_ref(), k == T::ApiKey);
    check_text(
        &mut v,
        "/username",
        input.username.as_deref(),
        k == T::Basic,
        256,
    );
    check_secret(&mut v, "/password", input.password.as_ref(), k == T::Basic);
    check_secret(&mut v, "/token", input.token.as_ref(), k == T::Bearer);
    let client_credentials = k == T::Oauth2ClientCredentials;
    check_text(
        &mut v,
        "/clientId",
        input.client_id.as_deref(),
        client_credentials,
        512,
    );
    check_secret(
        &mut v,
        "/clientSecret",
        input.client_secret.as_ref(),
        client_credentials,
    );
    check_text(
        &mut v,
        "/tokenUrl",
        input.token_url.as_deref(),
        client_credentials,
        2048,
    );
    let service_account = k == T::ServiceAccount;
    check_text(
        &mut v,
        "/subject",
        input.subject.as_deref(),
        service_account && input.subject.is_some(),
        320,
    );
    let scopes = input.scopes.clone().unwrap_or_default();
    if input.scopes.is_some() && !(client_credentials || service_account) {
        v.add("/scopes", "is not used by this connection type");
    }
    if service_account && scopes.is_empty() {
        v.add("/scopes", "a service account needs at least one scope");
    }
    for (i, s) in scopes.iter().enumerate() {
        if s.is_empty() || s.len() > 512 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            v.add(
                format!("/scopes/{i}"),
                "must be 1 to 512 characters without spaces",
            );
        }
    }
    let mut key = None;
    match (&input.service_account_json, service_account) {
        (None, true) => v.add(
            "/serviceAccountJson",
            "is required for this connection type",
        ),
        (Some(_), false) => v.add("/serviceAccountJson", "is not used by this connection type"),
        (Some(text), true) if text.expose_secret().len() > 16 * 1024 => {
            v.add("/serviceAccountJson", "must be at most 16 KiB");
        }
        (Some(text), true) => match tokens::parse_service_account(text) {
            Ok(k) => key = Some(k),
            Err(detail) => v.add("/serviceAccountJson", detail),
        },
        (None, false) => {}
    }
    let raw_url = match (&key, input.token_url.as_deref()) {
        (Some(k), _) => Some((
            "/serviceAccountJson/token_uri",
            k.token_uri
                .clone()
                .unwrap_or_else(|| tokens::GOOGLE_TOKEN_URI.to_owned()),
        )),
        (None, Some(u)) if client_credentials => Some(("/tokenUrl", u.to_owned())),
        _ => None,
    };
    let mut token_url = None;
    if let Some((pointer, raw)) = raw_url {
        match app.outbound.policy().parse_for_storage(&raw).await {
            Ok(u) => token_url = Some(u),
            Err(e) => v.add(pointer, e.to_string()),
        }
    }
    v.into_result()?;
    let secrets = [
        (secret::API_KEY, &input.api_key),
        (secret::PASSWORD, &input.password),
        (secret::TOKEN, &input.token),
        (secret::CLIENT_SECRET, &input.client_secret),
        (secret::SERVICE_ACCOUNT, &input.service_account_json),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.clone().map(|s| (name, s)))
    .collect();
    Ok(Checked {
        secrets,
        token_url,
        key,
        scopes,
    })
}

/// The catalog's auth method for a connection type.
fn auth_method(kind: ConnectionType) -> AuthMethod {
    match kind {
        ConnectionType::ApiKey => AuthMethod::ApiKey,
        ConnectionType::Basic => AuthMethod::Basic,
        ConnectionType::Bearer => AuthMethod::Bearer,
        ConnectionType::Oauth2 | ConnectionType::Oauth2ClientCredentials => AuthMethod::Oauth2,
        ConnectionType::ServiceAccount => AuthMethod::ServiceAccount,
    }
}

/// Refuses a type the integration's provider does not accept.
pub(super) async fn check_provider(
    app: &Connections,
    ctx: &Ctx,
    i: &Integration,
    kind: ConnectionType,
) -> Result<()> {
    let provider = catalog::get_visible(&app.catalog, ctx.tenant(), &i.provider_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::Conflict(format!(
                "the provider {} is no longer available to this tenant",
                i.provider_id
            )),
            other => other,
        })?;
    if provider.auth_methods.contains(&auth_method(kind)) {
        return Ok(());
    }
    Err(Error::invalid(
        "/type",
        format!(
            "{} does not accept this connection type (it accepts {})",
            provider.id,
            serde_json::to_string(&provider.auth_methods).unwrap_or_default()
        ),
    ))
}

/// Gets the first token of a client-credentials or service-account
/// connection, proving its credentials before anything is stored.
pub(super) async fn first_token(
    app: &Connections,
    input: &NewConnection,
    c: &Checked,
) -> Result<Option<Granted>> {
    let Some(url) = &c.token_url else {
        return Ok(None);
    };
    let now = app.clock.now();
    let scopes = c.scopes.join(" ");
    let (pointer, result) = if let Some(key) = &c.key {
        let assertion =
            tokens::assertion(key, url.as_str(), &c.scopes, input.subject.as_deref(), now)
                .map_err(|_| {
                    Error::invalid("/serviceAccountJson", "its private_key cannot sign")
                })?;
        let form = [
            ("grant_type", tokens::JWT_BEARER),
            ("assertion", assertion.expose_secret()),
        ];
        (
            "/serviceAccountJson",
            tokens::request(&app.outbound, url, &form, now).await,
        )
    } else {
        let id = input.client_id.as_deref().unwrap_or_default();
        let secret = input
            .client_secret
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .unwrap_or_default();
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ];
        if !scopes.is_empty() {
            form.push(("scope", &scopes));
        }
        (
            "/clientSecret",
            tokens::request(&app.outbound, url, &form, now).await,
        )
    };
    match result {
        Ok(granted) => Ok(Some(granted)),
        Err(e @ (TokenError::Refused { .. } | TokenError::BadAnswer(_))) => Err(Error::invalid(
            pointer,
            format!("the token endpoint did not accept these credentials: {e}"),
        )),
        Err(e) => Err(Error::Unavailable {
            detail: e.to_string(),
            retry_after: None,
        }),
    }
}
