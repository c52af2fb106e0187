//! `rotate-key`: moves every local secret onto a new primary key while the
//! service keeps running, then retires the old keys.
//!
//! **With the keyring file** (`DATA_DIR/secrets.keys`, no `SECRETS_KEY`):
//!
//! 1. Take the rotation lock (`secrets.keys.lock`), so rotations never
//!    interleave.
//! 2. Write the keyring with the new key as primary and the old keys kept
//!    for reading (moment *T1*). Running stores notice the file changed on
//!    their next write (a `stat` before each `put`) and on reading a secret
//!    under a key they do not hold, and re-read it.
//! 3. Scan every secret (all tenants, paged by id across partitions) whose
//!    `keyId` is not the new primary, or that is in the legacy format, and
//!    re-wrap its data key with the new primary (a legacy secret is sealed
//!    again in the envelope format). Each write is a replace conditioned on
//!    the ETag read: on 412 the secret is read again and retried; a secret
//!    deleted meanwhile is skipped, never written back.
//! 4. Repeat the scan until one moves nothing, so secrets written by a
//!    process that had not yet re-read the keyring are caught.
//! 5. Write the keyring with the new key alone (moment *T2*) and remove the
//!    legacy `secrets.key`.
//! 6. Wait `settle`, then scan again until a scan moves nothing (the
//!    verification), re-wrapping stragglers with the old keys this process
//!    still holds in memory. Only then return.
//!
//! **Writes racing the rotation.** A running store's `put` reads the
//! keyring file right before writing (so after *T1* it writes under the new
//! key), and checks it again after the write: if the primary changed in
//! between, it re-wraps its own secret with the new primary (ETag
//! conditioned) before returning the reference, and if that fails it
//! deletes the secret and fails. So every secret whose `put` succeeded was
//! either committed before that check, which is before *T1* and so before
//! the first scan, which sees it; or re-wrapped by its writer. The only
//! documents that can be left under an old key are those of puts that
//! failed or whose process died between the write and the check: nobody
//! holds a reference to them. Step 6 still re-wraps those that land before
//! it runs, and covers a store whose queries lag its writes by less than
//! `settle`.
//!
//! Between *T2* and the verification, a process that already re-read the
//! keyring answers a straggler of step 6 with
//! [`SecretError::Corrupt`](crate::platform::secrets::SecretError::Corrupt);
//! by the argument above no caller holds a reference to one.
//!
//! **With `SECRETS_KEY`** (a fixed list, first key primary) there is no file
//! to change: the operator lists the new key in every process first (as the
//! second key, then as the first), and `rotate-key` re-wraps every secret
//! to the list's first key (or `--to`) with steps 3 and 4, and names the
//! keys that may now be removed from `SECRETS_KEY`.
//!
//! A secret under a retiring key that cannot be decrypted (tampered or
//! damaged) keeps the old keys in the keyring: the rotation fails after
//! moving everything else, naming how many, and logs their ids.

mod report;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::Value;

use super::envelope::{self, Address, Stored};
use super::keyfile::KeyFile;
use super::keyring::{Kek, Keyring};
use super::{KeySource, REWRAP_ATTEMPTS};
use crate::platform::store::{Container, Document, Filter, Op, Query, Store, StoreError};

pub use self::report::{RotateError, RotationReport};

/// How a rotation runs.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// The wait between retiring the old keys and the verification scan.
    pub settle: Duration,
    /// Secrets read per query page.
    pub page_size: u32,
    /// Secrets re-wrapped at once.
    pub concurrency: usize,
    /// Scans before giving up on secrets that keep appearing under old keys.
    pub max_passes: u32,
}

impl Default for RotateOptions {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(5),
            page_size: 200,
            concurrency: 16,
            max_passes: 20,
        }
    }
}

