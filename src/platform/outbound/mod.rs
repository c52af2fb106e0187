//! The one client for every tenant-directed outbound call (webhooks, custom
//! REST APIs, instance and token URLs), guarded against SSRF (SPEC §8).
//!
//! - URLs must be `https` (plain `http` only to targets in `OUTBOUND_ALLOWED_CIDRS`),
//!   without credentials.
//! - The host is resolved once, every address is checked against the blocked
//!   ranges ([`ranges::blocked_reason`]) unless listed in `OUTBOUND_ALLOWED_CIDRS`,
//!   and the connection goes to the checked addresses: the check runs inside the
//!   HTTP client's resolver, so there is no second lookup to rebind.
//! - IP literals in any spelling (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`)
//!   are normalised by the URL parser and checked the same way.
//! - Redirects are never followed; system proxies are ignored.

pub mod ranges;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an outbound call was refused or failed; the text is safe to show a tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Not an absolute http(s) URL with a host, or it carries credentials.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// `http` to a target that is not in `OUTBOUND_ALLOWED_CIDRS`.
    #[error("the URL must use https")]
    SchemeNotAllowed,
    /// The target is, or resolves to, a refused address.
    #[error("{host} is not an allowed target: it is, or resolves to, a {reason} address")]
    Blocked {
        /// The URL's host.
        host: String,
        /// The range it falls in.
        reason: &'static str,
    },
    /// The host name does not resolve.
    #[error("{0} does not resolve")]
    Resolve(String),
    /// No answer in time.
    #[error("the request timed out")]
    Timeout,
    /// The connection failed.
    #[error("connection failed: {0}")]
    Connect(String),
    /// Any other HTTP failure.
    #[error("request failed: {0}")]
    Http(String),
}

/// Resolves host names (pluggable so tests can map names to any address).
#[async_trait]
pub trait HostResolver: Send + Sync + 'static {
    /// All addresses of `host`, with `port` set.
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait]
impl HostResolver for SystemResolver {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Which targets are allowed.
#[derive(Clone)]
pub struct OutboundPolicy {
    allowed: Arc<Vec<IpNet>>,
    resolver: Arc<dyn HostResolver>,
}

impl std::fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl OutboundPolicy {
    /// A policy with exceptions (`OUTBOUND_ALLOWED_CIDRS`) and the system resolver.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self::with_resolver(allowed, Arc::new(SystemResolver))
    }

    /// A policy with a given resolver (tests).
    pub fn with_resolver(allowed: Vec<IpNet>, resolver: Arc<dyn HostResolver>) -> Self {
        Self {
            allowed: Arc::new(allowed),
            resolver,
        }
    }

