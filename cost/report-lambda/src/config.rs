//! The function's environment, as infra/aws/template.yaml sets it. A missing or malformed
//! variable is an error naming it: the function refuses to start rather than report on nothing.

use lattice_cost::sources::{ServiceMapping, StackMap};

/// Why the environment cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable does not parse.
    #[error("{variable}: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Why.
        reason: String,
    },
}

/// The report's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `STACK_SERVICES`: the services, the entry service first (JSON).
    pub stack: StackMap,
    /// `ACCESS_LOG_GROUP`: the service network's access-log group.
    pub access_log_group: String,
    /// `REPORT_BUCKET`: where documents go.
    pub bucket: String,
    /// `COST_TAG_KEY` and `COST_TAG_VALUE`: the stack's cost-allocation tag, for Cost Explorer.
    pub cost_tag: (String, String),
    /// `EMF_NAMESPACE`: the metrics' namespace.
    pub namespace: String,
}

impl Config {
    /// From `lookup` (`std::env::var` in the function).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let services: Vec<ServiceMapping> = serde_json::from_str(&required("STACK_SERVICES")?)
            .map_err(|e| ConfigError::Invalid {
                variable: "STACK_SERVICES",
                reason: format!("not a JSON list of services: {e}"),
            })?;
        if services.is_empty() {
            return Err(ConfigError::Invalid {
                variable: "STACK_SERVICES",
                reason: "lists no service".to_owned(),
            });
        }
        Ok(Self {
            stack: StackMap { services },
            access_log_group: required("ACCESS_LOG_GROUP")?,
            bucket: required("REPORT_BUCKET")?,
            cost_tag: (required("COST_TAG_KEY")?, required("COST_TAG_VALUE")?),
            namespace: required("EMF_NAMESPACE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SERVICES: &str = r#"[{"name":"order","service_arn":"arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0123456789abcdef0","function_name":"orders-order","arch":"arm64"},{"name":"payment","service_arn":"arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0123456789abcdef1","function_name":"orders-payment","arch":"arm64","tables":["orders-payments"]}]"#;

    fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("STACK_SERVICES", SERVICES),
            ("ACCESS_LOG_GROUP", "/aws/vpc-lattice/orders"),
            ("REPORT_BUCKET", "orders-cost-reports"),
            ("COST_TAG_KEY", "lattice-observability:stack"),
            ("COST_TAG_VALUE", "orders"),
            ("EMF_NAMESPACE", "LatticeObservability/Cost"),
        ]
    }

    #[test]
    fn the_templates_environment_is_read() {
        let config = Config::from_lookup(environment(&complete())).unwrap();
        assert_eq!(config.stack.services.len(), 2);
        assert_eq!(config.stack.services[0].name, "order");
        assert_eq!(config.stack.services[1].tables, ["orders-payments"]);
        assert!(
            config.stack.services[0].tables.is_empty(),
            "tables default to none"
        );
        assert_eq!(config.access_log_group, "/aws/vpc-lattice/orders");
        assert_eq!(
            config.cost_tag,
            (
                "lattice-observability:stack".to_owned(),
                "orders".to_owned()
            )
        );
    }

    #[test]
    fn a_missing_or_broken_variable_is_named() {
        let mut pairs = complete();
        pairs.retain(|(k, _)| *k != "REPORT_BUCKET");
        assert_eq!(
            Config::from_lookup(environment(&pairs)),
            Err(ConfigError::Missing("REPORT_BUCKET"))
        );
        let mut pairs = complete();
        pairs[0].1 = "[]";
        assert_eq!(
            Config::from_lookup(environment(&pairs))
                .unwrap_err()
                .to_string(),
            "STACK_SERVICES: lists no service"
        );
        pairs[0].1 = "{";
        assert!(Config::from_lookup(environment(&pairs))
            .unwrap_err()
            .to_string()
            .starts_with("STACK_SERVICES: not a JSON list of services"));
    }
}
