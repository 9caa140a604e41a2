//! From a field name in a request to what the index holds: which tantivy field and JSON path, of
//! which type, and query values converted by the field's mapping (so `"200"` finds a `long` 200,
//! and `"now-15m"` a date).

use std::ops::Bound;

use serde_json::Value;
use tantivy::query::{
    AllQuery, EmptyQuery, ExistsQuery, PhrasePrefixQuery, Query, RangeQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DateTime, Term};

use crate::date::{date_math, DateFormat};
use crate::document::scalar_text;
use crate::error::{ApiError, ApiResult};
use crate::mapping::{FieldMapping, Mapping, NumberType};
use crate::store::{Fields, EXACT};

/// What a request's field name refers to.
#[derive(Clone, Debug)]
pub enum Target {
    /// An exact value at a JSON path of [`EXACT`].
    Exact { path: String, kind: ExactKind },
    /// Analyzed text at a JSON path of the analyzed field.
    Text { path: String },
    /// `_id`.
    Id,
    /// An object (only `exists` applies).
    Object { path: String },
    /// Not in the mapping: matches nothing, as in OpenSearch.
    Unmapped,
}

/// The type of an exact value.
#[derive(Clone, Debug)]
pub enum ExactKind {
    /// keyword, ip, flat_object: strings.
    Str,
    /// integer, long.
    Integer,
    /// float, double (float at 32 bits).
    Float(NumberType),
    /// boolean.
    Bool,
    /// date, with its format.
    Date(DateFormat),
}

/// One query value, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed {
    /// A string.
    Str(String),
    /// A whole number.
    I64(i64),
    /// A fraction.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// Epoch milliseconds.
    Date(i64),
}

/// Resolves field names and builds queries for one index.
pub struct Resolver<'a> {
    /// The index's mapping.
    pub mapping: &'a Mapping,
    /// The tantivy fields.
    pub fields: Fields,
    /// The analyzer text fields were indexed with.
    pub analyzer: TextAnalyzer,
    /// "now" for date math.
    pub now_millis: i64,
}

