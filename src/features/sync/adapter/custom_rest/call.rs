//! One call to a custom API: the rate limit, the credential (renewed once
//! after a 401 for token schemes), the SSRF-guarded client, and the mapping
//! of what came back to an answer or an [`AdapterError`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::super::{AdapterError, AdapterResult, Credentials};
use super::rate_limit::RateLimiter;
use super::urls;
use crate::features::connections::access::Credential;
use crate::features::integrations::custom_api::{CustomAuth, CustomAuthType, Method};
use crate::platform::outbound::{OutboundClient, OutboundError};

/// Longest provider message kept in an error.
const MESSAGE_CHARS: usize = 300;

/// Largest answer read (a page of records is far smaller; an API that
/// sends more cannot exhaust the process's memory).
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// What a call answered (2xx).
#[derive(Debug)]
pub struct Answer {
    /// The URL called (without the credential).
    pub url: Url,
    /// Response headers.
    pub headers: HeaderMap,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

/// Sends calls for one adapter.
pub struct Caller {
    pub(super) outbound: Arc<OutboundClient>,
    pub(super) base: Url,
    pub(super) auth: CustomAuth,
    pub(super) credentials: Arc<Credentials>,
    pub(super) limiter: Option<Arc<RateLimiter>>,
}

/// A request to send.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Method.
    pub method: Method,
    /// Where (without the credential).
    pub url: &'a Url,
    /// JSON body.
    pub body: Option<&'a Value>,
    /// `If-Match`.
    pub if_match: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A call without a body.
    pub fn new(method: Method, url: &'a Url) -> Self {
        Self {
            method,
            url,
            body: None,
            if_match: None,
        }
    }
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

impl Caller {
    /// Whether a 401 is worth one renewal: token schemes, whose token the
    /// connection can refresh (OAuth), not static keys or passwords.
    fn renews(&self) -> bool {
        matches!(
            self.auth.kind,
            CustomAuthType::Oauth2ClientCredentials | CustomAuthType::Bearer
        )
    }

    /// Sends `call`, with one renewal and retry after a 401 where it helps.
    pub async fn send(&self, call: Call<'_>) -> AdapterResult<Answer> {
        let mut renewed = false;
        loop {
            if let Some(l) = &self.limiter {
                l.acquire().await;
            }
            let credential = self.credentials.current().await;
            let req = self.build(call, &credential)?;
            let resp = self
                .outbound
                .execute(req)
                .await
                .map_err(|e| outbound_error(&e))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                && !renewed
                && self.renews()
                && self.credentials.renew().await
            {
                renewed = true;
                continue;
            }
            let headers = resp.headers().clone();
            let bytes = read_body(resp).await?;
            if !status.is_success() {
                let message = redact(&message(status, &bytes), &credential);
                return Err(status_error(status, &headers, message));
            }
            let body = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|e| AdapterError::BadAnswer(format!("the answer is not JSON: {e}")))?
            };
            return Ok(Answer {
                url: call.url.clone(),
                headers,
                body,
            });
        }
    }

    fn build(&self, call: Call<'_>, credential: &Credential) -> AdapterResult<reqwest::Request> {
        let mut url = call.url.clone();
        if let (CustomAuthType::ApiKeyQuery, Some(name)) = (self.auth.kind, &self.auth.query_param)
        {
            url = urls::with_param(&url, name, credential.secret());
        }
        let mut rb = self
            .outbound
            .request(method(call.method), url)
            .header(header::ACCEPT, "application/json");
        match self.auth.kind {
            CustomAuthType::None | CustomAuthType::ApiKeyQuery => {}
            CustomAuthType::ApiKeyHeader => {
                let name = self.auth.header_name.as_deref().unwrap_or("X-Api-Key");
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    AdapterError::Rejected(format!("{name:?} is not a usable header name"))
                })?;
                let mut value = HeaderValue::from_str(credential.secret()).map_err(|_| {
                    AdapterError::Unauthorized(
                        "the connection's API key cannot be sent in a header".into(),
                    )
                })?;
                value.set_sensitive(true);
                rb = rb.header(name, value);
            }
            CustomAuthType::Bearer | CustomAuthType::Oauth2ClientCredentials => {
                rb = rb.bearer_auth(credential.secret());
            }
            CustomAuthType::Basic => match credential {
                Credential::Basic { .. } => rb = credential.authorize(rb),
                _ => {
                    return Err(AdapterError::Unauthorized(
                        "the API takes basic authentication; the connection holds no user name and password".into(),
                    ));
                }
            },
        }
        if let Some(body) = call.body {
            rb = rb.json(body);
        }
        if let Some(v) = call.if_match {
            rb = rb.header(header::IF_MATCH, v);
        }
        rb.build()
            .map_err(|_| AdapterError::Rejected("the request could not be built".into()))
    }
}

