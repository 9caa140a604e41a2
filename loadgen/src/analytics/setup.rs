//! `--setup`: what a fresh domain (or engine) needs before Firehose's first delivery. The index
//! template, byte for byte the repository's `analytics/lattice-access-template.json` (a daily
//! index created without it would be mapped dynamically: `requestPath` as text only, `duration`
//! guessed from its first value); and, on a domain with fine-grained access control, a
//! security-plugin role that lets Firehose's IAM role write `lattice-access-*`, mapped to that
//! role as a backend role; likewise for the telemetry extension's function roles and its
//! `lambda-*` indices and templates (`--telemetry-role-arn`). CloudFormation cannot do any of it
//! (they are calls to the domain's REST API), so the AWS template leaves them to this command,
//! run as the domain's master user.

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use super::client::Payload;
use super::query::INDEX_PATTERN;
use super::{AnalyticsClient, AnalyticsError};

/// The index template, as the repository holds it.
pub const TEMPLATE: &str = include_str!("../../../analytics/lattice-access-template.json");
/// Its name.
pub const TEMPLATE_NAME: &str = "lattice-access";
/// A security-plugin role that IAM roles are mapped to, to write some indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writer {
    /// The security-plugin role's name.
    pub role: &'static str,
    /// The indices it writes.
    pub index_pattern: &'static str,
    /// Its cluster permissions.
    pub cluster_permissions: &'static [&'static str],
}

/// What Firehose's OpenSearch destination needs: bulk writes, creating the day's index, reading
/// its mapping and the cluster's health.
pub const FIREHOSE_WRITER: Writer = Writer {
    role: "lattice_access_writer",
    index_pattern: INDEX_PATTERN,
    cluster_permissions: &["cluster_composite_ops", "cluster_monitor"],
};

/// What the telemetry extension needs: the same on `lambda-*`, and its index templates (it
/// installs them on first use).
pub const TELEMETRY_WRITER: Writer = Writer {
    role: "lambda_telemetry_writer",
    index_pattern: "lambda-*",
    cluster_permissions: &[
        "cluster_composite_ops",
        "cluster_monitor",
        "cluster_manage_index_templates",
    ],
};

/// The role's permissions.
pub fn writer_role_body(writer: &Writer) -> Value {
    json!({
        "cluster_permissions": writer.cluster_permissions,
        "index_permissions": [{
            "index_patterns": [writer.index_pattern],
            "allowed_actions": ["crud", "create_index", "manage"]
        }]
    })
}

/// Maps the IAM roles `role_arns` to a writer (replacing the mapping).
pub fn role_mapping_body(role_arns: &[&str]) -> Value {
    json!({"backend_roles": role_arns})
}

/// `arn:<partition>:iam::<12 digits>:role/<path/>name`.
pub fn check_role_arn(arn: &str) -> Result<(), AnalyticsError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty())
    );
    if ok {
        Ok(())
    } else {
        Err(AnalyticsError::BadRoleArn(arn.to_owned()))
    }
}

impl AnalyticsClient {
    /// `PUT _index_template/lattice-access` with [`TEMPLATE`].
    pub async fn install_template(&self) -> Result<Value, AnalyticsError> {
        let path = format!("/_index_template/{TEMPLATE_NAME}");
        let payload = Payload::Json(Bytes::from_static(TEMPLATE.as_bytes()));
        self.call("index template", Method::PUT, &path, payload, None)
            .await
    }

