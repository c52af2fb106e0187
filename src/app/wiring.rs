//! Wiring: builds the [`App`] from configuration, choosing each port's
//! implementation (glue code, so errors are `anyhow`).

use std::sync::Arc;

use anyhow::Context as _;

use super::{App, AppState, Carried};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, QueueConfig, SecretsConfig, ShardsConfig, StoreConfig};
use crate::features::catalog::Catalog;
use crate::features::catalog::service as catalog;
use crate::features::connections::{Connections, OauthSettings, service as connections};
use crate::features::integrations::Integrations;
use crate::features::sync::SyncEngine;
use crate::features::sync::adapter::{AdapterContext, ProviderSettings};
use crate::features::webhooks::{AttemptQueue, Webhooks};
use crate::platform::auth::{self, TokenKeys};
use crate::platform::events::Events;
use crate::platform::outbound::{OutboundClient, OutboundPolicy};
use crate::platform::queue::embedded::EmbeddedQueue;
use crate::platform::queue::servicebus::ServiceBusQueue;
use crate::platform::queue::{HandOver, JobQueue};
use crate::platform::secrets::SecretStore;
use crate::platform::secrets::castiel::CastielSecretStore;
use crate::platform::secrets::keyvault::KeyVaultSecretStore;
use crate::platform::secrets::local::{self, LocalSecretStore};
use crate::platform::shards::ShardSink;
use crate::platform::shards::castiel::CastielShards;
use crate::platform::shards::local::LocalShards;
use crate::platform::store::Store;
use crate::platform::store::cosmos::{self, CosmosStore};
use crate::platform::store::embedded::{EmbeddedStore, SqliteDb};

/// Opens the configured document store.
pub async fn open_store(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn Store>> {
    match &config.store {
        StoreConfig::Embedded => {
            let db = shared_db(config)?;
            Ok(Arc::new(EmbeddedStore::new(db, clock)))
        }
        StoreConfig::Cosmos {
            endpoint,
            key,
            database,
        } => {
            let client = cosmos::connect(endpoint, key.as_ref())
                .await
                .with_context(|| format!("connecting to Cosmos DB at {endpoint}"))?;
            Ok(Arc::new(CosmosStore::new(client, database.clone(), clock)))
        }
    }
}

/// The embedded SQLite database of `DATA_DIR`, opened once per process so
/// that the store and the embedded queue share one writer connection.
pub fn shared_db(config: &Config) -> anyhow::Result<Arc<SqliteDb>> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError, Weak};
    static OPEN: OnceLock<Mutex<HashMap<std::path::PathBuf, Weak<SqliteDb>>>> = OnceLock::new();
    let path = config.database_path();
    let mut open = OPEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(db) = open.get(&path).and_then(Weak::upgrade) {
        return Ok(db);
    }
    let db = SqliteDb::open_with(&path, config.sqlite_synchronous)
        .with_context(|| format!("opening the embedded database at {}", path.display()))?;
    open.insert(path, Arc::downgrade(&db));
    Ok(db)
}

/// The configured job queue, and the embedded queue itself when it is the
/// one (for `serve`'s workers and the hand-over of first attempts).
pub type Queues = (Arc<dyn JobQueue>, Option<Arc<EmbeddedQueue<Carried>>>);

/// Opens the configured job queue.
pub async fn open_queue(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Queues> {
    match &config.queue {
        QueueConfig::Embedded => {
            let db = shared_db(config)?;
            let queue = Arc::new(EmbeddedQueue::open(db, clock).await?);
            Ok((queue.clone(), Some(queue)))
        }
        QueueConfig::ServiceBus { .. } => Ok((
            Arc::new(
                ServiceBusQueue::from_config(&config.queue).context("configuring Service Bus")?,
            ),
            None,
        )),
    }
}

/// Opens the configured secret store. `tokens` signs the service tokens of
/// calls to Castiel's secret-management (the JWT secret Castiel shares).
pub fn open_secrets(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tokens: &TokenKeys,
) -> anyhow::Result<Arc<dyn SecretStore>> {
    match &config.secrets {
        SecretsConfig::Local { .. } => {
            let source = local_key_source(config)?;
            let secrets = LocalSecretStore::open(source, store, clock)
                .context("opening the local secrets keyring")?;
            Ok(Arc::new(secrets))
        }
        SecretsConfig::Castiel { url } => Ok(Arc::new(
            CastielSecretStore::new(url.clone(), tokens.clone())
                .context("configuring SECRETS=castiel (SECRET_MANAGEMENT_URL)")?,
        )),
        SecretsConfig::KeyVault { url } => Ok(Arc::new(
            KeyVaultSecretStore::connect(url)
                .context("configuring SECRETS=keyvault (KEYVAULT_URL)")?,
        )),
    }
}

/// Where the local secret store's keys come from: the `SECRETS_KEY` list
/// (first key primary, fixed while the process runs), else the keyring file
/// of `DATA_DIR`, which `rotate-key` changes under running processes.
pub fn local_key_source(config: &Config) -> anyhow::Result<local::KeySource> {
    match &config.secrets {
        SecretsConfig::Local { key: Some(list) } => {
            let ring = local::Keyring::parse_list(secrecy::ExposeSecret::expose_secret(list))
                .context("SECRETS_KEY must be a base64 32-byte key, or a comma-separated list of them (primary first)")?;
            Ok(local::KeySource::Fixed(ring))
        }
        SecretsConfig::Local { key: None } => Ok(local::KeySource::File(local::KeyFile::in_dir(
            &config.data_dir,
        ))),
        _ => anyhow::bail!("SECRETS is not local: the local keyring is not used"),
    }
}

/// The shard sink, and the local shard store when it is the one.
pub type Shards = (Arc<dyn ShardSink>, Option<Arc<LocalShards>>);

/// The configured shard sink, and the local shard store itself when it is
/// the one (for `/api/v1/shards`). `tokens` signs the service tokens of
/// calls to Castiel's shard-manager; its id map lives in `store`.
pub fn open_shards(
    config: &Config,
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    tokens: &TokenKeys,
    events: &Arc<Events>,
) -> anyhow::Result<Shards> {
    match &config.shards {
        ShardsConfig::Embedded => {
            let local = Arc::new(LocalShards::new(
                store.clone(),
                clock.clone(),
                events.clone(),
            ));
            Ok((local.clone(), Some(local)))
        }
        ShardsConfig::Castiel { url } => {
            let client = CastielShards::new(url.clone(), tokens.clone(), store.clone())
                .context("configuring SHARDS=castiel (SHARD_MANAGER_URL)")?;
            Ok((Arc::new(client), None))
        }
    }
}

/// Builds the application from configuration and seeds the catalog.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&config, clock.clone()).await?;
    build_with(config, store, clock).await
}

