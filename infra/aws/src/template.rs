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

/// The `Fn::If` choices that lead to a value: each condition with the branch taken (`true` for
/// the first).
pub type Guard = Vec<(String, bool)>;

/// Whether a value is `{"Ref": "AWS::NoValue"}`, which removes what holds it.
pub fn is_no_value(value: &Value) -> bool {
    value.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

/// The values an expression may take, each with the choices that lead to it: an `Fn::If` gives
/// its branches' values (recursively), `Ref AWS::NoValue` and `null` give nothing, anything else
/// itself (with no choice).
pub fn alternatives(value: &Value) -> Vec<(Guard, &Value)> {
    let branches = value
        .get("Fn::If")
        .and_then(Value::as_array)
        .filter(|_| value.as_object().is_some_and(|m| m.len() == 1));
    match branches.map(Vec::as_slice) {
        Some([Value::String(condition), then, otherwise]) => [(then, true), (otherwise, false)]
            .into_iter()
            .flat_map(|(branch, taken)| {
                alternatives(branch).into_iter().map(move |(mut guard, v)| {
                    guard.insert(0, (condition.clone(), taken));
                    (guard, v)
                })
            })
            .collect(),
        _ if value.is_null() || is_no_value(value) => Vec::new(),
        _ => vec![(Guard::new(), value)],
    }
}

/// The items of a list-valued expression, each with the choices that lead to it: the list's own
/// alternatives, flattened, and each item's (so `!If [C, [a, b], !Ref AWS::NoValue]` and
/// `[!If [C, a, !Ref AWS::NoValue], b]` both give `a` under `C`). A single non-list value is a
/// list of one, as IAM and CloudFormation allow.
pub fn guarded_items(value: &Value) -> Vec<(Guard, &Value)> {
    let mut items = Vec::new();
    for (guard, list) in alternatives(value) {
        let elements: Vec<&Value> = match list {
            Value::Array(elements) => elements.iter().collect(),
            other => vec![other],
        };
        for element in elements {
            for (inner, item) in alternatives(element) {
                let mut both = guard.clone();
                both.extend(inner);
                items.push((both, item));
            }
        }
    }
    items
}

/// Whether `condition` being true makes `target` true: it is `target`, or an `Fn::And` one of
/// whose operands is `{"Condition": c}` with `c` implying `target`.
pub fn implies(template: &Template, condition: &str, target: &str) -> bool {
    fn walk(template: &Template, condition: &str, target: &str, depth: usize) -> bool {
        if condition == target {
            return true;
        }
        if depth > 16 {
            return false;
        }
        let definition = &template.root["Conditions"][condition];
        definition["Fn::And"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|operand| operand.get("Condition").and_then(Value::as_str))
            .any(|c| walk(template, c, target, depth + 1))
    }
    walk(template, condition, target, 0)
}

/// Whether the choices of `guard` make `target` true: one of the conditions it takes the first
/// branch of implies it.
pub fn guard_implies(template: &Template, guard: &Guard, target: &str) -> bool {
    guard
        .iter()
        .any(|(condition, taken)| *taken && implies(template, condition, target))
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
    fn conditional_values_come_with_the_choices_that_lead_to_them() {
        let template = Template::parse(
            "Conditions:\n  A: !Equals [x, y]\n  B: !And [!Condition A, !Equals [y, z]]\n  C: !Or [!Condition A, !Equals [y, z]]\nResources:\n  R:\n    Type: X\n    Properties:\n      L: !If [B, [a, b], !Ref AWS::NoValue]\n      M: [!If [A, a, !If [C, c, !Ref AWS::NoValue]], d]\n",
        )
        .unwrap();
        let properties = &template.resource("R").unwrap()["Properties"];
        let items = guarded_items(&properties["L"]);
        assert_eq!(
            items,
            [
                (vec![("B".to_owned(), true)], &json!("a")),
                (vec![("B".to_owned(), true)], &json!("b")),
            ]
        );
        let items = guarded_items(&properties["M"]);
        assert_eq!(
            items,
            [
                (vec![("A".to_owned(), true)], &json!("a")),
                (
                    vec![("A".to_owned(), false), ("C".to_owned(), true)],
                    &json!("c")
                ),
                (vec![], &json!("d")),
            ]
        );
        assert!(implies(&template, "B", "A"));
        assert!(!implies(&template, "A", "B"));
        // An Or does not imply its operands.
        assert!(!implies(&template, "C", "A"));
        assert!(guard_implies(&template, &items[0].0, "A"));
        assert!(!guard_implies(&template, &items[1].0, "A"));
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
