//! Reading one setting's text into its typed value, naming the key when
//! the value is bad.

use ipnet::IpNet;
use url::Url;

use super::{ConfigError, bad};

pub(super) fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub(super) fn list(v: Option<String>) -> Vec<String> {
    non_empty(v)
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn number(
    key: &'static str,
    v: Option<String>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let Some(s) = non_empty(v) else {
        return Ok(default);
    };
    let n: u32 = s
        .parse()
        .map_err(|_| bad(key, format!("{s:?} is not a whole number")))?;
    if n < min || n > max {
        return Err(bad(key, format!("{n} is outside {min}..={max}")));
    }
    Ok(n)
}

pub(super) fn url(key: &'static str, v: Option<String>) -> Result<Option<Url>, ConfigError> {
    non_empty(v)
        .map(|s| {
            Url::parse(&s)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or_else(|| bad(key, format!("{s:?} is not an http(s) URL")))
        })
        .transpose()
}

/// Parses `10.0.0.0/8` or a bare address (as a /32 or /128).
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// `SALESFORCE_API_VERSION`: `v` and a version such as `60.0`.
pub(super) fn api_version(raw: Option<String>) -> Result<String, ConfigError> {
    let v = raw
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "v60.0".into());
    let ok = v.strip_prefix('v').is_some_and(|n| {
        let mut parts = n.split('.');
        let major = parts.next().is_some_and(|m| {
            !m.is_empty() && m.len() <= 3 && m.bytes().all(|b| b.is_ascii_digit())
        });
        let minor = parts.next().is_some_and(|m| m == "0");
        major && minor && parts.next().is_none()
    });
    if ok {
        Ok(v)
    } else {
        Err(ConfigError {
            key: "SALESFORCE_API_VERSION",
            message: "must look like v60.0".into(),
        })
    }
}
