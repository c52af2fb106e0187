//! One attempt over HTTP (SPEC §8): the body signed per Standard Webhooks
//! with every secret that signs now, sent through the SSRF-guarded client
//! with the request's timeout, and what came back (status, `Retry-After`,
//! the first [`KEPT_BODY_BYTES`] of the body).

use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::ExposeSecret as _;
use url::Url;

use super::Webhooks;
use super::model::{Attempt, Delivery, Webhook};
use super::secret_owner;
use super::signing::{sign_with, signing_key};
use crate::jobs::JobError;

/// How much of a response body an attempt keeps.
pub const KEPT_BODY_BYTES: usize = 1024;

/// What one HTTP attempt gave.
pub(super) struct Sent {
    /// The attempt, as the delivery log keeps it.
    pub(super) attempt: Attempt,
    /// The endpoint's `Retry-After`, if it sent one.
    pub(super) retry_after: Option<String>,
    /// It answered 410 Gone.
    pub(super) gone: bool,
    /// It answered 429 or 503.
    pub(super) throttled: bool,
}

/// How long a webhook secret, once read, is kept ready to sign with. A
/// secret reference never changes what it points to (rotation makes a new
/// one) and the webhook, read as fresh as ever, says which references sign,
/// so a kept key is never used for longer than its webhook lists it.
pub const SIGNING_KEY_TTL: Duration = Duration::from_secs(60);
/// Signing keys kept at once.
pub const SIGNING_KEYS_CACHED: usize = 10_000;

/// Why a signing key could not be had.
#[derive(Debug)]
enum KeyError {
    Read(crate::platform::secrets::SecretError),
    Malformed,
}

async fn signatures(
    app: &Webhooks,
    webhook: &Webhook,
    msg_id: &str,
    ts: i64,
    body: &[u8],
) -> Result<String, JobError> {
    let now = app.clock.now();
    let mut sigs = Vec::new();
    for s in webhook.signing_secrets(now) {
        let key = (
            webhook.tenant_id,
            s.owner_id.clone(),
            s.secret_ref.0.clone(),
        );
        let loaded = app
            .signing_keys
            .get_or_load(&key, async {
                let owner = secret_owner(webhook.tenant_id, &s.owner_id);
                let secret = app
                    .secrets
                    .get(&owner, &s.secret_ref)
                    .await
                    .map_err(KeyError::Read)?;
                signing_key(secret.expose_secret()).ok_or(KeyError::Malformed)
            })
            .await;
        match loaded {
            Ok(key) => sigs.push(sign_with(&key, msg_id, ts, body)),
            Err(KeyError::Malformed) => {
                tracing::error!(webhook.id = %webhook.id, "a stored webhook secret is malformed")
            }
            Err(KeyError::Read(e)) => {
                tracing::warn!(webhook.id = %webhook.id, error = %e, "reading a webhook secret failed")
            }
        }
    }
    if sigs.is_empty() {
        return Err(JobError::retry_after(
            anyhow::anyhow!("no signing secret of webhook {} is readable", webhook.id),
            Duration::from_secs(30),
        ));
    }
    Ok(sigs.join(" "))
}

/// Sends one signed attempt of `d` to `webhook` through the SSRF-guarded
/// client. An endpoint that fails or cannot be reached is a failed attempt,
/// not an error; an error means no attempt was made (no readable secret).
pub(super) async fn send(
    app: &Webhooks,
    webhook: &Webhook,
    d: &Delivery,
) -> Result<Sent, JobError> {
    let body = d.payload.as_str().as_bytes().to_vec();
    let at = app.clock.now();
    let ts = at.timestamp();
    let msg_id = d.id.to_string();
    let signature = signatures(app, webhook, &msg_id, ts, &body).await?;
    let timeout = Duration::from_secs(u64::from(app.settings.timeout_seconds));
    let number = d.attempt_count + 1;
    let failed = |error: String, ms: u64| Sent {
        attempt: Attempt {
            number,
            at,
            response_status: None,
            duration_ms: ms,
            error: Some(error),
            response_body: None,
            succeeded: false,
        },
        retry_after: None,
        gone: false,
        throttled: false,
    };
    let url = match Url::parse(&webhook.url) {
        Ok(u) => u,
        Err(e) => return Ok(failed(format!("invalid URL: {e}"), 0)),
    };
    let req = app
        .outbound
        .request(Method::POST, url)
        // The client sends its `User-Agent` (outbound::USER_AGENT).
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .timeout(timeout)
        .body(body)
        .build();
    let req = match req {
        Ok(r) => r,
        Err(e) => return Ok(failed(format!("invalid request: {e}"), 0)),
    };
    let started = Instant::now();
    let elapsed = |s: Instant| u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX);
    // The request's own timeout runs from connecting until the body is read
    // (a timer of its own around each attempt cost one more timer-wheel
    // entry per delivery).
    let res = match app.outbound.execute(req).await {
        Ok(res) => res,
        Err(e) => return Ok(failed(e.to_string(), elapsed(started))),
    };
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let kept = read_head(res).await;
    let code = status.as_u16();
    let error = if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(format!(
            "the endpoint answered {code}; redirects are not followed"
        ))
    } else {
        Some(format!("the endpoint answered {code}"))
    };
    Ok(Sent {
        attempt: Attempt {
            number,
            at,
            response_status: Some(code),
            duration_ms: elapsed(started),
            error,
            response_body: Some(kept),
            succeeded: status.is_success(),
        },
        retry_after,
        gone: code == 410,
        throttled: code == 429 || code == 503,
    })
}

/// The first [`KEPT_BODY_BYTES`] of a response body (lossy UTF-8), or what
/// came of it before the request's timeout.
async fn read_head(mut res: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < KEPT_BODY_BYTES {
        match res.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(KEPT_BODY_BYTES);
    String::from_utf8_lossy(&buf).into_owned()
}
