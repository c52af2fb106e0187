//! The six ways a custom API pages (`pagination.type`): what to send for a
//! position, and where the next page is after an answer.
//!
//! - `none`: one call returns everything.
//! - `page`: a page number (`pageParam`, from `startPage`, default 1) and
//!   optionally a size (`sizeParam` = `pageSize`); the listing ends at an
//!   empty page, or at a short one when `pageSize` is known.
//! - `offset`: `offsetParam` and `limitParam` = `pageSize`; ends at an
//!   empty or short page.
//! - `cursor`: the API's cursor at `cursorPointer` is sent back in
//!   `cursorParam`; ends when it is absent, null, empty or repeats.
//! - `next_url`: the next page's URL at `nextUrlPointer`; `link_header`: the
//!   RFC 8288 `Link` header's `rel="next"`. Both end when there is none,
//!   and must stay on the base URL's origin. A next URL is called as the
//!   API wrote it (its filters and the incremental parameter are the API's
//!   to carry over), only the API key of `api_key_query` is set again.

use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;
use url::Url;

use super::super::{AdapterError, AdapterResult};
use super::call::Answer;
use super::cursor::{Listing, Position, rfc3339};
use super::urls;
use crate::features::integrations::custom_api::{CustomAuth, CustomAuthType, ListCall, Pagination};

/// Whether a stored position belongs to this kind of pagination (the
/// description may have changed since it was stored).
pub fn fits(p: &Pagination, at: &Position) -> bool {
    match at {
        Position::First => true,
        Position::Page { .. } => matches!(p, Pagination::Page { .. }),
        Position::Offset { .. } => matches!(p, Pagination::Offset { .. }),
        Position::Cursor { .. } => matches!(p, Pagination::Cursor { .. }),
        Position::Url { .. } => matches!(p, Pagination::NextUrl { .. } | Pagination::LinkHeader),
    }
}

fn start_page(p: &Pagination) -> u64 {
    match p {
        Pagination::Page { start_page, .. } => u64::from(start_page.unwrap_or(1)),
        _ => 1,
    }
}

/// The URL of the page at `listing.at` (without the credential).
pub fn page_url(base: &Url, list: &ListCall, listing: &Listing) -> AdapterResult<Url> {
    if let Position::Url { url } = &listing.at {
        let url = Url::parse(url)
            .map_err(|e| AdapterError::BadAnswer(format!("a stored next-page URL is bad: {e}")))?;
        urls::same_origin(base, &url)?;
        return Ok(url);
    }
    let mut url = urls::below(base, &list.path)?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in list.query.iter().flatten() {
        match value {
            Value::Null => {}
            Value::String(s) => pairs.push((name.clone(), s.clone())),
            Value::Array(items) => pairs.extend(items.iter().map(|i| {
                (
                    name.clone(),
                    i.as_str().map_or_else(|| i.to_string(), str::to_owned),
                )
            })),
            other => pairs.push((name.clone(), other.to_string())),
        }
    }
    if let (Some(param), Some(since)) = (&list.incremental_param, listing.since) {
        pairs.push((param.clone(), rfc3339(since)));
    }
    match (&list.pagination, &listing.at) {
        (
            p @ Pagination::Page {
                page_param,
                size_param,
                page_size,
                ..
            },
            at,
        ) => {
            let page = match at {
                Position::Page { page } => *page,
                _ => start_page(p),
            };
            pairs.push((page_param.clone(), page.to_string()));
            if let (Some(sp), Some(n)) = (size_param, page_size) {
                pairs.push((sp.clone(), n.to_string()));
            }
        }
        (
            Pagination::Offset {
                offset_param,
                limit_param,
                page_size,
            },
            at,
        ) => {
            let offset = match at {
                Position::Offset { offset } => *offset,
                _ => 0,
            };
            pairs.push((offset_param.clone(), offset.to_string()));
            pairs.push((limit_param.clone(), page_size.to_string()));
        }
        (Pagination::Cursor { cursor_param, .. }, Position::Cursor { cursor }) => {
            pairs.push((cursor_param.clone(), cursor.clone()));
        }
        _ => {}
    }
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(url)
}

