//! The SAM template against the rules the linters miss (`aws_template::checks`), each rule shown
//! to hold on the real template and to fail on a copy broken the way a person might break it;
//! then the wiring only this stack has: who may invoke whom, and what each function is given.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aws_template::checks;
use aws_template::template::{reference, repository_template, sub_text};
use aws_template::Template;
use serde_json::{json, Value};

fn template() -> Template {
    Template::load(&repository_template()).expect("template.yaml parses")
}

fn template_dir() -> PathBuf {
    repository_template().parent().unwrap().to_owned()
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn broken(change: impl FnOnce(&mut Value)) -> Template {
    let mut template = template();
    change(&mut template.root);
    template
}

fn properties<'a>(template: &'a Template, id: &str) -> &'a Value {
    &template
        .resource(id)
        .unwrap_or_else(|| panic!("{id} exists"))["Properties"]
}

#[test]
fn the_template_keeps_every_rule() {
    let problems = checks::all(&template(), &template_dir());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_lambda_target_group_with_port_protocol_or_health_check_is_caught() {
    for (key, value) in [
        ("Port", json!(443)),
        ("Protocol", json!("HTTPS")),
        ("HealthCheck", json!({"Enabled": true})),
        ("VpcIdentifier", json!({"Ref": "Vpc"})),
    ] {
        let template = broken(|root| {
            root["Resources"]["PaymentTargetGroup"]["Properties"]["Config"][key] = value.clone();
        });
        let problems = checks::lambda_target_groups(&template);
        assert_eq!(problems.len(), 1, "{key}: {problems:?}");
        assert!(problems[0].starts_with("PaymentTargetGroup: a LAMBDA target group's Config"));
    }
    let v1 = broken(|root| {
        root["Resources"]["OrderTargetGroup"]["Properties"]["Config"]
            ["LambdaEventStructureVersion"] = json!("V1");
    });
    assert_eq!(
        checks::lambda_target_groups(&v1),
        ["OrderTargetGroup: LambdaEventStructureVersion must be V2 (V1 has no requestContext)"]
    );
}

#[test]
fn a_target_without_its_lattice_permission_is_caught() {
    let template = broken(|root| {
        root["Resources"]["InventoryInvokePermission"]["Properties"]["SourceArn"] =
            json!({"Fn::GetAtt": ["PaymentTargetGroup", "Arn"]});
    });
    assert_eq!(
        checks::lambda_target_groups(&template),
        ["InventoryTargetGroup: no AWS::Lambda::Permission lets vpc-lattice.amazonaws.com invoke InventoryFunction with SourceArn = this target group"]
    );
}

#[test]
fn an_auth_policy_with_another_action_or_resource_is_caught() {
    for action in [
        json!("vpc-lattice-svcs:*"),
        json!("vpc-lattice-svcs:Invok"),
        json!(["vpc-lattice-svcs:Invoke", "vpc-lattice:GetService"]),
    ] {
        let template = broken(|root| {
            root["Resources"]["PaymentAuthPolicy"]["Properties"]["Policy"]["Statement"][0]
                ["Action"] = action.clone();
        });
        let problems = checks::auth_policies(&template);
        assert_eq!(problems.len(), 1, "{action}: {problems:?}");
        assert!(problems[0].starts_with("PaymentAuthPolicy: actions"));
    }
    let everything = broken(|root| {
        root["Resources"]["OrderAuthPolicy"]["Properties"]["Policy"]["Statement"][0]["Resource"] =
            json!("*");
    });
    assert_eq!(checks::auth_policies(&everything).len(), 1);
    let open = broken(|root| {
        root["Resources"]["InventoryService"]["Properties"]["AuthType"] = json!("NONE");
    });
    assert_eq!(
        checks::auth_policies(&open),
        ["InventoryService: AuthType must be AWS_IAM"]
    );
}

#[test]
fn a_function_without_tracing_or_on_the_wrong_platform_is_caught() {
    let untraced = broken(|root| {
        root["Globals"]["Function"]
            .as_object_mut()
            .unwrap()
            .remove("Tracing");
    });
    assert_eq!(checks::functions(&untraced, &template_dir()).len(), 4);
    let passthrough = broken(|root| {
        root["Resources"]["PaymentFunction"]["Properties"]["Tracing"] = json!("PassThrough");
    });
    assert_eq!(
        checks::functions(&passthrough, &template_dir()),
        ["PaymentFunction: Tracing must be Active"]
    );
    let x86 = broken(|root| {
        root["Resources"]["OrderFunction"]["Properties"]["Architectures"] = json!(["x86_64"]);
    });
    assert_eq!(
        checks::functions(&x86, &template_dir()),
        ["OrderFunction: Architectures must be [arm64]"]
    );
    let wrong_binary = broken(|root| {
        root["Resources"]["InventoryFunction"]["Metadata"]["BuildProperties"]["Binary"] =
            json!("payment");
    });
    let problems = checks::functions(&wrong_binary, &template_dir());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].ends_with("builds no binary named payment"));
}

