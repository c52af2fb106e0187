//! The URLs a custom API is called at: a described path below the base URL
//! (with `{id}` substituted, percent-encoded), or a next-page URL the API
//! handed out, which must stay on the base URL's origin.

use url::Url;

use super::super::{AdapterError, AdapterResult};

/// `path` (from the description, possibly with a `?query`) below `base`.
/// The result stays below the base URL's path: a path that climbs out of it
/// (dot segments, percent-encoded or not) is refused.
pub fn below(base: &Url, path: &str) -> AdapterResult<Url> {
    let prefix = base.path().trim_end_matches('/');
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut url = base.clone();
    url.set_path(&format!("{prefix}{path}"));
    if !query.is_empty() {
        let extra: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        url.query_pairs_mut().extend_pairs(extra);
    }
    let inside =
        url.path() == prefix || url.path().starts_with(&format!("{prefix}/")) || prefix.is_empty();
    if url.origin() != base.origin() || !inside {
        return Err(AdapterError::Blocked(format!(
            "the path {path} leaves the API's base URL"
        )));
    }
    Ok(url)
}

/// A described path with `{id}` replaced by `id`, percent-encoded as one
/// path segment. Ids that would make a dot segment (`.`, `..`) or are empty
/// cannot be put in a path.
pub fn with_id(path: &str, id: &str) -> AdapterResult<String> {
    if id.is_empty() || id.chars().all(|c| c == '.') {
        return Err(AdapterError::Rejected(format!(
            "the id {id:?} cannot be sent in a URL path"
        )));
    }
    Ok(path.replace("{id}", &encode_segment(id)))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A next-page URL from an answer (absolute, or relative to the page's
/// URL), refused unless it is on the base URL's origin.
pub fn next_page(base: &Url, page: &Url, raw: &str) -> AdapterResult<Url> {
    let url = page
        .join(raw)
        .map_err(|e| AdapterError::BadAnswer(format!("the next page's URL is not a URL: {e}")))?;
    same_origin(base, &url)?;
    Ok(url)
}

/// Refuses a URL that is not on the base URL's origin (scheme, host, port).
pub fn same_origin(base: &Url, url: &Url) -> AdapterResult<()> {
    if url.origin() != base.origin() {
        return Err(AdapterError::Blocked(format!(
            "the next page is on {}, not on the API's origin {}",
            url.origin().ascii_serialization(),
            base.origin().ascii_serialization()
        )));
    }
    Ok(())
}

/// `url` with query parameter `name` removed (every occurrence).
pub fn without_param(url: &Url, name: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    out
}

/// `url` with query parameter `name` set to `value` (replacing any).
pub fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let mut out = without_param(url, name);
    out.query_pairs_mut().append_pair(name, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.example.com/v2").expect("url")
    }

    #[test]
    fn paths_go_below_the_base() {
        let u = below(&base(), "/deals?status=open").expect("ok");
        assert_eq!(u.as_str(), "https://api.example.com/v2/deals?status=open");
        let slash = Url::parse("https://api.example.com/v2/").expect("url");
        assert_eq!(
            below(&slash, "/x").expect("ok").as_str(),
            "https://api.example.com/v2/x"
        );
        assert!(below(&base(), "/%2e%2e/admin").is_err());
        assert!(below(&base(), "/a/%2E%2E/%2e%2e/admin").is_err());
    }

    #[test]
    fn ids_are_one_encoded_segment() {
        let p = with_id("/deals/{id}", "a/b c?d#é%").expect("ok");
        assert_eq!(p, "/deals/a%2Fb%20c%3Fd%23%C3%A9%25");
        let u = below(&base(), &p).expect("ok");
        assert_eq!(
            u.as_str(),
            "https://api.example.com/v2/deals/a%2Fb%20c%3Fd%23%C3%A9%25"
        );
        assert!(with_id("/deals/{id}", "..").is_err());
        assert!(with_id("/deals/{id}", "").is_err());
    }

    #[test]
    fn next_pages_stay_on_the_origin() {
        let page = below(&base(), "/deals").expect("ok");
        assert_eq!(
            next_page(&base(), &page, "/v2/deals?page=2")
                .expect("ok")
                .as_str(),
            "https://api.example.com/v2/deals?page=2"
        );
        for foreign in [
            "https://evil.example.com/v2/deals",
            "http://api.example.com/v2/deals",
            "https://api.example.com:8443/v2/deals",
            "//evil.example.com/x",
        ] {
            assert!(
                matches!(
                    next_page(&base(), &page, foreign),
                    Err(AdapterError::Blocked(_))
                ),
                "{foreign}"
            );
        }
    }

    #[test]
    fn query_parameters_are_replaced_and_removed() {
        let u = Url::parse("https://a.example/x?key=1&page=2&key=3").expect("url");
        assert_eq!(
            without_param(&u, "key").as_str(),
            "https://a.example/x?page=2"
        );
        assert_eq!(
            with_param(&u, "key", "s").as_str(),
            "https://a.example/x?page=2&key=s"
        );
    }
}
