//! The AWS deployment (`template.yaml`, AWS SAM) as data, and the checks over it that `cfn-lint`
//! and `sam validate --lint` do not make: Lattice's Lambda target-group rules, auth-policy actions,
//! tracing, least privilege, dashboard metrics that really exist, and each service's DynamoDB
//! table (on demand, TTL, point-in-time recovery), reached only by its own function, with exactly
//! the actions it calls; and the optional traffic analytics (`TrafficAnalytics`: access log →
//! Firehose → transform → OpenSearch), wired together, locked to this stack's roles, and absent
//! from the core stack; and the optional telemetry extension (`TelemetryExtension`: a Lambda
//! extension layer on order, payment and inventory writing their telemetry to OpenSearch), built
//! for arm64 by the layer's Makefile, attached only with its condition, and given no more than it
//! needs; and the optional daily cost report (`CostReport`: a scheduled Lambda writing a JSON
//! report to S3 and cost per 1M requests as EMF metrics, and a Cost Anomaly Detection monitor),
//! given the stack's own resources, allowed exactly the calls it makes, and absent from the core
//! stack.
//!
//! `template` owns reading the YAML (CloudFormation's short-form tags turned into the long form);
//! `checks` owns the rules, each returning the problems it finds so that tests can show a rule
//! both passing on the real template and failing on a broken copy; `analytics` holds the traffic
//! analytics' rules, `telemetry` the extension's and `cost` the cost report's, which
//! `checks::all` runs with the rest.

pub mod analytics;
pub mod checks;
pub mod cost;
pub mod telemetry;
pub mod template;

pub use template::{Template, TemplateError};
