//! Typed configuration: defaults → optional TOML file → environment.
//!
//! Every key is an environment variable named as in SPEC §11 (`PORT`,
//! `DATA_DIR`, …); the TOML file uses the same names in lower case. Values
//! are parsed and checked once at start: a bad value stops the process with
//! a message naming the setting.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

mod parse;
mod sections;

pub use parse::parse_cidr;
use parse::{api_version, list, non_empty, number, url};

pub use sections::{
    HttpLimits, JwtConfig, LogFormat, OauthClient, OauthClients, QueueConfig, SecretsConfig,
    ShardsConfig, SqliteSynchronous, StoreConfig, SyncLimits, WebhookSettings,
};

/// Every key this service reads, with its default (`None`: unset).
///
/// The README's configuration table is checked against this list by a test.
pub const KEYS: &[(&str, Option<&str>)] = &[
    ("PORT", Some("3026")),
    ("DATA_DIR", Some("./data")),
    ("STORE", Some("embedded")),
    ("SQLITE_SYNCHRONOUS", Some("normal")),
    ("COSMOS_ENDPOINT", None),
    ("COSMOS_KEY", None),
    ("COSMOS_DATABASE", Some("castiel")),
    ("QUEUE", Some("embedded")),
    ("SERVICEBUS_NAMESPACE", None),
    ("SERVICEBUS_CONNECTION", None),
    ("SERVICEBUS_ENDPOINT", None),
    ("RABBITMQ_URL", None),
    ("RABBITMQ_EXCHANGE", Some("coder_events")),
    ("RABBITMQ_QUEUE", Some("integration_sync_service")),
    ("SECRETS", Some("local")),
    ("SECRETS_KEY", None),
    ("SECRET_MANAGEMENT_URL", None),
    ("KEYVAULT_URL", None),
    ("SHARDS", Some("embedded")),
    ("SHARD_MANAGER_URL", None),
    ("JWT_SECRET", None),
    ("JWT_ISSUER", None),
    ("JWT_AUDIENCE", None),
    ("SYNC_MAX_RECORDS", Some("1000")),
    ("SYNC_MIN_INTERVAL_MINUTES", Some("5")),
    ("SYNC_MAX_CONCURRENT_PER_TENANT", Some("3")),
    ("SYNC_LEASE_SECONDS", Some("60")),
    ("SALESFORCE_API_VERSION", Some("v60.0")),
    ("WEBHOOK_TIMEOUT_SECONDS", Some("15")),
    ("WEBHOOK_DISABLE_AFTER_HOURS", Some("120")),
    ("WORKERS", Some("64")),
    ("HTTP_HEADER_TIMEOUT_SECONDS", Some("15")),
    ("HTTP_BODY_TIMEOUT_SECONDS", Some("60")),
    ("HTTP_IDLE_TIMEOUT_SECONDS", Some("75")),
    ("HTTP_MAX_CONNECTIONS", Some("10000")),
    ("OUTBOUND_ALLOWED_CIDRS", Some("")),
    ("OAUTH_REDIRECT_BASE_URL", None),
    ("OAUTH_ALLOWED_RETURN_ORIGINS", Some("")),
    ("SALESFORCE_CLIENT_ID", None),
    ("SALESFORCE_CLIENT_SECRET", None),
    ("SALESFORCE_AUTHORIZATION_URL", None),
    ("SALESFORCE_TOKEN_URL", None),
    ("HUBSPOT_CLIENT_ID", None),
    ("HUBSPOT_CLIENT_SECRET", None),
    ("HUBSPOT_AUTHORIZATION_URL", None),
    ("HUBSPOT_TOKEN_URL", None),
    ("LOG_FORMAT", Some("text")),
    ("RUST_LOG", Some("info")),
];

