//! The event outbox (`integration_outbox`, `kind: "event"`): no event is lost
//! while the broker is down or when the process dies.
//!
//! [`Events::within`] records a change's events with the change: in one
//! transaction where the store has them (the embedded store, where local
//! handlers such as the webhook fan-out stage their work in it too), else
//! as an intent written before the change and published only once the
//! change is known to have happened. [`Events::relay`] republishes what the
//! broker did not confirm, in order per tenant, probes intents whose process
//! died, and re-runs local handlers that failed. The protocol, its
//! guarantees and its residual risks: `docs/architecture.md`, "The outbox
//! guarantee".

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Event, Events, Staged};
use crate::domain::tenancy::TenantId;
use crate::error::Error;
use crate::platform::store::{
    Body, Container, Document, Filter, Op, Query, Store, StoreError, Write,
};

mod relay;

pub use relay::RelayReport;

/// The `kind` of event entries in the outbox container.
pub const KIND_EVENT: &str = "event";
/// How old a `staged` entry must be before the relay probes its change.
pub const STAGE_GRACE: Duration = Duration::from_secs(10);
/// Entries read per relay page.
pub const PAGE_SIZE: u32 = 200;
/// Pages read per relay run (bounds the cross-partition scan).
pub const MAX_PAGES: usize = 50;
/// How many times local handlers are re-driven for one entry.
pub const HANDLER_ATTEMPTS: u32 = 10;

/// What kind of change raised the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// A new document.
    Create,
    /// A replaced document.
    Replace,
    /// A deleted document.
    Delete,
}

/// The address of the change a group of events belongs to (for the probe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Container name.
    pub container: String,
    /// Partition key of the changed document.
    pub pk: String,
    /// Id of the changed document.
    pub id: String,
    /// Create, replace or delete.
    pub op: ChangeOp,
    /// The ETag the change replaces or deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

impl Change {
    /// The address a write changes (and the version it replaces or deletes).
    pub fn of(write: &Write) -> Result<Self, StoreError> {
        let (container, pk, id, op, before) = match write {
            Write::Create { container, body } => {
                let (id, pk) = body.address(*container)?;
                (*container, pk, id, ChangeOp::Create, None)
            }
            Write::Replace {
                container,
                body,
                if_match,
            } => {
                let (id, pk) = body.address(*container)?;
                (*container, pk, id, ChangeOp::Replace, if_match.as_ref())
            }
            Write::Delete {
                container,
                pk,
                id,
                if_match,
            } => (
                *container,
                pk.clone(),
                id.clone(),
                ChangeOp::Delete,
                if_match.as_ref(),
            ),
        };
        Ok(Self {
            container: container.name().into(),
            pk,
            id,
            op,
            before: before.map(|e| e.as_str().to_owned()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Staged,
    Ready,
}

/// One outbox entry (document of `integration_outbox` with `kind: "event"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    id: String,
    tenant_id: String,
    kind: String,
    state: State,
    seq: String,
    handled: bool,
    /// The broker confirmed it; only local handlers are still owed.
    #[serde(default)]
    published: bool,
    #[serde(default)]
    handler_attempts: u32,
    #[serde(default)]
    change: Option<Change>,
    staged_at: DateTime<Utc>,
    event: Event,
}

impl Entry {
    fn body(&self) -> Result<Value, StoreError> {
        serde_json::to_value(self).map_err(|e| StoreError::Invalid(e.to_string()))
    }
}

/// Outbox state of one process.
pub(crate) struct Outbox {
    store: Arc<dyn Store>,
    /// Tenants with unpublished entries: their new events queue behind them.
    backlog: tokio::sync::RwLock<HashSet<TenantId>>,
    /// One relay run at a time in this process.
    relay_lock: tokio::sync::Mutex<()>,
    last_seq: std::sync::Mutex<i64>,
}

impl Outbox {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            backlog: Default::default(),
            relay_lock: Default::default(),
            last_seq: std::sync::Mutex::new(0),
        }
    }

    /// A per-process strictly increasing, time-based sort key.
    fn next_seq(&self, now: DateTime<Utc>) -> String {
        let mut last = self
            .last_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = now.timestamp_micros().max(*last + 1);
        *last = next;
        format!("{next:017}")
    }
}

/// The writes that record entries.
fn creates(entries: &[Entry]) -> Result<Vec<Write>, StoreError> {
    entries
        .iter()
        .map(|e| {
            e.body().map(|body| Write::Create {
                container: Container::Outbox,
                body: Body::Tree(body),
            })
        })
        .collect()
}

/// What a failed outbox record means to the caller.
fn outbox_error(e: StoreError) -> Error {
    tracing::error!(error = %e, "could not record events in the outbox");
    match e {
        StoreError::Unavailable(_) => Error::Unavailable {
            detail: "the event outbox is unavailable".into(),
            retry_after: None,
        },
        // Busy: 503 with its delay; refused: a bug, 500.
        StoreError::Throttled { .. } | StoreError::Invalid(_) => Error::from(e),
        other => Error::Internal(anyhow::anyhow!("recording events: {other}")),
    }
}

fn is_definite(e: &Error) -> bool {
    !matches!(e, Error::Unavailable { .. } | Error::Internal(_))
}

impl Events {
    /// Applies `write` to `store` as a unit of work with its events (see
    /// the module docs) and returns the document it produced.
    ///
    /// On a store with transactions the entries and the change commit
    /// together or not at all. Otherwise the entries are recorded first; if
    /// that fails the change does not run and the call fails with
    /// [`Error::Unavailable`]. After a successful change the events go to
    /// local handlers and the bus; a bus failure never fails the call.
    pub async fn within(
        &self,
        store: &dyn Store,
        events: Vec<Event>,
        write: Write,
    ) -> crate::error::Result<Option<Document>> {
        let Some(outbox) = self.outbox.as_ref().filter(|_| self.owed(&events)) else {
            let out = write.apply(store).await?;
            self.emit_unrecorded(&events).await;
            return Ok(out);
        };
        let change = Change::of(&write)?;
        let same_store = std::ptr::addr_eq(Arc::as_ptr(&outbox.store), std::ptr::from_ref(store));
        if same_store && store.transactional() {
            let doc = self
                .commit_together(outbox, Some(&change), events, Some(write))
                .await
                .map_err(|(e, _)| e)?;
            return Ok(doc);
        }
        let entries = self.entries(outbox, Some(&change), events);
        self.record(outbox, &entries).await.map_err(outbox_error)?;
        match write.apply(store).await.map_err(Error::from) {
            Ok(out) => {
                self.dispatch(outbox, entries).await;
                Ok(out)
            }
            Err(e) => {
                if is_definite(&e) {
                    for entry in &entries {
                        delete_entry(outbox.store.as_ref(), &entry.tenant_id, &entry.id).await;
                    }
                }
                Err(e)
            }
        }
    }

