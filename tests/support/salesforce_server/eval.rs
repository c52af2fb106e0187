//! Reading record fields and evaluating `WHERE` conditions.

use super::*;

/// A field of a record by case-insensitive name: its canonical name and value.
pub(super) fn lookup(rec: &Rec, name: &str) -> (String, Value) {
    if name.eq_ignore_ascii_case("Id") {
        return ("Id".into(), json!(rec.id));
    }
    if name.eq_ignore_ascii_case("SystemModstamp") {
        return ("SystemModstamp".into(), json!(sf_time(rec.modstamp)));
    }
    if name.eq_ignore_ascii_case("LastModifiedDate") {
        return ("LastModifiedDate".into(), json!(sf_time(rec.modstamp)));
    }
    rec.fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or((name.to_owned(), Value::Null), |(k, v)| {
            (k.clone(), v.clone())
        })
}

pub(super) fn value_of(rec: &Rec, path: &str) -> Value {
    let mut parts = path.split('.');
    let (_, mut v) = lookup(rec, parts.next().unwrap_or_default());
    for p in parts {
        v = match v {
            Value::Object(o) => o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(p))
                .map_or(Value::Null, |(_, v)| v.clone()),
            _ => Value::Null,
        };
    }
    v
}

pub(super) fn compare(v: &Value, lit: &soql::Lit) -> Option<std::cmp::Ordering> {
    use soql::Lit;
    match (v, lit) {
        (Value::String(s), Lit::At(t)) => DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
            .ok()
            .map(|x| x.with_timezone(&Utc).cmp(t)),
        (Value::String(s), Lit::Str(l)) => Some(s.as_str().cmp(l.as_str())),
        (Value::Number(n), Lit::Num(l)) => n.as_f64().and_then(|x| x.partial_cmp(l)),
        (Value::Bool(b), Lit::Bool(l)) => Some(b.cmp(l)),
        _ => None,
    }
}

pub(super) fn matches(rec: &Rec, e: &soql::Expr) -> bool {
    use soql::{Expr, Lit};
    use std::cmp::Ordering::*;
    match e {
        Expr::Or(es) => es.iter().any(|e| matches(rec, e)),
        Expr::And(es) => es.iter().all(|e| matches(rec, e)),
        Expr::Not(e) => !matches(rec, e),
        Expr::Cmp { field, op, lit } => {
            let v = value_of(rec, field);
            if *lit == Lit::Null {
                return (op == "=") == v.is_null();
            }
            let o = compare(&v, lit);
            match op.as_str() {
                "=" => o == Some(Equal),
                "!=" => o != Some(Equal),
                "<" => o == Some(Less),
                ">" => o == Some(Greater),
                "<=" => matches!(o, Some(Less | Equal)),
                ">=" => matches!(o, Some(Greater | Equal)),
                _ => false,
            }
        }
        Expr::In {
            field,
            list,
            negated,
        } => {
            let v = value_of(rec, field);
            list.iter().any(|l| compare(&v, l) == Some(Equal)) != *negated
        }
        Expr::Like { field, pattern } => value_of(rec, field)
            .as_str()
            .is_some_and(|s| soql::like(s, pattern)),
    }
}
