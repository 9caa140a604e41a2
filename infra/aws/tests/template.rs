//! The SAM template against the rules the linters miss (`aws_template::checks`), each rule shown
//! to hold on the real template and to fail on a copy broken the way a person might break it;
//! then the wiring only this stack has: who may invoke whom, and what each function is given;
//! last, the traffic analytics (`aws_template::analytics`), held and broken the same way.

use std::collections::BTreeSet;
use std::path::Path;

use aws_template::template::{guarded_items, reference, sub_text};
use aws_template::Template;
use aws_template::{analytics, checks, telemetry};
use serde_json::{json, Value};

mod support;
use support::{broken, repository_root, source_of, template, template_dir};

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
    // order, payment, inventory, the loadgen runner, the access-log transform, the cost report.
    assert_eq!(checks::functions(&untraced, &template_dir()).len(), 6);
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

#[test]
fn a_table_not_on_demand_without_ttl_or_recovery_is_caught() {
    let table = |id: &'static str, change: fn(&mut Value)| {
        broken(move |root| change(&mut root["Resources"][id]))
    };
    for (id, change, problem) in [
        (
            "InventoryTable",
            (|t: &mut Value| t["Properties"]["BillingMode"] = json!("PROVISIONED")) as fn(&mut Value),
            "InventoryTable: BillingMode must be PAY_PER_REQUEST, is \"PROVISIONED\"",
        ),
        (
            "PaymentsTable",
            |t| {
                t["Properties"]["ProvisionedThroughput"] =
                    json!({"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
            },
            "PaymentsTable: an on-demand table takes no ProvisionedThroughput",
        ),
        (
            "PaymentsTable",
            |t| t["Properties"]["TimeToLiveSpecification"]["AttributeName"] = json!("ttl"),
            "PaymentsTable: TimeToLiveSpecification must be {\"AttributeName\":\"expires_at\",\"Enabled\":true}, is {\"AttributeName\":\"ttl\",\"Enabled\":true}",
        ),
        (
            "InventoryTable",
            |t| t["Properties"]["TimeToLiveSpecification"]["Enabled"] = json!(false),
            "InventoryTable: TimeToLiveSpecification must be {\"AttributeName\":\"expires_at\",\"Enabled\":true}, is {\"AttributeName\":\"expires_at\",\"Enabled\":false}",
        ),
        (
            "InventoryTable",
            |t| {
                t["Properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("TimeToLiveSpecification");
            },
            "InventoryTable: TimeToLiveSpecification must be {\"AttributeName\":\"expires_at\",\"Enabled\":true}, is null",
        ),
        (
            "PaymentsTable",
            |t| {
                t["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] =
                    json!(false)
            },
            "PaymentsTable: point-in-time recovery must be enabled",
        ),
        (
            "InventoryTable",
            |t| {
                t["Properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("PointInTimeRecoverySpecification");
            },
            "InventoryTable: point-in-time recovery must be enabled",
        ),
        (
            "InventoryTable",
            |t| {
                t.as_object_mut().unwrap().remove("DeletionPolicy");
            },
            "InventoryTable: no explicit DeletionPolicy",
        ),
        (
            "PaymentsTable",
            |t| {
                t.as_object_mut().unwrap().remove("UpdateReplacePolicy");
            },
            "PaymentsTable: no explicit UpdateReplacePolicy",
        ),
        (
            "InventoryTable",
            |t| t["Properties"]["TableName"] = json!({"Fn::Sub": "${AWS::StackName}-inventory"}),
            "InventoryTable: TableName must be inventory (the X-Ray node and loadgen's map), is {\"Fn::Sub\":\"${AWS::StackName}-inventory\"}",
        ),
        (
            "PaymentsTable",
            |t| {
                t["Properties"]["KeySchema"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"AttributeName": "created_at", "KeyType": "RANGE"}))
            },
            "PaymentsTable: the key must be order_id alone (String, HASH)",
        ),
        (
            "PaymentsTable",
            |t| t["Properties"]["AttributeDefinitions"][0]["AttributeType"] = json!("N"),
            "PaymentsTable: the key must be order_id alone (String, HASH)",
        ),
    ] {
        assert_eq!(checks::tables(&table(id, change)), [problem]);
    }
    let stray = broken(|root| {
        root["Resources"]["OrdersTable"] = root["Resources"]["PaymentsTable"].clone();
    });
    assert_eq!(
        checks::tables(&stray),
        ["OrdersTable: a table no service owns"]
    );
    let missing = broken(|root| {
        root["Resources"]
            .as_object_mut()
            .unwrap()
            .remove("InventoryTable");
    });
    assert_eq!(
        checks::tables(&missing),
        ["InventoryTable: no AWS::DynamoDB::Table of that id"]
    );
}

/// A copy whose `role` has one more inline policy with `statement`.
fn with_statement(role: &'static str, statement: Value) -> Template {
    broken(move |root| {
        root["Resources"][role]["Properties"]["Policies"]
            .as_array_mut()
            .unwrap()
            .push(json!({"PolicyName": "extra", "PolicyDocument": {"Statement": [statement]}}));
    })
}

/// A copy with `role`'s own-table statement changed.
fn with_table_statement(role: &'static str, change: impl FnOnce(&mut Value)) -> Template {
    broken(move |root| {
        let policies = root["Resources"][role]["Properties"]["Policies"]
            .as_array_mut()
            .unwrap();
        let own = policies
            .iter_mut()
            .find(|p| p["PolicyName"] == "own-table")
            .unwrap();
        change(&mut own["PolicyDocument"]["Statement"][0]);
    })
}

#[test]
fn each_service_role_has_exactly_its_table_actions_on_exactly_its_table() {
    let template = template();
    for (role, table, actions) in [
        (
            "InventoryRole",
            "InventoryTable",
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
        ),
        (
            "PaymentRole",
            "PaymentsTable",
            [
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
        ),
    ] {
        // Conditional policies (the telemetry extension's `Fn::If`s) count with both branches.
        let statements: Vec<&Value> = guarded_items(&properties(&template, role)["Policies"])
            .into_iter()
            .flat_map(|(_, p)| p["PolicyDocument"]["Statement"].as_array().unwrap())
            .filter(|s| s.to_string().contains("dynamodb:"))
            .collect();
        assert_eq!(statements.len(), 1, "{role}");
        assert_eq!(statements[0]["Action"], json!(actions));
        assert_eq!(
            statements[0]["Resource"],
            json!({"Fn::GetAtt": [table, "Arn"]})
        );
    }
    for role in ["OrderRole", "LoadgenRole"] {
        assert!(!properties(&template, role).to_string().contains("dynamodb"));
    }
}

#[test]
fn dynamodb_actions_beyond_each_functions_own_table_are_caught() {
    let not_exactly = |role: &str, got: &str, want: &str, function: &str| {
        format!("{role}: DynamoDB actions {got}, must be exactly {want} (what {function} calls)")
    };
    let inventory_wants = r#"["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]"#;
    let payment_wants = r#"["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]"#;
    // One action too many, one too few.
    assert_eq!(
        checks::table_access(&with_table_statement("InventoryRole", |s| {
            s["Action"]
                .as_array_mut()
                .unwrap()
                .push(json!("dynamodb:DeleteItem"))
        })),
        [not_exactly(
            "InventoryRole",
            r#"["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]"#,
            inventory_wants,
            "InventoryFunction"
        )]
    );
    assert_eq!(
        checks::table_access(&with_table_statement("PaymentRole", |s| {
            s["Action"] = json!(["dynamodb:PutItem", "dynamodb:UpdateItem"])
        })),
        [not_exactly(
            "PaymentRole",
            r#"["dynamodb:PutItem", "dynamodb:UpdateItem"]"#,
            payment_wants,
            "PaymentFunction"
        )]
    );
    // TransactWriteItems is no IAM action, so it cannot stand in for the item actions.
    assert_eq!(
        checks::table_access(&with_table_statement("InventoryRole", |s| {
            s["Action"] = json!(["dynamodb:GetItem", "dynamodb:TransactWriteItems"])
        })),
        [not_exactly(
            "InventoryRole",
            r#"["dynamodb:GetItem", "dynamodb:TransactWriteItems"]"#,
            inventory_wants,
            "InventoryFunction"
        )]
    );
    // Wildcard actions.
    assert_eq!(
        checks::table_access(&with_table_statement("PaymentRole", |s| {
            s["Action"] = json!("dynamodb:*")
        })),
        [
            "PaymentRole: wildcard action dynamodb:*".to_owned(),
            not_exactly(
                "PaymentRole",
                r#"["dynamodb:*"]"#,
                payment_wants,
                "PaymentFunction"
            )
        ]
    );
    // Another table, a wildcard ARN, the table's indexes, two tables, everything.
    for (resource, shown) in [
        (
            json!({"Fn::GetAtt": ["PaymentsTable", "Arn"]}),
            r#"{"Fn::GetAtt":["PaymentsTable","Arn"]}"#,
        ),
        (
            json!({"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"}),
            r#"{"Fn::Sub":"arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"}"#,
        ),
        (
            json!({"Fn::Sub": "${InventoryTable.Arn}/index/*"}),
            r#"{"Fn::Sub":"${InventoryTable.Arn}/index/*"}"#,
        ),
        (
            json!([{"Fn::GetAtt": ["InventoryTable", "Arn"]}, {"Fn::GetAtt": ["PaymentsTable", "Arn"]}]),
            r#"[{"Fn::GetAtt":["InventoryTable","Arn"]},{"Fn::GetAtt":["PaymentsTable","Arn"]}]"#,
        ),
        (json!("*"), r#""*""#),
        (
            json!({"Ref": "InventoryTable"}),
            r#"{"Ref":"InventoryTable"}"#,
        ),
    ] {
        let template = with_table_statement("InventoryRole", |s| s["Resource"] = resource.clone());
        assert_eq!(
            checks::table_access(&template),
            [format!(
                "InventoryRole: dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem on {shown}, not exactly InventoryTable's ARN (!GetAtt InventoryTable.Arn)"
            )]
        );
    }
    // A second statement of the right actions on another table.
    assert_eq!(
        checks::table_access(&with_statement(
            "InventoryRole",
            json!({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["PaymentsTable", "Arn"]}})
        )),
        [
            r#"InventoryRole: dynamodb:GetItem on {"Fn::GetAtt":["PaymentsTable","Arn"]}, not exactly InventoryTable's ARN (!GetAtt InventoryTable.Arn)"#
        ]
    );
    // Roles that own no table: any DynamoDB action, in any case, and `*`.
    for (role, action) in [
        ("OrderRole", "dynamodb:GetItem"),
        ("OrderRole", "DynamoDB:UpdateItem"),
        ("LoadgenRole", "dynamodb:Scan"),
        ("LoadgenRole", "*"),
    ] {
        let template = with_statement(
            role,
            json!({"Effect": "Allow", "Action": action, "Resource": {"Fn::GetAtt": ["InventoryTable", "Arn"]}}),
        );
        assert_eq!(
            checks::table_access(&template),
            [format!(
                "{role}: {action} - only the owners of InventoryTable and PaymentsTable may use DynamoDB"
            )]
        );
    }
    // Grants by exclusion.
    assert_eq!(
        checks::table_access(&with_statement(
            "OrderRole",
            json!({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
        )),
        ["OrderRole: an Allow with NotAction grants by exclusion (DynamoDB included)"]
    );
    // A Deny grants nothing.
    assert!(checks::table_access(&with_statement(
        "LoadgenRole",
        json!({"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"})
    ))
    .is_empty());
    // One role for both owners: each would have the other's table.
    let shared = broken(|root| {
        root["Resources"]["PaymentFunction"]["Properties"]["Role"] =
            json!({"Fn::GetAtt": ["InventoryRole", "Arn"]});
    });
    let problems = checks::table_access(&shared);
    assert_eq!(
        problems[0],
        "InventoryRole: runs both InventoryFunction and PaymentFunction; each table's owner needs a role of its own"
    );
    // A policy beside the roles.
    let standalone = broken(|root| {
        root["Resources"]["ExtraPolicy"] = json!({
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "extra",
                "Roles": [{"Ref": "OrderRole"}],
                "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["InventoryTable", "Arn"]}}]}
            }
        });
    });
    assert_eq!(
        checks::table_access(&standalone),
        ["ExtraPolicy: DynamoDB access outside a table owner's own role"]
    );
}

#[test]
fn each_table_name_variable_refers_to_its_own_table() {
    let template = template();
    assert_eq!(
        properties(&template, "InventoryFunction")["Environment"]["Variables"]["INVENTORY_TABLE"],
        json!({"Ref": "InventoryTable"})
    );
    assert_eq!(
        properties(&template, "PaymentFunction")["Environment"]["Variables"]["PAYMENTS_TABLE"],
        json!({"Ref": "PaymentsTable"})
    );
    let set = |function: &'static str, variable: &'static str, value: Value| {
        broken(move |root| {
            root["Resources"][function]["Properties"]["Environment"]["Variables"][variable] = value;
        })
    };
    assert_eq!(
        checks::table_variables(&set(
            "InventoryFunction",
            "INVENTORY_TABLE",
            json!({"Ref": "PaymentsTable"})
        )),
        [
            r#"InventoryFunction: INVENTORY_TABLE must be !Ref InventoryTable, is {"Ref":"PaymentsTable"}"#
        ]
    );
    // A literal name works until the table is renamed; the Ref is what CloudFormation created.
    assert_eq!(
        checks::table_variables(&set("PaymentFunction", "PAYMENTS_TABLE", json!("payments"))),
        [r#"PaymentFunction: PAYMENTS_TABLE must be !Ref PaymentsTable, is "payments""#]
    );
    assert_eq!(
        checks::table_variables(&set(
            "InventoryFunction",
            "INVENTORY_TABLE",
            json!({"Fn::GetAtt": ["InventoryTable", "Arn"]})
        )),
        [
            r#"InventoryFunction: INVENTORY_TABLE must be !Ref InventoryTable, is {"Fn::GetAtt":["InventoryTable","Arn"]}"#
        ]
    );
    let missing = broken(|root| {
        root["Resources"]["PaymentFunction"]["Properties"]["Environment"]["Variables"]
            .as_object_mut()
            .unwrap()
            .remove("PAYMENTS_TABLE");
    });
    assert_eq!(
        checks::table_variables(&missing),
        ["PaymentFunction: no PAYMENTS_TABLE (its table's name)"]
    );
    // Another function given a table that is not its own.
    assert_eq!(
        checks::table_variables(&set(
            "OrderFunction",
            "INVENTORY_TABLE",
            json!({"Ref": "InventoryTable"})
        )),
        ["OrderFunction: INVENTORY_TABLE names InventoryTable, which is not its table"]
    );
    assert_eq!(
        checks::table_variables(&set(
            "PaymentFunction",
            "LEDGER_ARN",
            json!({"Fn::Sub": "${InventoryTable.Arn}"})
        )),
        ["PaymentFunction: LEDGER_ARN names InventoryTable, which is not its table"]
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
    for table in ["InventoryTable", "PaymentsTable"] {
        for name in [
            "ConsumedReadCapacityUnits",
            "ConsumedWriteCapacityUnits",
            "ConditionalCheckFailedRequests",
            "TransactionConflict",
            "ThrottledRequests",
            "SystemErrors",
            "SuccessfulRequestLatency",
        ] {
            let wanted = (
                "AWS/DynamoDB".to_owned(),
                name.to_owned(),
                format!("${{{table}}}"),
            );
            assert!(shown.contains(&wanted), "missing {wanted:?}");
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
        // DynamoDB publishes throttles per table and operation, never per table alone.
        (
            "[\"AWS/DynamoDB\", \"ConsumedReadCapacityUnits\", \"TableName\", \"${InventoryTable}\"]",
            "[\"AWS/DynamoDB\", \"ThrottledRequests\", \"TableName\", \"${InventoryTable}\"]",
            "AWS/DynamoDB/ThrottledRequests with dimensions {\"TableName\"} is not a published metric",
        ),
        (
            "{AWS/DynamoDB,Operation,TableName} MetricName=\\\"SystemErrors\\\" TableName=\\\"${PaymentsTable}\\\"",
            "{AWS/DynamoDB,TableName} MetricName=\\\"SystemErrors\\\" TableName=\\\"${PaymentsTable}\\\"",
            "AWS/DynamoDB/SystemErrors with dimensions {\"TableName\"} is not a published metric",
        ),
        (
            "[\"AWS/DynamoDB\", \"ConsumedWriteCapacityUnits\", \"TableName\", \"${PaymentsTable}\"]",
            "[\"AWS/DynamoDB\", \"ConsumedWriteCapacityUnit\", \"TableName\", \"${PaymentsTable}\"]",
            "AWS/DynamoDB/ConsumedWriteCapacityUnit with dimensions {\"TableName\"} is not a published metric",
        ),
        (
            "[\"AWS/DynamoDB\", \"TransactionConflict\", \"TableName\", \"${InventoryTable}\"]",
            "[\"AWS/Dynamodb\", \"TransactionConflict\", \"TableName\", \"${InventoryTable}\"]",
            "AWS/Dynamodb/TransactionConflict with dimensions {\"TableName\"} is not a published metric",
        ),
        (
            "[\"AWS/DynamoDB\", \"ConditionalCheckFailedRequests\", \"TableName\", \"${InventoryTable}\"]",
            "[\"AWS/DynamoDB\", \"ConditionalCheckFailedRequests\", \"TableName\", \"${InventoryFunction}\"]",
            "AWS/DynamoDB/ConditionalCheckFailedRequests: TableName = ${InventoryFunction} is not a AWS::DynamoDB::Table of this template",
        ),
        (
            "MetricName=\\\"ThrottledRequests\\\" TableName=\\\"${InventoryTable}\\\"",
            "MetricName=\\\"ThrottledRequests\\\" TableName=\\\"${InventoryService.Id}\\\"",
            "AWS/DynamoDB/ThrottledRequests: TableName = ${InventoryService.Id} is not a AWS::DynamoDB::Table of this template",
        ),
    ] {
        assert!(body.contains(from), "the body has {from}");
        let template = with_dashboard_body(body.replacen(from, to, 1));
        assert_eq!(checks::dashboard(&template), [problem]);
    }
    // An exact-match term is recorded as the schema's last dimension, so it must name that one.
    let from = "{AWS/DynamoDB,Operation,TableName} MetricName=\\\"ThrottledRequests\\\"";
    assert!(body.contains(from));
    let swapped = with_dashboard_body(body.replacen(
        from,
        "{AWS/DynamoDB,TableName,Operation} MetricName=\\\"ThrottledRequests\\\"",
        1,
    ));
    let problems = checks::dashboard(&swapped);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(
            "SEARCH term names TableName, not the schema's last dimension Operation: "
        ),
        "{problems:?}"
    );
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
    let order_invokes: Vec<&str> = guarded_items(&properties(&template, "OrderRole")["Policies"])
        .into_iter()
        .flat_map(|(_, p)| p["PolicyDocument"]["Statement"].as_array().unwrap())
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

#[test]
fn every_variable_the_template_sets_is_one_its_function_reads() {
    let template = template();
    let shared = source_of(&repository_root().join("shared"));
    for (function, crate_dir) in [
        ("OrderFunction", "services/order"),
        ("PaymentFunction", "services/payment"),
        ("InventoryFunction", "services/inventory"),
        ("LoadgenRunnerFunction", "loadgen"),
        ("AccessLogTransformFunction", "analytics/transform"),
    ] {
        let source = source_of(&repository_root().join(crate_dir)) + &shared;
        let set = properties(&template, function)["Environment"]["Variables"]
            .as_object()
            .unwrap();
        // The telemetry extension's variables are the extension's to read (tests/telemetry.rs).
        for variable in set
            .keys()
            .filter(|v| !telemetry::VARIABLES.contains(&v.as_str()))
        {
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
fn each_tables_key_and_ttl_attribute_are_the_ones_its_service_writes() {
    let template = template();
    for (spec, crate_dir) in checks::SERVICE_TABLES
        .iter()
        .zip(["services/inventory", "services/payment"])
    {
        let table = properties(&template, spec.table);
        assert_eq!(table["KeySchema"][0]["AttributeName"], spec.key);
        assert_eq!(
            table["TimeToLiveSpecification"]["AttributeName"],
            checks::TTL_ATTRIBUTE
        );
        let path = repository_root().join(crate_dir).join("src/table.rs");
        let source = std::fs::read_to_string(&path).unwrap();
        for declaration in [
            format!("pub const PARTITION_KEY: &str = \"{}\";", spec.key),
            format!(
                "pub const EXPIRES_AT: &str = \"{}\";",
                checks::TTL_ATTRIBUTE
            ),
        ] {
            assert!(
                source.contains(&declaration),
                "{} lacks `{declaration}`: the table {} declares is not the one it writes",
                path.display(),
                spec.table
            );
        }
    }
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
        "InventoryTableName",
        "PaymentsTableName",
    ] {
        assert!(outputs.contains(wanted), "no output {wanted}");
    }
    for (output, table) in [
        ("InventoryTableName", "InventoryTable"),
        ("PaymentsTableName", "PaymentsTable"),
    ] {
        assert_eq!(
            template.root["Outputs"][output]["Value"],
            json!({"Ref": table})
        );
    }
    for (output, value) in [
        (
            "AnalyticsDomainEndpoint",
            json!({"Fn::Sub": "https://${AnalyticsDomain.DomainEndpoint}"}),
        ),
        (
            "AnalyticsDashboardsUrl",
            json!({"Fn::Sub": "https://${AnalyticsDomain.DomainEndpoint}/_dashboards"}),
        ),
        (
            "AnalyticsDeliveryStreamName",
            json!({"Ref": "AnalyticsDeliveryStream"}),
        ),
        (
            "AnalyticsBackupBucketName",
            json!({"Ref": "AnalyticsBackupBucket"}),
        ),
        (
            "AnalyticsDashboardsRoleArn",
            json!({"Fn::GetAtt": ["AnalyticsDashboardsRole", "Arn"]}),
        ),
        (
            "AnalyticsFirehoseRoleArn",
            json!({"Fn::GetAtt": ["AnalyticsFirehoseRole", "Arn"]}),
        ),
    ] {
        let output = &template.root["Outputs"][output];
        assert_eq!(output["Value"], value);
        assert_eq!(output["Condition"], analytics::CONDITION);
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
            "AWS::Serverless::LayerVersion" => "AWS::Lambda::LayerVersion",
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

// ---------------------------------------------------------------- traffic analytics

/// The traffic-analytics resources, every one carrying the condition.
const ANALYTICS_RESOURCES: &[&str] = &[
    "AnalyticsBackupBucket",
    "AnalyticsBackupBucketPolicy",
    "AccessLogTransformLogGroup",
    "AnalyticsDeliveryLogGroup",
    "AnalyticsDestinationLogStream",
    "AnalyticsBackupLogStream",
    "AccessLogTransformRole",
    "AccessLogTransformFunction",
    "AnalyticsFirehoseRole",
    "AnalyticsDashboardsRole",
    "AnalyticsDomain",
    "AnalyticsDeliveryStream",
    "AnalyticsAccessLogSubscription",
];

const DOMAIN_ARN: &str =
    "arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/lattice-analytics";

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

fn index_patterns() -> Vec<String> {
    analytics::index_patterns(&repository_root().join(analytics::INDEX_TEMPLATE)).unwrap()
}

fn assert_has(problems: &[String], wanted: &str) {
    assert!(
        problems.iter().any(|p| p == wanted),
        "{wanted:?} not among {problems:#?}"
    );
}

#[test]
fn exactly_the_analytics_resources_and_outputs_carry_the_condition() {
    let template = template();
    let conditional: BTreeSet<&str> = template
        .resources()
        .filter(|(_, r)| r["Condition"] == analytics::CONDITION)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        conditional,
        ANALYTICS_RESOURCES.iter().copied().collect::<BTreeSet<_>>()
    );
    for (name, output) in template.root["Outputs"].as_object().unwrap() {
        let analytics_output = name.starts_with("Analytics");
        assert_eq!(
            output["Condition"] == analytics::CONDITION,
            analytics_output,
            "{name}"
        );
    }
    let parameter = &template.root["Parameters"][analytics::PARAMETER];
    assert_eq!(parameter["Default"], "false");
    assert!(analytics::conditions(&template).is_empty());
}

#[test]
fn an_analytics_piece_without_the_condition_or_a_core_piece_needing_one_is_caught() {
    let unconditional =
        |id: &'static str| broken(move |root| remove(&mut root["Resources"][id], "Condition"));
    let problems = analytics::conditions(&unconditional("AnalyticsDomain"));
    assert_has(&problems, "AnalyticsDomain: a traffic-analytics AWS::OpenSearchService::Domain without Condition WithTrafficAnalytics");
    assert_has(&problems, "AnalyticsDomain: refers to AnalyticsDashboardsRole, which exists only with WithTrafficAnalytics, without carrying that condition");
    // A role nothing else refers to references nothing conditional itself, but only analytics use it.
    assert_eq!(
        analytics::conditions(&unconditional("AnalyticsDashboardsRole")),
        ["AnalyticsDashboardsRole: used only by traffic-analytics resources (AnalyticsDomain), but deployed without WithTrafficAnalytics"]
    );
    assert_eq!(
        analytics::conditions(&unconditional("AnalyticsAccessLogSubscription")),
        ["AnalyticsAccessLogSubscription: refers to AnalyticsDeliveryStream, which exists only with WithTrafficAnalytics, without carrying that condition"]
    );
    let output = broken(|root| remove(&mut root["Outputs"]["AnalyticsDashboardsUrl"], "Condition"));
    assert_eq!(
        analytics::conditions(&output),
        ["Outputs.AnalyticsDashboardsUrl: refers to AnalyticsDomain, which exists only with WithTrafficAnalytics, without carrying that condition"]
    );
    // The core stack reaching into the analytics would fail to deploy without them.
    let core = broken(|root| {
        root["Resources"]["OrderFunction"]["Properties"]["Environment"]["Variables"]["STREAM"] =
            json!({"Ref": "AnalyticsDeliveryStream"});
    });
    assert_eq!(
        analytics::conditions(&core),
        ["OrderFunction: refers to AnalyticsDeliveryStream, which exists only with WithTrafficAnalytics, without carrying that condition"]
    );
    let on_by_default = broken(|root| {
        root["Parameters"]["TrafficAnalytics"]["Default"] = json!("true");
    });
    assert_eq!(analytics::conditions(&on_by_default).len(), 1);
    let other_value = broken(|root| {
        root["Conditions"]["WithTrafficAnalytics"]["Fn::Equals"][1] = json!("yes");
    });
    assert_eq!(analytics::conditions(&other_value).len(), 1);
}

#[test]
fn the_domain_is_https_only_encrypted_and_under_fine_grained_access_control() {
    let template = template();
    assert!(analytics::domains(&template).is_empty());
    let domain = |change: fn(&mut Value)| {
        broken(move |root| change(&mut root["Resources"]["AnalyticsDomain"]["Properties"]))
    };
    for (change, problem) in [
        (
            (|p: &mut Value| p["DomainEndpointOptions"]["EnforceHTTPS"] = json!(false)) as fn(&mut Value),
            "AnalyticsDomain: /DomainEndpointOptions/EnforceHTTPS must be true",
        ),
        (
            |p| p["DomainEndpointOptions"]["TLSSecurityPolicy"] = json!("Policy-Min-TLS-1-0-2019-07"),
            "AnalyticsDomain: DomainEndpointOptions.TLSSecurityPolicy must be a Policy-Min-TLS-1-2 policy",
        ),
        (
            |p| p["EncryptionAtRestOptions"]["Enabled"] = json!(false),
            "AnalyticsDomain: /EncryptionAtRestOptions/Enabled must be true",
        ),
        (
            |p| remove(p, "NodeToNodeEncryptionOptions"),
            "AnalyticsDomain: /NodeToNodeEncryptionOptions/Enabled must be true",
        ),
        (
            |p| p["AdvancedSecurityOptions"]["Enabled"] = json!(false),
            "AnalyticsDomain: /AdvancedSecurityOptions/Enabled must be true",
        ),
        (
            |p| p["AdvancedSecurityOptions"]["InternalUserDatabaseEnabled"] = json!(true),
            "AnalyticsDomain: /AdvancedSecurityOptions/InternalUserDatabaseEnabled must be false",
        ),
        (
            |p| p["EngineVersion"] = json!("Elasticsearch_7.10"),
            "AnalyticsDomain: EngineVersion must be OpenSearch_X.Y",
        ),
    ] {
        assert_eq!(analytics::domains(&domain(change)), [problem]);
    }
    let password = domain(|p| {
        p["AdvancedSecurityOptions"]["MasterUserOptions"] =
            json!({"MasterUserName": "admin", "MasterUserPassword": "hunter2"});
    });
    let problems = analytics::domains(&password);
    assert_has(
        &problems,
        "AnalyticsDomain: MasterUserOptions.MasterUserARN must be a role of this template",
    );
    assert_has(
        &problems,
        "AnalyticsDomain: a master user name or password in the template",
    );
}

/// A copy with statement `index` of the domain's access policy changed.
fn with_access_statement(index: usize, change: impl FnOnce(&mut Value)) -> Template {
    broken(move |root| {
        change(
            &mut root["Resources"]["AnalyticsDomain"]["Properties"]["AccessPolicies"]["Statement"]
                [index],
        )
    })
}

#[test]
fn the_domain_answers_only_this_stacks_two_roles_and_firehose_no_wider_than_its_role() {
    let template = template();
    let policy = &properties(&template, "AnalyticsDomain")["AccessPolicies"];
    assert!(!policy.to_string().contains("\"*\""), "{policy}");
    let everyone = "AnalyticsDomain: principal \"*\" - only roles of this template, never *";
    let names_wrong = "AnalyticsDomain: the access policy names {\"AnalyticsFirehoseRole\"}, must name exactly {\"AnalyticsDashboardsRole\", \"AnalyticsFirehoseRole\"} (the master user and the roles Firehose writes as)";
    let open = with_access_statement(0, |s| s["Principal"] = json!("*"));
    assert_eq!(analytics::domains(&open), [everyone, names_wrong]);
    let open_aws = with_access_statement(0, |s| s["Principal"] = json!({"AWS": "*"}));
    assert_has(
        &analytics::domains(&open_aws),
        "AnalyticsDomain: principal {\"AWS\":\"*\"} - only roles of this template, never *",
    );
    let account = with_access_statement(0, |s| {
        s["Principal"]["AWS"] =
            json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"})
    });
    assert_eq!(analytics::domains(&account).len(), 2);
    let stranger = with_access_statement(1, |s| {
        s["Principal"]["AWS"] = json!({"Fn::GetAtt": ["LoadgenRole", "Arn"]})
    });
    assert_has(&analytics::domains(&stranger), "AnalyticsDomain: the access policy names {\"AnalyticsDashboardsRole\", \"AnalyticsFirehoseRole\", \"LoadgenRole\"}, must name exactly {\"AnalyticsDashboardsRole\", \"AnalyticsFirehoseRole\"} (the master user and the roles Firehose writes as)");
    let everything = with_access_statement(0, |s| s["Action"] = json!("es:*"));
    assert_eq!(
        analytics::domains(&everything),
        ["AnalyticsDomain: es:* - the access policy allows only es:ESHttp* actions, spelled out"]
    );
    let anywhere = with_access_statement(0, |s| s["Resource"] = json!("*"));
    assert_eq!(
        analytics::domains(&anywhere),
        [format!(
            "AnalyticsDomain: resource * is not a path of this domain ({DOMAIN_ARN}/…)"
        )]
    );
    // Within one account an allow in either policy suffices: the access policy must not widen
    // what Firehose's own role allows.
    let wider = with_access_statement(2, |s| {
        s["Resource"] = json!({"Fn::Sub": format!("{DOMAIN_ARN}/*")})
    });
    assert_eq!(
        analytics::domains(&wider),
        [format!("AnalyticsDomain: grants AnalyticsFirehoseRole es:ESHttpGet on {DOMAIN_ARN}/*, which AnalyticsFirehoseRole's own policy does not")]
    );
}

#[test]
fn the_dashboards_role_is_for_this_account_and_http_requests_to_the_domain_only() {
    assert!(analytics::dashboards_roles(&template()).is_empty());
    let public = broken(|root| {
        root["Resources"]["AnalyticsDashboardsRole"]["Properties"]["AssumeRolePolicyDocument"]
            ["Statement"][0]["Principal"] = json!({"AWS": "*"});
    });
    assert_eq!(analytics::dashboards_roles(&public).len(), 1);
    let admin = with_statement(
        "AnalyticsDashboardsRole",
        json!({"Effect": "Allow", "Action": "es:DeleteDomain", "Resource": {"Fn::Sub": DOMAIN_ARN}}),
    );
    assert_eq!(
        analytics::dashboards_roles(&admin),
        [format!("AnalyticsDashboardsRole: es:DeleteDomain on {DOMAIN_ARN} - the master user may only send HTTP requests (es:ESHttp*) to {DOMAIN_ARN}/…")]
    );
}

fn with_stream(change: impl FnOnce(&mut Value)) -> Template {
    broken(move |root| change(&mut root["Resources"]["AnalyticsDeliveryStream"]["Properties"]))
}

#[test]
fn the_stream_is_tagged_transformed_at_1_mb_60_s_rotated_daily_and_backs_up_failures() {
    let patterns = index_patterns();
    let template = template();
    let index = properties(&template, "AnalyticsDeliveryStream")
        ["AmazonopensearchserviceDestinationConfiguration"]["IndexName"]
        .as_str()
        .unwrap();
    assert!(patterns.contains(&format!("{index}-*")), "{patterns:?}");
    assert!(analytics::delivery_streams(&template, &patterns).is_empty());
    let d = "AmazonopensearchserviceDestinationConfiguration";
    let params = |p: &mut Value| -> Value {
        p[d]["ProcessingConfiguration"]["Processors"][0]["Parameters"].take()
    };
    for (change, problem) in [
        (
            (|p: &mut Value| remove(p, "Tags")) as fn(&mut Value),
            "AnalyticsDeliveryStream: no tag LogDeliveryEnabled=true (vended-log delivery writes only to streams with it)".to_owned(),
        ),
        (
            |p| p["DeliveryStreamType"] = json!("KinesisStreamAsSource"),
            "AnalyticsDeliveryStream: DeliveryStreamType must be DirectPut (Lattice puts the records)".to_owned(),
        ),
        (
            |p| p["AmazonopensearchserviceDestinationConfiguration"]["IndexRotationPeriod"] = json!("NoRotation"),
            "AnalyticsDeliveryStream: IndexRotationPeriod must be OneDay, is \"NoRotation\"".to_owned(),
        ),
        (
            |p| p["AmazonopensearchserviceDestinationConfiguration"]["S3BackupMode"] = json!("AllDocuments"),
            "AnalyticsDeliveryStream: S3BackupMode must be FailedDocumentsOnly, is \"AllDocuments\"".to_owned(),
        ),
        (
            |p| p["AmazonopensearchserviceDestinationConfiguration"]["IndexName"] = json!("lattice"),
            "AnalyticsDeliveryStream: IndexName lattice writes lattice-YYYY-MM-DD, but lattice-* is not one of the index template's index_patterns [\"lattice-access-*\"]".to_owned(),
        ),
        (
            |p| p["AmazonopensearchserviceDestinationConfiguration"]["ProcessingConfiguration"]["Enabled"] = json!(false),
            "AnalyticsDeliveryStream: ProcessingConfiguration.Enabled must be true".to_owned(),
        ),
        (
            |p| p["AmazonopensearchserviceDestinationConfiguration"]["CloudWatchLoggingOptions"]["Enabled"] = json!(false),
            "AnalyticsDeliveryStream: CloudWatchLoggingOptions must be enabled, to !Ref <a log group of this template> and !Ref <a log stream of that group>".to_owned(),
        ),
        (
            |p| p["AmazonopensearchserviceDestinationConfiguration"]["S3Configuration"]["BucketARN"] = json!("arn:aws:s3:::somebody-elses"),
            "AnalyticsDeliveryStream: S3Configuration.BucketARN must be !GetAtt <a bucket of this template>.Arn".to_owned(),
        ),
    ] {
        assert_eq!(analytics::delivery_streams(&with_stream(change), &patterns), [problem]);
    }
    for (name, value, problem) in [
        ("BufferSizeInMBs", json!("3"), "AnalyticsDeliveryStream: processor BufferSizeInMBs must be 1, is Some(\"3\")"),
        ("BufferIntervalInSeconds", json!("300"), "AnalyticsDeliveryStream: processor BufferIntervalInSeconds must be 60, is Some(\"300\")"),
        ("LambdaArn", json!({"Fn::GetAtt": ["OrderFunction", "Arn"]}), "AnalyticsDeliveryStream: the processor invokes \"${OrderFunction.Arn}\", not AccessLogTransformFunction"),
    ] {
        let template = with_stream(|p| {
            let mut parameters = params(p);
            for parameter in parameters.as_array_mut().unwrap() {
                if parameter["ParameterName"] == name {
                    parameter["ParameterValue"] = value.clone();
                }
            }
            p[d]["ProcessingConfiguration"]["Processors"][0]["Parameters"] = parameters;
        });
        assert_eq!(analytics::delivery_streams(&template, &patterns), [problem]);
    }
    let unsubscribed = broken(|root| {
        remove(&mut root["Resources"], "AnalyticsAccessLogSubscription");
    });
    assert_eq!(
        analytics::delivery_streams(&unsubscribed, &patterns),
        ["AnalyticsDeliveryStream: no service network's access-log subscription delivers to it"]
    );
    // An index template whose patterns would not cover the daily indices.
    assert_eq!(
        analytics::delivery_streams(&template, &["lattice-*-access".to_owned()]).len(),
        1
    );
}

#[test]
fn the_firehose_role_holds_only_what_the_firehose_guide_lists() {
    let template = template();
    assert!(analytics::firehose_roles(&template).is_empty());
    // The guide's scoped wildcards (bucket objects, domain paths) are no least-privilege problem.
    assert!(checks::least_privilege(&template).is_empty());
    let transform =
        "[\"${AccessLogTransformFunction.Arn}\", \"${AccessLogTransformFunction.Arn}:$LATEST\"]";
    let log_stream = |s: &str| {
        format!("arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{AnalyticsDeliveryLogGroup}}:log-stream:${{{s}}}")
    };
    for (statement, problem) in [
        (
            json!({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": ["OrderFunction", "Arn"]}}),
            format!("AnalyticsFirehoseRole: lambda:InvokeFunction on ${{OrderFunction.Arn}} - Firehose needs it only on {transform}"),
        ),
        (
            json!({"Effect": "Allow", "Action": "es:ESHttpGet", "Resource": {"Fn::Sub": format!("{DOMAIN_ARN}/*")}}),
            format!("AnalyticsFirehoseRole: es:ESHttpGet on {DOMAIN_ARN}/* - Firehose needs it only on {:?}", analytics::firehose_get_paths("lattice-access").iter().map(|p| format!("{DOMAIN_ARN}/{p}")).collect::<Vec<_>>()),
        ),
        (
            json!({"Effect": "Allow", "Action": "es:ESHttpDelete", "Resource": {"Fn::Sub": format!("{DOMAIN_ARN}/*")}}),
            "AnalyticsFirehoseRole: es:ESHttpDelete - not an action Firehose needs (the Firehose guide's list)".to_owned(),
        ),
        (
            json!({"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AnalyticsDeliveryLogGroup}:log-stream:*"}}),
            format!("AnalyticsFirehoseRole: logs:PutLogEvents on arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{AnalyticsDeliveryLogGroup}}:log-stream:* - Firehose needs it only on {:?}", [log_stream("AnalyticsDestinationLogStream"), log_stream("AnalyticsBackupLogStream")]),
        ),
        (
            json!({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["InventoryTable", "Arn"]}}),
            "AnalyticsFirehoseRole: dynamodb:GetItem - not an action Firehose needs (the Firehose guide's list)".to_owned(),
        ),
    ] {
        assert_eq!(
            analytics::firehose_roles(&with_statement("AnalyticsFirehoseRole", statement)),
            [problem]
        );
    }
    let anything = with_statement(
        "AnalyticsFirehoseRole",
        json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}),
    );
    assert_eq!(
        checks::least_privilege(&anything),
        ["AnalyticsFirehoseRole: s3:PutObject on every resource (*)"]
    );
    let other_domain = with_statement(
        "AnalyticsFirehoseRole",
        json!({"Effect": "Allow", "Action": "es:ESHttpPost", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/other/*"}}),
    );
    assert_eq!(
        checks::least_privilege(&other_domain),
        ["AnalyticsFirehoseRole: wildcard resource arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/other/*"]
    );
    let any_account = broken(|root| {
        remove(
            &mut root["Resources"]["AnalyticsFirehoseRole"]["Properties"]
                ["AssumeRolePolicyDocument"]["Statement"][0],
            "Condition",
        );
    });
    assert_eq!(analytics::firehose_roles(&any_account).len(), 1);
    let cannot_invoke = broken(|root| {
        root["Resources"]["AnalyticsFirehoseRole"]["Properties"]["Policies"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p["PolicyName"] != "invoke-transform");
    });
    assert_eq!(
        analytics::firehose_roles(&cannot_invoke),
        ["AnalyticsFirehoseRole: no lambda:InvokeFunction, which Firehose needs to deliver"]
    );
}

#[test]
fn the_backup_bucket_is_encrypted_private_expiring_and_tls_only() {
    assert!(analytics::backup_buckets(&template()).is_empty());
    let bucket = |change: fn(&mut Value)| {
        broken(move |root| change(&mut root["Resources"]["AnalyticsBackupBucket"]["Properties"]))
    };
    for (change, problem) in [
        (
            (|p: &mut Value| remove(p, "BucketEncryption")) as fn(&mut Value),
            "AnalyticsBackupBucket: no default server-side encryption",
        ),
        (
            |p| p["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] = json!(false),
            "AnalyticsBackupBucket: PublicAccessBlockConfiguration.RestrictPublicBuckets must be true",
        ),
        (
            |p| remove(&mut p["LifecycleConfiguration"]["Rules"][0], "AbortIncompleteMultipartUpload"),
            "AnalyticsBackupBucket: no enabled lifecycle rule that expires objects and aborts incomplete multipart uploads",
        ),
        (
            |p| p["LifecycleConfiguration"]["Rules"][0]["Status"] = json!("Disabled"),
            "AnalyticsBackupBucket: no enabled lifecycle rule that expires objects and aborts incomplete multipart uploads",
        ),
    ] {
        assert_eq!(analytics::backup_buckets(&bucket(change)), [problem]);
    }
    let tls_problem = "AnalyticsBackupBucket: no bucket policy denying s3:* on the bucket and its objects when aws:SecureTransport is false";
    let plain_http = broken(|root| {
        root["Resources"]["AnalyticsBackupBucketPolicy"]["Properties"]["PolicyDocument"]
            ["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"] = json!("true");
    });
    assert_eq!(analytics::backup_buckets(&plain_http), [tls_problem]);
    let bucket_only = broken(|root| {
        root["Resources"]["AnalyticsBackupBucketPolicy"]["Properties"]["PolicyDocument"]
            ["Statement"][0]["Resource"] = json!({"Fn::GetAtt": ["AnalyticsBackupBucket", "Arn"]});
    });
    assert_eq!(analytics::backup_buckets(&bucket_only), [tls_problem]);
}

#[test]
fn the_transform_is_outside_the_vpc_not_behind_lattice_and_names_every_service() {
    let template = template();
    assert!(analytics::transform(&template).is_empty());
    assert_eq!(
        properties(&template, "AccessLogTransformFunction")["Environment"]["Variables"]
            ["SERVICE_NAMES"],
        json!({"Fn::Sub": "${OrderService.Arn}=order,${PaymentService.Arn}=payment,${InventoryService.Arn}=inventory"})
    );
    let function = |change: fn(&mut Value)| {
        broken(move |root| {
            change(&mut root["Resources"]["AccessLogTransformFunction"]["Properties"])
        })
    };
    let in_vpc = broken(|root| {
        root["Resources"]["AccessLogTransformFunction"]["Properties"]["VpcConfig"] =
            root["Resources"]["OrderFunction"]["Properties"]["VpcConfig"].clone();
    });
    assert_eq!(
        analytics::transform(&in_vpc),
        ["AccessLogTransformFunction: not in the VPC (it talks to no one)"]
    );
    let behind_lattice = broken(|root| {
        root["Resources"]["OrderTargetGroup"]["Properties"]["Targets"][0]["Id"] =
            json!({"Fn::GetAtt": ["AccessLogTransformFunction", "Arn"]});
    });
    assert_eq!(
        analytics::transform(&behind_lattice),
        ["AccessLogTransformFunction: not behind Lattice (Firehose invokes it)"]
    );
    let slow = function(|p| p["Timeout"] = json!(900));
    assert_eq!(
        analytics::transform(&slow),
        ["AccessLogTransformFunction: Timeout must be at most 300 s (Firehose's invocation limit)"]
    );
    let two_services = function(|p| {
        p["Environment"]["Variables"]["SERVICE_NAMES"] =
            json!({"Fn::Sub": "${OrderService.Arn}=order,${PaymentService.Arn}=payment"})
    });
    assert_eq!(analytics::transform(&two_services).len(), 1);
    let misnamed = function(
        |p| p["Environment"]["Variables"]["SERVICE_NAMES"] = json!({"Fn::Sub": "${OrderService.Arn}=orders,${PaymentService.Arn}=payment,${InventoryService.Arn}=inventory"}),
    );
    assert_eq!(analytics::transform(&misnamed).len(), 1);
    let extra = function(|p| p["Environment"]["Variables"]["RUST_LOG"] = json!("debug"));
    assert_eq!(
        analytics::transform(&extra),
        ["AccessLogTransformFunction: must be given SERVICE_NAMES only, has [\"RUST_LOG\", \"SERVICE_NAMES\"]"]
    );
}

#[test]
fn the_access_log_goes_to_cloudwatch_logs_and_with_analytics_to_the_stream_as_well() {
    let template = template();
    let subscriptions: BTreeSet<String> = template
        .of_type("AWS::VpcLattice::AccessLogSubscription")
        .map(|(_, s)| s["Properties"]["DestinationArn"].to_string())
        .collect();
    assert_eq!(subscriptions.len(), 2, "{subscriptions:?}");
    assert!(checks::access_logs(&template).is_empty());
    let stream_only = broken(|root| remove(&mut root["Resources"], "AccessLogSubscription"));
    assert_eq!(
        checks::access_logs(&stream_only),
        ["ServiceNetwork: no access-log subscription to a /aws/vendedlogs/ log group"]
    );
}
