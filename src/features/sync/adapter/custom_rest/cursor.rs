//! The custom REST cursor: where a listing stands, durable after every page.
//!
//! ```json
//! {"v": 1,
//!  "watermark": "2024-05-01T10:00:00Z",          // max updatedAt of the last finished listing
//!  "listing": {                                  // absent between listings
//!    "since": "2024-05-01T10:00:00Z",            // the watermark this listing asks from
//!    "at": {"kind": "page", "page": 3},          // the request of the current page
//!    "skip": 2,                                  // its records already returned
//!    "maxSeen": "2024-05-02T08:00:00Z"}}         // max updatedAt returned so far
//! ```
//!
//! `at` is the listing's position in the API's own terms: `first` (the
//! described list call), `page` (a page number), `offset`, `cursor` (the
//! API's opaque cursor) or `url` (a next-page URL, `next_url` and
//! `link_header`, stored without the API key of `api_key_query`). The page
//! at `at` is fetched again on resume and its first `skip` records passed
//! over, so a run that returns part of a page, or a process that dies after
//! a checkpoint, neither loses nor repeats a record (as long as the API
//! serves the same page again). `since` stays fixed for the whole listing,
//! so page numbers and offsets keep meaning the same records; when the
//! listing ends, `maxSeen` becomes the next listing's `since`.
//!
//! Without `updatedAtField` there is no watermark and every listing lists
//! everything; the run counts unchanged records by their hashes. The page
//! token the adapter hands out within a run is this same document as text.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of this shape.
const VERSION: u32 = 1;

/// The whole cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// Shape version.
    #[serde(default)]
    pub v: u32,
    /// Max change time of the last finished listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<DateTime<Utc>>,
    /// The listing under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<Listing>,
}

/// A listing under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The watermark this listing asks from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The request of the current page.
    pub at: Position,
    /// Records of that page already returned.
    #[serde(default)]
    pub skip: usize,
    /// Max change time returned so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seen: Option<DateTime<Utc>>,
}

/// A page's request, in the API's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// The described list call (the first page).
    First,
    /// A page number.
    Page {
        /// The number.
        page: u64,
    },
    /// An offset.
    Offset {
        /// The offset.
        offset: u64,
    },
    /// The API's cursor for the next page.
    Cursor {
        /// The cursor.
        cursor: String,
    },
    /// A next-page URL.
    Url {
        /// The URL (without the API key).
        url: String,
    },
}

impl Cursor {
    /// The state to go on from: the run's page token, else the durable
    /// cursor, else the start. Text that does not read as a cursor (another
    /// adapter's, an older shape) starts over from the beginning: a full
    /// listing loses nothing, and the run counts what did not change.
    pub fn resume(page_token: Option<&str>, cursor: Option<&Value>) -> Self {
        let parsed = match (page_token, cursor) {
            (Some(t), _) => serde_json::from_str::<Cursor>(t).ok(),
            (None, None | Some(Value::Null)) => Some(Cursor::default()),
            (None, Some(c)) => serde_json::from_value::<Cursor>(c.clone()).ok(),
        };
        match parsed {
            Some(c)
                if c.v == VERSION || (c.v == 0 && c.listing.is_none() && c.watermark.is_none()) =>
            {
                c
            }
            _ => {
                tracing::warn!("a custom REST cursor of another shape; listing from the start");
                Cursor::default()
            }
        }
    }

    /// The listing to continue, or a new one from the watermark.
    pub fn take_listing(&mut self) -> Listing {
        self.listing.take().unwrap_or(Listing {
            since: self.watermark,
            at: Position::First,
            skip: 0,
            max_seen: None,
        })
    }

    /// As stored.
    pub fn to_value(&self) -> Value {
        let mut c = self.clone();
        c.v = VERSION;
        serde_json::to_value(&c).unwrap_or(Value::Null)
    }

    /// As a page token.
    pub fn to_token(&self) -> String {
        self.to_value().to_string()
    }
}

impl Listing {
    /// Notes a returned record's change time.
    pub fn saw(&mut self, at: Option<DateTime<Utc>>) {
        if let Some(t) = at {
            self.max_seen = Some(self.max_seen.map_or(t, |m| m.max(t)));
        }
    }

    /// The watermark once this listing has ended.
    pub fn end(&self, watermark: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match (watermark, self.max_seen) {
            (Some(w), Some(m)) => Some(w.max(m)),
            (w, m) => w.or(m),
        }
    }
}

/// A watermark as the incremental parameter sends it (RFC 3339, UTC).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_cursor_round_trips_and_bad_ones_start_over() {
        let c = Cursor {
            v: VERSION,
            watermark: None,
            listing: Some(Listing {
                since: None,
                at: Position::Page { page: 3 },
                skip: 2,
                max_seen: None,
            }),
        };
        assert_eq!(
            c.to_value(),
            json!({"v": 1, "listing": {"at": {"kind": "page", "page": 3}, "skip": 2}})
        );
        assert_eq!(Cursor::resume(None, Some(&c.to_value())), c);
        assert_eq!(Cursor::resume(Some(&c.to_token()), None), c);
        assert_eq!(
            Cursor::resume(None, Some(&json!({"v": 9}))),
            Cursor::default()
        );
        assert_eq!(
            Cursor::resume(None, Some(&json!(["SystemModstamp", "Id"]))),
            Cursor::default()
        );
    }
}
