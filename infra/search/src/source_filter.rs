//! `_source` filtering of hits: `false`, a pattern or list of patterns, or `{includes, excludes}`,
//! with `*` wildcards over dotted paths, as OpenSearch applies them.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::template::wildcard_match;

/// What of `_source` a hit carries.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceFilter {
    /// All of it.
    All,
    /// None (`_source: false`).
    Nothing,
    /// Paths matching `includes` (all when empty) and not `excludes`.
    Paths {
        /// Included patterns.
        includes: Vec<String>,
        /// Excluded patterns.
        excludes: Vec<String>,
    },
}

fn patterns(value: &Value) -> ApiResult<Vec<String>> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::parsing("[_source] patterns must be strings"))
            })
            .collect(),
        other => Err(ApiError::parsing(format!(
            "[_source] cannot read [{other}]"
        ))),
    }
}

impl SourceFilter {
    /// Reads the body's `_source`.
    pub fn parse(value: &Value) -> ApiResult<Self> {
        match value {
            Value::Bool(true) => Ok(Self::All),
            Value::Bool(false) => Ok(Self::Nothing),
            Value::Object(object) => {
                let mut includes = Vec::new();
                let mut excludes = Vec::new();
                for (key, value) in object {
                    match key.as_str() {
                        "includes" | "include" => includes = patterns(value)?,
                        "excludes" | "exclude" => excludes = patterns(value)?,
                        other => {
                            return Err(ApiError::parsing(format!(
                                "[_source] does not support [{other}]"
                            )))
                        }
                    }
                }
                Ok(Self::Paths { includes, excludes })
            }
            other => Ok(Self::Paths {
                includes: patterns(other)?,
                excludes: Vec::new(),
            }),
        }
    }

    /// Reads `?_source=`.
    pub fn parse_param(value: &str) -> Self {
        match value {
            "true" | "" => Self::All,
            "false" => Self::Nothing,
            list => Self::Paths {
                includes: list.split(',').map(str::to_owned).collect(),
                excludes: Vec::new(),
            },
        }
    }

    /// Adds `?_source_includes=` / `?_source_excludes=`.
    pub fn with_param(&self, key: &str, value: &str) -> Self {
        let (mut includes, mut excludes) = match self {
            Self::Paths { includes, excludes } => (includes.clone(), excludes.clone()),
            _ => (Vec::new(), Vec::new()),
        };
        let list = value.split(',').map(str::to_owned);
        if key == "_source_includes" {
            includes.extend(list);
        } else {
            excludes.extend(list);
        }
        Self::Paths { includes, excludes }
    }

    /// The filtered source, or `None` when the hit carries none.
    pub fn apply(&self, source: &Value) -> Option<Value> {
        match self {
            Self::All => Some(source.clone()),
            Self::Nothing => None,
            Self::Paths { includes, excludes } => {
                let Value::Object(object) = source else {
                    return Some(source.clone());
                };
                Some(Value::Object(filter_object(object, "", includes, excludes)))
            }
        }
    }
}

fn included(path: &str, includes: &[String]) -> bool {
    includes.is_empty() || includes.iter().any(|p| wildcard_match(p, path))
}

/// Whether some include pattern could match below `path`.
fn may_include_below(path: &str, includes: &[String]) -> bool {
    includes.is_empty()
        || includes.iter().any(|p| {
            p.starts_with(&format!("{path}.")) || p.starts_with('*') || wildcard_match(p, path)
        })
}

fn filter_object(
    object: &Map<String, Value>,
    prefix: &str,
    includes: &[String],
    excludes: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in object {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if excludes.iter().any(|p| wildcard_match(p, &path)) {
            continue;
        }
        if included(&path, includes) {
            match value {
                Value::Object(inner) if !excludes.is_empty() => {
                    out.insert(
                        key.clone(),
                        Value::Object(filter_object(inner, &path, &[], excludes)),
                    );
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            }
        } else if let Value::Object(inner) = value {
            if may_include_below(&path, includes) {
                let filtered = filter_object(inner, &path, includes, excludes);
                if !filtered.is_empty() {
                    out.insert(key.clone(), Value::Object(filtered));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn includes_and_excludes_follow_dotted_paths() {
        let source = json!({"a": 1, "req": {"path": "/x", "status": 200}, "resp": {"size": 3}});
        let filter =
            SourceFilter::parse(&json!({"includes": ["req.*", "a"], "excludes": ["req.status"]}))
                .unwrap();
        assert_eq!(
            filter.apply(&source),
            Some(json!({"a": 1, "req": {"path": "/x"}}))
        );
        let filter = SourceFilter::parse(&json!("resp")).unwrap();
        assert_eq!(filter.apply(&source), Some(json!({"resp": {"size": 3}})));
        assert_eq!(
            SourceFilter::parse(&json!(false)).unwrap().apply(&source),
            None
        );
    }
}
