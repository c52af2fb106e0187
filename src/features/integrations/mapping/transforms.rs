//! The built-in transforms (SPEC §9.4): a closed list with typed options.
//! No tenant-supplied code is ever executed: a field mapping names one of
//! these and gives its options as data, checked on write.
//!
//! A transform turns one value into another. An absent value stays absent
//! and `null` stays `null` (only `nullToDefault` acts on them); a value of a
//! type the transform cannot take is an error for that field, never a
//! silent pass-through.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::dates;

pub use super::specs::{
    DEFAULT_DECIMALS, DEFAULT_JOIN, DEFAULT_SPLIT, OptionDefault, OptionKind, OptionSpec,
    TRANSFORMS, TransformSpec, names,
};

/// A transform with its options checked and typed, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// `dateToISO`.
    DateToIso,
    /// `dateToUnix`.
    DateToUnix,
    /// `stringToNumber`.
    StringToNumber,
    /// `roundToDecimals`.
    RoundToDecimals {
        /// Digits after the point.
        decimals: u32,
    },
    /// `toLowerCase`.
    ToLowerCase,
    /// `toUpperCase`.
    ToUpperCase,
    /// `trim`.
    Trim,
    /// `arrayToString`.
    ArrayToString {
        /// Between items.
        separator: String,
    },
    /// `splitToArray`.
    SplitToArray {
        /// Where to split.
        separator: String,
    },
    /// `arrayFirst`.
    ArrayFirst,
    /// `booleanToString`.
    BooleanToString,
    /// `booleanToYesNo`.
    BooleanToYesNo,
    /// `nullToDefault`.
    NullToDefault {
        /// The replacement.
        default: Value,
    },
    /// `valueMap`.
    ValueMap {
        /// Exact keys.
        map: HashMap<String, Value>,
        /// Trimmed, lower-cased keys (the first of equal ones wins).
        folded: HashMap<String, Value>,
        /// For values not in the map (`Some(Null)` maps them to null).
        default: Option<Value>,
    },
}

/// What is wrong with a transform or its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionProblem {
    /// The transform name is not a built-in one.
    UnknownTransform(String),
    /// Options were given without a transform.
    OptionsWithoutTransform,
    /// One option is wrong: its key, and why.
    Option(String, String),
}

/// The result of applying a transform: the value (absent when `None`) and
/// a warning when it applied but possibly not as meant.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The output.
    pub value: Option<Value>,
    /// Worth telling the user.
    pub warning: Option<String>,
}

impl Applied {
    fn value(value: Option<Value>) -> Result<Self, String> {
        Ok(Self {
            value,
            warning: None,
        })
    }
}

