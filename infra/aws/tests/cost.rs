//! The cost report's rules (`aws_template::cost`), each shown to hold on the real template and to
//! fail on a copy broken the way a person might break it: the parameter and its conditions, the
//! core stack left alone, the bucket, the schedule and who may invoke the function, the function
//! itself, its role's exact grants, what it is given, the stack's cost-allocation tag, and the
//! anomaly monitor and subscription; and the hooks the other rules keep for it (least privilege,
//! table variables, the analytics' buckets) admitting exactly the report and nothing more.

use std::collections::BTreeSet;

use aws_template::{analytics, checks, cost};
use serde_json::{json, Value};

mod support;
use support::{broken, repository_root, source_of, template, template_dir};

fn samconfig() -> String {
    std::fs::read_to_string(template_dir().join("samconfig.toml")).unwrap()
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

fn assert_has(problems: &[String], wanted: &str) {
    assert!(
        problems.iter().any(|p| p == wanted),
        "{wanted:?} not among {problems:#?}"
    );
}

/// A copy of the template with one change to one resource.
fn with_resource(id: &'static str, change: impl FnOnce(&mut Value)) -> aws_template::Template {
    broken(move |root| change(&mut root["Resources"][id]))
}

/// A copy with one change to the report's environment.
fn with_variables(change: impl FnOnce(&mut Value)) -> aws_template::Template {
    with_resource(cost::FUNCTION, |f| {
        change(&mut f["Properties"]["Environment"]["Variables"])
    })
}

/// The role's policy statement `index` of policy `policy`, changed.
fn with_statement(
    policy: usize,
    index: usize,
    change: impl FnOnce(&mut Value),
) -> aws_template::Template {
    with_resource("CostReportRole", |r| {
        change(&mut r["Properties"]["Policies"][policy]["PolicyDocument"]["Statement"][index])
    })
}

const RESOURCES: &[&str] = &[
    "CostReportBucket",
    "CostReportBucketPolicy",
    "CostReportLogGroup",
    "CostReportRole",
    "CostReportFunction",
    "CostReportSchedule",
    "CostReportSchedulePermission",
    "CostAnomalyMonitor",
];

const LOGS: &str = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:";

/// What the role must allow `logs:StartQuery` and `logs:GetQueryResults` on.
fn queried_log_groups() -> BTreeSet<String> {
    [
        "AccessLogGroup",
        "OrderLogGroup",
        "PaymentLogGroup",
        "InventoryLogGroup",
    ]
    .iter()
    .flat_map(|g| [format!("{LOGS}${{{g}}}"), format!("{LOGS}${{{g}}}:*")])
    .collect()
}

#[test]
fn the_template_keeps_every_cost_rule() {
    let template = template();
    let problems = cost::all(&template, &samconfig());
    assert!(problems.is_empty(), "{problems:#?}");
    // The hooks: the report's `*` resources and scoped wildcards are no least-privilege problem,
    // its STACK_SERVICES no table-variable problem, its bucket no analytics bucket, and its role
    // no DynamoDB grant.
    for problems in [
        checks::least_privilege(&template),
        checks::table_variables(&template),
        checks::table_access(&template),
        analytics::conditions(&template),
        analytics::backup_buckets(&template),
        checks::access_logs(&template),
    ] {
        assert!(problems.is_empty(), "{problems:#?}");
    }
    let schedule = &template.resource("CostReportSchedule").unwrap()["Properties"];
    assert_eq!(schedule["ScheduleExpression"], "cron(15 1 * * ? *)");
}

#[test]
fn the_report_is_off_by_default_and_every_piece_of_it_carries_its_condition() {
    let template = template();
    assert_eq!(
        template.root["Parameters"][cost::PARAMETER]["Default"],
        "false"
    );
    for id in RESOURCES {
        assert_eq!(
            template.resource(id).unwrap()["Condition"],
            cost::CONDITION,
            "{id}"
        );
    }
    assert_eq!(
        template.resource("CostAnomalySubscription").unwrap()["Condition"],
        cost::ALERTS_CONDITION
    );
    for (name, output) in template.root["Outputs"].as_object().unwrap() {
        assert_eq!(
            output["Condition"] == cost::CONDITION,
            name.starts_with("Cost"),
            "{name}"
        );
    }
    let on_by_default = broken(|root| root["Parameters"]["CostReport"]["Default"] = json!("true"));
    assert_eq!(
        cost::conditions(&on_by_default),
        ["CostReport: must be a String parameter, AllowedValues [\"true\", \"false\"], Default \"false\""]
    );
    let other_value = broken(|root| {
        root["Conditions"]["WithCostReport"]["Fn::Equals"][1] = json!("yes");
    });
    assert_eq!(
        cost::conditions(&other_value),
        [format!(
            "WithCostReport: must be {}",
            json!({"Fn::Equals": [{"Ref": "CostReport"}, "true"]})
        )]
    );
    // A resource of the report's types without the condition, and what only it used.
    let monitor = with_resource("CostAnomalyMonitor", |m| remove(m, "Condition"));
    assert_eq!(
        cost::conditions(&monitor),
        [
            "CostAnomalyMonitor: a cost-report AWS::CE::AnomalyMonitor without a Condition implying WithCostReport",
            "CostAnomalyMonitor: used only by the cost report (CostAnomalySubscription, Outputs.CostAnomalyMonitorArn), but deployed without WithCostReport",
        ]
    );
    // A role of no listed type: only the report runs as it, and it names the report's resources.
    let role = with_resource("CostReportRole", |r| remove(r, "Condition"));
    assert_eq!(
        cost::conditions(&role),
        [
            "CostReportRole: used only by the cost report (CostReportFunction), but deployed without WithCostReport",
            "CostReportRole: names CostReportBucket, which belongs to the cost report: the core stack must not change with CostReport",
            "CostReportRole: names CostReportLogGroup, which belongs to the cost report: the core stack must not change with CostReport",
        ]
    );
}

#[test]
fn the_core_stack_names_nothing_of_the_report_not_even_under_its_condition() {
    // An Fn::If on the report's condition still changes the core stack when it is on.
    let core_variable = with_resource("OrderFunction", |f| {
        f["Properties"]["Environment"]["Variables"]["REPORTS"] = json!({"Fn::If": [
            "WithCostReport", {"Ref": "CostReportBucket"}, {"Ref": "AWS::NoValue"}
        ]});
    });
    assert_eq!(
        cost::conditions(&core_variable),
        [
            "OrderFunction: names CostReportBucket, which belongs to the cost report: the core stack must not change with CostReport",
            "OrderFunction: names WithCostReport, which belongs to the cost report: the core stack must not change with CostReport",
        ]
    );
    let output = broken(|root| remove(&mut root["Outputs"]["CostReportFunctionName"], "Condition"));
    assert_eq!(
        cost::conditions(&output),
        ["Outputs.CostReportFunctionName: names CostReportFunction, which belongs to the cost report: the core stack must not change with CostReport"]
    );
    // A condition on the report's parameters that does not need the report.
    let condition = broken(|root| {
        root["Conditions"]["HasCostAnomalyEmail"] =
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "CostAnomalyEmail"}, ""]}]});
    });
    assert_eq!(
        cost::conditions(&condition),
        ["Conditions.HasCostAnomalyEmail: names CostAnomalyEmail, which belongs to the cost report: the core stack must not change with CostReport"]
    );
    // The dashboard waiting for the report.
    let dashboard = with_resource("Dashboard", |d| {
        d["DependsOn"] = json!("CostReportFunction")
    });
    assert_eq!(
        cost::conditions(&dashboard),
        ["Dashboard: names CostReportFunction, which belongs to the cost report: the core stack must not change with CostReport"]
    );
}

