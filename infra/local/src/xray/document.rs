//! The daemon's datagram format and the rules a segment document must follow.
//!
//! A datagram is a JSON header line, `{"format": "json", "version": 1}` (the SDKs differ on the
//! spacing, so the header is parsed as JSON, not compared as bytes), a newline, and one document;
//! at most 64 KiB. The document rules are the X-Ray developer guide's ("Segment documents"):
//! `trace_id` `1-<8 hex>-<24 hex>`, `id` 16 hex, `name` 1–200 characters, numeric `start_time`,
//! and either `end_time` or `in_progress: true`; an independently sent subsegment also carries
//! `type: "subsegment"`, `trace_id` and `parent_id`. Annotation keys match `^[A-Za-z0-9_]{1,500}$`
//! and values are strings, numbers or booleans. Nested subsegments follow the same rules minus
//! `trace_id`.

use serde_json::{Map, Value};

/// Largest datagram the daemon accepts.
pub const MAX_DATAGRAM_BYTES: usize = 64 * 1024;

/// Why a datagram was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Over 64 KiB.
    #[error("datagram of {0} bytes is over 64 KiB")]
    TooLarge(usize),
    /// No newline between header and document.
    #[error("no header line")]
    NoHeader,
    /// The header is not `{"format": "json", "version": 1}`.
    #[error("bad header: {0}")]
    BadHeader(String),
    /// The document is not a JSON object.
    #[error("document is not a JSON object: {0}")]
    NotJson(String),
    /// The daemon's queue of datagrams waiting to be parsed was full (the stack is overloaded):
    /// dropped, like the real daemon drops what it cannot buffer, but counted.
    #[error("daemon queue full: datagram of {0} bytes dropped")]
    QueueFull(usize),
    /// A field breaks the document rules; the path names it.
    #[error("{path}: {reason}")]
    Invalid {
        /// JSON path of the field, e.g. `subsegments[1].id`.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Whether a document is a segment or an independently sent subsegment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// A service's segment.
    Segment,
    /// A subsegment sent on its own (`type: "subsegment"`).
    Subsegment,
}

/// A document that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDocument {
    /// Segment or independent subsegment.
    pub kind: DocumentKind,
    /// The trace it belongs to.
    pub trace_id: String,
    /// Its id.
    pub id: String,
    /// True while `in_progress` (a later complete document replaces it).
    pub in_progress: bool,
    /// The document as received.
    pub body: Map<String, Value>,
}

/// Splits a datagram into header and document and validates both.
pub fn parse_datagram(datagram: &[u8]) -> Result<SegmentDocument, Rejection> {
    if datagram.len() > MAX_DATAGRAM_BYTES {
        return Err(Rejection::TooLarge(datagram.len()));
    }
    let newline = datagram
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(Rejection::NoHeader)?;
    let (header, document) = (&datagram[..newline], &datagram[newline + 1..]);
    let header: Value =
        serde_json::from_slice(header).map_err(|e| Rejection::BadHeader(e.to_string()))?;
    if header.get("format").and_then(Value::as_str) != Some("json")
        || header.get("version").and_then(Value::as_u64) != Some(1)
    {
        return Err(Rejection::BadHeader(header.to_string()));
    }
    let body: Map<String, Value> =
        serde_json::from_slice(document).map_err(|e| Rejection::NotJson(e.to_string()))?;
    validate_document(body)
}

