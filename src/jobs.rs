//! Jobs, whichever way they arrive (a `serve` worker, a timer, a Functions
//! trigger): what a job returns — an outcome (logs, output-binding values)
//! or a [`JobError`] that says whether running it again can help — and the
//! one [`RetryPolicy`] of each kind of queued work.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;
/// A job's successful result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutcome {
    /// Lines for the invocation's log (Functions `Logs`; tracing in `serve`).
    pub logs: Vec<String>,
    /// Values for output bindings, by binding name.
    pub outputs: Map<String, Value>,
}

impl JobOutcome {
    /// Nothing to report.
    pub fn done() -> Self {
        Self::default()
    }

    /// Adds a log line.
    #[must_use]
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }

    /// Sets an output binding's value (send JSON objects, never bare strings:
    /// reference §6.5, the base64 trap).
    #[must_use]
    pub fn output(mut self, binding: &str, value: Value) -> Self {
        self.outputs.insert(binding.to_owned(), value);
        self
    }
}

/// Anything a job may return on success.
pub trait IntoOutcome {
    /// Converts into an outcome.
    fn into_outcome(self) -> JobOutcome;
}

impl IntoOutcome for JobOutcome {
    fn into_outcome(self) -> JobOutcome {
        self
    }
}

/// A summary value (a count, a report struct, `()`): logged as JSON unless null.
#[derive(Debug, Clone)]
pub struct Summary<T>(pub T);

impl<T: Serialize> IntoOutcome for Summary<T> {
    fn into_outcome(self) -> JobOutcome {
        match serde_json::to_value(&self.0) {
            Ok(Value::Null) | Err(_) => JobOutcome::done(),
            Ok(v) => JobOutcome::done().log(format!("result: {v}")),
        }
    }
}

impl IntoOutcome for () {
    fn into_outcome(self) -> JobOutcome {
        JobOutcome::done()
    }
}

macro_rules! summary_outcome {
    ($($t:ty),*) => {$(
        impl IntoOutcome for $t {
            fn into_outcome(self) -> JobOutcome {
                Summary(self).into_outcome()
            }
        }
    )*};
}
summary_outcome!(usize, u64, u32, i64, bool, String, Value);

/// A job failure: the one error every job returns, in both run modes.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Transient (store or broker down, timeout, not written yet): run it
    /// again, not before `retry_after` when the failure said when.
    #[error("{cause:#}")]
    Retry {
        /// Why (logged; never shown to a tenant).
        cause: anyhow::Error,
        /// When to run again, if the failure said.
        retry_after: Option<Duration>,
    },
    /// Permanent (undecodable message, the thing it is about is gone):
    /// running it again cannot succeed, so a queue parks it at once.
    #[error("{0:#}")]
    Reject(anyhow::Error),
}

impl JobError {
    /// A transient failure.
    pub fn retry(e: impl Into<anyhow::Error>) -> Self {
        Self::Retry {
            cause: e.into(),
            retry_after: None,
        }
    }

    /// A transient failure that says when to run again.
    pub fn retry_after(e: impl Into<anyhow::Error>, after: Duration) -> Self {
        Self::Retry {
            cause: e.into(),
            retry_after: Some(after),
        }
    }

    /// A permanent failure.
    pub fn reject(e: impl Into<anyhow::Error>) -> Self {
        Self::Reject(e.into())
    }

    /// Whether running the job again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }

    /// When to run again, if the failure said.
    pub fn wait_hint(&self) -> Option<Duration> {
        match self {
            Self::Retry { retry_after, .. } => *retry_after,
            Self::Reject(_) => None,
        }
    }

    /// Adds context to the cause, keeping the kind and the hint.
    #[must_use]
    pub fn context(self, what: &'static str) -> Self {
        match self {
            Self::Retry { cause, retry_after } => Self::Retry {
                cause: cause.context(what),
                retry_after,
            },
            Self::Reject(cause) => Self::Reject(cause.context(what)),
        }
    }
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        Self::retry(e)
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) | Error::NotFound(_) | Error::Forbidden(_) => {
                Self::Reject(anyhow::Error::new(e))
            }
            Error::Unavailable {
                retry_after: Some(after),
                ..
            }
            | Error::TooManyRequests {
                retry_after: after, ..
            } => Self::retry_after(anyhow::Error::new(e), after),
            other => Self::retry(anyhow::Error::new(other)),
        }
    }
}

/// How one kind of queued work is retried when its job fails transiently.
/// Every queue's policy is here, so that `serve`'s workers, the Functions
/// triggers and the queues declared in `infra/` agree (a test compares
/// them). A permanent failure ([`JobError::Reject`]) is never retried.
///
/// This is about a job that failed, not about the work's own schedule: a
/// webhook endpoint that answers 500 is a *successful* job that records a
/// failed attempt and schedules the next one (`features::webhooks::schedule`,
/// SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Receives of one message before it is given up: `serve` drops it (the
    /// work's own record re-drives it: the webhook re-drive), Functions parks
    /// it on the function's park queue. Service Bus queues declare it as
    /// their `maxDeliveryCount`.
    pub max_receives: u32,
    /// First wait before a failed job runs again in `serve`, doubled on
    /// each receive up to [`RetryPolicy::max_wait`], unless the failure said
    /// when. (Service Bus redelivers a failed invocation's message once its
    /// lock is released; the host applies no wait of its own.)
    pub first_wait: Duration,
    /// The longest wait between two receives.
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// The wait before receive `receives + 1`, after a failure that said
    /// nothing of when (`receives` counts this one; 1 = first).
    pub fn backoff(&self, receives: u32) -> Duration {
        let factor = 2u32.saturating_pow(receives.saturating_sub(1).min(16));
        self.first_wait.saturating_mul(factor).min(self.max_wait)
    }

    /// Whether a message received `receives` times is given up after this failure.
    pub fn exhausted(&self, receives: u32) -> bool {
        receives >= self.max_receives
    }
}

/// Jobs on the job queue (webhook delivery attempts), embedded or Service
/// Bus: 10 receives, 2 s doubling up to 5 min in `serve`. (Messages from
/// Castiel's RabbitMQ bus are retried by the broker and the Functions
/// extension, which rejects after its own fixed count: see
/// `drivers::functions::rabbitmq::MAX_RECEIVES`.)
pub const QUEUE_JOBS: RetryPolicy = RetryPolicy {
    max_receives: 10,
    first_wait: Duration::from_secs(2),
    max_wait: Duration::from_secs(300),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_become_logs() {
        assert_eq!(().into_outcome(), JobOutcome::done());
        assert_eq!(3usize.into_outcome().logs, ["result: 3"]);
        let o = JobOutcome::done()
            .log("a")
            .output("parked", serde_json::json!({}));
        assert_eq!(o.clone().into_outcome(), o);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(QUEUE_JOBS.backoff(1), Duration::from_secs(2));
        assert_eq!(QUEUE_JOBS.backoff(3), Duration::from_secs(8));
        assert_eq!(QUEUE_JOBS.backoff(40), Duration::from_secs(300));
        assert!(!QUEUE_JOBS.exhausted(9));
        assert!(QUEUE_JOBS.exhausted(10));
    }

    #[test]
    fn service_errors_classify() {
        assert!(!JobError::from(Error::NotFound("delivery")).is_retryable());
        assert!(
            JobError::from(Error::Unavailable {
                detail: "down".into(),
                retry_after: None
            })
            .is_retryable()
        );
        assert!(JobError::from(anyhow::anyhow!("io")).is_retryable());
    }
}
