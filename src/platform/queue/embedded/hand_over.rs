//! Handing jobs to this process's workers as they are sent: the sending
//! side the queue holds once workers attach ([`Attached`]), the workers'
//! receiving end ([`HandedOver`]), and hand-overs without a row that carry
//! what the sender holds ([`HandOver`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};

use tokio::sync::mpsc;

use super::{EmbeddedQueue, Leased};
use crate::platform::queue::{HandOver, JobMessage};

/// This process's workers as the queue sees them once attached (see
/// [`EmbeddedQueue::attach`]): jobs are handed to them as they are sent.
pub(super) struct Attached<C> {
    pub(super) tx: mpsc::UnboundedSender<Leased<C>>,
    pub(super) visibility_ms: i64,
    pub(super) capacity: usize,
    pub(super) waiting: Arc<AtomicUsize>,
    /// Bytes of carries waiting, and the most that may.
    pub(super) carried: Arc<AtomicUsize>,
    pub(super) carry_budget: usize,
}

impl<C> Attached<C> {
    /// Hands a job on; `false` if the workers are gone.
    pub(super) fn hand(&self, job: Leased<C>) -> bool {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let Err(mpsc::error::SendError(job)) = self.tx.send(job) else {
            return true;
        };
        count_out(&self.waiting, &self.carried, &job);
        false
    }

    /// Whether fewer than `capacity` jobs wait.
    pub(super) fn has_room(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) < self.capacity
    }

    /// Whether a carry of `bytes` fits in what is left of the budget
    /// (then reserved until its job is taken).
    fn reserve(&self, bytes: usize) -> bool {
        let before = self.carried.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) <= self.carry_budget {
            return true;
        }
        self.carried.fetch_sub(bytes, Ordering::Relaxed);
        false
    }
}

/// Counts `job` out of the hand-over backlog: it no longer waits, and its
/// carry no longer holds a share of the budget.
fn count_out<C>(waiting: &AtomicUsize, carried: &AtomicUsize, job: &Leased<C>) {
    waiting.fetch_sub(1, Ordering::Relaxed);
    carried.fetch_sub(job.carry_bytes, Ordering::Relaxed);
}

/// The receiving end of the hand-over: jobs handed to this process's
/// workers (see [`EmbeddedQueue::attach`]).
#[derive(Debug)]
pub struct HandedOver<C = ()> {
    pub(super) rx: mpsc::UnboundedReceiver<Leased<C>>,
    pub(super) waiting: Arc<AtomicUsize>,
    pub(super) carried: Arc<AtomicUsize>,
}

impl<C> HandedOver<C> {
    fn taken(&self, job: Option<Leased<C>>) -> Option<Leased<C>> {
        if let Some(j) = &job {
            count_out(&self.waiting, &self.carried, j);
        }
        job
    }

    /// The next job, if one is waiting.
    pub fn try_recv(&mut self) -> Option<Leased<C>> {
        let job = self.rx.try_recv().ok();
        self.taken(job)
    }

    /// The next job; `None` once closed and drained.
    pub async fn recv(&mut self) -> Option<Leased<C>> {
        let job = self.rx.recv().await;
        self.taken(job)
    }

    /// Takes no more jobs (those waiting can still be received).
    pub fn close(&mut self) {
        self.rx.close();
    }
}

/// Jobs that may wait on the hand-over at once: beyond this backlog (a few
/// MiB of job ids, plus the carries that fit their own budget), jobs are
/// queued in the table, so that a long overload (slow endpoints) grows the
/// database, not the process.
pub const MAX_WAITING: usize = 20_000;

impl<C: Send + Sync + 'static> HandOver<C> for EmbeddedQueue<C> {
    fn hand_over(&self, message: &JobMessage, message_id: &str, carry: C, bytes: usize) -> bool {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(h) = workers
            .as_ref()
            .filter(|h| h.waiting.load(Ordering::Relaxed) < MAX_WAITING)
        else {
            return false;
        };
        let until = self
            .clock
            .now()
            .timestamp_millis()
            .saturating_add(h.visibility_ms);
        let kept = h.reserve(bytes);
        h.hand(Leased {
            seq: None,
            lease: String::new(),
            message_id: message_id.to_owned(),
            message: message.clone(),
            receives: 1,
            leased_until_ms: until,
            carry: kept.then_some(carry),
            carry_bytes: if kept { bytes } else { 0 },
        })
    }
}
