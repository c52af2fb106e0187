//! What a job returns: an outcome (logs, output-binding values) or an error
//! that says whether running it again can help.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::store::StoreError;

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

/// A job failure.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Transient (store or broker down, timeout): run it again.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Permanent (undecodable message, the thing it is about is gone): running
    /// it again cannot succeed, so a queue trigger parks it at once.
    #[error("{0:#}")]
    Reject(anyhow::Error),
}

impl JobError {
    /// A transient failure.
    pub fn retry(e: impl Into<anyhow::Error>) -> Self {
        Self::Retry(e.into())
    }

    /// A permanent failure.
    pub fn reject(e: impl Into<anyhow::Error>) -> Self {
        Self::Reject(e.into())
    }

    /// Whether running the job again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        Self::Retry(e)
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) | Error::NotFound(_) | Error::Forbidden(_) => {
                Self::Reject(anyhow::Error::new(e))
            }
            other => Self::Retry(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::jobs::JobError> for JobError {
    fn from(e: crate::jobs::JobError) -> Self {
        // Queue jobs only fail transiently; permanent outcomes are `NoOp`s.
        Self::Retry(e.cause)
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Error::from(e).into()
    }
}

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
