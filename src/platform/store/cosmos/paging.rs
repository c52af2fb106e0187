//! Paged queries: one call returns one page of at most `max_items`
//! documents, skipping the empty pages a cross-partition fan-out produces,
//! and wraps the SDK's continuation token in the store's own (bound to the
//! query, carrying the clock reading and a position inside an SDK page).

use azure_data_cosmos::FeedScope;
use azure_data_cosmos::feed::ContinuationToken;
use azure_data_cosmos::options::{MaxItemCountHint, QueryOptions};
use futures::StreamExt as _;
use serde_json::Value;

use super::{CosmosStore, MAX_PAGES_PER_CALL, document, errors, from_stored, map, sql};
use crate::platform::store::query::{Query, Scope};
use crate::platform::store::{Container, Page, StoreError, StoreResult};

impl CosmosStore {
    /// Reads one page of a query, never returning an empty page with a token
    /// when another SDK page can be fetched.
    pub(super) async fn query_page(
        &self,
        container: Container,
        query: &Query,
    ) -> StoreResult<Page> {
        let resume = match &query.continuation {
            Some(token) => sql::decode_token(container, query, token)?,
            None => sql::Resume {
                sdk: None,
                skip: 0,
                now_ms: self.now_ms(),
                last: None,
            },
        };
        let now_ms = resume.now_ms;
        let text = sql::build(query, now_ms, false)?;
        let scope = match &query.scope {
            Scope::Partition(pk) => FeedScope::partition(pk.clone()),
            Scope::CrossPartition => FeedScope::full_container(),
        };
        let max = query.max_items as usize;
        let hint = std::num::NonZeroU32::new(query.max_items).map(MaxItemCountHint::Limit);
        let mut options = QueryOptions::default();
        if let Some(hint) = hint {
            options = options.with_max_item_count(hint);
        }
        if let Some(t) = &resume.sdk {
            options = options.with_continuation_token(ContinuationToken::from_string(t.clone()));
        }
        let resuming = resume.sdk.is_some();
        let c = self.container(container).await?;
        let iter = c
            .query_items::<Value>(text.to_cosmos()?, scope, Some(options))
            .await
            .map_err(|e| token_or(resuming, &e))?;
        let mut pages = iter.into_pages();
        let mut skip = resume.skip;
        let mut last = resume.last.clone();
        let mut page_start = resume.sdk.clone();
        for _ in 0..MAX_PAGES_PER_CALL {
            let Some(page) = pages.next().await else {
                return Ok(Page::default());
            };
            let page = page.map_err(|e| token_or(resuming, &e))?;
            let after = pages
                .to_continuation_token()
                .map_err(|e| map(&e))?
                .as_str()
                .to_owned();
            let all: Vec<Value> = page.into_items();
            if let Some((pk, id)) = last.take() {
                let field = container.partition_key_field();
                if let Some(i) = all.iter().position(|v| {
                    v["id"].as_str() == Some(id.as_str()) && v[field].as_str() == Some(pk.as_str())
                }) {
                    skip = i + 1;
                }
            }
            let items: Vec<Value> = all.into_iter().skip(skip).collect();
            let taken = skip;
            skip = 0;
            if items.is_empty() {
                if sql::sdk_token_drained(&after) {
                    return Ok(Page::default());
                }
                page_start = Some(after);
                continue;
            }
            let mut docs = Vec::with_capacity(items.len().min(max));
            let over = items.len() > max;
            for item in items.into_iter().take(max) {
                docs.push(document(container, from_stored(item)?)?);
            }
            let next = if over {
                // The SDK page was larger than ours: resume inside it.
                Some(sql::Resume {
                    sdk: page_start,
                    skip: taken + max,
                    now_ms,
                    last: docs.last().map(|d| (d.partition_key.clone(), d.id.clone())),
                })
            } else if sql::sdk_token_drained(&after) {
                None
            } else {
                Some(sql::Resume {
                    sdk: Some(after),
                    skip: 0,
                    now_ms,
                    // Resuming ORDER BY queries may repeat the boundary item
                    // after concurrent inserts: seek past it if it reappears.
                    last: docs.last().map(|d| (d.partition_key.clone(), d.id.clone())),
                })
            };
            return Ok(Page {
                items: docs,
                continuation: next.map(|at| sql::encode_token(container, query, &at)),
            });
        }
        // Only empty pages so far: hand back the position reached.
        Ok(Page {
            items: Vec::new(),
            continuation: Some(sql::encode_token(
                container,
                query,
                &sql::Resume {
                    sdk: page_start,
                    skip: 0,
                    now_ms,
                    last: None,
                },
            )),
        })
    }
}

/// A failed query is the token's fault when we were resuming and the SDK
/// refused the position.
fn token_or(resuming: bool, e: &azure_data_cosmos::CosmosError) -> StoreError {
    if resuming && errors::is_bad_token(e) {
        StoreError::InvalidContinuation
    } else {
        map(e)
    }
}
