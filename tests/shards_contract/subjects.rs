//! The sinks the contract runs on, with what keeps their backends alive and
//! a way to count a tenant's shards on the backend itself.

use std::any::Any;
use std::sync::Arc;

use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::platform::events::Events;
use castiel_integrations::platform::events::in_process::InProcessBus;
use castiel_integrations::platform::shards::ShardSink;
use castiel_integrations::platform::shards::local::LocalShards;
use castiel_integrations::platform::store::{Container, Filter, Op, Query, Store};
use serde_json::Value;
use uuid::Uuid;

use crate::shard_manager_double::ShardManagerDouble;
use crate::stores::Place;

/// Where a sink keeps its shards, for counting them.
pub enum Backing {
    /// The document store of the local shard store.
    Store(Arc<dyn Store>),
    /// The shard-manager double.
    Double(Arc<ShardManagerDouble>),
}

/// A working sink.
pub struct Subject {
    pub sink: Arc<dyn ShardSink>,
    pub backing: Backing,
    _keep: Box<dyn Any + Send + Sync>,
}

impl Subject {
    /// How many shards of `tenant` the backend holds.
    pub async fn count(&self, tenant: Uuid) -> usize {
        match &self.backing {
            Backing::Store(store) => {
                let q = Query::partition(tenant.to_string()).filter(Filter::new(
                    "shardTypeId",
                    Op::IsDefined,
                    Value::Null,
                ));
                let n = store.count(Container::Shards, &q).await.expect("count");
                usize::try_from(n).expect("count fits")
            }
            Backing::Double(d) => d.state().of(tenant).len(),
        }
    }

    /// What the backend saw that breaks its protocol (nothing, for a store).
    pub fn problems(&self) -> Vec<String> {
        match &self.backing {
            Backing::Store(_) => Vec::new(),
            Backing::Double(d) => d.state().problems.clone(),
        }
    }
}

/// A fresh document store of `TEST_STORE`, with its directory.
pub async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::new(dir.path());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = place.open(clock).await;
    store.provision().await.expect("provision");
    (store, dir)
}

/// The local shard store on a fresh document store.
pub async fn local() -> Subject {
    let (store, dir) = store().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let events = Arc::new(Events::new(Arc::new(InProcessBus), clock.clone()));
    let sink = Arc::new(LocalShards::new(store.clone(), clock, events));
    Subject {
        sink,
        backing: Backing::Store(store),
        _keep: Box::new(dir),
    }
}

/// The shard-manager client against a fresh double (its id map on a fresh
/// document store).
pub async fn castiel() -> Subject {
    let (store, dir) = store().await;
    let double = Arc::new(ShardManagerDouble::start().await);
    let sink = Arc::new(double.client(store));
    Subject {
        sink,
        backing: Backing::Double(double),
        _keep: Box::new(dir),
    }
}
