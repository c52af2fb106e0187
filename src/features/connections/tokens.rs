//! Talking to token endpoints (RFC 6749 §4.1.3, §4.4, §6; RFC 7523 for the
//! service-account assertion), always through the SSRF-guarded client.
//!
//! Nothing here logs or returns a token or a client secret: errors carry
//! the provider's OAuth error code and the HTTP status only.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::platform::outbound::OutboundClient;

/// The grant type of the service-account assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// What a token endpoint granted.
pub struct Granted {
    /// The access token.
    pub access_token: SecretString,
    /// A new refresh token, when the provider sent one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when the provider said.
    pub expires_at: Option<DateTime<Utc>>,
    /// Scopes granted, when the provider said.
    pub scopes: Option<Vec<String>>,
    /// Salesforce's `instance_url`: the org's API host.
    pub instance_url: Option<String>,
}

impl std::fmt::Debug for Granted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Granted")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why a token request failed (safe to store and log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The endpoint refused the grant with an OAuth error (`invalid_grant`…).
    #[error("the token endpoint refused the request ({code}, HTTP {status})")]
    Refused {
        /// The OAuth `error` code (only `[a-z0-9_]`; else `invalid_response`).
        code: String,
        /// HTTP status.
        status: u16,
    },
    /// The endpoint could not be reached, or failed (5xx, 429).
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// The answer is not a token response.
    #[error("the token endpoint's answer is not a token response: {0}")]
    BadAnswer(String),
}

impl TokenError {
    /// The grant can never work again: the credentials were revoked or are
    /// wrong. Anything else may pass on a later try.
    pub fn is_final(&self) -> bool {
        matches!(self, TokenError::Refused { code, .. }
            if matches!(code.as_str(), "invalid_grant" | "invalid_client" | "unauthorized_client"))
    }

    /// A short code for redirects and documents.
    pub fn code(&self) -> &str {
        match self {
            TokenError::Refused { code, .. } => code,
            TokenError::Unavailable(_) => "temporarily_unavailable",
            TokenError::BadAnswer(_) => "invalid_response",
        }
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    instance_url: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

/// Keeps an OAuth error code printable and short.
fn error_code(raw: &str) -> String {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        raw.to_owned()
    } else {
        "invalid_response".to_owned()
    }
}

/// `expires_in` as a number or a numeric string (some providers send one).
fn seconds(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s| (0..=10 * 365 * 86_400).contains(s))
}

/// Posts a form to a token endpoint and reads the token response.
pub async fn request(
    outbound: &OutboundClient,
    url: &Url,
    form: &[(&str, &str)],
    now: DateTime<Utc>,
) -> Result<Granted, TokenError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = outbound
        .request(reqwest::Method::POST, url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .build()
        .map_err(|e| TokenError::BadAnswer(e.without_url().to_string()))?;
    let resp = outbound
        .execute(req)
        .await
        .map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| TokenError::Unavailable(e.without_url().to_string()))?;
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(TokenError::Unavailable(format!("HTTP {}", status.as_u16())));
    }
    if !status.is_success() {
        let code = serde_json::from_slice::<ErrorAnswer>(&body)
            .map_or_else(|_| "invalid_response".to_owned(), |e| error_code(&e.error));
        return Err(TokenError::Refused {
            code,
            status: status.as_u16(),
        });
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|_| TokenError::BadAnswer("no access_token in a JSON object".into()))?;
    if answer.access_token.is_empty() {
        return Err(TokenError::BadAnswer("an empty access_token".into()));
    }
    Ok(Granted {
        access_token: SecretString::from(answer.access_token),
        refresh_token: answer
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
        expires_at: answer
            .expires_in
            .as_ref()
            .and_then(seconds)
            .map(|s| now + Duration::seconds(s)),
        scopes: answer
            .scope
            .map(|s| s.split_whitespace().map(str::to_owned).collect()),
        instance_url: answer.instance_url,
    })
}

/// A Google service-account key file (the fields this service uses).
#[derive(Deserialize)]
pub struct ServiceAccountKey {
    /// Must be `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The account (`iss` of the assertion).
    pub client_email: String,
    /// PKCS#8 PEM RSA key.
    pub private_key: String,
    /// Key id (`kid` of the assertion header).
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// Token endpoint (`aud` of the assertion).
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

/// Google's token endpoint, when the key file names none.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: String,
    aud: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
}

/// The RS256-signed JWT assertion a service account exchanges for an
/// access token (valid one hour; `sub` for domain-wide delegation).
pub fn assertion(
    key: &ServiceAccountKey,
    token_url: &str,
    scopes: &[String],
    subject: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SecretString, jsonwebtoken::errors::Error> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid.clone_from(&key.private_key_id);
    let claims = AssertionClaims {
        iss: &key.client_email,
        scope: scopes.join(" "),
        aud: token_url,
        iat: now.timestamp(),
        exp: now.timestamp() + 3600,
        sub: subject,
    };
    let signing = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())?;
    jsonwebtoken::encode(&header, &claims, &signing).map(SecretString::from)
}

/// Parses a key file and checks that its private key can sign.
pub fn parse_service_account(text: &SecretString) -> Result<ServiceAccountKey, &'static str> {
    let key: ServiceAccountKey = serde_json::from_str(text.expose_secret())
        .map_err(|_| "is not a service-account key file (type, client_email, private_key)")?;
    if key.kind != "service_account" {
        return Err("is not a service-account key file (type must be service_account)");
    }
    if key.client_email.trim().is_empty() {
        return Err("has no client_email");
    }
    jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
        .map_err(|_| "has a private_key that is not a PEM RSA key")?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_kept_printable() {
        assert_eq!(error_code("invalid_grant"), "invalid_grant");
        assert_eq!(error_code("<script>"), "invalid_response");
        assert_eq!(error_code(""), "invalid_response");
        assert_eq!(error_code(&"a".repeat(65)), "invalid_response");
    }

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings() {
        assert_eq!(seconds(&serde_json::json!(3600)), Some(3600));
        assert_eq!(seconds(&serde_json::json!("60")), Some(60));
        assert_eq!(seconds(&serde_json::json!(-1)), None);
        assert_eq!(seconds(&serde_json::json!("soon")), None);
    }

    #[test]
    fn only_refusals_of_the_grant_are_final() {
        let refused = |code: &str| TokenError::Refused {
            code: code.into(),
            status: 400,
        };
        assert!(refused("invalid_grant").is_final());
        assert!(refused("invalid_client").is_final());
        assert!(!refused("invalid_request").is_final());
        assert!(!TokenError::Unavailable("HTTP 503".into()).is_final());
    }
}
