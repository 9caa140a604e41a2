//! The traffic-analytics rules (`TrafficAnalytics=true`): the service network's access log goes
//! through Firehose and the transform Lambda into OpenSearch, with failed documents backed up to S3.
//!
//! Why they exist: `cfn-lint` and `sam validate` check each property against CloudFormation's
//! schemas, not that the pieces belong together (the stream writes into this domain, through this
//! transform, backing up to this bucket, into indices the index template covers), that the domain
//! answers nobody but this stack's two roles, that Firehose's role holds no more than the Firehose
//! guide lists ("Grant Firehose access to a public OpenSearch Service destination"), or that the
//! core stack still deploys, unchanged, without any of it.
//!
//! Layout: [`conditions`] (the parameter, the condition and who must carry it); [`domains`] and
//! [`dashboards_roles`] (the domain's security and who may reach it); [`delivery_streams`] and
//! [`firehose_roles`] (the stream's wiring and its role); [`backup_buckets`]; [`transform`] (the
//! function Firehose invokes). [`scoped_wildcard`] tells `checks::least_privilege` which wildcards
//! stay inside this stack's bucket or domain.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

use crate::checks::{is_type, strings, switch_parameter};
use crate::template::{guard_implies, guarded_items, implies, reference, sub_text, Template};
use crate::{cost, telemetry};

/// The parameter that turns the analytics on (`"true"`) or leaves the core stack alone.
pub const PARAMETER: &str = "TrafficAnalytics";
/// The condition every analytics resource and output carries.
pub const CONDITION: &str = "WithTrafficAnalytics";
/// The function Firehose invokes to turn access-log entries into documents.
pub const TRANSFORM: &str = "AccessLogTransformFunction";
/// The index template `loadgen analytics --setup` installs, from the repository root.
pub const INDEX_TEMPLATE: &str = "analytics/lattice-access-template.json";
/// The Firehose stream type.
pub const STREAM: &str = "AWS::KinesisFirehose::DeliveryStream";
pub(crate) const DOMAIN: &str = "AWS::OpenSearchService::Domain";
const BUCKET: &str = "AWS::S3::Bucket";
const ROLE: &str = "AWS::IAM::Role";
const DESTINATION: &str = "AmazonopensearchserviceDestinationConfiguration";

/// Types that exist only for the analytics: each must carry [`CONDITION`].
pub const ANALYTICS_TYPES: &[&str] = &[
    STREAM,
    DOMAIN,
    BUCKET,
    "AWS::S3::BucketPolicy",
    "AWS::Logs::LogStream",
];

/// `es:ESHttp*`, spelled out: every HTTP method OpenSearch Service authorizes.
pub const ES_HTTP_ACTIONS: &[&str] = &[
    "es:ESHttpDelete",
    "es:ESHttpGet",
    "es:ESHttpHead",
    "es:ESHttpPatch",
    "es:ESHttpPost",
    "es:ESHttpPut",
];

/// What Firehose may do to its backup bucket (and its objects), per the Firehose guide.
pub const FIREHOSE_S3_ACTIONS: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:PutObject",
];

/// What Firehose may do on its domain and the domain's paths, per the Firehose guide (GETs apart).
pub const FIREHOSE_DOMAIN_ACTIONS: &[&str] = &[
    "es:DescribeDomain",
    "es:DescribeDomains",
    "es:DescribeDomainConfig",
    "es:ESHttpPost",
    "es:ESHttpPut",
];

/// What Firehose may do to its transform.
pub const FIREHOSE_LAMBDA_ACTIONS: &[&str] =
    &["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"];

/// The only paths Firehose may GET, per the Firehose guide (`index-name*/_mapping/type-name`
/// has `*` for the type: OpenSearch 2 has none).
pub fn firehose_get_paths(index: &str) -> Vec<String> {
    [
        "_all/_settings".to_owned(),
        "_cluster/stats".to_owned(),
        format!("{index}*/_mapping/*"),
        "_nodes".to_owned(),
        "_nodes/stats".to_owned(),
        "_nodes/*/stats".to_owned(),
        "_stats".to_owned(),
        format!("{index}*/_stats"),
    ]
    .into()
}

/// The `index_patterns` of the index template at `path`.
pub fn index_patterns(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let template: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let patterns: Vec<String> = strings(&template["index_patterns"])
        .into_iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    if patterns.is_empty() {
        return Err(format!("{}: no index_patterns", path.display()));
    }
    Ok(patterns)
}

/// Every analytics rule.
pub fn all(template: &Template, index_patterns: &[String]) -> Vec<String> {
    [
        conditions(template),
        domains(template),
        dashboards_roles(template),
        delivery_streams(template, index_patterns),
        firehose_roles(template),
        backup_buckets(template),
        transform(template),
    ]
    .concat()
}