/// Builds the application on a given store and clock (tests use this).
pub async fn build_with(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    let secret = auth::resolve_secret(&config.jwt, &config.data_dir)
        .context("reading or creating the JWT secret")?;
    let tokens = TokenKeys::new(
        &secret,
        config.jwt.issuer.clone(),
        config.jwt.audience.clone(),
    );
    let events = Arc::new(
        Events::new(crate::platform::events::bus_for(&config), clock.clone())
            .with_outbox(store.clone()),
    );
    let outbound = Arc::new(OutboundClient::new(
        OutboundPolicy::new(config.outbound_allowed_cidrs.clone()),
        std::time::Duration::from_secs(u64::from(config.webhooks.timeout_seconds)),
    ));
    let secrets = open_secrets(&config, store.clone(), clock.clone(), &tokens)?;
    let (queue, local_queue) = open_queue(&config, clock.clone()).await?;
    let attempts = AttemptQueue {
        jobs: queue.clone(),
        local: local_queue.clone().map(|q| q as Arc<dyn HandOver<Carried>>),
    };
    let webhooks = Arc::new(Webhooks::new(
        store.clone(),
        attempts,
        clock.clone(),
        events.clone(),
        outbound.clone(),
        secrets.clone(),
        config.webhooks,
    ));
    events.subscribe(Arc::new(webhooks.fanout()));
    let catalog = Arc::new(Catalog::new(
        store.clone(),
        clock.clone(),
        outbound.policy().clone(),
    ));
    let integrations = Arc::new(Integrations {
        store: store.clone(),
        clock: clock.clone(),
        events: events.clone(),
        outbound: outbound.clone(),
        catalog: catalog.clone(),
        webhooks: webhooks.clone(),
        dependents: Default::default(),
    });
    integrations.add_dependent(Arc::new(connections::Cleanup {
        store: store.clone(),
        secrets: secrets.clone(),
    }));
    integrations.add_dependent(Arc::new(crate::features::sync::tasks::Cleanup {
        store: store.clone(),
    }));
    let connections = Arc::new(Connections {
        store: store.clone(),
        clock: clock.clone(),
        events: events.clone(),
        secrets: secrets.clone(),
        outbound: outbound.clone(),
        catalog: catalog.clone(),
        integrations: integrations.clone(),
        oauth: oauth_settings(&config)?,
    });
    let (shards, local_shards) = open_shards(&config, &store, &clock, &tokens, &events)?;
    let sync = Arc::new(SyncEngine {
        store: store.clone(),
        clock: clock.clone(),
        events: events.clone(),
        queue: queue.clone(),
        shards: shards.clone(),
        adapters: AdapterContext {
            connections: connections.clone(),
            outbound,
            providers: ProviderSettings {
                salesforce_api_version: config.salesforce_api_version.clone(),
            },
        },
        integrations: integrations.clone(),
        catalog: catalog.clone(),
        limits: config.sync,
    });
    let seeded = catalog::seed(&catalog)
        .await
        .map_err(|e| anyhow::anyhow!("seeding the catalog: {e}"))?;
    if seeded > 0 {
        tracing::info!(count = seeded, "seeded built-in catalog entries");
    }
    let app = App {
        config,
        store,
        clock,
        tokens,
        events,
        secrets,
        queue,
        local_queue,
        catalog,
        integrations,
        webhooks,
        connections,
        shards,
        local_shards,
        sync,
    };
    Ok(app.into())
}

/// OAuth settings: the redirect base defaults to this machine's `serve`
/// port, which is right for a laptop and nothing else (the README says to
/// set `OAUTH_REDIRECT_BASE_URL` in a deployment).
fn oauth_settings(config: &Config) -> anyhow::Result<OauthSettings> {
    let redirect_base_url = match &config.oauth_redirect_base_url {
        Some(u) => u.clone(),
        None => url::Url::parse(&format!("http://localhost:{}", config.port))
            .context("the default OAuth redirect base URL")?,
    };
    Ok(OauthSettings {
        clients: config.oauth_clients.clone(),
        redirect_base_url,
        allowed_return_origins: config.oauth_allowed_return_origins.clone(),
    })
}
