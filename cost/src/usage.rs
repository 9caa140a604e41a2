//! Raw records into [`ServiceUsage`]: Lattice access-log entries (the same JSON locally and in the
//! access-log group) and Lambda reports, read from either of the two forms Lambda writes them in:
//! the function log's `REPORT` line (with its `XRAY TraceId` line when traced) and the Telemetry
//! API's `platform.report` record.
//!
//! What cannot be attributed is an error, never a silent zero: an entry of a service the report
//! does not know names the service and the ARN; a report of a function it does not know names the
//! function; a window with no entries or no reports says which.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{Arch, ServiceUsage};
use crate::traffic::ServiceTraffic;

/// Why records could not become usage.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UsageError {
    /// An access-log entry of a service outside the report.
    #[error(
        "the access log names a service the report does not know: {arn} (known: {known}); \
         pass its name with the others, or filter the log to the stack's services"
    )]
    UnknownService { arn: String, known: String },
    /// A Lambda report of a function outside the report.
    #[error(
        "a Lambda report comes from {function}, which the report does not know (known: {known})"
    )]
    UnknownFunction { function: String, known: String },
    /// A consumed-capacity record of a table no service owns.
    #[error("DynamoDB capacity was consumed on {table}, which no service of the report owns (services: {known})")]
    UnknownTable { table: String, known: String },
    /// An entry or report without a field the model needs.
    #[error("{what} has no usable {field}: {excerpt}")]
    Malformed {
        what: &'static str,
        field: &'static str,
        excerpt: String,
    },
    /// Nothing in the window.
    #[error("no {what} in the window {window}: nothing to report (was the load run in it?)")]
    Empty { what: &'static str, window: String },
}

/// One invocation's report.
#[derive(Clone, Debug, PartialEq)]
pub struct LambdaReport {
    /// The invocation.
    pub request_id: String,
    /// Billed milliseconds (init included on a cold start of `provided.al2023`).
    pub billed_ms: u64,
    /// Configured memory.
    pub memory_mb: u32,
    /// Peak memory used.
    pub max_memory_used_mb: u32,
    /// Present on a cold start.
    pub init_ms: Option<f64>,
    /// The X-Ray trace id (`1-…-…`), when traced.
    pub trace_id: Option<String>,
    /// Whether that trace was sampled (recorded, and billed, by X-Ray), when it says.
    pub sampled: Option<bool>,
}

/// A `REPORT` line and, when traced, the `XRAY TraceId` line after it (AWS's documented log
/// format: tab-separated `Name: value unit` pairs).
pub fn parse_report_line(text: &str) -> Result<LambdaReport, UsageError> {
    let malformed = |field| UsageError::Malformed {
        what: "a REPORT line",
        field,
        excerpt: excerpt(text),
    };
    let body = text
        .trim_start()
        .strip_prefix("REPORT ")
        .ok_or_else(|| malformed("REPORT prefix"))?;
    let mut fields = BTreeMap::new();
    for line in body.lines() {
        let line = line.strip_prefix("XRAY ").unwrap_or(line);
        for pair in line.split('\t') {
            if let Some((name, value)) = pair.split_once(": ") {
                fields.insert(name.trim(), value.trim());
            }
        }
    }
    let number = |name: &'static str, unit: &str| -> Option<f64> {
        fields
            .get(name)
            .and_then(|value| value.strip_suffix(unit))
            .and_then(|value| value.trim().parse::<f64>().ok())
    };
    Ok(LambdaReport {
        request_id: fields
            .get("RequestId")
            .ok_or_else(|| malformed("RequestId"))?
            .to_string(),
        billed_ms: number("Billed Duration", "ms").ok_or_else(|| malformed("Billed Duration"))?
            as u64,
        memory_mb: number("Memory Size", "MB").ok_or_else(|| malformed("Memory Size"))? as u32,
        max_memory_used_mb: number("Max Memory Used", "MB")
            .ok_or_else(|| malformed("Max Memory Used"))? as u32,
        init_ms: number("Init Duration", "ms"),
        trace_id: fields.get("TraceId").map(|id| id.to_string()),
        sampled: fields.get("Sampled").and_then(|s| s.parse().ok()),
    })
}

