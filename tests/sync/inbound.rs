//! Inbound runs: the record limit with continuations, incremental runs,
//! unchanged records, shared timestamps across a page boundary, a run with
//! nothing to do.

use std::collections::HashSet;

use castiel_integrations::features::sync::model::{ExecutionStatus, Trigger};
use chrono::{Duration, Utc};
use serde_json::json;

use crate::{Fixture, deal, scale};

#[tokio::test]
async fn five_thousand_records_arrive_in_five_runs_of_a_thousand_then_only_changes() {
    let k = scale();
    let limit = (1000 / k).to_string();
    let f = Fixture::new(&[("SYNC_MAX_RECORDS", &limit)]).await;
    let base = Utc::now() - Duration::hours(1);
    // 850 records, then 300 sharing one SystemModstamp across the first
    // run's 1,000-record boundary, then the rest.
    let (a, b, c) = (850 / k, 300 / k, 3850 / k);
    f.sf.insert_at("Opportunity", a, base, deal);
    f.sf.insert_at("Opportunity", b, base + Duration::seconds(1), |i| {
        deal(a + i)
    });
    f.sf.insert_at("Opportunity", c, base + Duration::seconds(2), |i| {
        deal(a + b + i)
    });
    let (total, per_run) = (5000 / k, 1000 / k);
    let integration = f.integration().await;
    let task = f.task(integration).await;

    let started = f.run(task).await;
    assert_eq!(started.status.as_u16(), 202, "{}", started.text);
    assert_eq!(started.body["status"], "queued");
    f.drain().await;

    let runs = f.executions(task).await;
    assert_eq!(
        runs.len(),
        5,
        "one manual run and four continuations: {runs:#?}"
    );
    assert_eq!(runs[0].trigger, Trigger::Manual);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(
            r.status,
            ExecutionStatus::Completed,
            "run {i}: {:?}",
            r.errors
        );
        assert_eq!(r.counters.fetched, per_run as u64, "run {i}");
        assert_eq!(r.counters.created, per_run as u64, "run {i}");
        assert_eq!(r.has_more, i < 4, "run {i}");
        if i > 0 {
            assert_eq!(r.trigger, Trigger::Continuation);
        }
    }
    let shards = f.shards().await;
    assert_eq!(shards.len(), total, "every record once");
    let external: HashSet<String> = shards
        .iter()
        .map(|s| s.metadata.as_ref().expect("metadata").external_id.clone())
        .collect();
    assert_eq!(external.len(), total, "no record twice");
    let s = &shards[0];
    assert_eq!(s.source, "integration");
    assert_eq!(s.shard_type_id, "c_opportunity");
    let m = s.metadata.as_ref().expect("metadata");
    assert_eq!(m.external_source, "salesforce");
    assert_eq!(m.integration_id, integration);

    // Then: 10 records change, 5 are touched without a mapped change.
    let ids: Vec<String> = shards
        .iter()
        .take(15)
        .map(|s| s.metadata.as_ref().expect("metadata").external_id.clone())
        .collect();
    let changed = json!({"StageName": "Closed Won"});
    f.sf.modify(
        "Opportunity",
        &ids[..10],
        changed.as_object().expect("obj"),
        None,
    );
    f.sf.modify("Opportunity", &ids[10..], &serde_json::Map::new(), None);
    let served = f.sf.records_served();
    assert_eq!(f.run(task).await.status.as_u16(), 202);
    f.drain().await;
    let runs = f.executions(task).await;
    let last = runs.last().expect("run");
    assert_eq!(last.status, ExecutionStatus::Completed, "{:?}", last.errors);
    assert_eq!(
        last.counters.fetched, 15,
        "only the changed records are fetched"
    );
    assert_eq!(last.counters.updated, 10);
    assert_eq!(last.counters.unchanged, 5);
    assert_eq!(last.counters.created, 0);
    assert!(!last.has_more);
    assert_eq!(f.sf.records_served() - served, 15);
    let shards = f.shards().await;
    assert_eq!(shards.len(), total, "no shard duplicated");
    let won = shards
        .iter()
        .filter(|s| s.structured_data["stage"] == "Closed Won")
        .count();
    assert_eq!(won, 10);
}

#[tokio::test]
async fn a_run_with_nothing_to_sync_completes_at_once() {
    let f = Fixture::new(&[]).await;
    let integration = f.integration().await;
    let task = f.task(integration).await;
    assert_eq!(f.run(task).await.status.as_u16(), 202);
    f.drain().await;
    let runs = f.executions(task).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].status,
        ExecutionStatus::Completed,
        "{:?}",
        runs[0].errors
    );
    assert_eq!(runs[0].counters.fetched, 0);
    assert!(runs[0].completed_at.is_some());
}

#[tokio::test]
async fn a_record_failing_its_mapping_is_counted_and_the_rest_sync() {
    let f = Fixture::new(&[]).await;
    f.sf.insert("Opportunity", 3, deal);
    f.sf.insert("Opportunity", 1, |_| {
        json!({"Amount": 5}).as_object().expect("obj").clone()
    });
    let integration = f.integration().await;
    let task = f.task(integration).await;
    assert_eq!(f.run(task).await.status.as_u16(), 202);
    f.drain().await;
    let run = f.executions(task).await.pop().expect("run");
    assert_eq!(run.status, ExecutionStatus::Partial);
    assert_eq!(run.counters.created, 3);
    assert_eq!(run.counters.failed, 1);
    assert_eq!(run.errors.len(), 1);
    assert!(run.errors[0].message.contains("name"), "{:?}", run.errors);
    assert!(run.errors[0].external_id.is_some());
    assert_eq!(f.shards().await.len(), 3);
}