#[test]
fn wildcards_beyond_what_xray_and_vpc_attachment_need_are_caught() {
    let add = |role: &'static str, statement: Value| {
        broken(move |root| {
            root["Resources"][role]["Properties"]["Policies"]
                .as_array_mut()
                .unwrap()
                .push(json!({"PolicyName": "extra", "PolicyDocument": {"Statement": [statement]}}));
        })
    };
    assert_eq!(
        checks::least_privilege(&add(
            "PaymentRole",
            json!({"Effect": "Allow", "Action": "xray:*", "Resource": "*"})
        )),
        [
            "PaymentRole: wildcard action xray:*",
            "PaymentRole: xray:* on every resource (*)"
        ]
    );
    assert_eq!(
        checks::least_privilege(&add(
            "OrderRole",
            json!({"Effect": "Allow", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*"})
        )),
        ["OrderRole: vpc-lattice-svcs:Invoke on every resource (*)"]
    );
    // Payment is not in the VPC: the attach actions on * are not its to have.
    assert_eq!(
        checks::least_privilege(&add(
            "PaymentRole",
            json!({"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*"})
        )),
        ["PaymentRole: ec2:CreateNetworkInterface on every resource (*)"]
    );
    assert_eq!(
        checks::least_privilege(&add(
            "InventoryRole",
            json!({"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:*"}})
        )),
        ["InventoryRole: wildcard resource arn:${AWS::Partition}:logs:*"]
    );
    let managed = broken(|root| {
        root["Resources"]["OrderRole"]["Properties"]["ManagedPolicyArns"] =
            json!(["arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"]);
    });
    assert_eq!(
        checks::least_privilege(&managed),
        ["OrderRole: managed policies are broader than needed"]
    );
}

fn dashboard_body(template: &Template) -> String {
    sub_text(&properties(template, "Dashboard")["DashboardBody"])
        .unwrap()
        .to_owned()
}

fn with_dashboard_body(body: String) -> Template {
    broken(|root| {
        root["Resources"]["Dashboard"]["Properties"]["DashboardBody"] = json!({"Fn::Sub": body});
    })
}