/// A resource-valued expression as `!Sub` text: `${X.Arn}` for `!GetAtt X.Arn`, `${X}` for
/// `!Ref X`, else the text of a `!Sub` or a plain string.
pub fn as_text(value: &Value) -> Option<String> {
    if let Some((id, attribute)) = reference(value) {
        return Some(match attribute {
            Some(attribute) => format!("${{{id}.{attribute}}}"),
            None => format!("${{{id}}}"),
        });
    }
    sub_text(value).map(str::to_owned)
}

/// The role of this template a value names (`!GetAtt Role.Arn`, or `${Role.Arn}` as `!Sub`).
pub(crate) fn role_of<'a>(template: &Template, value: &'a Value) -> Option<&'a str> {
    let id = match reference(value) {
        Some((id, Some("Arn"))) => id,
        _ => sub_text(value)?.strip_prefix("${")?.strip_suffix(".Arn}")?,
    };
    is_type(template, id, ROLE).then_some(id)
}

/// The resource of type `kind` that `!GetAtt X.<attribute>` names.
fn named<'a>(
    template: &Template,
    value: &'a Value,
    kind: &str,
    attributes: &[&str],
) -> Option<&'a str> {
    match reference(value) {
        Some((id, Some(attribute))) if attributes.contains(&attribute) => {
            is_type(template, id, kind).then_some(id)
        }
        _ => None,
    }
}

/// Every logical id (or pseudo parameter, or parameter) an expression names: `Ref`,
/// `Fn::GetAtt`, the `${…}` of `Fn::Sub`, and `DependsOn`; but not what it names only in the
/// first branch of an `Fn::If` on a condition that implies `guard` (CloudFormation evaluates that
/// branch only when the resources guarded by `guard` exist).
fn names_in(template: &Template, value: &Value, guard: &str, into: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some([Value::String(condition), _, otherwise]) = map
                .get("Fn::If")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                if implies(template, condition, guard) {
                    return names_in(template, otherwise, guard, into);
                }
            }
            if let Some(Value::String(id)) = map.get("Ref") {
                into.insert(id.clone());
            }
            if let Some(id) = map.get("Fn::GetAtt").and_then(|g| g[0].as_str()) {
                into.insert(id.to_owned());
            }
            let sub = map.get("Fn::Sub");
            let text = sub.and_then(|s| s.as_str().or_else(|| s[0].as_str()));
            for variable in text.into_iter().flat_map(|t| t.split("${").skip(1)) {
                let name = variable.split_once('}').map(|(n, _)| n).unwrap_or_default();
                if !name.starts_with('!') {
                    into.insert(name.split('.').next().unwrap_or(name).to_owned());
                }
            }
            for dependency in map.get("DependsOn").map(strings).unwrap_or_default() {
                into.extend(dependency.as_str().map(str::to_owned));
            }
            map.values()
                .for_each(|v| names_in(template, v, guard, into));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| names_in(template, v, guard, into)),
        _ => {}
    }
}

/// What [`names_in`] finds: what `value` names wherever `guard` may be false.
pub(crate) fn unguarded_names(template: &Template, value: &Value, guard: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    names_in(template, value, guard, &mut found);
    found
}

fn names(template: &Template, value: &Value) -> BTreeSet<String> {
    unguarded_names(template, value, CONDITION)
}

fn carries(value: &Value) -> bool {
    value["Condition"] == CONDITION
}

