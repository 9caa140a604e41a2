//! One record into one OpenSearch document: its daily index (`<prefix>-YYYY-MM-DD` from the
//! record's `time`, UTC), its deterministic `_id` (from [`ids`](crate::ids)) and its source.
//!
//! - Platform records: `@timestamp`, `type`, `function`, `functionVersion`, `requestId`,
//!   `traceId` (the `Root=` of `record.tracing.value`), `status`, `errorType`, the metrics as
//!   top-level fields (`durationMs`, `billedDurationMs`, …), `initializationType`, `phase`,
//!   `platform.logsDropped`'s counts, and `record`, the raw record (kept, not indexed).
//! - Function and extension lines: `@timestamp`, `type`, `function`, `message` (the line as
//!   printed) and, when the line is a JSON object (or already one, with the JSON log format),
//!   `json` with `level` and `requestId` lifted from it.
//! - Any other type: `@timestamp`, `type`, `function` and `record` unchanged, in the platform
//!   index; never refused.
//!
//! Extension lines starting with [`say::PREFIX`] are this extension's own and are not documents:
//! indexing them would make every flush produce more lines to flush.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

use crate::config::Indices;
use crate::records::{Kind, LogLine, LogsDroppedView, PlatformView, Record};
use crate::say;

/// What every document of this environment carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentContext {
    /// The extension id Lambda gave at registration (part of every `_id`).
    pub extension_id: String,
    /// The function's name.
    pub function_name: String,
    /// The function's version.
    pub function_version: Option<String>,
    /// Index prefixes.
    pub indices: Indices,
}

/// One document ready for `_bulk`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The daily index.
    pub index: String,
    /// The deterministic `_id`.
    pub id: String,
    /// The source, as JSON.
    pub source: String,
}

impl Document {
    /// The source, parsed (tests and diagnostics).
    pub fn source_value(&self) -> Value {
        serde_json::from_str(&self.source).unwrap_or(Value::Null)
    }
}

/// What a record became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Built {
    /// A document.
    Document(Document),
    /// One of this extension's own log lines: dropped.
    OwnLine,
}

/// The document of `record`, whose id is `id`; `now` stands in for a missing or invalid `time`.
pub fn build(context: &DocumentContext, record: Record, id: String, now: DateTime<Utc>) -> Built {
    let kind = Kind::of(&record.kind);
    let time = DateTime::parse_from_rfc3339(&record.time)
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or(now);
    let mut source = Map::new();
    source.insert(
        "@timestamp".into(),
        time.to_rfc3339_opts(SecondsFormat::AutoSi, true).into(),
    );
    source.insert("function".into(), context.function_name.clone().into());
    let prefix = match kind {
        Kind::Function | Kind::Extension => {
            if kind == Kind::Extension && is_own_line(&record.record) {
                return Built::OwnLine;
            }
            log_fields(&mut source, record.record);
            if kind == Kind::Function {
                &context.indices.function
            } else {
                &context.indices.extension
            }
        }
        Kind::Unknown => {
            source.insert("record".into(), record.record);
            &context.indices.platform
        }
        _ => {
            platform_fields(&mut source, context, kind, &record.record);
            source.insert("record".into(), record.record);
            &context.indices.platform
        }
    };
    source.insert("type".into(), record.kind.into());
    Built::Document(Document {
        index: format!("{prefix}-{}", time.format("%Y-%m-%d")),
        id,
        source: Value::Object(source).to_string(),
    })
}

fn platform_fields(
    source: &mut Map<String, Value>,
    context: &DocumentContext,
    kind: Kind,
    record: &Value,
) {
    let view = PlatformView::of(record);
    let version = view
        .version
        .map(str::to_owned)
        .or_else(|| context.function_version.clone());
    let texts = [
        ("functionVersion", version.as_deref()),
        ("requestId", view.request_id),
        ("traceId", view.trace_id()),
        ("status", view.status),
        ("errorType", view.error_type),
        ("initializationType", view.initialization_type),
        ("phase", view.phase),
    ];
    for (key, value) in texts {
        put_text(source, key, value);
    }
    let metrics = view.metrics;
    let numbers = [
        ("durationMs", metrics.duration_ms),
        ("billedDurationMs", metrics.billed_duration_ms),
        ("maxMemoryUsedMB", metrics.max_memory_used_mb),
        ("memorySizeMB", metrics.memory_size_mb),
        ("initDurationMs", metrics.init_duration_ms),
        ("restoreDurationMs", metrics.restore_duration_ms),
        ("producedBytes", metrics.produced_bytes),
    ];
    for (key, value) in numbers {
        put_number(source, key, value);
    }
    if kind == Kind::LogsDropped {
        let dropped = LogsDroppedView::of(record);
        put_number(source, "droppedBytes", dropped.dropped_bytes);
        put_number(source, "droppedRecords", dropped.dropped_records);
        put_text(source, "reason", dropped.reason);
    }
}

fn log_fields(source: &mut Map<String, Value>, record: Value) {
    let (message, json) = match record {
        Value::String(line) => {
            let json = json_object(&line);
            (line, json)
        }
        Value::Object(object) => {
            let message = match object.get("message") {
                Some(Value::String(message)) => message.clone(),
                _ => Value::Object(object.clone()).to_string(),
            };
            (message, Some(object))
        }
        other => (other.to_string(), None),
    };
    source.insert("message".into(), message.into());
    if let Some(json) = json {
        let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
        let (level, request_id) = (text("level"), text("requestId"));
        put_text(source, "level", level.as_deref());
        put_text(source, "requestId", request_id.as_deref());
        source.insert("json".into(), Value::Object(json));
    }
}

/// `line` as a JSON object, when it is one.
fn json_object(line: &str) -> Option<Map<String, Value>> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    serde_json::from_str(trimmed).ok()
}

/// Whether an extension record is one of our own lines.
fn is_own_line(record: &Value) -> bool {
    let line = match LogLine::of(record) {
        LogLine::Text(line) => Some(line),
        LogLine::Object(object) => object.get("message").and_then(Value::as_str),
        LogLine::Other(_) => None,
    };
    line.is_some_and(|line| line.starts_with(say::PREFIX))
}

fn put_text(source: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        source.insert(key.to_owned(), value.into());
    }
}

fn put_number(source: &mut Map<String, Value>, key: &str, value: Option<&Number>) {
    if let Some(value) = value {
        source.insert(key.to_owned(), Value::Number(value.clone()));
    }
}
