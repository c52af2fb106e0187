//! Strict parsing of request bodies into a JSON value: duplicate keys and
//! excessive nesting are input errors (named by JSON pointer), not silently
//! resolved, so that every layer reads the same document.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::domain::validation::{Violations, escape_token};

/// The deepest nesting of objects and arrays a request body may have.
pub const MAX_DEPTH: usize = 32;

/// Where a value sits in the document (rendered only when it is reported).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn pointer(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, k) => format!("{}/{}", parent.pointer(), escape_token(k)),
            Path::Index(parent, i) => format!("{}/{i}", parent.pointer()),
        }
    }
}

struct Seed<'p, 'v> {
    path: Path<'p>,
    depth: usize,
    issues: &'v RefCell<Violations>,
}

impl Seed<'_, '_> {
    fn enter(&self) {
        if self.depth == MAX_DEPTH {
            self.issues.borrow_mut().add(
                self.path.pointer(),
                format!("nests objects and arrays deeper than {MAX_DEPTH} levels"),
            );
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter();
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed {
            path: Path::Index(&self.path, out.len()),
            depth: self.depth + 1,
            issues: self.issues,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter();
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = Path::Key(&self.path, &key);
            let v = map.next_value_seed(Seed {
                path,
                depth: self.depth + 1,
                issues: self.issues,
            })?;
            if out.contains_key(&key) {
                self.issues
                    .borrow_mut()
                    .add(path.pointer(), "appears more than once in its object");
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses a body: `Err` names the syntax error, every duplicate key and the
/// first place nested deeper than [`MAX_DEPTH`].
pub fn parse_strict(bytes: &[u8]) -> Result<Value, Violations> {
    let issues = RefCell::new(Violations::default());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Seed {
        path: Path::Root,
        depth: 0,
        issues: &issues,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        Violations::one("", format!("is not valid JSON: {msg}"))
    })?;
    let issues = issues.into_inner();
    if issues.is_empty() {
        Ok(parsed)
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(text: &str) -> Vec<String> {
        match parse_strict(text.as_bytes()) {
            Ok(_) => vec![],
            Err(v) => v.as_slice().iter().map(|x| x.pointer.clone()).collect(),
        }
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for t in [
            "{}",
            "[]",
            "null",
            "1",
            "-1.5e3",
            "\"x\"",
            r#"{"a":[1,{"b":null}]}"#,
        ] {
            let strict = parse_strict(t.as_bytes()).expect(t);
            assert_eq!(strict, serde_json::from_str::<Value>(t).expect(t));
        }
    }

    #[test]
    fn duplicates_are_named() {
        assert_eq!(pointers(r#"{"a":1,"a":2}"#), ["/a"]);
        assert_eq!(pointers(r#"{"x":[{"k/1":1,"k/1":2}]}"#), ["/x/0/k~11"]);
    }

    #[test]
    fn deep_nesting_is_named_once() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(pointers(&deep).len(), 1);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(pointers(&ok).is_empty());
    }

    #[test]
    fn syntax_errors_and_trailing_text_fail() {
        for t in ["", "{", "{} x", "[1,]", "1e400", "{\"a\":1,}"] {
            assert!(parse_strict(t.as_bytes()).is_err(), "{t}");
        }
    }
}