/// Rotates the keys of a local secret store on `store` (see the module
/// documentation). `to` is the new primary; `None` generates one (keyring
/// file) or takes the `SECRETS_KEY` list's first key.
pub async fn rotate_key(
    store: Arc<dyn Store>,
    source: KeySource,
    to: Option<Kek>,
    options: &RotateOptions,
) -> Result<RotationReport, RotateError> {
    let started = Instant::now();
    let mut report = match source {
        KeySource::File(file) => rotate_file(store, &file, to, options).await?,
        KeySource::Fixed(ring) => {
            let ring = match to {
                Some(kek) => ring.promote(Arc::new(kek))?,
                None => ring,
            };
            let mut scan = Scan::new(store, &ring, options);
            scan.until_clean(false).await?;
            scan.finish(false)?
        }
    };
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn rotate_file(
    store: Arc<dyn Store>,
    file: &KeyFile,
    to: Option<Kek>,
    options: &RotateOptions,
) -> Result<RotationReport, RotateError> {
    let _lock = file.lock_for_rotation()?;
    let (old, _) = file.load()?.ok_or_else(|| {
        RotateError::NoKeyring(
            file.path()
                .parent()
                .map_or_else(String::new, |d| d.display().to_string()),
        )
    })?;
    let new = match to {
        Some(kek) => kek,
        None => std::iter::repeat_with(Kek::generate)
            .find(|k| old.get(k.id().as_str()).is_none())
            .unwrap_or_else(Kek::generate),
    };
    let ring = old.promote(Arc::new(new))?;
    file.save(&ring)?;
    tracing::info!(secrets.primary_key = %ring.primary().id(), "new primary key in the keyring");
    let mut scan = Scan::new(store, &ring, options);
    scan.until_clean(false).await?;
    let mut report = scan.finish(true)?;
    file.save(&ring.primary_only())?;
    report.legacy_file_removed = file.remove_legacy()?;
    tracing::info!(
        retired = report.retired.len(),
        "old keys retired from the keyring"
    );
    tokio::time::sleep(options.settle).await;
    scan.report = report;
    scan.until_clean(true).await?;
    scan.report.undecryptable = scan.undecryptable.len() as u64;
    scan.report.unknown_key = scan.unknown.len() as u64;
    Ok(scan.report)
}

/// What happened to one secret.
enum Moved {
    /// Already under the primary, in the envelope format.
    Current,
    /// Its data key re-wrapped.
    Rewrapped,
    /// Sealed again from the legacy format.
    Migrated,
    /// Deleted meanwhile.
    Deleted,
    /// Under a key the keyring does not hold.
    UnknownKey,
    /// Under a held key, but it does not decrypt.
    Undecryptable,
    /// Kept changing under us; the next scan tries again.
    Contended,
}

/// The scans of one rotation, with their tallies.
struct Scan<'a> {
    store: Arc<dyn Store>,
    ring: &'a Keyring,
    options: &'a RotateOptions,
    report: RotationReport,
    undecryptable: HashSet<(String, String)>,
    unknown: HashSet<(String, String)>,
}

impl<'a> Scan<'a> {
    fn new(store: Arc<dyn Store>, ring: &'a Keyring, options: &'a RotateOptions) -> Self {
        Self {
            store,
            ring,
            options,
            report: RotationReport {
                primary: Some(ring.primary().id().clone()),
                ..RotationReport::default()
            },
            undecryptable: HashSet::new(),
            unknown: HashSet::new(),
        }
    }

    /// Scans until one scan moves nothing; `verifying` counts what moves as
    /// stragglers.
    async fn until_clean(&mut self, verifying: bool) -> Result<(), RotateError> {
        for _ in 0..self.options.max_passes {
            self.report.passes += 1;
            let moved = self.pass(verifying).await?;
            if moved == 0 {
                return Ok(());
            }
        }
        Err(RotateError::StillWritten {
            passes: self.report.passes,
        })
    }

    /// The report after the scans before retirement, or the refusal to
    /// retire keys that undecryptable secrets are still under.
    fn finish(&self, keyring_file: bool) -> Result<RotationReport, RotateError> {
        if !self.undecryptable.is_empty() {
            return Err(RotateError::Undecryptable {
                count: self.undecryptable.len(),
                primary: self.ring.primary().id().clone(),
            });
        }
        Ok(RotationReport {
            keyring_file,
            retired: self.ring.older().iter().map(|k| k.id().clone()).collect(),
            unknown_key: self.unknown.len() as u64,
            ..self.report.clone()
        })
    }

    /// One scan: every secret not under the primary, then every legacy
    /// secret still under it; returns how many it moved (or must retry).
    async fn pass(&mut self, verifying: bool) -> Result<u64, RotateError> {
        let primary = self.ring.primary().id().as_str().to_owned();
        let mut moved = 0;
        for filter in [
            Filter::new("keyId", Op::Ne, primary.as_str()),
            Filter::new("format", Op::IsUndefined, Value::Null),
        ] {
            let mut after: Option<String> = None;
            loop {
                let mut q = Query::cross_partition()
                    .eq("kind", "secret")
                    .filter(filter.clone())
                    .order_by("id", false)
                    .limit(self.options.page_size);
                if let Some(a) = &after {
                    q = q.filter(Filter::new("id", Op::Gt, a.as_str()));
                }
                let page = self.query(&q).await?;
                let Some(last) = page.items.last() else { break };
                after = Some(last.id.clone());
                let more = page.continuation.is_some();
                let results: Vec<_> = futures::stream::iter(page.items)
                    .map(|doc| self.move_one(doc))
                    .buffer_unordered(self.options.concurrency)
                    .collect()
                    .await;
                for result in results {
                    let (tenant, id, outcome, conflicts) = result?;
                    self.report.scanned += 1;
                    self.report.conflicts += conflicts;
                    moved += self.tally(tenant, id, &outcome, verifying);
                }
                if !more {
                    break;
                }
            }
        }
        Ok(moved)
    }