/// Where the page after `at` is, given its answer and how many records it
/// held; `None` when the listing has ended.
pub fn next(
    base: &Url,
    list: &ListCall,
    auth: &CustomAuth,
    at: &Position,
    answer: &Answer,
    count: usize,
) -> AdapterResult<Option<Position>> {
    let p = &list.pagination;
    Ok(match p {
        Pagination::None => None,
        Pagination::Page { page_size, .. } => {
            let short = page_size.is_some_and(|n| count < n as usize);
            let current = match at {
                Position::Page { page } => *page,
                _ => start_page(p),
            };
            (count > 0 && !short).then(|| Position::Page { page: current + 1 })
        }
        Pagination::Offset { page_size, .. } => {
            let current = match at {
                Position::Offset { offset } => *offset,
                _ => 0,
            };
            (count > 0 && count >= *page_size as usize).then(|| Position::Offset {
                offset: current + count as u64,
            })
        }
        Pagination::Cursor { cursor_pointer, .. } => {
            let cursor = match answer.body.pointer(cursor_pointer) {
                None | Some(Value::Null | Value::Bool(false)) => None,
                Some(Value::String(s)) => (!s.is_empty()).then(|| s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    return Err(AdapterError::BadAnswer(format!(
                        "the cursor at {cursor_pointer:?} is not a string or a number"
                    )));
                }
            };
            cursor
                .filter(|c| !matches!(at, Position::Cursor { cursor } if cursor == c))
                .map(|cursor| Position::Cursor { cursor })
        }
        Pagination::NextUrl { next_url_pointer } => {
            let raw = match answer.body.pointer(next_url_pointer) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => (!s.is_empty()).then_some(s.as_str()),
                Some(_) => {
                    return Err(AdapterError::BadAnswer(format!(
                        "the next page's URL at {next_url_pointer:?} is not text"
                    )));
                }
            };
            raw.map(|r| url_position(base, auth, answer, r))
                .transpose()?
                .flatten()
        }
        Pagination::LinkHeader => link_next(&answer.headers)
            .map(|r| url_position(base, auth, answer, &r))
            .transpose()?
            .flatten(),
    })
}

/// A next-page URL as a position: checked for the origin, the API key of
/// `api_key_query` removed (it is added again on every call, and never
/// stored), `None` when it is the page just read.
fn url_position(
    base: &Url,
    auth: &CustomAuth,
    answer: &Answer,
    raw: &str,
) -> AdapterResult<Option<Position>> {
    let mut url = urls::next_page(base, &answer.url, raw)?;
    if let (CustomAuthType::ApiKeyQuery, Some(name)) = (auth.kind, &auth.query_param) {
        url = urls::without_param(&url, name);
    }
    Ok((url != answer.url).then(|| Position::Url { url: url.into() }))
}

/// The target of the `rel="next"` link in the `Link` headers (RFC 8288).
pub fn link_next(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            parse_links(v).into_iter().find(|(_, rels)| {
                rels.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        })
        .map(|(target, _)| target)
}

/// `<target>; rel="…"` pairs of one `Link` header value.
fn parse_links(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(after) = rest.strip_prefix('<') else {
            return out;
        };
        let Some(end) = after.find('>') else {
            return out;
        };
        let target = after[..end].trim().to_owned();
        rest = &after[end + 1..];
        // Parameters up to the next comma outside quotes.
        let mut rel = String::new();
        let mut in_quotes = false;
        let mut stop = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    stop = i;
                    break;
                }
                _ => {}
            }
        }
        for param in rest[..stop].split(';') {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("rel")
            {
                rel = value.trim().trim_matches('"').to_owned();
            }
        }
        out.push((target, rel));
        rest = &rest[stop..];
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn link_headers_are_read() {
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            HeaderValue::from_static(
                r#"<https://api.github.com/repositories/1300192/issues?page=1>; rel="prev", <https://x.example/a?b=1,2>; rel="next", <https://x.example/last>; rel="last""#,
            ),
        );
        assert_eq!(link_next(&h).as_deref(), Some("https://x.example/a?b=1,2"));
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            HeaderValue::from_static(r#"<https://x.example/first>; rel="first""#),
        );
        h.append(
            LINK,
            HeaderValue::from_static(r#"<https://x.example/n>; title="a, b"; rel="next last""#),
        );
        assert_eq!(link_next(&h).as_deref(), Some("https://x.example/n"));
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            HeaderValue::from_static(r#"<https://x.example/p>; rel="prev""#),
        );
        assert_eq!(link_next(&h), None);
    }
}
