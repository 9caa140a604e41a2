//! X-Ray filter expressions: the subset loadgen and the tests use, parsed strictly.
//!
//! Grammar (X-Ray guide, "Filter expressions"), conjunctions only:
//! `term (AND term)*` where a term is `annotation.KEY = VALUE`, `annotation.KEY != VALUE`,
//! `service("NAME")`, `ok`, `error`, `fault`, `throttle`, or `!` before one of the last four.
//! VALUE is a double-quoted string, a number, `true` or `false`. Anything else is refused with a
//! message (the API answers 400 `InvalidRequestException`), never silently matched.

use std::fmt;
use std::str::FromStr;

/// An annotation value in an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `"text"`.
    String(String),
    /// `42`, `4.5`.
    Number(f64),
    /// `true` / `false`.
    Bool(bool),
}

/// One condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// `annotation.KEY = VALUE` (or `!=` when `negated`).
    Annotation {
        /// The key.
        key: String,
        /// The value compared with.
        value: Literal,
        /// `!=` instead of `=`.
        negated: bool,
    },
    /// `service("NAME")`: some segment of the trace is from NAME.
    Service(String),
    /// `ok` / `error` / `fault` / `throttle`, possibly negated.
    Flag {
        /// Which flag.
        flag: Flag,
        /// `!flag`.
        negated: bool,
    },
}

/// A trace-level flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// No error, fault or throttle.
    Ok,
    /// Some segment has `error`.
    Error,
    /// Some segment has `fault`.
    Fault,
    /// Some segment has `throttle`.
    Throttle,
}

/// A parsed expression: every term must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterExpression {
    /// The terms, all of which must hold.
    pub terms: Vec<Term>,
}

/// Why an expression was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter expression: {0}")]
pub struct FilterError(pub String);

fn parse_literal(raw: &str) -> Result<Literal, FilterError> {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        if inner.contains('"') {
            return Err(FilterError(format!("bad string {raw}")));
        }
        return Ok(Literal::String(inner.to_owned()));
    }
    match raw {
        "true" => Ok(Literal::Bool(true)),
        "false" => Ok(Literal::Bool(false)),
        _ => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Literal::Number)
            .ok_or_else(|| FilterError(format!("bad value {raw}"))),
    }
}

fn parse_term(raw: &str) -> Result<Term, FilterError> {
    let raw = raw.trim();
    let (negated, word) = match raw.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, raw),
    };
    let flag = match word {
        "ok" => Some(Flag::Ok),
        "error" => Some(Flag::Error),
        "fault" => Some(Flag::Fault),
        "throttle" => Some(Flag::Throttle),
        _ => None,
    };
    if let Some(flag) = flag {
        return Ok(Term::Flag { flag, negated });
    }
    if negated {
        return Err(FilterError(format!(
            "'!' only applies to ok, error, fault, throttle: {raw}"
        )));
    }
    if let Some(args) = raw
        .strip_prefix("service(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return match parse_literal(args)? {
            Literal::String(name) => Ok(Term::Service(name)),
            _ => Err(FilterError(format!("service() takes a string: {raw}"))),
        };
    }
    if let Some(rest) = raw.strip_prefix("annotation.") {
        let (key, value, negated) = if let Some((k, v)) = rest.split_once("!=") {
            (k, v, true)
        } else if let Some((k, v)) = rest.split_once('=') {
            (k, v, false)
        } else {
            return Err(FilterError(format!("expected = or != in {raw}")));
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(FilterError(format!("bad annotation key {key:?}")));
        }
        return Ok(Term::Annotation {
            key: key.to_owned(),
            value: parse_literal(value.trim())?,
            negated,
        });
    }
    Err(FilterError(format!("unsupported term {raw:?}")))
}

impl FromStr for FilterExpression {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > 2000 {
            return Err(FilterError("longer than 2000 characters".to_owned()));
        }
        if s.trim().is_empty() {
            return Ok(Self { terms: Vec::new() });
        }
        // Split on AND outside quotes.
        let mut terms = Vec::new();
        let mut current = String::new();
        let mut in_quotes = false;
        let tokens: Vec<&str> = s.split_inclusive(char::is_whitespace).collect();
        for token in tokens {
            in_quotes ^= token.matches('"').count() % 2 == 1;
            if !in_quotes && token.trim() == "AND" {
                terms.push(parse_term(&current)?);
                current.clear();
            } else {
                current.push_str(token);
            }
        }
        if in_quotes {
            return Err(FilterError("unterminated string".to_owned()));
        }
        terms.push(parse_term(&current)?);
        Ok(Self { terms })
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "\"{s}\""),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for FilterExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            match term {
                Term::Annotation {
                    key,
                    value,
                    negated,
                } => write!(
                    f,
                    "annotation.{key} {} {value}",
                    if *negated { "!=" } else { "=" }
                )?,
                Term::Service(name) => write!(f, "service(\"{name}\")")?,
                Term::Flag { flag, negated } => {
                    let word = match flag {
                        Flag::Ok => "ok",
                        Flag::Error => "error",
                        Flag::Fault => "fault",
                        Flag::Throttle => "throttle",
                    };
                    write!(f, "{}{word}", if *negated { "!" } else { "" })?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table() {
        // (input, canonical form, or None when refused)
        let table: &[(&str, Option<&str>)] = &[
            (
                "annotation.run_id = \"r-1\"",
                Some("annotation.run_id = \"r-1\""),
            ),
            (
                "annotation.run_id=\"r 1 AND x\"",
                Some("annotation.run_id = \"r 1 AND x\""),
            ),
            (
                "annotation.order_total != 12.5",
                Some("annotation.order_total != 12.5"),
            ),
            (
                "annotation.ok = true AND fault",
                Some("annotation.ok = true AND fault"),
            ),
            (
                "service(\"order\") AND !error",
                Some("service(\"order\") AND !error"),
            ),
            ("", Some("")),
            ("annotation.run_id", None),
            ("annotation.bad-key = 1", None),
            ("annotation.k = \"unterminated", None),
            ("annotation.k = nope", None),
            ("service(order)", None),
            ("responsetime > 5", None),
            ("!service(\"x\")", None),
            ("fault OR error", None),
            ("AND", None),
        ];
        for (input, expected) in table {
            let got = input
                .parse::<FilterExpression>()
                .ok()
                .map(|e| e.to_string());
            assert_eq!(got.as_deref(), *expected, "input {input:?}");
        }
    }
}
