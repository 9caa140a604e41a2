//! Lattice authorization: IAM policy documents and the decision Lattice makes with them.
//!
//! Lattice allows a request only when the service network's auth policy, the service's auth
//! policy and the caller's identity policy all allow `vpc-lattice-svcs:Invoke` on the resource
//! `<service ARN>/<path>`; an explicit `Deny` anywhere wins (VPC Lattice guide, "Control access to
//! VPC Lattice services using auth policies"; IAM guide, "Policy evaluation logic").
//!
//! Written by hand: no maintained Rust crate evaluates IAM policy documents. The subset is the
//! one auth policies need here: `Effect`, `Principal` (`"*"`, `{"AWS": arn | [arn]}`, where an
//! account's `:root` means every principal of that account), `Action` and `Resource` with `*`/`?`
//! wildcards. `NotPrincipal`, `NotAction`, `NotResource` and `Condition` are refused when the
//! policy is loaded — a policy this module cannot evaluate faithfully is an error, never a
//! silently different answer.

use serde_json::Value;

/// The only action Lattice's data plane checks.
pub const INVOKE: &str = "vpc-lattice-svcs:Invoke";

/// `Allow` or `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Refuses, whatever else grants.
    Deny,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Principals {
    /// No `Principal` element (identity policies).
    Implicit,
    /// `"*"`: everyone, including anonymous callers.
    Anyone,
    /// Listed ARNs.
    Arns(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    principals: Principals,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// A parsed policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
    source: Value,
}

/// A policy's verdict on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A statement allows it and none denies it.
    Allowed,
    /// A statement denies it.
    ExplicitlyDenied,
    /// No statement allows it.
    NotAllowed,
}

/// Why a policy document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy: {0}")]
pub struct PolicyError(String);

fn strings(value: &Value, element: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| PolicyError(format!("{element} must hold strings")))
            })
            .collect(),
        _ => Err(PolicyError(format!(
            "{element} must be a string or a list of strings"
        ))),
    }
}

impl Policy {
    /// Parses a policy document (JSON text).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let source: Value =
            serde_json::from_str(text).map_err(|e| PolicyError(format!("not JSON: {e}")))?;
        Self::from_value(source)
    }

    /// Parses a policy document.
    pub fn from_value(source: Value) -> Result<Self, PolicyError> {
        let statements = match source.get("Statement") {
            Some(Value::Array(items)) => items.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err(PolicyError("Statement is required".into())),
        };
        let statements = statements
            .iter()
            .enumerate()
            .map(|(i, statement)| {
                parse_statement(statement)
                    .map_err(|e| PolicyError(format!("Statement[{i}]: {}", e.0)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { statements, source })
    }

    /// The document as given.
    pub fn document(&self) -> &Value {
        &self.source
    }

    /// The verdict for `principal` (`None` = anonymous, an unsigned request) performing
    /// `action` on `resource`.
    pub fn evaluate(&self, principal: Option<&str>, action: &str, resource: &str) -> Verdict {
        let mut allowed = false;
        for statement in &self.statements {
            let principal_matches = match &statement.principals {
                Principals::Implicit => true,
                Principals::Anyone => true,
                Principals::Arns(arns) => {
                    principal.is_some_and(|p| arns.iter().any(|arn| principal_matches(arn, p)))
                }
            };
            if principal_matches
                && statement
                    .actions
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && statement
                    .resources
                    .iter()
                    .any(|r| wildcard_match(r, resource))
            {
                match statement.effect {
                    Effect::Deny => return Verdict::ExplicitlyDenied,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Verdict::Allowed
        } else {
            Verdict::NotAllowed
        }
    }
}

fn parse_statement(statement: &Value) -> Result<Statement, PolicyError> {
    let object = statement
        .as_object()
        .ok_or_else(|| PolicyError("must be an object".into()))?;
    for key in object.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "Resource" => {}
            other => {
                return Err(PolicyError(format!(
                    "{other} is not supported by the local stack's policy evaluator"
                )))
            }
        }
    }
    let effect = match object.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(PolicyError("Effect must be Allow or Deny".into())),
    };
    let principals = match object.get("Principal") {
        None => Principals::Implicit,
        Some(Value::String(s)) if s == "*" => Principals::Anyone,
        Some(Value::Object(map)) => {
            let mut arns = Vec::new();
            for (kind, value) in map {
                if kind != "AWS" {
                    return Err(PolicyError(format!(
                        "Principal {kind} is not supported (only AWS)"
                    )));
                }
                arns.extend(strings(value, "Principal.AWS")?);
            }
            if arns.iter().any(|a| a == "*") {
                Principals::Anyone
            } else {
                Principals::Arns(arns)
            }
        }
        Some(_) => {
            return Err(PolicyError(
                "Principal must be \"*\" or {\"AWS\": …}".into(),
            ))
        }
    };
    let actions = strings(
        object
            .get("Action")
            .ok_or_else(|| PolicyError("Action is required".into()))?,
        "Action",
    )?;
    let resources = strings(
        object
            .get("Resource")
            .ok_or_else(|| PolicyError("Resource is required".into()))?,
        "Resource",
    )?;
    Ok(Statement {
        effect,
        principals,
        actions,
        resources,
    })
}

/// Whether the policy principal `pattern` names `principal`: the same ARN, or
/// `arn:aws:iam::<account>:root`, which names every principal of the account.
fn principal_matches(pattern: &str, principal: &str) -> bool {
    if pattern == principal {
        return true;
    }
    if let Some(account) = pattern
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))
    {
        return principal
            .split(':')
            .nth(4)
            .is_some_and(|principal_account| principal_account == account);
    }
    // A bare 12-digit account id means the same as its root ARN.
    if pattern.len() == 12 && pattern.bytes().all(|b| b.is_ascii_digit()) {
        return principal.split(':').nth(4) == Some(pattern);
    }
    false
}