#[test]
fn the_bucket_is_encrypted_private_without_acls_expiring_and_tls_only() {
    let bucket = |change: fn(&mut Value)| {
        with_resource("CostReportBucket", move |b| change(&mut b["Properties"]))
    };
    for (change, problem) in [
        (
            (|p: &mut Value| remove(p, "BucketEncryption")) as fn(&mut Value),
            "CostReportBucket: no default server-side encryption",
        ),
        (
            |p| p["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] = json!(false),
            "CostReportBucket: PublicAccessBlockConfiguration.BlockPublicPolicy must be true",
        ),
        (
            |p| p["AccessControl"] = json!("PublicRead"),
            "CostReportBucket: ACLs must be disabled (OwnershipControls BucketOwnerEnforced, no AccessControl)",
        ),
        (
            |p| p["OwnershipControls"]["Rules"][0]["ObjectOwnership"] = json!("ObjectWriter"),
            "CostReportBucket: ACLs must be disabled (OwnershipControls BucketOwnerEnforced, no AccessControl)",
        ),
        (
            |p| remove(&mut p["LifecycleConfiguration"]["Rules"][0], "ExpirationInDays"),
            "CostReportBucket: no enabled lifecycle rule that expires reports and aborts incomplete multipart uploads",
        ),
    ] {
        assert_eq!(cost::report_bucket(&bucket(change)), [problem]);
    }
    let tls = "CostReportBucket: no bucket policy denying s3:* on the bucket and its objects when aws:SecureTransport is false";
    let statement = |change: fn(&mut Value)| {
        with_resource("CostReportBucketPolicy", move |p| {
            change(&mut p["Properties"]["PolicyDocument"]["Statement"][0])
        })
    };
    assert_eq!(
        cost::report_bucket(&statement(
            |s| s["Condition"]["Bool"]["aws:SecureTransport"] = json!("true")
        )),
        [tls]
    );
    assert_eq!(
        cost::report_bucket(&statement(
            |s| s["Resource"] = json!({"Fn::GetAtt": ["CostReportBucket", "Arn"]})
        )),
        [tls]
    );
    // A bucket policy that grants: the reports are written by the report's role alone.
    let public_read = with_resource("CostReportBucketPolicy", |p| {
        p["Properties"]["PolicyDocument"]["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": {"Fn::Sub": "${CostReportBucket.Arn}/*"}
            }));
    });
    assert_eq!(
        cost::report_bucket(&public_read),
        ["CostReportBucketPolicy: a bucket policy statement that is not a Deny (\"Allow\"): only the report's role writes to CostReportBucket"]
    );
}

