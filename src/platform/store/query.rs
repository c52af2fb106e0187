//! Backend-neutral queries: filters on top-level or dotted fields, one sort
//! key, a page size and an opaque continuation token.

use serde_json::Value;

/// Which partitions a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One partition: the cheap, normal case (all tenant-scoped queries).
    Partition(String),
    /// Every partition: only for bounded, paged operator scans (scheduler, token refresh).
    CrossPartition,
}

/// A comparison operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal to the value.
    Eq,
    /// Not equal to the value (absent fields do not match).
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Equal to one of the values of the given array.
    In,
    /// The string field contains the value, ignoring case.
    ContainsText,
    /// The array field contains the value.
    ArrayContains,
    /// The field is present and not null (the value is ignored).
    IsDefined,
    /// The field is absent or null (the value is ignored).
    IsUndefined,
}

/// One condition on a field (dotted path such as `oauth.expiresAt`).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Dotted path of the field; each segment is `[A-Za-z0-9_]+`.
    pub field: String,
    /// The comparison.
    pub op: Op,
    /// The operand (an array for [`Op::In`]).
    pub value: Value,
}

impl Filter {
    /// `field = value`.
    pub fn eq(field: &str, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            op: Op::Eq,
            value: value.into(),
        }
    }

    /// A filter with any operator.
    pub fn new(field: &str, op: Op, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            op,
            value: value.into(),
        }
    }
}

/// The sort key of a query; ties are broken by `id` in the same direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    /// Dotted path of the sort field.
    pub field: String,
    /// Newest/highest first.
    pub descending: bool,
}

/// A query against one container.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The partitions read.
    pub scope: Scope,
    /// All must hold.
    pub filters: Vec<Filter>,
    /// Sort order (default: by `id` ascending).
    pub order_by: Option<OrderBy>,
    /// Page size (1..=1000).
    pub max_items: u32,
    /// A token from a previous page of the same query.
    pub continuation: Option<String>,
}

impl Query {
    /// A query over one partition, 100 items a page.
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            scope: Scope::Partition(pk.into()),
            filters: Vec::new(),
            order_by: None,
            max_items: 100,
            continuation: None,
        }
    }

    /// A query over all partitions, 100 items a page.
    pub fn cross_partition() -> Self {
        Self {
            scope: Scope::CrossPartition,
            ..Self::partition("")
        }
    }

    /// Adds a condition.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Adds `field = value`.
    #[must_use]
    pub fn eq(self, field: &str, value: impl Into<Value>) -> Self {
        self.filter(Filter::eq(field, value))
    }

    /// Sorts by a field.
    #[must_use]
    pub fn order_by(mut self, field: &str, descending: bool) -> Self {
        self.order_by = Some(OrderBy {
            field: field.into(),
            descending,
        });
        self
    }

    /// Sets the page size.
    #[must_use]
    pub fn limit(mut self, max_items: u32) -> Self {
        self.max_items = max_items;
        self
    }

    /// Continues after a previous page.
    #[must_use]
    pub fn after(mut self, continuation: Option<String>) -> Self {
        self.continuation = continuation;
        self
    }

    /// Checks field paths and sizes so that backends can trust them.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.max_items) {
            return Err(format!("max_items {} out of 1..=1000", self.max_items));
        }
        let fields = self
            .filters
            .iter()
            .map(|f| f.field.as_str())
            .chain(self.order_by.iter().map(|o| o.field.as_str()));
        for field in fields {
            if !is_field_path(field) {
                return Err(format!("bad field path {field:?}"));
            }
        }
        for f in &self.filters {
            if f.op == Op::In && !f.value.is_array() {
                return Err(format!("`in` filter on {} needs an array", f.field));
            }
        }
        Ok(())
    }
}

/// A dotted path of `[A-Za-z0-9_]+` segments (safe to splice into SQL paths).
pub fn is_field_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|seg| {
            !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}