/// The raw settings as read, before checking.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    port: Option<String>,
    data_dir: Option<String>,
    store: Option<String>,
    sqlite_synchronous: Option<String>,
    cosmos_endpoint: Option<String>,
    cosmos_key: Option<String>,
    cosmos_database: Option<String>,
    queue: Option<String>,
    servicebus_namespace: Option<String>,
    servicebus_connection: Option<String>,
    servicebus_endpoint: Option<String>,
    rabbitmq_url: Option<String>,
    rabbitmq_exchange: Option<String>,
    rabbitmq_queue: Option<String>,
    secrets: Option<String>,
    secrets_key: Option<String>,
    secret_management_url: Option<String>,
    keyvault_url: Option<String>,
    shards: Option<String>,
    shard_manager_url: Option<String>,
    jwt_secret: Option<String>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    sync_max_records: Option<String>,
    sync_min_interval_minutes: Option<String>,
    sync_max_concurrent_per_tenant: Option<String>,
    sync_lease_seconds: Option<String>,
    salesforce_api_version: Option<String>,
    webhook_timeout_seconds: Option<String>,
    webhook_disable_after_hours: Option<String>,
    workers: Option<String>,
    http_header_timeout_seconds: Option<String>,
    http_body_timeout_seconds: Option<String>,
    http_idle_timeout_seconds: Option<String>,
    http_max_connections: Option<String>,
    outbound_allowed_cidrs: Option<String>,
    oauth_redirect_base_url: Option<String>,
    oauth_allowed_return_origins: Option<String>,
    salesforce_client_id: Option<String>,
    salesforce_client_secret: Option<String>,
    salesforce_authorization_url: Option<String>,
    salesforce_token_url: Option<String>,
    hubspot_client_id: Option<String>,
    hubspot_client_secret: Option<String>,
    hubspot_authorization_url: Option<String>,
    hubspot_token_url: Option<String>,
    log_format: Option<String>,
    rust_log: Option<String>,
}

/// A setting with a bad value.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        message: message.into(),
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP port of `serve`.
    pub port: u16,
    /// Where embedded backends keep their files.
    pub data_dir: PathBuf,
    /// Document store.
    pub store: StoreConfig,
    /// Durability of the embedded store's commits.
    pub sqlite_synchronous: SqliteSynchronous,
    /// Job queue.
    pub queue: QueueConfig,
    /// RabbitMQ URL; `None` keeps events in-process.
    pub rabbitmq_url: Option<SecretString>,
    /// Topic exchange for events.
    pub rabbitmq_exchange: String,
    /// Queue `serve` consumes `shard.updated` from (dead letters in `<queue>.dlq`).
    pub rabbitmq_queue: String,
    /// Secret store.
    pub secrets: SecretsConfig,
    /// Shard sink.
    pub shards: ShardsConfig,
    /// Token checking.
    pub jwt: JwtConfig,
    /// Sync limits.
    pub sync: SyncLimits,
    /// Salesforce REST API version (`v60.0`).
    pub salesforce_api_version: String,
    /// Webhook delivery.
    pub webhooks: WebhookSettings,
    /// Jobs `serve` runs at once. Delivery attempts mostly wait on the
    /// network (up to `WEBHOOK_TIMEOUT_SECONDS`): with 8, eight slow
    /// endpoints held every slot and all other tenants' deliveries waited.
    pub workers: u32,
    /// How `serve`'s HTTP server treats slow, idle and too many clients.
    pub http: HttpLimits,
    /// Outbound targets allowed despite the SSRF guard (and allowed over http).
    pub outbound_allowed_cidrs: Vec<IpNet>,
    /// Public base URL for OAuth redirects.
    pub oauth_redirect_base_url: Option<Url>,
    /// Origins that OAuth `returnUrl`s may point to.
    pub oauth_allowed_return_origins: Vec<Url>,
    /// OAuth clients of the built-in providers, by catalog id.
    pub oauth_clients: OauthClients,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`RUST_LOG` syntax).
    pub log_filter: String,
}

