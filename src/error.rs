//! The error of the service layer: what any trigger (HTTP, timer, queue) can
//! get back from a service call. The HTTP edge maps it to problem+json.

use std::time::Duration;

use crate::domain::validation::Violations;

/// A service call's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist or belongs to another tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Duplicate or wrong state.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` no longer matches.
    #[error("the resource was modified; re-read it and retry with its new ETag")]
    PreconditionFailed,
    /// Bad input, with every bad field.
    #[error("invalid input")]
    Invalid(Violations),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A limit refused the call.
    #[error("{detail}")]
    TooManyRequests {
        /// What limit, for a person.
        detail: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// A dependency is down or throttling.
    #[error("{detail}")]
    Unavailable {
        /// Which dependency, for a person (nothing internal).
        detail: String,
        /// When to try again, if known.
        retry_after: Option<Duration>,
    },
    /// A bug or an unexpected failure; its cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The result of a service call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A single-field validation error.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid(Violations::one(pointer, detail))
    }
}

impl From<Violations> for Error {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}
