//! Azure Key Vault secrets through the official SDK
//! (`azure_security_keyvault_secrets` 1.x, the same `azure_core` as Cosmos).
//!
//! **Names.** Key Vault names allow only `[0-9a-zA-Z-]` (1–127 characters),
//! so a secret is named `c-<tenant uuid hex>-<kind>-<random uuid hex>` and the
//! reference kept in documents is `keyvault:<name>`. A reference is parsed
//! back to exactly that shape before anything is sent, so a stored or forged
//! reference cannot address another path of the vault.
//!
//! **Ownership.** The owner is kept in the secret's tags (`tenantId`,
//! `ownerKind`, `ownerId`; an owner id longer than a tag value may be is kept
//! as `sha256:<hex>`). `get` and `delete` read the tags first: another tenant
//! (by name or tag) is `NotFound`, another owner in the tenant `Forbidden`.
//!
//! **Size.** Key Vault holds at most 25k bytes per value. A longer value (up
//! to [`MAX_VALUE_BYTES`]) is split at character boundaries into parts of at
//! most [`PART_BYTES`]: `<name>-p1`, `<name>-p2`, … are written first, then
//! `<name>` with the first part and a `parts` tag, so a readable head always
//! has its parts.
//!
//! **Delete.** Only `DELETE /secrets/{name}` (soft delete), never purge: the
//! vault in `infra/` enables purge protection (a purge would be refused), and
//! soft delete keeps an operator's way back from a wrong delete for the
//! vault's retention days. A soft-deleted name cannot be set again until it
//! is purged, which never matters here because every name is new.
//!
//! **Rights.** The identity needs "Key Vault Secrets Officer" on the vault
//! (get, set, delete; no purge needed). `health` gets a name that does not
//! exist and expects 404: the cheapest authorized call, it needs only get.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, HttpClient, RetryOptions, StatusCode, Transport,
};
use azure_identity::ManagedIdentityCredential;
use azure_security_keyvault_secrets::models::{Secret, SetSecretParameters};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use url::Url;
use uuid::Uuid;

use super::{MAX_VALUE_BYTES, SecretError, SecretOwner, SecretRef, SecretStore};

const PREFIX: &str = "keyvault:";

/// The most bytes of a value kept in one Key Vault secret (the service's
/// limit is 25k bytes).
pub const PART_BYTES: usize = 24_000;

/// The most parts a value of [`MAX_VALUE_BYTES`] takes (a part may end up to
/// 3 bytes short of [`PART_BYTES`] to end on a character boundary).
const MAX_PARTS: usize = MAX_VALUE_BYTES.div_ceil(PART_BYTES - 3);

/// A name `health` reads, expecting 404.
pub const HEALTH_PROBE: &str = "castiel-health-probe";

/// Key Vault's limit on a tag value, in characters.
const TAG_VALUE_MAX: usize = 256;

const TAG_TENANT: &str = "tenantId";
const TAG_KIND: &str = "ownerKind";
const TAG_OWNER: &str = "ownerId";
const TAG_PARTS: &str = "parts";
const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Time to open a connection, and for a whole request, before the SDK's
/// retry policy takes over.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Secrets in one Azure Key Vault.
pub struct KeyVaultSecretStore {
    client: SecretClient,
    vault: String,
}

impl std::fmt::Debug for KeyVaultSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVaultSecretStore")
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

impl KeyVaultSecretStore {
    /// The vault at `url` (`KEYVAULT_URL`), authenticated with the host's
    /// system-assigned managed identity, as the Cosmos store does.
    pub fn connect(url: &Url) -> Result<Self, SecretError> {
        let credential: Arc<dyn TokenCredential> = ManagedIdentityCredential::new(None)
            .map_err(|e| SecretError::Unavailable(format!("managed identity credential: {e}")))?;
        let http = http_client()
            .build()
            .map_err(|_| SecretError::Unavailable("key vault: no HTTP client".into()))?;
        Self::new(url, credential, Arc::new(http))
    }

    /// The vault at `url` with a given credential and HTTP client; production
    /// passes the managed identity and [`http_client`], tests a fixed token
    /// and that client trusting their own certificate.
    pub fn new(
        url: &Url,
        credential: Arc<dyn TokenCredential>,
        http: Arc<dyn HttpClient>,
    ) -> Result<Self, SecretError> {
        // The SDK sends tokens over TLS only; say so at start, not per call.
        if url.scheme() != "https" {
            return Err(SecretError::Unavailable(format!(
                "key vault: {url} is not an https URL"
            )));
        }
        let options = SecretClientOptions {
            client_options: ClientOptions {
                // The SDK's default retries for a minute; a request waiting
                // on a secret gives up after a few seconds instead.
                retry: RetryOptions::exponential(ExponentialRetryOptions {
                    initial_delay: azure_core::time::Duration::milliseconds(100),
                    max_retries: 2,
                    max_total_elapsed: azure_core::time::Duration::seconds(20),
                    max_delay: azure_core::time::Duration::seconds(2),
                }),
                transport: Some(Transport::new(http)),
                ..ClientOptions::default()
            },
            ..SecretClientOptions::default()
        };
        let client = SecretClient::new(url.as_str(), credential, Some(options))
            .map_err(|_| SecretError::Unavailable(format!("key vault: bad vault URL {url}")))?;
        Ok(Self {
            client,
            vault: url.host_str().unwrap_or_default().to_owned(),
        })
    }

