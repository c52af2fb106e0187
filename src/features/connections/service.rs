//! Connections: create (validated per type; the token-based types prove
//! their credentials at once), list, delete, and the cleanup when an
//! integration goes. One active connection per integration: a new one
//! replaces the old, whose secrets are deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use uuid::Uuid;

use super::Connections;
pub use super::input::NewConnection;
use super::input::{check, check_provider, first_token};
use super::model::{Connection, OauthInfo, RefreshState, secret};
use crate::domain::tenancy::{Ctx, TenantId};
use crate::error::{Error, Result};
use crate::features::integrations::credentials::{self, CredentialsReport};
use crate::features::integrations::model::ConnectionStatus;
use crate::features::integrations::service as integrations;
use crate::platform::secrets::{SecretOwner, SecretRef, SecretStore};
use crate::platform::store::{Query, Store};

/// The owner of a connection's secrets.
pub fn owner(tenant: TenantId, connection_id: Uuid) -> SecretOwner {
    SecretOwner {
        tenant_id: tenant,
        kind: "connection",
        id: connection_id.to_string(),
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        detail: format!("the secret store is unavailable: {e}"),
        retry_after: None,
    }
}

/// Stores secrets for a connection; on failure, deletes what was stored.
pub async fn put_secrets(
    secrets: &dyn SecretStore,
    owner: &SecretOwner,
    values: Vec<(&'static str, SecretString)>,
) -> Result<BTreeMap<String, SecretRef>> {
    let mut refs = BTreeMap::new();
    for (name, value) in values {
        match secrets.put(owner, &value).await {
            Ok(r) => {
                refs.insert(name.to_owned(), r);
            }
            Err(e) => {
                delete_secrets(secrets, owner, &refs).await;
                return Err(unavailable(e));
            }
        }
    }
    Ok(refs)
}

/// Deletes secrets (failures are logged: an orphaned secret is unreadable
/// without its document, a lost document is worse).
pub async fn delete_secrets(
    secrets: &dyn SecretStore,
    owner: &SecretOwner,
    refs: &BTreeMap<String, SecretRef>,
) {
    for (name, r) in refs {
        if let Err(e) = secrets.delete(owner, r).await {
            tracing::warn!(connection.id = %owner.id, secret = %name, error = %e, "deleting a connection secret failed");
        }
    }
}

/// Creates a connection, replacing the integration's previous one, and
/// marks the integration `connected`.
pub async fn create(
    app: &Connections,
    ctx: &Ctx,
    integration_id: Uuid,
    input: NewConnection,
) -> Result<Connection> {
    let checked = check(app, &input).await?;
    let integration = integrations::get(&app.integrations, ctx, integration_id).await?;
    check_provider(app, ctx, &integration, input.kind).await?;
    let granted = first_token(app, &input, &checked).await?;
    let now = app.clock.now();
    let mut values = checked.secrets;
    let mut oauth = None;
    if let Some(g) = granted {
        oauth = Some(OauthInfo {
            expires_at: g.expires_at,
            scopes: g.scopes.unwrap_or_else(|| checked.scopes.clone()),
        });
        values.push((secret::ACCESS_TOKEN, g.access_token));
    }
    let connection = Connection {
        id: Uuid::new_v4(),
        integration_id,
        tenant_id: ctx.tenant(),
        kind: input.kind,
        display_name: input
            .display_name
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        status: ConnectionStatus::Active,
        secret_refs: BTreeMap::new(),
        username: input.username,
        client_id: checked
            .key
            .as_ref()
            .map(|k| k.client_email.clone())
            .or(input.client_id),
        token_url: checked.token_url.map(|u| u.to_string()),
        subject: input.subject,
        oauth,
        refresh: RefreshState::default(),
        last_validated_at: Some(now),
        created_at: now,
        updated_at: now,
        etag: String::new(),
    };
    install(app, ctx, connection, values, None).await
}

/// Stores a new connection with its secrets, removes the integration's
/// other connections, and reports the integration `connected`.
pub async fn install(
    app: &Connections,
    ctx: &Ctx,
    mut connection: Connection,
    values: Vec<(&'static str, SecretString)>,
    instance_url: Option<String>,
) -> Result<Connection> {
    let owner = owner(ctx.tenant(), connection.id);
    connection.secret_refs = put_secrets(app.secrets.as_ref(), &owner, values).await?;
    let saved = match app.store.insert(&connection).await {
        Ok(saved) => saved,
        Err(e) => {
            delete_secrets(app.secrets.as_ref(), &owner, &connection.secret_refs).await;
            return Err(e.into());
        }
    };
    remove_all(
        app.store.as_ref(),
        app.secrets.as_ref(),
        ctx.tenant(),
        connection.integration_id,
        Some(saved.id),
    )
    .await?;
    let report = CredentialsReport {
        connection_status: ConnectionStatus::Active,
        error: None,
        instance_url,
        tested_at: saved.last_validated_at,
    };
    credentials::record(&app.integrations, ctx, saved.integration_id, &report).await?;
    Ok(saved)
}

/// The query of an integration's connections (one partition; the tenant
/// is checked too, so a guessed integration id shows nothing).
fn of_integration(tenant: TenantId, integration_id: Uuid) -> Query {
    Query::partition(integration_id.to_string())
        .eq("tenantId", tenant.key())
        .order_by("createdAt", true)
}

/// Deletes an integration's connections and their secrets, but `keep`.
async fn remove_all(
    store: &dyn Store,
    secrets: &dyn SecretStore,
    tenant: TenantId,
    integration_id: Uuid,
    keep: Option<Uuid>,
) -> Result<usize> {
    let all: Vec<Connection> = store
        .all(of_integration(tenant, integration_id), 100)
        .await?;
    let mut removed = 0;
    for c in all.into_iter().filter(|c| Some(c.id) != keep) {
        remove(store, secrets, &c).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Deletes one connection document, then its secrets.
async fn remove(store: &dyn Store, secrets: &dyn SecretStore, c: &Connection) -> Result<()> {
    match store
        .remove::<Connection>(&c.integration_id.to_string(), &c.id.to_string(), None)
        .await
    {
        Ok(()) | Err(crate::platform::store::StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    delete_secrets(secrets, &owner(c.tenant_id, c.id), &c.secret_refs).await;
    Ok(())
}

/// The integration's connections (the active one first).
pub async fn list(app: &Connections, ctx: &Ctx, integration_id: Uuid) -> Result<Vec<Connection>> {
    integrations::get(&app.integrations, ctx, integration_id).await?;
    Ok(app
        .store
        .all(of_integration(ctx.tenant(), integration_id), 10)
        .await?)
}

/// One connection of one of the caller's integrations.
pub async fn get(
    app: &Connections,
    ctx: &Ctx,
    integration_id: Uuid,
    id: Uuid,
) -> Result<Connection> {
    app.store
        .get::<Connection>(&integration_id.to_string(), &id.to_string())
        .await?
        .filter(|c| c.tenant_id == ctx.tenant())
        .ok_or(Error::NotFound("connection"))
}

/// Deletes a connection and its secrets; the integration goes back to
/// `pending` when it was its connection.
pub async fn delete(app: &Connections, ctx: &Ctx, integration_id: Uuid, id: Uuid) -> Result<()> {
    integrations::get(&app.integrations, ctx, integration_id).await?;
    let c = get(app, ctx, integration_id, id).await?;
    remove(app.store.as_ref(), app.secrets.as_ref(), &c).await?;
    let left: Vec<Connection> = app
        .store
        .all(of_integration(ctx.tenant(), integration_id), 10)
        .await?;
    if left.is_empty() {
        let report = CredentialsReport {
            connection_status: ConnectionStatus::None,
            error: None,
            instance_url: None,
            tested_at: None,
        };
        credentials::record(&app.integrations, ctx, integration_id, &report).await?;
    }
    Ok(())
}

/// Deletes an integration's connections with it.
pub struct Cleanup {
    /// Document store.
    pub store: Arc<dyn Store>,
    /// Secret store.
    pub secrets: Arc<dyn SecretStore>,
}

#[async_trait]
impl crate::features::integrations::Dependent for Cleanup {
    async fn integration_deleted(&self, ctx: &Ctx, integration_id: Uuid) -> Result<()> {
        remove_all(
            self.store.as_ref(),
            self.secrets.as_ref(),
            ctx.tenant(),
            integration_id,
            None,
        )
        .await?;
        Ok(())
    }
}