    /// Creates (or updates) `writer`'s role and maps `role_arns` to it; the security plugin's
    /// messages, in order.
    pub async fn install_writer_role(
        &self,
        writer: &Writer,
        role_arns: &[&str],
    ) -> Result<Vec<String>, AnalyticsError> {
        for arn in role_arns {
            check_role_arn(arn)?;
        }
        let steps = [
            ("security role", "roles", writer_role_body(writer)),
            ("role mapping", "rolesmapping", role_mapping_body(role_arns)),
        ];
        let mut messages = Vec::new();
        for (what, api, body) in steps {
            let path = format!("/_plugins/_security/api/{api}/{}", writer.role);
            let payload = Payload::Json(Bytes::from(body.to_string()));
            let answer = self.call(what, Method::PUT, &path, payload, None).await?;
            let message = answer["message"].as_str().unwrap_or("done");
            messages.push(format!("{what} {}: {message}", writer.role));
        }
        messages.push(format!(
            "{} may now write {} as {}",
            role_arns.join(", "),
            writer.index_pattern,
            writer.role
        ));
        Ok(messages)
    }

    /// `--setup`: the template, then (with a Firehose role) the Firehose writer role and its
    /// mapping, then (with telemetry roles) the telemetry writer role and its mapping; one line
    /// per thing done.
    pub async fn setup(
        &self,
        firehose_role_arn: Option<&str>,
        telemetry_role_arns: &[&str],
    ) -> Result<Vec<String>, AnalyticsError> {
        for arn in firehose_role_arn.iter().chain(telemetry_role_arns) {
            check_role_arn(arn)?;
        }
        self.install_template().await?;
        let mut done = vec![format!(
            "index template {TEMPLATE_NAME} installed (patterns {INDEX_PATTERN}) at {}",
            self.endpoint()
        )];
        match firehose_role_arn {
            Some(arn) => done.extend(self.install_writer_role(&FIREHOSE_WRITER, &[arn]).await?),
            None => done.push(
                "security role skipped (no --firehose-role-arn: a local engine or a domain \
                 without fine-grained access control)"
                    .to_owned(),
            ),
        }
        if !telemetry_role_arns.is_empty() {
            done.extend(
                self.install_writer_role(&TELEMETRY_WRITER, telemetry_role_arns)
                    .await?,
            );
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_the_repositorys() {
        let template: Value = serde_json::from_str(TEMPLATE).unwrap();
        assert_eq!(template["index_patterns"], json!([INDEX_PATTERN]));
        assert_eq!(
            template["template"]["mappings"]["properties"]["duration"]["type"],
            "long"
        );
    }

    #[test]
    fn role_bodies_are_exact() {
        assert_eq!(
            writer_role_body(&FIREHOSE_WRITER),
            json!({"cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
                "index_permissions": [{"index_patterns": ["lattice-access-*"],
                    "allowed_actions": ["crud", "create_index", "manage"]}]})
        );
        assert_eq!(
            writer_role_body(&TELEMETRY_WRITER),
            json!({"cluster_permissions": ["cluster_composite_ops", "cluster_monitor",
                    "cluster_manage_index_templates"],
                "index_permissions": [{"index_patterns": ["lambda-*"],
                    "allowed_actions": ["crud", "create_index", "manage"]}]})
        );
        assert_eq!(
            role_mapping_body(&["arn:aws:iam::111122223333:role/firehose"]),
            json!({"backend_roles": ["arn:aws:iam::111122223333:role/firehose"]})
        );
        assert_eq!(
            role_mapping_body(&[
                "arn:aws:iam::111122223333:role/a",
                "arn:aws:iam::111122223333:role/b"
            ]),
            json!({"backend_roles": ["arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:role/b"]})
        );
    }

    #[test]
    fn role_arns_are_checked() {
        let good = [
            "arn:aws:iam::111122223333:role/lattice-analytics-firehose",
            "arn:aws-cn:iam::111122223333:role/path/name",
        ];
        for arn in good {
            assert!(check_role_arn(arn).is_ok(), "{arn}");
        }
        let bad = [
            "",
            "firehose",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::1111:role/x",
            "arn:aws:sts::111122223333:assumed-role/x/s",
            "arn:aws:iam::111122223333:role/",
        ];
        for arn in bad {
            assert!(check_role_arn(arn).is_err(), "{arn}");
        }
    }
}