#[test]
fn a_schedule_is_daily_only_with_a_fixed_cron_time() {
    for (expression, daily) in [
        ("cron(15 1 * * ? *)", true),
        ("cron(0 23 ? * * *)", true),
        ("rate(1 day)", false),
        ("rate(24 hours)", false),
        ("cron(0/15 * * * ? *)", false),
        ("cron(15 1 ? * MON *)", false),
        ("cron(15 1 1 * ? *)", false),
        ("cron(15 1 * * ? 2027)", false),
        ("cron(60 1 * * ? *)", false),
        ("cron(15 24 * * ? *)", false),
        ("cron(15 1 * * ?)", false),
        ("cron(15 1 * * * *)", false),
        ("", false),
    ] {
        assert_eq!(cost::is_daily(expression), daily, "{expression}");
    }
    let with_expression = |expression: &'static str| {
        with_resource("CostReportSchedule", move |r| {
            r["Properties"]["ScheduleExpression"] = json!(expression)
        })
    };
    assert_eq!(
        cost::schedule(&with_expression("rate(1 day)")),
        ["CostReportSchedule: ScheduleExpression \"rate(1 day)\" must run once a day at a fixed UTC time (cron(M H * * ? *))"]
    );
    assert_eq!(
        cost::schedule(&with_expression("cron(0/15 * * * ? *)")),
        ["CostReportSchedule: ScheduleExpression \"cron(0/15 * * * ? *)\" must run once a day at a fixed UTC time (cron(M H * * ? *))"]
    );
    let disabled = with_resource("CostReportSchedule", |r| {
        r["Properties"]["State"] = json!("DISABLED")
    });
    assert_eq!(
        cost::schedule(&disabled),
        ["CostReportSchedule: State must be ENABLED, is \"DISABLED\""]
    );
    let unscheduled = broken(|root| {
        let resources = root["Resources"].as_object_mut().unwrap();
        resources.remove("CostReportSchedule");
        resources.remove("CostReportSchedulePermission");
    });
    assert_eq!(
        cost::schedule(&unscheduled),
        ["CostReportFunction: no AWS::Events::Rule runs it"]
    );
}

