//! What the clients of Castiel's own services share (secret-management,
//! shard-manager): one way to check a base URL, build the HTTP client and
//! address a route below the base.

use std::time::Duration;

use url::Url;

/// How long a call to a Castiel service may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The HTTP client for the service at `base` (no redirects followed); the
/// error names `service` and never a credential.
pub fn client(service: &str, base: &Url) -> Result<reqwest::Client, String> {
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return Err(format!("{service}: {base} is not an http(s) base URL"));
    }
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| format!("{service}: no HTTP client"))
}

/// `{base}/<segments>`, each segment encoded as one path segment.
pub fn route(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}