/// A Telemetry API `platform.report` record (schema 2022-12-13).
pub fn parse_platform_report(record: &Value) -> Result<LambdaReport, UsageError> {
    let malformed = |field| UsageError::Malformed {
        what: "a platform.report record",
        field,
        excerpt: excerpt(&record.to_string()),
    };
    if record["type"] != "platform.report" {
        return Err(malformed("type platform.report"));
    }
    let body = &record["record"];
    let metrics = &body["metrics"];
    let whole = |name: &'static str| metrics[name].as_f64().ok_or_else(|| malformed(name));
    Ok(LambdaReport {
        request_id: body["requestId"]
            .as_str()
            .ok_or_else(|| malformed("requestId"))?
            .to_owned(),
        billed_ms: whole("billedDurationMs")? as u64,
        memory_mb: whole("memorySizeMB")? as u32,
        max_memory_used_mb: whole("maxMemoryUsedMB")? as u32,
        init_ms: metrics["initDurationMs"].as_f64(),
        trace_id: body["tracing"]["value"].as_str().and_then(trace_root),
        sampled: body["tracing"]["value"]
            .as_str()
            .and_then(|header| trace_field(header, "Sampled"))
            .map(|flag| flag == "1"),
    })
}

/// `1-…-…` from `Root=1-…-…;Parent=…;Sampled=…`.
pub fn trace_root(header: &str) -> Option<String> {
    trace_field(header, "Root").map(str::to_owned)
}

/// One field of an `X-Amzn-Trace-Id` header.
fn trace_field<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

fn excerpt(text: &str) -> String {
    let mut cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// One service's usage and performance.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// What it used (what is billed).
    pub usage: ServiceUsage,
    /// How it performed.
    pub traffic: ServiceTraffic,
}

/// Usage and performance per service name, built from records.
#[derive(Debug)]
pub struct UsageBuilder {
    /// Service ARN → name.
    services: BTreeMap<String, String>,
    measured: BTreeMap<String, Measured>,
}

impl UsageBuilder {
    /// For the services `arn → name`.
    pub fn new(services: BTreeMap<String, String>) -> Self {
        let measured = services
            .values()
            .map(|name| (name.clone(), Measured::default()))
            .collect();
        Self { services, measured }
    }

    /// One access-log entry, `line` as written (its bytes are what the log group ingests).
    pub fn add_access_entry(&mut self, line: &str) -> Result<(), UsageError> {
        let malformed = |field| UsageError::Malformed {
            what: "an access-log entry",
            field,
            excerpt: excerpt(line),
        };
        let entry: Value = serde_json::from_str(line).map_err(|_| malformed("JSON"))?;
        let arn = entry["serviceArn"]
            .as_str()
            .ok_or_else(|| malformed("serviceArn"))?;
        let name = self
            .services
            .get(arn)
            .ok_or_else(|| UsageError::UnknownService {
                arn: arn.to_owned(),
                known: self.known_services(),
            })?;
        let hour = entry["startTime"]
            .as_str()
            .and_then(clock_hour)
            .ok_or_else(|| malformed("startTime"))?;
        let number = |field| entry[field].as_u64().ok_or_else(|| malformed(field));
        let (bytes_in, bytes_out) = (number("bytesReceived")?, number("bytesSent")?);
        let (duration, status) = (number("duration")?, number("responseCode")?);
        let measured = self
            .measured
            .get_mut(name)
            .expect("one entry per known name");
        let usage = &mut measured.usage;
        *usage.requests_by_hour.entry(hour).or_default() += 1;
        usage.lattice_bytes += bytes_in + bytes_out;
        usage.access_log_bytes += line.trim_end_matches('\n').len() as u64;
        measured
            .traffic
            .add_request(duration, status, bytes_in, bytes_out);
        Ok(())
    }

    /// One invocation of `service`'s function.
    pub fn add_report(
        &mut self,
        service: &str,
        report: &LambdaReport,
        arch: Arch,
    ) -> Result<(), UsageError> {
        let measured = self.get_mut(service)?;
        measured
            .usage
            .add_invocation(report.billed_ms, report.memory_mb, arch);
        measured.traffic.add_report(
            report.init_ms.is_some(),
            report.max_memory_used_mb,
            report.memory_mb,
        );
        Ok(())
    }

