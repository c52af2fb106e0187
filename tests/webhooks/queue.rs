//! The embedded queue: scheduling, leases, abandon, deduplication.

use std::sync::Arc;
use std::time::Duration;

use castiel_integrations::clock::{Clock, ManualClock};
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::queue::JobMessage;
use castiel_integrations::platform::queue::JobQueue;
use castiel_integrations::platform::queue::embedded::EmbeddedQueue;
use castiel_integrations::platform::store::embedded::SqliteDb;
use uuid::Uuid;

fn msg(n: u32) -> JobMessage {
    JobMessage::WebhookDelivery {
        tenant_id: TenantId(Uuid::nil()),
        delivery_id: Uuid::nil(),
        attempt: n,
    }
}

async fn queue(dir: &std::path::Path) -> (EmbeddedQueue, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let db = SqliteDb::open(&dir.join("q.db")).expect("db");
    (
        EmbeddedQueue::open(db, dyn_clock).await.expect("queue"),
        clock,
    )
}

#[tokio::test]
async fn scheduled_leased_abandoned_and_deduplicated() {
    let dir = tempfile::tempdir().expect("dir");
    let (q, clock) = queue(dir.path()).await;
    let later = clock.now() + chrono::Duration::seconds(60);
    q.send(&msg(0), None, "a").await.expect("send");
    q.send(&msg(0), None, "a").await.expect("dedup");
    q.send(&msg(1), Some(later), "b").await.expect("send");
    assert_eq!(q.len().await.expect("len"), 2);
    let vis = Duration::from_secs(30);
    let got = q.receive(10, vis).await.expect("receive");
    assert_eq!(got.len(), 1, "the scheduled one is not due");
    assert_eq!(got[0].message_id, "a");
    assert_eq!(got[0].receives, 1);
    assert!(q.receive(10, vis).await.expect("r").is_empty(), "leased");
    // The worker "crashes": the lease runs out and the job reappears.
    clock.advance(chrono::Duration::seconds(31));
    let again = q.receive(10, vis).await.expect("r");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receives, 2);
    assert!(
        !q.complete(&got[0]).await.expect("complete"),
        "an expired lease cannot complete"
    );
    q.abandon(&again[0], Duration::from_secs(5))
        .await
        .expect("abandon");
    assert!(q.receive(10, vis).await.expect("r").is_empty());
    clock.advance(chrono::Duration::seconds(30));
    let both = q.receive(10, vis).await.expect("r");
    assert_eq!(both.len(), 2, "the abandoned job and the scheduled one");
    for j in &both {
        assert!(q.complete(j).await.expect("complete"));
    }
    assert!(q.is_empty().await.expect("empty"));
}

#[tokio::test]
async fn jobs_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let (q, _) = queue(dir.path()).await;
        q.send(&msg(3), None, "x").await.expect("send");
        q.receive(1, Duration::from_secs(0)).await.expect("lease");
    }
    let (q, _) = queue(dir.path()).await;
    let got = q
        .receive(1, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, msg(3));
    assert_eq!(got[0].receives, 2);
}

#[tokio::test]
async fn jobs_due_now_are_handed_over_leased_and_still_durable() {
    let dir = tempfile::tempdir().expect("dir");
    let (q, clock) = queue(dir.path()).await;
    let vis = Duration::from_secs(30);
    let mut handed = q.attach(1, 0, vis);
    let later = clock.now() + chrono::Duration::seconds(60);
    q.send(&msg(0), None, "now").await.expect("send");
    q.send(&msg(0), None, "now").await.expect("duplicate");
    q.send(&msg(1), Some(later), "later").await.expect("send");
    // The channel holds one: a second due job is queued the usual way.
    q.send(&msg(2), None, "overflow").await.expect("send");

    let job = handed.try_recv().expect("handed over at birth");
    assert_eq!((job.message_id.as_str(), job.receives), ("now", 1));
    assert_eq!(job.leased_until_ms, clock.now().timestamp_millis() + 30_000);
    assert!(
        handed.try_recv().is_none(),
        "no second hand-over: not for a duplicate, a scheduled job or a full channel"
    );
    let polled = q.receive(10, vis).await.expect("receive");
    let ids: Vec<&str> = polled.iter().map(|j| j.message_id.as_str()).collect();
    assert_eq!(
        ids,
        ["overflow"],
        "a handed-over job is leased in the table"
    );
    assert_eq!(q.len().await.expect("len"), 3, "every job has its row");

    // Its worker dies: the lease runs out and the job is received again.
    clock.advance(chrono::Duration::seconds(31));
    let again = q.receive(10, vis).await.expect("receive");
    let redo = again
        .iter()
        .find(|j| j.message_id == "now")
        .expect("re-received");
    assert_eq!(redo.receives, 2);
    assert!(
        !q.complete(&job).await.expect("complete"),
        "its lease ran out"
    );
    assert!(q.complete(redo).await.expect("complete"));

    // Detached (workers stopped): due jobs wait in the table again.
    q.detach();
    q.send(&msg(3), None, "after").await.expect("send");
    assert!(handed.try_recv().is_none());
    let after = q.receive(10, vis).await.expect("receive");
    assert!(after.iter().any(|j| j.message_id == "after"));
}

/// A job handed over unrecorded writes nothing: it carries what its sender
/// gave while the carries waiting fit a budget of bytes (a backlog beyond
/// that keeps only the job), is never
/// taken for expired, and giving it back writes its row.
#[tokio::test]
async fn jobs_handed_over_unrecorded_have_no_row_until_given_back() {
    use castiel_integrations::platform::queue::HandOver as _;
    let dir = tempfile::tempdir().expect("dir");
    let (q, clock) = queue(dir.path()).await;
    assert!(
        !q.hand_over(&msg(0), "none", (), 4),
        "no workers attached: the sender must send it"
    );
    // Room for one carry of 4 bytes.
    let mut handed = q.attach(1, 4, Duration::from_secs(30));
    assert!(q.hand_over(&msg(0), "a", (), 4));
    assert!(
        q.hand_over(&msg(1), "b", (), 4),
        "a backlog (up to MAX_WAITING) is not refused"
    );
    assert!(q.is_empty().await.expect("len"), "nothing was written");

    let a = handed.try_recv().expect("first");
    let b = handed.try_recv().expect("second");
    assert!(handed.try_recv().is_none());
    assert_eq!((a.seq, a.receives), (None, 1));
    assert!(a.carry.is_some(), "carried while there was room");
    assert!(b.carry.is_none(), "beyond the budget only the job waits");
    // Taking a job frees its carry's share of the budget.
    assert!(q.hand_over(&msg(2), "c", (), 4));
    assert!(handed.try_recv().expect("third").carry.is_some());
    assert!(!q.complete(&a).await.expect("complete"), "no row to delete");

    clock.advance(chrono::Duration::seconds(60));
    q.abandon(&b, Duration::ZERO).await.expect("give back");
    q.abandon(&b, Duration::ZERO)
        .await
        .expect("twice is harmless");
    let got = q
        .receive(10, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1, "one row, deduplicated by message id");
    assert_eq!((got[0].message_id.as_str(), got[0].receives), ("b", 2));
}