impl Config {
    /// Loads defaults, then the TOML file (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, std::env::vars())
    }

    /// Like [`Config::load`], with `vars` standing for the environment.
    ///
    /// Only the exact (upper-case) names of [`KEYS`] are read.
    pub fn load_with(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: std::collections::BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| KEYS.iter().any(|(n, _)| n == k))
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let mut fig = Figment::from(Serialized::defaults(Raw::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(bad(
                    "CONFIG_FILE",
                    format!("{} does not exist", file.display()),
                ));
            }
            fig = fig.merge(Toml::file(file));
        }
        // figment's `Env` hands its filter lower-cased keys, so it is not
        // used: the environment is merged as a plain map of the known keys.
        let fig = fig.merge(Serialized::defaults(env));
        let raw: Raw = fig
            .extract()
            .map_err(|e| bad("CONFIG_FILE", e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Loads from explicit key/value pairs only (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut map = serde_json::Map::new();
        for (k, v) in pairs {
            map.insert(
                k.to_ascii_lowercase(),
                serde_json::Value::String((*v).to_owned()),
            );
        }
        let raw: Raw = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| bad("CONFIG_FILE", e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(r: Raw) -> Result<Self, ConfigError> {
        let store = match non_empty(r.store).as_deref().unwrap_or("embedded") {
            "embedded" => StoreConfig::Embedded,
            "cosmos" => StoreConfig::Cosmos {
                endpoint: url("COSMOS_ENDPOINT", r.cosmos_endpoint)?
                    .ok_or_else(|| bad("COSMOS_ENDPOINT", "required when STORE=cosmos"))?,
                key: non_empty(r.cosmos_key).map(SecretString::from),
                database: non_empty(r.cosmos_database).unwrap_or_else(|| "castiel".into()),
            },
            other => {
                return Err(bad(
                    "STORE",
                    format!("{other:?} is not one of embedded, cosmos"),
                ));
            }
        };
        let sqlite_synchronous = non_empty(r.sqlite_synchronous);
        let sqlite_synchronous = SqliteSynchronous::from_setting(sqlite_synchronous.as_deref())
            .ok_or_else(|| bad("SQLITE_SYNCHRONOUS", "is not one of normal, full"))?;
        let queue = match non_empty(r.queue).as_deref().unwrap_or("embedded") {
            "embedded" => QueueConfig::Embedded,
            "servicebus" => {
                let namespace = non_empty(r.servicebus_namespace);
                let connection = non_empty(r.servicebus_connection);
                if namespace.is_none() && connection.is_none() {
                    return Err(bad(
                        "SERVICEBUS_NAMESPACE",
                        "QUEUE=servicebus needs SERVICEBUS_NAMESPACE (managed identity) or SERVICEBUS_CONNECTION",
                    ));
                }
                QueueConfig::ServiceBus {
                    namespace,
                    connection: connection.map(SecretString::from),
                    endpoint: url("SERVICEBUS_ENDPOINT", r.servicebus_endpoint)?,
                }
            }
            other => {
                return Err(bad(
                    "QUEUE",
                    format!("{other:?} is not one of embedded, servicebus"),
                ));
            }
        };
        let secrets = match non_empty(r.secrets).as_deref().unwrap_or("local") {
            "local" => SecretsConfig::Local {
                key: non_empty(r.secrets_key).map(SecretString::from),
            },
            "castiel" => SecretsConfig::Castiel {
                url: url("SECRET_MANAGEMENT_URL", r.secret_management_url)?
                    .ok_or_else(|| bad("SECRET_MANAGEMENT_URL", "required when SECRETS=castiel"))?,
            },
            "keyvault" => SecretsConfig::KeyVault {
                url: url("KEYVAULT_URL", r.keyvault_url)?
                    .ok_or_else(|| bad("KEYVAULT_URL", "required when SECRETS=keyvault"))?,
            },
            other => {
                return Err(bad(
                    "SECRETS",
                    format!("{other:?} is not one of local, castiel, keyvault"),
                ));
            }
        };
        let shards = match non_empty(r.shards).as_deref().unwrap_or("embedded") {
            "embedded" => ShardsConfig::Embedded,
            "castiel" => ShardsConfig::Castiel {
                url: url("SHARD_MANAGER_URL", r.shard_manager_url)?
                    .ok_or_else(|| bad("SHARD_MANAGER_URL", "required when SHARDS=castiel"))?,
            },
            other => {
                return Err(bad(
                    "SHARDS",
                    format!("{other:?} is not one of embedded, castiel"),
                ));
            }
        };
        let jwt_secret = non_empty(r.jwt_secret);
        if jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(bad("JWT_SECRET", "must be at least 32 characters"));
        }
        let log_format = match non_empty(r.log_format).as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "LOG_FORMAT",
                    format!("{other:?} is not one of text, json"),
                ));
            }
        };
        Ok(Self {
            sqlite_synchronous,
            port: number("PORT", r.port, 3026, 1, u32::from(u16::MAX))?
                .try_into()
                .map_err(|_| bad("PORT", "out of range"))?,
            data_dir: PathBuf::from(non_empty(r.data_dir).unwrap_or_else(|| "./data".into())),
            store,
            queue,
            rabbitmq_url: non_empty(r.rabbitmq_url)
                .map(|u| {
                    if u.starts_with("amqp://") || u.starts_with("amqps://") {
                        Ok(SecretString::from(u))
                    } else {
                        Err(bad("RABBITMQ_URL", "must start with amqp:// or amqps://"))
                    }
                })
                .transpose()?,
            rabbitmq_exchange: non_empty(r.rabbitmq_exchange)
                .unwrap_or_else(|| "coder_events".into()),
            rabbitmq_queue: non_empty(r.rabbitmq_queue)
                .unwrap_or_else(|| "integration_sync_service".into()),
            secrets,
            shards,
            jwt: JwtConfig {
                secret: jwt_secret.map(SecretString::from),
                issuer: non_empty(r.jwt_issuer),
                audience: non_empty(r.jwt_audience),
            },
            sync: SyncLimits {
                max_records: number("SYNC_MAX_RECORDS", r.sync_max_records, 1000, 1, 1_000_000)?,
                min_interval_minutes: number(
                    "SYNC_MIN_INTERVAL_MINUTES",
                    r.sync_min_interval_minutes,
                    5,
                    0,
                    10_080,
                )?,
                max_concurrent_per_tenant: number(
                    "SYNC_MAX_CONCURRENT_PER_TENANT",
                    r.sync_max_concurrent_per_tenant,
                    3,
                    1,
                    1000,
                )?,
                lease_seconds: number("SYNC_LEASE_SECONDS", r.sync_lease_seconds, 60, 2, 3600)?,
            },
            salesforce_api_version: api_version(r.salesforce_api_version)?,
            webhooks: WebhookSettings {
                timeout_seconds: number(
                    "WEBHOOK_TIMEOUT_SECONDS",
                    r.webhook_timeout_seconds,
                    15,
                    1,
                    300,
                )?,
                disable_after_hours: number(
                    "WEBHOOK_DISABLE_AFTER_HOURS",
                    r.webhook_disable_after_hours,
                    120,
                    1,
                    8760,
                )?,
            },
            workers: number("WORKERS", r.workers, 64, 1, 256)?,
            http: HttpLimits {
                header_seconds: number(
                    "HTTP_HEADER_TIMEOUT_SECONDS",
                    r.http_header_timeout_seconds,
                    15,
                    1,
                    600,
                )?,
                body_seconds: number(
                    "HTTP_BODY_TIMEOUT_SECONDS",
                    r.http_body_timeout_seconds,
                    60,
                    1,
                    3600,
                )?,
                idle_seconds: number(
                    "HTTP_IDLE_TIMEOUT_SECONDS",
                    r.http_idle_timeout_seconds,
                    75,
                    1,
                    3600,
                )?,
                max_connections: number(
                    "HTTP_MAX_CONNECTIONS",
                    r.http_max_connections,
                    10_000,
                    1,
                    1_000_000,
                )?,
            },
            outbound_allowed_cidrs: list(r.outbound_allowed_cidrs)
                .iter()
                .map(|s| {
                    parse_cidr(s).ok_or_else(|| {
                        bad(
                            "OUTBOUND_ALLOWED_CIDRS",
                            format!("{s:?} is not a CIDR or IP address"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            oauth_redirect_base_url: url("OAUTH_REDIRECT_BASE_URL", r.oauth_redirect_base_url)?,
            oauth_allowed_return_origins: list(r.oauth_allowed_return_origins)
                .iter()
                .map(|s| {
                    Url::parse(s).ok().filter(|u| u.has_host()).ok_or_else(|| {
                        bad(
                            "OAUTH_ALLOWED_RETURN_ORIGINS",
                            format!("{s:?} is not an origin"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            oauth_clients: OauthClients::from_settings([
                (
                    "salesforce",
                    OauthClient {
                        client_id: non_empty(r.salesforce_client_id),
                        client_secret: non_empty(r.salesforce_client_secret)
                            .map(SecretString::from),
                        authorization_url: url(
                            "SALESFORCE_AUTHORIZATION_URL",
                            r.salesforce_authorization_url,
                        )?,
                        token_url: url("SALESFORCE_TOKEN_URL", r.salesforce_token_url)?,
                    },
                ),
                (
                    "hubspot",
                    OauthClient {
                        client_id: non_empty(r.hubspot_client_id),
                        client_secret: non_empty(r.hubspot_client_secret).map(SecretString::from),
                        authorization_url: url(
                            "HUBSPOT_AUTHORIZATION_URL",
                            r.hubspot_authorization_url,
                        )?,
                        token_url: url("HUBSPOT_TOKEN_URL", r.hubspot_token_url)?,
                    },
                ),
            ]),
            log_format,
            log_filter: non_empty(r.rust_log).unwrap_or_else(|| "info".into()),
        })
    }

    /// The SQLite file of the embedded backends.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("castiel.db")
    }
}

#[cfg(test)]
mod tests;
