//! Limits held in storage (SPEC §9.2.2): concurrent runs per tenant, the
//! minimum interval between runs of one integration, one run per task at a
//! time; and cancelling.

use castiel_integrations::features::sync::model::ExecutionStatus;
use chrono::{Duration, Utc};

use crate::{Fixture, deal};

#[tokio::test]
async fn a_fourth_run_at_once_is_refused_and_recorded() {
    let f = Fixture::new(&[]).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let integration = f.integration().await;
        tasks.push(f.task(integration).await);
    }
    let mut statuses = Vec::new();
    for t in &tasks {
        statuses.push(f.run(*t).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(codes, [202, 202, 202, 429], "{:?}", statuses[3].text);
    let refused = &statuses[3];
    assert!(refused.headers.get("retry-after").is_some(), "Retry-After");
    assert_eq!(
        refused.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
    let history = f.executions(tasks[3]).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, ExecutionStatus::Rejected);
    assert!(
        history[0]
            .rejection_reason
            .as_deref()
            .is_some_and(|r| r.contains("SYNC_MAX_CONCURRENT_PER_TENANT")),
        "{:?}",
        history[0].rejection_reason
    );
    // The same task twice: 409 while its run waits.
    assert_eq!(f.run(tasks[0]).await.status.as_u16(), 409);
    f.drain().await;
    // Slots are free again once the runs ended.
    assert_eq!(f.run(tasks[3]).await.status.as_u16(), 202);
    f.drain().await;
    for t in &tasks {
        let last = f.executions(*t).await.pop().expect("run");
        assert_eq!(last.status, ExecutionStatus::Completed);
    }
}

#[tokio::test]
async fn a_run_too_soon_after_the_last_is_refused_with_retry_after() {
    let f = Fixture::new(&[("SYNC_MIN_INTERVAL_MINUTES", "5")]).await;
    f.sf.insert("Opportunity", 3, deal);
    let integration = f.integration().await;
    let task = f.task(integration).await;
    assert_eq!(f.run(task).await.status.as_u16(), 202);
    f.drain().await;
    let again = f.run(task).await;
    assert_eq!(again.status.as_u16(), 429, "{}", again.text);
    let wait: u64 = again
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((240..=300).contains(&wait), "{wait}");
    // Another task of the same integration is held to the same interval.
    let other = f.task(integration).await;
    assert_eq!(f.run(other).await.status.as_u16(), 429);
    let history = f.executions(task).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].status, ExecutionStatus::Completed);
    assert_eq!(history[1].status, ExecutionStatus::Rejected);
}

#[tokio::test]
async fn cancel_ends_a_queued_run_at_once_and_a_running_one_within_a_page() {
    // Six pages of 500, so a cancel lands between pages.
    let total = 3000;
    let f = Fixture::new(&[("SYNC_MAX_RECORDS", "20000")]).await;
    let base = Utc::now() - Duration::hours(1);
    f.sf.insert_at("Opportunity", total, base, deal);
    f.sf.set_batch_size(500);
    f.sf.set_latency(std::time::Duration::from_millis(100));
    let integration = f.integration().await;
    let task = f.task(integration).await;

    // Queued: cancelled now, its slot freed.
    assert_eq!(f.run(task).await.status.as_u16(), 202);
    let cancelled = f
        .app
        .post(
            &format!("/api/v1/sync-tasks/{task}/cancel"),
            &f.token,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(cancelled.status.as_u16(), 202, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "cancelled");
    f.drain().await;
    assert_eq!(f.executions(task).await[0].counters.fetched, 0);

    // Running: asked to stop, it stops after the page it is on.
    assert_eq!(f.run(task).await.status.as_u16(), 202);
    let state = f.app.state.clone();
    let worker = tokio::spawn(async move {
        castiel_integrations::drivers::serve::workers::run_due(&state)
            .await
            .expect("jobs")
    });
    let at_cancel = loop {
        let runs = f.executions(task).await;
        if runs[1].counters.fetched > 0 {
            break runs[1].counters.fetched;
        }
        assert!(
            !runs[1].status.is_final(),
            "ended before it could be cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let asked = f
        .app
        .post(
            &format!("/api/v1/sync-tasks/{task}/cancel"),
            &f.token,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(asked.status.as_u16(), 202, "{}", asked.text);
    worker.await.expect("worker");
    let run = &f.executions(task).await[1];
    assert_eq!(run.status, ExecutionStatus::Cancelled);
    assert!(
        run.counters.fetched <= at_cancel + 1000 && (run.counters.fetched as usize) < total,
        "stopped within a page of the cancel (at {at_cancel}): {}",
        run.counters.fetched
    );
    assert_eq!(f.run(task).await.status.as_u16(), 202, "its slot is free");
}