/// Validates a document (from a datagram or from `PutTraceSegments`).
pub fn validate_document(body: Map<String, Value>) -> Result<SegmentDocument, Rejection> {
    let kind = match body.get("type") {
        None => DocumentKind::Segment,
        Some(Value::String(t)) if t == "subsegment" => DocumentKind::Subsegment,
        Some(other) => {
            return Err(invalid(
                "type",
                format!("must be \"subsegment\", got {other}"),
            ))
        }
    };
    let trace_id = match body.get("trace_id") {
        Some(Value::String(id)) if is_trace_id(id) => id.clone(),
        Some(other) => {
            return Err(invalid(
                "trace_id",
                format!("{other} is not 1-<8 hex>-<24 hex>"),
            ))
        }
        None => return Err(invalid("trace_id", "missing")),
    };
    if kind == DocumentKind::Subsegment {
        match body.get("parent_id") {
            Some(Value::String(id)) if is_segment_id(id) => {}
            _ => {
                return Err(invalid(
                    "parent_id",
                    "an independent subsegment needs a 16-hex parent_id",
                ))
            }
        }
    }
    let in_progress = check_entity(&body, "", kind == DocumentKind::Segment)?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(SegmentDocument {
        kind,
        trace_id,
        id,
        in_progress,
        body,
    })
}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Rejection {
    Rejection::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Checks the fields every (sub)segment has; returns whether it is in progress.
fn check_entity(
    entity: &Map<String, Value>,
    path: &str,
    top_segment: bool,
) -> Result<bool, Rejection> {
    match entity.get("id") {
        Some(Value::String(id)) if is_segment_id(id) => {}
        _ => return Err(invalid(field(path, "id"), "must be 16 hex digits")),
    }
    match entity.get("name") {
        Some(Value::String(name)) if !name.is_empty() && name.chars().count() <= 200 => {}
        _ => return Err(invalid(field(path, "name"), "must be 1-200 characters")),
    }
    let start = entity.get("start_time").and_then(Value::as_f64);
    let Some(start) = start else {
        return Err(invalid(field(path, "start_time"), "must be epoch seconds"));
    };
    let in_progress = entity.get("in_progress").and_then(Value::as_bool) == Some(true);
    match (entity.get("end_time"), in_progress) {
        (Some(end), false) => match end.as_f64() {
            Some(end) if end >= start => {}
            _ => {
                return Err(invalid(
                    field(path, "end_time"),
                    "must be epoch seconds not before start_time",
                ))
            }
        },
        (None, true) => {}
        (Some(_), true) => {
            return Err(invalid(
                field(path, "in_progress"),
                "cannot be true with an end_time",
            ))
        }
        (None, false) => {
            return Err(invalid(
                field(path, "end_time"),
                "missing (and not in_progress)",
            ))
        }
    }
    if top_segment {
        if let Some(Value::String(origin)) = entity.get("origin") {
            if origin.is_empty() {
                return Err(invalid(field(path, "origin"), "must not be empty"));
            }
        }
    }
    if let Some(annotations) = entity.get("annotations") {
        let Value::Object(annotations) = annotations else {
            return Err(invalid(field(path, "annotations"), "must be an object"));
        };
        for (key, value) in annotations {
            let key_ok = !key.is_empty()
                && key.len() <= 500
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !key_ok {
                return Err(invalid(
                    field(path, "annotations"),
                    format!("bad key {key:?}"),
                ));
            }
            if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                return Err(invalid(
                    field(path, &format!("annotations.{key}")),
                    "must be a string, number or boolean",
                ));
            }
        }
    }
    if let Some(subsegments) = entity.get("subsegments") {
        let Value::Array(subsegments) = subsegments else {
            return Err(invalid(field(path, "subsegments"), "must be an array"));
        };
        for (i, sub) in subsegments.iter().enumerate() {
            let sub_path = format!("{}[{i}]", field(path, "subsegments"));
            let Value::Object(sub) = sub else {
                return Err(invalid(sub_path, "must be an object"));
            };
            check_entity(sub, &sub_path, false)?;
        }
    }
    Ok(in_progress)
}

/// `1-<8 hex>-<24 hex>`.
pub fn is_trace_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 35
        && b.starts_with(b"1-")
        && b[10] == b'-'
        && b[2..10].iter().all(u8::is_ascii_hexdigit)
        && b[11..].iter().all(u8::is_ascii_hexdigit)
}