    /// Records and dispatches events whose change already happened; gives
    /// them back when they were not recorded (no outbox, nobody owed them,
    /// or the record failed), leaving them to the caller.
    pub(crate) async fn emit_recorded(&self, events: Vec<Event>) -> Result<(), Vec<Event>> {
        let Some(outbox) = self.outbox.as_ref().filter(|_| self.owed(&events)) else {
            return Err(events);
        };
        if outbox.store.transactional() {
            return match self.commit_together(outbox, None, events, None).await {
                Ok(_) => Ok(()),
                Err((e, events)) => {
                    tracing::warn!(error = %e, "could not record events in the outbox; publishing directly");
                    Err(events)
                }
            };
        }
        let entries = self.entries(outbox, None, events);
        match self.record(outbox, &entries).await {
            Ok(()) => {
                self.dispatch(outbox, entries).await;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not record events in the outbox; publishing directly");
                Err(entries.into_iter().map(|entry| entry.event).collect())
            }
        }
    }

    /// On the outbox's own store, which has transactions: the events'
    /// entries, the local handlers' staged work and `write` commit in one
    /// transaction; then what follows the handlers' writes runs, and the
    /// entries are dispatched. Events every local handler staged are owed to
    /// nobody else on a bus that keeps them in the process, so they get no
    /// entry at all. Returns the document `write` produced; on failure
    /// (nothing was written) the error and the events.
    async fn commit_together(
        &self,
        outbox: &Outbox,
        change: Option<&Change>,
        events: Vec<Event>,
        write: Option<Write>,
    ) -> Result<Option<Document>, (Error, Vec<Event>)> {
        let staged = self.stage_handlers(&events).await;
        let handled = staged.is_some();
        // Entries only for events still owed to someone: the others are
        // kept as they are, to be given back should the commit fail.
        let (mut entries, unrecorded) = if !handled || self.bus.carries_out() {
            (self.entries(outbox, change, events), Vec::new())
        } else {
            (Vec::new(), events)
        };
        for entry in &mut entries {
            entry.handled = handled;
        }
        let give_back = |e: Error, entries: Vec<Entry>, unrecorded: Vec<Event>| {
            let events = entries.into_iter().map(|entry| entry.event);
            (e, events.chain(unrecorded).collect())
        };
        let mut writes = match creates(&entries) {
            Ok(w) => w,
            Err(e) => return Err(give_back(e.into(), entries, unrecorded)),
        };
        let recorded_count = writes.len();
        let mut thens = Vec::new();
        for s in staged.unwrap_or_default() {
            thens.push((s.writes.len(), s.then));
            writes.extend(s.writes);
        }
        let with_change = write.is_some();
        writes.extend(write);
        let mut docs = match outbox.store.write_all(writes).await {
            Ok(d) => d,
            Err(e) => return Err(give_back(e.into(), entries, unrecorded)),
        };
        let doc = if with_change {
            docs.pop().flatten()
        } else {
            None
        };
        let mut docs = docs.into_iter().skip(recorded_count);
        for (n, then) in thens {
            then(docs.by_ref().take(n).collect()).await;
        }
        if !entries.is_empty() {
            self.dispatch(outbox, entries).await;
        }
        Ok(doc)
    }

