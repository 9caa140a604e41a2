//! A source document read against its index's mapping, as OpenSearch's document parser does:
//! every value is checked and converted by its field's type (a `"-"` in a `long` field fails the
//! document with `mapper_parsing_exception`), unmapped fields follow `dynamic`, and new fields are
//! mapped from their first value.
//!
//! The output is what the index stores (see `store`): typed values per dotted path for the exact
//! (keyword, numeric, date, boolean, ip) side, strings per path for the analyzed (text) side, and
//! the paths present (for `exists`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};
use tantivy::schema::OwnedValue;

use crate::error::{ApiError, ApiResult};
use crate::mapping::{infer, mapper_parsing, Dynamic, FieldMapping, Mapping, NumberType};

/// What one document contributes to the index.
#[derive(Debug, Default, PartialEq)]
pub struct IndexedValues {
    /// Exact values per dotted path (keyword, numbers, dates, booleans, ips; text's keyword
    /// sub-fields at `path.<name>`); several values of one path as an array.
    pub exact: BTreeMap<String, OwnedValue>,
    /// Analyzed strings per dotted path (text fields).
    pub analyzed: BTreeMap<String, Vec<String>>,
    /// The text and object paths with a value (`exists` on them; exact values answer `exists`
    /// from their fast columns).
    pub field_names: Vec<String>,
    /// Fields whose value was skipped (`ignore_above`, `ignore_malformed`), as `_ignored`.
    pub ignored: Vec<String>,
}

/// The document's values and the fields dynamic mapping added.
#[derive(Debug, Default)]
pub struct ParsedDocument {
    /// What is indexed.
    pub values: IndexedValues,
    /// New fields, in the order they were met: (dotted path, mapping).
    pub new_fields: Vec<(String, FieldMapping)>,
}

/// Reads `source` (the document with id `id`) against `mapping`.
pub fn parse_document(
    mapping: &Mapping,
    source: &Map<String, Value>,
    id: &str,
) -> ApiResult<ParsedDocument> {
    let mut parser = Parser {
        mapping,
        id,
        parsed: ParsedDocument::default(),
    };
    parser.object("", source, mapping.root_dynamic())?;
    let names = &mut parser.parsed.values.field_names;
    names.sort();
    names.dedup();
    Ok(parser.parsed)
}

struct Parser<'a> {
    mapping: &'a Mapping,
    id: &'a str,
    parsed: ParsedDocument,
}

/// What a path is mapped to: borrowed from the index's mapping, or copied from a field this
/// document just added (so the parser can go on mutating).
enum Found<'a> {
    Leaf(Cow<'a, FieldMapping>),
    Object {
        dynamic: Option<Dynamic>,
        enabled: bool,
    },
    Missing,
}

