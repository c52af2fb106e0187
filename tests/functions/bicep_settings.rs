//! The Bicep deployment's settings are ones the binary accepts: the real
//! `handler` is started with exactly the app settings `infra/main.bicep`
//! declares for the Function App, valued as a deployment would value them,
//! with the endpoints pointed at local doubles, and it must become ready.
//!
//! - The settings are read from the Bicep syntax tree (`infra::app_settings`),
//!   never listed here. Literals are used as written; every other expression
//!   gets its value from one table, [`deployment_values`], and a setting whose
//!   expression the table lacks fails the test (so does a stale entry).
//! - `@Microsoft.KeyVault(...)` references are resolved as App Service
//!   resolves them, from [`vault_secrets`].
//! - Besides those settings the process gets only what the platform itself
//!   sets: `FUNCTIONS_CUSTOMHANDLER_PORT` (the emulated host),
//!   `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (the system-assigned identity),
//!   and `PATH`.
//! - Doubles: the App Service identity endpoint (`managed_identity.rs`), a
//!   Cosmos DB gateway with the SDK's emulator behind an https socket that
//!   accepts only that identity's token (`cosmos_gateway.rs`; its database
//!   and containers are created from `infra/modules/cosmos.bicep`, as the
//!   deployment creates them), and the local RabbitMQ broker. Key Vault and
//!   Service Bus stay unreachable: the app builds without calling them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use azure_data_cosmos::models::{ContainerProperties, TimeToLive};
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::auth::TokenKeys;
use secrecy::SecretString;
use serde_json::Value;
use url::Url;
use uuid::Uuid;

use crate::cosmos_gateway::{AAD_RESOURCE, CosmosGateway};
use crate::host::{Host, HttpAnswer, repo};
use crate::infra::{app_setting_names, app_settings, bicep_var};
use crate::managed_identity::{IdentityEndpoint, token_for};

const JWT_SECRET: &str = "bicep-settings-test-jwt-secret-0123456789abcdef";
const ISSUER: &str = "https://auth.castiel.test/";
const AUDIENCE: &str = "castiel-integrations";
const VAULT: &str = "castielkvtest";
const NAMESPACE: &str = "castiel-sb-test";
const DATABASE: &str = "castiel";
const BUILT_INS: [&str; 4] = ["salesforce", "hubspot", "google_workspace", "custom_rest"];
/// Generous: the App is built in well under a second here.
const DEADLINE: Duration = Duration::from_secs(60);

/// What a deployment makes of each Bicep expression the app settings use,
/// keyed by the expression's source text: the parameters a deployment
/// passes, and the names and outputs of the resources it creates, pointed
/// at this test's doubles where the binary calls them.
fn deployment_values(cosmos: &Url) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        // Parameters.
        ("prefix", "castiel".to_owned()),
        ("jwtIssuer", ISSUER.to_owned()),
        (
            "oauthAllowedReturnOrigins",
            "https://app.castiel.test".to_owned(),
        ),
        ("salesforceClientId", "sf-consumer-key-test".to_owned()),
        // HubSpot's OAuth not offered: the default.
        ("hubspotClientId", String::new()),
        ("uniqueString(resourceGroup().id)", "t3st".to_owned()),
        ("jwtAudience", AUDIENCE.to_owned()),
        // The default: no shard-manager, shards stay in the store.
        ("shardManagerUrl", String::new()),
        (
            "empty(shardManagerUrl) ? 'embedded' : 'castiel'",
            "embedded".to_owned(),
        ),
        // Resources of main.bicep.
        ("storage.name", "castielsttest".to_owned()),
        (
            "environment().suffixes.storage",
            "core.windows.net".to_owned(),
        ),
        (
            "storage.listKeys().keys[0].value",
            "dGVzdC1rZXk=".to_owned(),
        ),
        ("contentShareName", "castiel-func-test".to_owned()),
        // Module outputs.
        (
            "monitoring.outputs.connectionString",
            "InstrumentationKey=00000000-0000-0000-0000-000000000000".to_owned(),
        ),
        (
            "serviceBus.outputs.fullyQualifiedNamespace",
            format!("{NAMESPACE}.servicebus.windows.net"),
        ),
        ("serviceBus.outputs.namespaceName", NAMESPACE.to_owned()),
        ("cosmos.outputs.endpoint", cosmos.to_string()),
        ("cosmos.outputs.databaseName", DATABASE.to_owned()),
        ("keyVault.outputs.vaultName", VAULT.to_owned()),
        (
            "keyVault.outputs.vaultUri",
            format!("https://{VAULT}.vault.azure.net/"),
        ),
    ])
}

