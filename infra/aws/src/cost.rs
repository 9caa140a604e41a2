//! The cost-report rules (`CostReport=true`): a daily Lambda (`cost/report-lambda`, binary
//! `cost-report`) run by an EventBridge rule, writing the previous UTC day's JSON report to an S3
//! bucket and cost per 1M requests per service as EMF metrics; and a Cost Anomaly Detection
//! monitor over AWS services with, when an address is given, a daily mail.
//!
//! Why they exist: `cfn-lint` and `sam validate` check each property against CloudFormation's
//! schemas, not that an IAM action exists or is the one the report calls, that the function is
//! given the stack's own services, functions, tables and access log (not names typed by hand),
//! that it runs once a day and may be invoked by that schedule only, that the bucket is private
//! and TLS-only, that the stack really carries the cost-allocation tag the report filters Cost
//! Explorer on, or that the core stack still deploys, unchanged, without any of it.
//!
//! Layout: [`conditions`] (the parameters, the conditions, who carries them, and that nothing of
//! the core stack names the report); [`report_bucket`]; [`schedule`] (the rule and its
//! permission); [`function`]; [`role`] (the exact actions, each on exactly its resources);
//! [`environment`] (what the function is given, derived from the template) and [`stack_tag`]
//! (`samconfig.toml` tags the stack with what `COST_TAG_KEY`/`COST_TAG_VALUE` name);
//! [`anomaly_detection`]. [`UNSCOPED_ACTIONS`] and [`scoped_wildcard`] tell
//! `checks::least_privilege` which `*` resources and wildcards the report's role may hold.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::analytics::{
    as_text, denies_plain_http_statement, expires_objects, private_by_default, role_of,
};
use crate::checks::{equals, is_type, strings, switch_parameter, SERVICE_TABLES};
use crate::template::{implies, reference, sub_text, Template};

/// The parameter that turns the cost report on (`"true"`) or leaves the core stack alone.
pub const PARAMETER: &str = "CostReport";
/// The condition every cost-report resource and output carries (or one that implies it).
pub const CONDITION: &str = "WithCostReport";
/// The condition of the anomaly subscription: the report on, and an address to mail.
pub const ALERTS_CONDITION: &str = "WithCostAnomalyAlerts";
/// The address Cost Anomaly Detection mails (empty: no subscription).
pub const EMAIL_PARAMETER: &str = "CostAnomalyEmail";
/// The total impact in USD from which an anomaly is mailed.
pub const THRESHOLD_PARAMETER: &str = "CostAnomalyThresholdUsd";
/// Every parameter of the cost report.
pub const PARAMETERS: &[&str] = &[PARAMETER, EMAIL_PARAMETER, THRESHOLD_PARAMETER];
/// The report's function.
pub const FUNCTION: &str = "CostReportFunction";
/// Its crate, as the template's `CodeUri` names it (relative to `infra/aws`).
pub const CODE_URI: &str = "../../cost/report-lambda";
/// Its binary (`Metadata.BuildProperties.Binary`).
pub const BINARY: &str = "cost-report";
/// The variable that names the services, their functions and tables: the tables are named so
/// that the report reads their metrics, and its role may call no DynamoDB action at all
/// (`checks::table_access`).
pub const SERVICES_VARIABLE: &str = "STACK_SERVICES";
/// Exactly what the function is given.
pub const VARIABLES: &[&str] = &[
    SERVICES_VARIABLE,
    "ACCESS_LOG_GROUP",
    "REPORT_BUCKET",
    "COST_TAG_KEY",
    "COST_TAG_VALUE",
    "EMF_NAMESPACE",
];
/// The stack's cost-allocation tag key (its value is the stack name), set by `samconfig.toml`.
pub const TAG_KEY: &str = "lattice-stack";
/// Where in the bucket the report may write.
pub const REPORT_PREFIX: &str = "reports/";
/// The actions that have no resource type (or, Cost Explorer's, only an optional billing view the
/// report never names), per the Service Authorization Reference: `*` is their only resource.
/// X-Ray's are `checks::XRAY_ACTIONS`.
pub const UNSCOPED_ACTIONS: &[&str] = &[
    "cloudwatch:GetMetricData",
    "ce:GetCostAndUsage",
    "ce:GetDimensionValues",
];
/// X-Ray: its own segments, and the trace summaries the report counts (no resource types).
pub const XRAY_ACTIONS: &[&str] = &[
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetTraceSummaries",
];
/// Logs Insights: both require the log-group resource type.
pub const QUERY_ACTIONS: &[&str] = &["logs:StartQuery", "logs:GetQueryResults"];
/// Writing its own log (and so its EMF metrics).
pub const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];
/// The types that exist only for the cost report: each carries [`CONDITION`].
pub const COST_TYPES: &[&str] = &[
    "AWS::CE::AnomalyMonitor",
    "AWS::CE::AnomalySubscription",
    "AWS::Events::Rule",
];

const FUNCTION_TYPE: &str = "AWS::Serverless::Function";
const BUCKET: &str = "AWS::S3::Bucket";
const LOG_GROUP: &str = "AWS::Logs::LogGroup";
const MONITOR: &str = "AWS::CE::AnomalyMonitor";
const SUBSCRIPTION: &str = "AWS::CE::AnomalySubscription";
const LOGS_ARN: &str = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:";

