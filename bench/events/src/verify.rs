//! What makes a round count: every event it raised is on the queue bound to
//! the exchange (counted by distinct message id, which is the event id), and
//! nothing is left in the outbox. A round that cannot show both is reported
//! as failed, with what is missing, and gives no figure.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use castiel_integrations::app::AppState;
use castiel_integrations::platform::events::outbox::KIND_EVENT;
use castiel_integrations::platform::store::embedded::SqliteDb;
use castiel_integrations::platform::store::{Container, Query, Store};
use futures::StreamExt as _;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

/// Entries left in the outbox (up to `limit`), once every deferred write
/// (the deletes of confirmed entries) is committed.
pub async fn outbox_left(db: &SqliteDb, store: &dyn Store, limit: u32) -> anyhow::Result<usize> {
    db.settled().await?;
    let q = Query::cross_partition().eq("kind", KIND_EVENT).limit(limit);
    Ok(store.query(Container::Outbox, &q).await?.items.len())
}

/// Runs the relay until the outbox is empty or `deadline` passes; returns
/// the entries still there (0: drained) and how many the relay published.
pub async fn drain_outbox(
    state: &AppState,
    db: &SqliteDb,
    store: &dyn Store,
    deadline: Duration,
) -> anyhow::Result<(usize, usize)> {
    let until = Instant::now() + deadline;
    let mut relayed = 0;
    loop {
        let left = outbox_left(db, store, 1000).await?;
        if left == 0 {
            return Ok((0, relayed));
        }
        if Instant::now() > until {
            return Ok((left, relayed));
        }
        let r = state.events.relay().await?;
        relayed += r.published;
        if r.published == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the bound queue held after a round.
pub struct Counted {
    /// Distinct message ids.
    pub ids: HashSet<String>,
    /// Messages consumed (duplicates included).
    pub messages: usize,
    /// Messages without a message id.
    pub anonymous: usize,
}

/// Consumes `queue` until `expected` distinct message ids were seen, or no
/// message came for `quiet`.
pub async fn consume(
    url: &str,
    queue: &str,
    expected: usize,
    quiet: Duration,
) -> anyhow::Result<Counted> {
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut deliveries = ch
        .basic_consume(
            queue.into(),
            "bench-verify".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut c = Counted {
        ids: HashSet::with_capacity(expected),
        messages: 0,
        anonymous: 0,
    };
    while c.ids.len() < expected {
        let Ok(next) = tokio::time::timeout(quiet, deliveries.next()).await else {
            break;
        };
        let Some(d) = next else { break };
        let d = d?;
        c.messages += 1;
        match d.properties.message_id() {
            Some(id) => {
                c.ids.insert(id.as_str().to_owned());
            }
            None => c.anonymous += 1,
        }
    }
    conn.close(200, "verified".into()).await?;
    Ok(c)
}

/// A round's verdict: `None` when everything is there, else what is not.
pub fn verdict(
    mode: &str,
    expected: usize,
    known: Option<&HashSet<String>>,
    counted: &Counted,
    outbox_left: usize,
) -> Option<String> {
    let mut problems = Vec::new();
    let missing = match known {
        Some(ids) => ids.difference(&counted.ids).count(),
        None => expected.saturating_sub(counted.ids.len()),
    };
    if missing > 0 {
        let sample: Vec<&String> = known
            .map(|ids| ids.difference(&counted.ids).take(3).collect())
            .unwrap_or_default();
        problems.push(format!(
            "{missing} of {expected} events not on the bound queue (e.g. {sample:?})"
        ));
    }
    if outbox_left > 0 {
        problems.push(format!(
            "{outbox_left} outbox entries left after the relay's deadline"
        ));
    }
    if counted.anonymous > 0 {
        problems.push(format!("{} messages without an id", counted.anonymous));
    }
    (!problems.is_empty()).then(|| format!("{mode}: {}", problems.join("; ")))
}

/// The store handles a round needs to check the outbox.
#[derive(Clone)]
pub struct Outbox {
    /// The database (to settle deferred writes).
    pub db: Arc<SqliteDb>,
    /// The store over it.
    pub store: Arc<dyn Store>,
}