#[test]
fn only_its_schedule_may_invoke_the_report() {
    let permission = |change: fn(&mut Value)| {
        with_resource("CostReportSchedulePermission", move |p| {
            change(&mut p["Properties"])
        })
    };
    let unscoped = permission(|p| remove(p, "SourceArn"));
    assert_eq!(
        cost::schedule(&unscoped),
        [
            "CostReportSchedule: no AWS::Lambda::Permission lets events.amazonaws.com invoke CostReportFunction with SourceArn = this rule",
            "CostReportSchedulePermission: lets \"events.amazonaws.com\" invoke CostReportFunction (SourceArn null); only its schedule may",
        ]
    );
    let other_principal = permission(|p| p["Principal"] = json!("s3.amazonaws.com"));
    assert_eq!(
        cost::schedule(&other_principal),
        [
            "CostReportSchedule: no AWS::Lambda::Permission lets events.amazonaws.com invoke CostReportFunction with SourceArn = this rule",
            "CostReportSchedulePermission: lets \"s3.amazonaws.com\" invoke CostReportFunction (SourceArn {\"Fn::GetAtt\":[\"CostReportSchedule\",\"Arn\"]}); only its schedule may",
        ]
    );
    // SAM's own schedule event: its expansion would escape these rules and the deployer policy.
    let sam_event = with_resource(cost::FUNCTION, |f| {
        f["Properties"]["Events"] = json!({"Daily": {"Type": "ScheduleV2",
            "Properties": {"ScheduleExpression": "cron(15 1 * * ? *)"}}});
    });
    assert_eq!(
        cost::schedule(&sam_event),
        ["CostReportFunction: no SAM Events (their expansion escapes these rules and the deployer policy); an AWS::Events::Rule runs it"]
    );
}

#[test]
fn the_function_has_time_for_its_queries_runs_alone_and_logs_to_its_own_group() {
    let property = |name: &'static str, value: Value| {
        with_resource(cost::FUNCTION, move |f| f["Properties"][name] = value)
    };
    assert_eq!(
        cost::function(&property("Timeout", json!(60))),
        ["CostReportFunction: Timeout must be 300 to 900 s (Logs Insights queries are polled until complete), is Some(60)"]
    );
    let unreserved = with_resource(cost::FUNCTION, |f| {
        remove(&mut f["Properties"], "ReservedConcurrentExecutions")
    });
    assert_eq!(
        cost::function(&unreserved),
        ["CostReportFunction: ReservedConcurrentExecutions must be 1 (one report at a time), is None"]
    );
    assert_eq!(
        cost::function(&property(
            "LoggingConfig",
            json!({"LogGroup": {"Ref": "OrderLogGroup"}})
        )),
        ["CostReportFunction: logs to OrderLogGroup, which must be its own (carrying WithCostReport) with a RetentionInDays"]
    );
    assert_eq!(
        cost::function(&property(
            "VpcConfig",
            json!({"SubnetIds": [{"Ref": "PrivateSubnetA"}], "SecurityGroupIds": [{"Ref": "CallerSecurityGroup"}]})
        )),
        ["CostReportFunction: not in the VPC (it calls AWS APIs only, and the VPC has no NAT or endpoints)"]
    );
    assert_eq!(
        cost::function(&property("CodeUri", json!("../../services/order"))),
        ["CostReportFunction: must be built by rust-cargolambda from ../../cost/report-lambda, Binary cost-report"]
    );
    // The platform rules of every function hold for the report too.
    let passthrough = property("Tracing", json!("PassThrough"));
    assert_has(
        &checks::functions(&passthrough, &template_dir()),
        "CostReportFunction: Tracing must be Active",
    );
    let x86 = property("Architectures", json!(["x86_64"]));
    assert_has(
        &checks::functions(&x86, &template_dir()),
        "CostReportFunction: Architectures must be [arm64]",
    );
}