/// Every cost-report rule; `samconfig` is the text of `infra/aws/samconfig.toml`.
pub fn all(template: &Template, samconfig: &str) -> Vec<String> {
    [
        conditions(template),
        report_bucket(template),
        schedule(template),
        function(template),
        role(template),
        environment(template),
        stack_tag(template, samconfig),
        anomaly_detection(template),
    ]
    .concat()
}

/// Whether a resource or output carries a condition that implies [`CONDITION`].
pub(crate) fn carries(template: &Template, value: &Value) -> bool {
    value["Condition"]
        .as_str()
        .is_some_and(|c| implies(template, c, CONDITION))
}

/// The role the report runs as.
pub fn report_role(template: &Template) -> Option<&str> {
    role_of(template, template.function_property(FUNCTION, "Role")?)
}

/// Whether a wildcard resource stays inside this template as the report's role needs it: the
/// objects under [`REPORT_PREFIX`] of one of its buckets, or one of its log groups in the `:*`
/// form (that group and its streams).
pub fn scoped_wildcard(template: &Template, text: &str) -> bool {
    let reports = text
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix(&format!(".Arn}}/{REPORT_PREFIX}*")))
        .is_some_and(|id| is_type(template, id, BUCKET));
    let log_group = text
        .strip_prefix(&format!("{LOGS_ARN}${{"))
        .and_then(|t| t.strip_suffix("}:*"))
        .is_some_and(|id| is_type(template, id, LOG_GROUP));
    reports || log_group
}

