//! Index mappings: the field types OpenSearch mappings declare, read from and written back to
//! OpenSearch's mapping JSON, and dynamic mapping's type inference.
//!
//! Served: `keyword` (`ignore_above`), `text` (`fields` with keyword sub-fields, the `standard`
//! analyzer), `integer`, `long`, `float`, `double` (`coerce`, `ignore_malformed`), `boolean`,
//! `date` (`format`, `ignore_malformed`), `ip` (`ignore_malformed`), `object` (`properties`,
//! `dynamic`, `enabled`), `flat_object`; `dynamic: true | false | strict` and `date_detection` at
//! the top. Any other type or parameter is refused with OpenSearch's `mapper_parsing_exception`
//! naming it, never ignored.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::date::{DateFormat, DEFAULT_FORMAT};
use crate::error::{ApiError, ApiResult};

/// `dynamic`: what an unmapped field in a document does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dynamic {
    /// Mapped from its first value.
    True,
    /// Kept in `_source`, not indexed.
    False,
    /// Refused with `strict_dynamic_mapping_exception`.
    Strict,
}

impl Dynamic {
    fn parse(value: &Value) -> ApiResult<Self> {
        match value {
            Value::Bool(true) => Ok(Self::True),
            Value::Bool(false) => Ok(Self::False),
            Value::String(s) if s == "true" => Ok(Self::True),
            Value::String(s) if s == "false" => Ok(Self::False),
            Value::String(s) if s == "strict" => Ok(Self::Strict),
            other => Err(mapper_parsing(format!(
                "Could not convert [dynamic] to boolean or strict: [{other}]"
            ))),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::True => json!(true),
            Self::False => json!(false),
            Self::Strict => json!("strict"),
        }
    }
}

/// How numbers are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberOptions {
    /// `coerce` (default true): strings are parsed and fractions truncated for integers.
    pub coerce: bool,
    /// `ignore_malformed` (default false): a bad value is skipped instead of failing the document.
    pub ignore_malformed: bool,
}

impl Default for NumberOptions {
    fn default() -> Self {
        Self {
            coerce: true,
            ignore_malformed: false,
        }
    }
}

/// The numeric types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberType {
    /// 32-bit signed.
    Integer,
    /// 64-bit signed.
    Long,
    /// 32-bit float.
    Float,
    /// 64-bit float.
    Double,
}

impl NumberType {
    /// The mapping's type name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Long => "long",
            Self::Float => "float",
            Self::Double => "double",
        }
    }

    /// Whether values are whole numbers.
    pub fn is_integral(self) -> bool {
        matches!(self, Self::Integer | Self::Long)
    }
}

/// One field's mapping.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldMapping {
    /// Exact strings.
    Keyword {
        /// Longer strings are kept in `_source` but not indexed.
        ignore_above: Option<usize>,
    },
    /// Analyzed text, with optional keyword sub-fields (`fields`).
    Text {
        /// Sub-field name → its `ignore_above`.
        keyword_fields: BTreeMap<String, Option<usize>>,
    },
    /// A number.
    Number(NumberType, NumberOptions),
    /// `true` / `false`.
    Boolean,
    /// A date, stored as epoch milliseconds.
    Date {
        /// The accepted formats.
        format: DateFormat,
        /// Skip a bad value instead of failing the document.
        ignore_malformed: bool,
    },
    /// An IPv4 or IPv6 address.
    Ip {
        /// Skip a bad value instead of failing the document.
        ignore_malformed: bool,
    },
    /// An object with its own properties.
    Object(ObjectMapping),
    /// Every leaf of the object indexed as a keyword, under the field and its dotted sub-paths.
    FlatObject,
}

/// An object's (or the root's) mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectMapping {
    /// `dynamic`, when set on this object (otherwise inherited).
    pub dynamic: Option<Dynamic>,
    /// `enabled: false`: kept in `_source`, nothing under it indexed or mapped.
    pub enabled: bool,
    /// The fields under it.
    pub properties: BTreeMap<String, FieldMapping>,
}

impl Default for ObjectMapping {
    fn default() -> Self {
        Self {
            dynamic: None,
            enabled: true,
            properties: BTreeMap::new(),
        }
    }
}

/// An index's mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    /// The root object (its `dynamic` defaults to true).
    pub root: ObjectMapping,
    /// `date_detection` (default true): strings that read as dates map to `date`.
    pub date_detection: bool,
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            root: ObjectMapping::default(),
            date_detection: true,
        }
    }
}

/// 400 `mapper_parsing_exception`.
pub fn mapper_parsing(reason: impl Into<String>) -> ApiError {
    ApiError::new(400, "mapper_parsing_exception", reason)
}

