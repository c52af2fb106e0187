//! The state of an integration's credentials, as the connections feature
//! reports it: a new connection makes it `connected`, an expired token
//! `error`, a deleted connection `pending` again.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Integrations;
use super::model::{ConnectionStatus, Integration, IntegrationStatus};
use super::service::{get, save_with_event};
use crate::domain::tenancy::Ctx;
use crate::error::{Error, Result};

/// What happened to an integration's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsReport {
    /// The connection's state (`None`: no connection any more).
    pub connection_status: ConnectionStatus,
    /// Why it fails, for people (never a secret).
    pub error: Option<String>,
    /// The provider's instance URL learnt from the connection (Salesforce's
    /// `instance_url`), already checked against the URL policy.
    pub instance_url: Option<String>,
    /// When the credentials were last seen to work or fail.
    pub tested_at: Option<DateTime<Utc>>,
}

/// The integration status that goes with a connection status.
fn status_for(connection: ConnectionStatus) -> IntegrationStatus {
    match connection {
        ConnectionStatus::Active => IntegrationStatus::Connected,
        ConnectionStatus::None => IntegrationStatus::Pending,
        ConnectionStatus::Expired | ConnectionStatus::Revoked | ConnectionStatus::Error => {
            IntegrationStatus::Error
        }
    }
}

/// How many times a lost race is retried.
const ATTEMPTS: usize = 8;

/// Records the credentials' state on the integration (raising
/// `integration.updated` when anything changed). A disabled integration
/// stays disabled; the status it returns to is updated instead.
pub async fn record(
    app: &Integrations,
    ctx: &Ctx,
    id: Uuid,
    report: &CredentialsReport,
) -> Result<Integration> {
    for _ in 0..ATTEMPTS {
        let current = get(app, ctx, id).await?;
        let mut next = current.clone();
        let status = status_for(report.connection_status);
        if next.status == IntegrationStatus::Disabled {
            next.status_before_disable = Some(status);
        } else {
            next.status = status;
        }
        next.connection_status = report.connection_status;
        next.connection_error.clone_from(&report.error);
        if let Some(url) = &report.instance_url {
            next.instance_url = Some(url.clone());
        }
        if let Some(at) = report.tested_at {
            next.last_connection_test_at = Some(at);
            next.last_connection_test_result = Some(
                if report.connection_status == ConnectionStatus::Active {
                    "success"
                } else {
                    "failed"
                }
                .to_owned(),
            );
        }
        if next == current {
            return Ok(current);
        }
        next.updated_at = app.clock.now();
        match save_with_event(app, ctx, next, current.etag).await {
            Err(Error::PreconditionFailed) => continue,
            other => return other,
        }
    }
    Err(Error::PreconditionFailed)
}