    /// Every local handler's staged work on `events`: `Some` when each one
    /// that wants an event staged its work on it, else `None` (nothing is
    /// staged; the handlers are called after the commit).
    async fn stage_handlers(&self, events: &[Event]) -> Option<Vec<Staged>> {
        let handlers = self.local_handlers();
        let mut staged = Vec::new();
        for event in events {
            for h in handlers.iter().filter(|h| h.wants(&event.event_type)) {
                match h.stage(event).await {
                    Ok(Some(s)) => staged.push(s),
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::debug!(event.id = %event.id, error = %e, "a handler could not stage its work; it runs after the commit");
                        return None;
                    }
                }
            }
        }
        Some(staged)
    }

    /// Outbox entries (staged) for events of one change.
    fn entries(&self, outbox: &Outbox, change: Option<&Change>, events: Vec<Event>) -> Vec<Entry> {
        events
            .into_iter()
            .map(|event| Entry {
                id: event.id.to_string(),
                tenant_id: event.tenant_id.key(),
                kind: KIND_EVENT.into(),
                state: State::Staged,
                seq: outbox.next_seq(self.clock.now()),
                handled: false,
                published: false,
                handler_attempts: 0,
                change: change.cloned(),
                staged_at: self.clock.now(),
                event,
            })
            .collect()
    }

    /// Writes entries (all or none where the store has transactions).
    async fn record(&self, outbox: &Outbox, entries: &[Entry]) -> Result<(), StoreError> {
        let store = outbox.store.as_ref();
        if store.transactional() {
            return store.write_all(creates(entries)?).await.map(|_| ());
        }
        for (n, entry) in entries.iter().enumerate() {
            if let Err(e) = store.create(Container::Outbox, entry.body()?).await {
                for w in &entries[..n] {
                    delete_entry(store, &w.tenant_id, &w.id).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Local handlers, then the bus; keeps what the broker did not confirm.
    async fn dispatch(&self, outbox: &Outbox, mut entries: Vec<Entry>) {
        for entry in &mut entries {
            if !entry.handled {
                entry.handled = self.run_handlers(&entry.event).await;
            }
            entry.state = State::Ready;
        }
        let mut direct = Vec::with_capacity(entries.len());
        {
            let backlog = outbox.backlog.read().await;
            for entry in entries {
                let tenant = entry.event.tenant_id;
                if backlog.contains(&tenant) {
                    // Queue behind the tenant's backlog (the guard keeps the relay
                    // from declaring it drained meanwhile).
                    keep_entry(outbox, &entry).await;
                } else {
                    direct.push(entry);
                }
            }
        }
        if direct.is_empty() {
            return;
        }
        let events: Vec<Event> = direct.iter().map(|e| e.event.clone()).collect();
        let results = self.bus.publish_each(&events).await;
        let mut failed = HashSet::new();
        let mut confirmed = Vec::new();
        for (entry, result) in direct.iter_mut().zip(results) {
            match result {
                Ok(()) if entry.handled => {
                    confirmed.push((entry.tenant_id.clone(), entry.id.clone()))
                }
                Ok(()) => {
                    // Published; the relay still owes the local handlers.
                    entry.published = true;
                    keep_entry(outbox, entry).await;
                }
                Err(e) => {
                    tracing::debug!(event.id = %entry.id, error = %e, "event kept in the outbox");
                    failed.insert(entry.event.tenant_id);
                    keep_entry(outbox, entry).await;
                }
            }
        }
        if !failed.is_empty() {
            outbox.backlog.write().await.extend(failed);
        }
        if !confirmed.is_empty() {
            // Gone before the change's call returns, so that once it has
            // returned every entry of its events is either deleted or
            // `ready`. The stored entry is still the `staged` intent with
            // `handled: false`: left behind, a relay run would hold the
            // tenant's later events behind it and, once it is older than
            // `STAGE_GRACE`, probe it and publish the event and run the local
            // handlers again. The embedded store folds the deletes into its
            // next commit and returns at once; Cosmos deletes them here (a
            // failure is logged, and the relay deals with the entry).
            outbox.store.discard(Container::Outbox, confirmed).await;
        }
    }

    /// Runs every local handler on one event; true if all succeeded.
    pub(crate) async fn run_handlers(&self, event: &Event) -> bool {
        let handlers = self.local_handlers();
        let mut ok = true;
        for h in handlers.iter().filter(|h| h.wants(&event.event_type)) {
            if let Err(e) = h.handle(event).await {
                ok = false;
                tracing::warn!(event.id = %event.id, event.type = %event.event_type, error = %e, "event handler failed");
            }
        }
        ok
    }
}

async fn delete_entry(store: &dyn Store, tenant: &str, id: &str) {
    match store.delete(Container::Outbox, tenant, id, None).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => {
            tracing::warn!(event.id = %id, error = %e, "could not delete an outbox entry; it may be published again");
        }
    }
}

async fn keep_entry(outbox: &Outbox, entry: &Entry) {
    let body = match entry.body() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(event.id = %entry.id, error = %e, "outbox entry does not serialize");
            return;
        }
    };
    if let Err(e) = outbox.store.upsert(Container::Outbox, body).await {
        tracing::warn!(event.id = %entry.id, error = %e, "could not mark an outbox entry ready; the relay will probe it");
    }
}
