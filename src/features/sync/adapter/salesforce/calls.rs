//! One Salesforce REST call: through the SSRF-guarded client, with the
//! integration's bearer token, renewed once after `401 INVALID_SESSION_ID`;
//! Salesforce's error bodies (`[{"message", "errorCode"}]`) turned into
//! [`AdapterError`]s carrying its own message; and the org's daily API
//! usage (`Sforce-Limit-Info: api-usage=N/M`) watched so a run stops before
//! it exhausts the allowance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::super::{AdapterError, AdapterResult, Credentials};
use super::soql::shorten;
use crate::platform::outbound::{OutboundClient, OutboundError};

/// The default share of the org's daily API calls (percent) at which the
/// adapter stops calling: the last 5 % stay for the org's other users.
pub const DEFAULT_USAGE_THRESHOLD: u8 = 95;

/// The most characters of a Salesforce message kept in an error.
const MESSAGE_CHARS: usize = 300;

/// A successful answer.
pub struct Answer {
    /// Its body (may be empty: 204).
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> AdapterResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            AdapterError::BadAnswer(format!("Salesforce answered unreadable JSON: {e}"))
        })
    }
}

/// Where and how calls go.
pub struct Api {
    outbound: Arc<OutboundClient>,
    /// The org's instance (`https://acme.my.salesforce.com/`).
    pub instance: Url,
    /// The REST API version (`v60.0`).
    pub version: String,
    credentials: Credentials,
    /// Stop when daily usage reaches this percent.
    pub usage_threshold: u8,
    /// `(used, max)` from the last `Sforce-Limit-Info`, packed; 0 = unknown.
    usage: AtomicU64,
}

/// `api-usage=N/M` from a `Sforce-Limit-Info` value.
pub fn parse_usage(header: &str) -> Option<(u64, u64)> {
    header.split(',').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        if k.trim() != "api-usage" {
            return None;
        }
        let (used, max) = v.trim().split_once('/')?;
        Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
    })
}

impl Api {
    /// Calls to `instance` with API `version`.
    pub fn new(
        outbound: Arc<OutboundClient>,
        instance: Url,
        version: String,
        credentials: Credentials,
    ) -> Self {
        Self {
            outbound,
            instance,
            version,
            credentials,
            usage_threshold: DEFAULT_USAGE_THRESHOLD,
            usage: AtomicU64::new(0),
        }
    }

    /// `/services/data/<version>/<path>` on the instance.
    pub fn data_url(&self, path: &str) -> AdapterResult<Url> {
        self.instance
            .join(&format!("services/data/{}/{path}", self.version))
            .map_err(|e| AdapterError::Rejected(format!("bad Salesforce URL: {e}")))
    }

    /// A `nextRecordsUrl` (or a page token holding one) as a URL on the
    /// instance: only a path under `/services/data/`; another host, scheme
    /// or port is refused, so a forged token never sends the token elsewhere.
    pub fn next_records_url(&self, token: &str) -> AdapterResult<Url> {
        let refused = || {
            AdapterError::Rejected(format!(
                "the page token {:?} is not a query locator on this Salesforce instance",
                shorten(token)
            ))
        };
        if !token.starts_with("/services/data/") || token.starts_with("//") {
            return Err(refused());
        }
        let url = self.instance.join(token).map_err(|_| refused())?;
        let same = url.scheme() == self.instance.scheme()
            && url.host() == self.instance.host()
            && url.port_or_known_default() == self.instance.port_or_known_default()
            && url.path().starts_with("/services/data/")
            && url.query().is_none();
        if same { Ok(url) } else { Err(refused()) }
    }

    /// The last known `(used, max)` daily API calls.
    pub fn usage(&self) -> Option<(u64, u64)> {
        let packed = self.usage.load(Ordering::Relaxed);
        (packed != 0).then_some((packed >> 32, packed & 0xffff_ffff))
    }

