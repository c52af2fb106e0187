//! Wiring: builds the [`App`] from configuration, choosing each port's
//! implementation (glue code, so errors are `anyhow`).

use std::sync::Arc;

use anyhow::Context as _;

use crate::auth::{self, TokenKeys};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StoreConfig};
use crate::events::Events;
use crate::events::in_process::InProcessBus;
use crate::services::catalog;
use crate::state::{App, AppState};
use crate::store::Store;
use crate::store::cosmos::{self, CosmosStore};
use crate::store::embedded::{EmbeddedStore, SqliteDb};

/// Opens the configured document store.
pub async fn open_store(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn Store>> {
    match &config.store {
        StoreConfig::Embedded => {
            let path = config.database_path();
            let db = SqliteDb::open(&path)
                .with_context(|| format!("opening the embedded store at {}", path.display()))?;
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
    let events = Events::new(Arc::new(InProcessBus), clock.clone());
    let app = App {
        config,
        store,
        clock,
        tokens,
        events,
    };
    let seeded = catalog::seed(&app)
        .await
        .map_err(|e| anyhow::anyhow!("seeding the catalog: {e}"))?;
    if seeded > 0 {
        tracing::info!(count = seeded, "seeded built-in catalog entries");
    }
    Ok(app.into())
}