    fn tally(&mut self, tenant: String, id: String, outcome: &Moved, verifying: bool) -> u64 {
        let count = |n: &mut u64| {
            *n += 1;
            1
        };
        match outcome {
            Moved::Rewrapped | Moved::Migrated if verifying => count(&mut self.report.stragglers),
            Moved::Rewrapped => count(&mut self.report.rewrapped),
            Moved::Migrated => count(&mut self.report.migrated),
            Moved::Contended => 1,
            Moved::Deleted => {
                self.report.deleted += 1;
                0
            }
            Moved::Current => 0,
            Moved::UnknownKey => {
                self.unknown.insert((tenant, id));
                0
            }
            Moved::Undecryptable => {
                if !self.undecryptable.contains(&(tenant.clone(), id.clone())) {
                    tracing::warn!(
                        tenant.id = %tenant,
                        secret.id = %id,
                        "a secret under a retiring key cannot be decrypted"
                    );
                    self.undecryptable.insert((tenant, id));
                }
                0
            }
        }
    }

    async fn query(&self, q: &Query) -> Result<crate::platform::store::Page, StoreError> {
        loop {
            match self.store.query(Container::Secrets, q).await {
                Err(StoreError::Throttled { retry_after }) => tokio::time::sleep(retry_after).await,
                other => return other,
            }
        }
    }

    /// Moves one secret to the primary: re-wrap (or migrate) and replace on
    /// the ETag read; on 412 read it again and retry.
    async fn move_one(
        &self,
        mut doc: Document,
    ) -> Result<(String, String, Moved, u64), StoreError> {
        let (tenant, id) = (doc.partition_key.clone(), doc.id.clone());
        let mut conflicts = 0;
        for _ in 0..REWRAP_ATTEMPTS {
            let outcome = match self.rewrapped(&doc.body) {
                Ok(body) => body,
                Err(outcome) => return Ok((tenant, id, outcome, conflicts)),
            };
            let (body, legacy) = outcome;
            match self
                .store
                .replace(Container::Secrets, body, Some(&doc.etag))
                .await
            {
                Ok(_) => {
                    let moved = if legacy {
                        Moved::Migrated
                    } else {
                        Moved::Rewrapped
                    };
                    return Ok((tenant, id, moved, conflicts));
                }
                Err(StoreError::NotFound) => return Ok((tenant, id, Moved::Deleted, conflicts)),
                Err(StoreError::PreconditionFailed) => {
                    conflicts += 1;
                    match self.store.read(Container::Secrets, &tenant, &id).await? {
                        None => return Ok((tenant, id, Moved::Deleted, conflicts)),
                        Some(fresh) => doc = fresh,
                    }
                }
                Err(StoreError::Throttled { retry_after }) => tokio::time::sleep(retry_after).await,
                Err(e) => return Err(e),
            }
        }
        Ok((tenant, id, Moved::Contended, conflicts))
    }

    /// The body moved to the primary (and whether it was legacy), or why not.
    fn rewrapped(&self, body: &Value) -> Result<(Value, bool), Moved> {
        if let Some(key_id) = body.get("keyId").and_then(Value::as_str)
            && self.ring.get(key_id).is_none()
        {
            return Err(Moved::UnknownKey);
        }
        let stored = Stored::parse(body).map_err(|_| Moved::Undecryptable)?;
        let primary = self.ring.primary();
        if stored.key_id == primary.id().as_str() && !stored.is_legacy() {
            return Err(Moved::Current);
        }
        let old = self.ring.get(&stored.key_id).ok_or(Moved::UnknownKey)?;
        let at = Address::of(body).ok_or(Moved::Undecryptable)?;
        let fields = stored
            .rewrap(old, primary, &at)
            .map_err(|_| Moved::Undecryptable)?;
        let mut body = body.clone();
        envelope::apply(&mut body, fields);
        Ok((body, stored.is_legacy()))
    }
}
