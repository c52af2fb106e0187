//! The tenant's sync ledger: the limits of SPEC §9.2.2 kept in storage, so
//! they hold across processes and Functions instances. One document per
//! tenant (in the tasks container, `kind: "ledger"`) lists the runs that
//! hold a slot, each with a lease, and when each integration's last run
//! ended. Every change is a read → replace under the document's ETag, so
//! two processes claiming the last slot cannot both win.
//!
//! A slot whose lease lapsed (its process died without a heartbeat) is
//! dropped by the next claim: no tenant slot is held for ever.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::SyncEngine;
use crate::domain::tenancy::TenantId;
use crate::error::{Error, Result};
use crate::platform::store::{Container, ETag, Entity, StoreError};

/// The ledger's id within the tenant's partition.
const LEDGER_ID: &str = "sync-ledger";
/// Read → replace attempts before giving up (contention between runs).
const ATTEMPTS: usize = 16;
/// What a refusal for concurrency tells the caller to wait.
const BUSY_RETRY_SECONDS: i64 = 30;

/// One run holding a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// The execution.
    pub execution_id: Uuid,
    /// Its task.
    pub task_id: Uuid,
    /// Its integration.
    pub integration_id: Uuid,
    /// The slot is free after this unless renewed.
    pub lease_until: DateTime<Utc>,
}

/// The tenant's ledger document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ledger {
    id: String,
    tenant_id: Option<TenantId>,
    kind: String,
    #[serde(default)]
    slots: Vec<Slot>,
    /// Integration id → when its last run ended.
    #[serde(default)]
    last_completed: BTreeMap<Uuid, DateTime<Utc>>,
    #[serde(default)]
    etag: String,
}

impl Entity for Ledger {
    const CONTAINER: Container = Container::SyncTasks;
    fn set_etag(&mut self, etag: &ETag) {
        self.etag = etag.to_string();
    }
}

/// Why a run may not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another run of the same task holds a slot.
    TaskRunning,
    /// The tenant runs as many syncs as it may.
    Busy {
        /// When to ask again.
        retry_after: Duration,
    },
    /// The integration's last run ended too recently.
    TooSoon {
        /// When to ask again.
        retry_after: Duration,
    },
}

impl Refusal {
    /// Why, for the execution's `rejectionReason` and the API.
    pub fn reason(&self, limits: &crate::config::SyncLimits) -> String {
        match self {
            Refusal::TaskRunning => "a run of this task is already in progress".into(),
            Refusal::Busy { .. } => format!(
                "the tenant already runs {} syncs (SYNC_MAX_CONCURRENT_PER_TENANT)",
                limits.max_concurrent_per_tenant
            ),
            Refusal::TooSoon { retry_after } => format!(
                "runs of one integration are at least {} minutes apart (SYNC_MIN_INTERVAL_MINUTES); next possible in {} s",
                limits.min_interval_minutes,
                retry_after.num_seconds().max(1)
            ),
        }
    }

    /// When to ask again (`None` for a task that is running).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Refusal::TaskRunning => None,
            Refusal::Busy { retry_after } | Refusal::TooSoon { retry_after } => Some(*retry_after),
        }
    }
}

async fn read(engine: &SyncEngine, tenant: TenantId) -> Result<Ledger> {
    let found: Option<Ledger> = engine.store.get(&tenant.key(), LEDGER_ID).await?;
    Ok(found.unwrap_or_else(|| Ledger {
        id: LEDGER_ID.into(),
        tenant_id: Some(tenant),
        kind: "ledger".into(),
        ..Ledger::default()
    }))
}

/// Writes the ledger under its ETag; `false` when another process changed it first.
async fn write(engine: &SyncEngine, ledger: &Ledger) -> Result<bool> {
    let result = if ledger.etag.is_empty() {
        engine.store.insert(ledger).await.map(drop)
    } else {
        engine
            .store
            .put(ledger, Some(&ETag::new(ledger.etag.clone())))
            .await
            .map(drop)
    };
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::PreconditionFailed | StoreError::Conflict | StoreError::NotFound) => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Applies `change` to the tenant's ledger, retrying on contention.
async fn update<T>(
    engine: &SyncEngine,
    tenant: TenantId,
    mut change: impl FnMut(&mut Ledger, DateTime<Utc>) -> Option<T>,
) -> Result<Option<T>> {
    for _ in 0..ATTEMPTS {
        let mut ledger = read(engine, tenant).await?;
        let now = engine.clock.now();
        ledger.slots.retain(|s| s.lease_until > now);
        let Some(out) = change(&mut ledger, now) else {
            return Ok(None);
        };
        if write(engine, &ledger).await? {
            return Ok(Some(out));
        }
    }
    Err(Error::Unavailable {
        detail: "the sync ledger is busy; retry shortly".into(),
        retry_after: Some(std::time::Duration::from_secs(1)),
    })
}

/// Claims a slot for `slot.execution_id` (or renews the one it holds).
pub async fn claim(
    engine: &SyncEngine,
    tenant: TenantId,
    slot: Slot,
) -> Result<std::result::Result<(), Refusal>> {
    let limits = engine.limits;
    let outcome = update(engine, tenant, |ledger, now| {
        if let Some(mine) = ledger
            .slots
            .iter_mut()
            .find(|s| s.execution_id == slot.execution_id)
        {
            mine.lease_until = slot.lease_until;
            return Some(Ok(()));
        }
        if ledger.slots.iter().any(|s| s.task_id == slot.task_id) {
            return Some(Err(Refusal::TaskRunning));
        }
        let gap = Duration::minutes(i64::from(limits.min_interval_minutes));
        if let Some(last) = ledger.last_completed.get(&slot.integration_id)
            && limits.min_interval_minutes > 0
            && *last + gap > now
        {
            return Some(Err(Refusal::TooSoon {
                retry_after: *last + gap - now,
            }));
        }
        if ledger.slots.len() >= limits.max_concurrent_per_tenant as usize {
            return Some(Err(Refusal::Busy {
                retry_after: Duration::seconds(BUSY_RETRY_SECONDS),
            }));
        }
        ledger.slots.push(slot.clone());
        Some(Ok(()))
    })
    .await?;
    Ok(outcome.unwrap_or(Ok(())))
}

/// Extends the lease of the slot `execution_id` holds; `false` when it
/// holds none any more (its lease lapsed and another run took the slot).
pub async fn renew(
    engine: &SyncEngine,
    tenant: TenantId,
    execution_id: Uuid,
    until: DateTime<Utc>,
) -> Result<bool> {
    let renewed = update(engine, tenant, |ledger, _| {
        let mine = ledger
            .slots
            .iter_mut()
            .find(|s| s.execution_id == execution_id)?;
        mine.lease_until = until;
        Some(())
    })
    .await?;
    Ok(renewed.is_some())
}

/// Frees the slot of `execution_id`; `ended` records when the
/// integration's run ended (the start of the minimum interval). A run that
/// never started (cancelled while queued) records no end.
pub async fn release(
    engine: &SyncEngine,
    tenant: TenantId,
    execution_id: Uuid,
    integration_id: Uuid,
    ended: Option<DateTime<Utc>>,
) -> Result<()> {
    update(engine, tenant, |ledger, _| {
        let before = ledger.slots.len();
        ledger.slots.retain(|s| s.execution_id != execution_id);
        if let Some(at) = ended {
            ledger.last_completed.insert(integration_id, at);
        } else if before == ledger.slots.len() {
            return None;
        }
        Some(())
    })
    .await?;
    Ok(())
}
