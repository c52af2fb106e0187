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

    /// Checks a free-text field (a description): its length in characters,
    /// and that it holds no control character but line breaks and tabs and
    /// no bidirectional override. A value that is only white space and
    /// invisible characters (zero-width spaces, joiners) counts as blank.
    pub fn text(&mut self, pointer: &str, value: &str, min: usize, max: usize) {
        self.checked_text(pointer, value, min, max, |c| {
            matches!(c, '\n' | '\r' | '\t')
        });
    }

    /// [`Violations::text`] for a one-line field (a name): no line breaks
    /// or tabs either.
    pub fn line(&mut self, pointer: &str, value: &str, min: usize, max: usize) {
        self.checked_text(pointer, value, min, max, |_| false);
    }

    fn checked_text(
        &mut self,
        pointer: &str,
        value: &str,
        min: usize,
        max: usize,
        allowed_control: fn(char) -> bool,
    ) {
        if let Some(c) = value
            .chars()
            .find(|&c| (c.is_control() && !allowed_control(c)) || is_bidi_control(c))
        {
            self.add(
                pointer,
                format!(
                    "must not contain the control character U+{:04X}",
                    u32::from(c)
                ),
            );
            return;
        }
        let visible = value.chars().filter(|&c| !is_blank(c)).count();
        if visible < min {
            self.add(
                pointer,
                if min == 1 {
                    "must not be blank".to_owned()
                } else {
                    format!("must have at least {min} visible characters")
                },
            );
        } else if value.chars().count() > max {
            self.add(pointer, format!("must have at most {max} characters"));
        }
    }
}

/// White space, or a character that shows nothing (zero-width spaces and
/// joiners, word joiners, the byte-order mark, soft hyphen, invisible
/// operators, Hangul fillers): a value made only of these is blank.
pub fn is_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
}

/// The bidirectional embedding, override and isolate controls, which can
/// make a name read differently from what it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&mut Violations, &str, &str, usize, usize), value: &str) -> Option<String> {
        let mut v = Violations::default();
        f(&mut v, "/name", value, 1, 10);
        v.into_vec().pop().map(|v| v.detail)
    }

    #[test]
    fn names_refuse_invisible_and_control_characters() {
        assert_eq!(check(Violations::line, "Sales"), None);
        assert_eq!(check(Violations::line, "Ventes été"), None);
        for blank in ["", "   ", "\u{200B}\u{200B}", "\u{FEFF}", " \u{2060} "] {
            assert_eq!(
                check(Violations::line, blank).as_deref(),
                Some("must not be blank"),
                "{blank:?}"
            );
        }
        for bad in [
            "a\u{0}b",
            "\u{1b}[31mred",
            "a\nb",
            "abc\u{202E}txt",
            "\u{7f}",
        ] {
            let d = check(Violations::line, bad).unwrap_or_default();
            assert!(
                d.starts_with("must not contain the control character"),
                "{bad:?}: {d}"
            );
        }
        assert_eq!(check(Violations::text, "a\nb\tc"), None);
        assert!(check(Violations::text, "nul\u{0}").is_some());
        assert_eq!(
            check(Violations::line, "elevenchars").as_deref(),
            Some("must have at most 10 characters")
        );
    }
}