/// The parameter (`"true"`/`"false"`, default `"false"`) and the condition (`!Equals [!Ref
/// TrafficAnalytics, "true"]`); every analytics resource ([`ANALYTICS_TYPES`] but the cost
/// report's bucket and its policy, [`TRANSFORM`]) carries the condition; a resource or output
/// that refers to one that carries it carries it too, or refers to it only inside an `Fn::If` on
/// a condition that implies it (else the core stack fails without it); and a resource used only
/// by conditional ones carries it (else the core stack deploys a piece of the analytics).
pub fn conditions(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(switch_parameter(template, PARAMETER, CONDITION));
    let conditional: BTreeSet<&str> = template
        .resources()
        .filter(|(_, r)| carries(r))
        .map(|(id, _)| id)
        .collect();
    let uses: BTreeMap<&str, BTreeSet<String>> = template
        .resources()
        .map(|(id, resource)| (id, names(template, resource)))
        .collect();
    let outputs = template.root["Outputs"].as_object().into_iter().flatten();
    let core_outputs: BTreeSet<String> = outputs
        .clone()
        .filter(|(_, output)| !carries(output))
        .flat_map(|(_, output)| names(template, output))
        .collect();
    for (id, resource) in template.resources().filter(|(_, r)| !carries(r)) {
        let kind = resource["Type"].as_str().unwrap_or_default();
        // The cost report's bucket and bucket policy are its own (`cost::conditions`).
        let analytics_type = ANALYTICS_TYPES.contains(&kind) && !cost::carries(template, resource);
        if analytics_type || id == TRANSFORM {
            problems.push(format!(
                "{id}: a traffic-analytics {kind} without Condition {CONDITION}"
            ));
        }
        for used in uses[id].iter().filter(|u| conditional.contains(u.as_str())) {
            problems.push(format!(
                "{id}: refers to {used}, which exists only with {CONDITION}, without carrying that condition"
            ));
        }
        let users: Vec<&str> = uses
            .iter()
            .filter(|(user, used)| *user != &id && used.contains(id))
            .map(|(user, _)| *user)
            .collect();
        if !users.is_empty()
            && users.iter().all(|u| conditional.contains(u))
            && !core_outputs.contains(id)
        {
            problems.push(format!(
                "{id}: used only by traffic-analytics resources ({}), but deployed without {CONDITION}",
                users.join(", ")
            ));
        }
    }
    for (name, output) in outputs.filter(|(_, o)| !carries(o)) {
        for used in names(template, output)
            .iter()
            .filter(|u| conditional.contains(u.as_str()))
        {
            problems.push(format!(
                "Outputs.{name}: refers to {used}, which exists only with {CONDITION}, without carrying that condition"
            ));
        }
    }
    problems
}

/// `arn:…:es:…:domain/<name>` as the roles' policies write it (`!Sub`; `!GetAtt` would close a
/// cycle, the domain's access policy naming the roles).
pub fn domain_arn(name: &str) -> String {
    format!("arn:${{AWS::Partition}}:es:${{AWS::Region}}:${{AWS::AccountId}}:domain/{name}")
}

/// Whether a wildcard resource stays inside this template: the objects of one of its buckets
/// (`${Bucket.Arn}/*`) or paths of one of its OpenSearch domains (`…:domain/<name>/…`).
pub fn scoped_wildcard(template: &Template, text: &str) -> bool {
    let bucket_objects = text
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix(".Arn}/*"))
        .is_some_and(|id| is_type(template, id, BUCKET));
    bucket_objects
        || template.of_type(DOMAIN).any(|(_, domain)| {
            domain["Properties"]["DomainName"]
                .as_str()
                .is_some_and(|name| text.starts_with(&format!("{}/", domain_arn(name))))
        })
}

/// The flags a domain must have, as JSON pointers into its properties.
const DOMAIN_FLAGS: &[(&str, bool)] = &[
    ("/DomainEndpointOptions/EnforceHTTPS", true),
    ("/EncryptionAtRestOptions/Enabled", true),
    ("/NodeToNodeEncryptionOptions/Enabled", true),
    ("/AdvancedSecurityOptions/Enabled", true),
    (
        "/AdvancedSecurityOptions/InternalUserDatabaseEnabled",
        false,
    ),
];

/// Domains: OpenSearch (not Elasticsearch), HTTPS only with TLS 1.2 at least, encrypted at rest
/// and node to node, fine-grained access control with a role of this template as master user and
/// no internal user database (no password anywhere), a fixed `DomainName` (the roles name its
/// ARN), and an access policy that passes [`access_policy`].
pub fn domains(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, domain) in template.of_type(DOMAIN) {
        let properties = &domain["Properties"];
        if !properties["EngineVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("OpenSearch_"))
        {
            problems.push(format!("{id}: EngineVersion must be OpenSearch_X.Y"));
        }
        for (pointer, wanted) in DOMAIN_FLAGS {
            if properties.pointer(pointer) != Some(&Value::Bool(*wanted)) {
                problems.push(format!("{id}: {pointer} must be {wanted}"));
            }
        }
        let tls = properties.pointer("/DomainEndpointOptions/TLSSecurityPolicy");
        if !tls
            .and_then(Value::as_str)
            .is_some_and(|p| p.starts_with("Policy-Min-TLS-1-2"))
        {
            problems.push(format!(
                "{id}: DomainEndpointOptions.TLSSecurityPolicy must be a Policy-Min-TLS-1-2 policy"
            ));
        }
        let master_options = &properties["AdvancedSecurityOptions"]["MasterUserOptions"];
        let master = role_of(template, &master_options["MasterUserARN"]);
        if master.is_none() {
            problems.push(format!(
                "{id}: MasterUserOptions.MasterUserARN must be a role of this template"
            ));
        }
        if master_options.get("MasterUserName").is_some()
            || master_options.get("MasterUserPassword").is_some()
        {
            problems.push(format!(
                "{id}: a master user name or password in the template"
            ));
        }
        let Some(name) = properties["DomainName"].as_str() else {
            problems.push(format!(
                "{id}: no fixed DomainName (the roles name its ARN)"
            ));
            continue;
        };
        problems.extend(access_policy(template, id, name, master));
    }
    problems
}

