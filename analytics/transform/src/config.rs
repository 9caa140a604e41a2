//! The transform's configuration, read once at cold start.

use std::collections::BTreeMap;
use std::str::FromStr;

/// Service ARN → name pairs: `ARN=name,ARN=name` (ARNs hold neither `=` nor `,`).
pub const SERVICE_NAMES_VAR: &str = "SERVICE_NAMES";
/// Test-only: makes the function break Firehose's contract on purpose (see [`Fault`]), so the
/// local Firehose's enforcement can be shown. Neither stack sets it.
pub const FAULT_VAR: &str = "TRANSFORM_FAULT";

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A `SERVICE_NAMES` pair without `=`, or with an empty side.
    #[error("SERVICE_NAMES: `{0}` is not ARN=name")]
    ServiceName(String),
    /// An unknown `TRANSFORM_FAULT`.
    #[error("TRANSFORM_FAULT: `{0}` is not omit-record, duplicate-record or malformed-response")]
    Fault(String),
}

/// Names for service ARNs; an ARN not in the map is named by its id (`svc-…`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceNames(BTreeMap<String, String>);

impl ServiceNames {
    /// The name of the service `arn`, or its id when the map has none, or `None` when the ARN is
    /// not a Lattice service ARN.
    pub fn name_of(&self, arn: &str) -> Option<String> {
        if let Some(name) = self.0.get(arn) {
            return Some(name.clone());
        }
        arn.rsplit_once(":service/")
            .map(|(_, id)| id.to_owned())
            .filter(|id| !id.is_empty())
    }
}

impl FromStr for ServiceNames {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut names = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((arn, name)) if !arn.trim().is_empty() && !name.trim().is_empty() => {
                    names.insert(arn.trim().to_owned(), name.trim().to_owned());
                }
                _ => return Err(ConfigError::ServiceName(pair.to_owned())),
            }
        }
        Ok(Self(names))
    }
}

/// A deliberate break of Firehose's contract, for tests of whoever enforces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The last record gets no answer (`Lambda.MissingRecordId`).
    OmitRecord,
    /// The first record is answered twice (`Lambda.DuplicatedRecordId`).
    DuplicateRecord,
    /// The response is not Firehose's shape (`Lambda.JsonProcessingException`).
    MalformedResponse,
}

impl FromStr for Fault {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "omit-record" => Ok(Self::OmitRecord),
            "duplicate-record" => Ok(Self::DuplicateRecord),
            "malformed-response" => Ok(Self::MalformedResponse),
            other => Err(ConfigError::Fault(other.to_owned())),
        }
    }
}

/// Everything the function reads from its environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransformConfig {
    /// Service names by ARN.
    pub services: ServiceNames,
    /// A contract break to commit (tests only).
    pub fault: Option<Fault>,
}

impl TransformConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let services = lookup(SERVICE_NAMES_VAR)
            .map(|text| text.parse())
            .transpose()?
            .unwrap_or_default();
        let fault = lookup(FAULT_VAR)
            .filter(|text| !text.is_empty())
            .map(|text| text.parse())
            .transpose()?;
        Ok(Self { services, fault })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0123456789abcdef0";

    #[test]
    fn names_come_from_the_map_then_from_the_arn() {
        let names: ServiceNames = format!("{ORDER}=order, ").parse().unwrap();
        assert_eq!(names.name_of(ORDER).as_deref(), Some("order"));
        assert_eq!(
            names
                .name_of("arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0aaa")
                .as_deref(),
            Some("svc-0aaa")
        );
        assert_eq!(names.name_of("not-an-arn"), None);
        assert_eq!(names.name_of("arn:aws:vpc-lattice:r:1:service/"), None);
    }

    #[test]
    fn bad_configuration_is_refused_with_the_pair() {
        for (text, bad) in [
            ("order", "order"),
            (&format!("{ORDER}="), &format!("{ORDER}=")[..]),
            ("=x", "=x"),
        ] {
            assert_eq!(
                text.parse::<ServiceNames>(),
                Err(ConfigError::ServiceName(bad.to_owned()))
            );
        }
        let config =
            TransformConfig::from_lookup(|name| (name == FAULT_VAR).then(|| "explode".to_owned()));
        assert_eq!(config, Err(ConfigError::Fault("explode".into())));
    }

    #[test]
    fn nothing_set_is_no_names_and_no_fault() {
        assert_eq!(
            TransformConfig::from_lookup(|_| None),
            Ok(TransformConfig::default())
        );
        let config = TransformConfig::from_lookup(|name| {
            (name == FAULT_VAR).then(|| "omit-record".to_owned())
        })
        .unwrap();
        assert_eq!(config.fault, Some(Fault::OmitRecord));
    }
}
