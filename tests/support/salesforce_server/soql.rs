//! The SOQL subset the local Salesforce server understands: `SELECT` of
//! field names and relationship paths, `FROM` one object, `WHERE` with
//! comparisons (`= != < > <= >=`), `IN`/`NOT IN`, `LIKE`, `AND`/`OR`/`NOT`
//! and parentheses, `ORDER BY SystemModstamp, Id` and `LIMIT`. Anything
//! else (functions, sub-queries, `GROUP BY`, `OFFSET`, other orders, bad
//! escapes) is refused, as Salesforce does, with `MALFORMED_QUERY`.

use chrono::{DateTime, Utc};

/// A literal of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    At(DateTime<Utc>),
}

/// A `WHERE` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: String,
        op: String,
        lit: Lit,
    },
    In {
        field: String,
        list: Vec<Lit>,
        negated: bool,
    },
    Like {
        field: String,
        pattern: String,
    },
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<String>,
    pub from: String,
    pub filter: Option<Expr>,
    pub ordered: bool,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(String),
    Open,
    Close,
    Comma,
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-')
}

fn tokens(q: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '=' | '<' | '>' | '!' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = if matches!(two.as_str(), "!=" | "<=" | ">=" | "<>") {
                    two
                } else if c == '!' {
                    return Err("unexpected '!'".into());
                } else {
                    c.to_string()
                };
                i += op.len();
                out.push(Tok::Op(if op == "<>" { "!=".into() } else { op }));
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated string literal".into());
                    };
                    i += 1;
                    match c {
                        '\'' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err("unterminated escape".into());
                            };
                            i += 1;
                            match e {
                                'n' | 'N' => s.push('\n'),
                                'r' | 'R' => s.push('\r'),
                                't' | 'T' => s.push('\t'),
                                'b' | 'B' => s.push('\u{8}'),
                                'f' | 'F' => s.push('\u{c}'),
                                '"' | '\'' | '\\' => s.push(e),
                                // Kept escaped: they mean themselves in LIKE.
                                '%' | '_' => {
                                    s.push('\\');
                                    s.push(e);
                                }
                                'u' => {
                                    let hex: String =
                                        chars.get(i..i + 4).ok_or("bad \\u")?.iter().collect();
                                    i += 4;
                                    let n = u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u")?;
                                    s.push(char::from_u32(n).ok_or("bad \\u")?);
                                }
                                other => return Err(format!("invalid escape sequence \\{other}")),
                            }
                        }
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            c if word_char(c) => {
                let start = i;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected token: '{other}'")),
        }
    }
    Ok(out)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT", "ASC",
    "DESC", "GROUP", "HAVING", "OFFSET", "NULLS", "WITH", "FOR", "USING",
];

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn kw(&mut self, kw: &str) -> Result<(), String> {
        if self.is_kw(kw) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expecting {kw}, found {:?}", self.peek()))
        }
    }
    fn name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w))
                if is_name(&w) && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&w)) =>
            {
                Ok(w)
            }
            other => Err(format!("expecting a field or object name, found {other:?}")),
        }
    }
    fn literal(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Word(w)) if w.contains('T') && w.contains(':') => {
                DateTime::parse_from_rfc3339(&w)
                    .map(|t| Lit::At(t.with_timezone(&Utc)))
                    .map_err(|_| format!("invalid dateTime literal {w}"))
            }
            Some(Tok::Word(w)) => w
                .parse::<f64>()
                .map(Lit::Num)
                .map_err(|_| format!("unexpected token: {w}")),
            other => Err(format!("expecting a literal, found {other:?}")),
        }
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.is_kw("OR") {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.unary()?];
        while self.is_kw("AND") {
            self.at += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.is_kw("NOT") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::Open) {
            self.at += 1;
            let e = self.expr()?;
            return match self.next() {
                Some(Tok::Close) => Ok(e),
                other => Err(format!("expecting ')', found {other:?}")),
            };
        }
        let field = self.name()?;
        let negated = self.is_kw("NOT");
        if negated {
            self.at += 1;
        }
        if self.is_kw("IN") {
            self.at += 1;
            if self.next() != Some(Tok::Open) {
                return Err("expecting '(' after IN".into());
            }
            let mut list = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Tok::Comma) => list.push(self.literal()?),
                    Some(Tok::Close) => break,
                    other => return Err(format!("expecting ',' or ')', found {other:?}")),
                }
            }
            return Ok(Expr::In {
                field,
                list,
                negated,
            });
        }
        if negated {
            return Err("expecting IN after NOT".into());
        }
        if self.is_kw("LIKE") {
            self.at += 1;
            return match self.next() {
                Some(Tok::Str(pattern)) => Ok(Expr::Like { field, pattern }),
                other => Err(format!("LIKE takes a string, found {other:?}")),
            };
        }
        match self.next() {
            Some(Tok::Op(op)) => Ok(Expr::Cmp {
                field,
                op,
                lit: self.literal()?,
            }),
            other => Err(format!("expecting an operator, found {other:?}")),
        }
    }
}

