//! A function's log group, locally: `<state>/lambda-logs/<function>.jsonl`, one CloudWatch Logs
//! event per line (`{"timestamp": <epoch ms>, "message": "…"}`, the shape `FilterLogEvents` and a
//! subscription deliver). Between the function's and its extensions' own stdout/stderr lines it
//! holds the lines Lambda itself writes for each invocation, in AWS's documented format:
//!
//! ```text
//! START RequestId: <id> Version: $LATEST
//! END RequestId: <id>
//! REPORT RequestId: <id>\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t
//! XRAY TraceId: 1-5e34a614-10bdxmplf1fb44f07bc535a1\tSegmentId: 07f5xmpl2d1f6f85\tSampled: true\t
//! ```
//!
//! (`REPORT` and its `XRAY` line are one event, as on AWS.) The cost report reads these files as
//! it reads `/aws/lambda/<function>` on AWS; their bytes are what the function's log would ingest.
//! Writes are buffered and never fail an invocation.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::json_lines::JsonLinesFile;

/// The folder of the function logs inside a state directory.
pub fn logs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("lambda-logs")
}

/// What an invocation's `REPORT` line says.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportLine<'a> {
    /// The invocation.
    pub request_id: &'a str,
    /// From the runtime's `next` to its response.
    pub duration: Duration,
    /// What Lambda bills (init included on a cold start).
    pub billed_ms: u64,
    /// Configured memory.
    pub memory_mb: u32,
    /// Peak memory used.
    pub max_memory_used_mb: u64,
    /// The init phase, on a cold start.
    pub init: Option<Duration>,
    /// The invocation's `X-Amzn-Trace-Id` (`Root=…;Parent=…;Sampled=…`), when it had one.
    pub trace_header: Option<&'a str>,
}

impl ReportLine<'_> {
    /// The event's message, AWS's format.
    pub fn message(&self) -> String {
        let mut text = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            self.request_id,
            self.duration.as_secs_f64() * 1000.0,
            self.billed_ms,
            self.memory_mb,
            self.max_memory_used_mb,
        );
        if let Some(init) = self.init {
            text.push_str(&format!(
                "Init Duration: {:.2} ms\t",
                init.as_secs_f64() * 1000.0
            ));
        }
        if let Some(xray) = self.trace_header.and_then(xray_line) {
            text.push('\n');
            text.push_str(&xray);
        }
        text
    }
}

/// `XRAY TraceId: …\tSegmentId: …\tSampled: …\t` from a trace header; `None` without a root.
fn xray_line(header: &str) -> Option<String> {
    let field = |name: &str| {
        header.split(';').find_map(|part| {
            let (key, value) = part.trim().split_once('=')?;
            (key == name).then_some(value)
        })
    };
    let root = field("Root")?;
    let mut line = format!("XRAY TraceId: {root}\t");
    if let Some(parent) = field("Parent") {
        line.push_str(&format!("SegmentId: {parent}\t"));
    }
    let sampled = field("Sampled") == Some("1");
    line.push_str(&format!("Sampled: {sampled}\t"));
    Some(line)
}

/// One function's log.
#[derive(Debug)]
pub struct FunctionLog {
    file: JsonLinesFile,
}

impl FunctionLog {
    /// Appends to `<dir>/<function>.jsonl`, creating the folder.
    pub fn open(dir: &Path, function: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            file: JsonLinesFile::open(&dir.join(format!("{function}.jsonl")))?,
        })
    }

    /// An event `message`, stamped now.
    pub fn event(&self, message: &str) {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.file
            .append(&json!({"timestamp": timestamp, "message": message}).to_string());
    }

    /// `START RequestId: <id> Version: $LATEST`.
    pub fn start(&self, request_id: &str) {
        self.event(&format!("START RequestId: {request_id} Version: $LATEST"));
    }

    /// `END` then `REPORT` of one invocation.
    pub fn end(&self, report: &ReportLine<'_>) {
        self.event(&format!("END RequestId: {}", report.request_id));
        self.event(&report.message());
    }

    /// Pushes buffered events to the file.
    pub fn flush(&self) {
        self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(init: Option<Duration>, trace_header: Option<&str>) -> String {
        ReportLine {
            request_id: "8f507cfc-0000-4697-b07a-ac58fc914c95",
            duration: Duration::from_micros(15_740),
            billed_ms: 16 + init.map_or(0, |i| i.as_millis() as u64 + 1),
            memory_mb: 128,
            max_memory_used_mb: 56,
            init,
            trace_header,
        }
        .message()
    }

    #[test]
    fn a_report_is_written_in_lambdas_documented_format() {
        // docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html (the traced
        // REPORT example; ids there are masked with `xmpl`).
        assert_eq!(
            report(
                Some(Duration::from_micros(130_490)),
                Some("Root=1-5e34a614-10bd0000f1fb44f07bc535a1;Parent=07f5a0002d1f6f85;Sampled=1")
            ),
            "REPORT RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95\tDuration: 15.74 ms\t\
             Billed Duration: 147 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\t\
             Init Duration: 130.49 ms\t\n\
             XRAY TraceId: 1-5e34a614-10bd0000f1fb44f07bc535a1\tSegmentId: 07f5a0002d1f6f85\tSampled: true\t"
        );
        assert_eq!(
            report(None, None),
            "REPORT RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95\tDuration: 15.74 ms\t\
             Billed Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\t"
        );
        assert!(report(None, Some("Root=1-a-b;Sampled=0"))
            .ends_with("\nXRAY TraceId: 1-a-b\tSampled: false\t"));
        assert!(!report(None, Some("Sampled=1")).contains("XRAY"), "no root");
    }

    #[test]
    fn events_are_json_lines_with_a_timestamp_and_the_message() {
        let dir = std::env::temp_dir().join(format!("function-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = FunctionLog::open(&dir, "payment").unwrap();
        log.start("r1");
        log.event("{\"level\":\"INFO\"}");
        log.end(&ReportLine {
            request_id: "r1",
            duration: Duration::from_millis(2),
            billed_ms: 2,
            memory_mb: 128,
            max_memory_used_mb: 9,
            init: None,
            trace_header: None,
        });
        log.flush();
        let text = std::fs::read_to_string(dir.join("payment.jsonl")).unwrap();
        let messages: Vec<String> = text
            .lines()
            .map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(event["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
                event["message"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            messages,
            [
                "START RequestId: r1 Version: $LATEST",
                "{\"level\":\"INFO\"}",
                "END RequestId: r1",
                "REPORT RequestId: r1\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\t",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
