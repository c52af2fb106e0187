//! The one error type of the HTTP edge: every failure leaves as RFC 9457
//! `application/problem+json`, built by serializing [`Problem`].

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::validation::{Violation, Violations};
use crate::error::Error;
use crate::platform::auth::AuthError;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Every bad field, for 400.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Violation>,
}

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    errors: Vec<Violation>,
    retry_after: Option<Duration>,
    www_authenticate: bool,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            www_authenticate: false,
        }
    }

    /// 400 with field violations.
    pub fn invalid(v: Violations) -> Self {
        let errors = v.into_vec();
        let n = errors.len();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "validation-error",
            if n == 1 {
                "the request has 1 invalid field".to_owned()
            } else {
                format!("the request has {n} invalid fields")
            },
        );
        e.errors = errors;
        e
    }

    /// 400 for a body that is not JSON at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 408: the request body did not arrive within the body timeout.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            "the request body did not arrive in time",
        )
    }

    /// 401.
    pub fn unauthorized(e: &AuthError) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string());
        err.www_authenticate = true;
        err
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "this method is not allowed on this path",
        )
    }

    /// 413.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "the request body is over 1 MiB",
        )
    }

    /// 415.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as application/json",
        )
    }

    /// 500 whose cause is logged here, once, and never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error.cause = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(what) => Self::not_found(what),
            Error::Conflict(d) => Self::new(StatusCode::CONFLICT, "conflict", d),
            Error::PreconditionFailed => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                e.to_string(),
            ),
            Error::Invalid(v) => Self::invalid(v),
            Error::Forbidden(d) => Self::forbidden(d),
            Error::TooManyRequests {
                detail,
                retry_after,
            } => {
                let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", detail);
                err.retry_after = Some(retry_after);
                err
            }
            Error::Unavailable {
                detail,
                retry_after,
            } => {
                let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
                err.retry_after = retry_after;
                err
            }
            Error::Internal(cause) => Self::internal(&format!("{cause:#}")),
        }
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        Self::invalid(v)
    }
}

fn title(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            problem_type: format!("urn:castiel:problem:{}", self.slug),
            title: title(self.status),
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        if self.www_authenticate {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Turns a panic into a plain 500 problem (the panic itself is logged).
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature CatchPanicLayer requires"
)]
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    ApiError::internal(&format!("handler panicked: {msg}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problem_bodies_are_valid_json() {
        for e in [
            ApiError::internal(&"boom"),
            ApiError::invalid(Violations::one("/a\"b", "bad \"quote\"")),
            ApiError::from(Error::TooManyRequests {
                detail: "x".into(),
                retry_after: Duration::from_secs(3),
            }),
        ] {
            let status = e.status();
            let res = e.into_response();
            assert_eq!(res.status(), status);
            let body = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .expect("body");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            assert_eq!(v["status"], status.as_u16());
            assert!(!v["detail"].as_str().unwrap_or_default().contains("boom"));
        }
    }
}
