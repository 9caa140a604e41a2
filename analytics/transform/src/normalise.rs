//! One Lattice access-log entry into the document `analytics/lattice-access-template.json` maps.
//!
//! Lattice's fields keep their names and values, except:
//! - `"-"` (Lattice's absent string) becomes an absent field, so no `ip` or `long` field is ever
//!   asked to index a dash;
//! - `startTime` becomes `@timestamp`, RFC 3339 UTC;
//! - `sourceIpPort` / `targetIpPort` become `source.ip`/`source.port` and `target.ip`/`target.port`
//!   (an unparsable value is kept as it came, unindexed);
//! - added: `service` (the name of `serviceArn`), `responseClass` (`2xx`…), `isError`
//!   (status ≥ 400), `authDenied` (an `authDeniedReason` is present) and `callerRole` (the role
//!   name in `callerPrincipal`).
//!
//! Fields Lattice may add later pass through unchanged; the template's `dynamic: false` keeps them
//! in `_source` without indexing them.

use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::config::ServiceNames;

/// Lattice's placeholder for an absent string.
pub const ABSENT: &str = "-";

/// Why an entry cannot become a document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NormaliseError {
    /// No `startTime`: not a Lattice access-log entry.
    #[error("not a VPC Lattice access-log entry: no startTime")]
    NoStartTime,
    /// `startTime` is not RFC 3339.
    #[error("startTime `{0}` is not an RFC 3339 time")]
    BadStartTime(String),
    /// No numeric `responseCode`.
    #[error("not a VPC Lattice access-log entry: responseCode missing or not a number")]
    NoResponseCode,
}

/// The document for `entry`.
pub fn normalise(
    mut entry: Map<String, Value>,
    services: &ServiceNames,
) -> Result<Map<String, Value>, NormaliseError> {
    entry.retain(|_, value| value.as_str() != Some(ABSENT));
    let timestamp = match entry.remove("startTime") {
        Some(Value::String(text)) => utc_timestamp(&text)?,
        Some(other) => return Err(NormaliseError::BadStartTime(other.to_string())),
        None => return Err(NormaliseError::NoStartTime),
    };
    let status = entry
        .get("responseCode")
        .and_then(Value::as_u64)
        .ok_or(NormaliseError::NoResponseCode)?;
    entry.insert("@timestamp".into(), Value::String(timestamp));
    entry.insert("responseClass".into(), format!("{}xx", status / 100).into());
    entry.insert("isError".into(), Value::Bool(status >= 400));
    let denied = entry.contains_key("authDeniedReason");
    entry.insert("authDenied".into(), Value::Bool(denied));
    split_ip_port(&mut entry, "sourceIpPort", "source");
    split_ip_port(&mut entry, "targetIpPort", "target");
    if let Some(name) = text(&entry, "serviceArn").and_then(|arn| services.name_of(arn)) {
        entry.insert("service".into(), name.into());
    }
    if let Some(role) = text(&entry, "callerPrincipal").and_then(role_name) {
        entry.insert("callerRole".into(), role.into());
    }
    Ok(entry)
}

fn text<'a>(entry: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    entry.get(key).and_then(Value::as_str)
}

fn utc_timestamp(text: &str) -> Result<String, NormaliseError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        })
        .map_err(|_| NormaliseError::BadStartTime(text.to_owned()))
}

/// `10.0.0.1:443` or `[2600:1f18::1]:443` into an address and a port.
pub fn parse_ip_port(text: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (ip, port) = rest.split_once("]:")?;
            (ip, port)
        }
        None => text.rsplit_once(':')?,
    };
    Some((ip.parse().ok()?, port.parse().ok()?))
}

fn split_ip_port(entry: &mut Map<String, Value>, field: &str, object: &str) {
    let Some((ip, port)) = text(entry, field).and_then(parse_ip_port) else {
        return;
    };
    entry.remove(field);
    entry.insert(
        object.into(),
        serde_json::json!({"ip": ip.to_string(), "port": port}),
    );
}

/// The role in an assumed-role session ARN (`…:assumed-role/NAME/session`) or a role ARN
/// (`…:role/path/NAME`).
pub fn role_name(principal: &str) -> Option<String> {
    let (_, resource) = principal.split_once(":assumed-role/").or_else(|| {
        principal
            .split_once(":role/")
            .map(|(head, path)| (head, path.rsplit('/').next().unwrap_or(path)))
    })?;
    let name = resource.split('/').next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ports_split_for_both_families() {
        let table = [
            ("10.0.183.56:57086", Some(("10.0.183.56", 57086))),
            ("[2600:1f18::1]:443", Some(("2600:1f18::1", 443))),
            ("10.0.0.1", None),
            ("10.0.0.1:99999", None),
            ("host:80", None),
            ("[::1]443", None),
        ];
        for (text, expected) in table {
            let parsed = parse_ip_port(text).map(|(ip, port)| (ip.to_string(), port));
            assert_eq!(
                parsed,
                expected.map(|(ip, port)| (ip.to_owned(), port)),
                "{text}"
            );
        }
    }

    #[test]
    fn role_names_come_from_sessions_and_role_arns() {
        let table = [
            (
                "arn:aws:sts::123467890123:assumed-role/BridgeModeStack-EnvoyFrontendTaskRole/35ecc",
                Some("BridgeModeStack-EnvoyFrontendTaskRole"),
            ),
            ("arn:aws:iam::111122223333:role/loadgen", Some("loadgen")),
            ("arn:aws:iam::111122223333:role/team/app/order-function", Some("order-function")),
            ("arn:aws:iam::111122223333:user/alice", None),
            ("anonymous", None),
            ("arn:aws:sts::1:assumed-role//s", None),
        ];
        for (principal, expected) in table {
            assert_eq!(role_name(principal).as_deref(), expected, "{principal}");
        }
    }

    #[test]
    fn times_become_utc_rfc3339() {
        assert_eq!(
            utc_timestamp("2024-08-04T11:28:40Z").unwrap(),
            "2024-08-04T11:28:40Z"
        );
        assert_eq!(
            utc_timestamp("2024-08-04T13:28:40.25+02:00").unwrap(),
            "2024-08-04T11:28:40.250Z"
        );
        assert_eq!(
            utc_timestamp("yesterday"),
            Err(NormaliseError::BadStartTime("yesterday".into()))
        );
    }

    #[test]
    fn entries_without_lattice_fields_are_refused() {
        let names = ServiceNames::default();
        let object = |text: &str| serde_json::from_str::<Map<String, Value>>(text).unwrap();
        assert_eq!(
            normalise(object("{}"), &names),
            Err(NormaliseError::NoStartTime)
        );
        assert_eq!(
            normalise(object(r#"{"startTime":7}"#), &names),
            Err(NormaliseError::BadStartTime("7".into()))
        );
        assert_eq!(
            normalise(
                object(r#"{"startTime":"2024-08-04T11:28:40Z","responseCode":"-"}"#),
                &names
            ),
            Err(NormaliseError::NoResponseCode)
        );
    }
}