/// Every name an expression mentions: `Ref`, `Fn::GetAtt`, the `${…}` of `Fn::Sub`, the
/// condition of an `Fn::If`, a `Condition` (a condition's `!Condition`, or a resource's own), and
/// `DependsOn`; in both branches of every `Fn::If`.
fn mentions(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for key in ["Ref", "Condition"] {
                if let Some(Value::String(name)) = map.get(key) {
                    into.insert(name.clone());
                }
            }
            if let Some(id) = map.get("Fn::GetAtt").and_then(|g| g[0].as_str()) {
                into.insert(id.to_owned());
            }
            if let Some(condition) = map.get("Fn::If").and_then(|i| i[0].as_str()) {
                into.insert(condition.to_owned());
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
            map.values().for_each(|v| mentions(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| mentions(v, into)),
        _ => {}
    }
}

fn mentioned(value: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    mentions(value, &mut found);
    found
}

/// The parameter (`"true"`/`"false"`, default `"false"`), [`CONDITION`] (`!Equals [!Ref
/// CostReport, "true"]`) and [`ALERTS_CONDITION`] (it, and [`EMAIL_PARAMETER`] not empty); every
/// resource of [`COST_TYPES`] and [`FUNCTION`] carries a condition implying [`CONDITION`], and so
/// does a resource used only by such resources and outputs; and nothing else (resource, output,
/// condition, rule) names a cost-report resource, parameter or condition at all, not even inside
/// an `Fn::If`: with `CostReport=false` the stack is exactly the core stack.
pub fn conditions(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(switch_parameter(template, PARAMETER, CONDITION));
    let definitions = &template.root["Conditions"];
    let wanted =
        json!({"Fn::And": [{"Condition": CONDITION}, {"Fn::Not": [equals(EMAIL_PARAMETER, "")]}]});
    if definitions[ALERTS_CONDITION] != wanted {
        problems.push(format!("{ALERTS_CONDITION}: must be {wanted}"));
    }
    let cost_conditions: BTreeSet<&str> = definitions
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| name.as_str())
        .filter(|name| implies(template, name, CONDITION))
        .collect();
    let conditional: BTreeSet<&str> = template
        .resources()
        .filter(|(_, r)| carries(template, r))
        .map(|(id, _)| id)
        .collect();
    let outputs: Vec<(&String, &Value)> = template.root["Outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    let cost_name = |name: &str| {
        conditional.contains(name) || cost_conditions.contains(name) || PARAMETERS.contains(&name)
    };
    // Who names each resource: resources by id, outputs as "Outputs.<name>".
    let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut cost_users: BTreeSet<String> = conditional.iter().map(|id| id.to_string()).collect();
    let named = template
        .resources()
        .map(|(id, r)| (id.to_owned(), r))
        .chain(outputs.iter().map(|(n, o)| (format!("Outputs.{n}"), *o)));
    for (user, value) in named {
        if user.starts_with("Outputs.") && carries(template, value) {
            cost_users.insert(user.clone());
        }
        for name in mentioned(value).into_iter().filter(|n| *n != user) {
            users.entry(name).or_default().insert(user.clone());
        }
    }
    for (id, resource) in template.resources().filter(|(_, r)| !carries(template, r)) {
        let kind = resource["Type"].as_str().unwrap_or_default();
        if COST_TYPES.contains(&kind) || id == FUNCTION {
            problems.push(format!(
                "{id}: a cost-report {kind} without a Condition implying {CONDITION}"
            ));
        }
        let own_users = users.get(id).cloned().unwrap_or_default();
        if !own_users.is_empty() && own_users.iter().all(|u| cost_users.contains(u)) {
            problems.push(format!(
                "{id}: used only by the cost report ({}), but deployed without {CONDITION}",
                own_users.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let core = template
        .resources()
        .filter(|(_, r)| !carries(template, r))
        .map(|(id, r)| (id.to_owned(), r))
        .chain(
            outputs
                .iter()
                .filter(|(_, o)| !carries(template, o))
                .map(|(n, o)| (format!("Outputs.{n}"), *o)),
        )
        .chain(
            definitions
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(name, _)| !cost_conditions.contains(name.as_str()))
                .map(|(name, c)| (format!("Conditions.{name}"), c)),
        )
        .chain(
            template.root["Rules"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, r)| (format!("Rules.{name}"), r)),
        );
    for (user, value) in core {
        for name in mentioned(value).iter().filter(|n| cost_name(n)) {
            problems.push(format!(
                "{user}: names {name}, which belongs to the cost report: the core stack must not change with {PARAMETER}"
            ));
        }
    }
    problems
}

/// The text of every `Resource` of a statement (`${X.Arn}` for `!GetAtt X.Arn`, `*` as is).
fn resource_texts(statement: &Value) -> BTreeSet<String> {
    strings(&statement["Resource"])
        .into_iter()
        .filter_map(as_text)
        .collect()
}

/// The report's buckets (each bucket carrying [`CONDITION`]): encrypted by default (SSE), every
/// public-access block on, ACLs disabled (`BucketOwnerEnforced`, no `AccessControl`), a lifecycle
/// rule that expires reports and aborts incomplete multipart uploads, and bucket policies that
/// allow nothing (the role writes the reports) and deny every request not over TLS
/// (`aws:SecureTransport` false) on the bucket and its objects.
pub fn report_bucket(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, bucket) in template
        .of_type(BUCKET)
        .filter(|(_, b)| carries(template, b))
    {
        let properties = &bucket["Properties"];
        problems.extend(private_by_default(id, properties));
        let enforced = properties["OwnershipControls"]["Rules"]
            == json!([{"ObjectOwnership": "BucketOwnerEnforced"}]);
        if !enforced || properties.get("AccessControl").is_some() {
            problems.push(format!(
                "{id}: ACLs must be disabled (OwnershipControls BucketOwnerEnforced, no AccessControl)"
            ));
        }
        let lifecycle = expires_objects(properties);
        if !lifecycle {
            problems.push(format!(
                "{id}: no enabled lifecycle rule that expires reports and aborts incomplete multipart uploads"
            ));
        }
        let mut tls_only = false;
        for (policy, document) in template
            .of_type("AWS::S3::BucketPolicy")
            .filter(|(_, p)| reference(&p["Properties"]["Bucket"]) == Some((id, None)))
            .map(|(policy, p)| (policy, &p["Properties"]["PolicyDocument"]))
        {
            for statement in strings(&document["Statement"]) {
                if statement["Effect"] != "Deny" {
                    problems.push(format!(
                        "{policy}: a bucket policy statement that is not a Deny ({}): only the report's role writes to {id}",
                        statement["Effect"]
                    ));
                    continue;
                }
                tls_only |= denies_plain_http_statement(statement, id);
            }
        }
        if !tls_only {
            problems.push(format!(
                "{id}: no bucket policy denying s3:* on the bucket and its objects when aws:SecureTransport is false"
            ));
        }
    }
    problems
}

/// Whether `expression` runs once a day at a fixed UTC time: `cron(M H * * ? *)` (or with the
/// `?` on the day of the month), never `rate(…)` (which counts from the deploy, not the day).
pub fn is_daily(expression: &str) -> bool {
    let Some(fields) = expression
        .strip_prefix("cron(")
        .and_then(|e| e.strip_suffix(')'))
    else {
        return false;
    };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let [minute, hour, day, month, weekday, year] = fields.as_slice() else {
        return false;
    };
    let within = |field: &str, max: u8| field.parse::<u8>().is_ok_and(|v| v <= max);
    within(minute, 59)
        && within(hour, 23)
        && matches!((*day, *weekday), ("*", "?") | ("?", "*"))
        && *month == "*"
        && *year == "*"
}

/// The schedule: [`FUNCTION`] has no SAM `Events` (their expansion, an `AWS::Events::Rule` or an
/// EventBridge Scheduler schedule with its own role, would escape these rules and
/// `tools/deployer_policy.py`); exactly one `AWS::Events::Rule` targets it, enabled, with a daily
/// schedule ([`is_daily`]), no event pattern and no other target; an `AWS::Lambda::Permission`
/// lets `events.amazonaws.com` invoke it with `SourceArn` that rule; and no other permission lets
/// anything else invoke it.
pub fn schedule(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    if template.resource(FUNCTION).is_none() {
        return problems;
    }
    if template.function_property(FUNCTION, "Events").is_some() {
        problems.push(format!(
            "{FUNCTION}: no SAM Events (their expansion escapes these rules and the deployer policy); an AWS::Events::Rule runs it"
        ));
    }
    let targets_function =
        |target: &Value| reference(&target["Arn"]) == Some((FUNCTION, Some("Arn")));
    let rules: Vec<(&str, &Value)> = template
        .of_type("AWS::Events::Rule")
        .filter(|(_, r)| {
            strings(&r["Properties"]["Targets"])
                .into_iter()
                .any(targets_function)
        })
        .collect();
    match rules.as_slice() {
        [] => problems.push(format!("{FUNCTION}: no AWS::Events::Rule runs it")),
        [_] => {}
        more => problems.push(format!(
            "{FUNCTION}: run by {} rules ({}); one daily run, one rule",
            more.len(),
            more.iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    for (id, rule) in &rules {
        let properties = &rule["Properties"];
        let expression = properties["ScheduleExpression"]
            .as_str()
            .unwrap_or_default();
        if !is_daily(expression) {
            problems.push(format!(
                "{id}: ScheduleExpression {expression:?} must run once a day at a fixed UTC time (cron(M H * * ? *))"
            ));
        }
        if properties["State"] != "ENABLED" {
            problems.push(format!(
                "{id}: State must be ENABLED, is {}",
                properties["State"]
            ));
        }
        if properties.get("EventPattern").is_some() {
            problems.push(format!("{id}: a schedule takes no EventPattern"));
        }
        let targets = strings(&properties["Targets"]);
        if targets.len() != 1 {
            problems.push(format!(
                "{id}: must target {FUNCTION} alone, has {} targets",
                targets.len()
            ));
        }
    }
    let invokes_function =
        |p: &Value| reference(&p["Properties"]["FunctionName"]).map(|(f, _)| f) == Some(FUNCTION);
    for (id, _) in &rules {
        let permitted = template
            .of_type("AWS::Lambda::Permission")
            .filter(|(_, p)| invokes_function(p))
            .any(|(_, p)| {
                let p = &p["Properties"];
                p["Action"] == "lambda:InvokeFunction"
                    && p["Principal"] == "events.amazonaws.com"
                    && reference(&p["SourceArn"]) == Some((id, Some("Arn")))
            });
        if !permitted {
            problems.push(format!(
                "{id}: no AWS::Lambda::Permission lets events.amazonaws.com invoke {FUNCTION} with SourceArn = this rule"
            ));
        }
    }
    for (id, permission) in template
        .of_type("AWS::Lambda::Permission")
        .filter(|(_, p)| invokes_function(p))
    {
        let p = &permission["Properties"];
        let from_schedule = p["Principal"] == "events.amazonaws.com"
            && reference(&p["SourceArn"]).is_some_and(|(rule, attribute)| {
                attribute == Some("Arn") && rules.iter().any(|(r, _)| *r == rule)
            });
        if !from_schedule {
            problems.push(format!(
                "{id}: lets {} invoke {FUNCTION} (SourceArn {}); only its schedule may",
                p["Principal"], p["SourceArn"]
            ));
        }
    }
    problems
}

/// The log group a function logs to (`LoggingConfig.LogGroup: !Ref <group>`).
fn log_group_of<'a>(template: &'a Template, function: &str) -> Option<&'a str> {
    let group = template.function_property(function, "LoggingConfig")?;
    reference(&group["LogGroup"])
        .map(|(id, _)| id)
        .filter(|id| is_type(template, id, LOG_GROUP))
}

/// The function: [`CODE_URI`] built as [`BINARY`] by `rust-cargolambda` (that the crate has the
/// binary, and the function is traced, arm64 and `provided.al2023`, `checks::functions` checks
/// for every function); a Timeout of 300 to 900 s (Logs Insights queries are started, then polled
/// until complete); `ReservedConcurrentExecutions` 1; its own log group (one of the report's,
/// with a retention); outside the VPC and behind no Lattice target group.
pub fn function(template: &Template) -> Vec<String> {
    let Some(function) = template
        .resource(FUNCTION)
        .filter(|r| r["Type"] == FUNCTION_TYPE)
    else {
        return vec![format!("{FUNCTION}: no {FUNCTION_TYPE} of that id")];
    };
    let mut problems = Vec::new();
    let property = |name| template.function_property(FUNCTION, name);
    if property("CodeUri") != Some(&Value::from(CODE_URI))
        || function["Metadata"]["BuildMethod"] != "rust-cargolambda"
        || function["Metadata"]["BuildProperties"]["Binary"] != BINARY
    {
        problems.push(format!(
            "{FUNCTION}: must be built by rust-cargolambda from {CODE_URI}, Binary {BINARY}"
        ));
    }
    let timeout = property("Timeout").and_then(Value::as_u64);
    if !timeout.is_some_and(|t| (300..=900).contains(&t)) {
        problems.push(format!(
            "{FUNCTION}: Timeout must be 300 to 900 s (Logs Insights queries are polled until complete), is {timeout:?}"
        ));
    }
    if property("ReservedConcurrentExecutions") != Some(&json!(1)) {
        problems.push(format!(
            "{FUNCTION}: ReservedConcurrentExecutions must be 1 (one report at a time), is {:?}",
            property("ReservedConcurrentExecutions")
        ));
    }
    match log_group_of(template, FUNCTION) {
        Some(group) => {
            let resource = template.resource(group).unwrap();
            if !carries(template, resource)
                || resource["Properties"].get("RetentionInDays").is_none()
            {
                problems.push(format!(
                    "{FUNCTION}: logs to {group}, which must be its own (carrying {CONDITION}) with a RetentionInDays"
                ));
            }
        }
        None => problems.push(format!(
            "{FUNCTION}: LoggingConfig.LogGroup must be !Ref <a log group of this template>"
        )),
    }
    if property("VpcConfig").is_some() {
        problems.push(format!(
            "{FUNCTION}: not in the VPC (it calls AWS APIs only, and the VPC has no NAT or endpoints)"
        ));
    }
    let targeted = template
        .of_type("AWS::VpcLattice::TargetGroup")
        .any(|(_, group)| {
            strings(&group["Properties"]["Targets"])
                .iter()
                .any(|t| reference(&t["Id"]).map(|(f, _)| f) == Some(FUNCTION))
        });
    if targeted {
        problems.push(format!(
            "{FUNCTION}: not behind Lattice (its schedule invokes it)"
        ));
    }
    problems
}

/// The function behind a Lattice service: its listeners forward to target groups whose targets
/// are `!GetAtt <function>.Arn`.
fn service_function<'a>(template: &'a Template, service: &str) -> Option<&'a str> {
    template
        .of_type("AWS::VpcLattice::Listener")
        .filter(|(_, l)| {
            reference(&l["Properties"]["ServiceIdentifier"]) == Some((service, Some("Arn")))
        })
        .flat_map(|(_, l)| strings(&l["Properties"]["DefaultAction"]["Forward"]["TargetGroups"]))
        .filter_map(|g| reference(&g["TargetGroupIdentifier"]).map(|(id, _)| id))
        .filter_map(|g| template.resource(g))
        .flat_map(|g| strings(&g["Properties"]["Targets"]))
        .filter_map(|t| reference(&t["Id"]).map(|(id, _)| id))
        .find(|f| is_type(template, f, FUNCTION_TYPE))
}