/// The roles the streams writing into `domain` deliver as.
fn firehose_roles_of<'a>(template: &'a Template, domain: &str) -> BTreeSet<&'a str> {
    template
        .of_type(STREAM)
        .map(|(_, stream)| &stream["Properties"][DESTINATION])
        .filter(|d| named(template, &d["DomainARN"], DOMAIN, &["Arn", "DomainArn"]) == Some(domain))
        .filter_map(|d| role_of(template, &d["RoleARN"]))
        .collect()
}

/// A domain's access policy: every Allow names roles of this template only (never `*`, an account
/// or a service), exactly the master user and the Firehose roles writing into it; actions are
/// [`ES_HTTP_ACTIONS`] spelled out, on this domain's paths only; and what a Firehose role is granted
/// here its own policy grants too (an allow in either one suffices within an account, so a wider
/// access policy would undo its least privilege). Only the telemetry extension's statements may be
/// conditional (an `Fn::If` on a condition implying [`telemetry::CONDITION`]): they admit the
/// function roles, which `telemetry::analytics_domain_access` checks; the rules above hold for
/// them too.
fn access_policy(template: &Template, id: &str, name: &str, master: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let prefix = format!("{}/", domain_arn(name));
    let mut principals: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    let policy = &template.resource(id).unwrap()["Properties"]["AccessPolicies"];
    for (guard, statement) in guarded_items(&policy["Statement"]) {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let conditional = !guard.is_empty();
        if conditional && !guard_implies(template, &guard, telemetry::CONDITION) {
            problems.push(format!(
                "{id}: a statement chosen by {guard:?}: only the telemetry extension's (under a condition implying {}) may be conditional",
                telemetry::CONDITION
            ));
        }
        for exclusion in ["NotPrincipal", "NotAction", "NotResource"] {
            if statement.get(exclusion).is_some() {
                problems.push(format!(
                    "{id}: an Allow with {exclusion} grants by exclusion"
                ));
            }
        }
        let principal = &statement["Principal"];
        let roles: Vec<Option<&str>> = match principal.as_object() {
            Some(map) if map.len() == 1 && map.contains_key("AWS") => strings(&principal["AWS"])
                .into_iter()
                .map(|p| role_of(template, p))
                .collect(),
            _ => vec![None],
        };
        let actions: Vec<&str> = strings(&statement["Action"])
            .into_iter()
            .filter_map(Value::as_str)
            .collect();
        let resources: Vec<String> = strings(&statement["Resource"])
            .into_iter()
            .filter_map(as_text)
            .collect();
        for action in actions.iter().filter(|a| !ES_HTTP_ACTIONS.contains(a)) {
            problems.push(format!(
                "{id}: {action} - the access policy allows only es:ESHttp* actions, spelled out"
            ));
        }
        for resource in resources.iter().filter(|r| !r.starts_with(&prefix)) {
            problems.push(format!(
                "{id}: resource {resource} is not a path of this domain ({prefix}…)"
            ));
        }
        for role in roles {
            let Some(role) = role else {
                problems.push(format!(
                    "{id}: principal {principal} - only roles of this template, never *"
                ));
                continue;
            };
            if conditional {
                continue;
            }
            let grants = principals.entry(role).or_default();
            for action in &actions {
                grants.extend(resources.iter().map(|r| (action.to_string(), r.clone())));
            }
        }
    }
    let firehose = firehose_roles_of(template, id);
    let wanted: BTreeSet<&str> = firehose.iter().copied().chain(master).collect();
    let named: BTreeSet<&str> = principals.keys().copied().collect();
    if named != wanted {
        problems.push(format!(
            "{id}: the access policy names {named:?}, must name exactly {wanted:?} (the master user and the roles Firehose writes as)"
        ));
    }
    for role in firehose.iter().filter(|r| Some(**r) != master) {
        let own = role_grants(template, role);
        for (action, resource) in principals.get(role).into_iter().flatten() {
            if !own.contains(&(action.clone(), resource.clone())) {
                problems.push(format!(
                    "{id}: grants {role} {action} on {resource}, which {role}'s own policy does not"
                ));
            }
        }
    }
    problems
}

/// Every (action, resource text) a role's inline policies allow.
fn role_grants(template: &Template, role: &str) -> BTreeSet<(String, String)> {
    let mut grants = BTreeSet::new();
    let policies = template
        .resource(role)
        .map(|r| &r["Properties"]["Policies"]);
    for policy in policies.map(strings).unwrap_or_default() {
        for statement in strings(&policy["PolicyDocument"]["Statement"]) {
            if statement["Effect"] != "Allow" {
                continue;
            }
            for action in strings(&statement["Action"])
                .into_iter()
                .filter_map(Value::as_str)
            {
                for resource in strings(&statement["Resource"])
                    .into_iter()
                    .filter_map(as_text)
                {
                    grants.insert((action.to_owned(), resource));
                }
            }
        }
    }
    grants
}