#[test]
fn the_dashboard_shows_lattice_lambda_metrics_per_resource() {
    let metrics = checks::dashboard_metrics(&template()).unwrap();
    let shown: BTreeSet<(String, String, String)> = metrics
        .iter()
        .map(|m| {
            (
                m.namespace.clone(),
                m.name.clone(),
                m.dimensions.last().unwrap().1.clone(),
            )
        })
        .collect();
    for service in ["OrderService", "PaymentService", "InventoryService"] {
        for name in [
            "TotalRequestCount",
            "RequestTime",
            "HTTPCode_2XX_Count",
            "HTTPCode_4XX_Count",
            "HTTPCode_5XX_Count",
        ] {
            let wanted = (
                "AWS/VpcLattice".to_owned(),
                name.to_owned(),
                format!("${{{service}.Id}}"),
            );
            assert!(shown.contains(&wanted), "missing {wanted:?}");
        }
    }
    for group in [
        "OrderTargetGroup",
        "PaymentTargetGroup",
        "InventoryTargetGroup",
    ] {
        assert!(shown.contains(&(
            "AWS/VpcLattice".to_owned(),
            "TotalRequestCount".to_owned(),
            format!("${{{group}.Id}}")
        )));
    }
    for function in ["OrderFunction", "PaymentFunction", "InventoryFunction"] {
        for name in ["Invocations", "Errors", "Throttles", "Duration"] {
            assert!(shown.contains(&(
                "AWS/Lambda".to_owned(),
                name.to_owned(),
                format!("${{{function}}}")
            )));
        }
    }
}

#[test]
fn alb_metric_names_wrong_namespaces_and_mismatched_dimensions_are_caught() {
    let body = dashboard_body(&template());
    for (from, to, problem) in [
        (
            "MetricName=\\\"TotalRequestCount\\\" \\\"${OrderService.Id}\\\"",
            "MetricName=\\\"RequestCount\\\" \\\"${OrderService.Id}\\\"",
            "AWS/VpcLattice/RequestCount with dimensions {\"AvailabilityZone\", \"Service\"} is not a published metric",
        ),
        (
            "{AWS/VpcLattice,AvailabilityZone,Service} MetricName=\\\"TotalRequestCount\\\" \\\"${OrderService.Id}\\\"",
            "{AWS/VPCLattice,AvailabilityZone,Service} MetricName=\\\"TotalRequestCount\\\" \\\"${OrderService.Id}\\\"",
            "AWS/VPCLattice/TotalRequestCount with dimensions {\"AvailabilityZone\", \"Service\"} is not a published metric",
        ),
        (
            "{AWS/VpcLattice,AvailabilityZone,TargetGroup} MetricName=\\\"TotalRequestCount\\\" \\\"${OrderTargetGroup.Id}\\\"",
            "{AWS/VpcLattice,AvailabilityZone,TargetGroup} MetricName=\\\"TotalRequestCount\\\" \\\"${OrderService.Id}\\\"",
            "AWS/VpcLattice/TotalRequestCount: TargetGroup = ${OrderService.Id} is not a AWS::VpcLattice::TargetGroup of this template",
        ),
        (
            "[\"AWS/Lambda\", \"Duration\", \"FunctionName\", \"${OrderFunction}\"]",
            "[\"AWS/Lambda\", \"Duration\", \"FunctionName\", \"${OrderFunction}\", \"Resource\", \"x\"]",
            "AWS/Lambda/Duration with dimensions {\"FunctionName\", \"Resource\"} is not a published metric",
        ),
    ] {
        assert!(body.contains(from), "the body has {from}");
        let template = with_dashboard_body(body.replacen(from, to, 1));
        assert_eq!(checks::dashboard(&template), [problem]);
    }
}

#[test]
fn the_access_log_goes_to_a_vended_log_group_with_retention() {
    let template = template();
    assert_eq!(
        properties(&template, "AccessLogGroup")["LogGroupName"],
        json!({"Fn::Sub": "/aws/vendedlogs/vpc-lattice/${AWS::StackName}"})
    );
    let plain = broken(|root| {
        root["Resources"]["AccessLogGroup"]["Properties"]["LogGroupName"] = json!("/lattice");
        root["Resources"]["OrderLogGroup"]["Properties"]
            .as_object_mut()
            .unwrap()
            .remove("RetentionInDays");
    });
    let problems = checks::access_logs(&plain);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0], "OrderLogGroup: no RetentionInDays");
}