/// The stack's services as the report must be given them, by name: `service_arn`
/// `${<service>.Arn}`, `function_name` `${<its function>}`, `arch` its function's architecture,
/// `tables` `${<table>}` for each table that function owns (`checks::SERVICE_TABLES`).
fn stack_services(template: &Template) -> BTreeMap<String, Value> {
    template
        .of_type("AWS::VpcLattice::Service")
        .map(|(service, resource)| {
            let name = resource["Properties"]["Name"]
                .as_str()
                .unwrap_or(service)
                .to_owned();
            let function = service_function(template, service).unwrap_or("?");
            let arch = template
                .function_property(function, "Architectures")
                .map(|a| a[0].clone())
                .unwrap_or(Value::Null);
            let tables: Vec<String> = SERVICE_TABLES
                .iter()
                .filter(|t| t.function == function)
                .map(|t| format!("${{{}}}", t.table))
                .collect();
            let entry = json!({
                "name": name,
                "service_arn": format!("${{{service}.Arn}}"),
                "function_name": format!("${{{function}}}"),
                "arch": arch,
                "tables": tables,
            });
            (name, entry)
        })
        .collect()
}

/// The log group the service network's access log goes to (`…:log-group:${<group>}`).
fn access_log_group(template: &Template) -> Option<&str> {
    template
        .of_type("AWS::VpcLattice::AccessLogSubscription")
        .filter(|(_, s)| {
            reference(&s["Properties"]["ResourceIdentifier"])
                .is_some_and(|(n, _)| is_type(template, n, "AWS::VpcLattice::ServiceNetwork"))
        })
        .filter_map(|(_, s)| sub_text(&s["Properties"]["DestinationArn"]))
        .filter_map(|arn| arn.rsplit_once(":log-group:${")?.1.strip_suffix('}'))
        .find(|group| is_type(template, group, LOG_GROUP))
}

