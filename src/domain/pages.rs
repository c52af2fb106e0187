//! Paging of lists (SPEC §5: `limit` 1–200, opaque continuation tokens).

use serde::Serialize;
use utoipa::ToSchema;

/// A page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=200.
    pub limit: u32,
    /// Token of the previous page.
    pub continuation: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: 50,
            continuation: None,
        }
    }
}

/// A page of results.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Present when more items follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
}