/// Each domain's master-user role: assumable by principals of this account only (its root), and
/// allowed nothing but [`ES_HTTP_ACTIONS`] on that domain's paths.
pub fn dashboards_roles(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (_, domain) in template.of_type(DOMAIN) {
        let properties = &domain["Properties"];
        let master = &properties["AdvancedSecurityOptions"]["MasterUserOptions"]["MasterUserARN"];
        let (Some(role), Some(name)) =
            (role_of(template, master), properties["DomainName"].as_str())
        else {
            continue;
        };
        let trust = &template.resource(role).unwrap()["Properties"]["AssumeRolePolicyDocument"];
        let account = json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"});
        for statement in strings(&trust["Statement"]) {
            if statement["Principal"] != json!({"AWS": account})
                || statement["Action"] != "sts:AssumeRole"
            {
                problems.push(format!(
                    "{role}: the master user may be assumed only by this account's principals (its root), not {}",
                    statement["Principal"]
                ));
            }
        }
        let prefix = format!("{}/", domain_arn(name));
        for (action, resource) in role_grants(template, role) {
            if !ES_HTTP_ACTIONS.contains(&action.as_str()) || !resource.starts_with(&prefix) {
                problems.push(format!(
                    "{role}: {action} on {resource} - the master user may only send HTTP requests (es:ESHttp*) to {prefix}…"
                ));
            }
        }
    }
    problems
}

/// A processor's parameters, name → value (as text: CloudFormation takes them as strings).
fn processor_parameters(processor: &Value) -> BTreeMap<&str, String> {
    strings(&processor["Parameters"])
        .into_iter()
        .filter_map(|p| {
            let value = match &p["ParameterValue"] {
                Value::Number(n) => Some(n.to_string()),
                other => as_text(other),
            };
            Some((p["ParameterName"].as_str()?, value?))
        })
        .collect()
}

/// Streams: `DirectPut`, tagged `LogDeliveryEnabled=true` (vended-log delivery writes only to
/// streams with it), into an OpenSearch domain of this template with one index a day
/// (`OneDay`) whose `<IndexName>-*` is one of the index template's `index_patterns`, failed
/// documents only to a bucket of this template, through [`TRANSFORM`] at 1 MB / 60 s, with
/// delivery errors logged to a log stream of this template, and subscribed to by a service
/// network's access log.
pub fn delivery_streams(template: &Template, index_patterns: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, stream) in template.of_type(STREAM) {
        let properties = &stream["Properties"];
        if properties["DeliveryStreamType"] != "DirectPut" {
            problems.push(format!(
                "{id}: DeliveryStreamType must be DirectPut (Lattice puts the records)"
            ));
        }
        let tagged = strings(&properties["Tags"])
            .iter()
            .any(|t| t["Key"] == "LogDeliveryEnabled" && t["Value"] == "true");
        if !tagged {
            problems.push(format!(
                "{id}: no tag LogDeliveryEnabled=true (vended-log delivery writes only to streams with it)"
            ));
        }
        let destination = &properties[DESTINATION];
        if !destination.is_object() {
            problems.push(format!("{id}: no {DESTINATION}"));
            continue;
        }
        problems.extend(stream_destination(
            template,
            id,
            destination,
            index_patterns,
        ));
        problems.extend(stream_processing(
            id,
            &destination["ProcessingConfiguration"],
        ));
        problems.extend(stream_logging(
            template,
            id,
            "CloudWatchLoggingOptions",
            &destination["CloudWatchLoggingOptions"],
        ));
        let backup_logging = &destination["S3Configuration"]["CloudWatchLoggingOptions"];
        if !backup_logging.is_null() {
            problems.extend(stream_logging(
                template,
                id,
                "S3Configuration.CloudWatchLoggingOptions",
                backup_logging,
            ));
        }
        let subscribed = template
            .of_type("AWS::VpcLattice::AccessLogSubscription")
            .any(|(_, s)| {
                named(
                    template,
                    &s["Properties"]["DestinationArn"],
                    STREAM,
                    &["Arn"],
                ) == Some(id)
                    && reference(&s["Properties"]["ResourceIdentifier"]).is_some_and(|(n, _)| {
                        is_type(template, n, "AWS::VpcLattice::ServiceNetwork")
                    })
            });
        if !subscribed {
            problems.push(format!(
                "{id}: no service network's access-log subscription delivers to it"
            ));
        }
    }
    problems
}

