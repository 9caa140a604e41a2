//! Reads `template.yaml` into JSON with every CloudFormation short-form tag (`!Ref`, `!GetAtt`,
//! `!Sub`, …) rewritten to its long form (`{"Ref": …}`, `{"Fn::GetAtt": […]}`, …), the shape
//! CloudFormation itself works on, so that checks see one form only.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

/// Why a template could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not YAML.
    #[error("not YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// YAML that is not a CloudFormation template.
    #[error("not a template: {0}")]
    Shape(String),
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The whole template, long-form intrinsics.
    pub root: Value,
}

/// `infra/aws/template.yaml` in this repository.
pub fn repository_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml")
}

impl Template {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses template text.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let yaml: Yaml = serde_yaml_ng::from_str(text)?;
        let root = long_form(yaml)?;
        if !root["Resources"].is_object() {
            return Err(TemplateError::Shape("no Resources mapping".into()));
        }
        Ok(Self { root })
    }

    /// Every resource as (logical id, resource).
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, resource)| (id.as_str(), resource))
    }

    /// The resources of one type.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources()
            .filter(move |(_, resource)| resource["Type"] == kind)
    }

    /// One resource by logical id.
    pub fn resource(&self, id: &str) -> Option<&Value> {
        self.root["Resources"].get(id)
    }

    /// A serverless function's property as SAM resolves it: its own, else `Globals.Function`'s.
    pub fn function_property(&self, id: &str, name: &str) -> Option<&Value> {
        self.resource(id)?
            .get("Properties")
            .and_then(|p| p.get(name))
            .or_else(|| self.root["Globals"]["Function"].get(name))
    }
}

/// The logical id a `{"Ref": id}` or `{"Fn::GetAtt": [id, attr]}` names, with the attribute.
pub fn reference(value: &Value) -> Option<(&str, Option<&str>)> {
    if let Some(id) = value.get("Ref").and_then(Value::as_str) {
        return Some((id, None));
    }
    let parts = value.get("Fn::GetAtt")?.as_array()?;
    Some((
        parts.first()?.as_str()?,
        parts.get(1).and_then(Value::as_str),
    ))
}

/// The text of a `{"Fn::Sub": "…"}` (or a plain string) with each `${Name}` / `${Name.Attr}`
/// left in place; `None` for anything else.
pub fn sub_text(value: &Value) -> Option<&str> {
    value
        .as_str()
        .or_else(|| value.get("Fn::Sub").and_then(Value::as_str))
}

fn long_form(yaml: Yaml) -> Result<Value, TemplateError> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(long_form).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let Yaml::String(key) = key else {
                    return Err(TemplateError::Shape(format!("non-string key {key:?}")));
                };
                map.insert(key, long_form(value)?);
            }
            Value::Object(map)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!').to_owned();
            let value = long_form(tagged.value)?;
            let (key, value) = match name.as_str() {
                "Ref" | "Condition" => (name, value),
                // `!GetAtt Resource.Attr.Path` splits at the first dot.
                "GetAtt" => match value {
                    Value::String(s) => {
                        let (id, attr) = s.split_once('.').ok_or_else(|| {
                            TemplateError::Shape(format!("!GetAtt {s} has no attribute"))
                        })?;
                        ("Fn::GetAtt".to_owned(), Value::from(vec![id, attr]))
                    }
                    other => ("Fn::GetAtt".to_owned(), other),
                },
                other => (format!("Fn::{other}"), value),
            };
            let mut map = Map::new();
            map.insert(key, value);
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_form_tags_become_the_long_form() {
        let template = Template::parse(
            "Resources:\n  A:\n    Type: X\n    Properties:\n      R: !Ref B\n      G: !GetAtt B.DnsEntry.DomainName\n      S: !Sub \"${B.Arn}/*\"\n      I: !If [C, !Ref AWS::NoValue, 3]\n",
        )
        .unwrap();
        assert_eq!(
            template.resource("A").unwrap()["Properties"],
            json!({
                "R": {"Ref": "B"},
                "G": {"Fn::GetAtt": ["B", "DnsEntry.DomainName"]},
                "S": {"Fn::Sub": "${B.Arn}/*"},
                "I": {"Fn::If": ["C", {"Ref": "AWS::NoValue"}, 3]},
            })
        );
        assert_eq!(
            reference(&template.resource("A").unwrap()["Properties"]["G"]),
            Some(("B", Some("DnsEntry.DomainName")))
        );
    }

    #[test]
    fn yaml_without_resources_is_refused() {
        assert!(matches!(
            Template::parse("Parameters: {}\n"),
            Err(TemplateError::Shape(_))
        ));
    }

    #[test]
    fn globals_fill_in_what_a_function_leaves_out() {
        let template = Template::parse(
            "Globals:\n  Function:\n    Tracing: Active\n    Timeout: 10\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: 900\n",
        )
        .unwrap();
        assert_eq!(
            template.function_property("F", "Tracing"),
            Some(&json!("Active"))
        );
        assert_eq!(
            template.function_property("F", "Timeout"),
            Some(&json!(900))
        );
        assert_eq!(template.function_property("F", "MemorySize"), None);
    }
}
