//! The credentials a call to a provider carries: the integration's active
//! connection, its secrets read from the secret store, ready to put on a
//! request. The sync adapters and the connection test use it; nothing else
//! reads a connection's secret values.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::Connections;
use super::model::{Connection, ConnectionType, secret};
use super::service::owner;
use crate::domain::tenancy::Ctx;
use crate::error::{Error, Result};
use crate::features::integrations::model::ConnectionStatus;
use crate::platform::store::Query;

/// What a request authenticates with.
#[derive(Clone)]
pub enum Credential {
    /// A static API key (where it goes — header or query — is the adapter's choice).
    ApiKey(SecretString),
    /// User name and password (`Authorization: Basic`).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// A bearer token: a static one, or an OAuth access token.
    Bearer(SecretString),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::ApiKey(_) => "ApiKey(..)",
            Credential::Basic { .. } => "Basic(..)",
            Credential::Bearer(_) => "Bearer(..)",
        })
    }
}

impl Credential {
    /// The secret value a key- or token-based scheme sends (the password for basic).
    pub fn secret(&self) -> &str {
        match self {
            Credential::ApiKey(s) | Credential::Bearer(s) => s.expose_secret(),
            Credential::Basic { password, .. } => password.expose_secret(),
        }
    }

    /// Puts the credential on a request the standard way: `Authorization:
    /// Bearer` for tokens, `Basic` for user and password, and a key as a
    /// bearer token (adapters that send keys elsewhere do so themselves).
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credential::ApiKey(s) | Credential::Bearer(s) => req.bearer_auth(s.expose_secret()),
            Credential::Basic { username, password } => {
                req.basic_auth(username, Some(password.expose_secret()))
            }
        }
    }
}

/// An integration's active connection with its credential.
#[derive(Debug, Clone)]
pub struct Access {
    /// The connection (no secret values).
    pub connection: Connection,
    /// What to send.
    pub credential: Credential,
}

/// The integration's active connection and its credential. A missing or
/// inactive connection is a 409 naming what to do.
pub async fn for_calls(app: &Connections, ctx: &Ctx, integration_id: Uuid) -> Result<Access> {
    let connection = active(app, ctx, integration_id).await?;
    let credential = credential(app, &connection).await?;
    Ok(Access {
        connection,
        credential,
    })
}

/// After a provider answered 401 to `access`: renews the token once (OAuth
/// types: a refresh through the connection, single flight as always) and
/// returns the new credential. Static credentials cannot be renewed: the
/// 401 is final, and the connection is reported in error by the caller.
pub async fn renewed(app: &Connections, ctx: &Ctx, access: &Access) -> Result<Access> {
    let c = &access.connection;
    if !c.kind.refreshes() {
        return Err(Error::Conflict(
            "the provider refused the connection's credentials".into(),
        ));
    }
    let connection = super::refresh::refresh_now(app, ctx, c.integration_id, c.id).await?;
    let credential = credential(app, &connection).await?;
    Ok(Access {
        connection,
        credential,
    })
}

/// The integration's active connection.
async fn active(app: &Connections, ctx: &Ctx, integration_id: Uuid) -> Result<Connection> {
    let q = Query::partition(integration_id.to_string())
        .eq("tenantId", ctx.tenant().key())
        .order_by("createdAt", true);
    let all: Vec<Connection> = app.store.all(q, 10).await?;
    let Some(c) = all.into_iter().next() else {
        return Err(Error::Conflict(
            "the integration has no connection; create one first".into(),
        ));
    };
    if c.status != ConnectionStatus::Active {
        return Err(Error::Conflict(format!(
            "the integration's connection is {}; connect it again",
            serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )));
    }
    Ok(c)
}

/// Reads the secret the connection's type sends.
async fn credential(app: &Connections, c: &Connection) -> Result<Credential> {
    let name = match c.kind {
        ConnectionType::ApiKey => secret::API_KEY,
        ConnectionType::Basic => secret::PASSWORD,
        ConnectionType::Bearer => secret::TOKEN,
        ConnectionType::Oauth2
        | ConnectionType::Oauth2ClientCredentials
        | ConnectionType::ServiceAccount => secret::ACCESS_TOKEN,
    };
    let Some(r) = c.secret_refs.get(name) else {
        return Err(Error::Conflict(
            "the connection holds no usable credential; connect the integration again".into(),
        ));
    };
    let value = app
        .secrets
        .get(&owner(c.tenant_id, c.id), r)
        .await
        .map_err(|e| Error::Unavailable {
            detail: format!("the secret store is unavailable: {e}"),
            retry_after: None,
        })?;
    Ok(match c.kind {
        ConnectionType::ApiKey => Credential::ApiKey(value),
        ConnectionType::Basic => Credential::Basic {
            username: c.username.clone().unwrap_or_default(),
            password: value,
        },
        _ => Credential::Bearer(value),
    })
}