fn stream_destination(
    template: &Template,
    id: &str,
    destination: &Value,
    index_patterns: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    if named(
        template,
        &destination["DomainARN"],
        DOMAIN,
        &["Arn", "DomainArn"],
    )
    .is_none()
    {
        problems.push(format!(
            "{id}: DomainARN must be !GetAtt <an OpenSearch domain of this template>.Arn"
        ));
    }
    for (key, wanted) in [
        ("IndexRotationPeriod", "OneDay"),
        ("S3BackupMode", "FailedDocumentsOnly"),
    ] {
        if destination[key] != wanted {
            problems.push(format!(
                "{id}: {key} must be {wanted}, is {}",
                destination[key]
            ));
        }
    }
    let index = destination["IndexName"].as_str().unwrap_or_default();
    if !index_patterns.contains(&format!("{index}-*")) {
        problems.push(format!(
            "{id}: IndexName {index} writes {index}-YYYY-MM-DD, but {index}-* is not one of the index template's index_patterns {index_patterns:?}"
        ));
    }
    let role = role_of(template, &destination["RoleARN"]);
    if role.is_none() || role_of(template, &destination["S3Configuration"]["RoleARN"]) != role {
        problems.push(format!(
            "{id}: RoleARN and S3Configuration.RoleARN must be the same role of this template"
        ));
    }
    if named(
        template,
        &destination["S3Configuration"]["BucketARN"],
        BUCKET,
        &["Arn"],
    )
    .is_none()
    {
        problems.push(format!(
            "{id}: S3Configuration.BucketARN must be !GetAtt <a bucket of this template>.Arn"
        ));
    }
    problems
}

/// One Lambda processor, [`TRANSFORM`] (unqualified or `:$LATEST`), buffering 1 MB / 60 s: the
/// Lambda payload limit is 6 MB each way, and base64 and enrichment grow the response.
fn stream_processing(id: &str, processing: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if processing["Enabled"] != true {
        problems.push(format!(
            "{id}: ProcessingConfiguration.Enabled must be true"
        ));
    }
    let processors = strings(&processing["Processors"]);
    let [processor] = processors.as_slice() else {
        problems.push(format!(
            "{id}: must have exactly one processor, has {}",
            processors.len()
        ));
        return problems;
    };
    if processor["Type"] != "Lambda" {
        problems.push(format!("{id}: the processor must be of Type Lambda"));
    }
    let parameters = processor_parameters(processor);
    let lambda = parameters
        .get("LambdaArn")
        .map(String::as_str)
        .unwrap_or_default();
    let unqualified = format!("${{{TRANSFORM}.Arn}}");
    if lambda != unqualified && lambda != format!("{unqualified}:$LATEST") {
        problems.push(format!(
            "{id}: the processor invokes {lambda:?}, not {TRANSFORM}"
        ));
    }
    for (name, wanted) in [("BufferSizeInMBs", "1"), ("BufferIntervalInSeconds", "60")] {
        if parameters.get(name).map(String::as_str) != Some(wanted) {
            problems.push(format!(
                "{id}: processor {name} must be {wanted}, is {:?}",
                parameters.get(name)
            ));
        }
    }
    problems
}

/// Logging enabled, to a log group of this template and one of its log streams.
fn stream_logging(template: &Template, id: &str, key: &str, options: &Value) -> Vec<String> {
    let group = reference(&options["LogGroupName"])
        .map(|(g, _)| g)
        .filter(|g| is_type(template, g, "AWS::Logs::LogGroup"));
    let stream = reference(&options["LogStreamName"]).and_then(|(s, _)| {
        template
            .resource(s)
            .filter(|r| r["Type"] == "AWS::Logs::LogStream")
    });
    let in_group = match (group, stream) {
        (Some(group), Some(stream)) => {
            reference(&stream["Properties"]["LogGroupName"]).map(|(g, _)| g) == Some(group)
        }
        _ => false,
    };
    if options["Enabled"] != true || !in_group {
        return vec![format!(
            "{id}: {key} must be enabled, to !Ref <a log group of this template> and !Ref <a log stream of that group>"
        )];
    }
    Vec::new()
}

/// What one stream's role may reach: its bucket, domain (name and index), transform, log streams.
struct Reach {
    bucket: String,
    domain: String,
    index: String,
    log_streams: Vec<String>,
}