/// Parses a query of the subset; the error is the `MALFORMED_QUERY` message.
pub fn parse(q: &str) -> Result<Query, String> {
    let mut p = Parser {
        toks: tokens(q)?,
        at: 0,
    };
    p.kw("SELECT")?;
    let mut fields = vec![p.name()?];
    while p.peek() == Some(&Tok::Comma) {
        p.at += 1;
        fields.push(p.name()?);
    }
    p.kw("FROM")?;
    let from = p.name()?;
    if from.contains('.') {
        return Err(format!("unexpected token: {from}"));
    }
    let filter = if p.is_kw("WHERE") {
        p.at += 1;
        Some(p.expr()?)
    } else {
        None
    };
    let mut ordered = false;
    if p.is_kw("ORDER") {
        p.at += 1;
        p.kw("BY")?;
        for (i, want) in ["SystemModstamp", "Id"].iter().enumerate() {
            if i > 0 && p.next() != Some(Tok::Comma) {
                return Err("only ORDER BY SystemModstamp, Id is supported here".into());
            }
            if !p.name()?.eq_ignore_ascii_case(want) {
                return Err("only ORDER BY SystemModstamp, Id is supported here".into());
            }
            if p.is_kw("ASC") {
                p.at += 1;
            }
        }
        ordered = true;
    }
    let mut limit = None;
    if p.is_kw("LIMIT") {
        p.at += 1;
        match p.next() {
            Some(Tok::Word(w)) => limit = Some(w.parse().map_err(|_| format!("bad LIMIT {w}"))?),
            other => return Err(format!("bad LIMIT {other:?}")),
        }
    }
    if let Some(t) = p.peek() {
        return Err(format!("unexpected token: {t:?}"));
    }
    Ok(Query {
        fields,
        from,
        filter,
        ordered,
        limit,
    })
}

/// Whether `value` matches a LIKE `pattern` (`%`, `_`, `\%`, `\_`), case-insensitively.
pub fn like(value: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Ch(char),
    }
    let mut ps = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        ps.push(match c {
            '\\' => P::Ch(it.next().unwrap_or('\\')),
            '%' => P::Any,
            '_' => P::One,
            c => P::Ch(c),
        });
    }
    let v: Vec<char> = value.to_lowercase().chars().collect();
    fn go(ps: &[P], v: &[char]) -> bool {
        match ps.first() {
            None => v.is_empty(),
            Some(P::Any) => (0..=v.len()).any(|i| go(&ps[1..], &v[i..])),
            Some(P::One) => !v.is_empty() && go(&ps[1..], &v[1..]),
            Some(P::Ch(c)) => {
                v.first()
                    .is_some_and(|x| c.to_lowercase().eq(std::iter::once(*x)))
                    && go(&ps[1..], &v[1..])
            }
        }
    }
    go(&ps, &v)
}