fn bool_param(field: &str, key: &str, value: &Value) -> ApiResult<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        other => Err(mapper_parsing(format!(
            "Failed to parse mapping [{field}]: [{key}] must be a boolean, got [{other}]"
        ))),
    }
}

fn usize_param(field: &str, key: &str, value: &Value) -> ApiResult<usize> {
    value.as_u64().map(|n| n as usize).ok_or_else(|| {
        mapper_parsing(format!(
            "Failed to parse mapping [{field}]: [{key}] must be a non-negative integer"
        ))
    })
}

fn unknown_parameter(field: &str, type_name: &str, key: &str) -> ApiError {
    mapper_parsing(format!(
        "unknown parameter [{key}] on mapper [{field}] of type [{type_name}]"
    ))
}

impl Mapping {
    /// Reads a `mappings` object.
    pub fn parse(value: &Value) -> ApiResult<Self> {
        let object = value
            .as_object()
            .ok_or_else(|| mapper_parsing("Failed to parse mapping: mappings must be an object"))?;
        let mut mapping = Mapping::default();
        for (key, value) in object {
            match key.as_str() {
                "dynamic" => mapping.root.dynamic = Some(Dynamic::parse(value)?),
                "date_detection" => mapping.date_detection = bool_param("_doc", key, value)?,
                "properties" => mapping.root.properties = parse_properties("", value)?,
                "_source" | "_routing" | "numeric_detection" | "dynamic_templates" => {
                    return Err(mapper_parsing(format!(
                        "Root mapping definition has unsupported parameters:  [{key} : {value}] (this engine does not serve [{key}])"
                    )))
                }
                _ => {
                    return Err(mapper_parsing(format!(
                        "Root mapping definition has unsupported parameters:  [{key} : {value}]"
                    )))
                }
            }
        }
        Ok(mapping)
    }

    /// The `dynamic` in force at the root.
    pub fn root_dynamic(&self) -> Dynamic {
        self.root.dynamic.unwrap_or(Dynamic::True)
    }

    /// The mapping as OpenSearch prints it (`GET <index>/_mapping`).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(dynamic) = self.root.dynamic {
            object.insert("dynamic".into(), dynamic.to_json());
        }
        if !self.date_detection {
            object.insert("date_detection".into(), json!(false));
        }
        if !self.root.properties.is_empty() {
            object.insert("properties".into(), properties_json(&self.root.properties));
        }
        Value::Object(object)
    }

    /// The mapping of the field at a dotted `path`, descending through objects.
    pub fn field(&self, path: &str) -> Option<&FieldMapping> {
        let mut properties = &self.root.properties;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            let field = properties.get(segment)?;
            if segments.peek().is_none() {
                return Some(field);
            }
            match field {
                FieldMapping::Object(object) => properties = &object.properties,
                FieldMapping::FlatObject => return Some(field),
                FieldMapping::Text { keyword_fields } => {
                    let sub = segments.next()?;
                    return (segments.peek().is_none() && keyword_fields.contains_key(sub))
                        .then_some(&KEYWORD_SUBFIELD);
                }
                _ => return None,
            }
        }
        None
    }

    /// Adds a field found by dynamic mapping at `path` (its parent objects exist).
    pub fn insert(&mut self, path: &str, field: FieldMapping) {
        let mut properties = &mut self.root.properties;
        let segments: Vec<&str> = path.split('.').collect();
        for segment in &segments[..segments.len() - 1] {
            let entry = properties
                .entry((*segment).to_owned())
                .or_insert_with(|| FieldMapping::Object(ObjectMapping::default()));
            match entry {
                FieldMapping::Object(object) => properties = &mut object.properties,
                _ => return,
            }
        }
        properties.insert(segments[segments.len() - 1].to_owned(), field);
    }

    /// Merges `other` into this mapping (a `PUT <index>/_mapping`, or a template over a request):
    /// new fields are added; a field mapped differently is refused, as OpenSearch does.
    pub fn merge(&mut self, other: &Mapping) -> ApiResult<()> {
        if other.root.dynamic.is_some() {
            self.root.dynamic = other.root.dynamic;
        }
        if !other.date_detection {
            self.date_detection = false;
        }
        merge_properties(&mut self.root.properties, &other.root.properties, "")
    }
}

/// What `field` answers for `text.keyword`.
static KEYWORD_SUBFIELD: FieldMapping = FieldMapping::Keyword { ignore_above: None };