    /// `bytes` more of `service`'s function log.
    pub fn add_lambda_log_bytes(&mut self, service: &str, bytes: u64) -> Result<(), UsageError> {
        self.get_mut(service)?.usage.lambda_log_bytes += bytes;
        Ok(())
    }

    /// The usage by service name; an error when no service saw a request or an invocation in
    /// `window` (its description, for the message).
    pub fn finish(self, window: &str) -> Result<BTreeMap<String, Measured>, UsageError> {
        if self.measured.values().all(|m| m.usage.requests() == 0) {
            return Err(UsageError::Empty {
                what: "access-log entries",
                window: window.to_owned(),
            });
        }
        if self.measured.values().all(|m| m.usage.invocations == 0) {
            return Err(UsageError::Empty {
                what: "Lambda reports",
                window: window.to_owned(),
            });
        }
        Ok(self.measured)
    }

    /// The usage by service name as it stands, empty or not (a source's answer; [`Self::finish`]
    /// is the report's, which refuses a window with nothing in it).
    pub fn into_measured(self) -> BTreeMap<String, Measured> {
        self.measured
    }

    fn get_mut(&mut self, service: &str) -> Result<&mut Measured, UsageError> {
        let known = self.known_services();
        self.measured
            .get_mut(service)
            .ok_or_else(|| UsageError::UnknownFunction {
                function: service.to_owned(),
                known,
            })
    }

    fn known_services(&self) -> String {
        let names: Vec<&str> = self.services.values().map(String::as_str).collect();
        names.join(", ")
    }
}

