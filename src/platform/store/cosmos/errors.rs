//! Mapping of every Cosmos SDK error to [`StoreError`].
//!
//! The SDK already retries throttled requests (HTTP 429) a bounded number of
//! times, waiting for the server's `x-ms-retry-after-ms` each time (see
//! [`super::client::throttling_retries`]); a 429 that still reaches us becomes
//! [`StoreError::Throttled`] with the server's delay, so the HTTP layer can
//! answer 429 with `Retry-After`.

use std::time::Duration;

use azure_core::http::StatusCode;
use azure_data_cosmos::CosmosError;

use crate::platform::store::StoreError;

/// Sub-status of a 404 whose *container or database* is missing (not the item).
const OWNER_RESOURCE_NOT_FOUND: u16 = 1003;

/// The delay to report when a 429 carries no `x-ms-retry-after-ms`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What went wrong, as the store reports it to its callers.
pub(crate) fn map(err: &CosmosError) -> StoreError {
    let status = err.status();
    let code = status.status_code();
    let sub = status.sub_status().map(|s| s.value());
    match code {
        StatusCode::NotFound if sub == Some(OWNER_RESOURCE_NOT_FOUND) => StoreError::Unavailable(
            format!("Cosmos container or database missing (run `provision`): {err}"),
        ),
        StatusCode::NotFound => StoreError::NotFound,
        StatusCode::Conflict => StoreError::Conflict,
        StatusCode::PreconditionFailed => StoreError::PreconditionFailed,
        StatusCode::TooManyRequests => StoreError::Throttled {
            retry_after: retry_after(err).unwrap_or(DEFAULT_RETRY_AFTER),
        },
        StatusCode::BadRequest | StatusCode::PayloadTooLarge => {
            StoreError::Invalid(format!("Cosmos refused the request: {err}"))
        }
        _ => StoreError::Unavailable(format!("Cosmos: {err}")),
    }
}

/// The server's `x-ms-retry-after-ms`, when the error came off the wire.
pub(crate) fn retry_after(err: &CosmosError) -> Option<Duration> {
    err.response()
        .and_then(|r| r.headers().retry_after_ms)
        .map(Duration::from_millis)
}

/// Whether resuming with a continuation token failed because of the token
/// (malformed, another container's or query's, another SDK version's): a
/// 400, or one of the SDK's client-side token statuses.
pub(crate) fn is_bad_token(err: &CosmosError) -> bool {
    let status = err.status();
    let sub = status.sub_status().map(|s| s.value());
    status.status_code() == StatusCode::BadRequest
        || (!err.is_from_wire()
            && sub.is_some_and(|s| {
                s == MALFORMED_CONTINUATION_TOKEN
                    || s == TOKEN_DECODE_FAILED
                    || CLIENT_TOKEN_STATUSES.contains(&s)
            }))
}

/// Sub-status of a malformed continuation token.
const MALFORMED_CONTINUATION_TOKEN: u16 = 20007;

/// `SERIALIZATION_RESPONSE_BODY_INVALID`, also used for undecodable token JSON.
const TOKEN_DECODE_FAILED: u16 = 20020;

/// The SDK's `CLIENT_CONTINUATION_TOKEN_*` sub-statuses.
const CLIENT_TOKEN_STATUSES: std::ops::RangeInclusive<u16> = 20200..=20299;

#[cfg(test)]
mod tests {
    use super::*;
    use azure_data_cosmos::CosmosStatus;

    fn err(code: StatusCode, sub: Option<u16>) -> CosmosError {
        let mut status = CosmosStatus::new(code);
        if let Some(s) = sub {
            status = status.with_sub_status(s);
        }
        CosmosError::builder()
            .with_status(status)
            .with_message("test")
            .build()
    }

    #[test]
    fn statuses_map_to_store_errors() {
        assert!(matches!(
            map(&err(StatusCode::NotFound, None)),
            StoreError::NotFound
        ));
        assert!(matches!(
            map(&err(StatusCode::NotFound, Some(1003))),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(&err(StatusCode::Conflict, None)),
            StoreError::Conflict
        ));
        assert!(matches!(
            map(&err(StatusCode::PreconditionFailed, None)),
            StoreError::PreconditionFailed
        ));
        assert!(matches!(
            map(&err(StatusCode::TooManyRequests, Some(3200))),
            StoreError::Throttled { retry_after } if retry_after == DEFAULT_RETRY_AFTER
        ));
        assert!(matches!(
            map(&err(StatusCode::BadRequest, None)),
            StoreError::Invalid(_)
        ));
        assert!(matches!(
            map(&err(StatusCode::ServiceUnavailable, Some(20003))),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(&err(StatusCode::InternalServerError, None)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(&err(StatusCode::Unauthorized, None)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(&err(StatusCode::RequestTimeout, None)),
            StoreError::Unavailable(_)
        ));
    }
}