impl Resolver<'_> {
    /// What `field` refers to.
    pub fn target(&self, field: &str) -> Target {
        if field == "_id" {
            return Target::Id;
        }
        match self.mapping.field(field) {
            None => Target::Unmapped,
            Some(FieldMapping::Text { .. }) => Target::Text {
                path: field.to_owned(),
            },
            Some(FieldMapping::Object(_)) => Target::Object {
                path: field.to_owned(),
            },
            Some(other) => Target::Exact {
                path: field.to_owned(),
                kind: match other {
                    FieldMapping::Number(n, _) if n.is_integral() => ExactKind::Integer,
                    FieldMapping::Number(n, _) => ExactKind::Float(*n),
                    FieldMapping::Boolean => ExactKind::Bool,
                    FieldMapping::Date { format, .. } => ExactKind::Date(format.clone()),
                    _ => ExactKind::Str,
                },
            },
        }
    }

    /// A query value converted by the field's type. `round_up` for dates in `lte` / `gt`.
    pub fn typed(
        &self,
        field: &str,
        kind: &ExactKind,
        value: &Value,
        format: Option<&DateFormat>,
        round_up: bool,
    ) -> ApiResult<Typed> {
        let failed = |reason: String| {
            ApiError::new(
                400,
                "query_shard_exception",
                format!("failed to create query: {reason}"),
            )
            .with("index_uuid", "_na_")
        };
        match kind {
            ExactKind::Str => Ok(Typed::Str(scalar_text(value))),
            ExactKind::Integer | ExactKind::Float(_) => {
                let number = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| failed(format!("For input string: \"{}\"", scalar_text(value))))?;
                Ok(match kind {
                    ExactKind::Integer if number.fract() == 0.0 => Typed::I64(number as i64),
                    ExactKind::Float(NumberType::Float) => Typed::F64(number as f32 as f64),
                    _ => Typed::F64(number),
                })
            }
            ExactKind::Bool => match value {
                Value::Bool(b) => Ok(Typed::Bool(*b)),
                Value::String(s) if s == "true" || s == "false" => Ok(Typed::Bool(s == "true")),
                other => Err(failed(format!(
                    "Can't parse boolean value [{}], expected [true] or [false]",
                    scalar_text(other)
                ))),
            },
            ExactKind::Date(mapped) => {
                let format = format.unwrap_or(mapped);
                let millis = match value {
                    Value::String(text) => date_math(text, self.now_millis, format, round_up),
                    other => format.parse_value(other),
                }
                .map_err(|reason| failed(format!("{reason} (field [{field}])")))?;
                Ok(Typed::Date(millis))
            }
        }
    }

    fn exact_term(&self, path: &str, value: &Typed) -> Term {
        let mut term = Term::from_field_json_path(self.fields.exact, path, true);
        match value {
            Typed::Str(s) => term.append_type_and_str(s),
            Typed::I64(v) => term.append_type_and_fast_value(*v),
            Typed::F64(v) => term.append_type_and_fast_value(*v),
            Typed::Bool(v) => term.append_type_and_fast_value(*v),
            Typed::Date(ms) => {
                term.append_type_and_fast_value(DateTime::from_timestamp_millis(*ms))
            }
        }
        term
    }

    /// Documents whose `field` equals `value` (term semantics: no analysis of `value`).
    pub fn term(&self, field: &str, value: &Value) -> ApiResult<Box<dyn Query>> {
        match self.target(field) {
            Target::Unmapped | Target::Object { .. } => Ok(Box::new(EmptyQuery)),
            Target::Id => Ok(Box::new(TermQuery::new(
                Term::from_field_text(self.fields.id, &scalar_text(value)),
                IndexRecordOption::Basic,
            ))),
            Target::Text { path } => Ok(Box::new(TermQuery::new(
                self.text_term(&path, &scalar_text(value)),
                IndexRecordOption::WithFreqs,
            ))),
            Target::Exact { path, kind } => {
                let typed = self.typed(field, &kind, value, None, false)?;
                Ok(self.exact_equals(&path, &kind, typed))
            }
        }
    }

    fn exact_equals(&self, path: &str, kind: &ExactKind, typed: Typed) -> Box<dyn Query> {
        match kind {
            // Numbers and dates by range on the fast column: exact to the millisecond and free
            // of the inverted index's numeric normalization.
            ExactKind::Integer | ExactKind::Float(_) | ExactKind::Date(_) => {
                let term = self.exact_term(path, &typed);
                Box::new(RangeQuery::new(
                    Bound::Included(term.clone()),
                    Bound::Included(term),
                ))
            }
            ExactKind::Str | ExactKind::Bool => Box::new(TermQuery::new(
                self.exact_term(path, &typed),
                IndexRecordOption::WithFreqs,
            )),
        }
    }

    /// Documents whose `field` equals any of `values`.
    pub fn terms(&self, field: &str, values: &[Value]) -> ApiResult<Box<dyn Query>> {
        match self.target(field) {
            Target::Exact {
                path,
                kind: ExactKind::Str,
            } => {
                Ok(Box::new(TermSetQuery::new(values.iter().map(|v| {
                    self.exact_term(&path, &Typed::Str(scalar_text(v)))
                }))))
            }
            Target::Id => {
                Ok(Box::new(TermSetQuery::new(values.iter().map(|v| {
                    Term::from_field_text(self.fields.id, &scalar_text(v))
                }))))
            }
            _ => {
                let clauses = values
                    .iter()
                    .map(|value| Ok((tantivy::query::Occur::Should, self.term(field, value)?)))
                    .collect::<ApiResult<Vec<_>>>()?;
                Ok(Box::new(tantivy::query::BooleanQuery::new(clauses)))
            }
        }
    }

    /// The analyzed text side's term for a token.
    pub fn text_term(&self, path: &str, token: &str) -> Term {
        let mut term = Term::from_field_json_path(self.fields.analyzed, path, true);
        term.append_type_and_str(token);
        term
    }

    /// `text` run through the index's analyzer.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        stream.process(&mut |token| tokens.push(token.text.clone()));
        tokens
    }

    /// A range on `field`; bounds are `(value, inclusive)`.
    pub fn range(
        &self,
        field: &str,
        lower: Option<(&Value, bool)>,
        upper: Option<(&Value, bool)>,
        format: Option<&DateFormat>,
    ) -> ApiResult<Box<dyn Query>> {
        let (path, kind) = match self.target(field) {
            Target::Unmapped => return Ok(Box::new(EmptyQuery)),
            Target::Exact { path, kind } => (path, kind),
            Target::Text { .. } | Target::Object { .. } | Target::Id => {
                return Err(ApiError::new(
                    400,
                    "query_shard_exception",
                    format!("failed to create query: range queries on field [{field}] are not served (only keyword, numeric, date, boolean and ip fields)"),
                ))
            }
        };
        // gt rounds up and gte down; lt rounds down and lte up (OpenSearch's date math rules).
        let bound = |value: Option<(&Value, bool)>, is_lower: bool| -> ApiResult<Bound<Term>> {
            let Some((value, inclusive)) = value else {
                return Ok(Bound::Unbounded);
            };
            let round_up = is_lower != inclusive;
            let typed = self.typed(field, &kind, value, format, round_up)?;
            let term = self.exact_term(&path, &typed);
            Ok(if inclusive {
                Bound::Included(term)
            } else {
                Bound::Excluded(term)
            })
        };
        let (lower, upper) = (bound(lower, true)?, bound(upper, false)?);
        if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
            return Ok(self.exists(field));
        }
        Ok(Box::new(RangeQuery::new(lower, upper)))
    }

    /// Documents with a value in `field`: exact values by their fast column, text and objects
    /// by `_field_names`.
    pub fn exists(&self, field: &str) -> Box<dyn Query> {
        match self.target(field) {
            Target::Id => Box::new(AllQuery),
            Target::Exact { path, .. } => {
                Box::new(ExistsQuery::new(format!("{EXACT}.{path}"), false))
            }
            Target::Unmapped => Box::new(EmptyQuery),
            Target::Text { .. } | Target::Object { .. } => Box::new(TermQuery::new(
                Term::from_field_text(self.fields.field_names, field),
                IndexRecordOption::Basic,
            )),
        }
    }

    /// Documents whose `field` starts with `prefix`: a range over the exact side's sorted
    /// dictionary for keywords, an expansion over the tokens for text.
    pub fn prefix(&self, field: &str, prefix: &str) -> ApiResult<Box<dyn Query>> {
        let term = match self.target(field) {
            Target::Exact {
                path,
                kind: ExactKind::Str,
            } => {
                // Every string starting with `prefix` sorts between it and it + U+10FFFF.
                let lower = self.exact_term(&path, &Typed::Str(prefix.to_owned()));
                let upper = self.exact_term(&path, &Typed::Str(format!("{prefix}\u{10FFFF}")));
                return Ok(Box::new(RangeQuery::new(
                    Bound::Included(lower),
                    Bound::Included(upper),
                )));
            }
            Target::Text { path } => self.text_term(&path, &prefix.to_lowercase()),
            Target::Unmapped => return Ok(Box::new(EmptyQuery)),
            _ => {
                return Err(ApiError::new(
                    400,
                    "query_shard_exception",
                    format!("failed to create query: Can only use prefix queries on keyword and text fields - not on [{field}]"),
                ))
            }
        };
        let mut query = PhrasePrefixQuery::new(vec![term]);
        query.set_max_expansions(u32::MAX);
        Ok(Box::new(query))
    }
}