/// IAM's glob: `*` any run of characters, `?` exactly one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Which of the three policies refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyLayer {
    /// The service network's auth policy.
    Network,
    /// The service's auth policy.
    Service,
    /// The caller's identity policy.
    Identity,
}

impl PolicyLayer {
    /// The wording of Lattice's denial message (`no service-based policy allows …`).
    pub fn wording(self) -> &'static str {
        match self {
            Self::Network => "network-based",
            Self::Service => "service-based",
            Self::Identity => "identity-based",
        }
    }
}

/// A denial: which layer, and whether it was explicit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The refusing policy.
    pub layer: PolicyLayer,
    /// An explicit `Deny` (rather than no `Allow`).
    pub explicit: bool,
}

impl Denial {
    /// The `because …` clause of the AccessDeniedException message.
    pub fn because(&self) -> String {
        if self.explicit {
            format!("with an explicit deny in a {} policy", self.layer.wording())
        } else {
            format!(
                "because no {} policy allows the {INVOKE} action",
                self.layer.wording()
            )
        }
    }
}

/// Lattice's AND of the three policies. `identity` is `None` for an anonymous caller, which has
/// no identity policy and is judged by the two auth policies alone.
pub fn authorize(
    network: &Policy,
    service: &Policy,
    identity: Option<&Policy>,
    principal: Option<&str>,
    resource: &str,
) -> Result<(), Denial> {
    let mut layers = vec![
        (PolicyLayer::Network, network),
        (PolicyLayer::Service, service),
    ];
    if principal.is_some() {
        // A signed caller with no identity policy at all is allowed nothing.
        match identity {
            Some(policy) => layers.push((PolicyLayer::Identity, policy)),
            None => {
                return Err(Denial {
                    layer: PolicyLayer::Identity,
                    explicit: false,
                })
            }
        }
    }
    let verdicts: Vec<(PolicyLayer, Verdict)> = layers
        .iter()
        .map(|(layer, policy)| (*layer, policy.evaluate(principal, INVOKE, resource)))
        .collect();
    if let Some((layer, _)) = verdicts
        .iter()
        .find(|(_, v)| *v == Verdict::ExplicitlyDenied)
    {
        return Err(Denial {
            layer: *layer,
            explicit: true,
        });
    }
    match verdicts.iter().find(|(_, v)| *v == Verdict::NotAllowed) {
        Some((layer, _)) => Err(Denial {
            layer: *layer,
            explicit: false,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SVC: &str = "arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-0123456789abcdef0";
    const ORDER: &str = "arn:aws:iam::123456789012:role/order";
    const LOADGEN: &str = "arn:aws:iam::123456789012:role/loadgen";

    fn policy(v: Value) -> Policy {
        Policy::from_value(v).unwrap()
    }

    #[test]
    fn wildcards_follow_iam_globbing() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("svc/*", "svc/a/b"));
        assert!(wildcard_match("svc/?", "svc/a"));
        assert!(!wildcard_match("svc/?", "svc/ab"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match(
            "vpc-lattice-svcs:*",
            "vpc-lattice-svcs:Invoke"
        ));
    }

    #[test]
    fn principals_match_by_arn_account_root_or_star() {
        let p = policy(json!({"Statement": [{"Effect": "Allow",
            "Principal": {"AWS": [ORDER]}, "Action": INVOKE, "Resource": format!("{SVC}/*")}]}));
        let resource = format!("{SVC}/payments");
        assert_eq!(p.evaluate(Some(ORDER), INVOKE, &resource), Verdict::Allowed);
        assert_eq!(
            p.evaluate(Some(LOADGEN), INVOKE, &resource),
            Verdict::NotAllowed
        );
        assert_eq!(p.evaluate(None, INVOKE, &resource), Verdict::NotAllowed);
        let account = policy(json!({"Statement": {"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "vpc-lattice-svcs:*", "Resource": "*"}}));
        assert_eq!(
            account.evaluate(Some(LOADGEN), INVOKE, &resource),
            Verdict::Allowed
        );
        assert_eq!(
            account.evaluate(Some("arn:aws:iam::999999999999:role/x"), INVOKE, &resource),
            Verdict::NotAllowed
        );
        assert_eq!(
            account.evaluate(None, INVOKE, &resource),
            Verdict::NotAllowed
        );
        let anyone = policy(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": INVOKE, "Resource": "*"}]}),
        );
        assert_eq!(anyone.evaluate(None, INVOKE, &resource), Verdict::Allowed);
    }

    #[test]
    fn explicit_deny_wins_and_the_layers_are_anded() {
        let open = policy(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": INVOKE, "Resource": "*"}]}),
        );
        let deny_path = policy(json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": INVOKE, "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": INVOKE, "Resource": format!("{SVC}/admin*")}]}));
        let identity = policy(
            json!({"Statement": [{"Effect": "Allow", "Action": INVOKE, "Resource": format!("{SVC}/*")}]}),
        );
        let none = policy(json!({"Statement": []}));
        let orders = format!("{SVC}/orders");
        assert_eq!(
            authorize(&open, &open, Some(&identity), Some(ORDER), &orders),
            Ok(())
        );
        assert_eq!(
            authorize(
                &open,
                &deny_path,
                Some(&identity),
                Some(ORDER),
                &format!("{SVC}/admin/x")
            ),
            Err(Denial {
                layer: PolicyLayer::Service,
                explicit: true
            })
        );
        assert_eq!(
            authorize(&none, &open, Some(&identity), Some(ORDER), &orders),
            Err(Denial {
                layer: PolicyLayer::Network,
                explicit: false
            })
        );
        assert_eq!(
            authorize(&open, &open, Some(&none), Some(ORDER), &orders),
            Err(Denial {
                layer: PolicyLayer::Identity,
                explicit: false
            })
        );
        assert_eq!(
            authorize(&open, &open, None, Some(ORDER), &orders),
            Err(Denial {
                layer: PolicyLayer::Identity,
                explicit: false
            })
        );
        // Anonymous callers have no identity policy; open auth policies let them in.
        assert_eq!(authorize(&open, &open, None, None, &orders), Ok(()));
        assert_eq!(
            Denial {
                layer: PolicyLayer::Service,
                explicit: false
            }
            .because(),
            "because no service-based policy allows the vpc-lattice-svcs:Invoke action"
        );
    }

    #[test]
    fn elements_it_cannot_evaluate_are_refused_at_load() {
        for bad in [
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": INVOKE, "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}]}),
            json!({"Statement": [{"Effect": "Allow", "NotPrincipal": "*", "Action": INVOKE, "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": INVOKE, "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "x"}, "Action": INVOKE, "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Resource": "*"}]}),
            json!({"Version": "2012-10-17"}),
        ] {
            assert!(Policy::from_value(bad.clone()).is_err(), "{bad}");
        }
        let err = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"x","Resource":"*","Condition":{}}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "policy: Statement[0]: Condition is not supported by the local stack's policy evaluator");
    }
}
