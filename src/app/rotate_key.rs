//! The `rotate-key` command's library side: from configuration to the
//! rotation of the local secret store's keys (glue, so errors are `anyhow`).
//! The rotation itself is `platform::secrets::local::rotate`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};

use super::wiring;
use crate::clock::SystemClock;
use crate::config::{Config, SecretsConfig};
use crate::platform::secrets::local::rotate::{self, RotateOptions, RotationReport};
use crate::platform::secrets::local::{Kek, KeySource};

/// Rotates the local secret store's keys on the configured store: a new
/// primary (`to`, else generated; with `SECRETS_KEY`, its first key), every
/// secret re-wrapped, the old keys retired. Safe while `serve` runs on the
/// same `DATA_DIR` and store. `settle` is the wait before the final
/// verification scan.
pub async fn rotate_key(
    config: &Config,
    to: Option<&SecretString>,
    settle: Duration,
) -> anyhow::Result<RotationReport> {
    if !matches!(config.secrets, SecretsConfig::Local { .. }) {
        anyhow::bail!(
            "rotate-key rotates the keys of the local secret store (SECRETS=local); \
             the configured secret store keeps its keys itself"
        );
    }
    let to = to
        .map(|k| Kek::decode(k.expose_secret()))
        .map(|k| k.context("--to is not the base64 encoding of 32 bytes"))
        .transpose()?;
    let source = wiring::local_key_source(config)?;
    if let KeySource::File(file) = &source
        && file.load()?.is_none()
    {
        // Say so before opening (and so creating) anything in DATA_DIR.
        anyhow::bail!(
            "{} has no secrets keyring (secrets.keys or secrets.key): nothing to rotate",
            config.data_dir.display()
        );
    }
    let store = wiring::open_store(config, Arc::new(SystemClock)).await?;
    let options = RotateOptions {
        settle,
        ..RotateOptions::default()
    };
    rotate::rotate_key(store, source, to, &options)
        .await
        .context("rotating the secrets key")
}
