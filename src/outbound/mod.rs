//! TEMPORARY STUB of the lead's SSRF-guarded outbound client (replaced on merge
//! with `main`): same interface, no address checks beyond the scheme.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

/// Why an outbound call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Not a usable URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// Not https.
    #[error("only https URLs are allowed")]
    SchemeNotAllowed,
    /// A blocked address.
    #[error("the target address {addr} is not allowed")]
    Blocked {
        /// The address.
        addr: IpAddr,
    },
    /// DNS failed.
    #[error("the host could not be resolved")]
    Resolve,
    /// Timed out.
    #[error("the request timed out")]
    Timeout,
    /// Could not connect.
    #[error("could not connect: {0}")]
    Connect(String),
    /// Other HTTP failure.
    #[error("HTTP error: {0}")]
    Http(String),
}

/// Which targets are allowed.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    allowed: Vec<IpNet>,
}

impl OutboundPolicy {
    /// A policy with exceptions.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Checks a URL (stub: syntax and scheme only).
    pub async fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        let host = url
            .host_str()
            .ok_or_else(|| OutboundError::InvalidUrl("no host".into()))?;
        let allowed = host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|a| self.allowed.iter().any(|n| n.contains(&a)));
        match url.scheme() {
            "https" => Ok(()),
            "http" if allowed => Ok(()),
            _ => Err(OutboundError::SchemeNotAllowed),
        }
    }
}

/// The one client for tenant-directed calls.
#[derive(Debug, Clone)]
pub struct OutboundClient {
    policy: OutboundPolicy,
    client: reqwest::Client,
}

impl OutboundClient {
    /// A client with a default timeout.
    pub fn new(policy: OutboundPolicy, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self { policy, client }
    }

    /// The policy.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Starts a request.
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends a request after checking its URL.
    pub async fn execute(&self, req: reqwest::Request) -> Result<reqwest::Response, OutboundError> {
        self.policy.check_url(req.url()).await?;
        self.client.execute(req).await.map_err(|e| {
            if e.is_timeout() {
                OutboundError::Timeout
            } else if e.is_connect() {
                OutboundError::Connect(e.to_string())
            } else {
                OutboundError::Http(e.to_string())
            }
        })
    }
}
