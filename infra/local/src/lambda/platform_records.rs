//! The `platform.*` records the local Lambda service emits, shaped as the Telemetry API schema
//! reference (2022-12-13) gives them, from the environment's real measurements.
//!
//! What is measured: durations from the service's own clock around each phase; the billed
//! duration rounded up to the next millisecond, with the init duration added on a cold start
//! (Lambda bills the init phase of on-demand functions); memory used as the environment's peak
//! resident set (`VmHWM` of its runtime and extension processes, in MB rounded up).

use std::time::Duration;

use serde_json::{json, Value};

/// How an invocation or init phase ended (`status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It ended normally.
    Success,
    /// The function returned an error.
    Error,
    /// The runtime or an extension failed (crashed, init error).
    Failure,
    /// It ran past the timeout.
    Timeout,
}

impl Status {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Failure => "failure",
            Self::Timeout => "timeout",
        }
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

fn tracing(trace_id: Option<&str>) -> Option<Value> {
    trace_id.map(|value| json!({"type": "X-Amzn-Trace-Id", "value": value}))
}

/// `platform.initStart`.
pub fn init_start(function_name: &str, memory_mb: u32) -> Value {
    json!({
        "initializationType": "on-demand",
        "phase": "init",
        "runtimeVersion": "provided:al2023",
        "functionName": function_name,
        "functionVersion": "$LATEST",
        "instanceMaxMemory": memory_mb,
    })
}

/// `platform.initRuntimeDone`.
pub fn init_runtime_done(status: Status, error_type: Option<&str>) -> Value {
    let mut record = json!({
        "initializationType": "on-demand",
        "phase": "init",
        "status": status.as_str(),
    });
    if let Some(error_type) = error_type {
        record["errorType"] = json!(error_type);
    }
    record
}

/// `platform.initReport`.
pub fn init_report(status: Status, duration: Duration) -> Value {
    json!({
        "initializationType": "on-demand",
        "phase": "init",
        "status": status.as_str(),
        "metrics": {"durationMs": millis(duration)},
    })
}

/// `platform.extension`: an extension is ready.
pub fn extension(name: &str, events: &[&str]) -> Value {
    json!({"name": name, "state": "Ready", "events": events})
}

/// `platform.start`.
pub fn start(request_id: &str, trace_id: Option<&str>) -> Value {
    let mut record = json!({"requestId": request_id, "version": "$LATEST"});
    if let Some(tracing) = tracing(trace_id) {
        record["tracing"] = tracing;
    }
    record
}

/// `platform.runtimeDone`: the runtime answered (or failed, or timed out).
pub fn runtime_done(
    request_id: &str,
    status: Status,
    error_type: Option<&str>,
    duration: Duration,
    produced_bytes: usize,
    trace_id: Option<&str>,
) -> Value {
    let mut record = json!({
        "requestId": request_id,
        "status": status.as_str(),
        "metrics": {"durationMs": millis(duration), "producedBytes": produced_bytes},
    });
    if let Some(error_type) = error_type {
        record["errorType"] = json!(error_type);
    }
    if let Some(tracing) = tracing(trace_id) {
        record["tracing"] = tracing;
    }
    record
}

/// What `platform.report` says about one invocation.
#[derive(Clone, Debug)]
pub struct Report<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// How it ended.
    pub status: Status,
    /// The error type, when it did not succeed.
    pub error_type: Option<&'a str>,
    /// From the event handed over until the runtime and every extension were done.
    pub duration: Duration,
    /// The environment's init duration, on a cold start.
    pub init: Option<Duration>,
    /// The function's memory setting.
    pub memory_mb: u32,
    /// Peak memory of the environment so far.
    pub max_memory_used_mb: u64,
    /// The invocation's trace header.
    pub trace_id: Option<&'a str>,
}

/// The billed duration: duration (plus init on a cold start), rounded up to 1 ms.
///
/// It is computed from the durations as the record reports them (to the microsecond), so a
/// reader who adds `durationMs` and `initDurationMs` and rounds up gets exactly this figure:
/// 10.9996 ms is reported as `11.0` and billed as 11, not 12.
pub fn billed_ms(duration: Duration, init: Option<Duration>) -> u64 {
    let total_micros = reported_micros(duration) + init.map_or(0, reported_micros);
    total_micros.div_ceil(1_000) as u64
}

/// A duration in whole microseconds, rounded to nearest: the precision [`millis`] reports.
fn reported_micros(duration: Duration) -> u128 {
    (duration.as_nanos() + 500) / 1_000
}

/// `platform.report`.
pub fn report(report: &Report<'_>) -> Value {
    let mut metrics = json!({
        "durationMs": millis(report.duration),
        "billedDurationMs": billed_ms(report.duration, report.init),
        "memorySizeMB": report.memory_mb,
        "maxMemoryUsedMB": report.max_memory_used_mb,
    });
    if let Some(init) = report.init {
        metrics["initDurationMs"] = json!(millis(init));
    }
    let mut record = json!({
        "requestId": report.request_id,
        "status": report.status.as_str(),
        "metrics": metrics,
    });
    if let Some(error_type) = report.error_type {
        record["errorType"] = json!(error_type);
    }
    if let Some(tracing) = tracing(report.trace_id) {
        record["tracing"] = tracing;
    }
    record
}

/// Peak resident memory of the processes `pids`, in MB rounded up (`VmHWM` from
/// `/proc/<pid>/status`; 0 where that cannot be read).
pub fn peak_memory_mb(pids: &[u32]) -> u64 {
    let kib: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .sum();
    kib.div_ceil(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_duration_rounds_up_to_the_millisecond_and_adds_init_on_a_cold_start() {
        assert_eq!(billed_ms(Duration::from_micros(1_001), None), 2);
        assert_eq!(billed_ms(Duration::from_millis(3), None), 3);
        assert_eq!(
            billed_ms(
                Duration::from_micros(2_500),
                Some(Duration::from_micros(10_200))
            ),
            13
        );
        // Below the reported precision: 10.9996 ms is reported as 11.0 and billed as 11.
        let just_under = Duration::from_nanos(10_999_600);
        assert_eq!(millis(just_under), 11.0);
        assert_eq!(billed_ms(just_under, None), 11);
        assert_eq!(
            billed_ms(
                Duration::from_nanos(10_000_400),
                Some(Duration::from_nanos(1_000_400))
            ),
            11
        );
    }

    #[test]
    fn a_report_has_the_documented_fields() {
        let record = report(&Report {
            request_id: "r-1",
            status: Status::Success,
            error_type: None,
            duration: Duration::from_micros(2_345),
            init: Some(Duration::from_micros(12_000)),
            memory_mb: 128,
            max_memory_used_mb: 9,
            trace_id: Some(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            ),
        });
        assert_eq!(
            record,
            json!({
                "requestId": "r-1",
                "status": "success",
                "metrics": {
                    "durationMs": 2.345,
                    "billedDurationMs": 15,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 9,
                    "initDurationMs": 12.0,
                },
                "tracing": {
                    "type": "X-Amzn-Trace-Id",
                    "value": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                },
            })
        );
    }

    #[test]
    fn peak_memory_of_this_process_is_read_from_proc() {
        let mb = peak_memory_mb(&[std::process::id()]);
        assert!(mb > 0, "VmHWM of the test process: {mb} MB");
        assert_eq!(peak_memory_mb(&[u32::MAX]), 0);
    }
}
