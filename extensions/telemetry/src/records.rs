//! A Telemetry API POST body into records, and small typed views of the records we index.
//!
//! A body is a JSON array of `{time, type, record}`. Each element is kept as a
//! [`serde_json::Value`] and only *viewed* through types, never deserialized into a closed enum:
//! an unknown `type` (a schema newer than this code, SnapStart's `platform.restore*`) is a record
//! like any other, and one odd record never costs its batch (the `lambda-extension` crate's typed
//! `Vec` answers 400 for the whole POST). The views are lenient by hand for the same reason: a
//! field of an unexpected JSON type is absent from the view, it does not make the record fail.

use serde_json::{Map, Number, Value};

/// One record of a POST.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// `time`, as sent (ISO-8601); empty when missing.
    pub time: String,
    /// `type`, as sent.
    pub kind: String,
    /// `record`, as sent (`Null` when missing).
    pub record: Value,
}

/// A POST body's records, and how many elements were not records.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// The records, in order.
    pub records: Vec<Record>,
    /// Elements that are not an object with a string `type`.
    pub malformed: usize,
}

/// Why a body was not parsed at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the body is not a JSON array")]
pub struct NotAnArray;

/// The records of a POST body.
pub fn parse_body(body: &[u8]) -> Result<Parsed, NotAnArray> {
    let elements: Vec<Value> = serde_json::from_slice(body).map_err(|_| NotAnArray)?;
    let mut parsed = Parsed::default();
    parsed.records.reserve(elements.len());
    for element in elements {
        match record(element) {
            Some(record) => parsed.records.push(record),
            None => parsed.malformed += 1,
        }
    }
    Ok(parsed)
}

fn record(element: Value) -> Option<Record> {
    let Value::Object(mut object) = element else {
        return None;
    };
    let kind = match object.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => return None,
    };
    let time = match object.remove("time") {
        Some(Value::String(time)) => time,
        _ => String::new(),
    };
    let record = object.remove("record").unwrap_or(Value::Null);
    Some(Record { time, kind, record })
}

/// What a record's `type` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `platform.initStart`.
    InitStart,
    /// `platform.initRuntimeDone`.
    InitRuntimeDone,
    /// `platform.initReport`.
    InitReport,
    /// `platform.start`.
    Start,
    /// `platform.runtimeDone`.
    RuntimeDone,
    /// `platform.report`.
    Report,
    /// `platform.logsDropped`.
    LogsDropped,
    /// Another `platform.*` type (`platform.extension`, `platform.restoreStart`, …).
    OtherPlatform,
    /// A function log line.
    Function,
    /// An extension log line.
    Extension,
    /// A type this code does not know.
    Unknown,
}

impl Kind {
    /// The kind of the type name `kind`.
    pub fn of(kind: &str) -> Self {
        match kind {
            "platform.initStart" => Self::InitStart,
            "platform.initRuntimeDone" => Self::InitRuntimeDone,
            "platform.initReport" => Self::InitReport,
            "platform.start" => Self::Start,
            "platform.runtimeDone" => Self::RuntimeDone,
            "platform.report" => Self::Report,
            "platform.logsDropped" => Self::LogsDropped,
            "function" => Self::Function,
            "extension" => Self::Extension,
            other if other.starts_with("platform.") => Self::OtherPlatform,
            _ => Self::Unknown,
        }
    }

    /// Whether this is a `platform.*` type.
    pub fn is_platform(self) -> bool {
        !matches!(self, Self::Function | Self::Extension | Self::Unknown)
    }
}

/// The metrics a platform record may carry (`initReport`, `runtimeDone`, `report`,
/// `restoreReport`), each as the record's own JSON number.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics<'a> {
    /// `durationMs`.
    pub duration_ms: Option<&'a Number>,
    /// `billedDurationMs`.
    pub billed_duration_ms: Option<&'a Number>,
    /// `maxMemoryUsedMB`.
    pub max_memory_used_mb: Option<&'a Number>,
    /// `memorySizeMB`.
    pub memory_size_mb: Option<&'a Number>,
    /// `initDurationMs` (cold start only).
    pub init_duration_ms: Option<&'a Number>,
    /// `restoreDurationMs` (SnapStart).
    pub restore_duration_ms: Option<&'a Number>,
    /// `producedBytes` (`runtimeDone`).
    pub produced_bytes: Option<&'a Number>,
}

/// The fields of the platform records we index: one view for all of them, since they share
/// names (`requestId`, `status`, `metrics`, `tracing`, …).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlatformView<'a> {
    /// `requestId`.
    pub request_id: Option<&'a str>,
    /// `version` (`platform.start`).
    pub version: Option<&'a str>,
    /// `status`: `success | failure | error | timeout`.
    pub status: Option<&'a str>,
    /// `errorType`.
    pub error_type: Option<&'a str>,
    /// `initializationType`.
    pub initialization_type: Option<&'a str>,
    /// `phase`.
    pub phase: Option<&'a str>,
    /// `tracing.value`: `Root=…;Parent=…;Sampled=…`.
    pub tracing_value: Option<&'a str>,
    /// `metrics`.
    pub metrics: Metrics<'a>,
}