#[test]
fn the_role_allows_exactly_the_calls_the_report_makes_each_on_exactly_its_resources() {
    let template = template();
    assert!(cost::role(&template).is_empty());
    // Wildcard actions: the report calls two Cost Explorer actions, and four of CloudWatch Logs.
    let ce_star = with_statement(0, 2, |s| s["Action"] = json!("ce:*"));
    assert_eq!(
        cost::role(&ce_star),
        [
            "CostReportRole: ce:* - not an action the cost report calls",
            "CostReportRole: ce:GetCostAndUsage on {}, must be on exactly {\"*\"}",
            "CostReportRole: ce:GetDimensionValues on {}, must be on exactly {\"*\"}",
        ]
    );
    assert_eq!(
        checks::least_privilege(&ce_star),
        [
            "CostReportRole: wildcard action ce:*",
            "CostReportRole: ce:* on every resource (*)",
        ]
    );
    // Logs Insights on every log group of the account.
    let everywhere = with_statement(0, 1, |s| s["Resource"] = json!("*"));
    let groups = queried_log_groups();
    assert_eq!(
        cost::role(&everywhere),
        [
            format!(
                "CostReportRole: logs:GetQueryResults on {{\"*\"}}, must be on exactly {groups:?}"
            ),
            format!("CostReportRole: logs:StartQuery on {{\"*\"}}, must be on exactly {groups:?}"),
        ]
    );
    assert_eq!(
        checks::least_privilege(&everywhere),
        [
            "CostReportRole: logs:StartQuery on every resource (*)",
            "CostReportRole: logs:GetQueryResults on every resource (*)",
        ]
    );
    // One log group too few (the access log's `:*` form dropped).
    let fewer = with_statement(0, 1, |s| {
        s["Resource"].as_array_mut().unwrap().remove(1);
    });
    assert_eq!(cost::role(&fewer).len(), 2);
    // Every object of the bucket, not reports/ only: no least-privilege problem (a bucket's
    // objects are a scoped wildcard), but more than the report needs.
    let whole_bucket = with_statement(1, 0, |s| {
        s["Resource"] = json!({"Fn::Sub": "${CostReportBucket.Arn}/*"})
    });
    assert!(checks::least_privilege(&whole_bucket).is_empty());
    assert_eq!(
        cost::role(&whole_bucket),
        ["CostReportRole: s3:PutObject on {\"${CostReportBucket.Arn}/*\"}, must be on exactly {\"${CostReportBucket.Arn}/reports/*\"}"]
    );
    // An action it needs, missing.
    let no_dimensions = with_statement(0, 2, |s| s["Action"] = json!("ce:GetCostAndUsage"));
    assert_eq!(
        cost::role(&no_dimensions),
        ["CostReportRole: ce:GetDimensionValues on {}, must be on exactly {\"*\"}"]
    );
    // An action it does not call, and an action that does not exist.
    for action in ["cloudwatch:PutMetricData", "logs:StartQueries"] {
        let extra = with_statement(0, 0, move |s| {
            s["Action"] = json!(["cloudwatch:GetMetricData", action])
        });
        assert_eq!(
            cost::role(&extra),
            [format!(
                "CostReportRole: {action} - not an action the cost report calls"
            )]
        );
    }
    // The `*` the report's role may hold is its own: on another role it is a problem.
    let elsewhere = with_resource("PaymentRole", |r| {
        r["Properties"]["Policies"]
            .as_array_mut()
            .unwrap()
            .push(json!({"PolicyName": "metrics", "PolicyDocument": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": "*"}]}}));
    });
    assert_eq!(
        checks::least_privilege(&elsewhere),
        ["PaymentRole: cloudwatch:GetMetricData on every resource (*)"]
    );
    // Trusted by more than Lambda, or shared with another function.
    let trusted = with_resource("CostReportRole", |r| {
        r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] =
            json!(["lambda.amazonaws.com", "events.amazonaws.com"]);
    });
    let trust = json!([{
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"
    }]);
    assert_eq!(
        cost::role(&trusted),
        [format!("CostReportRole: must trust exactly {trust}")]
    );
    let shared = with_resource("LoadgenRunnerFunction", |f| {
        f["Properties"]["Role"] = json!({"Fn::GetAtt": ["CostReportRole", "Arn"]})
    });
    assert_eq!(
        cost::role(&shared),
        ["CostReportRole: also runs LoadgenRunnerFunction; the cost report's role is its own"]
    );
}

#[test]
fn the_function_is_given_the_stacks_own_services_log_group_bucket_and_tag() {
    assert!(cost::environment(&template()).is_empty());
    // STACK_SERVICES: every field of every entry comes from the template.
    let services = |change: fn(&mut Value)| {
        with_variables(move |v| {
            let text = v["STACK_SERVICES"]["Fn::Sub"].as_str().unwrap();
            let mut entries: Value = serde_json::from_str(text).unwrap();
            change(&mut entries);
            v["STACK_SERVICES"] = json!({"Fn::Sub": entries.to_string()});
        })
    };
    for (change, problem) in [
        (
            (|e: &mut Value| e[1]["tables"] = json!([])) as fn(&mut Value),
            "CostReportFunction: STACK_SERVICES entry payment: tables must be [\"${PaymentsTable}\"], is []",
        ),
        (
            |e| e[2]["tables"] = json!(["${PaymentsTable}"]),
            "CostReportFunction: STACK_SERVICES entry inventory: tables must be [\"${InventoryTable}\"], is [\"${PaymentsTable}\"]",
        ),
        (
            |e| e[0]["function_name"] = json!("order"),
            "CostReportFunction: STACK_SERVICES entry order: function_name must be \"${OrderFunction}\", is \"order\"",
        ),
        (
            |e| e[1]["service_arn"] = json!("${InventoryService.Arn}"),
            "CostReportFunction: STACK_SERVICES entry payment: service_arn must be \"${PaymentService.Arn}\", is \"${InventoryService.Arn}\"",
        ),
        (
            |e| e[2]["arch"] = json!("x86_64"),
            "CostReportFunction: STACK_SERVICES entry inventory: arch must be \"arm64\", is \"x86_64\"",
        ),
        (
            |e| {
                e.as_array_mut().unwrap().remove(2);
            },
            "CostReportFunction: STACK_SERVICES names [\"order\", \"payment\"], must name each Lattice service of this template once [\"inventory\", \"order\", \"payment\"]",
        ),
    ] {
        assert_eq!(cost::environment(&services(change)), [problem]);
    }
    // The entry service first: the report counts orders by it.
    let reordered = services(|e| e.as_array_mut().unwrap().swap(0, 1));
    assert_eq!(
        cost::environment(&reordered),
        ["CostReportFunction: STACK_SERVICES must list the entry service order first (no other service calls it), lists Some(\"payment\") first"]
    );
    // The report finds a function's REPORT lines at /aws/lambda/<function name>.
    let renamed = with_resource("PaymentLogGroup", |g| {
        g["Properties"]["LogGroupName"] = json!("/payment")
    });
    assert_eq!(
        cost::environment(&renamed),
        ["PaymentFunction: must log to /aws/lambda/<its FunctionName> (where the cost report reads its REPORT lines), logs to Some(\"/payment\")"]
    );
    let not_json = with_variables(|v| v["STACK_SERVICES"] = json!("order,payment,inventory"));
    assert_eq!(
        cost::environment(&not_json),
        ["CostReportFunction: STACK_SERVICES must be a JSON list (!Sub) of the stack's services"]
    );
    for (change, problem) in [
        (
            (|v: &mut Value| v["ACCESS_LOG_GROUP"] = json!({"Ref": "OrderLogGroup"})) as fn(&mut Value),
            "CostReportFunction: ACCESS_LOG_GROUP must be !Ref AccessLogGroup (the service network's access log), is {\"Ref\":\"OrderLogGroup\"}",
        ),
        (
            |v| v["REPORT_BUCKET"] = json!({"Ref": "AnalyticsBackupBucket"}),
            "CostReportFunction: REPORT_BUCKET must be !Ref <a bucket of the report, carrying WithCostReport>, is {\"Ref\":\"AnalyticsBackupBucket\"}",
        ),
        (
            |v| v["COST_TAG_VALUE"] = json!("lattice-xray"),
            "CostReportFunction: COST_TAG_KEY must be lattice-stack and COST_TAG_VALUE !Ref AWS::StackName (the stack's tag), are \"lattice-stack\" and \"lattice-xray\"",
        ),
        (
            |v| v["EMF_NAMESPACE"] = json!("AWS/Lattice"),
            "CostReportFunction: EMF_NAMESPACE must be a CloudWatch namespace outside AWS/, is \"AWS/Lattice\"",
        ),
    ] {
        assert_eq!(cost::environment(&with_variables(change)), [problem]);
    }
    // A table's name under another variable: the environment rule and the table-variable rule
    // both refuse it (the exemption is STACK_SERVICES alone).
    let table = with_variables(|v| v["PAYMENTS_TABLE"] = json!({"Ref": "PaymentsTable"}));
    assert_eq!(
        cost::environment(&table),
        ["CostReportFunction: must be given exactly {\"ACCESS_LOG_GROUP\", \"COST_TAG_KEY\", \"COST_TAG_VALUE\", \"EMF_NAMESPACE\", \"REPORT_BUCKET\", \"STACK_SERVICES\"}, has {\"ACCESS_LOG_GROUP\", \"COST_TAG_KEY\", \"COST_TAG_VALUE\", \"EMF_NAMESPACE\", \"PAYMENTS_TABLE\", \"REPORT_BUCKET\", \"STACK_SERVICES\"}"]
    );
    assert_eq!(
        checks::table_variables(&table),
        ["CostReportFunction: PAYMENTS_TABLE names PaymentsTable, which is not its table"]
    );
}

#[test]
fn the_stack_carries_the_cost_allocation_tag_the_report_filters_on() {
    let template = template();
    let text = samconfig();
    assert!(cost::stack_tag(&template, &text).is_empty());
    let tag_line = "tags = \"lattice-stack=\\\"lattice-xray\\\"\"\n";
    assert!(text.contains(tag_line));
    for (from, to, problem) in [
        (
            tag_line,
            "",
            "samconfig.toml: [default.deploy.parameters] tags must give the stack lattice-stack=<its stack_name Some(\"lattice-xray\")> (COST_TAG_KEY/COST_TAG_VALUE), has {}",
        ),
        (
            tag_line,
            "tags = \"lattice-stack=\\\"staging\\\" team=\\\"payments\\\"\"\n",
            "samconfig.toml: [default.deploy.parameters] tags must give the stack lattice-stack=<its stack_name Some(\"lattice-xray\")> (COST_TAG_KEY/COST_TAG_VALUE), has {\"lattice-stack\": \"staging\", \"team\": \"payments\"}",
        ),
        (
            "stack_name = \"lattice-xray\"",
            "stack_name = \"lattice-prod\"",
            "samconfig.toml: [default.deploy.parameters] tags must give the stack lattice-stack=<its stack_name Some(\"lattice-prod\")> (COST_TAG_KEY/COST_TAG_VALUE), has {\"lattice-stack\": \"lattice-xray\"}",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        assert_eq!(
            cost::stack_tag(&template, &text.replacen(from, to, 1)),
            [problem],
            "{from} -> {to}"
        );
    }
}

#[test]
fn anomaly_detection_watches_every_service_and_mails_daily_above_the_threshold() {
    assert!(cost::anomaly_detection(&template()).is_empty());
    let custom = with_resource("CostAnomalyMonitor", |m| {
        m["Properties"]["MonitorType"] = json!("CUSTOM");
        remove(&mut m["Properties"], "MonitorDimension");
    });
    assert_eq!(
        cost::anomaly_detection(&custom),
        ["CostAnomalyMonitor: must be MonitorType DIMENSIONAL, MonitorDimension SERVICE, no MonitorSpecification (every AWS service on its own)"]
    );
    let subscription = |change: fn(&mut Value)| with_resource("CostAnomalySubscription", change);
    let expression = json!({"Dimensions": {
        "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
        "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
        "Values": ["${CostAnomalyThresholdUsd}"],
    }});
    let threshold_problem = format!(
        "CostAnomalySubscription: ThresholdExpression must be {expression} (and no deprecated Threshold)"
    );
    let subscribers = json!([{"Type": "EMAIL", "Address": {"Ref": "CostAnomalyEmail"}}]);
    for (change, problem) in [
        (
            (|s: &mut Value| s["Condition"] = json!("WithCostReport")) as fn(&mut Value),
            "CostAnomalySubscription: Condition must be WithCostAnomalyAlerts (no subscription without CostAnomalyEmail), is \"WithCostReport\"".to_owned(),
        ),
        (
            |s| s["Properties"]["Frequency"] = json!("IMMEDIATE"),
            "CostAnomalySubscription: Frequency must be DAILY (an email subscriber takes DAILY or WEEKLY), is \"IMMEDIATE\"".to_owned(),
        ),
        (
            |s| s["Properties"]["MonitorArnList"] = json!([]),
            "CostAnomalySubscription: MonitorArnList must be [!Ref CostAnomalyMonitor]".to_owned(),
        ),
        (
            |s| s["Properties"]["Subscribers"][0]["Address"] = json!("ops@example.com"),
            format!("CostAnomalySubscription: Subscribers must be {subscribers}"),
        ),
        (
            |s| {
                let text = s["Properties"]["ThresholdExpression"]["Fn::Sub"].as_str().unwrap();
                s["Properties"]["ThresholdExpression"]["Fn::Sub"] =
                    json!(text.replace("ABSOLUTE", "PERCENTAGE"));
            },
            threshold_problem.clone(),
        ),
        (|s| s["Properties"]["Threshold"] = json!(10), threshold_problem.clone()),
    ] {
        assert_eq!(cost::anomaly_detection(&subscription(change)), [problem]);
    }
    let no_subscription = broken(|root| {
        remove(&mut root["Resources"], "CostAnomalySubscription");
    });
    assert_eq!(
        cost::anomaly_detection(&no_subscription),
        ["CostAnomalyMonitor: no AWS::CE::AnomalySubscription mails its anomalies"]
    );
    let mailed_by_default = broken(|root| {
        root["Parameters"]["CostAnomalyEmail"]["Default"] = json!("ops@example.com");
    });
    assert_eq!(
        cost::anomaly_detection(&mailed_by_default),
        ["CostAnomalyEmail: must be a String parameter, Default \"\", AllowedPattern \"^$|^…\""]
    );
    // The subscription's condition must need the report, and an address.
    let without_address = broken(|root| {
        root["Conditions"]["WithCostAnomalyAlerts"] = json!({"Condition": "WithCostReport"});
    });
    assert_has(
        &cost::conditions(&without_address),
        &format!(
            "WithCostAnomalyAlerts: must be {}",
            json!({"Fn::And": [{"Condition": "WithCostReport"},
                {"Fn::Not": [{"Fn::Equals": [{"Ref": "CostAnomalyEmail"}, ""]}]}]})
        ),
    );
}

/// The report's crate reads every variable the template gives it (as `"NAME"` in its source or
/// its library's), like the other functions' (tests/template.rs).
#[test]
fn every_variable_the_report_is_given_is_one_its_crate_reads() {
    let template = template();
    let crate_dir = template_dir().join(cost::CODE_URI);
    assert!(
        crate_dir.join("Cargo.toml").exists(),
        "{} (the cost-report Lambda) does not exist yet",
        crate_dir.display()
    );
    let source = source_of(&crate_dir) + &source_of(&repository_root().join("cost"));
    let variables = template
        .function_property(cost::FUNCTION, "Environment")
        .unwrap()["Variables"]
        .as_object()
        .unwrap();
    for variable in variables.keys() {
        assert!(
            source.contains(&format!("\"{variable}\"")),
            "{} sets {variable}, which {} never names",
            cost::FUNCTION,
            crate_dir.display()
        );
    }
}

#[test]
fn the_stack_map_output_for_loadgen_cost_is_the_reports_own_services_list() {
    let template = template();
    let output = &template.root["Outputs"]["StackServices"];
    assert_eq!(
        output.get("Condition"),
        None,
        "loadgen cost needs it without the report"
    );
    let variables =
        &template.resource(cost::FUNCTION).unwrap()["Properties"]["Environment"]["Variables"];
    assert_eq!(output["Value"], variables["STACK_SERVICES"]);
    // With its references filled in, it is the JSON list `loadgen cost --stack-map` reads.
    let text = output["Value"]["Fn::Sub"].as_str().unwrap();
    let filled = text
        .split("${")
        .enumerate()
        .map(|(i, part)| match (i, part.split_once('}')) {
            (0, _) | (_, None) => part.to_owned(),
            (_, Some((_, rest))) => format!("x{rest}"),
        })
        .collect::<String>();
    let services: Vec<Value> = serde_json::from_str(&filled).unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["order", "payment", "inventory"],
        "the entry service first"
    );
}

#[test]
fn a_failed_report_is_not_retried_by_lambda() {
    let template = template();
    let config = template.resource("CostReportInvokeConfig").unwrap();
    assert_eq!(config["Type"], "AWS::Lambda::EventInvokeConfig");
    assert_eq!(config["Condition"], cost::CONDITION);
    assert_eq!(config["Properties"]["MaximumRetryAttempts"], 0);
    assert_eq!(config["Properties"]["Qualifier"], "$LATEST");
    assert_eq!(
        config["Properties"]["FunctionName"],
        json!({"Ref": cost::FUNCTION})
    );
    assert!(cost::conditions(&template).is_empty());
    let unconditioned = with_resource("CostReportInvokeConfig", |c| remove(c, "Condition"));
    assert!(
        !cost::conditions(&unconditioned).is_empty(),
        "the invoke config carries the report's condition like the rest"
    );
}
