//! The rules the linters miss. Each returns the problems it finds (empty = holds), naming the
//! resource, so that a failing test says what to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::template::{guarded_items, reference, sub_text, Template};
use crate::{analytics, cost, telemetry};

/// X-Ray's write and read actions: X-Ray has no resource-level permissions for them, so `*` is
/// the only resource they take.
pub const XRAY_ACTIONS: &[&str] = &[
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetTraceSummaries",
    "xray:BatchGetTraces",
    "xray:GetServiceGraph",
];

/// What Lambda needs to attach a function to a VPC (Lambda guide, "execution role and user
/// permissions" for VPC access); EC2 has no resource-level permissions for these.
pub const VPC_ATTACH_ACTIONS: &[&str] = &[
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
];

/// A CloudWatch metric family: namespace, the exact dimension set it is published with, names.
pub struct MetricFamily {
    /// The namespace.
    pub namespace: &'static str,
    /// The dimension names, as published together.
    pub dimensions: &'static [&'static str],
    /// The metric names.
    pub names: &'static [&'static str],
    /// The resource type a dimension value refers to.
    pub resource_type: &'static str,
}

/// Lattice's request metrics, published per service and per target group alike.
const LATTICE_METRICS: &[&str] = &[
    "TotalRequestCount",
    "RequestTime",
    "RequestTimeoutCount",
    "HTTPCode_2XX_Count",
    "HTTPCode_4XX_Count",
    "HTTPCode_5XX_Count",
];

/// The metrics the dashboard may use. Lattice's come from the VPC Lattice guide's "CloudWatch
/// metrics" page (`AWS/VpcLattice`; not ALB's `RequestCount`/`TargetResponseTime`); Lambda's from
/// the Lambda guide's "function metrics"; DynamoDB's from the DynamoDB guide's "DynamoDB Metrics
/// and dimensions" (consumed units, condition failures and transaction conflicts per `TableName`;
/// throttles, system errors and latency per `TableName` + `Operation` only).
pub const METRIC_FAMILIES: &[MetricFamily] = &[
    MetricFamily {
        namespace: "AWS/VpcLattice",
        dimensions: &["AvailabilityZone", "Service"],
        names: LATTICE_METRICS,
        resource_type: "AWS::VpcLattice::Service",
    },
    MetricFamily {
        namespace: "AWS/VpcLattice",
        dimensions: &["AvailabilityZone", "TargetGroup"],
        names: LATTICE_METRICS,
        resource_type: "AWS::VpcLattice::TargetGroup",
    },
    MetricFamily {
        namespace: "AWS/Lambda",
        dimensions: &["FunctionName"],
        names: &[
            "Invocations",
            "Errors",
            "Throttles",
            "Duration",
            "ConcurrentExecutions",
        ],
        resource_type: "AWS::Serverless::Function",
    },
    MetricFamily {
        namespace: "AWS/DynamoDB",
        dimensions: &["TableName"],
        names: &[
            "ConsumedReadCapacityUnits",
            "ConsumedWriteCapacityUnits",
            "ConditionalCheckFailedRequests",
            "TransactionConflict",
        ],
        resource_type: TABLE,
    },
    MetricFamily {
        namespace: "AWS/DynamoDB",
        dimensions: &["Operation", "TableName"],
        names: &[
            "ThrottledRequests",
            "SystemErrors",
            "SuccessfulRequestLatency",
        ],
        resource_type: TABLE,
    },
];

const FUNCTION: &str = "AWS::Serverless::Function";
const TABLE: &str = "AWS::DynamoDB::Table";

/// The attribute DynamoDB's TTL deletes by (epoch seconds; the services set it on terminal
/// records only).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// A service's DynamoDB table: what it is, which function owns it, and what that function may do.
pub struct ServiceTable {
    /// The table's logical id.
    pub table: &'static str,
    /// Its fixed `TableName`: X-Ray names the table's node after it, and loadgen's map expects it.
    pub name: &'static str,
    /// Its only key, a String partition (HASH) key.
    pub key: &'static str,
    /// The function that owns the table (and whose role alone may use it).
    pub function: &'static str,
    /// The variable that gives that function the table's name.
    pub variable: &'static str,
    /// Exactly the DynamoDB actions that function's role has, all on this table's ARN.
    /// `TransactWriteItems` has no action of its own: each item action in a transaction is
    /// authorized as its `PutItem`/`UpdateItem`/`DeleteItem` (DynamoDB guide, "Using IAM with
    /// DynamoDB transactions").
    pub actions: &'static [&'static str],
}

