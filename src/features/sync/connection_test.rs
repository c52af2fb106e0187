//! `POST /integrations/{id}/test` (SPEC §5.3): calls the provider through
//! its adapter with the active connection and records the result on the
//! integration (`lastConnectionTestAt`, `lastConnectionTestResult`,
//! `connectionStatus`, `connectionError`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::SyncEngine;
use super::adapter;
use crate::domain::tenancy::Ctx;
use crate::error::Result;
use crate::features::integrations::credentials::{self, CredentialsReport};
use crate::features::integrations::model::ConnectionStatus;
use crate::features::integrations::service as integrations;

/// What a connection test found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTest {
    /// Whether the provider accepted the call.
    pub success: bool,
    /// What was checked, or why it failed (the provider's own words).
    pub message: String,
    /// When.
    pub tested_at: DateTime<Utc>,
}

/// Tests the integration's connection and records the result.
pub async fn test(engine: &SyncEngine, ctx: &Ctx, integration_id: Uuid) -> Result<ConnectionTest> {
    let integration = integrations::get(&engine.integrations, ctx, integration_id).await?;
    let adapter = adapter::open(&engine.adapters, ctx, &integration).await?;
    let outcome = adapter.test().await;
    let now = engine.clock.now();
    let (success, message) = match outcome {
        Ok(o) => (true, o.detail),
        Err(e) => (false, e.to_string()),
    };
    let report = CredentialsReport {
        connection_status: if success {
            ConnectionStatus::Active
        } else {
            ConnectionStatus::Error
        },
        error: (!success).then(|| message.clone()),
        instance_url: None,
        tested_at: Some(now),
    };
    credentials::record(&engine.integrations, ctx, integration_id, &report).await?;
    Ok(ConnectionTest {
        success,
        message,
        tested_at: now,
    })
}