fn merge_properties(
    into: &mut BTreeMap<String, FieldMapping>,
    from: &BTreeMap<String, FieldMapping>,
    prefix: &str,
) -> ApiResult<()> {
    for (name, field) in from {
        let path = format!("{prefix}{name}");
        match (into.get_mut(name), field) {
            (None, _) => {
                into.insert(name.clone(), field.clone());
            }
            (Some(FieldMapping::Object(existing)), FieldMapping::Object(new)) => {
                if new.dynamic.is_some() {
                    existing.dynamic = new.dynamic;
                }
                merge_properties(
                    &mut existing.properties,
                    &new.properties,
                    &format!("{path}."),
                )?;
            }
            (Some(existing), new) if existing == new => {}
            (Some(existing), new) => {
                return Err(ApiError::illegal_argument(format!(
                    "mapper [{path}] cannot be changed from type [{}] to [{}]",
                    existing.type_name(),
                    new.type_name()
                )))
            }
        }
    }
    Ok(())
}

fn parse_properties(prefix: &str, value: &Value) -> ApiResult<BTreeMap<String, FieldMapping>> {
    let object = value
        .as_object()
        .ok_or_else(|| mapper_parsing("Failed to parse mapping: properties must be an object"))?;
    object
        .iter()
        .map(|(name, definition)| {
            let path = format!("{prefix}{name}");
            Ok((name.clone(), FieldMapping::parse(&path, definition)?))
        })
        .collect()
}

fn properties_json(properties: &BTreeMap<String, FieldMapping>) -> Value {
    Value::Object(
        properties
            .iter()
            .map(|(name, field)| (name.clone(), field.to_json()))
            .collect(),
    )
}

