//! Translation of a backend-neutral [`Query`] into parameterised Cosmos SQL,
//! and the store's own continuation tokens wrapping the SDK's.
//!
//! Field paths were validated by [`Query::validate`] (`[A-Za-z0-9_]+`
//! segments), so they are spliced as `c["seg"]["seg"]`; every value is a
//! parameter (`@p0`, `@p1`, …). The filter semantics match the embedded
//! store exactly (absent and `null` fields behave the same on both).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::EXPIRES_FIELD;
use crate::platform::store::query::{Op, Query};
use crate::platform::store::{Container, StoreError, StoreResult};

/// Parameterised Cosmos SQL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sql {
    /// The query text.
    pub text: String,
    /// `(name, value)` pairs, names with their `@`.
    pub params: Vec<(String, Value)>,
}

impl Sql {
    /// Converts to the SDK's query type.
    pub fn to_cosmos(&self) -> StoreResult<azure_data_cosmos::Query> {
        let mut q = azure_data_cosmos::Query::from(self.text.clone());
        for (name, value) in &self.params {
            q = q
                .with_parameter(name.clone(), value)
                .map_err(|e| StoreError::Invalid(format!("query parameter {name}: {e}")))?;
        }
        Ok(q)
    }
}

/// Cosmos SQL keywords, which cannot follow a `.` in a property path.
const KEYWORDS: [&str; 28] = [
    "and",
    "array",
    "as",
    "asc",
    "between",
    "by",
    "desc",
    "distinct",
    "escape",
    "exists",
    "false",
    "from",
    "group",
    "in",
    "join",
    "like",
    "limit",
    "not",
    "null",
    "offset",
    "or",
    "order",
    "select",
    "top",
    "true",
    "udf",
    "undefined",
    "value",
];

/// `c.a.b` for the dotted path `a.b`; a keyword or digit-led segment is
/// quoted as `["seg"]` (the SDK's emulator only understands the dotted form,
/// so the quoted form is kept for names that need it).
fn path(field: &str) -> String {
    let mut out = String::from("c");
    for seg in field.split('.') {
        let plain = seg.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
            && !KEYWORDS.contains(&seg.to_ascii_lowercase().as_str());
        if plain {
            out.push('.');
            out.push_str(seg);
        } else {
            out.push_str("[\"");
            out.push_str(seg);
            out.push_str("\"]");
        }
    }
    out
}

fn scalar(v: &Value) -> StoreResult<Value> {
    match v {
        Value::Array(_) | Value::Object(_) => {
            Err(StoreError::Invalid("filters compare scalars only".into()))
        }
        other => Ok(other.clone()),
    }
}

struct Builder {
    clauses: Vec<String>,
    params: Vec<(String, Value)>,
}

impl Builder {
    fn param(&mut self, v: Value) -> String {
        let name = format!("@p{}", self.params.len());
        self.params.push((name.clone(), v));
        name
    }
}

