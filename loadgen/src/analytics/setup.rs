//! `--setup`: what a fresh domain (or engine) needs before Firehose's first delivery. The index
//! template, byte for byte the repository's `analytics/lattice-access-template.json` (a daily
//! index created without it would be mapped dynamically: `requestPath` as text only, `duration`
//! guessed from its first value); and, on a domain with fine-grained access control, a
//! security-plugin role that lets Firehose's IAM role write `lattice-access-*`, mapped to that
//! role as a backend role. CloudFormation cannot do either (they are calls to the domain's REST
//! API), so the AWS template leaves them to this command, run as the domain's master user.

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
/// The security-plugin role Firehose writes as.
pub const WRITER_ROLE: &str = "lattice_access_writer";

/// The role's permissions: what Firehose's OpenSearch destination needs (bulk writes, creating
/// the day's index, reading its mapping and the cluster's health).
pub fn writer_role_body() -> Value {
    json!({
        "cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
        "index_permissions": [{
            "index_patterns": [INDEX_PATTERN],
            "allowed_actions": ["crud", "create_index", "manage"]
        }]
    })
}

/// Maps the IAM role `firehose_role_arn` to [`WRITER_ROLE`] (replacing the mapping).
pub fn role_mapping_body(firehose_role_arn: &str) -> Value {
    json!({"backend_roles": [firehose_role_arn]})
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

    /// Creates (or updates) [`WRITER_ROLE`] and maps `firehose_role_arn` to it; the security
    /// plugin's messages, in order.
    pub async fn install_writer_role(
        &self,
        firehose_role_arn: &str,
    ) -> Result<Vec<String>, AnalyticsError> {
        check_role_arn(firehose_role_arn)?;
        let steps = [
            ("security role", "roles", writer_role_body()),
            (
                "role mapping",
                "rolesmapping",
                role_mapping_body(firehose_role_arn),
            ),
        ];
        let mut messages = Vec::new();
        for (what, api, body) in steps {
            let path = format!("/_plugins/_security/api/{api}/{WRITER_ROLE}");
            let payload = Payload::Json(Bytes::from(body.to_string()));
            let answer = self.call(what, Method::PUT, &path, payload, None).await?;
            let message = answer["message"].as_str().unwrap_or("done");
            messages.push(format!("{what} {WRITER_ROLE}: {message}"));
        }
        Ok(messages)
    }

    /// `--setup`: the template, then (with a Firehose role) the writer role and its mapping;
    /// one line per thing done.
    pub async fn setup(
        &self,
        firehose_role_arn: Option<&str>,
    ) -> Result<Vec<String>, AnalyticsError> {
        if let Some(arn) = firehose_role_arn {
            check_role_arn(arn)?;
        }
        self.install_template().await?;
        let mut done = vec![format!(
            "index template {TEMPLATE_NAME} installed (patterns {INDEX_PATTERN}) at {}",
            self.endpoint()
        )];
        match firehose_role_arn {
            Some(arn) => {
                done.extend(self.install_writer_role(arn).await?);
                done.push(format!(
                    "{arn} may now write {INDEX_PATTERN} as {WRITER_ROLE}"
                ));
            }
            None => done.push(
                "security role skipped (no --firehose-role-arn: a local engine or a domain \
                 without fine-grained access control)"
                    .to_owned(),
            ),
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
            writer_role_body(),
            json!({"cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
                "index_permissions": [{"index_patterns": ["lattice-access-*"],
                    "allowed_actions": ["crud", "create_index", "manage"]}]})
        );
        assert_eq!(
            role_mapping_body("arn:aws:iam::111122223333:role/firehose"),
            json!({"backend_roles": ["arn:aws:iam::111122223333:role/firehose"]})
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
