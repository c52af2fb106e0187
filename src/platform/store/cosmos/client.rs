//! Building the Cosmos client: account key or Microsoft Entra ID (managed
//! identity), emulator-only transport settings, bounded 429 retries.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_data_cosmos::options::{
    BinaryEncodingOptions, ConnectionPoolOptions, OperationOptionsBuilder, Region,
    ServerCertificateValidation, ThrottlingRetryOptions, ThrottlingRetryOptionsBuilder,
};
use azure_data_cosmos::{
    AccountEndpoint, AccountReference, CosmosClient, CosmosClientBuilder, CosmosRuntime,
    RoutingStrategy,
};
use azure_identity::ManagedIdentityCredential;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use crate::platform::store::StoreError;

/// How many times the SDK retries a throttled (429) request, waiting for the
/// server's `x-ms-retry-after-ms` before each retry.
pub const THROTTLE_RETRIES: u32 = 5;

/// The most the SDK waits in total across those retries.
pub const THROTTLE_MAX_WAIT: Duration = Duration::from_secs(10);

/// The SDK's throttling policy used by every client this store builds.
pub fn throttling_retries() -> ThrottlingRetryOptions {
    ThrottlingRetryOptionsBuilder::new()
        .with_max_retry_count(THROTTLE_RETRIES)
        .with_max_retry_wait_time(THROTTLE_MAX_WAIT)
        .build()
}

/// Whether an endpoint is a local emulator (the SDK's own rule: loopback
/// hosts, or the host named by `AZURE_COSMOS_EMULATOR_HOST`).
pub fn is_emulator(endpoint: &Url) -> bool {
    let Some(host) = endpoint.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(host, "localhost" | "127.0.0.1" | "::1")
        || std::env::var("AZURE_COSMOS_EMULATOR_HOST").is_ok_and(|h| h.eq_ignore_ascii_case(host))
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

/// The region the SDK orders its preferred regions by: Azure App Service /
/// Functions set `REGION_NAME` to the app's own region; elsewhere East US.
fn home_region() -> Region {
    std::env::var("REGION_NAME")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .map_or(Region::EAST_US, Region::new)
}

/// Connects to a Cosmos account.
///
/// With a key, requests are signed with it (and `provision` may create the
/// database and containers). Without one, the client authenticates with
/// Microsoft Entra ID through the managed identity of the host (system-assigned;
/// in Azure the Function App's identity needs the "Cosmos DB Built-in Data
/// Contributor" role, and Bicep creates the containers).
///
/// Emulator endpoints (loopback or `AZURE_COSMOS_EMULATOR_HOST`) get plain
/// JSON instead of binary encoding, HTTP/1.1 and a relaxed certificate check;
/// production endpoints use the SDK's defaults.
pub async fn connect(
    endpoint: &Url,
    key: Option<&SecretString>,
) -> Result<CosmosClient, StoreError> {
    let account_endpoint: AccountEndpoint = endpoint
        .as_str()
        .parse()
        .map_err(|e| unavailable("COSMOS_ENDPOINT", e))?;
    let account = match key {
        Some(key) => AccountReference::with_authentication_key(
            account_endpoint,
            Secret::new(key.expose_secret().to_owned()),
        ),
        None => {
            let credential: Arc<dyn TokenCredential> = ManagedIdentityCredential::new(None)
                .map_err(|e| unavailable("managed identity credential", e))?;
            AccountReference::with_credential(account_endpoint, credential)
        }
    };
    let emulator = is_emulator(endpoint);
    let mut builder = CosmosClient::builder();
    if emulator {
        let pool = ConnectionPoolOptions::builder()
            .with_server_certificate_validation(ServerCertificateValidation::RequiredUnlessEmulator)
            .with_is_http2_allowed(false)
            .build()
            .map_err(|e| unavailable("Cosmos connection pool", e))?;
        let runtime = CosmosRuntime::builder()
            .with_connection_pool(pool)
            .build()
            .await
            .map_err(|e| unavailable("Cosmos runtime", e))?;
        builder = builder
            .with_runtime(runtime)
            .with_binary_encoding_options(BinaryEncodingOptions::new().with_enabled(false));
    }
    build(builder, account, emulator, throttling_retries()).await
}

/// Finishes a client on a prepared builder (tests pass an emulator runtime),
/// with the given 429 policy (production: [`throttling_retries`]).
pub async fn build(
    builder: CosmosClientBuilder,
    account: AccountReference,
    plain_json: bool,
    throttling: ThrottlingRetryOptions,
) -> Result<CosmosClient, StoreError> {
    let mut builder = builder.with_default_operation_options(
        OperationOptionsBuilder::new()
            .with_throttling_retry_options(throttling)
            .build(),
    );
    if plain_json {
        builder =
            builder.with_binary_encoding_options(BinaryEncodingOptions::new().with_enabled(false));
    }
    builder
        .build(account, RoutingStrategy::ProximityTo(home_region()))
        .await
        .map_err(|e| unavailable("connecting to Cosmos", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_emulators() {
        let u = |s: &str| Url::parse(s).expect("url");
        assert!(is_emulator(&u("https://localhost:8081/")));
        assert!(is_emulator(&u("http://127.0.0.1:8081/")));
        assert!(is_emulator(&u("https://[::1]:8081/")));
        assert!(!is_emulator(&u("https://acct.documents.azure.com:443/")));
    }
}