/// `SELECT * …` (or `SELECT VALUE COUNT(1) …` when `count`) for a query,
/// hiding documents whose expiry (by the store's clock, `now_ms`) has passed.
pub(crate) fn build(query: &Query, now_ms: i64, count: bool) -> StoreResult<Sql> {
    query.validate().map_err(StoreError::Invalid)?;
    let mut b = Builder {
        clauses: Vec::new(),
        params: Vec::new(),
    };
    let now = b.param(json!(now_ms));
    b.clauses.push(format!("{} > {now}", path(EXPIRES_FIELD)));
    for f in &query.filters {
        let x = path(&f.field);
        let defined = format!("(IS_DEFINED({x}) AND NOT IS_NULL({x}))");
        let undefined = format!("(NOT IS_DEFINED({x}) OR IS_NULL({x}))");
        let clause = match f.op {
            Op::IsDefined => defined,
            Op::IsUndefined => undefined,
            Op::Eq if f.value.is_null() => undefined,
            Op::Eq => format!("{x} = {}", b.param(scalar(&f.value)?)),
            // Absent and null fields never match `!=` (as in the embedded store).
            Op::Ne => format!("({defined} AND {x} != {})", b.param(scalar(&f.value)?)),
            Op::Lt => format!("{x} < {}", b.param(scalar(&f.value)?)),
            Op::Lte => format!("{x} <= {}", b.param(scalar(&f.value)?)),
            Op::Gt => format!("{x} > {}", b.param(scalar(&f.value)?)),
            Op::Gte => format!("{x} >= {}", b.param(scalar(&f.value)?)),
            Op::ContainsText => format!("CONTAINS({x}, {}, true)", b.param(scalar(&f.value)?)),
            Op::ArrayContains => {
                format!("ARRAY_CONTAINS({x}, {})", b.param(scalar(&f.value)?))
            }
            Op::In => {
                let values = f.value.as_array().map(Vec::as_slice).unwrap_or_default();
                if values.is_empty() {
                    "false".to_owned()
                } else {
                    let mut names = Vec::with_capacity(values.len());
                    for v in values {
                        names.push(b.param(scalar(v)?));
                    }
                    format!("{x} IN ({})", names.join(", "))
                }
            }
        };
        b.clauses.push(clause);
    }
    let select = if count {
        "SELECT VALUE COUNT(1) FROM c"
    } else {
        "SELECT * FROM c"
    };
    let mut text = format!("{select} WHERE {}", b.clauses.join(" AND "));
    if !count {
        // One sort key only: a second key (the `id` tie-break) would need a
        // composite index per sorted field on real Cosmos. Ties are still
        // paged exactly once: the server resumes ORDER BY by document rid.
        match &query.order_by {
            Some(o) => {
                let dir = if o.descending { "DESC" } else { "ASC" };
                text.push_str(&format!(" ORDER BY {} {dir}", path(&o.field)));
            }
            None => text.push_str(" ORDER BY c.id ASC"),
        }
    }
    Ok(Sql {
        text,
        params: b.params,
    })
}

/// Where a query continues: the SDK's token for the start of an SDK page
/// (`None`: the query's start) and how many of that page's items were
/// already returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The SDK continuation token at the start of the page to read next.
    pub sdk: Option<String>,
    /// Items of that page already returned.
    pub skip: usize,
    /// The last item returned from that page (`pk`, `id`): resumption seeks
    /// past it, so items inserted or deleted before it shift nothing; `skip`
    /// is only the fallback when it is gone.
    pub last: Option<(String, String)>,
    /// The clock reading (epoch ms) the query's first page used to hide
    /// expired documents: every page of one query uses the same one, because
    /// the SDK's ORDER BY tokens only resume the exact same query parameters.
    pub now_ms: i64,
}

/// A hash of the query's shape: a token only continues the query that issued it.
fn fingerprint(container: Container, query: &Query) -> String {
    let shape = format!(
        "{}|{:?}|{:?}|{:?}",
        container.name(),
        query.scope,
        query.filters,
        query.order_by
    );
    let h = shape.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:x}")
}

/// Encodes a position as the store's opaque token.
pub(crate) fn encode_token(container: Container, query: &Query, at: &Resume) -> String {
    let raw = json!({ "f": fingerprint(container, query), "c": at.sdk, "s": at.skip, "n": at.now_ms, "l": at.last });
    URL_SAFE_NO_PAD.encode(raw.to_string())
}