impl<'a> Parser<'a> {
    fn lookup(&self, path: &str) -> Found<'a> {
        let added = self
            .parsed
            .new_fields
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|(_, f)| f);
        let field = match added {
            Some(field) => Cow::Owned(field.clone()),
            None => match self.mapping.field(path) {
                Some(field) => Cow::Borrowed(field),
                None => return Found::Missing,
            },
        };
        match field.as_ref() {
            FieldMapping::Object(object) => Found::Object {
                dynamic: object.dynamic,
                enabled: object.enabled,
            },
            _ => Found::Leaf(field),
        }
    }

    fn object(
        &mut self,
        prefix: &str,
        object: &Map<String, Value>,
        dynamic: Dynamic,
    ) -> ApiResult<()> {
        for (key, value) in object {
            if key.is_empty() || key.starts_with('.') || key.ends_with('.') {
                return Err(mapper_parsing(format!(
                    "field name cannot be an empty string (in [{prefix}{key}])"
                )));
            }
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            self.field(prefix, &path, value, dynamic)?;
        }
        Ok(())
    }

    fn field(
        &mut self,
        parent: &str,
        path: &str,
        value: &Value,
        dynamic: Dynamic,
    ) -> ApiResult<()> {
        if value.is_null() {
            return Ok(());
        }
        match self.lookup(path) {
            Found::Leaf(field) => self.leaf(&field, path, value),
            Found::Object {
                dynamic: own,
                enabled,
            } => {
                if !enabled {
                    return Ok(());
                }
                self.parsed.values.field_names.push(path.to_owned());
                self.object_values(path, value, own.unwrap_or(dynamic))
            }
            Found::Missing => self.unmapped(parent, path, value, dynamic),
        }
    }

    fn object_values(&mut self, path: &str, value: &Value, dynamic: Dynamic) -> ApiResult<()> {
        match value {
            Value::Object(object) => self.object(path, object, dynamic),
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| self.object_values(path, item, dynamic)),
            Value::Null => Ok(()),
            _ => {
                let key = path.rsplit('.').next().unwrap_or(path);
                Err(mapper_parsing(format!(
                    "object mapping for [{path}] tried to parse field [{key}] as object, but found a concrete value"
                )))
            }
        }
    }

    fn unmapped(
        &mut self,
        parent: &str,
        path: &str,
        value: &Value,
        dynamic: Dynamic,
    ) -> ApiResult<()> {
        // A dotted key under a field that is not an object cannot be mapped.
        let mut ancestor = path;
        while let Some((head, _)) = ancestor.rsplit_once('.') {
            if let Found::Leaf(field) = self.lookup(head) {
                return Err(mapper_parsing(format!(
                    "Could not dynamically add mapping for field [{path}]. Existing mapping for [{head}] must be of type object but found [{}].",
                    field.type_name()
                )));
            }
            ancestor = head;
        }
        match dynamic {
            Dynamic::False => Ok(()),
            Dynamic::Strict => {
                let key = path.strip_prefix(&format!("{parent}.")).unwrap_or(path);
                let within = if parent.is_empty() { "_doc" } else { parent };
                Err(ApiError::new(
                    400,
                    "strict_dynamic_mapping_exception",
                    format!(
                        "mapping set to strict, dynamic introduction of [{key}] within [{within}] is not allowed"
                    ),
                ))
            }
            Dynamic::True => {
                let Some(field) = infer(value, self.mapping.date_detection) else {
                    return Ok(());
                };
                self.parsed.new_fields.push((path.to_owned(), field));
                self.field(parent, path, value, dynamic)
            }
        }
    }

    fn leaf(&mut self, field: &FieldMapping, path: &str, value: &Value) -> ApiResult<()> {
        if let FieldMapping::FlatObject = field {
            return self.flat_object(path, path, value);
        }
        if let Value::Array(items) = value {
            return items
                .iter()
                .try_for_each(|item| self.leaf(field, path, item));
        }
        if value.is_null() {
            return Ok(());
        }
        match convert(field, value) {
            Ok(Converted::Exact(exact)) => self.push_exact(path, exact),
            Ok(Converted::Text(text)) => {
                if let FieldMapping::Text { keyword_fields } = field {
                    for (name, ignore_above) in keyword_fields {
                        let sub = format!("{path}.{name}");
                        if ignore_above.is_some_and(|limit| text.chars().count() > limit) {
                            self.parsed.values.ignored.push(sub);
                        } else {
                            self.push_exact(&sub, OwnedValue::Str(text.clone()));
                        }
                    }
                }
                self.parsed.values.field_names.push(path.to_owned());
                self.parsed
                    .values
                    .analyzed
                    .entry(path.to_owned())
                    .or_default()
                    .push(text);
            }
            Ok(Converted::Ignored) => self.parsed.values.ignored.push(path.to_owned()),
            Err(cause) => {
                if ignores_malformed(field) {
                    self.parsed.values.ignored.push(path.to_owned());
                } else {
                    return Err(self.parse_failure(field, path, value, cause));
                }
            }
        }
        Ok(())
    }

    fn push_exact(&mut self, path: &str, value: OwnedValue) {
        let exact = &mut self.parsed.values.exact;
        match exact.get_mut(path) {
            None => {
                exact.insert(path.to_owned(), value);
            }
            Some(OwnedValue::Array(values)) => values.push(value),
            Some(single) => {
                let first = std::mem::replace(single, OwnedValue::Null);
                *single = OwnedValue::Array(vec![first, value]);
            }
        }
    }

    /// `flat_object`: every leaf as a keyword under the field itself and under its dotted path.
    fn flat_object(&mut self, root: &str, path: &str, value: &Value) -> ApiResult<()> {
        match value {
            Value::Object(object) => {
                for (key, value) in object {
                    self.flat_object(root, &format!("{path}.{key}"), value)?;
                }
                Ok(())
            }
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| self.flat_object(root, path, item)),
            Value::Null => Ok(()),
            scalar if path == root => Err(self.parse_failure(
                &FieldMapping::FlatObject,
                path,
                scalar,
                ApiError::illegal_argument("flat_object field expects an object"),
            )),
            scalar => {
                let text = scalar_text(scalar);
                self.push_exact(root, OwnedValue::Str(text.clone()));
                self.push_exact(path, OwnedValue::Str(text));
                Ok(())
            }
        }
    }

    fn parse_failure(
        &self,
        field: &FieldMapping,
        path: &str,
        value: &Value,
        cause: ApiError,
    ) -> ApiError {
        let preview = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        mapper_parsing(format!(
            "failed to parse field [{path}] of type [{}] in document with id '{}'. Preview of field's value: '{preview}'",
            field.type_name(),
            self.id
        ))
        .caused_by(cause)
    }
}