#[test]
fn the_access_log_query_uses_real_access_log_fields() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/lattice-access-log-entry.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let fields: BTreeSet<&str> = fixture
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields.len(), 35);
    let body: Value = serde_json::from_str(&dashboard_body(&template())).unwrap();
    let query = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["type"] == "log")
        .unwrap()["properties"]["query"]
        .as_str()
        .unwrap();
    assert!(query.starts_with("SOURCE '${AccessLogGroup}' | stats "));
    for field in ["duration", "serviceArn", "responseCode"] {
        assert!(query.contains(field) && fields.contains(field), "{field}");
    }
}

/// The principals (logical role ids) a service's auth policy allows.
fn allowed_callers(template: &Template, policy: &str) -> BTreeSet<String> {
    let principal = &properties(template, policy)["Policy"]["Statement"][0]["Principal"]["AWS"];
    let mut callers = BTreeSet::new();
    let mut collect = |value: &Value| {
        if let Some((role, Some("Arn"))) = reference(value) {
            callers.insert(role.to_owned());
        }
        if let Some(text) = sub_text(value) {
            for part in text.split(',') {
                if let Some(role) = part
                    .strip_prefix("${")
                    .and_then(|p| p.strip_suffix(".Arn}"))
                {
                    callers.insert(role.to_owned());
                }
            }
        }
    };
    match principal.get("Fn::If").and_then(Value::as_array) {
        // [condition, with extras (!Split of a !Sub), without]
        Some(branches) => {
            collect(&branches[1]["Fn::Split"][1]);
            collect(&branches[2]);
        }
        None => collect(principal),
    }
    callers
}

#[test]
fn only_order_may_invoke_payment_and_inventory_and_only_loadgen_may_invoke_order() {
    let template = template();
    assert_eq!(
        allowed_callers(&template, "OrderAuthPolicy"),
        BTreeSet::from(["LoadgenRole".to_owned()])
    );
    for policy in ["PaymentAuthPolicy", "InventoryAuthPolicy"] {
        assert_eq!(
            allowed_callers(&template, policy),
            BTreeSet::from(["OrderRole".to_owned()])
        );
    }
    let order_invokes: Vec<&str> = properties(&template, "OrderRole")["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter(|s| s["Action"] == "vpc-lattice-svcs:Invoke")
        .flat_map(|s| s["Resource"].as_array().unwrap())
        .filter_map(sub_text)
        .collect();
    assert_eq!(
        order_invokes,
        ["${PaymentService.Arn}/*", "${InventoryService.Arn}/*"]
    );
}

#[test]
fn every_service_listens_on_https_443_and_forwards_to_its_own_function() {
    let template = template();
    for name in ["Order", "Payment", "Inventory"] {
        let listener = properties(&template, &format!("{name}Listener"));
        assert_eq!(listener["Protocol"], "HTTPS");
        assert_eq!(listener["Port"], 443);
        assert_eq!(
            reference(&listener["ServiceIdentifier"]),
            Some((format!("{name}Service").as_str(), Some("Arn")))
        );
        let forward = &listener["DefaultAction"]["Forward"]["TargetGroups"];
        assert_eq!(forward.as_array().unwrap().len(), 1);
        assert_eq!(
            reference(&forward[0]["TargetGroupIdentifier"]),
            Some((format!("{name}TargetGroup").as_str(), Some("Arn")))
        );
        assert_eq!(
            reference(&properties(&template, &format!("{name}TargetGroup"))["Targets"][0]["Id"]),
            Some((format!("{name}Function").as_str(), Some("Arn")))
        );
        let association = properties(&template, &format!("{name}ServiceAssociation"));
        assert_eq!(
            reference(&association["ServiceNetworkIdentifier"]),
            Some(("ServiceNetwork", Some("Arn")))
        );
    }
    let vpc = properties(&template, "VpcAssociation");
    assert_eq!(reference(&vpc["VpcIdentifier"]), Some(("Vpc", None)));
}

#[test]
fn the_callers_sit_in_two_zones_of_the_associated_vpc_and_the_targets_do_not() {
    let template = template();
    for caller in ["OrderFunction", "LoadgenRunnerFunction"] {
        let subnets = &template.function_property(caller, "VpcConfig").unwrap()["SubnetIds"];
        let zones: BTreeSet<String> = subnets
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let (subnet, _) = reference(s).unwrap();
                properties(&template, subnet)["AvailabilityZone"]["Fn::Select"][0].to_string()
            })
            .collect();
        assert_eq!(zones.len(), 2, "{caller}: {zones:?}");
    }
    for target in ["PaymentFunction", "InventoryFunction"] {
        assert!(template.function_property(target, "VpcConfig").is_none());
    }
}

