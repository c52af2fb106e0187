//! What the sync records on an integration: when its last run ended and
//! how (`lastSyncAt`, `lastSyncStatus`). No `integration.updated` event: a
//! run raises its own (`integration.sync.*`), and an event per run would
//! drown the ones about the integration itself.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Integrations;
use super::service::get;
use crate::domain::tenancy::Ctx;
use crate::error::{Error, Result};
use crate::platform::store::{ETag, StoreError};

/// Records a run's end on the integration (retrying when it changed meanwhile).
pub async fn record_sync(
    app: &Integrations,
    ctx: &Ctx,
    id: Uuid,
    at: DateTime<Utc>,
    status: &str,
) -> Result<()> {
    for _ in 0..8 {
        let mut next = get(app, ctx, id).await?;
        let etag = ETag::new(next.etag.clone());
        next.last_sync_at = Some(at);
        next.last_sync_status = Some(status.to_owned());
        match app.store.put(&next, Some(&etag)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::PreconditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::PreconditionFailed)
}