/// Checks a transform name and its options (`None`: no transform).
pub fn check(
    name: Option<&str>,
    options: Option<&Map<String, Value>>,
) -> Result<Option<Transform>, Vec<OptionProblem>> {
    let Some(name) = name else {
        return match options {
            Some(_) => Err(vec![OptionProblem::OptionsWithoutTransform]),
            None => Ok(None),
        };
    };
    let Some(spec) = TRANSFORMS.iter().find(|t| t.name == name) else {
        return Err(vec![OptionProblem::UnknownTransform(name.to_owned())]);
    };
    let empty = Map::new();
    let options = options.unwrap_or(&empty);
    let mut problems = Vec::new();
    for key in options.keys() {
        if !spec.options.iter().any(|o| o.name == key) {
            let known: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
            let detail = if known.is_empty() {
                format!("unknown option: {name} takes no options")
            } else {
                format!("unknown option; {name} takes: {}", known.join(", "))
            };
            problems.push(OptionProblem::Option(key.clone(), detail));
        }
    }
    for o in spec.options {
        match options.get(o.name) {
            None if o.required => {
                problems.push(OptionProblem::Option(o.name.into(), "is required".into()));
            }
            None => {}
            Some(v) => {
                if let Err(detail) = check_kind(o.kind, v) {
                    problems.push(OptionProblem::Option(o.name.into(), detail));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Some(build(name, options)))
}

fn check_kind(kind: OptionKind, v: &Value) -> Result<(), String> {
    match kind {
        OptionKind::Integer { min, max } => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(format!("must be an integer from {min} to {max}")),
        },
        OptionKind::Text { max } => match v.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= max => Ok(()),
            _ => Err(format!("must be a string of 1 to {max} characters")),
        },
        OptionKind::Object => match v.as_object() {
            Some(m) if !m.is_empty() && m.len() <= 1000 => Ok(()),
            _ => Err("must be an object of 1 to 1000 entries".into()),
        },
        OptionKind::Any => Ok(()),
    }
}

/// Builds the typed transform from options already checked against its spec.
fn build(name: &str, options: &Map<String, Value>) -> Transform {
    let text = |key: &str, default: &str| {
        options
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    match name {
        "dateToISO" => Transform::DateToIso,
        "dateToUnix" => Transform::DateToUnix,
        "stringToNumber" => Transform::StringToNumber,
        "roundToDecimals" => Transform::RoundToDecimals {
            decimals: options
                .get("decimals")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(DEFAULT_DECIMALS as u32),
        },
        "toLowerCase" => Transform::ToLowerCase,
        "toUpperCase" => Transform::ToUpperCase,
        "arrayToString" => Transform::ArrayToString {
            separator: text("separator", DEFAULT_JOIN),
        },
        "splitToArray" => Transform::SplitToArray {
            separator: text("separator", DEFAULT_SPLIT),
        },
        "arrayFirst" => Transform::ArrayFirst,
        "booleanToString" => Transform::BooleanToString,
        "booleanToYesNo" => Transform::BooleanToYesNo,
        "nullToDefault" => Transform::NullToDefault {
            default: options.get("default").cloned().unwrap_or(Value::Null),
        },
        "valueMap" => {
            let entries = options.get("map").and_then(Value::as_object);
            let map: HashMap<String, Value> = entries
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut folded = HashMap::new();
            for (k, v) in entries.into_iter().flatten() {
                folded
                    .entry(k.trim().to_lowercase())
                    .or_insert_with(|| v.clone());
            }
            Transform::ValueMap {
                map,
                folded,
                default: options.get("default").cloned(),
            }
        }
        // The name was found in TRANSFORMS; `trim` is the only one left.
        _ => Transform::Trim,
    }
}

/// A JSON type name for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(transform: &str, wants: &str, got: &Value) -> String {
    format!("{transform} takes {wants}, not {}", kind(got))
}

/// A finite number as JSON: whole values within ±2^53 as integers.
fn number(x: f64) -> Option<Value> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if x.fract() == 0.0 && x.abs() < EXACT {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "whole and within ±2^53, so exact"
        )]
        return Some(Value::from(x as i64));
    }
    Number::from_f64(x).map(Value::Number)
}

/// A number, or a numeric string, as `f64` (`Ok(None)` for a blank string).
fn numeric(transform: &str, v: &Value) -> Result<Option<f64>, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{transform}: {n} is out of range")),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(format!("{transform}: {} is not a number", quoted(s))),
        },
        other => Err(wrong(transform, "a number or a numeric string", other)),
    }
}