/// Decodes a token issued by [`encode_token`] for the same query.
pub(crate) fn decode_token(
    container: Container,
    query: &Query,
    token: &str,
) -> StoreResult<Resume> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| StoreError::InvalidContinuation)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidContinuation)?;
    if v.get("f").and_then(Value::as_str) != Some(fingerprint(container, query).as_str()) {
        return Err(StoreError::InvalidContinuation);
    }
    let sdk = match v.get("c") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | None => None,
        _ => return Err(StoreError::InvalidContinuation),
    };
    let skip = v
        .get("s")
        .and_then(Value::as_u64)
        .and_then(|s| usize::try_from(s).ok())
        .filter(|s| *s <= 10_000)
        .ok_or(StoreError::InvalidContinuation)?;
    let now_ms = v
        .get("n")
        .and_then(Value::as_i64)
        .ok_or(StoreError::InvalidContinuation)?;
    let last = match v.get("l") {
        None | Some(Value::Null) => None,
        Some(l) => Some(
            serde_json::from_value::<(String, String)>(l.clone())
                .map_err(|_| StoreError::InvalidContinuation)?,
        ),
    };
    Ok(Resume {
        sdk,
        skip,
        now_ms,
        last,
    })
}

/// Whether an SDK token says the whole query is drained (so no next page).
///
/// SDK tokens are `c1.` + base64url JSON with the pipeline's root state;
/// a drained pipeline's root is `{"kind":"drained"}`. Anything we cannot
/// read is treated as "maybe more": the worst case is one extra empty last page.
pub(crate) fn sdk_token_drained(token: &str) -> bool {
    token
        .strip_prefix("c1.")
        .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|v| {
            let root = v.get("root");
            root.and_then(|r| r.get("kind")) == Some(&json!("drained"))
                || root == Some(&json!("Drained"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::store::Filter;

    #[test]
    fn filters_become_parameterised_sql() {
        let q = Query::partition("t")
            .eq("status", "active")
            .filter(Filter::new("oauth.expiresAt", Op::Lt, 5))
            .filter(Filter::new("kind", Op::In, json!(["a", "b"])))
            .filter(Filter::new("name", Op::ContainsText, "x"))
            .order_by("createdAt", true);
        let sql = build(&q, 42, false).expect("sql");
        assert_eq!(
            sql.text,
            "SELECT * FROM c WHERE c._castielExpiresAt > @p0 AND c.status = @p1 \
             AND c.oauth.expiresAt < @p2 AND c.kind IN (@p3, @p4) \
             AND CONTAINS(c.name, @p5, true) ORDER BY c.createdAt DESC"
        );
        assert_eq!(sql.params.len(), 6);
        assert_eq!(sql.params[0], ("@p0".to_owned(), json!(42)));
    }

    #[test]
    fn keywords_are_quoted() {
        assert_eq!(path("value.order"), "c[\"value\"][\"order\"]");
        assert_eq!(path("a.9b"), "c.a[\"9b\"]");
    }

    #[test]
    fn count_has_no_order() {
        let sql = build(&Query::partition("t").eq("a", 1), 0, true).expect("sql");
        assert!(sql.text.starts_with("SELECT VALUE COUNT(1) FROM c WHERE"));
        assert!(!sql.text.contains("ORDER BY"));
    }

    #[test]
    fn non_scalar_operands_are_refused() {
        let q = Query::partition("t").eq("a", json!({"x": 1}));
        assert!(matches!(build(&q, 0, false), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_query() {
        let q = Query::partition("t").eq("a", 1);
        let at = Resume {
            sdk: Some("c1.abc".into()),
            skip: 3,
            now_ms: 7,
            last: None,
        };
        let token = encode_token(Container::Integrations, &q, &at);
        assert_eq!(
            decode_token(Container::Integrations, &q, &token).expect("decode"),
            at
        );
        assert!(decode_token(Container::Webhooks, &q, &token).is_err());
        assert!(decode_token(Container::Integrations, &q.clone().eq("b", 2), &token).is_err());
        assert!(decode_token(Container::Integrations, &q, "not-a-token").is_err());
    }

    #[test]
    fn drained_sdk_tokens_are_recognised() {
        let drained = format!(
            "c1.{}",
            URL_SAFE_NO_PAD.encode(r#"{"op":"Query","rid":"x","root":{"kind":"drained"}}"#)
        );
        assert!(sdk_token_drained(&drained));
        assert!(!sdk_token_drained("c1.garbage"));
        assert!(!sdk_token_drained("server-token"));
    }
}