    async fn read(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        match self.client.get_secret(name, None).await {
            Ok(rsp) => rsp
                .into_model()
                .map(Some)
                .map_err(|_| SecretError::Unavailable("key vault get: unreadable answer".into())),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(unavailable("get", &e)),
        }
    }

    async fn set(
        &self,
        name: &str,
        value: &str,
        tags: HashMap<String, String>,
    ) -> Result<(), SecretError> {
        let parameters = SetSecretParameters {
            value: Some(value.to_owned()),
            tags: Some(tags),
            content_type: Some(CONTENT_TYPE.to_owned()),
            ..SetSecretParameters::default()
        };
        let body = parameters
            .try_into()
            .map_err(|_| SecretError::Unavailable("key vault set: cannot encode".into()))?;
        self.client
            .set_secret(name, body, None)
            .await
            .map(drop)
            .map_err(|e| unavailable("set", &e))
    }

    async fn remove(&self, name: &str) -> Result<(), SecretError> {
        match self.client.delete_secret(name, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(unavailable("delete", &e)),
        }
    }

    /// Best effort after a failed put: parts nobody will reference.
    async fn forget(&self, names: &[String]) {
        for name in names {
            if let Err(e) = self.remove(name).await {
                tracing::warn!(secret.name = %name, error = %e, "removing an unfinished secret part failed");
            }
        }
    }
}

/// The HTTP client settings of production: timeouts, no redirects, https
/// only. Tests add trust for their own certificate, nothing else.
pub fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
}

/// Describes an SDK failure by operation, status and service error code; a
/// response body is never quoted (a parse error of one could quote a value).
fn unavailable(op: &str, e: &azure_core::Error) -> SecretError {
    let why = match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => format!(
            "{} {}",
            u16::from(*status),
            error_code.as_deref().unwrap_or_default()
        ),
        ErrorKind::Connection | ErrorKind::Io | ErrorKind::Credential => e.to_string(),
        ErrorKind::DataConversion => "unreadable answer".to_owned(),
        _ => "request failed".to_owned(),
    };
    SecretError::Unavailable(format!("key vault {op}: {}", why.trim_end()))
}

/// The name of a new secret for an owner.
fn secret_name(owner: &SecretOwner, random: Uuid) -> String {
    format!(
        "c-{}-{}-{}",
        owner.tenant_id.0.simple(),
        kind_slug(owner.kind),
        random.simple()
    )
}

/// The kind as a name segment: letters and digits, at most 16.
fn kind_slug(kind: &str) -> String {
    let slug: String = kind
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    if slug.is_empty() { "x".into() } else { slug }
}

fn part_name(name: &str, index: usize) -> String {
    format!("{name}-p{index}")
}

/// The secret name a reference names, if it has the shape of one this store
/// writes for the owner's tenant. Anything else names nothing.
fn name_of<'r>(r: &'r SecretRef, owner: &SecretOwner) -> Option<&'r str> {
    let name = r.0.strip_prefix(PREFIX)?;
    let mut pieces = name.strip_prefix("c-")?.split('-');
    let (tenant, kind, random) = (pieces.next()?, pieces.next()?, pieces.next()?);
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = pieces.next().is_none()
        && hex32(tenant)
        && hex32(random)
        && !kind.is_empty()
        && kind.len() <= 16
        && kind.bytes().all(|b| b.is_ascii_alphanumeric())
        && Uuid::try_parse(tenant).ok() == Some(owner.tenant_id.0);
    ok.then_some(name)
}

/// An owner id as kept in a tag: itself when it fits, else its SHA-256.
fn owner_tag(id: &str) -> String {
    if id.chars().count() <= TAG_VALUE_MAX && !id.starts_with("sha256:") {
        return id.to_owned();
    }
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn tags(owner: &SecretOwner, parts: Option<usize>) -> HashMap<String, String> {
    let mut tags = HashMap::from([
        (TAG_TENANT.to_owned(), owner.tenant_id.to_string()),
        (TAG_KIND.to_owned(), owner.kind.to_owned()),
        (TAG_OWNER.to_owned(), owner_tag(&owner.id)),
    ]);
    if let Some(n) = parts {
        tags.insert(TAG_PARTS.to_owned(), n.to_string());
    }
    tags
}

/// Whether tags name this owner: another tenant is `NotFound` (a tenant sees
/// nothing of another), another owner of the tenant `Forbidden`.
fn check_owner(secret: &Secret, owner: &SecretOwner) -> Result<(), SecretError> {
    let tag = |k: &str| secret.tags.as_ref().and_then(|t| t.get(k));
    if tag(TAG_TENANT) != Some(&owner.tenant_id.to_string()) {
        return Err(SecretError::NotFound);
    }
    if tag(TAG_KIND).map(String::as_str) != Some(owner.kind)
        || tag(TAG_OWNER) != Some(&owner_tag(&owner.id))
    {
        return Err(SecretError::Forbidden);
    }
    Ok(())
}

/// How many secrets hold a value, from its head's `parts` tag.
fn parts_of(head: &Secret) -> Result<usize, SecretError> {
    match head.tags.as_ref().and_then(|t| t.get(TAG_PARTS)) {
        None => Ok(1),
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| (2..=MAX_PARTS).contains(n))
            .ok_or(SecretError::Corrupt),
    }
}

