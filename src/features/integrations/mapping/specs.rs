//! The list of built-in transforms (SPEC §9.4) with their option schemas:
//! what `GET /api/v1/integrations/transform-functions` answers, and what
//! [`super::transforms::check`] checks options against.

use serde_json::Value;

/// The type of a transform option, as the listing names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// A whole number within `min..=max`.
    Integer {
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// A string of `1..=max` characters.
    Text {
        /// Longest accepted, in characters.
        max: usize,
    },
    /// An object of string keys (1 to 1,000 entries).
    Object,
    /// Any JSON value, `null` included.
    Any,
}

impl OptionKind {
    /// The JSON type name shown in the listing.
    pub fn name(self) -> &'static str {
        match self {
            Self::Integer { .. } => "integer",
            Self::Text { .. } => "string",
            Self::Object => "object",
            Self::Any => "any",
        }
    }
}

/// The default of an optional option, for the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionDefault {
    /// A number.
    Integer(u64),
    /// A string.
    Text(&'static str),
}

impl OptionDefault {
    /// As JSON.
    pub fn to_json(self) -> Value {
        match self {
            Self::Integer(n) => Value::from(n),
            Self::Text(s) => Value::from(s),
        }
    }
}

/// One option of a transform.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// Key in `transformOptions`.
    pub name: &'static str,
    /// Its type.
    pub kind: OptionKind,
    /// Must be given.
    pub required: bool,
    /// Used when not given.
    pub default: Option<OptionDefault>,
    /// What it does.
    pub description: &'static str,
}

/// One built-in transform, as listed by `GET /api/v1/integrations/transform-functions`.
#[derive(Debug, Clone, Copy)]
pub struct TransformSpec {
    /// Name used in `transform`.
    pub name: &'static str,
    /// What it does, which inputs it takes.
    pub description: &'static str,
    /// Its options.
    pub options: &'static [OptionSpec],
}

/// Default `decimals` of `roundToDecimals`.
pub const DEFAULT_DECIMALS: u64 = 2;
/// Default `separator` of `arrayToString`.
pub const DEFAULT_JOIN: &str = ", ";
/// Default `separator` of `splitToArray` (Salesforce multi-select picklists).
pub const DEFAULT_SPLIT: &str = ";";

const SEPARATOR_MAX: usize = 16;

/// The built-in transforms (SPEC §9.4).
pub const TRANSFORMS: &[TransformSpec] = &[
    TransformSpec {
        name: "dateToISO",
        description: "A date to an ISO 8601 UTC timestamp with milliseconds (`2024-05-01T10:00:00.000Z`). \
            Takes RFC 3339 timestamps, Salesforce timestamps (`2024-05-01T10:00:00.000+0000`), dates \
            (`2024-05-01`, midnight UTC), timestamps without an offset (read as UTC) and Unix seconds.",
        options: &[],
    },
    TransformSpec {
        name: "dateToUnix",
        description: "A date (the inputs of dateToISO) to whole Unix seconds.",
        options: &[],
    },
    TransformSpec {
        name: "stringToNumber",
        description: "A numeric string (`\"10000.50\"`) to a number; numbers pass unchanged; an empty string becomes null.",
        options: &[],
    },
    TransformSpec {
        name: "roundToDecimals",
        description: "A number or numeric string rounded half away from zero.",
        options: &[OptionSpec {
            name: "decimals",
            kind: OptionKind::Integer { min: 0, max: 10 },
            required: false,
            default: Some(OptionDefault::Integer(DEFAULT_DECIMALS)),
            description: "Digits after the decimal point, 0 to 10 (0 gives an integer).",
        }],
    },
    TransformSpec {
        name: "toLowerCase",
        description: "A string in lower case.",
        options: &[],
    },
    TransformSpec {
        name: "toUpperCase",
        description: "A string in upper case.",
        options: &[],
    },
    TransformSpec {
        name: "trim",
        description: "A string without leading and trailing white space.",
        options: &[],
    },
    TransformSpec {
        name: "arrayToString",
        description: "An array of strings, numbers or booleans joined into one string (nulls left out); a string passes unchanged.",
        options: &[OptionSpec {
            name: "separator",
            kind: OptionKind::Text { max: SEPARATOR_MAX },
            required: false,
            default: Some(OptionDefault::Text(DEFAULT_JOIN)),
            description: "Put between the items.",
        }],
    },
    TransformSpec {
        name: "splitToArray",
        description: "A string split into an array of trimmed, non-empty strings (Salesforce multi-select picklists `a;b;c`); an array passes unchanged.",
        options: &[OptionSpec {
            name: "separator",
            kind: OptionKind::Text { max: SEPARATOR_MAX },
            required: false,
            default: Some(OptionDefault::Text(DEFAULT_SPLIT)),
            description: "Where to split.",
        }],
    },
    TransformSpec {
        name: "arrayFirst",
        description: "The first item of an array; an empty array gives no value.",
        options: &[],
    },
    TransformSpec {
        name: "booleanToString",
        description: "A boolean (or the strings `true`/`false`, any case) to `\"true\"` or `\"false\"`.",
        options: &[],
    },
    TransformSpec {
        name: "booleanToYesNo",
        description: "true, `\"true\"`, 1 to `\"Yes\"`; false, `\"false\"`, 0 to `\"No\"`.",
        options: &[],
    },
    TransformSpec {
        name: "nullToDefault",
        description: "An absent value, null or an empty string replaced by `default`; other values pass unchanged.",
        options: &[OptionSpec {
            name: "default",
            kind: OptionKind::Any,
            required: true,
            default: None,
            description: "The replacement (any JSON value).",
        }],
    },
    TransformSpec {
        name: "valueMap",
        description: "A string, number or boolean looked up in `map` (exact key first, then ignoring case and \
            surrounding white space); a value not in the map becomes `default` when given, else passes \
            unchanged with a warning.",
        options: &[
            OptionSpec {
                name: "map",
                kind: OptionKind::Object,
                required: true,
                default: None,
                description: "Input value (as text) → output value, 1 to 1,000 entries.",
            },
            OptionSpec {
                name: "default",
                kind: OptionKind::Any,
                required: false,
                default: None,
                description: "Output for a value not in the map.",
            },
        ],
    },
];

/// The names of the built-in transforms.
pub fn names() -> impl Iterator<Item = &'static str> {
    TRANSFORMS.iter().map(|t| t.name)
}