/// The bucket `REPORT_BUCKET` names, when it is one of the report's.
fn report_bucket_of(template: &Template) -> Option<&str> {
    let variables = &template.function_property(FUNCTION, "Environment")?["Variables"];
    let (bucket, attribute) = reference(&variables["REPORT_BUCKET"])?;
    (attribute.is_none()
        && is_type(template, bucket, BUCKET)
        && carries(template, template.resource(bucket)?))
    .then_some(bucket)
}

/// What the report's role must allow, action → resources: [`UNSCOPED_ACTIONS`] and
/// [`XRAY_ACTIONS`] on `*`; [`QUERY_ACTIONS`] on exactly the access-log group and the log groups
/// of the services' functions, each as `…:log-group:NAME` (the reference's form) and
/// `…:log-group:NAME:*`; `s3:PutObject` on the report bucket's [`REPORT_PREFIX`] objects; and
/// [`LOG_ACTIONS`] on its own log group's streams.
fn wanted_grants(template: &Template) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut wanted: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for action in UNSCOPED_ACTIONS.iter().chain(XRAY_ACTIONS) {
        wanted.insert(action, BTreeSet::from(["*".to_owned()]));
    }
    let mut groups: Vec<&str> = access_log_group(template).into_iter().collect();
    for (service, _) in template.of_type("AWS::VpcLattice::Service") {
        groups.extend(service_function(template, service).and_then(|f| log_group_of(template, f)));
    }
    let queried: BTreeSet<String> = groups
        .iter()
        .flat_map(|g| {
            [
                format!("{LOGS_ARN}${{{g}}}"),
                format!("{LOGS_ARN}${{{g}}}:*"),
            ]
        })
        .collect();
    for action in QUERY_ACTIONS {
        wanted.insert(action, queried.clone());
    }
    let bucket = report_bucket_of(template).unwrap_or("?");
    wanted.insert(
        "s3:PutObject",
        BTreeSet::from([format!("${{{bucket}.Arn}}/{REPORT_PREFIX}*")]),
    );
    let own = log_group_of(template, FUNCTION).unwrap_or("?");
    for action in LOG_ACTIONS {
        wanted.insert(
            action,
            BTreeSet::from([format!("{LOGS_ARN}${{{own}}}:log-stream:*")]),
        );
    }
    wanted
}

