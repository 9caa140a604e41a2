//! Composable index templates (`_index_template`): `index_patterns`, `priority`,
//! `template.settings`, `template.mappings`. An index created by a first write takes the
//! highest-priority template whose pattern matches its name; two templates of one priority may not
//! overlap (OpenSearch refuses the second at `PUT`). `composed_of`, `data_stream` and aliases are
//! not served and are refused by name.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::mapping::Mapping;
use crate::settings::IndexSettings;

/// One template.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexTemplate {
    /// `index_patterns` (`*` wildcards).
    pub index_patterns: Vec<String>,
    /// `priority` (default 0).
    pub priority: i64,
    /// `template.settings`, as sent.
    pub settings: Option<Value>,
    /// `template.mappings`, as sent.
    pub mappings: Option<Value>,
    /// `version`, as sent.
    pub version: Option<Value>,
    /// `_meta`, as sent.
    pub meta: Option<Value>,
}

/// Whether `name` matches a pattern with `*` wildcards.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

impl IndexTemplate {
    /// Reads a `PUT _index_template/<name>` body, checking its settings and mappings.
    pub fn parse(name: &str, body: &Value) -> ApiResult<Self> {
        let object = body
            .as_object()
            .ok_or_else(|| ApiError::parsing("index template body must be an object"))?;
        let mut template = IndexTemplate {
            index_patterns: Vec::new(),
            priority: 0,
            settings: None,
            mappings: None,
            version: None,
            meta: None,
        };
        for (key, value) in object {
            match key.as_str() {
                "index_patterns" => {
                    template.index_patterns = match value {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(items) => items
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| {
                                ApiError::parsing("[index_patterns] must be strings")
                            })?,
                        _ => return Err(ApiError::parsing("[index_patterns] must be strings")),
                    }
                }
                "priority" => {
                    template.priority = value
                        .as_i64()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| ApiError::illegal_argument("index template priority requires a value greater than or equal to 0"))?
                }
                "version" => template.version = Some(value.clone()),
                "_meta" => template.meta = Some(value.clone()),
                "template" => {
                    let inner = value.as_object().ok_or_else(|| {
                        ApiError::parsing("[template] must be an object")
                    })?;
                    for (key, value) in inner {
                        match key.as_str() {
                            "settings" => {
                                IndexSettings::parse(value)?;
                                template.settings = Some(value.clone());
                            }
                            "mappings" => {
                                Mapping::parse(value)?;
                                template.mappings = Some(value.clone());
                            }
                            other => {
                                return Err(ApiError::parsing(format!(
                                    "[template] unknown field [{other}] (this engine serves settings and mappings)"
                                )))
                            }
                        }
                    }
                }
                "composed_of" if value.as_array().is_some_and(Vec::is_empty) => {}
                other => {
                    return Err(ApiError::parsing(format!(
                        "[index_template] unknown field [{other}] (this engine serves index_patterns, priority, template, version and _meta)"
                    )))
                }
            }
        }
        if template.index_patterns.is_empty() {
            return Err(ApiError::new(
                400,
                "action_request_validation_exception",
                format!("Validation Failed: 1: index patterns are missing for template [{name}];"),
            ));
        }
        Ok(template)
    }

    /// The template as `GET _index_template` prints it.
    pub fn to_json(&self) -> Value {
        let mut object = json!({"index_patterns": self.index_patterns});
        let mut template = serde_json::Map::new();
        if let Some(settings) = &self.settings {
            template.insert("settings".into(), settings.clone());
        }
        if let Some(mappings) = &self.mappings {
            template.insert("mappings".into(), mappings.clone());
        }
        if !template.is_empty() {
            object["template"] = Value::Object(template);
        }
        object["composed_of"] = json!([]);
        object["priority"] = json!(self.priority);
        if let Some(version) = &self.version {
            object["version"] = version.clone();
        }
        if let Some(meta) = &self.meta {
            object["_meta"] = meta.clone();
        }
        object
    }

    /// Whether the template applies to an index named `index`.
    pub fn matches(&self, index: &str) -> bool {
        self.index_patterns.iter().any(|p| wildcard_match(p, index))
    }

    fn overlaps(&self, other: &IndexTemplate) -> bool {
        self.index_patterns.iter().any(|a| {
            other
                .index_patterns
                .iter()
                .any(|b| wildcard_match(a, b) || wildcard_match(b, a))
        })
    }
}