fn ignores_malformed(field: &FieldMapping) -> bool {
    match field {
        FieldMapping::Number(_, options) => options.ignore_malformed,
        FieldMapping::Date {
            ignore_malformed, ..
        }
        | FieldMapping::Ip { ignore_malformed } => *ignore_malformed,
        _ => false,
    }
}

enum Converted {
    Exact(OwnedValue),
    Text(String),
    Ignored,
}

/// A JSON value as OpenSearch reads it as text: a string as it is, anything else as its JSON.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One scalar (not an array) converted by its field's type.
fn convert(field: &FieldMapping, value: &Value) -> ApiResult<Converted> {
    if value.is_object() {
        return Err(ApiError::new(
            400,
            "illegal_state_exception",
            format!(
                "Can't get text on a START_OBJECT for a field of type [{}]",
                field.type_name()
            ),
        ));
    }
    match field {
        FieldMapping::Keyword { ignore_above } => {
            let text = scalar_text(value);
            if ignore_above.is_some_and(|limit| text.chars().count() > limit) {
                Ok(Converted::Ignored)
            } else {
                Ok(Converted::Exact(OwnedValue::Str(text)))
            }
        }
        FieldMapping::Text { .. } => Ok(Converted::Text(scalar_text(value))),
        FieldMapping::Number(number, options) => {
            convert_number(*number, options.coerce, value).map(Converted::Exact)
        }
        FieldMapping::Boolean => match value {
            Value::Bool(b) => Ok(Converted::Exact(OwnedValue::Bool(*b))),
            Value::String(s) if s == "true" => Ok(Converted::Exact(OwnedValue::Bool(true))),
            Value::String(s) if s == "false" || s.is_empty() => {
                Ok(Converted::Exact(OwnedValue::Bool(false)))
            }
            other => Err(ApiError::illegal_argument(format!(
                "Failed to parse value [{}] as only [true] or [false] are allowed.",
                scalar_text(other)
            ))),
        },
        FieldMapping::Date { format, .. } => format
            .parse_value(value)
            .map(|millis| {
                Converted::Exact(OwnedValue::Date(tantivy::DateTime::from_timestamp_millis(
                    millis,
                )))
            })
            .map_err(ApiError::illegal_argument),
        FieldMapping::Ip { .. } => {
            let text = scalar_text(value);
            text.parse::<IpAddr>()
                .map(|ip| Converted::Exact(OwnedValue::Str(ip.to_string())))
                .map_err(|_| {
                    ApiError::illegal_argument(format!("'{text}' is not an IP string literal."))
                })
        }
        FieldMapping::Object(_) | FieldMapping::FlatObject => Err(ApiError::illegal_argument(
            "an object field got a concrete value",
        )),
    }
}

