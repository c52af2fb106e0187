//! HS256 access tokens (SPEC §4): verification for requests, minting for the
//! `token` command and tests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::PoisonError;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::config::JwtConfig;
use crate::domain::tenancy::{Principal, TenantId};

/// Why a token was refused (all answer 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Not a well-formed JWT.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify with our secret.
    #[error("invalid token signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `exp` absent, or `iss`/`aud` wrong, or another claim check failed.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// No `tenantId` claim, or not a UUID.
    #[error("token has no valid tenantId claim")]
    MissingTenant,
}

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY: i64 = 30;

/// Verified tokens remembered at most; the cache is emptied when full.
const VERIFIED_CACHE: usize = 4096;

/// A token that verified, and the window in which it stays valid.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    /// Unix seconds from which it is valid (`nbf` − leeway).
    from: i64,
    /// Unix seconds until which it is valid (`exp` + leeway).
    until: i64,
}

/// Signs and verifies tokens with one HS256 secret.
///
/// A client sends the same token on every request until it expires, and a
/// full verification (base64, JSON, HMAC) costs more than the rest of a point
/// read: tokens that verified are remembered by their exact text with their
/// validity window, so a repeat costs one map lookup and a time check. Only
/// successes are kept; anything else is verified in full every time.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    verified: std::sync::Arc<std::sync::RwLock<HashMap<Box<str>, Verified>>>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from a secret and the configured `iss`/`aud`.
    pub fn new(secret: &SecretString, issuer: Option<String>, audience: Option<String>) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY.unsigned_abs();
        // A token whose `nbf` lies ahead is not valid yet (RFC 7519 §4.1.5).
        validation.validate_nbf = true;
        // A configured `iss`/`aud` must be present, not only right when present.
        let mut required = vec!["exp"];
        required.extend(issuer.as_ref().map(|_| "iss"));
        required.extend(audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            issuer,
            audience,
            verified: std::sync::Arc::default(),
        }
    }

    /// Verifies a token and reads the caller from it.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(v) = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .filter(|v| v.from <= now && now <= v.until)
        {
            return Ok(v.principal.clone());
        }
        let verified = self.verify_in_full(token)?;
        let principal = verified.principal.clone();
        let mut cache = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(token.into(), verified);
        Ok(principal)
    }

    fn verify_in_full(&self, token: &str) -> Result<Verified, AuthError> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    ErrorKind::MissingRequiredClaim(c) => {
                        AuthError::Rejected(format!("missing {c} claim"))
                    }
                    ErrorKind::InvalidIssuer => AuthError::Rejected("wrong issuer".into()),
                    ErrorKind::InvalidAudience => AuthError::Rejected("wrong audience".into()),
                    ErrorKind::InvalidAlgorithm => {
                        AuthError::Rejected("algorithm must be HS256".into())
                    }
                    ErrorKind::ImmatureSignature => {
                        AuthError::Rejected("token not yet valid".into())
                    }
                    _ => AuthError::Malformed,
                })?;
        let claims = data.claims;
        let tenant = claims
            .get("tenantId")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            // The nil UUID is no tenant: it would be everyone's default.
            .filter(|u| !u.is_nil())
            .ok_or(AuthError::MissingTenant)?;
        let user_id = ["sub", "userId"]
            .iter()
            .find_map(|k| claims.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        let is_super_admin = claims
            .get("isSuperAdmin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let seconds = |k: &str| claims.get(k).and_then(Value::as_i64);
        Ok(Verified {
            principal: Principal {
                tenant_id: TenantId(tenant),
                user_id,
                is_super_admin,
            },
            from: seconds("nbf").map_or(i64::MIN, |nbf| nbf.saturating_sub(LEEWAY)),
            // `exp` is required and numeric, or decoding failed above.
            until: seconds("exp").map_or(i64::MIN, |exp| exp.saturating_add(LEEWAY)),
        })
    }

    /// Mints a token for a tenant, valid for `ttl_seconds`.
    pub fn mint(
        &self,
        tenant: TenantId,
        user: Option<&str>,
        admin: bool,
        ttl_seconds: i64,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "tenantId": tenant.to_string(),
            "isSuperAdmin": admin,
            "iat": now,
            "exp": now + ttl_seconds,
        });
        if let Some(u) = user {
            claims["sub"] = json!(u);
        }
        self.sign(claims)
    }

    /// Mints a service token for a call to another Castiel service on a
    /// tenant's behalf: `tenantId`, `sub`/`serviceId`/`serviceName` = the
    /// calling service, `type: "access"` (Castiel's shared middleware wants
    /// it), `iss`/`aud` as configured, valid for `ttl_seconds` (keep it short:
    /// it is minted per call).
    pub fn mint_service(&self, tenant: TenantId, service: &str, ttl_seconds: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "tenantId": tenant.to_string(),
            "sub": service,
            "serviceId": service,
            "serviceName": service,
            "type": "access",
            "iat": now,
            "exp": now + ttl_seconds,
        });
        self.sign(claims)
    }

    /// Adds the configured `iss`/`aud` to claims and signs them.
    fn sign(&self, mut claims: Value) -> String {
        if let Some(iss) = &self.issuer {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = &self.audience {
            claims["aud"] = json!(aud);
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_else(|e| unreachable!("HS256 signing of a JSON object cannot fail: {e}"))
    }
}

/// The configured secret, or the one generated into `data_dir` (created once).
pub fn resolve_secret(cfg: &JwtConfig, data_dir: &Path) -> std::io::Result<SecretString> {
    if let Some(s) = &cfg.secret {
        return Ok(s.clone());
    }
    let path = data_dir.join("jwt-secret");
    crate::platform::files::read_or_create_secret(&path, || {
        let bytes: [u8; 48] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    })
    .map(SecretString::from)
}
