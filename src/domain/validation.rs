//! Field-level input violations, addressed by JSON pointers (RFC 6901).

use serde::Serialize;

/// One bad field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Violation {
    /// JSON pointer into the request body (`/syncConfig/entityMappings/0/id`).
    pub pointer: String,
    /// What is wrong, for a person.
    pub detail: String,
}

/// Every bad field of one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// Adds a violation.
    pub fn add(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        let pointer = pointer.into();
        if !self.0.iter().any(|v| v.pointer == pointer) {
            self.0.push(Violation {
                pointer,
                detail: detail.into(),
            });
        }
    }

    /// A single violation.
    pub fn one(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut v = Self::default();
        v.add(pointer, detail);
        v
    }

    /// Whether a pointer already has a violation.
    pub fn has(&self, pointer: &str) -> bool {
        self.0.iter().any(|v| v.pointer == pointer)
    }

    /// No violations.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations, taken out.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    /// The violations, in the order found.
    pub fn as_slice(&self) -> &[Violation] {
        &self.0
    }

    /// `Ok(())` when empty.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Checks a string's length in characters, after trimming.
    pub fn text(&mut self, pointer: &str, value: &str, min: usize, max: usize) {
        let n = value.trim().chars().count();
        if n < min {
            self.add(
                pointer,
                if min == 1 {
                    "must not be blank".to_owned()
                } else {
                    format!("must have at least {min} characters")
                },
            );
        } else if value.chars().count() > max {
            self.add(pointer, format!("must have at most {max} characters"));
        }
    }
}

/// Escapes one reference token of a JSON pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Whether `s` is a slug: `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}