/// The role: the report's own (no other function runs as it), trusted by `lambda.amazonaws.com`
/// only, with no managed policies and no `NotAction`/`NotResource`, and allowing exactly the
/// actions of `wanted_grants`, each on exactly its resources: no other action (no `logs:*`, no
/// `ce:*`), no other resource.
pub fn role(template: &Template) -> Vec<String> {
    if template.resource(FUNCTION).is_none() {
        return Vec::new();
    }
    let Some(role) = report_role(template) else {
        return vec![format!(
            "{FUNCTION}: Role must be !GetAtt <a role of this template>.Arn"
        )];
    };
    let mut problems = Vec::new();
    for (other, _) in template
        .of_type(FUNCTION_TYPE)
        .filter(|(id, _)| *id != FUNCTION)
    {
        let runs_as = template
            .function_property(other, "Role")
            .and_then(|r| role_of(template, r));
        if runs_as == Some(role) {
            problems.push(format!(
                "{role}: also runs {other}; the cost report's role is its own"
            ));
        }
    }
    let properties = &template.resource(role).unwrap()["Properties"];
    let trust = json!([{
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"
    }]);
    if properties["AssumeRolePolicyDocument"]["Statement"] != trust {
        problems.push(format!("{role}: must trust exactly {trust}"));
    }
    if properties.get("ManagedPolicyArns").is_some() {
        problems.push(format!("{role}: no managed policies"));
    }
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
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
            if statement["Effect"] != "Allow" {
                continue;
            }
            for action in strings(&statement["Action"])
                .into_iter()
                .filter_map(Value::as_str)
            {
                granted
                    .entry(action.to_owned())
                    .or_default()
                    .extend(resource_texts(statement));
            }
        }
    }
    let wanted = wanted_grants(template);
    for action in granted.keys().filter(|a| !wanted.contains_key(a.as_str())) {
        problems.push(format!(
            "{role}: {action} - not an action the cost report calls"
        ));
    }
    for (action, resources) in &wanted {
        let given = granted.get(*action).cloned().unwrap_or_default();
        if &given != resources {
            problems.push(format!(
                "{role}: {action} on {given:?}, must be on exactly {resources:?}"
            ));
        }
    }
    problems
}

/// The services no other service's function may invoke (`vpc-lattice-svcs:Invoke` on
/// `${<service>.Arn}/*` in the role of a function behind a service): the entry services, by name.
fn entry_services(template: &Template) -> Vec<String> {
    let services: Vec<(&str, &Value)> = template.of_type("AWS::VpcLattice::Service").collect();
    let callers: Vec<&str> = services
        .iter()
        .filter_map(|(s, _)| service_function(template, s))
        .filter_map(|f| role_of(template, template.function_property(f, "Role")?))
        .collect();
    let invoked: BTreeSet<String> = callers
        .iter()
        .filter_map(|role| template.resource(role))
        .flat_map(|role| strings(&role["Properties"]["Policies"]))
        .flat_map(|policy| strings(&policy["PolicyDocument"]["Statement"]))
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| {
            strings(&s["Action"])
                .iter()
                .any(|a| *a == "vpc-lattice-svcs:Invoke")
        })
        .flat_map(resource_texts)
        .collect();
    services
        .iter()
        .filter(|(s, _)| !invoked.contains(&format!("${{{s}.Arn}}/*")))
        .map(|(s, r)| r["Properties"]["Name"].as_str().unwrap_or(s).to_owned())
        .collect()
}

