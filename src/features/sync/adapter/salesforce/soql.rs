//! The SOQL the adapter sends: API-name validation, literal escaping, the
//! change query on `(SystemModstamp, Id)` and its cursor.
//!
//! Nothing a tenant configures reaches a query unchecked: entity and field
//! names must be Salesforce API names (letters, digits, underscores; dots
//! only between the names of a relationship path), and every filter value
//! is written as a literal with SOQL's backslash escapes, so a value can
//! never end its literal and add a clause.

use chrono::{DateTime, SecondsFormat, Timelike as _, Utc};
use serde_json::{Value, json};

use super::super::{AdapterError, AdapterResult};
use crate::features::integrations::model::{FilterOperator, PullFilter};

/// The most records one change query asks for (its `LIMIT` is one more).
pub const MAX_PAGE: usize = 50_000;

/// Whether `name` is one Salesforce API name: a letter first, then letters,
/// digits and single underscores (custom names end `__c`, `__r`…).
fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 80
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks an sObject name (`Opportunity`, `Invoice__c`).
pub fn entity(name: &str) -> AdapterResult<&str> {
    if is_api_name(name) {
        Ok(name)
    } else {
        Err(AdapterError::Rejected(format!(
            "{:?} is not a Salesforce object API name",
            shorten(name)
        )))
    }
}

/// Checks a field name or relationship path (`Amount`, `Account.Industry`).
pub fn field(name: &str) -> AdapterResult<&str> {
    if !name.is_empty() && name.split('.').count() <= 5 && name.split('.').all(is_api_name) {
        Ok(name)
    } else {
        Err(AdapterError::Rejected(format!(
            "{:?} is not a Salesforce field API name",
            shorten(name)
        )))
    }
}

/// Checks a record id: 15 or 18 letters and digits.
pub fn record_id(id: &str) -> AdapterResult<&str> {
    if matches!(id.len(), 15 | 18) && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(AdapterError::Rejected(format!(
            "{:?} is not a Salesforce record id",
            shorten(id)
        )))
    }
}

/// A value cut for messages.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// A quoted SOQL string literal: backslash escapes for the reserved quote
/// and backslash, the double quote and control characters (SOQL "Quoted
/// String Escape Sequences"); `like` also escapes `%` and `_`.
pub fn quote(value: &str, like: bool) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '%' | '_' if like => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A SOQL dateTime literal (unquoted, UTC): `2024-05-01T10:00:00Z`, with
/// milliseconds only when the instant has them.
pub fn datetime(t: DateTime<Utc>) -> String {
    if t.nanosecond() == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// Reads a Salesforce dateTime as the API writes it (`2024-05-01T10:00:00.000+0000`)
/// or as RFC 3339.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A filter operand as a SOQL literal.
fn literal(v: &Value, name: &str) -> AdapterResult<String> {
    match v {
        Value::String(s) => Ok(quote(s, false)),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok("null".into()),
        _ => Err(AdapterError::Rejected(format!(
            "pull filter on {name}: this value cannot be compared in SOQL"
        ))),
    }
}

/// One pull filter as a SOQL condition.
pub fn filter(f: &PullFilter) -> AdapterResult<String> {
    let name = field(&f.field)?;
    let list = |negate: bool| -> AdapterResult<String> {
        let Value::Array(items) = &f.value else {
            return Err(AdapterError::Rejected(format!(
                "pull filter on {name}: in and not_in take a list"
            )));
        };
        if items.is_empty() {
            return Err(AdapterError::Rejected(format!(
                "pull filter on {name}: the list is empty"
            )));
        }
        let values = items
            .iter()
            .map(|v| literal(v, name))
            .collect::<AdapterResult<Vec<_>>>()?;
        let not = if negate { "NOT " } else { "" };
        Ok(format!("{name} {not}IN ({})", values.join(", ")))
    };
    Ok(match f.operator {
        FilterOperator::Equals => format!("{name} = {}", literal(&f.value, name)?),
        FilterOperator::NotEquals => format!("{name} != {}", literal(&f.value, name)?),
        FilterOperator::Gt => format!("{name} > {}", literal(&f.value, name)?),
        FilterOperator::Lt => format!("{name} < {}", literal(&f.value, name)?),
        FilterOperator::Contains => match &f.value {
            Value::String(s) => format!("{name} LIKE {}", like_contains(s)),
            _ => {
                return Err(AdapterError::Rejected(format!(
                    "pull filter on {name}: contains takes a string"
                )));
            }
        },
        FilterOperator::In => list(false)?,
        FilterOperator::NotIn => list(true)?,
    })
}

/// `'%value%'` with the value's own `%` and `_` escaped.
fn like_contains(s: &str) -> String {
    let inner = quote(s, true);
    format!("'%{}%'", &inner[1..inner.len() - 1])
}

/// The durable cursor: the `(SystemModstamp, Id)` of the last record returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// Its SystemModstamp.
    pub modstamp: DateTime<Utc>,
    /// Its Id.
    pub id: String,
}