    /// Whether an address is listed as an exception.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let plain = canonical(ip);
        self.allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&plain))
    }

    /// Checks one address: allowed if listed or publicly routable.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        if self.is_allowed(ip) {
            return Ok(());
        }
        match ranges::blocked_reason(ip) {
            Some(reason) => Err(OutboundError::Blocked {
                host: host.to_owned(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Checks a URL's form without resolving it: scheme, host, no credentials.
    pub fn check_syntax(&self, url: &Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "https" | "http") {
            return Err(OutboundError::InvalidUrl("the scheme must be https".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::InvalidUrl(
                "credentials in the URL are not allowed".into(),
            ));
        }
        if url.host().is_none() {
            return Err(OutboundError::InvalidUrl("the URL has no host".into()));
        }
        Ok(())
    }

    /// Resolves the URL's host and checks every address and the scheme rule;
    /// returns the checked addresses.
    pub async fn check_url(&self, url: &Url) -> Result<Vec<SocketAddr>, OutboundError> {
        self.check_syntax(url)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let host_text = url.host_str().unwrap_or_default().to_owned();
        let addrs = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => self.resolve(name, port).await?,
            None => return Err(OutboundError::InvalidUrl("the URL has no host".into())),
        };
        for a in &addrs {
            self.check_ip(&host_text, a.ip())?;
        }
        if url.scheme() == "http" && !addrs.iter().all(|a| self.is_allowed(a.ip())) {
            return Err(OutboundError::SchemeNotAllowed);
        }
        Ok(addrs)
    }

    /// The one policy for a URL to be stored (an instance URL, a custom
    /// API's base URL, a provider's OAuth URLs, a webhook URL): its form
    /// ([`parse_stored`]) and its target ([`Self::check_for_storage`]).
    /// Returns the URL to store, normalised.
    pub async fn parse_for_storage(&self, raw: &str) -> Result<Url, OutboundError> {
        let url = parse_stored(raw)?;
        self.check_for_storage(&url).await?;
        Ok(url)
    }

    /// The create-time check of a URL to be stored: like [`Self::check_url`],
    /// but a host that does not resolve yet is accepted over https (it is
    /// checked again, strictly, on every call).
    pub async fn check_for_storage(&self, url: &Url) -> Result<(), OutboundError> {
        match self.check_url(url).await {
            Ok(_) => Ok(()),
            Err(OutboundError::Resolve(_)) if url.scheme() == "https" => Ok(()),
            Err(OutboundError::Resolve(_)) => Err(OutboundError::SchemeNotAllowed),
            Err(e) => Err(e),
        }
    }

    async fn resolve(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let name = name.trim_end_matches('.');
        let addrs = self
            .resolver
            .lookup(name, port)
            .await
            .map_err(|_| OutboundError::Resolve(name.to_owned()))?;
        if addrs.is_empty() {
            return Err(OutboundError::Resolve(name.to_owned()));
        }
        Ok(addrs)
    }
}

/// The longest URL stored.
pub const MAX_STORED_URL: usize = 2048;

/// The form of a URL to be stored, without resolving it: written out in
/// full (`https://host/…`: a parser that repairs `https:host` or drops a
/// line break would store something other than what was sent), at most
/// [`MAX_STORED_URL`] characters, no white space or control characters,
/// `http(s)` with a host, no credentials, no fragment, not port 0. Returns
/// it normalised (lower-case scheme and host, IP literals in one spelling).
pub fn parse_stored(raw: &str) -> Result<Url, OutboundError> {
    let bad = |m: &str| OutboundError::InvalidUrl(m.to_owned());
    if raw.len() > MAX_STORED_URL {
        return Err(bad("longer than 2048 characters"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("it contains white space or control characters"));
    }
    let scheme_end = raw.find("://").unwrap_or(0);
    if !matches!(
        raw[..scheme_end].to_ascii_lowercase().as_str(),
        "https" | "http"
    ) {
        return Err(bad("it must start with https://"));
    }
    let url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if url.fragment().is_some() {
        return Err(bad("a fragment (#…) is not allowed"));
    }
    if url.port() == Some(0) {
        return Err(bad("port 0 is not a port"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL are not allowed"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    Ok(url)
}

/// IPv4-mapped IPv6 addresses compare as their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reqwest resolver that only ever hands out checked addresses.
struct GuardedResolver {
    policy: OutboundPolicy,
    /// Plain-http client: every address must be an exception.
    allowed_only: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(OutboundError);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let allowed_only = self.allowed_only;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let refuse = |e: OutboundError| -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(Refused(e))
            };
            let addrs = policy.resolve(&host, 0).await.map_err(refuse)?;
            for a in &addrs {
                policy.check_ip(&host, a.ip()).map_err(refuse)?;
                if allowed_only && !policy.is_allowed(a.ip()) {
                    return Err(refuse(OutboundError::SchemeNotAllowed));
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The `User-Agent` of every outbound request (webhook deliveries included).
pub const USER_AGENT: &str = concat!("castiel-integrations/", env!("CARGO_PKG_VERSION"));

/// The SSRF-guarded HTTP client.
#[derive(Debug, Clone)]
pub struct OutboundClient {
    policy: OutboundPolicy,
    https: reqwest::Client,
    http: reqwest::Client,
}

fn build_client(policy: &OutboundPolicy, allowed_only: bool, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(USER_AGENT)
        .dns_resolver(Arc::new(GuardedResolver {
            policy: policy.clone(),
            allowed_only,
        }))
        .build()
        .unwrap_or_else(|e| unreachable!("a client with only these options always builds: {e}"))
}

impl OutboundClient {
    /// A client enforcing `policy`, with a per-request timeout.
    pub fn new(policy: OutboundPolicy, timeout: Duration) -> Self {
        let https = build_client(&policy, false, timeout);
        let http = build_client(&policy, true, timeout);
        Self {
            policy,
            https,
            http,
        }
    }

    /// The policy (for create-time checks).
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// A request builder; send it with [`OutboundClient::execute`].
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.client_for(&url).request(method, url)
    }

    fn client_for(&self, url: &Url) -> &reqwest::Client {
        if url.scheme() == "http" {
            &self.http
        } else {
            &self.https
        }
    }

    /// Sends a request after checking its target; never follows redirects.
    pub async fn execute(&self, req: reqwest::Request) -> Result<reqwest::Response, OutboundError> {
        let url = req.url().clone();
        self.policy.check_syntax(&url)?;
        // IP literals never reach the resolver: check them here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            self.policy
                .check_ip(url.host_str().unwrap_or_default(), ip)?;
            if url.scheme() == "http" && !self.policy.is_allowed(ip) {
                return Err(OutboundError::SchemeNotAllowed);
            }
        }
        self.client_for(&url).execute(req).await.map_err(map_error)
    }
}

fn map_error(e: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(Refused(inner)) = s.downcast_ref::<Refused>() {
            return inner.clone();
        }
        source = s.source();
    }
    if e.is_timeout() {
        OutboundError::Timeout
    } else if e.is_connect() {
        OutboundError::Connect("could not connect to the target".into())
    } else {
        OutboundError::Http(e.without_url().to_string())
    }
}