/// The environment: exactly [`VARIABLES`]; `STACK_SERVICES` a JSON list (`!Sub`) with one entry
/// per Lattice service of this template, the entry service first (the report counts orders by
/// it: the one no other service's function may invoke), each exactly as `stack_services` derives
/// it from the template (its ARN, the function behind it, that function's architecture and
/// tables), and each function logging to `/aws/lambda/<its FunctionName>` (where the report looks
/// for its REPORT lines, and what its role may query);
/// `ACCESS_LOG_GROUP` `!Ref` the service network's access-log group; `REPORT_BUCKET` `!Ref` a
/// bucket of the report; `COST_TAG_KEY` [`TAG_KEY`] and `COST_TAG_VALUE` `!Ref AWS::StackName`
/// (what `samconfig.toml` tags the stack with, [`stack_tag`]); `EMF_NAMESPACE` a namespace of
/// CloudWatch's characters, not under the reserved `AWS/`.
pub fn environment(template: &Template) -> Vec<String> {
    let Some(environment) = template.function_property(FUNCTION, "Environment") else {
        if template.resource(FUNCTION).is_none() {
            return Vec::new();
        }
        return vec![format!("{FUNCTION}: no Environment")];
    };
    let variables = &environment["Variables"];
    let mut problems = Vec::new();
    let keys: BTreeSet<&str> = variables
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    let wanted_keys: BTreeSet<&str> = VARIABLES.iter().copied().collect();
    if keys != wanted_keys {
        problems.push(format!(
            "{FUNCTION}: must be given exactly {wanted_keys:?}, has {keys:?}"
        ));
    }
    let wanted = stack_services(template);
    match sub_text(&variables[SERVICES_VARIABLE]).map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Array(entries))) => {
            let given: BTreeMap<String, &Value> = entries
                .iter()
                .map(|e| (e["name"].as_str().unwrap_or_default().to_owned(), e))
                .collect();
            let given_names: Vec<&String> = given.keys().collect();
            let wanted_names: Vec<&String> = wanted.keys().collect();
            if given_names != wanted_names || given.len() != entries.len() {
                problems.push(format!(
                    "{FUNCTION}: {SERVICES_VARIABLE} names {:?}, must name each Lattice service of this template once {wanted_names:?}",
                    entries
                        .iter()
                        .map(|e| e["name"].as_str().unwrap_or_default())
                        .collect::<Vec<_>>()
                ));
            }
            let first = entries.first().and_then(|e| e["name"].as_str());
            if let [entry] = entry_services(template).as_slice() {
                if first != Some(entry.as_str()) {
                    problems.push(format!(
                        "{FUNCTION}: {SERVICES_VARIABLE} must list the entry service {entry} first (no other service calls it), lists {first:?} first"
                    ));
                }
            }
            for (name, entry) in &given {
                let Some(expected) = wanted.get(name).and_then(Value::as_object) else {
                    continue;
                };
                let keys: BTreeSet<&str> = entry
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .collect();
                let expected_keys: BTreeSet<&str> = expected.keys().map(String::as_str).collect();
                if keys != expected_keys {
                    problems.push(format!(
                        "{FUNCTION}: {SERVICES_VARIABLE} entry {name} has {keys:?}, must have exactly {expected_keys:?}"
                    ));
                }
                for (key, want) in expected {
                    if keys.contains(key.as_str()) && &entry[key] != want {
                        problems.push(format!(
                            "{FUNCTION}: {SERVICES_VARIABLE} entry {name}: {key} must be {want}, is {}",
                            entry[key]
                        ));
                    }
                }
            }
        }
        _ => problems.push(format!(
            "{FUNCTION}: {SERVICES_VARIABLE} must be a JSON list (!Sub) of the stack's services"
        )),
    }
    for (service, _) in template.of_type("AWS::VpcLattice::Service") {
        let Some(function) = service_function(template, service) else {
            continue;
        };
        let name = template
            .function_property(function, "FunctionName")
            .and_then(Value::as_str);
        let group = log_group_of(template, function)
            .and_then(|g| template.resource(g))
            .and_then(|g| g["Properties"]["LogGroupName"].as_str());
        if name.is_none() || group.map(str::to_owned) != name.map(|n| format!("/aws/lambda/{n}")) {
            problems.push(format!(
                "{function}: must log to /aws/lambda/<its FunctionName> (where the cost report reads its REPORT lines), logs to {group:?}"
            ));
        }
    }
    let group = access_log_group(template).unwrap_or("?");
    if reference(&variables["ACCESS_LOG_GROUP"]) != Some((group, None)) {
        problems.push(format!(
            "{FUNCTION}: ACCESS_LOG_GROUP must be !Ref {group} (the service network's access log), is {}",
            variables["ACCESS_LOG_GROUP"]
        ));
    }
    if report_bucket_of(template).is_none() {
        problems.push(format!(
            "{FUNCTION}: REPORT_BUCKET must be !Ref <a bucket of the report, carrying {CONDITION}>, is {}",
            variables["REPORT_BUCKET"]
        ));
    }
    if variables["COST_TAG_KEY"] != TAG_KEY
        || variables["COST_TAG_VALUE"] != json!({"Ref": "AWS::StackName"})
    {
        problems.push(format!(
            "{FUNCTION}: COST_TAG_KEY must be {TAG_KEY} and COST_TAG_VALUE !Ref AWS::StackName (the stack's tag), are {} and {}",
            variables["COST_TAG_KEY"], variables["COST_TAG_VALUE"]
        ));
    }
    let namespace = as_text(&variables["EMF_NAMESPACE"]).unwrap_or_default();
    let characters = namespace
        .replace("${AWS::StackName}", "x")
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/#:".contains(c));
    if namespace.is_empty() || namespace.starts_with("AWS/") || !characters {
        problems.push(format!(
            "{FUNCTION}: EMF_NAMESPACE must be a CloudWatch namespace outside AWS/, is {namespace:?}"
        ));
    }
    problems
}

/// A TOML string value as written in `samconfig.toml` (`"…"` with `\"` and `\\`, or `'…'`).
fn toml_string(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some(literal) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return Some(literal.to_owned());
    }
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

/// `samconfig.toml`'s `key = value` pairs, by `[section]`.
fn samconfig_values(text: &str) -> BTreeMap<(String, String), String> {
    let mut section = String::new();
    let mut values = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            if let Some(value) = toml_string(value) {
                values.insert((section.clone(), key.trim().to_owned()), value);
            }
        }
    }
    values
}

/// `sam deploy --tags` syntax: `key="value" key2=value2`.
fn tag_pairs(tags: &str) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    let mut rest = tags.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        pairs.insert(key.trim().to_owned(), value.to_owned());
        rest = next.trim();
    }
    pairs
}