/// Templates by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Templates {
    by_name: BTreeMap<String, IndexTemplate>,
}

impl Templates {
    /// Adds or replaces `name`, refusing an overlap at the same priority.
    pub fn put(&mut self, name: &str, template: IndexTemplate) -> ApiResult<()> {
        let clashes: Vec<&String> = self
            .by_name
            .iter()
            .filter(|(other, existing)| {
                other.as_str() != name
                    && existing.priority == template.priority
                    && existing.overlaps(&template)
            })
            .map(|(other, _)| other)
            .collect();
        if !clashes.is_empty() {
            let details: Vec<String> = clashes
                .iter()
                .map(|other| format!("{other} => {:?}", self.by_name[*other].index_patterns))
                .collect();
            return Err(ApiError::illegal_argument(format!(
                "index template [{name}] has index patterns {:?} matching patterns from existing templates [{}] with patterns ({}) that have the same priority [{}], multiple index templates may not match during index creation, please use a different priority",
                template.index_patterns,
                clashes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
                details.join(","),
                template.priority
            )));
        }
        self.by_name.insert(name.to_owned(), template);
        Ok(())
    }

    /// Removes `name`; false when there was none.
    pub fn delete(&mut self, name: &str) -> bool {
        self.by_name.remove(name).is_some()
    }

    /// Templates whose name matches `pattern` (`*` wildcards).
    pub fn find(&self, pattern: &str) -> Vec<(&String, &IndexTemplate)> {
        self.by_name
            .iter()
            .filter(|(name, _)| wildcard_match(pattern, name))
            .collect()
    }

    /// The template a new index named `index` takes.
    pub fn for_index(&self, index: &str) -> Option<&IndexTemplate> {
        self.by_name
            .values()
            .filter(|t| t.matches(index))
            .max_by_key(|t| t.priority)
    }

    /// All templates (for saving).
    pub fn all(&self) -> &BTreeMap<String, IndexTemplate> {
        &self.by_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_opensearch_patterns() {
        assert!(wildcard_match("lattice-*", "lattice-access-2026.12.01"));
        assert!(wildcard_match("*-logs-*", "app-logs-1"));
        assert!(wildcard_match("*", "x"));
        assert!(!wildcard_match("lattice-*", "telemetry-1"));
        assert!(!wildcard_match("a*b*c", "acb"));
    }

    #[test]
    fn the_highest_priority_template_applies_and_ties_are_refused() {
        let mut templates = Templates::default();
        let low =
            IndexTemplate::parse("low", &json!({"index_patterns": ["logs-*"], "priority": 1}))
                .unwrap();
        let high = IndexTemplate::parse(
            "high",
            &json!({"index_patterns": ["logs-a*"], "priority": 5}),
        )
        .unwrap();
        templates.put("low", low).unwrap();
        templates.put("high", high).unwrap();
        assert_eq!(templates.for_index("logs-a1").unwrap().priority, 5);
        assert_eq!(templates.for_index("logs-b1").unwrap().priority, 1);
        assert!(templates.for_index("other").is_none());
        let tie =
            IndexTemplate::parse("tie", &json!({"index_patterns": ["logs-*"], "priority": 1}))
                .unwrap();
        let error = templates.put("tie", tie).unwrap_err();
        assert!(
            error.reason.contains("that have the same priority [1]"),
            "{}",
            error.reason
        );
    }

    #[test]
    fn bad_templates_are_refused_by_name() {
        let error = IndexTemplate::parse("t", &json!({"index_patterns": ["x"], "data_stream": {}}))
            .unwrap_err();
        assert!(error.reason.contains("unknown field [data_stream]"));
        let error = IndexTemplate::parse("t", &json!({"index_patterns": ["x"], "template": {"mappings": {"properties": {"a": {"type": "nope"}}}}})).unwrap_err();
        assert_eq!(error.kind, "mapper_parsing_exception");
    }
}