impl FieldMapping {
    /// The mapping's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Keyword { .. } => "keyword",
            Self::Text { .. } => "text",
            Self::Number(number, _) => number.name(),
            Self::Boolean => "boolean",
            Self::Date { .. } => "date",
            Self::Ip { .. } => "ip",
            Self::Object(_) => "object",
            Self::FlatObject => "flat_object",
        }
    }

    /// Reads one field's definition at `path`.
    pub fn parse(path: &str, value: &Value) -> ApiResult<Self> {
        let definition = value.as_object().ok_or_else(|| {
            mapper_parsing(format!(
                "Expected map for property [fields] on field [{path}] but got a {value}"
            ))
        })?;
        let type_name = match definition.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                return Err(mapper_parsing(format!(
                    "No type specified for field [{path}]: type must be a string, got [{other}]"
                )))
            }
            None if definition.contains_key("properties")
                || definition.contains_key("enabled")
                || definition.contains_key("dynamic")
                || definition.is_empty() =>
            {
                "object"
            }
            None => {
                return Err(mapper_parsing(format!(
                    "No type specified for field [{path}]"
                )))
            }
        };
        let params = definition.iter().filter(|(key, _)| key.as_str() != "type");
        match type_name {
            "keyword" => {
                let mut ignore_above = None;
                for (key, value) in params {
                    match key.as_str() {
                        "ignore_above" => ignore_above = Some(usize_param(path, key, value)?),
                        _ => return Err(unknown_parameter(path, type_name, key)),
                    }
                }
                Ok(Self::Keyword { ignore_above })
            }
            "text" => parse_text(path, params),
            "integer" | "long" | "float" | "double" => {
                let number = match type_name {
                    "integer" => NumberType::Integer,
                    "long" => NumberType::Long,
                    "float" => NumberType::Float,
                    _ => NumberType::Double,
                };
                let mut options = NumberOptions::default();
                for (key, value) in params {
                    match key.as_str() {
                        "coerce" => options.coerce = bool_param(path, key, value)?,
                        "ignore_malformed" => {
                            options.ignore_malformed = bool_param(path, key, value)?
                        }
                        _ => return Err(unknown_parameter(path, type_name, key)),
                    }
                }
                Ok(Self::Number(number, options))
            }
            "boolean" => match params.into_iter().next() {
                Some((key, _)) => Err(unknown_parameter(path, type_name, key)),
                None => Ok(Self::Boolean),
            },
            "date" => {
                let mut format = DateFormat::default();
                let mut ignore_malformed = false;
                for (key, value) in params {
                    match key.as_str() {
                        "format" => {
                            let spec = value.as_str().ok_or_else(|| {
                                mapper_parsing(format!("Invalid format for [{path}]: {value}"))
                            })?;
                            format = DateFormat::parse(spec).map_err(|reason| {
                                mapper_parsing(format!(
                                    "Error parsing [format] on field [{path}]: {reason}"
                                ))
                            })?;
                        }
                        "ignore_malformed" => ignore_malformed = bool_param(path, key, value)?,
                        _ => return Err(unknown_parameter(path, type_name, key)),
                    }
                }
                Ok(Self::Date {
                    format,
                    ignore_malformed,
                })
            }
            "ip" => {
                let mut ignore_malformed = false;
                for (key, value) in params {
                    match key.as_str() {
                        "ignore_malformed" => ignore_malformed = bool_param(path, key, value)?,
                        _ => return Err(unknown_parameter(path, type_name, key)),
                    }
                }
                Ok(Self::Ip { ignore_malformed })
            }
            "object" => {
                let mut object = ObjectMapping::default();
                for (key, value) in params {
                    match key.as_str() {
                        "properties" => {
                            object.properties = parse_properties(&format!("{path}."), value)?
                        }
                        "dynamic" => object.dynamic = Some(Dynamic::parse(value)?),
                        "enabled" => object.enabled = bool_param(path, key, value)?,
                        _ => return Err(unknown_parameter(path, type_name, key)),
                    }
                }
                Ok(Self::Object(object))
            }
            "flat_object" => match params.into_iter().next() {
                Some((key, _)) => Err(unknown_parameter(path, type_name, key)),
                None => Ok(Self::FlatObject),
            },
            other => Err(mapper_parsing(format!(
                "No handler for type [{other}] declared on field [{path}]"
            ))),
        }
    }

    /// The definition as OpenSearch prints it.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Keyword { ignore_above } => {
                let mut object = json!({"type": "keyword"});
                if let Some(limit) = ignore_above {
                    object["ignore_above"] = json!(limit);
                }
                object
            }
            Self::Text { keyword_fields } => {
                let mut object = json!({"type": "text"});
                if !keyword_fields.is_empty() {
                    object["fields"] = Value::Object(
                        keyword_fields
                            .iter()
                            .map(|(name, ignore_above)| {
                                let mut sub = json!({"type": "keyword"});
                                if let Some(limit) = ignore_above {
                                    sub["ignore_above"] = json!(limit);
                                }
                                (name.clone(), sub)
                            })
                            .collect(),
                    );
                }
                object
            }
            Self::Number(number, options) => {
                let mut object = json!({"type": number.name()});
                if !options.coerce {
                    object["coerce"] = json!(false);
                }
                if options.ignore_malformed {
                    object["ignore_malformed"] = json!(true);
                }
                object
            }
            Self::Boolean => json!({"type": "boolean"}),
            Self::Date {
                format,
                ignore_malformed,
            } => {
                let mut object = json!({"type": "date"});
                if format.spec() != DEFAULT_FORMAT {
                    object["format"] = json!(format.spec());
                }
                if *ignore_malformed {
                    object["ignore_malformed"] = json!(true);
                }
                object
            }
            Self::Ip { ignore_malformed } => {
                let mut object = json!({"type": "ip"});
                if *ignore_malformed {
                    object["ignore_malformed"] = json!(true);
                }
                object
            }
            Self::Object(object) => {
                let mut out = Map::new();
                if !object.enabled {
                    out.insert("type".into(), json!("object"));
                    out.insert("enabled".into(), json!(false));
                }
                if let Some(dynamic) = object.dynamic {
                    out.insert("dynamic".into(), dynamic.to_json());
                }
                if !object.properties.is_empty() {
                    out.insert("properties".into(), properties_json(&object.properties));
                }
                Value::Object(out)
            }
            Self::FlatObject => json!({"type": "flat_object"}),
        }
    }

    /// Whether aggregations and sorting can read the field (OpenSearch refuses `text`).
    pub fn is_aggregatable(&self) -> bool {
        !matches!(self, Self::Text { .. } | Self::Object(_))
    }
}

fn parse_text<'a>(
    path: &str,
    params: impl Iterator<Item = (&'a String, &'a Value)>,
) -> ApiResult<FieldMapping> {
    let mut keyword_fields = BTreeMap::new();
    for (key, value) in params {
        match key.as_str() {
            "fields" => {
                let fields = value.as_object().ok_or_else(|| {
                    mapper_parsing(format!("[fields] on field [{path}] must be an object"))
                })?;
                for (name, sub) in fields {
                    match FieldMapping::parse(&format!("{path}.{name}"), sub)? {
                        FieldMapping::Keyword { ignore_above } => {
                            keyword_fields.insert(name.clone(), ignore_above);
                        }
                        other => {
                            return Err(mapper_parsing(format!(
                                "sub-field [{path}.{name}] of type [{}]: this engine serves keyword sub-fields of text only",
                                other.type_name()
                            )))
                        }
                    }
                }
            }
            "analyzer" | "search_analyzer" if value == "standard" => {}
            _ => return Err(unknown_parameter(path, "text", key)),
        }
    }
    Ok(FieldMapping::Text { keyword_fields })
}