/// The two stateful services and their tables; order and the loadgen runner get none.
pub const SERVICE_TABLES: &[ServiceTable] = &[
    ServiceTable {
        table: "InventoryTable",
        name: "inventory",
        key: "pk",
        function: "InventoryFunction",
        variable: "INVENTORY_TABLE",
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ],
    },
    ServiceTable {
        table: "PaymentsTable",
        name: "payments",
        key: "order_id",
        function: "PaymentFunction",
        variable: "PAYMENTS_TABLE",
        actions: &[
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ],
    },
];

/// Strings or lists of strings, as IAM and CloudFormation allow both; an `Fn::If` (of the list or
/// of an item) gives the items of both branches, so that a rule holds whichever is chosen, and
/// `Ref AWS::NoValue` gives none ([`guarded_items`] keeps the choices).
/// `!Equals [!Ref parameter, value]` in the long form.
pub(crate) fn equals(parameter: &str, value: &str) -> Value {
    serde_json::json!({"Fn::Equals": [{"Ref": parameter}, value]})
}

/// An optional feature's switch: `parameter` a String `"true"`/`"false"` defaulting to
/// `"false"`, and `condition` `!Equals [!Ref parameter, "true"]`.
pub(crate) fn switch_parameter(
    template: &Template,
    parameter: &str,
    condition: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let definition = &template.root["Parameters"][parameter];
    let allowed: BTreeSet<&str> = strings(&definition["AllowedValues"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    if definition["Type"] != "String"
        || definition["Default"] != "false"
        || allowed != BTreeSet::from(["true", "false"])
    {
        problems.push(format!(
            "{parameter}: must be a String parameter, AllowedValues [\"true\", \"false\"], Default \"false\""
        ));
    }
    let wanted = equals(parameter, "true");
    if template.root["Conditions"][condition] != wanted {
        problems.push(format!("{condition}: must be {wanted}"));
    }
    problems
}

pub(crate) fn strings(value: &Value) -> Vec<&Value> {
    guarded_items(value).into_iter().map(|(_, v)| v).collect()
}

pub(crate) fn is_type(template: &Template, id: &str, kind: &str) -> bool {
    template.resource(id).is_some_and(|r| r["Type"] == kind)
}

/// LAMBDA target groups: only `LambdaEventStructureVersion: V2` in `Config` (no port, protocol,
/// VPC or health check), functions of this template as targets (no port), and for each target an
/// explicit `AWS::Lambda::Permission` for `vpc-lattice.amazonaws.com` scoped to the target group.
pub fn lambda_target_groups(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, group) in template.of_type("AWS::VpcLattice::TargetGroup") {
        let properties = &group["Properties"];
        if properties["Type"] != "LAMBDA" {
            continue;
        }
        let config = properties["Config"].as_object();
        let keys: BTreeSet<&str> = config
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        if keys != BTreeSet::from(["LambdaEventStructureVersion"]) {
            problems.push(format!(
                "{id}: a LAMBDA target group's Config takes only LambdaEventStructureVersion, has {keys:?}"
            ));
        }
        if properties["Config"]["LambdaEventStructureVersion"] != "V2" {
            problems.push(format!(
                "{id}: LambdaEventStructureVersion must be V2 (V1 has no requestContext)"
            ));
        }
        let targets = strings(&properties["Targets"]);
        if targets.is_empty() {
            problems.push(format!("{id}: no targets"));
        }
        for target in targets {
            if target.get("Port").is_some() {
                problems.push(format!("{id}: a Lambda target takes no Port"));
            }
            let function = match reference(&target["Id"]) {
                Some((function, Some("Arn"))) if is_type(template, function, FUNCTION) => function,
                _ => {
                    problems.push(format!(
                        "{id}: target {} is not a function of this template",
                        target["Id"]
                    ));
                    continue;
                }
            };
            let permitted = template
                .of_type("AWS::Lambda::Permission")
                .any(|(_, permission)| {
                    let p = &permission["Properties"];
                    p["Action"] == "lambda:InvokeFunction"
                        && p["Principal"] == "vpc-lattice.amazonaws.com"
                        && reference(&p["FunctionName"]).map(|(f, _)| f) == Some(function)
                        && reference(&p["SourceArn"]) == Some((id, Some("Arn")))
                });
            if !permitted {
                problems.push(format!(
                    "{id}: no AWS::Lambda::Permission lets vpc-lattice.amazonaws.com invoke {function} with SourceArn = this target group"
                ));
            }
        }
    }
    problems
}

/// IAM auth everywhere: the service network and every service use `AWS_IAM`, every service has
/// an auth policy, and every auth-policy statement allows exactly `vpc-lattice-svcs:Invoke` on
/// paths of services of this template (`${XService.Arn}/*`).
pub fn auth_policies(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for kind in [
        "AWS::VpcLattice::ServiceNetwork",
        "AWS::VpcLattice::Service",
    ] {
        for (id, resource) in template.of_type(kind) {
            if resource["Properties"]["AuthType"] != "AWS_IAM" {
                problems.push(format!("{id}: AuthType must be AWS_IAM"));
            }
        }
    }
    let policies: Vec<(&str, &Value)> = template.of_type("AWS::VpcLattice::AuthPolicy").collect();
    for (service, _) in template.of_type("AWS::VpcLattice::Service") {
        let has_policy = policies.iter().any(|(_, p)| {
            reference(&p["Properties"]["ResourceIdentifier"]).map(|(r, _)| r) == Some(service)
        });
        if !has_policy {
            problems.push(format!("{service}: no auth policy"));
        }
    }
    for (id, policy) in policies {
        for statement in strings(&policy["Properties"]["Policy"]["Statement"]) {
            let actions = strings(&statement["Action"]);
            if actions.is_empty() || actions.iter().any(|a| *a != "vpc-lattice-svcs:Invoke") {
                problems.push(format!(
                    "{id}: actions {} - only vpc-lattice-svcs:Invoke is allowed",
                    statement["Action"]
                ));
            }
            if statement["Effect"] != "Allow" {
                problems.push(format!("{id}: Effect {}", statement["Effect"]));
            }
            for resource in strings(&statement["Resource"]) {
                if service_paths(template, resource).is_none() {
                    problems.push(format!(
                        "{id}: resource {resource} is not a service of this template's paths (${{XService.Arn}}/*)"
                    ));
                }
            }
        }
    }
    problems
}

/// The service a `${XService.Arn}/*` resource names.
pub fn service_paths<'a>(template: &Template, resource: &'a Value) -> Option<&'a str> {
    let text = sub_text(resource)?;
    let id = text.strip_prefix("${")?.strip_suffix(".Arn}/*")?;
    is_type(template, id, "AWS::VpcLattice::Service").then_some(id)
}

