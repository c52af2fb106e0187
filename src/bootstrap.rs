//! Wiring: builds the [`App`] from configuration, choosing each port's
//! implementation (glue code, so errors are `anyhow`).

use std::sync::Arc;

use anyhow::Context as _;

use crate::auth::{self, TokenKeys};
use crate::cache::ReadCache;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, QueueConfig, SecretsConfig, StoreConfig};
use crate::events::Events;
use crate::outbound::{OutboundClient, OutboundPolicy};
use crate::queue::JobQueue;
use crate::queue::embedded::EmbeddedQueue;
use crate::queue::servicebus::ServiceBusQueue;
use crate::secrets::SecretStore;
use crate::secrets::local::{self, LocalSecretStore};
use crate::services::catalog;
use crate::state::{App, AppState};
use crate::store::Store;
use crate::store::cosmos::{self, CosmosStore};
use crate::store::embedded::{EmbeddedStore, SqliteDb};
use crate::webhooks::fanout::WebhookFanout;

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
    let db = SqliteDb::open(&path)
        .with_context(|| format!("opening the embedded database at {}", path.display()))?;
    open.insert(path, Arc::downgrade(&db));
    Ok(db)
}

/// Opens the configured job queue.
pub async fn open_queue(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn JobQueue>> {
    match &config.queue {
        QueueConfig::Embedded => {
            let db = shared_db(config)?;
            Ok(Arc::new(EmbeddedQueue::open(db, clock).await?))
        }
        QueueConfig::ServiceBus { .. } => Ok(Arc::new(
            ServiceBusQueue::from_config(&config.queue).context("configuring Service Bus")?,
        )),
    }
}

/// Opens the configured secret store.
pub fn open_secrets(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn SecretStore>> {
    match &config.secrets {
        SecretsConfig::Local { key } => {
            let encoded = match key {
                Some(k) => secrecy::ExposeSecret::expose_secret(k).to_owned(),
                None => crate::files::read_or_create_secret(
                    &config.data_dir.join("secrets.key"),
                    local::generate_key,
                )
                .context("reading or creating DATA_DIR/secrets.key")?,
            };
            let key = local::decode_key(&encoded)
                .context("the secrets key is not the base64 encoding of 32 bytes (SECRETS_KEY or DATA_DIR/secrets.key)")?;
            Ok(Arc::new(LocalSecretStore::new(&key, store, clock)))
        }
        SecretsConfig::Castiel { .. } => {
            anyhow::bail!("SECRETS=castiel is not available in this build yet; use SECRETS=local")
        }
        SecretsConfig::KeyVault { .. } => {
            anyhow::bail!("SECRETS=keyvault is not available in this build yet; use SECRETS=local")
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
    let events =
        Events::new(crate::events::bus_for(&config), clock.clone()).with_outbox(store.clone());
    let outbound = Arc::new(OutboundClient::new(
        OutboundPolicy::new(config.outbound_allowed_cidrs.clone()),
        std::time::Duration::from_secs(u64::from(config.webhooks.timeout_seconds)),
    ));
    let secrets = open_secrets(&config, store.clone(), clock.clone())?;
    let queue = open_queue(&config, clock.clone()).await?;
    let webhooks = Arc::new(ReadCache::new(
        crate::webhooks::fanout::CACHE_TTL,
        crate::webhooks::fanout::CACHED_TENANTS,
    ));
    events.subscribe(Arc::new(WebhookFanout::new(
        store.clone(),
        queue.clone(),
        clock.clone(),
        Arc::clone(&webhooks),
    )));
    let app = App {
        config,
        store,
        clock,
        tokens,
        events,
        outbound,
        secrets,
        queue,
        catalog: ReadCache::new(catalog::CACHE_TTL, 1),
        webhooks,
        signing_keys: ReadCache::new(
            crate::webhooks::send::SIGNING_KEY_TTL,
            crate::webhooks::send::SIGNING_KEYS_CACHED,
        ),
    };
    let seeded = catalog::seed(&app)
        .await
        .map_err(|e| anyhow::anyhow!("seeding the catalog: {e}"))?;
    if seeded > 0 {
        tracing::info!(count = seeded, "seeded built-in catalog entries");
    }
    Ok(app.into())
}
