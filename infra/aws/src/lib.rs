//! The AWS deployment (`template.yaml`, AWS SAM) as data, and the checks over it that `cfn-lint`
//! and `sam validate --lint` do not make: Lattice's Lambda target-group rules, auth-policy actions,
//! tracing, least privilege, dashboard metrics that really exist, and each service's DynamoDB
//! table (on demand, TTL, point-in-time recovery), reached only by its own function, with exactly
//! the actions it calls.
//!
//! `template` owns reading the YAML (CloudFormation's short-form tags turned into the long form);
//! `checks` owns the rules, each returning the problems it finds so that tests can show a rule
//! both passing on the real template and failing on a broken copy.

pub mod checks;
pub mod template;

pub use template::{Template, TemplateError};