/// The dynamic string formats that map to `date` (OpenSearch's default `dynamic_date_formats`
/// starts with `strict_date_optional_time`; a full date is required here).
fn looks_like_date(text: &str) -> bool {
    text.len() >= 10
        && text.as_bytes()[4] == b'-'
        && text.as_bytes()[7] == b'-'
        && DateFormat::parse("strict_date_optional_time")
            .map(|f| f.parse_str(text).is_ok())
            .unwrap_or(false)
}

/// Dynamic mapping: the field a first value maps to, as OpenSearch infers it. `None` for
/// `null` and empty arrays (no mapping until a real value comes).
pub fn infer(value: &Value, date_detection: bool) -> Option<FieldMapping> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(FieldMapping::Boolean),
        Value::Number(n) if n.is_f64() => Some(FieldMapping::Number(
            NumberType::Float,
            NumberOptions::default(),
        )),
        Value::Number(_) => Some(FieldMapping::Number(
            NumberType::Long,
            NumberOptions::default(),
        )),
        Value::String(text) if date_detection && looks_like_date(text) => {
            Some(FieldMapping::Date {
                format: DateFormat::default(),
                ignore_malformed: false,
            })
        }
        Value::String(_) => Some(FieldMapping::Text {
            keyword_fields: BTreeMap::from([("keyword".to_owned(), Some(256))]),
        }),
        Value::Object(_) => Some(FieldMapping::Object(ObjectMapping::default())),
        Value::Array(items) => items.iter().find_map(|item| infer(item, date_detection)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_round_trip_as_opensearch_prints_them() {
        let definition = json!({
            "dynamic": "strict",
            "properties": {
                "serviceName": {"type": "keyword"},
                "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
                "duration": {"type": "long"},
                "time": {"type": "date", "format": "yyyy-MM-dd HH:mm:ss||epoch_millis"},
                "sourceIp": {"type": "ip"},
                "request": {"properties": {"path": {"type": "keyword"}}, "dynamic": false},
                "raw": {"type": "object", "enabled": false},
                "labels": {"type": "flat_object"}
            }
        });
        let mapping = Mapping::parse(&definition).unwrap();
        assert_eq!(mapping.to_json(), definition);
        assert_eq!(
            mapping.field("request.path").unwrap().type_name(),
            "keyword"
        );
        assert_eq!(
            mapping.field("message.keyword").unwrap().type_name(),
            "keyword"
        );
        assert_eq!(mapping.field("message.other"), None);
    }

    #[test]
    fn unknown_types_and_parameters_are_named() {
        let error =
            Mapping::parse(&json!({"properties": {"a": {"type": "keyword", "norms": false}}}))
                .unwrap_err();
        assert_eq!(error.kind, "mapper_parsing_exception");
        assert_eq!(
            error.reason,
            "unknown parameter [norms] on mapper [a] of type [keyword]"
        );
        let error =
            Mapping::parse(&json!({"properties": {"a": {"type": "geo_point"}}})).unwrap_err();
        assert_eq!(
            error.reason,
            "No handler for type [geo_point] declared on field [a]"
        );
    }

    #[test]
    fn dynamic_inference_follows_opensearch() {
        assert_eq!(infer(&json!(200), true).unwrap().type_name(), "long");
        assert_eq!(infer(&json!(1.5), true).unwrap().type_name(), "float");
        assert_eq!(infer(&json!(true), true).unwrap().type_name(), "boolean");
        assert_eq!(
            infer(&json!("2026-12-01T10:00:00Z"), true)
                .unwrap()
                .type_name(),
            "date"
        );
        assert_eq!(
            infer(&json!("2026-12-01T10:00:00Z"), false)
                .unwrap()
                .type_name(),
            "text"
        );
        assert_eq!(
            infer(&json!("GET"), true).unwrap().to_json(),
            json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
        );
        assert_eq!(infer(&json!([null, 3]), true).unwrap().type_name(), "long");
        assert_eq!(infer(&json!(null), true), None);
    }

    #[test]
    fn merging_refuses_a_type_change() {
        let mut mapping = Mapping::parse(&json!({"properties": {"a": {"type": "long"}}})).unwrap();
        let other =
            Mapping::parse(&json!({"properties": {"a": {"type": "keyword"}, "b": {"type": "ip"}}}))
                .unwrap();
        let error = mapping.merge(&other).unwrap_err();
        assert_eq!(
            error.reason,
            "mapper [a] cannot be changed from type [long] to [keyword]"
        );
    }
}