impl Reach {
    fn of(template: &Template, destination: &Value) -> Self {
        let domain = named(
            template,
            &destination["DomainARN"],
            DOMAIN,
            &["Arn", "DomainArn"],
        )
        .and_then(|d| template.resource(d)?["Properties"]["DomainName"].as_str())
        .unwrap_or("?");
        let log_streams = [&destination["CloudWatchLoggingOptions"], &destination["S3Configuration"]["CloudWatchLoggingOptions"]]
            .into_iter()
            .filter_map(|o| Some((as_text(&o["LogGroupName"])?, as_text(&o["LogStreamName"])?)))
            .map(|(group, stream)| {
                format!("arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{group}:log-stream:{stream}")
            })
            .collect();
        Self {
            bucket: as_text(&destination["S3Configuration"]["BucketARN"]).unwrap_or_default(),
            domain: domain_arn(domain),
            index: destination["IndexName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            log_streams,
        }
    }

    /// The resources `action` may name, or `None` when Firehose never needs the action.
    fn allows(&self, action: &str) -> Option<Vec<String>> {
        let transform = format!("${{{TRANSFORM}.Arn}}");
        Some(if FIREHOSE_S3_ACTIONS.contains(&action) {
            vec![self.bucket.clone(), format!("{}/*", self.bucket)]
        } else if FIREHOSE_DOMAIN_ACTIONS.contains(&action) {
            vec![self.domain.clone(), format!("{}/*", self.domain)]
        } else if action == "es:ESHttpGet" {
            firehose_get_paths(&self.index)
                .iter()
                .map(|p| format!("{}/{p}", self.domain))
                .collect()
        } else if FIREHOSE_LAMBDA_ACTIONS.contains(&action) {
            vec![transform.clone(), format!("{transform}:$LATEST")]
        } else if action == "logs:PutLogEvents" {
            self.log_streams.clone()
        } else {
            return None;
        })
    }
}

/// The actions a Firehose role must have for the stream to deliver at all.
const FIREHOSE_NEEDS: &[&str] = &[
    "s3:PutObject",
    "es:ESHttpPost",
    "lambda:InvokeFunction",
    "logs:PutLogEvents",
];

/// Each stream's role: trusted by `firehose.amazonaws.com` for this account only
/// (`aws:SourceAccount`), and allowed exactly what the Firehose guide lists, on this stream's own
/// bucket, domain (GETs on the guide's paths only), transform and error log streams: no `*`, no
/// other action, no grant by exclusion.
pub fn firehose_roles(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (_, stream) in template.of_type(STREAM) {
        let destination = &stream["Properties"][DESTINATION];
        let Some(role) = role_of(template, &destination["RoleARN"]) else {
            continue;
        };
        let properties = &template.resource(role).unwrap()["Properties"];
        let trust = json!([{
            "Effect": "Allow",
            "Principal": {"Service": "firehose.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        }]);
        if properties["AssumeRolePolicyDocument"]["Statement"] != trust {
            problems.push(format!("{role}: must trust exactly {trust}"));
        }
        let reach = Reach::of(template, destination);
        for policy in strings(&properties["Policies"]) {
            for statement in strings(&policy["PolicyDocument"]["Statement"]) {
                if ["NotAction", "NotResource"]
                    .iter()
                    .any(|k| statement.get(*k).is_some())
                {
                    problems.push(format!(
                        "{role}: an Allow with NotAction or NotResource grants by exclusion"
                    ));
                }
            }
        }
        let grants = role_grants(template, role);
        for (action, resource) in &grants {
            match reach.allows(action) {
                None => problems.push(format!(
                    "{role}: {action} - not an action Firehose needs (the Firehose guide's list)"
                )),
                Some(allowed) if !allowed.contains(resource) => problems.push(format!(
                    "{role}: {action} on {resource} - Firehose needs it only on {allowed:?}"
                )),
                Some(_) => {}
            }
        }
        for needed in FIREHOSE_NEEDS
            .iter()
            .filter(|n| !grants.iter().any(|(a, _)| a == *n))
        {
            problems.push(format!(
                "{role}: no {needed}, which Firehose needs to deliver"
            ));
        }
    }
    problems
}

/// Buckets: encrypted by default (SSE), every public-access block on, a lifecycle rule that
/// expires objects and aborts incomplete multipart uploads, and a bucket policy that denies every
/// request not over TLS (`aws:SecureTransport` false) on the bucket and its objects.
pub fn backup_buckets(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, bucket) in template.of_type(BUCKET) {
        let properties = &bucket["Properties"];
        problems.extend(private_by_default(id, properties));
        let lifecycle = expires_objects(properties);
        if !lifecycle {
            problems.push(format!(
                "{id}: no enabled lifecycle rule that expires objects and aborts incomplete multipart uploads"
            ));
        }
        if !denies_plain_http(template, id) {
            problems.push(format!(
                "{id}: no bucket policy denying s3:* on the bucket and its objects when aws:SecureTransport is false"
            ));
        }
    }
    problems
}

/// A bucket's `Properties`: encrypted by default (SSE-S3 or KMS) and every public-access block
/// on; the problems of bucket `id` otherwise.
pub fn private_by_default(id: &str, properties: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let encrypted = strings(&properties["BucketEncryption"]["ServerSideEncryptionConfiguration"])
        .iter()
        .any(|c| {
            c["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
                .as_str()
                .is_some_and(|a| a == "AES256" || a.starts_with("aws:kms"))
        });
    if !encrypted {
        problems.push(format!("{id}: no default server-side encryption"));
    }
    let block = &properties["PublicAccessBlockConfiguration"];
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        if block[flag] != true {
            problems.push(format!(
                "{id}: PublicAccessBlockConfiguration.{flag} must be true"
            ));
        }
    }
    problems
}

/// Whether a bucket's `Properties` hold an enabled lifecycle rule that expires objects and aborts
/// incomplete multipart uploads.
pub fn expires_objects(properties: &Value) -> bool {
    strings(&properties["LifecycleConfiguration"]["Rules"])
        .into_iter()
        .any(|rule| {
            rule["Status"] == "Enabled"
                && rule["ExpirationInDays"].is_u64()
                && rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].is_u64()
        })
}

fn denies_plain_http(template: &Template, bucket: &str) -> bool {
    template
        .of_type("AWS::S3::BucketPolicy")
        .filter(|(_, p)| reference(&p["Properties"]["Bucket"]) == Some((bucket, None)))
        .flat_map(|(_, p)| strings(&p["Properties"]["PolicyDocument"]["Statement"]))
        .any(|s| denies_plain_http_statement(s, bucket))
}

/// Whether a bucket policy statement denies `s3:*` to everyone on `bucket` and its objects when
/// `aws:SecureTransport` is false.
pub fn denies_plain_http_statement(statement: &Value, bucket: &str) -> bool {
    let objects = format!("${{{bucket}.Arn}}/*");
    let arn = format!("${{{bucket}.Arn}}");
    let resources: BTreeSet<String> = strings(&statement["Resource"])
        .into_iter()
        .filter_map(as_text)
        .collect();
    let insecure = &statement["Condition"]["Bool"]["aws:SecureTransport"];
    statement["Effect"] == "Deny"
        && (statement["Principal"] == "*" || statement["Principal"] == json!({"AWS": "*"}))
        && statement["Action"] == "s3:*"
        && resources.contains(&arn)
        && resources.contains(&objects)
        && (insecure == "false" || insecure == false)
}

/// The transform, when a stream invokes it: outside the VPC and no Lattice target (Firehose
/// invokes it with its role), at most Firehose's 5-minute invocation, and given only
/// `SERVICE_NAMES`, which names every Lattice service of this template as `${X.Arn}=<its Name>`.
pub fn transform(template: &Template) -> Vec<String> {
    if template.of_type(STREAM).next().is_none() {
        return Vec::new();
    }
    let Some(function) = template
        .resource(TRANSFORM)
        .filter(|r| r["Type"] == "AWS::Serverless::Function")
    else {
        return vec![format!(
            "{TRANSFORM}: no such function, and a stream needs it"
        )];
    };
    let mut problems = Vec::new();
    let timeout = template
        .function_property(TRANSFORM, "Timeout")
        .and_then(Value::as_u64);
    if timeout.is_none_or(|t| t > 300) {
        problems.push(format!(
            "{TRANSFORM}: Timeout must be at most 300 s (Firehose's invocation limit)"
        ));
    }
    if template.function_property(TRANSFORM, "VpcConfig").is_some() {
        problems.push(format!("{TRANSFORM}: not in the VPC (it talks to no one)"));
    }
    let targeted = template
        .of_type("AWS::VpcLattice::TargetGroup")
        .any(|(_, group)| {
            strings(&group["Properties"]["Targets"])
                .iter()
                .any(|t| reference(&t["Id"]).map(|(f, _)| f) == Some(TRANSFORM))
        });
    if targeted {
        problems.push(format!(
            "{TRANSFORM}: not behind Lattice (Firehose invokes it)"
        ));
    }
    let variables = &function["Properties"]["Environment"]["Variables"];
    let keys: Vec<&String> = variables
        .as_object()
        .into_iter()
        .flat_map(|v| v.keys())
        .collect();
    if keys != ["SERVICE_NAMES"] {
        problems.push(format!(
            "{TRANSFORM}: must be given SERVICE_NAMES only, has {keys:?}"
        ));
    }
    let given: BTreeMap<&str, &str> = sub_text(&variables["SERVICE_NAMES"])
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let wanted: BTreeMap<String, &str> = template
        .of_type("AWS::VpcLattice::Service")
        .map(|(id, s)| {
            (
                format!("${{{id}.Arn}}"),
                s["Properties"]["Name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let given: BTreeMap<String, &str> = given.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    if given != wanted {
        problems.push(format!(
            "{TRANSFORM}: SERVICE_NAMES maps {given:?}, must map every service {wanted:?}"
        ));
    }
    problems
}