/// The secrets of the deployment's vault.
fn vault_secrets() -> BTreeMap<&'static str, String> {
    let rabbitmq = std::env::var("CASTIEL_TEST_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    BTreeMap::from([
        ("jwt-secret", JWT_SECRET.to_owned()),
        ("rabbitmq-url", rabbitmq),
        (
            "salesforce-client-secret",
            "sf-consumer-secret-test".to_owned(),
        ),
        ("hubspot-client-secret", "hs-client-secret-test".to_owned()),
    ])
}

/// App Service's Key Vault references: `@Microsoft.KeyVault(VaultName=v;SecretName=s[;SecretVersion=x])`
/// or `@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s[/x])`;
/// any other value is used as it is.
fn resolve(setting: &str, value: String) -> String {
    let Some(reference) = value
        .strip_prefix("@Microsoft.KeyVault(")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return value;
    };
    let parts: BTreeMap<&str, &str> = reference
        .split(';')
        .map(|p| {
            p.split_once('=')
                .unwrap_or_else(|| panic!("{setting}: {value}"))
        })
        .collect();
    let (vault, secret) = match (parts.get("SecretUri"), parts.get("VaultName")) {
        (Some(uri), None) => {
            let uri = Url::parse(uri).unwrap_or_else(|e| panic!("{setting}: {e}"));
            let host = uri.host_str().unwrap_or_default().to_owned();
            let segments: Vec<String> = uri
                .path_segments()
                .expect("path")
                .map(str::to_owned)
                .collect();
            assert_eq!(segments[0], "secrets", "{setting}: {value}");
            let vault = host.strip_suffix(".vault.azure.net").unwrap_or(&host);
            (
                vault.to_owned(),
                segments.get(1).cloned().unwrap_or_default(),
            )
        }
        (None, Some(vault)) => {
            let known = ["VaultName", "SecretName", "SecretVersion"];
            assert!(
                parts.keys().all(|k| known.contains(k)),
                "{setting}: {value}"
            );
            let secret = parts.get("SecretName").copied().unwrap_or_default();
            (vault.to_string(), secret.to_owned())
        }
        _ => panic!("{setting}: not a Key Vault reference App Service resolves: {value}"),
    };
    assert_eq!(vault, VAULT, "{setting}: a reference to the deployed vault");
    let declared = std::fs::read_to_string(repo().join("infra/modules/keyvault.bicep"))
        .expect("read keyvault.bicep");
    assert!(
        declared.contains(&format!("name: '{secret}'")),
        "{setting}: infra/modules/keyvault.bicep declares no secret {secret:?}"
    );
    vault_secrets()
        .remove(secret.as_str())
        .unwrap_or_else(|| panic!("{setting}: the test's vault has no secret {secret:?}"))
}

/// Settings the Functions host, its extensions or App Service read, not the binary.
fn platform_setting(name: &str) -> bool {
    [
        "FUNCTIONS_",
        "AzureWebJobs",
        "WEBSITE_",
        "APPLICATIONINSIGHTS_",
        "ServiceBusConnection__",
    ]
    .iter()
    .any(|p| name.starts_with(p))
        || name == "RabbitMQConnection"
}

#[test]
fn every_app_setting_is_a_configuration_key_or_a_platform_setting() {
    let names = app_setting_names();
    assert!(names.len() >= 10, "{names:?}");
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "an app setting is declared twice: {names:?}"
    );
    let keys: Vec<&str> = castiel_integrations::config::KEYS
        .iter()
        .map(|(k, _)| *k)
        .collect();
    for name in &names {
        assert!(
            keys.contains(&name.as_str()) || platform_setting(name),
            "app setting {name} is neither a configuration key (config::KEYS) nor a platform setting"
        );
    }
}

