//! The inbound half of a run (SPEC §9.2.3): page through changes since the
//! entity's cursor, map each record, write the shards whose content
//! changed, record their links, and checkpoint the cursor and the
//! execution's counters after every page.

use serde_json::Value;

use super::links::{self, content_hash};
use super::{Run, Stop};
use crate::features::integrations::mapping::CompiledMapping;
use crate::features::integrations::model::EntityMapping;
use crate::features::sync::adapter::{Adapter, ChangesRequest, Record};
use crate::features::sync::model::{Counters, ExecutionError, MAX_ERRORS, SyncLink};
use crate::platform::shards::{ShardError, ShardMetadata, ShardWrite};
use crate::platform::store::{StoreError, Write};

/// How an entity's listing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listed {
    /// The source has nothing more since the cursor.
    Exhausted,
    /// The run's record budget ran out first.
    BudgetSpent,
}

/// Syncs one entity until its changes are exhausted or the budget is spent.
pub(super) async fn entity(
    run: &mut Run<'_>,
    adapter: &dyn Adapter,
    mapping: &EntityMapping,
) -> Result<Listed, Stop> {
    let entity = mapping.external_entity.clone();
    let compiled = CompiledMapping::inbound(&mapping.field_mappings);
    let fields = compiled.external_fields();
    let filters = run.integration.sync_config.pull_filters.clone();
    let mut page_token: Option<String> = None;
    loop {
        if run.budget == 0 {
            return Ok(Listed::BudgetSpent);
        }
        let cursor = run.task.cursors.get(&entity).cloned();
        let req = ChangesRequest {
            entity: &entity,
            cursor: cursor.as_ref().filter(|c| !c.is_null()),
            page_token: page_token.as_deref(),
            max: run.budget,
            fields: &fields,
            filters: &filters,
        };
        let page = adapter.list_changes(req).await.map_err(Stop::adapter)?;
        let fetched = page.records.len().min(run.budget);
        run.budget -= fetched;
        let mut counters = Counters {
            fetched: fetched as u64,
            ..Counters::default()
        };
        let mut records = page.records;
        records.truncate(fetched);
        write_page(run, mapping, &compiled, records, &mut counters).await?;
        run.checkpoint(&entity, page.cursor, counters).await?;
        if !page.more {
            return Ok(Listed::Exhausted);
        }
        if run.budget == 0 {
            return Ok(Listed::BudgetSpent);
        }
        page_token = page.page_token;
        if fetched == 0 && page_token.is_none() {
            // The adapter says more but gave nothing to go on: stop rather
            // than ask the same question for ever.
            return Ok(Listed::Exhausted);
        }
    }
}

/// One record ready to write.
struct Pending {
    record: Record,
    link_id: String,
    data: serde_json::Map<String, Value>,
    hash: String,
}

/// Maps a page, writes what changed and records the links.
async fn write_page(
    run: &mut Run<'_>,
    mapping: &EntityMapping,
    compiled: &CompiledMapping,
    records: Vec<Record>,
    counters: &mut Counters,
) -> Result<(), Stop> {
    if records.is_empty() {
        return Ok(());
    }
    let entity = mapping.external_entity.as_str();
    let integration = run.integration.id;
    let mut pending = Vec::with_capacity(records.len());
    for record in records {
        let mapped = compiled.apply(&record.fields);
        if let Some(first) = mapped.errors.first() {
            counters.failed += 1;
            let message = format!("{}: {}", first.field, first.message);
            run.error(entity, Some(&record.id), message);
            continue;
        }
        pending.push(Pending {
            link_id: links::link_id(integration, entity, &record.id),
            hash: content_hash(&mapped.data),
            data: mapped.data,
            record,
        });
    }
    let ids: Vec<String> = pending.iter().map(|p| p.link_id.clone()).collect();
    let existing = links::read_many(run.engine.store.as_ref(), run.tenant, &ids)
        .await
        .map_err(Stop::store)?;
    let (changed, unchanged): (Vec<Pending>, Vec<Pending>) = pending.into_iter().partition(|p| {
        existing
            .get(&p.link_id)
            .is_none_or(|l| l.content_hash != p.hash)
    });
    counters.unchanged += unchanged.len() as u64;
    if changed.is_empty() {
        return Ok(());
    }
    let now = run.engine.clock.now();
    let source = run.integration.provider_id.clone();
    let writes: Vec<ShardWrite> = changed
        .iter()
        .map(|p| ShardWrite {
            id: links::shard_id(run.tenant, integration, entity, &p.record.id),
            tenant_id: run.tenant,
            shard_type_id: mapping.shard_type_id.clone(),
            shard_type_name: mapping.shard_type_name.clone(),
            structured_data: p.data.clone(),
            metadata: ShardMetadata {
                integration_id: integration,
                external_id: p.record.id.clone(),
                external_source: source.clone(),
                synced_at: now,
            },
        })
        .collect();
    let results = run
        .engine
        .shards
        .upsert_many(run.tenant, writes)
        .await
        .map_err(Stop::shards)?;
    let mut link_writes = Vec::with_capacity(changed.len());
    for (p, result) in changed.into_iter().zip(results) {
        let shard = match result {
            Ok(shard) => shard,
            Err(ShardError::Rejected(why) | ShardError::Unavailable(why)) => {
                counters.failed += 1;
                run.error(
                    entity,
                    Some(&p.record.id),
                    format!("the shard was refused: {why}"),
                );
                continue;
            }
        };
        let old = existing.get(&p.link_id);
        if old.is_some() {
            counters.updated += 1;
        } else {
            counters.created += 1;
        }
        let link = SyncLink {
            id: p.link_id,
            tenant_id: run.tenant,
            integration_id: integration,
            entity_type: entity.to_owned(),
            external_id: p.record.id,
            shard_id: shard.sink_id,
            content_hash: p.hash,
            base: p.data,
            shard_revision: shard.revision,
            remote_modified_at: p.record.modified_at,
            synced_at: now,
            etag: String::new(),
        };
        let write = if old.is_some() {
            Write::put(&link, None)
        } else {
            Write::insert(&link)
        };
        link_writes.push(write.map_err(Stop::store)?);
    }
    write_links(run, link_writes).await
}

/// Records links. A link that exists already though the page's read did
/// not see it (a resumed run re-writing its own past) is replaced.
async fn write_links(run: &Run<'_>, writes: Vec<Write>) -> Result<(), Stop> {
    let store = run.engine.store.as_ref();
    if writes.is_empty() {
        return Ok(());
    }
    match store.write_all(writes.clone()).await {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict) => {
            for w in writes {
                let result = match w {
                    Write::Create { container, body } => {
                        let first = Write::Create {
                            container,
                            body: body.clone(),
                        };
                        match first.apply(store).await {
                            Err(StoreError::Conflict) => {
                                let again = Write::Replace {
                                    container,
                                    body,
                                    if_match: None,
                                };
                                again.apply(store).await
                            }
                            other => other,
                        }
                    }
                    other => other.apply(store).await,
                };
                result.map_err(Stop::store)?;
            }
            Ok(())
        }
        Err(e) => Err(Stop::store(e)),
    }
}

impl Run<'_> {
    /// Records an error (the first [`MAX_ERRORS`] are kept).
    pub(super) fn error(&mut self, entity: &str, external_id: Option<&str>, message: String) {
        if self.exec.errors.len() < MAX_ERRORS {
            self.exec.errors.push(ExecutionError {
                entity_type: entity.to_owned(),
                external_id: external_id.map(str::to_owned),
                message,
                at: self.engine.clock.now(),
            });
        }
    }
}