    fn note_usage(&self, headers: &HeaderMap) {
        let Some((used, max)) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_usage)
        else {
            return;
        };
        let packed = (used.min(u64::from(u32::MAX)) << 32) | max.min(u64::from(u32::MAX));
        self.usage.store(packed, Ordering::Relaxed);
    }

    /// Refuses to call when the org's daily usage reached the threshold.
    fn check_usage(&self) -> AdapterResult<()> {
        if let Some((used, max)) = self.usage()
            && max > 0
            && used.saturating_mul(100) >= max.saturating_mul(u64::from(self.usage_threshold))
        {
            return Err(AdapterError::RateLimited {
                message: format!(
                    "the Salesforce org has used {used} of its {max} daily API calls; \
                     syncing pauses at {} % to leave the rest for the org's other users",
                    self.usage_threshold
                ),
                retry_after: None,
            });
        }
        Ok(())
    }

    /// Sends one call; after a 401 renews the credentials once and retries.
    pub async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> AdapterResult<Answer> {
        self.check_usage()?;
        let mut renewed = false;
        loop {
            let credential = self.credentials.current().await;
            let mut req = credential.authorize(self.outbound.request(method.clone(), url.clone()));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let req = req
                .build()
                .map_err(|e| AdapterError::Rejected(format!("bad request: {e}")))?;
            let resp = self
                .outbound
                .execute(req)
                .await
                .map_err(|e| outbound_error(&e))?;
            let status = resp.status();
            self.note_usage(resp.headers());
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs);
            let bytes = resp.bytes().await.map_err(|e| {
                AdapterError::Unavailable(format!(
                    "reading Salesforce's answer failed: {}",
                    e.without_url()
                ))
            })?;
            if status.is_success() {
                return Ok(Answer { body: bytes.into() });
            }
            if status == StatusCode::UNAUTHORIZED && !renewed && self.credentials.renew().await {
                renewed = true;
                continue;
            }
            let (code, message) = error_of(&bytes);
            let message = redact(&message, credential.secret());
            return Err(classify(status, &code, &message, retry_after));
        }
    }
}

/// `errorCode` and `message` of a Salesforce error body (or an OAuth error).
fn error_of(body: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let first = match &v {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let text = |k: &str| first.get(k).and_then(Value::as_str).map(str::to_owned);
    let code = text("errorCode")
        .or_else(|| text("error"))
        .unwrap_or_default();
    let message = text("message")
        .or_else(|| text("error_description"))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (code, message)
}

/// The message cut short, without the token (Salesforce never echoes it,
/// but a proxy in front of an org might).
fn redact(message: &str, secret: &str) -> String {
    let clean = if secret.len() >= 8 {
        message.replace(secret, "[redacted]")
    } else {
        message.to_owned()
    };
    let mut out: String = clean.chars().take(MESSAGE_CHARS).collect();
    if clean.chars().count() > MESSAGE_CHARS {
        out.push('…');
    }
    out
}

fn classify(
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<std::time::Duration>,
) -> AdapterError {
    let text = if code.is_empty() {
        format!("{} {message}", status.as_u16())
    } else {
        format!("{code}: {message}")
    };
    match status {
        _ if code == "REQUEST_LIMIT_EXCEEDED" || status == StatusCode::TOO_MANY_REQUESTS => {
            AdapterError::RateLimited {
                message: format!("Salesforce refused the call ({text}); the sync retries later"),
                retry_after,
            }
        }
        StatusCode::UNAUTHORIZED => AdapterError::Unauthorized(text),
        StatusCode::NOT_FOUND => AdapterError::NotFound(text),
        StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => AdapterError::Conflict(text),
        s if s.is_server_error() => AdapterError::Unavailable(text),
        _ => AdapterError::Rejected(text),
    }
}

fn outbound_error(e: &OutboundError) -> AdapterError {
    match e {
        OutboundError::InvalidUrl(_)
        | OutboundError::SchemeNotAllowed
        | OutboundError::Blocked { .. } => AdapterError::Blocked(e.to_string()),
        OutboundError::Resolve(_)
        | OutboundError::Timeout
        | OutboundError::Connect(_)
        | OutboundError::Http(_) => AdapterError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_the_limit_header() {
        assert_eq!(parse_usage("api-usage=10018/100000"), Some((10018, 100000)));
        assert_eq!(
            parse_usage("per-app-api-usage=1/2(appName=x), api-usage=5/15000"),
            Some((5, 15000))
        );
        assert_eq!(parse_usage("nonsense"), None);
    }

    #[test]
    fn errors_carry_salesforces_message_without_the_token() {
        let body = br#"[{"message":"Session expired or invalid tok-123456789","errorCode":"INVALID_SESSION_ID"}]"#;
        let (code, message) = error_of(body);
        let e = classify(
            StatusCode::UNAUTHORIZED,
            &code,
            &redact(&message, "tok-123456789"),
            None,
        );
        assert_eq!(
            e,
            AdapterError::Unauthorized(
                "INVALID_SESSION_ID: Session expired or invalid [redacted]".into()
            )
        );
        let long = "x".repeat(1000);
        assert!(redact(&long, "").chars().count() <= MESSAGE_CHARS + 1);
    }
}