/// 16 hex digits.
pub fn is_segment_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "1-5759e988-bd862e3fe1be46a994272793";

    fn datagram(header: &str, doc: &str) -> Vec<u8> {
        format!("{header}\n{doc}").into_bytes()
    }

    #[test]
    fn accepts_both_header_spacings() {
        let doc = format!(
            r#"{{"trace_id":"{TRACE}","id":"53995c3f42cd8ad8","name":"order","start_time":1.0,"end_time":2.0}}"#
        );
        for header in [
            r#"{"format": "json", "version": 1}"#,
            r#"{"format":"json","version":1}"#,
        ] {
            let parsed = parse_datagram(&datagram(header, &doc)).unwrap();
            assert_eq!(parsed.kind, DocumentKind::Segment);
            assert_eq!(parsed.trace_id, TRACE);
            assert_eq!(parsed.id, "53995c3f42cd8ad8");
        }
    }

    #[test]
    fn rejection_table() {
        let h = r#"{"format":"json","version":1}"#;
        let ok = |extra: &str| {
            format!(
                r#"{{"trace_id":"{TRACE}","id":"53995c3f42cd8ad8","name":"order","start_time":1.0{extra}}}"#
            )
        };
        let table: Vec<(Vec<u8>, &str)> = vec![
            (b"no newline".to_vec(), "no header line"),
            (datagram(r#"{"format":"xml","version":1}"#, &ok(",\"end_time\":2")), "bad header"),
            (datagram("garbage", &ok(",\"end_time\":2")), "bad header"),
            (datagram(h, "not json"), "document is not a JSON object"),
            (datagram(h, "[1,2]"), "document is not a JSON object"),
            (datagram(h, &ok("")), "end_time: missing"),
            (datagram(h, &ok(",\"end_time\":0.5")), "end_time: must be epoch seconds not before"),
            (datagram(h, &ok(",\"in_progress\":true,\"end_time\":2")), "in_progress: cannot be true"),
            (datagram(h, &ok(",\"end_time\":2,\"type\":\"subsegment\"")), "parent_id:"),
            (datagram(h, &ok(",\"end_time\":2,\"annotations\":{\"bad-key\":1}")), "annotations: bad key"),
            (datagram(h, &ok(",\"end_time\":2,\"annotations\":{\"k\":[1]}")), "annotations.k: must be"),
            (datagram(h, &ok(",\"end_time\":2,\"subsegments\":[{\"id\":\"x\",\"name\":\"a\",\"start_time\":1,\"end_time\":2}]")), "subsegments[0].id"),
            (datagram(h, r#"{"trace_id":"1-abc","id":"53995c3f42cd8ad8","name":"o","start_time":1,"end_time":2}"#), "trace_id:"),
            (datagram(h, &format!(r#"{{"trace_id":"{TRACE}","id":"53995c3f42cd8ad8","name":"","start_time":1,"end_time":2}}"#)), "name:"),
            (vec![b'x'; MAX_DATAGRAM_BYTES + 1], "over 64 KiB"),
        ];
        for (bytes, expected) in table {
            let error = parse_datagram(&bytes).expect_err(expected).to_string();
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn in_progress_and_independent_subsegments_are_accepted() {
        let h = r#"{"format":"json","version":1}"#;
        let doc = format!(
            r#"{{"trace_id":"{TRACE}","id":"53995c3f42cd8ad8","name":"order","start_time":1.0,"in_progress":true}}"#
        );
        assert!(parse_datagram(&datagram(h, &doc)).unwrap().in_progress);
        let sub = format!(
            r#"{{"type":"subsegment","trace_id":"{TRACE}","parent_id":"53995c3f42cd8ad8","id":"1111111111111111","name":"payment","namespace":"remote","start_time":1.0,"end_time":1.5}}"#
        );
        assert_eq!(
            parse_datagram(&datagram(h, &sub)).unwrap().kind,
            DocumentKind::Subsegment
        );
    }
}

#[cfg(test)]
mod float_round_trip {
    use super::parse_datagram;

    /// Found by fuzzing: without serde_json's `float_roundtrip`, a document re-sent from the
    /// store came back with a time one unit in the last place off.
    #[test]
    fn times_survive_being_stored_and_resent_exactly() {
        let datagram = b"{\"format\":\"json\",\"version\":1}\n{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"6b55dcc497934f1a\",\"name\":\"payment\",\"start_time\":1.4777777777777781e+84,\"in_progress\":true}";
        let stored = parse_datagram(datagram).unwrap();
        let resent = format!(
            "{{\"format\":\"json\",\"version\":1}}\n{}",
            serde_json::Value::Object(stored.body.clone())
        );
        assert_eq!(parse_datagram(resent.as_bytes()).unwrap(), stored);
        assert_eq!(
            stored.body["start_time"].as_f64(),
            Some(1.4777777777777781e84)
        );
    }
}