fn convert_number(number: NumberType, coerce: bool, value: &Value) -> ApiResult<OwnedValue> {
    let number_value: f64 = match value {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if coerce => s.trim().parse::<f64>().map_err(|_| {
            ApiError::new(
                400,
                "number_format_exception",
                format!("For input string: \"{s}\""),
            )
        })?,
        Value::String(s) => {
            return Err(ApiError::illegal_argument(format!(
                "Cannot parse string [{s}]: coerce is false"
            )))
        }
        other => {
            return Err(ApiError::illegal_argument(format!(
                "Current token ({}) not numeric, can not use numeric value accessors",
                match other {
                    Value::Bool(_) => "VALUE_BOOLEAN",
                    _ => "START_ARRAY",
                }
            )))
        }
    };
    if !number_value.is_finite() {
        return Err(ApiError::illegal_argument(format!(
            "[{}] supports only finite values, but got [{number_value}]",
            number.name()
        )));
    }
    match number {
        NumberType::Integer | NumberType::Long => {
            // An exact integer is taken as is (no f64 round trip), a fraction only with coerce.
            let whole = match value {
                Value::Number(n) if n.is_i64() => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            let whole = match whole {
                Some(whole) => whole,
                None if !coerce && number_value.fract() != 0.0 => {
                    return Err(ApiError::illegal_argument(format!(
                        "Value [{number_value}] has a decimal part"
                    )))
                }
                None => number_value.trunc() as i64,
            };
            let (min, max) = match number {
                NumberType::Integer => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if !(min as f64..=max as f64).contains(&number_value.trunc()) {
                return Err(ApiError::illegal_argument(format!(
                    "Value [{}] is out of range for {}",
                    scalar_text(value),
                    if number == NumberType::Integer {
                        "an integer"
                    } else {
                        "a long"
                    }
                )));
            }
            Ok(OwnedValue::I64(whole))
        }
        // A float is stored at 32 bits, so aggregations see what OpenSearch sees.
        NumberType::Float => Ok(OwnedValue::F64(number_value as f32 as f64)),
        NumberType::Double => Ok(OwnedValue::F64(number_value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(value: Value) -> Mapping {
        Mapping::parse(&value).unwrap()
    }

    fn source(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_converted_by_type() {
        let mapping = mapping(json!({"properties": {
            "duration": {"type": "long"}, "ratio": {"type": "float"},
            "service": {"type": "keyword"}, "ok": {"type": "boolean"},
            "message": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "ip": {"type": "ip"}
        }}));
        let parsed = parse_document(
            &mapping,
            &source(
                json!({"duration": "12", "ratio": 0.1, "service": 404, "ok": "true",
                "message": "Hello World", "ip": "10.0.0.1"}),
            ),
            "1",
        )
        .unwrap();
        let exact = &parsed.values.exact;
        assert_eq!(exact["duration"], OwnedValue::I64(12));
        assert_eq!(exact["ratio"], OwnedValue::F64(0.1f32 as f64));
        assert_eq!(exact["service"], OwnedValue::Str("404".into()));
        assert_eq!(exact["ok"], OwnedValue::Bool(true));
        assert_eq!(exact["message.raw"], OwnedValue::Str("Hello World".into()));
        assert_eq!(
            parsed.values.analyzed["message"],
            vec!["Hello World".to_owned()]
        );
        assert!(parsed.new_fields.is_empty());
    }

    #[test]
    fn a_dash_in_a_long_field_fails_the_document() {
        let mapping = mapping(json!({"properties": {"duration": {"type": "long"}}}));
        let error = parse_document(&mapping, &source(json!({"duration": "-"})), "abc").unwrap_err();
        assert_eq!(
            error.cause_json(),
            json!({"type": "mapper_parsing_exception",
                "reason": "failed to parse field [duration] of type [long] in document with id 'abc'. Preview of field's value: '-'",
                "caused_by": {"type": "number_format_exception", "reason": "For input string: \"-\""}})
        );
    }

    #[test]
    fn ignore_malformed_skips_the_value_not_the_document() {
        let mapping = mapping(
            json!({"properties": {"duration": {"type": "long", "ignore_malformed": true}}}),
        );
        let parsed = parse_document(&mapping, &source(json!({"duration": "-"})), "1").unwrap();
        assert_eq!(parsed.values.ignored, vec!["duration".to_owned()]);
        assert!(parsed.values.exact.is_empty());
    }

    #[test]
    fn strict_refuses_and_false_skips_unknown_fields() {
        let strict =
            mapping(json!({"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}));
        let error = parse_document(&strict, &source(json!({"a": "x", "b": 1})), "1").unwrap_err();
        assert_eq!(error.kind, "strict_dynamic_mapping_exception");
        assert_eq!(
            error.reason,
            "mapping set to strict, dynamic introduction of [b] within [_doc] is not allowed"
        );
        let off = mapping(json!({"dynamic": false}));
        let parsed = parse_document(&off, &source(json!({"b": 1})), "1").unwrap();
        assert!(parsed.values.exact.is_empty() && parsed.new_fields.is_empty());
    }

    #[test]
    fn dynamic_fields_are_mapped_from_their_first_value() {
        let parsed = parse_document(
            &Mapping::default(),
            &source(json!({"req": {"status": 200, "path": "/a"}, "at": "2026-12-01T00:00:00Z"})),
            "1",
        )
        .unwrap();
        let added: Vec<(&str, &str)> = parsed
            .new_fields
            .iter()
            .map(|(path, field)| (path.as_str(), field.type_name()))
            .collect();
        assert_eq!(
            added,
            vec![
                ("at", "date"),
                ("req", "object"),
                ("req.path", "text"),
                ("req.status", "long")
            ]
        );
        assert_eq!(
            parsed.values.exact["req.path.keyword"],
            OwnedValue::Str("/a".into())
        );
        assert_eq!(parsed.values.field_names, vec!["req", "req.path"]);
    }

    #[test]
    fn objects_and_scalars_do_not_mix() {
        let mapping = mapping(
            json!({"properties": {"req": {"properties": {"a": {"type": "long"}}}, "k": {"type": "keyword"}}}),
        );
        let error = parse_document(&mapping, &source(json!({"req": 5})), "1").unwrap_err();
        assert_eq!(
            error.reason,
            "object mapping for [req] tried to parse field [req] as object, but found a concrete value"
        );
        let error = parse_document(&mapping, &source(json!({"k": {"x": 1}})), "1").unwrap_err();
        assert!(error
            .reason
            .starts_with("failed to parse field [k] of type [keyword]"));
    }

    #[test]
    fn flat_objects_index_every_leaf_as_keyword() {
        let mapping = mapping(json!({"properties": {"labels": {"type": "flat_object"}}}));
        let parsed = parse_document(
            &mapping,
            &source(json!({"labels": {"team": "pay", "tier": {"n": 1}}})),
            "1",
        )
        .unwrap();
        assert_eq!(
            parsed.values.exact["labels"],
            OwnedValue::Array(vec![
                OwnedValue::Str("pay".into()),
                OwnedValue::Str("1".into())
            ])
        );
        assert_eq!(
            parsed.values.exact["labels.tier.n"],
            OwnedValue::Str("1".into())
        );
    }
}
