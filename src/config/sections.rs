//! The sections of the configuration: which adapter each port uses, with its
//! settings, and the limits of each feature.

use secrecy::SecretString;
use url::Url;

/// Which document store to use.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// SQLite in `DATA_DIR`.
    Embedded,
    /// Azure Cosmos DB NoSQL.
    Cosmos {
        /// Account endpoint (`https://<account>.documents.azure.com:443/`).
        endpoint: Url,
        /// Account key; `None` uses Microsoft Entra ID (managed identity).
        key: Option<SecretString>,
        /// Database name.
        database: String,
    },
}

/// Which job queue to use.
#[derive(Debug, Clone)]
pub enum QueueConfig {
    /// Durable queue in the embedded store, worked in-process.
    Embedded,
    /// Azure Service Bus queues (send over REST; receive by the Functions trigger).
    ServiceBus {
        /// Namespace name (`<ns>` of `<ns>.servicebus.windows.net`), for managed identity.
        namespace: Option<String>,
        /// SAS connection string, when not using managed identity.
        connection: Option<SecretString>,
        /// Base URL override (tests, sovereign clouds).
        endpoint: Option<Url>,
    },
}

/// Which secret store to use.
#[derive(Debug, Clone)]
pub enum SecretsConfig {
    /// AES-256-GCM encrypted secrets in the embedded store.
    Local {
        /// 32-byte key, base64; `None` generates one into `DATA_DIR` once.
        key: Option<SecretString>,
    },
    /// Castiel's secret-management service.
    Castiel {
        /// Base URL of secret-management.
        url: Url,
    },
    /// Azure Key Vault.
    KeyVault {
        /// Vault URL.
        url: Url,
    },
}

/// Where synced shards go.
#[derive(Debug, Clone)]
pub enum ShardsConfig {
    /// The local shard store (standalone).
    Embedded,
    /// Castiel's shard-manager.
    Castiel {
        /// Base URL of shard-manager.
        url: Url,
    },
}

/// Token checking.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// HS256 secret; `None` in `serve` generates one into `DATA_DIR`.
    pub secret: Option<SecretString>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
}

/// Sync limits (SPEC §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLimits {
    /// Records per run.
    pub max_records: u32,
    /// Minutes between completions of runs of one integration (0 disables).
    pub min_interval_minutes: u32,
    /// Running executions per tenant.
    pub max_concurrent_per_tenant: u32,
    /// How long a run holds its execution and tenant slot without a
    /// heartbeat; a run whose process died is taken over after this.
    pub lease_seconds: u32,
}

/// Webhook delivery settings (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Per-attempt timeout.
    pub timeout_seconds: u32,
    /// Failing this long disables a webhook.
    pub disable_after_hours: u32,
}

impl WebhookSettings {
    /// The lease a delivery job gets from a queue: longer than any attempt
    /// can take (one request timeout, plus its record).
    pub fn visibility_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.timeout_seconds) * 2 + 5)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What `serve`'s HTTP server allows a client (the limits a reverse proxy
/// would set in front of it): a client that sends its request headers, or
/// its body, too slowly, or keeps a connection idle, is disconnected; past
/// `max_connections` new connections wait in the listen backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Seconds to send a request's headers, from the connection's start
    /// (`HTTP_HEADER_TIMEOUT_SECONDS`).
    pub header_seconds: u32,
    /// Seconds to send a request's body (`HTTP_BODY_TIMEOUT_SECONDS`; 408).
    pub body_seconds: u32,
    /// Seconds a connection may stay without reading or writing a byte
    /// (`HTTP_IDLE_TIMEOUT_SECONDS`).
    pub idle_seconds: u32,
    /// Connections served at once (`HTTP_MAX_CONNECTIONS`).
    pub max_connections: u32,
}

/// The OAuth client a provider's authorization-code flow uses (SPEC §5.4):
/// `<PROVIDER>_CLIENT_ID`, `_CLIENT_SECRET`, and optional overrides of the
/// catalog entry's authorization and token URLs (tests point them at a
/// local server). The secret is never logged.
#[derive(Debug, Clone, Default)]
pub struct OauthClient {
    /// Client id; without it the provider's OAuth flow is not offered.
    pub client_id: Option<String>,
    /// Client secret (public clients with PKCE may have none).
    pub client_secret: Option<SecretString>,
    /// Overrides the catalog entry's `oauth.authorizationUrl`.
    pub authorization_url: Option<Url>,
    /// Overrides the catalog entry's `oauth.tokenUrl`.
    pub token_url: Option<Url>,
}

/// The configured OAuth clients, by catalog provider id.
#[derive(Debug, Clone, Default)]
pub struct OauthClients(std::collections::BTreeMap<&'static str, OauthClient>);

impl OauthClients {
    /// The clients of the given providers (those without a client id too,
    /// so URL overrides apply to connections made otherwise).
    pub fn from_settings(clients: impl IntoIterator<Item = (&'static str, OauthClient)>) -> Self {
        Self(clients.into_iter().collect())
    }

    /// The client configured for a provider, if any setting names it.
    pub fn get(&self, provider_id: &str) -> Option<&OauthClient> {
        self.0.get(provider_id)
    }
}

/// How hard the embedded store's SQLite (WAL) pushes each commit to disk
/// (`SQLITE_SYNCHRONOUS`). Both survive a crash of the process; they differ
/// on a power cut or a kernel crash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// `synchronous=NORMAL`: the WAL is fsynced at checkpoints only, so a
    /// power cut can lose the commits since the last checkpoint (never
    /// corrupt the file).
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before it is answered.
    Full,
}

impl SqliteSynchronous {
    /// The setting's value (case-insensitive; unset: `normal`).
    pub fn from_setting(value: Option<&str>) -> Option<Self> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("normal") => Some(Self::Normal),
            Some("full") => Some(Self::Full),
            Some(_) => None,
        }
    }

    /// The value of SQLite's `synchronous` pragma.
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}
