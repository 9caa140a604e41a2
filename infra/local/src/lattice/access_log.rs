//! One VPC Lattice access-log entry: the 35 fields of a service-network log, in Lattice's order
//! and spelling, absent strings as `"-"`, numbers as JSON numbers, durations in milliseconds
//! (VPC Lattice guide, "Access logs"; a real entry is in `tests/fixtures`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::json_lines::JsonLinesFile;

/// Lattice's placeholder for a missing string.
pub const ABSENT: &str = "-";

/// An access-log entry. Field order is the serialization order; each field is Lattice's own,
/// documented in the guide's field table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogEntry {
    pub service_network_arn: String,
    pub resolved_user: String,
    pub listener_type: String,
    pub auth_denied_reason: String,
    pub target_group_arn: String,
    pub source_vpc_arn: String,
    pub destination_vpc_id: String,
    pub source_ip_port: String,
    pub listener_id: String,
    pub target_ip_port: String,
    pub failure_reason: String,
    pub service_arn: String,
    pub source_vpc_id: String,
    pub start_time: String,
    pub request_method: String,
    pub request_path: String,
    pub protocol: String,
    pub response_code: u16,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub duration: u64,
    pub user_agent: String,
    pub host_header: String,
    pub server_name_indication: String,
    pub request_to_target_duration: u64,
    pub response_from_target_duration: u64,
    pub ssl_cipher: String,
    pub tls_version: String,
    pub caller_principal: String,
    #[serde(rename = "callerPrincipalOrgID")]
    pub caller_principal_org_id: String,
    #[serde(rename = "callerX509IssuerOU")]
    pub caller_x509_issuer_ou: String,
    #[serde(rename = "callerX509SubjectCN")]
    pub caller_x509_subject_cn: String,
    #[serde(rename = "callerX509SANNameCN")]
    pub caller_x509_san_name_cn: String,
    #[serde(rename = "callerX509SANDNS")]
    pub caller_x509_san_dns: String,
    #[serde(rename = "callerX509SANURI")]
    pub caller_x509_san_uri: String,
}

/// `value`, or Lattice's `"-"` when it is absent or empty.
pub fn or_absent(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => ABSENT.to_owned(),
    }
}

impl AccessLogEntry {
    /// One JSON line, as written to the log.
    pub fn to_json_line(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `startTime` as Lattice writes it: RFC 3339 UTC, whole seconds.
pub fn start_time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A second destination of the access log (an access-log subscription of another destination
/// type: the stack's Firehose stream). Must not block: it runs on the request path.
pub trait LogSubscriber: Send + Sync + std::fmt::Debug {
    /// Takes one line.
    fn deliver(&self, line: &str);
}

/// Where access-log lines go: a JSON-lines file (when configured), a subscriber (when set), and
/// per-service counts of every line written, so a run can check "one line per request" without
/// re-reading the file.
#[derive(Debug, Default)]
pub struct AccessLogWriter {
    file: Option<JsonLinesFile>,
    subscriber: Option<std::sync::Arc<dyn LogSubscriber>>,
    counts: Mutex<BTreeMap<(String, u16), u64>>,
}

impl AccessLogWriter {
    /// Lines appended to `path` (created if missing).
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Some(JsonLinesFile::open(path)?),
            subscriber: None,
            counts: Mutex::default(),
        })
    }

    /// Every line also goes to `subscriber`.
    pub fn with_subscriber(mut self, subscriber: std::sync::Arc<dyn LogSubscriber>) -> Self {
        self.subscriber = Some(subscriber);
        self
    }

    /// Counts only (no file).
    pub fn counting() -> Self {
        Self::default()
    }

    /// Writes one entry. A write error is logged, never returned: the log must not fail requests.
    pub fn write(&self, entry: &AccessLogEntry) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((entry.service_arn.clone(), entry.response_code))
            .or_default() += 1;
        if self.file.is_none() && self.subscriber.is_none() {
            return;
        }
        let line = entry.to_json_line();
        if let Some(file) = &self.file {
            file.append(&line);
        }
        if let Some(subscriber) = &self.subscriber {
            subscriber.deliver(&line);
        }
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&self) {
        if let Some(file) = &self.file {
            file.flush();
        }
    }

    /// Lines written so far, by (service ARN, response code).
    pub fn counts(&self) -> BTreeMap<(String, u16), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_values_are_dashes() {
        assert_eq!(or_absent(None), "-");
        assert_eq!(or_absent(Some("")), "-");
        assert_eq!(or_absent(Some("x")), "x");
    }

    #[test]
    fn start_time_is_whole_seconds_utc() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_722_770_920_750);
        assert_eq!(start_time(at), "2024-08-04T11:28:40Z");
    }
}