/// Every function: X-Ray active tracing, `provided.al2023` on arm64, built by cargo-lambda from a
/// crate in this repository that really has the binary named in `BuildProperties`.
pub fn functions(template: &Template, template_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, function) in template.of_type(FUNCTION) {
        let property = |name| template.function_property(id, name);
        if property("Tracing") != Some(&Value::from("Active")) {
            problems.push(format!("{id}: Tracing must be Active"));
        }
        if property("Runtime") != Some(&Value::from("provided.al2023")) {
            problems.push(format!("{id}: Runtime must be provided.al2023"));
        }
        if property("Architectures") != Some(&serde_json::json!(["arm64"])) {
            problems.push(format!("{id}: Architectures must be [arm64]"));
        }
        if property("Handler") != Some(&Value::from("bootstrap")) {
            problems.push(format!("{id}: Handler must be bootstrap"));
        }
        if function["Metadata"]["BuildMethod"] != "rust-cargolambda" {
            problems.push(format!(
                "{id}: Metadata.BuildMethod must be rust-cargolambda"
            ));
        }
        let Some(binary) = function["Metadata"]["BuildProperties"]["Binary"].as_str() else {
            problems.push(format!("{id}: no Metadata.BuildProperties.Binary"));
            continue;
        };
        let Some(code) = property("CodeUri").and_then(Value::as_str) else {
            problems.push(format!("{id}: no CodeUri"));
            continue;
        };
        let crate_dir = template_dir.join(code);
        if !crate_has_binary(&crate_dir, binary) {
            problems.push(format!(
                "{id}: {} builds no binary named {binary}",
                crate_dir.display()
            ));
        }
        if property("Role").is_none() {
            problems.push(format!("{id}: no explicit least-privilege Role"));
        }
    }
    problems
}

