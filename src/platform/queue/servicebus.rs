//! Azure Service Bus as the job queue, over its REST API on our own reqwest
//! (`azure_messaging_servicebus` is unofficial, abandoned and hard-codes its
//! hosts: see `reference/dependencies.md` §3).
//!
//! Sending is `POST {endpoint}/{queue}/messages` with a `BrokerProperties`
//! header carrying `MessageId` and, for delayed jobs,
//! `ScheduledEnqueueTimeUtc`. Authorization is a SAS token computed from a
//! connection string, or a Microsoft Entra token (managed identity) for
//! `https://servicebus.azure.net/.default`. Receiving is the Functions
//! host's Service Bus trigger, which runs the app's job dispatch.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;
use url::Url;

use super::JobMessage;
use super::{JobQueue, QueueError};
use crate::config::QueueConfig;

/// Lifetime of a SAS token.
const SAS_LIFETIME_SECONDS: i64 = 3600;
/// The Entra scope of Service Bus.
pub const SCOPE: &str = "https://servicebus.azure.net/.default";

/// How requests are authorised.
enum Auth {
    /// Shared access key from a connection string.
    Sas { key_name: String, key: SecretString },
    /// Microsoft Entra token (managed identity).
    Entra(Arc<dyn TokenCredential>),
}

/// A parsed `Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…` string.
#[derive(Debug)]
pub struct ConnectionString {
    /// `https://{host}/` of the namespace.
    pub endpoint: Url,
    /// Policy name.
    pub key_name: String,
    /// Policy key.
    pub key: SecretString,
}

impl ConnectionString {
    /// Parses a Service Bus connection string.
    pub fn parse(s: &str) -> Result<Self, QueueError> {
        let (mut endpoint, mut key_name, mut key) = (None, None, None);
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| QueueError::Config("connection string part without `=`".into()))?;
            match k.to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(v.to_owned()),
                "sharedaccesskeyname" => key_name = Some(v.to_owned()),
                "sharedaccesskey" => key = Some(v.to_owned()),
                _ => {}
            }
        }
        let endpoint = endpoint
            .ok_or_else(|| QueueError::Config("connection string has no Endpoint".into()))?;
        let host = Url::parse(&endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .ok_or_else(|| QueueError::Config("connection string Endpoint is not a URL".into()))?;
        Ok(Self {
            endpoint: Url::parse(&format!("https://{host}/"))
                .map_err(|e| QueueError::Config(e.to_string()))?,
            key_name: key_name.ok_or_else(|| {
                QueueError::Config("connection string has no SharedAccessKeyName".into())
            })?,
            key: SecretString::from(key.ok_or_else(|| {
                QueueError::Config("connection string has no SharedAccessKey".into())
            })?),
        })
    }
}

/// `SharedAccessSignature sr=…&sig=…&se=…&skn=…` for a resource URI, per
/// Microsoft's documented algorithm: HMAC-SHA256 (key = the key's UTF-8
/// bytes) over `urlencode(uri) + "\n" + expiry`, base64, url-encoded.
pub fn sas_token(resource_uri: &str, key_name: &str, key: &str, expiry: i64) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let sr = encode(resource_uri);
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{sr}\n{expiry}").as_bytes());
    let sig = encode(&STANDARD.encode(mac.finalize().into_bytes()));
    format!("SharedAccessSignature sr={sr}&sig={sig}&se={expiry}&skn={key_name}")
}

/// `ScheduledEnqueueTimeUtc` in the RFC 1123 form the REST API documents.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The Service Bus sender.
pub struct ServiceBusQueue {
    endpoint: Url,
    auth: Auth,
    http: reqwest::Client,
}

impl std::fmt::Debug for ServiceBusQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBusQueue")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl ServiceBusQueue {
    /// A sender from `QUEUE=servicebus` settings.
    pub fn from_config(config: &QueueConfig) -> Result<Self, QueueError> {
        let QueueConfig::ServiceBus {
            namespace,
            connection,
            endpoint,
        } = config
        else {
            return Err(QueueError::Config("QUEUE is not servicebus".into()));
        };
        let (default_endpoint, auth) = match (connection, namespace) {
            (Some(c), _) => {
                let cs = ConnectionString::parse(c.expose_secret())?;
                (
                    cs.endpoint,
                    Auth::Sas {
                        key_name: cs.key_name,
                        key: cs.key,
                    },
                )
            }
            (None, Some(ns)) => {
                let cred = azure_identity::ManagedIdentityCredential::new(None)
                    .map_err(|e| QueueError::Config(format!("managed identity: {e}")))?;
                let url = Url::parse(&format!("https://{ns}.servicebus.windows.net/"))
                    .map_err(|e| QueueError::Config(format!("SERVICEBUS_NAMESPACE: {e}")))?;
                (url, Auth::Entra(cred))
            }
            (None, None) => {
                return Err(QueueError::Config(
                    "SERVICEBUS_CONNECTION or SERVICEBUS_NAMESPACE is required".into(),
                ));
            }
        };
        let mut endpoint = endpoint.clone().unwrap_or(default_endpoint);
        if !endpoint.path().ends_with('/') {
            let path = format!("{}/", endpoint.path());
            endpoint.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| QueueError::Config(e.to_string()))?;
        Ok(Self {
            endpoint,
            auth,
            http,
        })
    }

    async fn authorization(&self, resource: &str) -> Result<String, QueueError> {
        match &self.auth {
            Auth::Sas { key_name, key } => {
                let expiry = Utc::now().timestamp() + SAS_LIFETIME_SECONDS;
                Ok(sas_token(resource, key_name, key.expose_secret(), expiry))
            }
            Auth::Entra(cred) => {
                let token = cred
                    .get_token(&[SCOPE], None)
                    .await
                    .map_err(|e| QueueError::Unavailable(format!("managed identity token: {e}")))?;
                Ok(format!("Bearer {}", token.token.secret()))
            }
        }
    }
}

#[async_trait]
impl JobQueue for ServiceBusQueue {
    async fn send(
        &self,
        message: &JobMessage,
        not_before: Option<DateTime<Utc>>,
        message_id: &str,
    ) -> Result<(), QueueError> {
        let entity = self
            .endpoint
            .join(message.queue())
            .map_err(|e| QueueError::Config(e.to_string()))?;
        let url = self
            .endpoint
            .join(&format!("{}/messages", message.queue()))
            .map_err(|e| QueueError::Config(e.to_string()))?;
        let mut props = serde_json::json!({ "MessageId": message_id });
        if let Some(t) = not_before.filter(|t| *t > Utc::now()) {
            props["ScheduledEnqueueTimeUtc"] = http_date(t).into();
        }
        let body = serde_json::to_vec(message).map_err(|e| QueueError::Encode(e.to_string()))?;
        let auth = self.authorization(entity.as_str()).await?;
        let res = self
            .http
            .post(url)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .header("brokerproperties", props.to_string())
            .body(body)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(format!("Service Bus send: {e}")))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(QueueError::Unavailable(format!(
                "Service Bus answered {} to a send",
                res.status().as_u16()
            )))
        }
    }

    async fn health(&self) -> Result<(), QueueError> {
        // Sends are the only operation; a token proves the credentials work.
        self.authorization(self.endpoint.as_str()).await.map(|_| ())
    }

    fn name(&self) -> &'static str {
        "servicebus"
    }
}
