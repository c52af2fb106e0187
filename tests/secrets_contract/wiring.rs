//! The wiring builds each configured store: `SECRETS=castiel` signs with the
//! app's JWT secret, `SECRETS=keyvault` starts without calling the vault.

use std::sync::Arc;

use castiel_integrations::app::wiring;
use castiel_integrations::clock::SystemClock;
use castiel_integrations::config::Config;
use castiel_integrations::platform::store::Store;
use castiel_integrations::platform::store::embedded::{EmbeddedStore, SqliteDb};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::backends::owner;
use crate::castiel_secrets_double::{CastielDouble, JWT_SECRET};

fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let db = SqliteDb::open(&dir.path().join("w.db")).expect("sqlite");
    Arc::new(EmbeddedStore::new(db, Arc::new(SystemClock)))
}

#[tokio::test]
async fn the_app_uses_castiel_secret_management_when_configured() {
    let double = CastielDouble::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_string_lossy().into_owned();
    let url = double.url.to_string();
    let config = Config::from_pairs(&[
        ("DATA_DIR", &data_dir),
        ("JWT_SECRET", JWT_SECRET),
        ("SECRETS", "castiel"),
        ("SECRET_MANAGEMENT_URL", &url),
    ])
    .expect("config");
    let app = wiring::build_with(config, store(&dir), Arc::new(SystemClock))
        .await
        .expect("app");
    assert_eq!(app.secrets.name(), "castiel");
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let r = app
        .secrets
        .put(&o, &SecretString::from("v".to_owned()))
        .await
        .expect("put");
    let got = app.secrets.get(&o, &r).await.expect("get");
    assert_eq!(got.expose_secret(), "v");
    let state = double.state();
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}

#[tokio::test]
async fn the_app_starts_on_key_vault_without_calling_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_string_lossy().into_owned();
    let config = Config::from_pairs(&[
        ("DATA_DIR", &data_dir),
        ("JWT_SECRET", JWT_SECRET),
        ("SECRETS", "keyvault"),
        ("KEYVAULT_URL", "https://castiel-prod.vault.azure.net/"),
    ])
    .expect("config");
    let app = wiring::build_with(config, store(&dir), Arc::new(SystemClock))
        .await
        .expect("app");
    assert_eq!(app.secrets.name(), "keyvault");
    assert!(format!("{:?}", app.secrets).contains("castiel-prod.vault.azure.net"));
}

#[tokio::test]
async fn a_key_vault_url_without_tls_fails_at_start_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_string_lossy().into_owned();
    let config = Config::from_pairs(&[
        ("DATA_DIR", &data_dir),
        ("JWT_SECRET", JWT_SECRET),
        ("SECRETS", "keyvault"),
        ("KEYVAULT_URL", "http://castiel-prod.vault.azure.net/"),
    ])
    .expect("config");
    let e = wiring::build_with(config, store(&dir), Arc::new(SystemClock))
        .await
        .expect_err("refused");
    let text = format!("{e:#}");
    assert!(
        text.contains("KEYVAULT_URL") && text.contains("https"),
        "{text}"
    );
}
