//! The three index templates (platform records, function lines, extension lines), embedded from
//! `templates/*.json`, and their installation on first use.
//!
//! The files hold the default names; at install `index_patterns` becomes `<INDEX>-*` for the
//! configured prefix and `priority` 100 plus the prefix's length, so that if one configured
//! prefix starts another (`lambda` and `lambda-function`), the longer, more specific, template
//! wins instead of OpenSearch refusing two overlapping templates of one priority.
//!
//! Installation: `GET _index_template/<INDEX>`, and `PUT` when 404; an existing template is left
//! as it is (someone may have tuned it). It runs inside a flush's deadline, before its `_bulk`. A
//! failure is printed once per kind and tried again on the next flush; the `_bulk` goes ahead
//! anyway (documents indexed meanwhile take dynamic mappings, better than none).

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::backend::{call_within, Backend, Payload};
use crate::config::Indices;
use crate::say::OnceLog;

/// The platform records' template, with the default prefix.
pub const PLATFORM_TEMPLATE: &str = include_str!("../templates/lambda-platform.json");
/// The function lines' template, with the default prefix.
pub const FUNCTION_TEMPLATE: &str = include_str!("../templates/lambda-function.json");
/// The extension lines' template, with the default prefix.
pub const EXTENSION_TEMPLATE: &str = include_str!("../templates/lambda-extension.json");

/// One template to install: its name (the index prefix) and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// The template's name, the index prefix.
    pub name: String,
    /// The body, with the prefix's pattern and priority.
    pub body: Value,
}

/// `raw` (one of the embedded templates) for the prefix `prefix`.
pub fn for_prefix(raw: &str, prefix: &str) -> Template {
    // The embedded files are checked by the tests; a broken one still installs as `{}`.
    let mut body: Value = serde_json::from_str(raw).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.insert("index_patterns".into(), json!([format!("{prefix}-*")]));
        object.insert("priority".into(), json!(100 + prefix.len()));
    }
    Template {
        name: prefix.to_owned(),
        body,
    }
}

/// The three templates for `indices`.
pub fn all(indices: &Indices) -> Vec<Template> {
    vec![
        for_prefix(PLATFORM_TEMPLATE, &indices.platform),
        for_prefix(FUNCTION_TEMPLATE, &indices.function),
        for_prefix(EXTENSION_TEMPLATE, &indices.extension),
    ]
}

/// Installs the templates once per process.
#[derive(Debug)]
pub struct Installer {
    templates: Vec<Template>,
    installed: Vec<bool>,
}

impl Installer {
    /// An installer of `templates`, none installed yet.
    pub fn new(templates: Vec<Template>) -> Self {
        let installed = vec![false; templates.len()];
        Self {
            templates,
            installed,
        }
    }

    /// Whether every template is installed.
    pub fn done(&self) -> bool {
        self.installed.iter().all(|done| *done)
    }

    /// Installs what is not yet, before `deadline`; returns whether all are now.
    pub async fn ensure(
        &mut self,
        backend: &dyn Backend,
        deadline: Instant,
        log: &OnceLog,
    ) -> bool {
        for (template, installed) in self.templates.iter().zip(self.installed.iter_mut()) {
            if *installed {
                continue;
            }
            let Some(budget) = remaining(deadline) else {
                return false;
            };
            match install(template, backend, budget, deadline).await {
                Ok(()) => *installed = true,
                Err(failure) => {
                    log.once(&format!("template {}", failure.kind), failure.message);
                }
            }
        }
        self.done()
    }
}

struct Failure {
    kind: String,
    message: String,
}

async fn install(
    template: &Template,
    backend: &dyn Backend,
    budget: Duration,
    deadline: Instant,
) -> Result<(), Failure> {
    let path = format!("/_index_template/{}", template.name);
    let failed = |kind: String, what: String| Failure {
        message: format!(
            "index template {}: {what}; tried again on the next flush",
            template.name
        ),
        kind,
    };
    let found = call_within(backend, Method::GET, &path, None, budget)
        .await
        .map_err(|e| failed(e.kind().to_owned(), format!("GET failed: {e}")))?;
    match found.status {
        200 => return Ok(()),
        404 => {}
        status => {
            return Err(failed(
                format!("GET {status}"),
                format!("GET answered {status}"),
            ))
        }
    }
    let budget =
        remaining(deadline).ok_or_else(|| failed("timeout".into(), "no time left".into()))?;
    let payload = Payload {
        content_type: "application/json",
        bytes: Bytes::from(template.body.to_string()),
    };
    let put = call_within(backend, Method::PUT, &path, Some(payload), budget)
        .await
        .map_err(|e| failed(e.kind().to_owned(), format!("PUT failed: {e}")))?;
    match put.status {
        200..=299 => Ok(()),
        status => {
            let detail = String::from_utf8_lossy(&put.body)
                .chars()
                .take(300)
                .collect::<String>();
            Err(failed(
                format!("PUT {status}"),
                format!("PUT answered {status}: {detail}"),
            ))
        }
    }
}

/// The time left before `deadline`, if any.
pub fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_templates_map_every_field_without_dynamic_mapping() {
        for raw in [PLATFORM_TEMPLATE, FUNCTION_TEMPLATE, EXTENSION_TEMPLATE] {
            let template: Value = serde_json::from_str(raw).unwrap();
            let mappings = &template["template"]["mappings"];
            assert_eq!(mappings["dynamic"], json!(false));
            let properties = &mappings["properties"];
            assert_eq!(properties["@timestamp"]["type"], "date");
            assert_eq!(properties["function"]["type"], "keyword");
            assert_eq!(properties["requestId"]["type"], "keyword");
        }
        let platform: Value = serde_json::from_str(PLATFORM_TEMPLATE).unwrap();
        let properties = &platform["template"]["mappings"]["properties"];
        assert_eq!(
            properties["record"],
            json!({"type": "object", "enabled": false})
        );
        assert_eq!(properties["durationMs"]["type"], "double");
        assert_eq!(properties["billedDurationMs"]["type"], "long");
        assert_eq!(properties["traceId"]["type"], "keyword");
        let function: Value = serde_json::from_str(FUNCTION_TEMPLATE).unwrap();
        let properties = &function["template"]["mappings"]["properties"];
        assert_eq!(
            properties["json"],
            json!({"type": "object", "enabled": false})
        );
        assert_eq!(properties["message"]["type"], "text");
        assert_eq!(
            properties["message"]["fields"]["keyword"]["type"],
            "keyword"
        );
        assert_eq!(properties["level"]["type"], "keyword");
    }

    #[test]
    fn patterns_and_priorities_follow_the_configured_prefixes() {
        let indices = Indices {
            platform: "lambda".into(),
            function: "lambda-function".into(),
            extension: "ext".into(),
        };
        let templates = all(&indices);
        let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["lambda", "lambda-function", "ext"]);
        assert_eq!(templates[0].body["index_patterns"], json!(["lambda-*"]));
        assert_eq!(
            templates[1].body["index_patterns"],
            json!(["lambda-function-*"])
        );
        let priority = |t: &Template| t.body["priority"].as_u64().unwrap();
        assert!(priority(&templates[1]) > priority(&templates[0]));
        assert_eq!(
            templates[1].body["template"],
            serde_json::from_str::<Value>(FUNCTION_TEMPLATE).unwrap()["template"]
        );
    }
}