/// The cost-allocation tag: `samconfig.toml` (`[default.deploy.parameters] tags`, what `sam
/// deploy --tags` takes) gives the stack [`TAG_KEY`] = its `stack_name`, which CloudFormation puts
/// on every resource it can tag: what the report's `COST_TAG_KEY`/`COST_TAG_VALUE` filter Cost
/// Explorer on. Checked only when the report is in the template.
pub fn stack_tag(template: &Template, samconfig: &str) -> Vec<String> {
    if template.resource(FUNCTION).is_none() {
        return Vec::new();
    }
    let values = samconfig_values(samconfig);
    let get = |section: &str, key: &str| values.get(&(section.to_owned(), key.to_owned()));
    let stack = get("default.global.parameters", "stack_name");
    let tags = get("default.deploy.parameters", "tags")
        .map(|t| tag_pairs(t))
        .unwrap_or_default();
    if stack.is_none() || tags.get(TAG_KEY) != stack {
        return vec![format!(
            "samconfig.toml: [default.deploy.parameters] tags must give the stack {TAG_KEY}=<its stack_name {stack:?}> (COST_TAG_KEY/COST_TAG_VALUE), has {tags:?}"
        )];
    }
    Vec::new()
}

/// Cost Anomaly Detection: one `AWS::CE::AnomalyMonitor`, AWS managed over every service
/// (`DIMENSIONAL`, `SERVICE`, no specification); each `AWS::CE::AnomalySubscription` on exactly
/// that monitor, under [`ALERTS_CONDITION`] (no subscription without an address to mail), mailing
/// [`EMAIL_PARAMETER`] `DAILY` the anomalies whose `ANOMALY_TOTAL_IMPACT_ABSOLUTE` is at least
/// [`THRESHOLD_PARAMETER`] (a `ThresholdExpression`; not the deprecated `Threshold`), and at least
/// one of them; the address parameter empty by default, the threshold a positive Number.
pub fn anomaly_detection(template: &Template) -> Vec<String> {
    if template.resource(FUNCTION).is_none() && template.of_type(MONITOR).next().is_none() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    let monitors: Vec<(&str, &Value)> = template.of_type(MONITOR).collect();
    let [(monitor, resource)] = monitors.as_slice() else {
        return vec![format!(
            "the cost report needs exactly one {MONITOR}, has {}",
            monitors.len()
        )];
    };
    let properties = &resource["Properties"];
    if properties["MonitorType"] != "DIMENSIONAL"
        || properties["MonitorDimension"] != "SERVICE"
        || properties.get("MonitorSpecification").is_some()
    {
        problems.push(format!(
            "{monitor}: must be MonitorType DIMENSIONAL, MonitorDimension SERVICE, no MonitorSpecification (every AWS service on its own)"
        ));
    }
    let parameters = &template.root["Parameters"];
    let email = &parameters[EMAIL_PARAMETER];
    if email["Type"] != "String"
        || email["Default"] != ""
        || !email["AllowedPattern"]
            .as_str()
            .is_some_and(|p| p.starts_with("^$|^"))
    {
        problems.push(format!(
            "{EMAIL_PARAMETER}: must be a String parameter, Default \"\", AllowedPattern \"^$|^…\""
        ));
    }
    let threshold = &parameters[THRESHOLD_PARAMETER];
    if threshold["Type"] != "Number" || !threshold["MinValue"].as_f64().is_some_and(|m| m > 0.0) {
        problems.push(format!(
            "{THRESHOLD_PARAMETER}: must be a Number parameter with a positive MinValue"
        ));
    }
    let expression = json!({"Dimensions": {
        "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
        "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
        "Values": [format!("${{{THRESHOLD_PARAMETER}}}")],
    }});
    let subscriptions: Vec<(&str, &Value)> = template.of_type(SUBSCRIPTION).collect();
    if subscriptions.is_empty() {
        problems.push(format!("{monitor}: no {SUBSCRIPTION} mails its anomalies"));
    }
    for (id, subscription) in subscriptions {
        let properties = &subscription["Properties"];
        if subscription["Condition"] != ALERTS_CONDITION {
            problems.push(format!(
                "{id}: Condition must be {ALERTS_CONDITION} (no subscription without {EMAIL_PARAMETER}), is {}",
                subscription["Condition"]
            ));
        }
        if properties["MonitorArnList"] != json!([{"Ref": monitor}]) {
            problems.push(format!("{id}: MonitorArnList must be [!Ref {monitor}]"));
        }
        if properties["Frequency"] != "DAILY" {
            problems.push(format!(
                "{id}: Frequency must be DAILY (an email subscriber takes DAILY or WEEKLY), is {}",
                properties["Frequency"]
            ));
        }
        let subscribers = json!([{"Type": "EMAIL", "Address": {"Ref": EMAIL_PARAMETER}}]);
        if properties["Subscribers"] != subscribers {
            problems.push(format!("{id}: Subscribers must be {subscribers}"));
        }
        let given = sub_text(&properties["ThresholdExpression"])
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        if properties.get("Threshold").is_some() || given.as_ref() != Some(&expression) {
            problems.push(format!(
                "{id}: ThresholdExpression must be {expression} (and no deprecated Threshold)"
            ));
        }
    }
    problems
}