impl Cursor {
    /// The cursor as stored: `{"systemModstamp": RFC 3339 with ms, "id": …}`.
    pub fn to_value(&self) -> Value {
        json!({
            "systemModstamp": self.modstamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            "id": self.id,
        })
    }

    /// Reads a stored cursor; a cursor of another shape is refused (it was
    /// not written by this adapter).
    pub fn from_value(v: &Value) -> AdapterResult<Self> {
        let bad =
            || AdapterError::Rejected("the stored sync cursor is not a Salesforce cursor".into());
        let modstamp = v
            .get("systemModstamp")
            .and_then(Value::as_str)
            .and_then(parse_datetime)
            .ok_or_else(bad)?;
        let id = v.get("id").and_then(Value::as_str).ok_or_else(bad)?;
        Ok(Self {
            modstamp,
            id: record_id(id).map_err(|_| bad())?.to_owned(),
        })
    }
}

/// The change query: the fields asked for after `Id, SystemModstamp`,
/// records after the cursor, the pull filters, oldest first, `limit` rows.
pub fn changes_query(
    entity_name: &str,
    fields: &[String],
    cursor: Option<&Cursor>,
    filters: &[PullFilter],
    limit: usize,
) -> AdapterResult<String> {
    let entity_name = entity(entity_name)?;
    let mut select = vec!["Id".to_owned(), "SystemModstamp".to_owned()];
    for f in fields {
        let f = field(f)?;
        if !select.iter().any(|s| s.eq_ignore_ascii_case(f)) {
            select.push(f.to_owned());
        }
    }
    let mut conditions = Vec::new();
    if let Some(c) = cursor {
        let at = datetime(c.modstamp);
        conditions.push(format!(
            "(SystemModstamp > {at} OR (SystemModstamp = {at} AND Id > {}))",
            quote(&c.id, false)
        ));
    }
    for f in filters {
        conditions.push(filter(f)?);
    }
    let mut q = format!("SELECT {} FROM {entity_name}", select.join(", "));
    if !conditions.is_empty() {
        q.push_str(" WHERE ");
        q.push_str(&conditions.join(" AND "));
    }
    q.push_str(&format!(" ORDER BY SystemModstamp, Id LIMIT {limit}"));
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(field: &str, operator: FilterOperator, value: Value) -> PullFilter {
        PullFilter {
            field: field.into(),
            operator,
            value,
        }
    }

    #[test]
    fn names_are_api_names_only() {
        assert!(entity("Opportunity").is_ok());
        assert!(entity("Invoice__c").is_ok());
        for bad in [
            "",
            "1Account",
            "Account WHERE",
            "Acc'ount",
            "Account.Name",
            "A-b",
        ] {
            assert!(entity(bad).is_err(), "{bad}");
        }
        assert!(field("Account.Industry").is_ok());
        for bad in [
            "Account..Name",
            ".Name",
            "Name.",
            "Name,Id",
            "Name)",
            "Na me",
        ] {
            assert!(field(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(quote("O'Brien", false), r"'O\'Brien'");
        assert_eq!(quote(r"a\' OR Name != '", false), r"'a\\\' OR Name != \''");
        assert_eq!(quote("50%_x", true), r"'50\%\_x'");
        assert_eq!(
            filter(&pf("Name", FilterOperator::Contains, json!("50%"))).ok(),
            Some(r"Name LIKE '%50\%%'".to_owned())
        );
        assert_eq!(
            filter(&pf(
                "StageName",
                FilterOperator::NotIn,
                json!(["Closed Lost", "x'y"])
            ))
            .ok(),
            Some(r"StageName NOT IN ('Closed Lost', 'x\'y')".to_owned())
        );
        assert!(filter(&pf("Name", FilterOperator::Equals, json!({"a": 1}))).is_err());
    }

    #[test]
    fn the_query_continues_after_the_cursor_pair() {
        let c = Cursor {
            modstamp: parse_datetime("2024-05-01T10:00:00.000+0000").expect("time"),
            id: "006000000000001AAA".into(),
        };
        let q = changes_query(
            "Opportunity",
            &["Amount".into(), "Account.Industry".into(), "Id".into()],
            Some(&c),
            &[pf("Amount", FilterOperator::Gt, json!(10))],
            101,
        )
        .expect("query");
        assert_eq!(
            q,
            "SELECT Id, SystemModstamp, Amount, Account.Industry FROM Opportunity WHERE \
             (SystemModstamp > 2024-05-01T10:00:00Z OR (SystemModstamp = 2024-05-01T10:00:00Z \
             AND Id > '006000000000001AAA')) AND Amount > 10 ORDER BY SystemModstamp, Id LIMIT 101"
        );
        assert_eq!(Cursor::from_value(&c.to_value()).ok(), Some(c));
        assert!(Cursor::from_value(&json!({"id": "x"})).is_err());
    }
}