impl<'a> PlatformView<'a> {
    /// The view of a platform record's `record`.
    pub fn of(record: &'a Value) -> Self {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let metrics = record.get("metrics").and_then(Value::as_object);
        let metric = |key: &str| metrics.and_then(|m| number(m, key));
        Self {
            request_id: text("requestId"),
            version: text("version"),
            status: text("status"),
            error_type: text("errorType"),
            initialization_type: text("initializationType"),
            phase: text("phase"),
            tracing_value: record
                .get("tracing")
                .and_then(|tracing| tracing.get("value"))
                .and_then(Value::as_str),
            metrics: Metrics {
                duration_ms: metric("durationMs"),
                billed_duration_ms: metric("billedDurationMs"),
                max_memory_used_mb: metric("maxMemoryUsedMB"),
                memory_size_mb: metric("memorySizeMB"),
                init_duration_ms: metric("initDurationMs"),
                restore_duration_ms: metric("restoreDurationMs"),
                produced_bytes: metric("producedBytes"),
            },
        }
    }

    /// The X-Ray trace id: the `Root=` value of `tracing.value`.
    pub fn trace_id(&self) -> Option<&'a str> {
        self.tracing_value.and_then(trace_root)
    }
}

/// `platform.logsDropped`'s fields.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogsDroppedView<'a> {
    /// `droppedBytes`.
    pub dropped_bytes: Option<&'a Number>,
    /// `droppedRecords`.
    pub dropped_records: Option<&'a Number>,
    /// `reason`.
    pub reason: Option<&'a str>,
}

impl<'a> LogsDroppedView<'a> {
    /// The view of a `platform.logsDropped` record's `record`.
    pub fn of(record: &'a Value) -> Self {
        let object = record.as_object();
        Self {
            dropped_bytes: object.and_then(|o| number(o, "droppedBytes")),
            dropped_records: object.and_then(|o| number(o, "droppedRecords")),
            reason: record.get("reason").and_then(Value::as_str),
        }
    }
}

/// A `function` or `extension` record: a text line, or an object with the JSON log format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LogLine<'a> {
    /// The line as printed.
    Text(&'a str),
    /// The JSON log format's object.
    Object(&'a Map<String, Value>),
    /// Anything else (a number, `true`, null).
    Other(&'a Value),
}

impl<'a> LogLine<'a> {
    /// The view of a log record's `record`.
    pub fn of(record: &'a Value) -> Self {
        match record {
            Value::String(line) => Self::Text(line),
            Value::Object(object) => Self::Object(object),
            other => Self::Other(other),
        }
    }
}

/// The `Root=` value of an `X-Amzn-Trace-Id` value (`Root=1-…;Parent=…;Sampled=1`).
pub fn trace_root(value: &str) -> Option<&str> {
    value
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .map(str::trim)
        .filter(|root| !root.is_empty())
}

fn number<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Number> {
    match object.get(key) {
        Some(Value::Number(n)) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trace_roots_are_read_from_the_header_value() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                Some("1-5759e988-bd862e3fe1be46a994272793"),
            ),
            (
                "Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793",
                Some("1-5759e988-bd862e3fe1be46a994272793"),
            ),
            ("Root=1-abc", Some("1-abc")),
            ("Root=", None),
            ("Parent=53995c3f42cd8ad8;Sampled=1", None),
            ("", None),
            ("garbage", None),
        ];
        for (value, expected) in cases {
            assert_eq!(trace_root(value), *expected, "{value}");
        }
    }

    #[test]
    fn bodies_that_are_not_arrays_are_refused() {
        for body in [&b"{}"[..], b"", b"[", b"\"x\"", b"null"] {
            assert_eq!(parse_body(body), Err(NotAnArray));
        }
        assert_eq!(parse_body(b"[]").map(|p| p.records.len()), Ok(0));
    }

    #[test]
    fn elements_that_are_not_records_are_counted_and_the_rest_kept() {
        let body = json!([
            1,
            {"time": "t"},
            {"type": 7},
            {"type": "platform.future", "time": "2026-01-01T00:00:00Z", "record": {"a": 1}},
            {"type": "function"}
        ]);
        let parsed = parse_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.malformed, 3);
        assert_eq!(
            parsed.records,
            [
                Record {
                    time: "2026-01-01T00:00:00Z".into(),
                    kind: "platform.future".into(),
                    record: json!({"a": 1})
                },
                Record {
                    time: String::new(),
                    kind: "function".into(),
                    record: Value::Null
                }
            ]
        );
    }

    #[test]
    fn kinds_are_told_apart() {
        let cases = [
            ("platform.initStart", Kind::InitStart),
            ("platform.report", Kind::Report),
            ("platform.restoreStart", Kind::OtherPlatform),
            ("function", Kind::Function),
            ("extension", Kind::Extension),
            ("platformish", Kind::Unknown),
            ("", Kind::Unknown),
        ];
        for (name, kind) in cases {
            assert_eq!(Kind::of(name), kind, "{name}");
        }
        assert!(Kind::OtherPlatform.is_platform());
        assert!(!Kind::Unknown.is_platform());
    }

    #[test]
    fn views_skip_fields_of_the_wrong_type() {
        let record = json!({"requestId": 5, "status": "success", "metrics": {"durationMs": "slow", "billedDurationMs": 100}});
        let view = PlatformView::of(&record);
        assert_eq!(view.request_id, None);
        assert_eq!(view.status, Some("success"));
        assert_eq!(view.metrics.duration_ms, None);
        assert_eq!(view.metrics.billed_duration_ms, Some(&Number::from(100)));
        assert_eq!(PlatformView::of(&json!("text")), PlatformView::default());
    }
}