/// A crate builds `binary` when it is the package's own binary (`src/main.rs`), a
/// `src/bin/<binary>.rs`, or a `[[bin]]` of that name.
pub(crate) fn crate_has_binary(crate_dir: &Path, binary: &str) -> bool {
    let Ok(manifest) = std::fs::read_to_string(crate_dir.join("Cargo.toml")) else {
        return false;
    };
    let package_is_binary = manifest
        .lines()
        .any(|line| line.trim() == format!("name = \"{binary}\""))
        && crate_dir.join("src/main.rs").exists();
    package_is_binary || crate_dir.join(format!("src/bin/{binary}.rs")).exists()
}

/// Roles: no managed policies, no wildcard actions, and a bare `*` resource only for X-Ray's
/// actions (and, on roles of functions attached to a VPC, the VPC-attach actions; on the cost
/// report's role, `cost::UNSCOPED_ACTIONS`, which have no resource type). Other wildcards may only
/// end a scoped ARN: a log group's streams, a Lattice service's paths, the objects of a bucket of
/// this template, the paths of its OpenSearch domain or of the domain the telemetry extension is
/// given, or what `cost::scoped_wildcard` admits (a bucket's `reports/` objects, a log group of
/// this template as `…:log-group:NAME:*`). Conditional policies (`Fn::If`) count with every
/// branch.
pub fn least_privilege(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let vpc_roles: BTreeSet<&str> = template
        .of_type(FUNCTION)
        .filter(|(id, _)| template.function_property(id, "VpcConfig").is_some())
        .filter_map(|(id, _)| reference(template.function_property(id, "Role")?))
        .map(|(role, _)| role)
        .collect();
    for (id, role) in template.of_type("AWS::IAM::Role") {
        let properties = &role["Properties"];
        if properties.get("ManagedPolicyArns").is_some() {
            problems.push(format!("{id}: managed policies are broader than needed"));
        }
        let mut allowed_star: BTreeSet<&str> = XRAY_ACTIONS.iter().copied().collect();
        if vpc_roles.contains(id) {
            allowed_star.extend(VPC_ATTACH_ACTIONS);
        }
        if cost::report_role(template) == Some(id) {
            allowed_star.extend(cost::UNSCOPED_ACTIONS);
        }
        for policy in strings(&properties["Policies"]) {
            for statement in strings(&policy["PolicyDocument"]["Statement"]) {
                let actions: Vec<&str> = strings(&statement["Action"])
                    .into_iter()
                    .filter_map(Value::as_str)
                    .collect();
                for action in &actions {
                    if action.contains('*') {
                        problems.push(format!("{id}: wildcard action {action}"));
                    }
                }
                for resource in strings(&statement["Resource"]) {
                    if resource == "*" {
                        for action in &actions {
                            if !allowed_star.contains(action) {
                                problems.push(format!("{id}: {action} on every resource (*)"));
                            }
                        }
                    } else if let Some(text) = sub_text(resource) {
                        let scoped = text.ends_with(":log-stream:*")
                            || service_paths(template, resource).is_some()
                            || analytics::scoped_wildcard(template, text)
                            || telemetry::scoped_wildcard(template, text)
                            || cost::scoped_wildcard(template, text);
                        if text.contains('*') && !scoped {
                            problems.push(format!("{id}: wildcard resource {text}"));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// One metric a dashboard shows: namespace, name, and dimension name → value (a `${…}` reference).
#[derive(Clone, Debug, PartialEq)]
pub struct DashboardMetric {
    /// The namespace.
    pub namespace: String,
    /// The metric name.
    pub name: String,
    /// Dimension names in the order given, with the value (or search term) each is matched on.
    pub dimensions: Vec<(String, String)>,
}

/// Every metric the dashboards show, from plain metric rows and from `SEARCH('{ns,dims…}
/// MetricName="…" "<value>"', …)` expressions.
pub fn dashboard_metrics(template: &Template) -> Result<Vec<DashboardMetric>, String> {
    let mut metrics = Vec::new();
    for (id, dashboard) in template.of_type("AWS::CloudWatch::Dashboard") {
        let body = sub_text(&dashboard["Properties"]["DashboardBody"])
            .ok_or_else(|| format!("{id}: DashboardBody is not a string or !Sub"))?;
        let body: Value =
            serde_json::from_str(body).map_err(|e| format!("{id}: body is not JSON: {e}"))?;
        for widget in strings(&body["widgets"]) {
            for row in strings(&widget["properties"]["metrics"]) {
                let items = row.as_array().ok_or_else(|| format!("{id}: row {row}"))?;
                if let Some(expression) = items
                    .first()
                    .and_then(|first| first.get("expression"))
                    .and_then(Value::as_str)
                {
                    metrics.extend(searched_metrics(expression)?);
                    continue;
                }
                let strings: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                let [namespace, name, pairs @ ..] = strings.as_slice() else {
                    return Err(format!("{id}: metric row {row} has no namespace and name"));
                };
                if pairs.len() % 2 != 0 {
                    return Err(format!("{id}: metric row {row} has an odd dimension list"));
                }
                metrics.push(DashboardMetric {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    dimensions: pairs
                        .chunks(2)
                        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                        .collect(),
                });
            }
        }
    }
    Ok(metrics)
}

/// The metrics one expression searches for. Each `SEARCH` must name its schema (`{ns,dims}`), a
/// `MetricName="…"` and one quoted term that picks the resource; the term is recorded as the value
/// of the schema's last dimension.
fn searched_metrics(expression: &str) -> Result<Vec<DashboardMetric>, String> {
    let mut found = Vec::new();
    for (start, marker) in expression.match_indices("SEARCH('") {
        let query = expression[start + marker.len()..]
            .split_once('\'')
            .map(|(query, _)| query)
            .ok_or_else(|| format!("unterminated SEARCH in {expression}"))?;
        let schema = query
            .strip_prefix('{')
            .and_then(|q| q.split_once('}'))
            .map(|(schema, _)| schema)
            .ok_or_else(|| format!("SEARCH without a {{namespace,dimensions}} schema: {query}"))?;
        let mut parts = schema.split(',');
        let namespace = parts.next().unwrap_or_default().to_owned();
        let dimension_names: Vec<&str> = parts.collect();
        let name = query
            .split_once("MetricName=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name.to_owned())
            .ok_or_else(|| format!("SEARCH without MetricName=\"…\": {query}"))?;
        let last = dimension_names.last().copied().unwrap_or_default();
        let term = resource_term(query, last)?;
        found.push(DashboardMetric {
            namespace,
            name,
            dimensions: dimension_names
                .iter()
                .map(|d| {
                    let value = if *d == last { term } else { "*" };
                    (d.to_string(), value.to_owned())
                })
                .collect(),
        });
    }
    if found.is_empty() {
        return Err(format!("expression without SEARCH: {expression}"));
    }
    Ok(found)
}

/// The term of a SEARCH query that picks the resource: the text after `MetricName="…"`, either a
/// quoted term (`"${X.Id}"`) or an exact match on the schema's last dimension
/// (`TableName="${X}"`). A designator on any other dimension is refused, since the term is
/// recorded as the value of the last one.
fn resource_term<'a>(query: &'a str, last: &str) -> Result<&'a str, String> {
    let rest = query
        .split_once("MetricName=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(_, rest)| rest.trim())
        .unwrap_or_default();
    let (designator, quoted) = match rest.split_once('"') {
        Some((designator, quoted)) => (designator, quoted),
        None => return Err(format!("SEARCH without a quoted resource term: {query}")),
    };
    let term = quoted
        .strip_suffix('"')
        .filter(|term| !term.contains('"'))
        .ok_or_else(|| format!("SEARCH without a quoted resource term: {query}"))?;
    match designator.strip_suffix('=') {
        None if designator.is_empty() => Ok(term),
        Some(dimension) if dimension == last => Ok(term),
        Some(dimension) => Err(format!(
            "SEARCH term names {dimension}, not the schema's last dimension {last}: {query}"
        )),
        None => Err(format!("SEARCH without a quoted resource term: {query}")),
    }
}

/// Every dashboard metric is a real one, with exactly the dimensions it is published with, and
/// each dimension value refers to a resource of the right type in this template (`${X}` for a
/// function's or a table's name, `${X.Id}` for a Lattice service or target group).
pub fn dashboard(template: &Template) -> Vec<String> {
    let metrics = match dashboard_metrics(template) {
        Ok(metrics) => metrics,
        Err(problem) => return vec![problem],
    };
    if metrics.is_empty() {
        return vec!["no dashboard metrics".to_owned()];
    }
    let mut problems = Vec::new();
    for metric in metrics {
        let names: BTreeSet<&str> = metric.dimensions.iter().map(|(d, _)| d.as_str()).collect();
        let family = METRIC_FAMILIES.iter().find(|f| {
            f.namespace == metric.namespace
                && f.names.contains(&metric.name.as_str())
                && f.dimensions.iter().copied().collect::<BTreeSet<_>>() == names
        });
        let Some(family) = family else {
            problems.push(format!(
                "{}/{} with dimensions {names:?} is not a published metric",
                metric.namespace, metric.name
            ));
            continue;
        };
        let resource_dimension = family.dimensions.last().copied().unwrap_or_default();
        let value = metric
            .dimensions
            .iter()
            .find(|(d, _)| d == resource_dimension)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let id = value
            .strip_prefix("${")
            .and_then(|v| v.strip_suffix('}'))
            .map(|v| v.strip_suffix(".Id").unwrap_or(v));
        if !id.is_some_and(|id| is_type(template, id, family.resource_type)) {
            problems.push(format!(
                "{}/{}: {resource_dimension} = {value} is not a {} of this template",
                metric.namespace, metric.name, family.resource_type
            ));
        }
    }
    problems
}

/// Logs: the service network's access log goes to a `/aws/vendedlogs/` log group of this template,
/// and every log group has a retention. A second subscription may send it to a Firehose stream of
/// this template (what that stream must be is `analytics`' to check).
pub fn access_logs(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, group) in template.of_type("AWS::Logs::LogGroup") {
        if group["Properties"].get("RetentionInDays").is_none() {
            problems.push(format!("{id}: no RetentionInDays"));
        }
    }
    let networks: Vec<&str> = template
        .of_type("AWS::VpcLattice::ServiceNetwork")
        .map(|(id, _)| id)
        .collect();
    for network in networks {
        let subscriptions: Vec<(&str, &Value)> = template
            .of_type("AWS::VpcLattice::AccessLogSubscription")
            .filter(|(_, s)| {
                reference(&s["Properties"]["ResourceIdentifier"]).map(|(r, _)| r) == Some(network)
            })
            .collect();
        if subscriptions.is_empty() {
            problems.push(format!("{network}: no access-log subscription"));
            continue;
        }
        let mut to_log_group = false;
        for (id, subscription) in subscriptions {
            let arn = &subscription["Properties"]["DestinationArn"];
            if reference(arn).is_some_and(|(stream, attribute)| {
                attribute == Some("Arn") && is_type(template, stream, analytics::STREAM)
            }) {
                continue;
            }
            to_log_group = true;
            let destination = sub_text(arn).unwrap_or("");
            if !is_vended_log_group(template, destination) {
                problems.push(format!(
                    "{id}: destination {destination} is not a /aws/vendedlogs/ log group of this template"
                ));
            }
        }
        if !to_log_group {
            problems.push(format!(
                "{network}: no access-log subscription to a /aws/vendedlogs/ log group"
            ));
        }
    }
    problems
}

/// Whether `destination` (`…:log-group:${Group}`) is a log group of this template whose name
/// starts with `/aws/vendedlogs/`.
fn is_vended_log_group(template: &Template, destination: &str) -> bool {
    let group = destination
        .rsplit_once(":log-group:${")
        .and_then(|(_, rest)| rest.strip_suffix('}'));
    let name = group.and_then(|g| template.resource(g)).and_then(|g| {
        g["Properties"]["LogGroupName"]
            .as_str()
            .or_else(|| sub_text(&g["Properties"]["LogGroupName"]))
    });
    name.is_some_and(|n| n.starts_with("/aws/vendedlogs/"))
}

/// Tables: every DynamoDB table is a service's own ([`SERVICE_TABLES`]) with its fixed name and
/// single String partition key, on demand (`PAY_PER_REQUEST`, no provisioned throughput), with
/// TTL on [`TTL_ATTRIBUTE`], point-in-time recovery, and an explicit `DeletionPolicy` and
/// `UpdateReplacePolicy` (a choice made, not CloudFormation's default).
pub fn tables(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, table) in template.of_type(TABLE) {
        let properties = &table["Properties"];
        if properties["BillingMode"] != "PAY_PER_REQUEST" {
            problems.push(format!(
                "{id}: BillingMode must be PAY_PER_REQUEST, is {}",
                properties["BillingMode"]
            ));
        }
        if properties.get("ProvisionedThroughput").is_some() {
            problems.push(format!(
                "{id}: an on-demand table takes no ProvisionedThroughput"
            ));
        }
        let ttl = serde_json::json!({"AttributeName": TTL_ATTRIBUTE, "Enabled": true});
        if properties["TimeToLiveSpecification"] != ttl {
            problems.push(format!(
                "{id}: TimeToLiveSpecification must be {ttl}, is {}",
                properties["TimeToLiveSpecification"]
            ));
        }
        if properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] != true {
            problems.push(format!("{id}: point-in-time recovery must be enabled"));
        }
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            if !table[policy].is_string() {
                problems.push(format!("{id}: no explicit {policy}"));
            }
        }
        if !SERVICE_TABLES.iter().any(|spec| spec.table == id) {
            problems.push(format!("{id}: a table no service owns"));
        }
    }
    for spec in SERVICE_TABLES {
        let Some(table) = template.resource(spec.table).filter(|r| r["Type"] == TABLE) else {
            problems.push(format!("{}: no {TABLE} of that id", spec.table));
            continue;
        };
        let properties = &table["Properties"];
        if properties["TableName"] != spec.name {
            problems.push(format!(
                "{}: TableName must be {} (the X-Ray node and loadgen's map), is {}",
                spec.table, spec.name, properties["TableName"]
            ));
        }
        let key = serde_json::json!([{"AttributeName": spec.key, "KeyType": "HASH"}]);
        let attributes = serde_json::json!([{"AttributeName": spec.key, "AttributeType": "S"}]);
        if properties["KeySchema"] != key || properties["AttributeDefinitions"] != attributes {
            problems.push(format!(
                "{}: the key must be {} alone (String, HASH)",
                spec.table, spec.key
            ));
        }
    }
    problems
}

/// The statements of a policy document that allow anything.
fn allow_statements(document: &Value) -> Vec<&Value> {
    strings(&document["Statement"])
        .into_iter()
        .filter(|statement| statement["Effect"] == "Allow")
        .collect()
}

/// The actions of an Allow statement that reach DynamoDB: `dynamodb:…` (IAM action names are
/// case-insensitive) and the bare `*`.
fn dynamodb_actions(statement: &Value) -> Vec<&str> {
    strings(&statement["Action"])
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|action| *action == "*" || action.to_ascii_lowercase().starts_with("dynamodb:"))
        .collect()
}

/// DynamoDB access: each service's role allows exactly its [`ServiceTable::actions`], every one on
/// exactly `!GetAtt <its table>.Arn` (no other resource, no index or wildcard ARN, no wildcard
/// action); no other role, and no policy outside a role, allows any DynamoDB action; no Allow
/// statement uses `NotAction` or `NotResource`, which grant by exclusion.
pub fn table_access(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let mut owners: BTreeMap<&str, &ServiceTable> = BTreeMap::new();
    for spec in SERVICE_TABLES {
        match template
            .function_property(spec.function, "Role")
            .and_then(reference)
        {
            Some((role, Some("Arn"))) if is_type(template, role, "AWS::IAM::Role") => {
                if let Some(other) = owners.insert(role, spec) {
                    problems.push(format!(
                        "{role}: runs both {} and {}; each table's owner needs a role of its own",
                        other.function, spec.function
                    ));
                }
            }
            _ => problems.push(format!(
                "{}: no role of this template to grant {} to",
                spec.function, spec.table
            )),
        }
    }
    for (id, role) in template.of_type("AWS::IAM::Role") {
        let owned = owners.get(id).copied();
        let mut granted: BTreeMap<String, &str> = BTreeMap::new();
        for policy in strings(&role["Properties"]["Policies"]) {
            for statement in allow_statements(&policy["PolicyDocument"]) {
                for exclusion in ["NotAction", "NotResource"] {
                    if statement.get(exclusion).is_some() {
                        problems.push(format!(
                            "{id}: an Allow with {exclusion} grants by exclusion (DynamoDB included)"
                        ));
                    }
                }
                let actions = dynamodb_actions(statement);
                if actions.is_empty() {
                    continue;
                }
                let Some(spec) = owned else {
                    for action in actions {
                        problems.push(format!(
                            "{id}: {action} - only the owners of {} may use DynamoDB",
                            SERVICE_TABLES
                                .iter()
                                .map(|s| s.table)
                                .collect::<Vec<_>>()
                                .join(" and ")
                        ));
                    }
                    continue;
                };
                for action in &actions {
                    if action.contains('*') {
                        problems.push(format!("{id}: wildcard action {action}"));
                    }
                    granted.insert(action.to_ascii_lowercase(), action);
                }
                let resources = strings(&statement["Resource"]);
                let exact = resources.len() == 1
                    && reference(resources[0]) == Some((spec.table, Some("Arn")));
                if !exact {
                    problems.push(format!(
                        "{id}: {} on {}, not exactly {}'s ARN (!GetAtt {}.Arn)",
                        actions.join(", "),
                        statement["Resource"],
                        spec.table,
                        spec.table
                    ));
                }
            }
        }
        if let Some(spec) = owned {
            let wanted: BTreeSet<String> = spec
                .actions
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect();
            let have: BTreeSet<String> = granted.keys().cloned().collect();
            if have != wanted {
                problems.push(format!(
                    "{id}: DynamoDB actions {:?}, must be exactly {:?} (what {} calls)",
                    granted.values().collect::<Vec<_>>(),
                    spec.actions,
                    spec.function
                ));
            }
        }
    }
    for kind in [
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::RolePolicy",
    ] {
        for (id, policy) in template.of_type(kind) {
            let reaches = allow_statements(&policy["Properties"]["PolicyDocument"])
                .into_iter()
                .any(|s| !dynamodb_actions(s).is_empty() || s.get("NotAction").is_some());
            if reaches {
                problems.push(format!(
                    "{id}: DynamoDB access outside a table owner's own role"
                ));
            }
        }
    }
    problems
}

/// Table names in the environment: each owner's [`ServiceTable::variable`] is `!Ref <its table>`
/// (the name CloudFormation gave it, not a literal), and no function has a variable naming a table
/// that is not its own, but the cost report's `cost::SERVICES_VARIABLE`, which names every table to
/// read its metrics (its role may call no DynamoDB action: [`table_access`]).
pub fn table_variables(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for spec in SERVICE_TABLES {
        let variables = template
            .function_property(spec.function, "Environment")
            .map(|e| &e["Variables"]);
        match variables.and_then(|v| v.get(spec.variable)) {
            None => problems.push(format!(
                "{}: no {} (its table's name)",
                spec.function, spec.variable
            )),
            Some(value) if reference(value) == Some((spec.table, None)) => {}
            Some(value) => problems.push(format!(
                "{}: {} must be !Ref {}, is {value}",
                spec.function, spec.variable, spec.table
            )),
        }
    }
    for (function, _) in template.of_type(FUNCTION) {
        let Some(variables) = template
            .function_property(function, "Environment")
            .and_then(|e| e["Variables"].as_object())
        else {
            continue;
        };
        for (variable, value) in variables {
            if function == cost::FUNCTION && variable == cost::SERVICES_VARIABLE {
                continue;
            }
            let own = SERVICE_TABLES
                .iter()
                .any(|s| s.function == function && s.variable == variable);
            let named = reference(value)
                .map(|(id, _)| id)
                .or_else(|| {
                    sub_text(value).and_then(|text| {
                        SERVICE_TABLES
                            .iter()
                            .map(|s| s.table)
                            .find(|table| text.contains(&format!("${{{table}")))
                    })
                })
                .filter(|id| is_type(template, id, TABLE));
            if let (false, Some(table)) = (own, named) {
                problems.push(format!(
                    "{function}: {variable} names {table}, which is not its table"
                ));
            }
        }
    }
    problems
}

/// Every rule over one template. The analytics rules read the index template from the
/// repository root (`template_dir/../..`), as `sam build` reads the crates from there; the
/// telemetry rules read the layer's crate and Makefile; the cost rules `samconfig.toml` (the
/// stack's tags).
pub fn all(template: &Template, template_dir: &Path) -> Vec<String> {
    let index_patterns =
        analytics::index_patterns(&template_dir.join("../..").join(analytics::INDEX_TEMPLATE));
    let (index_patterns, mut unreadable) = match index_patterns {
        Ok(patterns) => (patterns, Vec::new()),
        Err(problem) => (Vec::new(), vec![problem]),
    };
    let samconfig_path = template_dir.join("samconfig.toml");
    let samconfig = std::fs::read_to_string(&samconfig_path).unwrap_or_else(|e| {
        unreadable.push(format!("{}: {e}", samconfig_path.display()));
        String::new()
    });
    [
        unreadable,
        analytics::all(template, &index_patterns),
        telemetry::all(template, template_dir),
        cost::all(template, &samconfig),
        lambda_target_groups(template),
        auth_policies(template),
        functions(template, template_dir),
        least_privilege(template),
        dashboard(template),
        access_logs(template),
        tables(template),
        table_access(template),
        table_variables(template),
    ]
    .concat()
}
