//! The relay: republishes unconfirmed events in order per tenant, probes
//! staged entries whose process died, and re-drives failed local handlers
//! (the protocol is described in the parent module).

use super::*;

/// What one relay run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    /// Entries read.
    pub scanned: usize,
    /// Published and confirmed by the broker (then deleted).
    pub published: usize,
    /// Staged entries whose change never happened (deleted unpublished).
    pub dropped: usize,
    /// Could not be published this time (kept).
    pub failed: usize,
    /// Staged entries too young to probe (kept).
    pub waiting: usize,
    /// Entries whose local handlers were (re-)run.
    pub handled: usize,
    /// The run stopped at [`MAX_PAGES`]; more may be waiting.
    pub truncated: bool,
    /// Another run was in progress in this process; nothing done.
    pub skipped: bool,
}

impl Events {
    /// One relay run: republishes unconfirmed events in order per tenant,
    /// probes staged entries and re-drives failed local handlers (the
    /// `outbox-relay` periodic work).
    pub async fn relay(&self) -> anyhow::Result<RelayReport> {
        let mut report = RelayReport::default();
        let Some(outbox) = &self.outbox else {
            return Ok(report);
        };
        let Ok(_guard) = outbox.relay_lock.try_lock() else {
            report.skipped = true;
            return Ok(report);
        };
        let mut blocked: HashSet<TenantId> = HashSet::new();
        let mut after: Option<String> = None;
        let mut complete = false;
        for _ in 0..MAX_PAGES {
            let mut q = Query::cross_partition()
                .eq("kind", KIND_EVENT)
                .order_by("seq", false)
                .limit(PAGE_SIZE);
            if let Some(a) = &after {
                q = q.filter(Filter::new("seq", Op::Gt, a.as_str()));
            }
            let page = outbox.store.query(Container::Outbox, &q).await?;
            if page.items.is_empty() {
                complete = true;
                break;
            }
            let more = page.continuation.is_some();
            let mut batch: Vec<(Entry, bool)> = Vec::new();
            for doc in page.items {
                let entry: Entry = match serde_json::from_value(doc.body) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(id = %doc.id, error = %e, "unreadable outbox entry left in place");
                        continue;
                    }
                };
                after = Some(entry.seq.clone());
                report.scanned += 1;
                let tenant = entry.event.tenant_id;
                if blocked.contains(&tenant) {
                    // Waits behind the tenant's first unpublished entry, but its
                    // local handlers need not wait for the broker.
                    report.failed += 1;
                    self.redrive_handlers(outbox, entry, &mut report).await;
                    continue;
                }
                if let Some(entry) = self
                    .resolve(outbox, entry, &mut report, &mut blocked)
                    .await?
                {
                    batch.push(entry);
                }
            }
            self.relay_batch(outbox, batch, &mut report, &mut blocked)
                .await;
            if !more {
                complete = true;
                break;
            }
        }
        report.truncated = !complete;
        if complete {
            self.clear_backlog(outbox, &blocked).await?;
        }
        Ok(report)
    }

    /// Decides what to do with one scanned entry: `Some((entry, run handlers))`
    /// to publish, `None` when it waits or was dropped.
    async fn resolve(
        &self,
        outbox: &Outbox,
        mut entry: Entry,
        report: &mut RelayReport,
        blocked: &mut HashSet<TenantId>,
    ) -> anyhow::Result<Option<(Entry, bool)>> {
        let tenant = entry.event.tenant_id;
        if entry.state == State::Staged {
            let age = self.clock.now() - entry.staged_at;
            if age.to_std().unwrap_or_default() < STAGE_GRACE {
                report.waiting += 1;
                blocked.insert(tenant);
                return Ok(None);
            }
            if !happened(outbox.store.as_ref(), entry.change.as_ref()).await? {
                tracing::info!(event.id = %entry.id, "dropping the event of a change that did not happen");
                delete_entry(outbox.store.as_ref(), &entry.tenant_id, &entry.id).await;
                report.dropped += 1;
                return Ok(None);
            }
            entry.state = State::Ready;
        }
        let run = !entry.handled && entry.handler_attempts < HANDLER_ATTEMPTS;
        Ok(Some((entry, run)))
    }

    async fn relay_batch(
        &self,
        outbox: &Outbox,
        batch: Vec<(Entry, bool)>,
        report: &mut RelayReport,
        blocked: &mut HashSet<TenantId>,
    ) {
        let mut entries = Vec::with_capacity(batch.len());
        for (mut entry, run) in batch {
            if run {
                report.handled += 1;
                entry.handler_attempts += 1;
                entry.handled = self.run_handlers(&entry.event).await;
                if !entry.handled && entry.handler_attempts >= HANDLER_ATTEMPTS {
                    tracing::error!(event.id = %entry.id, "giving up re-driving local handlers");
                }
            }
            entries.push((entry, run));
        }
        let unpublished: Vec<Event> = entries
            .iter()
            .filter(|(e, _)| !e.published)
            .map(|(e, _)| e.event.clone())
            .collect();
        let mut results = self.bus.publish_each(&unpublished).await.into_iter();
        for (mut entry, ran) in entries {
            let result = if entry.published {
                Ok(())
            } else {
                results.next().unwrap_or(Ok(()))
            };
            let tenant = entry.event.tenant_id;
            if result.is_ok() {
                if !entry.published {
                    report.published += 1;
                }
                entry.published = true;
                if entry.handled || entry.handler_attempts >= HANDLER_ATTEMPTS {
                    delete_entry(outbox.store.as_ref(), &entry.tenant_id, &entry.id).await;
                } else {
                    keep_entry(outbox, &entry).await;
                }
            } else {
                // Keep it; later entries of this tenant wait behind it.
                blocked.insert(tenant);
                report.failed += 1;
                if ran {
                    keep_entry(outbox, &entry).await;
                }
            }
        }
    }

    async fn redrive_handlers(&self, outbox: &Outbox, mut entry: Entry, report: &mut RelayReport) {
        if entry.state != State::Ready
            || entry.handled
            || entry.handler_attempts >= HANDLER_ATTEMPTS
        {
            return;
        }
        report.handled += 1;
        entry.handler_attempts += 1;
        entry.handled = self.run_handlers(&entry.event).await;
        keep_entry(outbox, &entry).await;
    }

    /// Tenants whose backlog the run emptied publish directly again.
    async fn clear_backlog(
        &self,
        outbox: &Outbox,
        blocked: &HashSet<TenantId>,
    ) -> anyhow::Result<()> {
        let candidates: Vec<TenantId> = outbox
            .backlog
            .read()
            .await
            .iter()
            .filter(|t| !blocked.contains(t))
            .copied()
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let mut backlog = outbox.backlog.write().await;
        for tenant in candidates {
            let q = Query::partition(tenant.key())
                .eq("kind", KIND_EVENT)
                .eq("state", "ready")
                .limit(1);
            if outbox
                .store
                .query(Container::Outbox, &q)
                .await?
                .items
                .is_empty()
            {
                backlog.remove(&tenant);
            }
        }
        Ok(())
    }
}

/// The probe: did the change of a staged entry happen? A create did if its
/// document exists; a replace if its ETag is no longer the one replaced (or
/// it is gone); a delete if it is gone.
async fn happened(store: &dyn Store, change: Option<&Change>) -> anyhow::Result<bool> {
    let Some(change) = change else {
        return Ok(true);
    };
    let Some(container) = Container::ALL
        .iter()
        .copied()
        .find(|c| c.name() == change.container)
    else {
        anyhow::bail!(
            "outbox entry names an unknown container {}",
            change.container
        );
    };
    let doc = store.read(container, &change.pk, &change.id).await?;
    Ok(match (change.op, doc) {
        (ChangeOp::Create, doc) => doc.is_some(),
        (ChangeOp::Replace, Some(doc)) => Some(doc.etag.as_str()) != change.before.as_deref(),
        (ChangeOp::Replace, None) => true,
        (ChangeOp::Delete, doc) => doc.is_none(),
    })
}
