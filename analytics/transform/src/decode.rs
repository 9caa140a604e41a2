//! What a Firehose record's bytes are, found from the bytes themselves.
//!
//! On the direct path (an access-log subscription whose destination is the stream) each record is
//! one raw Lattice entry: a JSON object. A CloudWatch Logs subscription filter delivers instead a
//! gzip envelope (`1f 8b`) holding `messageType`, `logEvents` and the log group. Both can reach the
//! same stream, so the format is detected per record, never assumed.

use std::io::Read as _;

use aws_lambda_events::cloudwatch_logs::LogData;
use serde_json::{Map, Value};

/// gzip's magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The most a compressed envelope may expand to. A Firehose record is at most 1,000 KiB and log
/// events compress about 10×; anything past this is refused rather than inflated (a gzip bomb).
pub const MAX_INFLATED_BYTES: u64 = 16 * 1024 * 1024;

/// What a record holds.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// One access-log entry, as a JSON object.
    Entry(Map<String, Value>),
    /// A CloudWatch Logs `CONTROL_MESSAGE`: a health check of the destination, not a log line.
    Control,
}

/// Why a record cannot become a document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON and not gzip.
    #[error("neither a JSON access-log entry nor a gzip CloudWatch Logs envelope")]
    UnknownFormat,
    /// Starts like JSON but does not parse as an object.
    #[error("not a JSON object: {0}")]
    InvalidJson(String),
    /// gzip that does not inflate, or inflates past the limit.
    #[error("gzip envelope does not inflate: {0}")]
    InvalidGzip(String),
    /// Inflates, but is not a CloudWatch Logs envelope.
    #[error("gzip data is not a CloudWatch Logs envelope: {0}")]
    InvalidEnvelope(String),
    /// An envelope type other than DATA_MESSAGE and CONTROL_MESSAGE.
    #[error("CloudWatch Logs envelope of messageType `{0}`")]
    UnknownMessageType(String),
    /// A DATA_MESSAGE with no events.
    #[error("CloudWatch Logs envelope without log events")]
    NoLogEvents,
    /// A DATA_MESSAGE with several events: one Firehose record is one OpenSearch document.
    #[error(
        "CloudWatch Logs envelope with {0} log events: one Firehose record becomes one document, \
         so subscribe the service network to the stream directly (one entry per record)"
    )]
    SeveralLogEvents(usize),
    /// The envelope's one event is not a JSON object.
    #[error("the envelope's log event is not a JSON object: {0}")]
    InvalidLogEvent(String),
}

/// Decodes one record's bytes.
pub fn decode(data: &[u8]) -> Result<Decoded, DecodeError> {
    if data.starts_with(&GZIP_MAGIC) {
        return decode_envelope(&inflate(data)?);
    }
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => parse_object(data)
            .map(Decoded::Entry)
            .map_err(DecodeError::InvalidJson),
        _ => Err(DecodeError::UnknownFormat),
    }
}

fn parse_object(data: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("not an object".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn inflate(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut inflated = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(data).take(MAX_INFLATED_BYTES + 1);
    reader
        .read_to_end(&mut inflated)
        .map_err(|e| DecodeError::InvalidGzip(e.to_string()))?;
    if inflated.len() as u64 > MAX_INFLATED_BYTES {
        return Err(DecodeError::InvalidGzip(format!(
            "inflates past {MAX_INFLATED_BYTES} bytes"
        )));
    }
    Ok(inflated)
}

fn decode_envelope(json: &[u8]) -> Result<Decoded, DecodeError> {
    let envelope: LogData =
        serde_json::from_slice(json).map_err(|e| DecodeError::InvalidEnvelope(e.to_string()))?;
    match envelope.message_type.as_str() {
        "CONTROL_MESSAGE" => Ok(Decoded::Control),
        "DATA_MESSAGE" => match envelope.log_events.as_slice() {
            [] => Err(DecodeError::NoLogEvents),
            [event] => parse_object(event.message.as_bytes())
                .map(Decoded::Entry)
                .map_err(DecodeError::InvalidLogEvent),
            events => Err(DecodeError::SeveralLogEvents(events.len())),
        },
        other => Err(DecodeError::UnknownMessageType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn envelope(message_type: &str, messages: &[&str]) -> Vec<u8> {
        let events: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 1, "message": m}))
            .collect();
        gzip(
            serde_json::json!({"owner": "111122223333", "logGroup": "g", "logStream": "s",
                "subscriptionFilters": ["f"], "messageType": message_type, "logEvents": events})
            .to_string()
            .as_bytes(),
        )
    }

    #[test]
    fn raw_entries_and_envelopes_are_told_apart_by_their_bytes() {
        let entry = decode(b" {\"startTime\":\"x\"}").unwrap();
        assert_eq!(
            entry,
            Decoded::Entry(serde_json::from_str(r#"{"startTime":"x"}"#).unwrap())
        );
        assert_eq!(
            decode(&envelope("DATA_MESSAGE", &[r#"{"a":1}"#])).unwrap(),
            Decoded::Entry(serde_json::from_str(r#"{"a":1}"#).unwrap())
        );
        assert_eq!(
            decode(&envelope("CONTROL_MESSAGE", &["CWL CONTROL MESSAGE"])).unwrap(),
            Decoded::Control
        );
    }

    #[test]
    fn every_other_shape_is_refused_with_its_reason() {
        let table: Vec<(Vec<u8>, DecodeError)> = vec![
            (b"".to_vec(), DecodeError::UnknownFormat),
            (b"hello".to_vec(), DecodeError::UnknownFormat),
            (b"[1]".to_vec(), DecodeError::UnknownFormat),
            (envelope("DATA_MESSAGE", &[]), DecodeError::NoLogEvents),
            (
                envelope("DATA_MESSAGE", &["{}", "{}", "{}"]),
                DecodeError::SeveralLogEvents(3),
            ),
            (
                envelope("SOMETHING", &["{}"]),
                DecodeError::UnknownMessageType("SOMETHING".into()),
            ),
        ];
        for (data, expected) in table {
            assert_eq!(decode(&data), Err(expected), "{data:?}");
        }
        assert!(matches!(
            decode(b"{\"a\":"),
            Err(DecodeError::InvalidJson(_))
        ));
        assert!(matches!(
            decode(&[0x1f, 0x8b, 0, 1]),
            Err(DecodeError::InvalidGzip(_))
        ));
        assert!(matches!(
            decode(&gzip(b"{}")),
            Err(DecodeError::InvalidEnvelope(_))
        ));
        assert!(matches!(
            decode(&envelope("DATA_MESSAGE", &["plain text"])),
            Err(DecodeError::InvalidLogEvent(_))
        ));
    }

    #[test]
    fn a_gzip_bomb_is_refused_not_inflated() {
        let zeros = vec![b' '; (MAX_INFLATED_BYTES + 10) as usize];
        assert!(
            matches!(decode(&gzip(&zeros)), Err(DecodeError::InvalidGzip(m)) if m.contains("inflates past"))
        );
    }
}