/// Splits a value at character boundaries into pieces of at most `max` bytes
/// (at least one piece, maybe empty).
fn split(value: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

#[async_trait]
impl SecretStore for KeyVaultSecretStore {
    async fn put(
        &self,
        owner: &SecretOwner,
        value: &SecretString,
    ) -> Result<SecretRef, SecretError> {
        let value = value.expose_secret();
        super::check_size(value)?;
        let name = secret_name(owner, Uuid::new_v4());
        let pieces = split(value, PART_BYTES);
        let mut written = Vec::new();
        for (index, piece) in pieces.iter().enumerate().skip(1) {
            let part = part_name(&name, index);
            if let Err(e) = self.set(&part, piece, tags(owner, None)).await {
                self.forget(&written).await;
                return Err(e);
            }
            written.push(part);
        }
        let count = (pieces.len() > 1).then_some(pieces.len());
        let first = pieces.first().copied().unwrap_or_default();
        if let Err(e) = self.set(&name, first, tags(owner, count)).await {
            written.push(name);
            self.forget(&written).await;
            return Err(e);
        }
        Ok(SecretRef(format!("{PREFIX}{name}")))
    }

    async fn get(&self, owner: &SecretOwner, r: &SecretRef) -> Result<SecretString, SecretError> {
        let name = name_of(r, owner).ok_or(SecretError::NotFound)?;
        let head = self.read(name).await?.ok_or(SecretError::NotFound)?;
        check_owner(&head, owner)?;
        let parts = parts_of(&head)?;
        let mut value = head.value.ok_or(SecretError::Corrupt)?;
        for index in 1..parts {
            let part = self
                .read(&part_name(name, index))
                .await?
                .ok_or(SecretError::Corrupt)?;
            check_owner(&part, owner).map_err(|_| SecretError::Corrupt)?;
            value.push_str(part.value.as_deref().ok_or(SecretError::Corrupt)?);
        }
        Ok(SecretString::from(value))
    }

    async fn delete(&self, owner: &SecretOwner, r: &SecretRef) -> Result<(), SecretError> {
        let Some(name) = name_of(r, owner) else {
            return Ok(());
        };
        let Some(head) = self.read(name).await? else {
            return Ok(());
        };
        match check_owner(&head, owner) {
            Ok(()) => {}
            Err(SecretError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        }
        // Parts first, the head last: a delete that fails half-way leaves the
        // head, so the next delete finds and finishes it.
        let parts = parts_of(&head).unwrap_or(MAX_PARTS);
        drop(head);
        for index in 1..parts {
            self.remove(&part_name(name, index)).await?;
        }
        self.remove(name).await
    }

    async fn health(&self) -> Result<(), SecretError> {
        self.read(HEALTH_PROBE).await.map(drop)
    }

    fn name(&self) -> &'static str {
        "keyvault"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenancy::TenantId;

    fn owner(id: &str) -> SecretOwner {
        SecretOwner {
            tenant_id: TenantId(Uuid::new_v4()),
            kind: "webhook",
            id: id.to_owned(),
        }
    }

    #[test]
    fn names_are_valid_key_vault_names_and_parse_back() {
        let o = owner("w1");
        let name = secret_name(&o, Uuid::new_v4());
        assert!(name.len() <= 127 - 4, "room for a part suffix");
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        let r = SecretRef(format!("{PREFIX}{name}"));
        assert_eq!(name_of(&r, &o), Some(name.as_str()));
        assert_eq!(name_of(&r, &owner("w1")), None, "another tenant");
        let part = SecretRef(format!("{PREFIX}{}", part_name(&name, 1)));
        assert_eq!(name_of(&part, &o), None, "a part is not a reference");
    }

    #[test]
    fn splits_on_character_boundaries() {
        let value = "é".repeat(20_000);
        let pieces = split(&value, PART_BYTES);
        assert!(pieces.iter().all(|p| p.len() <= PART_BYTES));
        assert_eq!(pieces.concat(), value);
        assert_eq!(split("", PART_BYTES), vec![""]);
        let max = "\u{1F600}".repeat(MAX_VALUE_BYTES / 4);
        assert!(split(&max, PART_BYTES).len() <= MAX_PARTS);
    }

    #[test]
    fn long_owner_ids_are_hashed_into_a_tag() {
        assert_eq!(owner_tag("w1.2"), "w1.2");
        let long = "x".repeat(300);
        let tag = owner_tag(&long);
        assert!(tag.starts_with("sha256:") && tag.len() <= TAG_VALUE_MAX);
        assert_ne!(owner_tag(&tag), tag, "a hash-looking id is hashed too");
    }
}