/// The Rust source of a crate, concatenated.
fn source_of(crate_dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![crate_dir.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    text
}

#[test]
fn every_variable_the_template_sets_is_one_its_function_reads() {
    let template = template();
    let shared = source_of(&repository_root().join("shared"));
    for (function, crate_dir) in [
        ("OrderFunction", "services/order"),
        ("PaymentFunction", "services/payment"),
        ("InventoryFunction", "services/inventory"),
        ("LoadgenRunnerFunction", "loadgen"),
    ] {
        let source = source_of(&repository_root().join(crate_dir)) + &shared;
        let set = properties(&template, function)["Environment"]["Variables"]
            .as_object()
            .unwrap();
        for variable in set.keys() {
            assert!(
                source.contains(&format!("\"{variable}\"")),
                "{function} sets {variable}, which {crate_dir} never names"
            );
        }
    }
    let order = &properties(&template, "OrderFunction")["Environment"]["Variables"];
    assert_eq!(
        order["PAYMENT_SERVICE_URL"],
        json!({"Fn::Sub": "https://${PaymentService.DnsEntry.DomainName}"})
    );
    assert_eq!(
        order["INVENTORY_SERVICE_URL"],
        json!({"Fn::Sub": "https://${InventoryService.DnsEntry.DomainName}"})
    );
}

#[test]
fn the_outputs_give_what_loadgen_and_the_reader_need() {
    let template = template();
    let outputs: BTreeSet<&str> = template.root["Outputs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for wanted in [
        "OrderServiceUrl",
        "PaymentServiceUrl",
        "InventoryServiceUrl",
        "OrderFunctionName",
        "PaymentFunctionName",
        "InventoryFunctionName",
        "LoadgenRunnerFunctionName",
        "LoadgenRoleArn",
        "AccessLogGroupName",
        "DashboardUrl",
    ] {
        assert!(outputs.contains(wanted), "no output {wanted}");
    }
}

#[test]
fn the_deployer_policy_covers_what_cloudformation_needs_for_every_resource_type() {
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap(),
        )
        .unwrap()
    };
    let handlers = read("tests/fixtures/cfn-handler-permissions.json");
    let policy = read("deployer-policy.json");
    let allowed: BTreeSet<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| s["Action"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    let template = template();
    let types: BTreeSet<&str> = template
        .resources()
        .filter_map(|(_, r)| r["Type"].as_str())
        .map(|t| match t {
            "AWS::Serverless::Function" => "AWS::Lambda::Function",
            other => other,
        })
        .collect();
    for kind in types {
        let per_handler = handlers["types"][kind]
            .as_object()
            .unwrap_or_else(|| panic!("{kind}: not in the fixture; run tools/deployer_policy.py"));
        for handler in ["create", "read", "update", "delete"] {
            for permission in per_handler
                .get(handler)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                // The schemas hold a few non-IAM strings (e.g. "s3:REST.PUT.OBJECT").
                .filter(|p| !p.contains('.'))
            {
                assert!(
                    allowed.contains(permission),
                    "{kind} {handler} needs {permission}; run tools/deployer_policy.py"
                );
            }
        }
    }
    for sam in [
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "s3:PutObject",
    ] {
        assert!(allowed.contains(sam), "sam deploy needs {sam}");
    }
}
