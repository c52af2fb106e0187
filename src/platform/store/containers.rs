//! The logical containers of SPEC §6 with their partition keys and TTLs.

/// A logical container of the document store (a Cosmos container, a row
/// namespace in the embedded store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// The provider catalog, partitioned by `/category`.
    Providers,
    /// Tenants' integrations.
    Integrations,
    /// Connections, partitioned by `/integrationId`.
    Connections,
    /// Outbound webhook subscriptions.
    Webhooks,
    /// Webhook deliveries and their attempts (7 days).
    WebhookDeliveries,
    /// Sync task configurations.
    SyncTasks,
    /// Sync executions (30 days).
    SyncExecutions,
    /// Sync conflicts.
    SyncConflicts,
    /// External id ↔ shard links with their bases.
    SyncLinks,
    /// OAuth state and PKCE verifier (10 minutes).
    OauthStates,
    /// Unconfirmed events and idempotency keys.
    Outbox,
    /// Locally stored shards (standalone mode's shard sink).
    Shards,
    /// Encrypted secrets of the local secret store (`SECRETS=local`).
    Secrets,
}

impl Container {
    /// Every container, in provisioning order.
    pub const ALL: [Container; 13] = [
        Container::Providers,
        Container::Integrations,
        Container::Connections,
        Container::Webhooks,
        Container::WebhookDeliveries,
        Container::SyncTasks,
        Container::SyncExecutions,
        Container::SyncConflicts,
        Container::SyncLinks,
        Container::OauthStates,
        Container::Outbox,
        Container::Shards,
        Container::Secrets,
    ];

    /// The container's name in the database.
    pub const fn name(self) -> &'static str {
        match self {
            Container::Providers => "integration_providers",
            Container::Integrations => "integration_integrations",
            Container::Connections => "integration_connections",
            Container::Webhooks => "integration_webhooks",
            Container::WebhookDeliveries => "integration_webhook_deliveries",
            Container::SyncTasks => "integration_sync_tasks",
            Container::SyncExecutions => "integration_sync_executions",
            Container::SyncConflicts => "integration_sync_conflicts",
            Container::SyncLinks => "integration_sync_links",
            Container::OauthStates => "integration_oauth_states",
            Container::Outbox => "integration_outbox",
            Container::Shards => "integration_shards",
            Container::Secrets => "integration_secrets",
        }
    }

    /// The top-level body field holding the partition key (path without `/`).
    pub const fn partition_key_field(self) -> &'static str {
        match self {
            Container::Providers => "category",
            Container::Connections => "integrationId",
            _ => "tenantId",
        }
    }

    /// The partition-key path as Cosmos declares it (`/tenantId`).
    pub fn partition_key_path(self) -> String {
        format!("/{}", self.partition_key_field())
    }

    /// The container's default time to live in seconds; `None` keeps documents
    /// until deleted (TTL still enabled, so a document's own `ttl` applies).
    pub const fn default_ttl_seconds(self) -> Option<u32> {
        match self {
            Container::WebhookDeliveries => Some(7 * 24 * 3600),
            Container::SyncExecutions => Some(30 * 24 * 3600),
            Container::OauthStates => Some(600),
            _ => None,
        }
    }
}