/// Creates the database and the containers `infra/modules/cosmos.bicep`
/// declares, with their partition keys and default TTLs.
async fn deploy_cosmos(gateway: &CosmosGateway) {
    let client = gateway.admin_client().await;
    client
        .create_database(DATABASE, None)
        .await
        .expect("create the database");
    let db = client.database_client(DATABASE);
    for c in bicep_var("modules/cosmos.bicep", "containers")
        .as_array()
        .expect("containers")
    {
        let name = c["name"].as_str().expect("name").to_owned();
        let key = c["partitionKey"].as_str().expect("partitionKey").to_owned();
        let ttl = match c["defaultTtl"].as_i64().expect("defaultTtl") {
            -1 => TimeToLive::NoDefault,
            s => TimeToLive::Seconds(u32::try_from(s).expect("seconds")),
        };
        let props = ContainerProperties::new(name.clone(), key.into()).with_default_ttl(ttl);
        db.create_container(props, None)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
}

fn token(issuer: Option<&str>) -> String {
    TokenKeys::new(
        &SecretString::from(JWT_SECRET),
        issuer.map(str::to_owned),
        Some(AUDIENCE.to_owned()),
    )
    .mint(TenantId(Uuid::new_v4()), Some("user-1"), false, 3600)
}

/// The running handler and the doubles it calls.
struct Deployment {
    host: Host,
    identity: IdentityEndpoint,
    gateway: CosmosGateway,
}

/// Polls a forwarded GET until `done` holds, failing with what is known.
async fn poll(
    d: &Deployment,
    path: &str,
    done: impl Fn(&HttpAnswer) -> bool,
    why: &str,
) -> HttpAnswer {
    let host = &d.host;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ans = host.http("GET", path, &[], None).await;
        if done(&ans) {
            return ans;
        }
        assert!(
            Instant::now() < deadline,
            "{why} within {DEADLINE:?}; last answer {ans:?}; stdout {:?}; stderr {:?}; \
             identity endpoint problems {:?}; Cosmos gateway problems {:?}",
            host.stdout.lock().expect("lock"),
            host.stderr.lock().expect("lock"),
            d.identity.problems(),
            d.gateway.problems(),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_starts_with_exactly_the_bicep_app_settings() {
    let started = Instant::now();
    let identity = IdentityEndpoint::start().await;
    let gateway = CosmosGateway::start(&token_for(AAD_RESOURCE)).await;
    deploy_cosmos(&gateway).await;

    let values = deployment_values(&gateway.endpoint);
    let mut used = BTreeSet::new();
    let settings = app_settings(&mut |expr| {
        let v = values.get(expr).cloned();
        if v.is_some() {
            used.insert(expr.to_owned());
        }
        v
    });
    let stale: Vec<_> = values.keys().filter(|k| !used.contains(**k)).collect();
    assert!(
        stale.is_empty(),
        "table entries main.bicep no longer uses: {stale:?}"
    );
    let mut env: Vec<(String, String)> = settings
        .into_iter()
        .map(|(name, value)| {
            let value = resolve(&name, value);
            (name, value)
        })
        .collect();
    env.extend([
        ("IDENTITY_ENDPOINT".to_owned(), identity.url.to_string()),
        ("IDENTITY_HEADER".to_owned(), identity.header.clone()),
        ("PATH".to_owned(), std::env::var("PATH").expect("PATH")),
    ]);
    let d = Deployment {
        host: Host::start_binary_with_exactly(&env).await,
        identity,
        gateway,
    };
    let (host, identity, gateway) = (&d.host, &d.identity, &d.gateway);

    // Ready: the App was built (not the 503 "starting" answer).
    let health = poll(
        &d,
        "/api/health",
        |a| a.status != 503,
        "the App was not built",
    )
    .await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.body["status"], "ok");
    let app_ready = started.elapsed();

    // The catalog seed went through the Cosmos gateway; tokens are checked
    // with the Key Vault's JWT secret and the deployment's issuer and audience.
    let auth = format!("Bearer {}", token(Some(ISSUER)));
    let catalog = host
        .http(
            "GET",
            "/api/v1/integrations/catalog",
            &[("Authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(catalog.status, 200, "{catalog:?}");
    let ids: BTreeSet<&str> = catalog.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(
        BUILT_INS.iter().all(|b| ids.contains(b)),
        "catalog: {ids:?}"
    );
    let other_issuer = format!("Bearer {}", token(Some("https://elsewhere.test/")));
    let refused = host
        .http(
            "GET",
            "/api/v1/integrations/catalog",
            &[("Authorization", &other_issuer)],
            None,
        )
        .await;
    assert_eq!(refused.status, 401, "JWT_ISSUER applies: {refused:?}");

    // The OAuth settings: Salesforce's client, the deployment's own host as
    // the redirect target, the allowed return origin.
    let json = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let created = host
        .http(
            "POST",
            "/api/v1/integrations",
            &json,
            Some(&serde_json::json!({"providerId": "salesforce", "name": "Sales EU"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().expect("id");
    let oauth = host
        .http(
            "POST",
            &format!("/api/v1/integrations/{id}/oauth/start"),
            &json,
            Some(&serde_json::json!({"returnUrl": "https://app.castiel.test/settings"})),
        )
        .await;
    assert_eq!(oauth.status, 200, "{oauth:?}");
    let authorize = Url::parse(oauth.body["authorizationUrl"].as_str().expect("url")).expect("url");
    let param = |k: &str| {
        authorize
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("client_id").as_deref(), Some("sf-consumer-key-test"));
    assert_eq!(
        param("redirect_uri").as_deref(),
        Some("https://castiel-func-t3st.azurewebsites.net/api/v1/integrations/oauth/callback")
    );

    // Logs of the start: JSON lines on stdout (LOG_FORMAT), none an error,
    // nothing on stderr (the host logs that as errors).
    let stdout = host.stdout.lock().expect("lock").clone();
    let lines: Vec<Value> = stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "error logs: {errors:?}");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "seeded built-in catalog entries"),
        "{stdout:?}"
    );
    let stderr = host.stderr.lock().expect("lock").clone();
    assert!(
        stderr.is_empty(),
        "stderr (the host logs it as errors): {stderr:?}"
    );

    // Building the App needed only Cosmos DB: Key Vault and Service Bus are
    // unreachable from here, and no token was asked for either of them.
    let at_start = identity.resources();
    assert!(
        !at_start.is_empty() && at_start.iter().all(|r| r == AAD_RESOURCE),
        "tokens asked for at start: {at_start:?}"
    );

    // Readiness: the production parts the settings chose. The store (the
    // gateway) and the bus (the local broker) are up; Key Vault and Service
    // Bus cannot be reached from here and are reported, not asserted.
    let ready = poll(
        &d,
        "/api/ready",
        |a| {
            a.body["checks"]["store"]["status"] == "ok"
                && a.body["checks"]["events"]["status"] == "ok"
        },
        "store and events were not ready",
    )
    .await;
    let checks = &ready.body["checks"];
    for (check, backend) in [
        ("store", "cosmos"),
        ("events", "rabbitmq"),
        ("queue", "servicebus"),
        ("secrets", "keyvault"),
    ] {
        assert_eq!(checks[check]["backend"], backend, "{check}: {ready:?}");
    }

    // The doubles saw the protocol kept: the identity's token on every
    // Cosmos request, no control-plane write, the catalog written.
    assert_eq!(identity.problems(), Vec::<String>::new());
    assert_eq!(gateway.problems(), Vec::<String>::new());
    let requests = gateway.requests();
    let seeded = format!("POST /dbs/{DATABASE}/colls/integration_providers/docs");
    assert!(requests.contains(&seeded), "{requests:?}");

    let warnings: Vec<&Value> = lines.iter().filter(|l| l["level"] == "WARN").collect();
    let since_ready: Vec<String> = host.stdout.lock().expect("lock")[stdout.len()..].to_vec();
    eprintln!(
        "bicep settings: {} app settings; GET / after {:?}, App built {app_ready:?} after the \
         test began; /api/ready {} {}; identity resources {:?}; {} Cosmos requests; \
         warnings at start {warnings:?}; logged since /api/ready {since_ready:?}; total {:?}",
        env.len() - 3,
        host.ready_after,
        ready.status,
        ready.body,
        identity.resources(),
        requests.len(),
        started.elapsed(),
    );
}
