//! A rotation of 1,000 secrets while a second store on the same `DATA_DIR`
//! (the running service) keeps putting, reading and deleting secrets.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::secrets::local::rotate::rotate_key;
use castiel_integrations::platform::secrets::local::{KeyFile, KeySource, LocalSecretStore};
use castiel_integrations::platform::secrets::{SecretError, SecretOwner, SecretRef, SecretStore};
use castiel_integrations::platform::store::Store;
use futures::StreamExt as _;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::{all_secret_docs, keyring_ids, local, options, owner};

const SECRETS: usize = 1_000;
const TENANTS: usize = 7;
const WORKERS: usize = 4;

/// One secret the test wrote, and what it must read back.
#[derive(Clone)]
struct Entry {
    owner: SecretOwner,
    r: SecretRef,
    value: String,
}

async fn put(service: &LocalSecretStore, tenants: &[Uuid], n: usize) -> Entry {
    let tenant = tenants[n % tenants.len()];
    let kind = if n.is_multiple_of(3) {
        "connection"
    } else {
        "webhook"
    };
    let owner = owner(tenant, kind, &format!("owner-{}", n % 50));
    let value = format!("value-{n}-{}", Uuid::new_v4());
    let r = service
        .put(&owner, &SecretString::from(value.clone()))
        .await
        .expect("put");
    Entry { owner, r, value }
}

async fn read_back(service: &dyn SecretStore, e: &Entry) {
    match service.get(&e.owner, &e.r).await {
        Ok(v) => assert_eq!(v.expose_secret(), e.value, "{} reads its value", e.r.0),
        Err(err) => panic!("{} is unreadable: {err}", e.r.0),
    }
}

/// The running service: puts, gets and deletes its own share of secrets
/// until told to stop; returns what lives and what it deleted.
async fn worker(
    service: Arc<LocalSecretStore>,
    tenants: Vec<Uuid>,
    mut mine: Vec<Entry>,
    stop: Arc<AtomicBool>,
) -> (Vec<Entry>, Vec<Entry>, usize) {
    let mut deleted = Vec::new();
    let mut ops = 0;
    while !stop.load(Ordering::Relaxed) {
        // The in-memory Cosmos emulator answers without ever waiting: let
        // the rotation (and the other workers) run.
        tokio::task::yield_now().await;
        ops += 1;
        let dice = rand::random_range(0..10);
        if dice < 3 || mine.is_empty() {
            let n = rand::random_range(0..1_000_000);
            mine.push(put(&service, &tenants, n).await);
        } else if dice < 8 {
            let e = &mine[rand::random_range(0..mine.len())];
            read_back(service.as_ref(), e).await;
        } else {
            let e = mine.swap_remove(rand::random_range(0..mine.len()));
            service.delete(&e.owner, &e.r).await.expect("delete");
            deleted.push(e);
        }
    }
    (mine, deleted, ops)
}

/// The scenario on any store: `open` opens the store of `dir` as another
/// process would (for the embedded store, its own database handle).
async fn rotation_under_load(dir: &Path, open: impl Fn() -> Arc<dyn Store>) {
    let service = Arc::new(local(dir, open()));
    let old = keyring_ids(dir);
    assert_eq!(old.len(), 1, "a new DATA_DIR gets a keyring of one key");
    let tenants: Vec<Uuid> = (0..TENANTS).map(|_| Uuid::new_v4()).collect();
    let seeded: Vec<Entry> = futures::stream::iter(0..SECRETS)
        .map(|n| {
            let (service, tenants) = (service.clone(), tenants.clone());
            async move { put(&service, &tenants, n).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let mine = seeded.iter().skip(w).step_by(WORKERS).cloned().collect();
            tokio::spawn(worker(service.clone(), tenants.clone(), mine, stop.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = rotate_key(
        open(),
        KeySource::File(KeyFile::in_dir(dir)),
        None,
        &options(Duration::from_millis(300)),
    )
    .await
    .expect("rotate");
    eprintln!("{report}");
    // The service keeps going on the new keyring for a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut live, mut deleted, mut ops) = (Vec::new(), Vec::new(), 0);
    for w in workers {
        let (l, d, n) = w.await.expect("worker");
        live.extend(l);
        deleted.extend(d);
        ops += n;
    }
    eprintln!(
        "service during and after the rotation: {ops} operations, {} live, {} deleted",
        live.len(),
        deleted.len()
    );

    let new = report.primary.clone().expect("primary");
    assert!(!old.contains(&new));
    assert_eq!(report.retired, old);
    assert!(report.rewrapped + report.stragglers >= 1, "{report}");
    assert_eq!(keyring_ids(dir), vec![new.clone()], "the old key is gone");
    let file = std::fs::read_to_string(dir.join("secrets.keys")).expect("keyring");
    assert!(!file.contains(old[0].as_str()), "no trace of the old key");
    assert_eq!(service.key_ids(), vec![new.clone()], "the service followed");

    // Every document: live ones only, all under the new key, envelope format.
    let store = open();
    let docs = all_secret_docs(store.as_ref()).await;
    let ids: HashSet<String> = docs.iter().map(|d| d.id.clone()).collect();
    let live_ids: HashSet<String> = live
        .iter()
        .map(|e| e.r.0.trim_start_matches("local:").to_owned())
        .collect();
    assert_eq!(ids, live_ids, "none lost, none resurrected, no strays");
    for d in &docs {
        assert_eq!(
            d.body["keyId"],
            new.as_str(),
            "{} is under the new key",
            d.id
        );
        assert_eq!(d.body["format"], 2);
    }

    // A restart reads everything; deleted secrets stay deleted.
    let restarted = local(dir, store);
    for e in &live {
        read_back(&restarted, e).await;
    }
    for e in &deleted {
        assert!(matches!(
            restarted.get(&e.owner, &e.r).await,
            Err(SecretError::NotFound)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    rotation_under_load(dir.path(), || crate::sqlite(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_on_cosmos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::cosmos_emulator::store(Arc::new(SystemClock)).await;
    rotation_under_load(dir.path(), move || store.clone()).await;
}