/// The body, at most [`MAX_ANSWER_BYTES`].
async fn read_body(mut resp: reqwest::Response) -> AdapterResult<Vec<u8>> {
    let broke = |e: &reqwest::Error| {
        AdapterError::Unavailable(if e.is_timeout() {
            "the API timed out sending its answer".into()
        } else {
            "the API's answer broke off".into()
        })
    };
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| broke(&e))? {
        if out.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(AdapterError::BadAnswer(format!(
                "the answer is larger than {} MiB",
                MAX_ANSWER_BYTES / (1024 * 1024)
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
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

/// The error for a non-2xx status.
fn status_error(status: reqwest::StatusCode, headers: &HeaderMap, message: String) -> AdapterError {
    match status.as_u16() {
        401 | 403 => AdapterError::Unauthorized(message),
        404 => AdapterError::NotFound(message),
        409 | 412 => AdapterError::Conflict(message),
        429 => AdapterError::RateLimited {
            message,
            retry_after: retry_after(headers),
        },
        300..=399 => AdapterError::Rejected(format!("{message} (redirects are not followed)")),
        400..=499 => AdapterError::Rejected(message),
        _ => AdapterError::Unavailable(message),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

/// The API's own message: a usual JSON error field, else the text, cut short.
fn message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| json_message(&v));
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let text: String = text.chars().take(MESSAGE_CHARS).collect();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

fn json_message(v: &Value) -> Option<String> {
    for key in [
        "message",
        "error_description",
        "detail",
        "title",
        "error",
        "errors",
    ] {
        match v.get(key) {
            Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
            Some(inner @ Value::Object(_)) => {
                if let Some(m) = json_message(inner) {
                    return Some(m);
                }
            }
            Some(Value::Array(items)) => {
                if let Some(m) = items
                    .first()
                    .and_then(|f| f.as_str().map(str::to_owned).or_else(|| json_message(f)))
                {
                    return Some(m);
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes the credential's secret from a message (an API may echo it).
fn redact(message: &str, credential: &Credential) -> String {
    let secret = credential.secret();
    if secret.len() < 4 {
        return message.to_owned();
    }
    message.replace(secret, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_the_usual_fields() {
        let m = |b: &str| message(reqwest::StatusCode::BAD_REQUEST, b.as_bytes());
        assert_eq!(
            m(r#"{"message":"bad filter"}"#),
            "HTTP 400 Bad Request: bad filter"
        );
        assert_eq!(
            m(r#"{"error":{"message":"nope"}}"#),
            "HTTP 400 Bad Request: nope"
        );
        assert_eq!(
            m(r#"{"errors":[{"detail":"x is bad"}]}"#),
            "HTTP 400 Bad Request: x is bad"
        );
        assert_eq!(m("plain"), "HTTP 400 Bad Request: plain");
        assert_eq!(m(""), "HTTP 400 Bad Request");
        assert_eq!(
            m(&"y".repeat(1000)).len(),
            "HTTP 400 Bad Request: ".len() + 300
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Credential::ApiKey(secrecy::SecretString::from("sk_live_123".to_owned()));
        assert_eq!(
            redact("key sk_live_123 is bad", &c),
            "key [redacted] is bad"
        );
    }

    #[test]
    fn statuses_map_to_errors() {
        let h = HeaderMap::new();
        let e = |s: u16| {
            status_error(
                reqwest::StatusCode::from_u16(s).expect("status"),
                &h,
                "m".into(),
            )
        };
        assert!(matches!(e(401), AdapterError::Unauthorized(_)));
        assert!(matches!(e(403), AdapterError::Unauthorized(_)));
        assert!(matches!(e(422), AdapterError::Rejected(_)));
        assert!(matches!(e(503), AdapterError::Unavailable(_)));
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            status_error(reqwest::StatusCode::TOO_MANY_REQUESTS, &h, "m".into()),
            AdapterError::RateLimited {
                message: "m".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }
}