/// The clock hour (epoch seconds / 3600) of an RFC 3339 time such as `2024-08-04T11:28:40Z`.
fn clock_hour(time: &str) -> Option<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    u64::try_from(time.timestamp())
        .ok()
        .map(|seconds| seconds / 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (Lambda developer guide, "Working with Lambda function logs":
    /// the `REPORT` line of a traced invocation; ids masked by AWS with `xmpl`).
    const DOCUMENTED_REPORT: &str = "REPORT RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t\nXRAY TraceId: 1-5e34a614-10bdxmplf1fb44f07bc535a1\tSegmentId: 07f5xmpl2d1f6f85\tSampled: true\t";

    const ENTRY: &str = include_str!("../tests/fixtures/lattice-access-log-entry.json");
    const BATCH: &str = include_str!("../tests/fixtures/telemetry-batch.json");
    const ARN: &str =
        "arn:aws:vpc-lattice:ap-southeast-2:123467890123:service/svc-0cfe1f49ff3266204";

    #[test]
    fn the_documented_report_line_parses_with_its_trace() {
        let report = parse_report_line(DOCUMENTED_REPORT).unwrap();
        assert_eq!(
            report,
            LambdaReport {
                request_id: "8f507cfc-xmpl-4697-b07a-ac58fc914c95".into(),
                billed_ms: 16,
                memory_mb: 128,
                max_memory_used_mb: 56,
                init_ms: Some(130.49),
                trace_id: Some("1-5e34a614-10bdxmplf1fb44f07bc535a1".into()),
                sampled: Some(true),
            }
        );
        let warm = "REPORT RequestId: r1\tDuration: 2.10 ms\tBilled Duration: 3 ms\tMemory Size: 256 MB\tMax Memory Used: 20 MB\t";
        let warm = parse_report_line(warm).unwrap();
        assert_eq!(
            (warm.init_ms, warm.trace_id, warm.sampled),
            (None, None, None)
        );
        let broken = parse_report_line("REPORT RequestId: r1\tDuration: 2 ms").unwrap_err();
        assert!(broken
            .to_string()
            .starts_with("a REPORT line has no usable Billed Duration"));
    }

    #[test]
    fn the_recorded_platform_report_parses_with_its_trace_root() {
        let batch: Vec<Value> = serde_json::from_str(BATCH).unwrap();
        let record = batch
            .iter()
            .find(|r| r["type"] == "platform.report")
            .unwrap();
        let report = parse_platform_report(record).unwrap();
        assert_eq!(report.request_id, "459921b5-681c-4a96-beb0-81e0aa586026");
        assert_eq!(
            (
                report.billed_ms,
                report.memory_mb,
                report.max_memory_used_mb
            ),
            (2600, 128, 94)
        );
        assert_eq!(report.init_ms, Some(549.04));
        assert_eq!(
            report.trace_id.as_deref(),
            Some("1-6352a70e-1e2c502e358361800241fd45")
        );
        assert_eq!(report.sampled, Some(true));
        let start = batch
            .iter()
            .find(|r| r["type"] == "platform.start")
            .unwrap();
        assert!(parse_platform_report(start).is_err());
    }

    #[test]
    fn access_entries_count_by_hour_with_their_bytes_and_their_own_size() {
        let mut builder = UsageBuilder::new(BTreeMap::from([(ARN.to_owned(), "test2".to_owned())]));
        let line = ENTRY.trim();
        builder.add_access_entry(line).unwrap();
        builder.add_access_entry(line).unwrap();
        let report = parse_report_line(DOCUMENTED_REPORT).unwrap();
        builder.add_report("test2", &report, Arch::Arm64).unwrap();
        builder.add_lambda_log_bytes("test2", 300).unwrap();
        let measured = builder.finish("the test").unwrap();
        let test2 = &measured["test2"].usage;
        let traffic = &measured["test2"].traffic;
        assert_eq!(traffic.status_classes[4], 2, "the entry is a 404");
        assert_eq!(traffic.latency_at(0.99), Some(23.0));
        assert_eq!((traffic.bytes_in, traffic.bytes_out), (270, 2494));
        assert_eq!((traffic.cold_starts, traffic.max_memory_used_mb), (1, 56));
        // 2024-08-04T11:28:40Z: 19,939 days after the epoch, hour 11.
        assert_eq!(
            test2.requests_by_hour,
            BTreeMap::from([(19_939 * 24 + 11, 2)])
        );
        assert_eq!(test2.lattice_bytes, 2 * (135 + 1247));
        assert_eq!(test2.access_log_bytes, 2 * line.len() as u64);
        assert_eq!(test2.invocations, 1);
        assert!((test2.gb_seconds_arm64 - 0.016 * 0.125).abs() < 1e-12);
        assert_eq!(test2.lambda_log_bytes, 300);
    }

    #[test]
    fn unknown_services_and_empty_windows_are_named() {
        let mut builder = UsageBuilder::new(BTreeMap::from([(
            "arn:other".to_owned(),
            "order".to_owned(),
        )]));
        let error = builder.add_access_entry(ENTRY.trim()).unwrap_err();
        assert_eq!(
            error,
            UsageError::UnknownService {
                arn: ARN.into(),
                known: "order".into()
            }
        );
        let report = parse_report_line(DOCUMENTED_REPORT).unwrap();
        let error = builder
            .add_report("payment", &report, Arch::Arm64)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "a Lambda report comes from payment, which the report does not know (known: order)"
        );
        let empty = builder.finish("2026-12-01T00:00Z..01:00Z").unwrap_err();
        assert_eq!(
            empty.to_string(),
            "no access-log entries in the window 2026-12-01T00:00Z..01:00Z: nothing to report (was the load run in it?)"
        );
        let bad = UsageBuilder::new(BTreeMap::new())
            .add_access_entry("{\"serviceArn\": 3}")
            .unwrap_err();
        assert!(bad
            .to_string()
            .starts_with("an access-log entry has no usable serviceArn"));
    }

    #[test]
    fn hours_are_counted_from_the_epoch() {
        assert_eq!(clock_hour("1970-01-01T00:59:59Z"), Some(0));
        assert_eq!(clock_hour("1970-01-02T03:00:00Z"), Some(27));
        assert_eq!(
            clock_hour("2000-03-01T00:00:00+01:00"),
            Some(11_017 * 24 - 1)
        );
        assert_eq!(clock_hour("2024-13-01T00:00:00Z"), None);
        assert_eq!(clock_hour("2024-08-04 11:28:40"), None);
    }
}
