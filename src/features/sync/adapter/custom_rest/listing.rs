//! `list_changes` for a custom API: one page at a time, at most `max`
//! records, the cursor (see [`super::cursor`]) durable after every call.

use super::super::{AdapterError, AdapterResult, ChangesPage, ChangesRequest};
use super::CustomRestAdapter;
use super::call::Call;
use super::cursor::{Cursor, Position};
use super::{pagination, records};

/// Pages without a record read in one call before handing back (the run
/// goes on with the page token): an API that pages through empty pages
/// cannot keep one call busy for ever.
const MAX_EMPTY_PAGES: usize = 10;

impl CustomRestAdapter {
    pub(super) async fn list(&self, req: ChangesRequest<'_>) -> AdapterResult<ChangesPage> {
        let entity = self.entity(req.entity)?;
        let list = &entity.list;
        let mut state = Cursor::resume(req.page_token, req.cursor);
        let mut listing = state.take_listing();
        if !pagination::fits(&list.pagination, &listing.at) {
            tracing::warn!(
                entity = req.entity,
                "the pagination changed; listing from the start"
            );
            listing.at = Position::First;
            listing.skip = 0;
            listing.max_seen = None;
        }
        let max = req.max.max(1);
        let mut empty_pages = 0;
        loop {
            let url = pagination::page_url(&self.caller.base, list, &listing)?;
            let answer = self
                .caller
                .send(Call::new(list.method, &url))
                .await
                .map_err(listing_error)?;
            let raw = records::array(&answer.body, &list.records_pointer)?;
            let next = pagination::next(
                &self.caller.base,
                list,
                &self.caller.auth,
                &listing.at,
                &answer,
                raw.len(),
            )?;
            let start = listing.skip.min(raw.len());
            let end = (start + max).min(raw.len());
            let page = raw[start..end]
                .iter()
                .map(|v| records::record(list, v))
                .collect::<AdapterResult<Vec<_>>>()?;
            for r in &page {
                listing.saw(r.modified_at);
            }
            if end < raw.len() {
                // Part of this page: the rest is read again from here.
                listing.skip = end;
                state.listing = Some(listing);
                return Ok(more(page, &state));
            }
            match next {
                Some(at) => {
                    listing.at = at;
                    listing.skip = 0;
                    if page.is_empty() && empty_pages < MAX_EMPTY_PAGES {
                        empty_pages += 1;
                        continue;
                    }
                    state.listing = Some(listing);
                    return Ok(more(page, &state));
                }
                None => {
                    state.watermark = listing.end(state.watermark);
                    state.listing = None;
                    return Ok(ChangesPage {
                        records: page,
                        cursor: Some(state.to_value()),
                        page_token: None,
                        more: false,
                    });
                }
            }
        }
    }
}

fn more(records: Vec<super::super::Record>, state: &Cursor) -> ChangesPage {
    ChangesPage {
        records,
        cursor: Some(state.to_value()),
        page_token: Some(state.to_token()),
        more: true,
    }
}

/// A listing has no record to miss: "not found" and "conflict" answers are
/// refusals of the request like any other 4xx.
pub(super) fn listing_error(e: AdapterError) -> AdapterError {
    match e {
        AdapterError::NotFound(m) | AdapterError::Conflict(m) => AdapterError::Rejected(m),
        other => other,
    }
}