/// The text a scalar is looked up by in `valueMap`.
fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Transform {
    /// Applies the transform to a value (`None`: absent). An `Err` is the
    /// reason it cannot apply to this input.
    pub fn apply(&self, input: Option<Value>) -> Result<Applied, String> {
        if let Self::NullToDefault { default } = self {
            let blank = match &input {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            return Applied::value(if blank { Some(default.clone()) } else { input });
        }
        match input {
            None => Applied::value(None),
            Some(Value::Null) => Applied::value(Some(Value::Null)),
            Some(v) => self.apply_value(v),
        }
    }

    fn apply_value(&self, v: Value) -> Result<Applied, String> {
        let out = match self {
            Self::DateToIso => dates::read("dateToISO", &v)?.map(|d| Value::String(dates::iso(&d))),
            Self::DateToUnix => dates::read("dateToUnix", &v)?.map(|d| Value::from(d.timestamp())),
            Self::StringToNumber => match v {
                Value::Number(_) => Some(v),
                other => match numeric("stringToNumber", &other)? {
                    None => Some(Value::Null),
                    Some(x) => number(x),
                },
            },
            Self::RoundToDecimals { decimals } => match numeric("roundToDecimals", &v)? {
                None => Some(Value::Null),
                Some(x) => {
                    let scale = 10f64.powi(i32::try_from(*decimals).unwrap_or(10));
                    let rounded = (x * scale).round() / scale;
                    let rounded = if rounded.is_finite() { rounded } else { x };
                    if *decimals == 0 {
                        number(rounded)
                    } else {
                        Number::from_f64(rounded).map(Value::Number)
                    }
                }
            },
            Self::ToLowerCase => match v {
                Value::String(s) => Some(Value::String(s.to_lowercase())),
                other => return Err(wrong("toLowerCase", "a string", &other)),
            },
            Self::ToUpperCase => match v {
                Value::String(s) => Some(Value::String(s.to_uppercase())),
                other => return Err(wrong("toUpperCase", "a string", &other)),
            },
            Self::Trim => match v {
                Value::String(s) => Some(Value::String(s.trim().to_owned())),
                other => return Err(wrong("trim", "a string", &other)),
            },
            Self::ArrayToString { separator } => match v {
                Value::String(_) => Some(v),
                Value::Array(items) => Some(Value::String(join(&items, separator)?)),
                other => return Err(wrong("arrayToString", "an array", &other)),
            },
            Self::SplitToArray { separator } => match v {
                Value::Array(_) => Some(v),
                Value::String(s) => Some(Value::Array(
                    s.split(separator.as_str())
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                )),
                other => return Err(wrong("splitToArray", "a string", &other)),
            },
            Self::ArrayFirst => match v {
                Value::Array(items) => items.into_iter().next(),
                other => return Err(wrong("arrayFirst", "an array", &other)),
            },
            Self::BooleanToString => Some(Value::from(if truth("booleanToString", &v, false)? {
                "true"
            } else {
                "false"
            })),
            Self::BooleanToYesNo => Some(Value::from(if truth("booleanToYesNo", &v, true)? {
                "Yes"
            } else {
                "No"
            })),
            Self::ValueMap {
                map,
                folded,
                default,
            } => {
                let Some(key) = key_of(&v) else {
                    return Err(wrong("valueMap", "a string, number or boolean", &v));
                };
                let found = map
                    .get(&key)
                    .or_else(|| folded.get(&key.trim().to_lowercase()));
                match (found, default) {
                    (Some(out), _) | (None, Some(out)) => Some(out.clone()),
                    (None, None) => {
                        return Ok(Applied {
                            warning: Some(format!(
                                "valueMap: {} is not in the map and there is no default; kept as it is",
                                quoted(&key)
                            )),
                            value: Some(v),
                        });
                    }
                }
            }
            Self::NullToDefault { .. } => Some(v),
        };
        Applied::value(out)
    }
}

fn join(items: &[Value], separator: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut first = true;
    for item in items {
        let text = match item {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "arrayToString takes an array of strings, numbers or booleans, not one holding {}",
                    kind(other)
                ));
            }
        };
        if !first {
            out.push_str(separator);
        }
        first = false;
        out.push_str(&text);
    }
    Ok(out)
}

/// A boolean read from a boolean, the strings `true`/`false` (any case),
/// and, when `numbers`, 1 and 0.
fn truth(transform: &str, v: &Value, numbers: bool) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        Value::Number(n) if numbers && n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if numbers && n.as_f64() == Some(0.0) => Ok(false),
        other => Err(if numbers {
            format!(
                "{transform} takes a boolean, \"true\"/\"false\" or 1/0, not {}",
                describe(other)
            )
        } else {
            format!(
                "{transform} takes a boolean or \"true\"/\"false\", not {}",
                describe(other)
            )
        }),
    }
}

/// A short description of a value for messages: its type, and a scalar's value.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {}", quoted(s)),
        Value::Number(n) => format!("the number {n}"),
        other => kind(other).to_owned(),
    }
}

/// A string quoted for a message, cut at 40 characters: enough to find the
/// record, without copying a whole field into logs and execution errors.
pub(super) fn quoted(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}
