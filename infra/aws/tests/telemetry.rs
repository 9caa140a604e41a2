//! The telemetry extension's rules (`aws_template::telemetry`), each shown to hold on the real
//! template and to fail on a copy broken the way a person might break it: the parameter and its
//! conditions, the rules on the endpoint, the layer and its Makefile, where the layer goes, what
//! each function is given, and what the roles and the analytics domain allow.

use aws_template::Template;
use aws_template::{analytics, checks, telemetry};
use serde_json::{json, Value};

mod support;
use support::{broken, repository_root, source_of, template, template_dir};

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

fn assert_has(problems: &[String], wanted: &str) {
    assert!(
        problems.iter().any(|p| p == wanted),
        "{wanted:?} not among {problems:#?}"
    );
}

const FUNCTIONS: [&str; 3] = ["OrderFunction", "PaymentFunction", "InventoryFunction"];
const ROLES: [&str; 3] = ["OrderRole", "PaymentRole", "InventoryRole"];
const ANALYTICS_DOMAIN: &str =
    "arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/lattice-analytics";
const GIVEN_DOMAIN: &str = "arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/${TelemetryOpenSearchDomainName}";
const SECRET: &str = "${TelemetryAuthSecretArn}";

fn makefile_text() -> String {
    std::fs::read_to_string(template_dir().join("Makefile")).unwrap()
}

#[test]
fn the_template_keeps_every_telemetry_rule() {
    let template = template();
    let problems = telemetry::all(&template, &template_dir());
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(telemetry::makefile(&makefile_text()).is_empty());
    // The grants' lambda-* paths on the domain the extension is given are no least-privilege
    // problem, and the analytics rules still hold with the function roles admitted.
    assert!(checks::least_privilege(&template).is_empty());
    assert!(analytics::all(&template, &["lattice-access-*".to_owned()]).is_empty());
}

#[test]
fn the_extension_is_off_by_default_and_all_of_it_hangs_on_its_condition() {
    let template = template();
    assert_eq!(
        template.root["Parameters"][telemetry::PARAMETER]["Default"],
        "false"
    );
    assert_eq!(
        template.resource(telemetry::LAYER).unwrap()["Condition"],
        telemetry::CONDITION
    );
    assert!(telemetry::conditions(&template).is_empty());
    let on_by_default = broken(|root| {
        root["Parameters"]["TelemetryExtension"]["Default"] = json!("true");
    });
    assert_eq!(
        telemetry::conditions(&on_by_default),
        ["TelemetryExtension: must be a String parameter, AllowedValues [\"true\", \"false\"], Default \"false\""]
    );
    let other_value = broken(|root| {
        root["Conditions"]["WithTelemetry"]["Fn::Equals"][1] = json!("yes");
    });
    assert_eq!(telemetry::conditions(&other_value).len(), 1);
    // The secret's condition must need the extension too, or the policy comes without it.
    let secret_alone = broken(|root| {
        root["Conditions"]["HasTelemetryAuthSecret"] =
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "TelemetryAuthSecretArn"}, ""]}]});
    });
    let problems = telemetry::conditions(&secret_alone);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("HasTelemetryAuthSecret: must be "));
    let unconditional = broken(|root| {
        remove(
            &mut root["Resources"]["TelemetryExtensionLayer"],
            "Condition",
        )
    });
    assert_eq!(
        telemetry::conditions(&unconditional),
        ["TelemetryExtensionLayer: a telemetry AWS::Serverless::LayerVersion without a Condition implying WithTelemetry"]
    );
    // The core stack referring to the layer outside the condition fails without it.
    let attached_always = broken(|root| {
        root["Resources"]["OrderFunction"]["Properties"]["Layers"] =
            json!([{"Ref": "TelemetryExtensionLayer"}]);
    });
    assert_eq!(
        telemetry::conditions(&attached_always),
        ["OrderFunction: refers to TelemetryExtensionLayer, which exists only with WithTelemetry, outside an Fn::If on a condition implying it"]
    );
    let wrong_condition = broken(|root| {
        root["Resources"]["PaymentFunction"]["Properties"]["Layers"]["Fn::If"][0] =
            json!("WithTrafficAnalytics");
    });
    assert_eq!(
        telemetry::conditions(&wrong_condition),
        ["PaymentFunction: refers to TelemetryExtensionLayer, which exists only with WithTelemetry, outside an Fn::If on a condition implying it"]
    );
    let output = broken(|root| {
        root["Outputs"]["TelemetryLayerArn"] = json!({"Value": {"Ref": "TelemetryExtensionLayer"}});
    });
    assert_eq!(
        telemetry::conditions(&output),
        ["Outputs.TelemetryLayerArn: refers to TelemetryExtensionLayer, which exists only with WithTelemetry, outside an Fn::If on a condition implying it"]
    );
}

#[test]
fn the_rules_refuse_the_extension_with_nowhere_or_no_way_to_write() {
    assert!(telemetry::endpoint(&template()).is_empty());
    let rule = |name: &'static str, change: fn(&mut Value)| {
        broken(move |root| change(&mut root["Rules"][name]))
    };
    for (template, what) in [
        (
            broken(|root| remove(&mut root["Rules"], "TelemetryNeedsAnEndpoint")),
            "(with TelemetryExtension=true and TrafficAnalytics=false, TelemetryOpenSearchUrl must be given)",
        ),
        // Asserting the opposite.
        (
            rule("TelemetryNeedsAnEndpoint", |r| {
                r["Assertions"][0]["Assert"] =
                    json!({"Fn::Equals": [{"Ref": "TelemetryOpenSearchUrl"}, ""]})
            }),
            "(with TelemetryExtension=true and TrafficAnalytics=false, TelemetryOpenSearchUrl must be given)",
        ),
        // A rule that never applies (the analytics domain's case instead).
        (
            rule("TelemetryNeedsAnEndpoint", |r| {
                r["RuleCondition"]["Fn::And"][1]["Fn::Equals"][1] = json!("true")
            }),
            "(with TelemetryExtension=true and TrafficAnalytics=false, TelemetryOpenSearchUrl must be given)",
        ),
        (
            broken(|root| remove(&mut root["Rules"], "TelemetrySigV4NeedsTheDomain")),
            "(SigV4 to TelemetryOpenSearchUrl (TelemetryAuthSecretArn empty) needs TelemetryOpenSearchDomainName)",
        ),
        (
            broken(|root| remove(&mut root["Rules"], "TelemetryToAnalyticsSignsWithSigV4")),
            "(writing to the traffic-analytics domain (IAM only), TelemetryAuthSecretArn must be empty)",
        ),
    ] {
        let problems = telemetry::endpoint(&template);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("Rules: none asserts ") && problems[0].ends_with(what),
            "{problems:?}"
        );
    }
    let plain_http = broken(|root| {
        root["Parameters"]["TelemetryOpenSearchUrl"]["AllowedPattern"] =
            json!("^$|^https?://[A-Za-z0-9.-]+$");
    });
    assert_eq!(
        telemetry::endpoint(&plain_http),
        ["TelemetryOpenSearchUrl: must be a String parameter, Default \"\", AllowedPattern \"^$|^https://…\""]
    );
}

#[test]
fn the_layer_is_built_by_its_makefile_for_arm64_from_the_extension_crate() {
    let dir = template_dir();
    assert!(telemetry::layer(&template(), &dir).is_empty());
    let layer = |change: fn(&mut Value)| {
        broken(move |root| change(&mut root["Resources"]["TelemetryExtensionLayer"]))
    };
    for (change, problem) in [
        (
            (|l: &mut Value| l["Metadata"]["BuildMethod"] = json!("rust-cargolambda")) as fn(&mut Value),
            "TelemetryExtensionLayer: Metadata.BuildMethod must be makefile (SAM's rust-cargolambda builds functions only), is \"rust-cargolambda\"",
        ),
        (
            |l| remove(&mut l["Metadata"], "BuildArchitecture"),
            "TelemetryExtensionLayer: Metadata.BuildArchitecture must be arm64, is null",
        ),
        (
            |l| l["Properties"]["ContentUri"] = json!("../../services/order"),
            "TelemetryExtensionLayer: ContentUri Some(\"../../services/order\") is not a crate of this repository that builds opensearch-telemetry",
        ),
    ] {
        assert_eq!(telemetry::layer(&layer(change), &dir), [problem]);
    }
    // Built for x86_64, or for another runtime: the functions that carry it cannot run it.
    for (change, problem) in [
        (
            (|l: &mut Value| l["Properties"]["CompatibleArchitectures"] = json!(["x86_64"])) as fn(&mut Value),
            "TelemetryExtensionLayer: CompatibleArchitectures must be [arm64], is [\"x86_64\"]",
        ),
        (
            |l| l["Properties"]["CompatibleRuntimes"] = json!(["provided.al2"]),
            "TelemetryExtensionLayer: CompatibleRuntimes must be [provided.al2023], is [\"provided.al2\"]",
        ),
    ] {
        let problems = telemetry::layer(&layer(change), &dir);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(problems[0], problem);
        for function in FUNCTIONS {
            assert_has(
                &problems,
                &format!("{function}: runs on an architecture or runtime TelemetryExtensionLayer is not built for"),
            );
        }
    }
    // The Makefile is where ContextPath says, else in the ContentUri (the crate has none).
    for change in [
        (|l: &mut Value| l["Metadata"]["ContextPath"] = json!("../../services")) as fn(&mut Value),
        |l| remove(&mut l["Metadata"], "ContextPath"),
    ] {
        let problems = telemetry::layer(&layer(change), &dir);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .starts_with("TelemetryExtensionLayer: no Makefile for BuildMethod makefile at "));
    }
    let missing = broken(|root| remove(&mut root["Resources"], "TelemetryExtensionLayer"));
    assert_eq!(
        telemetry::layer(&missing, &dir),
        ["TelemetryExtensionLayer: no AWS::Serverless::LayerVersion of that id"]
    );
}

#[test]
fn the_makefile_target_runs_cargo_lambda_into_the_artifacts_dir() {
    let text = makefile_text();
    assert!(text.contains("\n\tcd \"$(ROOT)\" && cargo lambda build --release --extension --arm64 -p opensearch-telemetry --lambda-dir \"$(ARTIFACTS_DIR)\"\n"));
    let name = "Makefile build-TelemetryExtensionLayer";
    let with = |from: &str, to: &str| {
        assert!(text.contains(from), "the Makefile has {from}");
        telemetry::makefile(&text.replacen(from, to, 1))
    };
    for (from, to, problem) in [
        (" --extension", "", format!("{name}: cargo lambda build without --extension (the binary at <lambda-dir>/extensions/<name>, not <name>/bootstrap)")),
        (" --release", "", format!("{name}: cargo lambda build without --release (a release build)")),
        (" --arm64", "", format!("{name}: cargo lambda build without --arm64 (the functions are arm64)")),
        ("-p opensearch-telemetry", "-p order", format!("{name}: cargo lambda build must build -p opensearch-telemetry")),
        (" --lambda-dir \"$(ARTIFACTS_DIR)\"", "", format!("{name}: cargo lambda build must write to --lambda-dir $(ARTIFACTS_DIR) (the layer's root), not None")),
        // One level too deep: the layer would hold extensions/extensions/opensearch-telemetry.
        ("\"$(ARTIFACTS_DIR)\"\n", "\"$(ARTIFACTS_DIR)/extensions\"\n", format!("{name}: cargo lambda build must write to --lambda-dir $(ARTIFACTS_DIR) (the layer's root), not Some(\"$(ARTIFACTS_DIR)/extensions\")")),
        (" --extension", " --extension --internal", format!("{name}: cargo lambda build with --internal (an internal extension is no process of its own)")),
        (" --release", " --release --output-format zip", format!("{name}: cargo lambda build with --output-format (a zip inside the layer's zip)")),
        ("build-TelemetryExtensionLayer:\n", "build-TelemetryLayer:\n", format!("{name}: no such target (sam build runs `make build-TelemetryExtensionLayer`)")),
        // Make runs only tab-indented recipe lines.
        ("\n\tcd \"$(ROOT)\"", "\n        cd \"$(ROOT)\"", format!("{name}: no recipe line (tab-indented) runs cargo lambda build")),
    ] {
        assert_eq!(with(from, to), [problem], "{from} -> {to}");
    }
    assert_eq!(
        with(" --arm64", " --x86-64"),
        [
            format!("{name}: cargo lambda build without --arm64 (the functions are arm64)"),
            format!("{name}: cargo lambda build with --x86-64 (the functions are arm64)"),
        ]
    );
    // The `=` forms are the same flags.
    assert!(with(
        " --lambda-dir \"$(ARTIFACTS_DIR)\"",
        " --lambda-dir=$(ARTIFACTS_DIR)"
    )
    .is_empty());
    assert!(with("-p opensearch-telemetry", "--package=opensearch-telemetry").is_empty());
}

/// A copy whose `function`'s `Layers` is `layers`.
fn with_layers(function: &'static str, layers: Value) -> Template {
    broken(move |root| root["Resources"][function]["Properties"]["Layers"] = layers)
}

#[test]
fn the_layer_is_on_exactly_order_payment_and_inventory_and_only_with_the_condition() {
    let template = template();
    for function in FUNCTIONS {
        assert_eq!(
            template.resource(function).unwrap()["Properties"]["Layers"],
            json!({"Fn::If": ["WithTelemetry", [{"Ref": "TelemetryExtensionLayer"}], {"Ref": "AWS::NoValue"}]})
        );
    }
    assert!(telemetry::attachments(&template).is_empty());
    let missing = broken(|root| {
        remove(
            &mut root["Resources"]["PaymentFunction"]["Properties"],
            "Layers",
        )
    });
    assert_eq!(
        telemetry::attachments(&missing),
        ["PaymentFunction: does not attach TelemetryExtensionLayer"]
    );
    assert_eq!(
        telemetry::attachments(&with_layers("InventoryFunction", json!([{"Ref": "TelemetryExtensionLayer"}]))),
        ["InventoryFunction: attaches TelemetryExtensionLayer when [], not only under WithTelemetry"]
    );
    // The branches swapped: the layer exactly when the extension is off.
    assert_eq!(
        telemetry::attachments(&with_layers(
            "OrderFunction",
            json!({"Fn::If": ["WithTelemetry", {"Ref": "AWS::NoValue"}, [{"Ref": "TelemetryExtensionLayer"}]]})
        )),
        ["OrderFunction: attaches TelemetryExtensionLayer when [(\"WithTelemetry\", false)], not only under WithTelemetry"]
    );
    let attached = json!({"Fn::If": ["WithTelemetry", [{"Ref": "TelemetryExtensionLayer"}], {"Ref": "AWS::NoValue"}]});
    assert_eq!(
        telemetry::attachments(&with_layers("LoadgenRunnerFunction", attached.clone())),
        ["LoadgenRunnerFunction: attaches TelemetryExtensionLayer, which only [\"OrderFunction\", \"PaymentFunction\", \"InventoryFunction\"] carry"]
    );
    let global = broken(|root| root["Globals"]["Function"]["Layers"] = attached);
    let problems = telemetry::attachments(&global);
    assert_has(&problems, "Globals.Function: Layers would attach to every function; attach the telemetry layer to order, payment and inventory only");
    assert_has(&problems, "AccessLogTransformFunction: attaches TelemetryExtensionLayer, which only [\"OrderFunction\", \"PaymentFunction\", \"InventoryFunction\"] carry");
    // The item-level form is the same attachment.
    assert!(telemetry::attachments(&with_layers(
        "OrderFunction",
        json!([{"Fn::If": ["WithTelemetry", {"Ref": "TelemetryExtensionLayer"}, {"Ref": "AWS::NoValue"}]}])
    ))
    .is_empty());
}

/// A copy with `variable` set to `value` on all three functions.
fn with_variable(variable: &'static str, value: Value) -> Template {
    broken(move |root| {
        for function in FUNCTIONS {
            root["Resources"][function]["Properties"]["Environment"]["Variables"][variable] =
                value.clone();
        }
    })
}

fn when_on(value: Value) -> Value {
    json!({"Fn::If": ["WithTelemetry", value, {"Ref": "AWS::NoValue"}]})
}

/// The same problem for each of the three functions.
fn each(problem: &str) -> Vec<String> {
    FUNCTIONS
        .iter()
        .map(|f| format!("{f}: {problem}"))
        .collect()
}

#[test]
fn each_function_gets_the_extensions_settings_only_with_the_condition() {
    let template = template();
    assert!(telemetry::environment(&template).is_empty());
    let variables =
        &template.resource("PaymentFunction").unwrap()["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["PLATFORM_INDEX"],
        when_on(json!("lambda-platform"))
    );
    assert_eq!(
        variables["URL"],
        json!({"Fn::If": ["TelemetryToAnalytics", {"Fn::Sub": "https://${AnalyticsDomain.DomainEndpoint}"}, when_on(json!({"Ref": "TelemetryOpenSearchUrl"}))]})
    );
    assert_eq!(
        variables["AUTH_SECRET"],
        json!({"Fn::If": ["HasTelemetryAuthSecret", {"Ref": "TelemetryAuthSecretArn"}, {"Ref": "AWS::NoValue"}]})
    );
    let missing = broken(|root| {
        remove(
            &mut root["Resources"]["InventoryFunction"]["Properties"]["Environment"]["Variables"],
            "EXTENSION_INDEX",
        )
    });
    assert_eq!(
        telemetry::environment(&missing),
        [
            "InventoryFunction: no EXTENSION_INDEX (the telemetry extension reads it)",
            "InventoryFunction: its telemetry variables differ from OrderFunction's"
        ]
    );
    let core = with_variable("DISPATCH_MIN_BATCH_SIZE", json!("50"));
    assert_eq!(
        telemetry::environment(&core),
        each("DISPATCH_MIN_BATCH_SIZE = \"50\" when [], not only under WithTelemetry")
    );
    for (variable, value, problem) in [
        ("DISPATCH_MIN_BATCH_SIZE", json!("0"), "DISPATCH_MIN_BATCH_SIZE = \"0\", must be a positive integer"),
        ("DISPATCH_MIN_BATCH_SIZE", json!("fifty"), "DISPATCH_MIN_BATCH_SIZE = \"fifty\", must be a positive integer"),
        // Outside lambda-*, which is all the roles may write.
        ("PLATFORM_INDEX", json!("platform"), "PLATFORM_INDEX = \"platform\", must be a lowercase index name starting with lambda-"),
        ("EXTENSION_INDEX", json!("lambda-Extension"), "EXTENSION_INDEX = \"lambda-Extension\", must be a lowercase index name starting with lambda-"),
    ] {
        assert_eq!(telemetry::environment(&with_variable(variable, when_on(value))), each(problem));
    }
    assert_eq!(
        telemetry::environment(&with_variable("FUNCTION_INDEX", when_on(json!("lambda-platform")))),
        ["OrderFunction: [\"PLATFORM_INDEX\", \"FUNCTION_INDEX\", \"EXTENSION_INDEX\"] must name 3 distinct indices, name {\"lambda-extension\", \"lambda-platform\"}"]
    );
    // The secret's variable only when a secret is given; and the parameter, not a copy of an ARN.
    assert_eq!(
        telemetry::environment(&with_variable("AUTH_SECRET", when_on(json!({"Ref": "TelemetryAuthSecretArn"})))),
        each("AUTH_SECRET = {\"Ref\":\"TelemetryAuthSecretArn\"} when [(\"WithTelemetry\", true)], not only under HasTelemetryAuthSecret")
    );
    let literal = "arn:aws:secretsmanager:us-east-1:123456789012:secret:opensearch-AbCdEf";
    assert_eq!(
        telemetry::environment(&with_variable(
            "AUTH_SECRET",
            json!({"Fn::If": ["HasTelemetryAuthSecret", literal, {"Ref": "AWS::NoValue"}]})
        )),
        each(&format!(
            "AUTH_SECRET = \"{literal}\", must be !Ref TelemetryAuthSecretArn"
        ))
    );
    // A fixed URL instead of the parameter or the analytics domain.
    let fixed = telemetry::environment(&with_variable(
        "URL",
        when_on(json!("http://opensearch.example")),
    ));
    let mut wanted = each("URL = \"http://opensearch.example\", must be !Ref TelemetryOpenSearchUrl or https://${<an OpenSearch domain of this template>.DomainEndpoint}");
    wanted.push(
        "URL: never the endpoint of AnalyticsDomain (the extension's default when it exists)"
            .to_owned(),
    );
    assert_eq!(fixed, wanted);
    // The analytics domain named when the analytics may be off: the stack would not deploy.
    let ungated = with_variable(
        "URL",
        when_on(json!({"Fn::Sub": "https://${AnalyticsDomain.DomainEndpoint}"})),
    );
    assert_eq!(
        telemetry::environment(&ungated),
        each("URL names AnalyticsDomain when [(\"WithTelemetry\", true)], which does not imply its condition WithTrafficAnalytics")
    );
    assert_has(
        &analytics::conditions(&ungated),
        "OrderFunction: refers to AnalyticsDomain, which exists only with WithTrafficAnalytics, without carrying that condition",
    );
    let runner = broken(|root| {
        root["Resources"]["LoadgenRunnerFunction"]["Properties"]["Environment"]["Variables"]
            ["URL"] = when_on(json!({"Ref": "TelemetryOpenSearchUrl"}));
    });
    assert_eq!(
        telemetry::environment(&runner),
        ["LoadgenRunnerFunction: URL without the telemetry extension"]
    );
}

#[test]
fn the_extension_reads_every_variable_the_template_gives_it() {
    let source = source_of(&repository_root().join("extensions/telemetry"))
        + &source_of(&repository_root().join("shared"));
    let unread: Vec<&str> = telemetry::VARIABLES
        .iter()
        .copied()
        .filter(|v| !source.contains(&format!("\"{v}\"")))
        .collect();
    assert!(
        unread.is_empty(),
        "the template sets {unread:?} on order, payment and inventory, which extensions/telemetry never names"
    );
}

/// A copy with the `Fn::If`-wrapped policy `name` of `role` changed (`branch` is the whole
/// `Fn::If` element).
fn with_conditional_policy(
    role: &'static str,
    name: &'static str,
    change: impl FnOnce(&mut Value),
) -> Template {
    broken(move |root| {
        let element = root["Resources"][role]["Properties"]["Policies"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|p| p["Fn::If"][1]["PolicyName"] == name)
            .unwrap_or_else(|| panic!("{role} has {name}"));
        change(element);
    })
}

fn with_statement(role: &'static str, statement: Value) -> Template {
    broken(move |root| {
        root["Resources"][role]["Properties"]["Policies"]
            .as_array_mut()
            .unwrap()
            .push(json!({"PolicyName": "extra", "PolicyDocument": {"Statement": [statement]}}));
    })
}

#[test]
fn the_secret_is_readable_as_exactly_that_arn_and_only_when_it_is_given() {
    let template = template();
    assert!(telemetry::secret_access(&template).is_empty());
    let secret_statement = |change: fn(&mut Value)| {
        with_conditional_policy("PaymentRole", "telemetry-auth-secret", move |e| {
            change(&mut e["Fn::If"][1]["PolicyDocument"]["Statement"][0])
        })
    };
    let not_exactly = |action: &str, resource: &str| {
        format!("PaymentRole: {action} on {resource}, must be exactly secretsmanager:GetSecretValue on {SECRET}")
    };
    let anything = secret_statement(|s| s["Resource"] = json!("*"));
    assert_eq!(
        telemetry::secret_access(&anything),
        [not_exactly("secretsmanager:GetSecretValue", "*")]
    );
    assert_eq!(
        checks::least_privilege(&anything),
        ["PaymentRole: secretsmanager:GetSecretValue on every resource (*)"]
    );
    let every_secret =
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*";
    let any_secret = secret_statement(
        |s| s["Resource"] = json!({"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}),
    );
    assert_eq!(
        telemetry::secret_access(&any_secret),
        [not_exactly("secretsmanager:GetSecretValue", every_secret)]
    );
    assert_eq!(
        checks::least_privilege(&any_secret),
        [format!("PaymentRole: wildcard resource {every_secret}")]
    );
    let more = secret_statement(|s| {
        s["Action"] = json!([
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret"
        ])
    });
    assert_eq!(
        telemetry::secret_access(&more),
        [not_exactly("secretsmanager:DescribeSecret", SECRET)]
    );
    let wildcard = secret_statement(|s| s["Action"] = json!("secretsmanager:*"));
    assert_eq!(
        telemetry::secret_access(&wildcard),
        [not_exactly("secretsmanager:*", SECRET)]
    );
    // Granted whenever the extension is on, or always.
    let too_often = with_conditional_policy("InventoryRole", "telemetry-auth-secret", |e| {
        e["Fn::If"][0] = json!("WithTelemetry")
    });
    assert_eq!(
        telemetry::secret_access(&too_often),
        [format!("InventoryRole: secretsmanager:GetSecretValue on {SECRET} when [(\"WithTelemetry\", true)], not only under HasTelemetryAuthSecret")]
    );
    let always = with_conditional_policy("OrderRole", "telemetry-auth-secret", |e| {
        *e = e["Fn::If"][1].clone()
    });
    assert_eq!(
        telemetry::secret_access(&always),
        [format!("OrderRole: secretsmanager:GetSecretValue on {SECRET} when [], not only under HasTelemetryAuthSecret")]
    );
    let stranger = with_statement(
        "LoadgenRole",
        json!({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "TelemetryAuthSecretArn"}}),
    );
    assert_eq!(
        telemetry::secret_access(&stranger),
        [format!("LoadgenRole: secretsmanager:GetSecretValue on {SECRET} - only the telemetry extension's functions read its secret")]
    );
    let missing = broken(|root| {
        root["Resources"]["PaymentRole"]["Properties"]["Policies"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p["Fn::If"][1]["PolicyName"] != "telemetry-auth-secret");
    });
    assert_eq!(
        telemetry::secret_access(&missing),
        [format!("PaymentRole: no secretsmanager:GetSecretValue on {SECRET} (the extension's basic auth)")]
    );
    // A pattern that lets a wildcard or a partial ARN through.
    let loose = broken(|root| {
        root["Parameters"]["TelemetryAuthSecretArn"]["AllowedPattern"] =
            json!("^$|^arn:aws[a-z-]*:secretsmanager:.*$");
    });
    assert_eq!(telemetry::secret_access(&loose).len(), 1);
}

/// A copy with statement `index` of `role`'s telemetry-opensearch policy changed.
fn with_es_statement(
    role: &'static str,
    index: usize,
    change: impl FnOnce(&mut Value),
) -> Template {
    with_conditional_policy(role, "telemetry-opensearch", move |e| {
        change(&mut e["Fn::If"][1]["PolicyDocument"]["Statement"][index])
    })
}

#[test]
fn the_functions_may_reach_only_the_extensions_paths_on_the_one_domain() {
    let template = template();
    assert!(telemetry::opensearch_access(&template).is_empty());
    let delete = with_es_statement("OrderRole", 0, |s| {
        s["Action"] = json!(["es:ESHttpPost", "es:ESHttpDelete"])
    });
    let problems = telemetry::opensearch_access(&delete);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems
        .iter()
        .all(|p| p.starts_with("OrderRole: es:ESHttpDelete on ")));
    // The whole domain: a scoped wildcard to least_privilege, too much here.
    let whole = with_es_statement("PaymentRole", 0, |s| {
        s["Resource"]["Fn::If"][1] = json!([{"Fn::Sub": format!("{ANALYTICS_DOMAIN}/*")}])
    });
    assert!(checks::least_privilege(&whole).is_empty());
    assert_eq!(
        telemetry::opensearch_access(&whole),
        [
            format!("PaymentRole: es:ESHttpPost on {ANALYTICS_DOMAIN}/* - the telemetry extension needs only {:?} on the paths of the domain it writes to", telemetry::ES_GRANTS),
            format!("PaymentRole: no es:ESHttpPost on {ANALYTICS_DOMAIN}/_bulk, which PaymentFunction's telemetry extension needs"),
            format!("PaymentRole: no es:ESHttpPost on {ANALYTICS_DOMAIN}/lambda-*, which PaymentFunction's telemetry extension needs"),
        ]
    );
    let other = "arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/other/lambda-*";
    let elsewhere = with_es_statement("InventoryRole", 1, |s| {
        s["Resource"]["Fn::If"][2][1] = json!({"Fn::Sub": other})
    });
    assert_has(
        &telemetry::opensearch_access(&elsewhere),
        &format!("InventoryRole: no es:ESHttpPut on {GIVEN_DOMAIN}/lambda-*, which InventoryFunction's telemetry extension needs"),
    );
    assert_eq!(
        checks::least_privilege(&elsewhere),
        [format!("InventoryRole: wildcard resource {other}")]
    );
    // Without the condition, the core stack's roles would hold them.
    let always = with_conditional_policy("OrderRole", "telemetry-opensearch", |e| {
        *e = e["Fn::If"][1].clone()
    });
    let problems = telemetry::opensearch_access(&always);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems.iter().all(|p| p.contains(GIVEN_DOMAIN)
        && p.ends_with("when [(\"TelemetryToAnalytics\", false)], not only under WithTelemetry")));
    // The analytics domain's paths chosen by a condition that does not imply the analytics.
    let ungated = with_es_statement("OrderRole", 0, |s| {
        s["Resource"]["Fn::If"][0] = json!("WithTelemetry")
    });
    assert_eq!(
        telemetry::opensearch_access(&ungated),
        ["_bulk", "lambda-*"].map(|p| format!("OrderRole: es:ESHttpPost on {ANALYTICS_DOMAIN}/{p} when [(\"TelemetrySigV4\", true), (\"WithTelemetry\", true)], which does not imply that domain's condition WithTrafficAnalytics"))
    );
    let no_get = with_conditional_policy("PaymentRole", "telemetry-opensearch", |e| {
        e["Fn::If"][1]["PolicyDocument"]["Statement"]
            .as_array_mut()
            .unwrap()
            .retain(|s| s["Action"] != "es:ESHttpGet")
    });
    assert_eq!(
        telemetry::opensearch_access(&no_get),
        [ANALYTICS_DOMAIN, GIVEN_DOMAIN].map(|d| format!("PaymentRole: no es:ESHttpGet on {d}/_index_template/lambda-*, which PaymentFunction's telemetry extension needs"))
    );
    let everywhere = with_statement(
        "OrderRole",
        json!({"Effect": "Allow", "Action": "es:ESHttpPost", "Resource": "*"}),
    );
    assert_eq!(
        checks::least_privilege(&everywhere),
        ["OrderRole: es:ESHttpPost on every resource (*)"]
    );
    assert_eq!(
        telemetry::opensearch_access(&everywhere),
        [
            "OrderRole: es:ESHttpPost on * when [], not only under WithTelemetry".to_owned(),
            format!("OrderRole: es:ESHttpPost on * - the telemetry extension needs only {:?} on the paths of the domain it writes to", telemetry::ES_GRANTS),
        ]
    );
    // A domain-name pattern that admits a wildcard: the grants' scope no longer holds.
    let loose = broken(|root| {
        root["Parameters"]["TelemetryOpenSearchDomainName"]["AllowedPattern"] = json!("^.*$");
    });
    assert_eq!(telemetry::opensearch_access(&loose).len(), 1);
    let problems = checks::least_privilege(&loose);
    assert_eq!(problems.len(), 12, "{problems:#?}");
    assert!(problems
        .iter()
        .all(|p| p.contains("wildcard resource") && p.contains(GIVEN_DOMAIN)));
}

/// A copy with the analytics domain's access-policy statements changed.
fn with_access_policy(change: impl FnOnce(&mut Vec<Value>)) -> Template {
    broken(move |root| {
        change(
            root["Resources"]["AnalyticsDomain"]["Properties"]["AccessPolicies"]["Statement"]
                .as_array_mut()
                .unwrap(),
        )
    })
}

fn is_conditional(statement: &Value) -> bool {
    statement.get("Fn::If").is_some()
}

#[test]
fn the_analytics_domain_admits_the_function_roles_to_exactly_their_own_grants() {
    let template = template();
    assert!(telemetry::analytics_domain_access(&template).is_empty());
    assert!(analytics::domains(&template).is_empty());
    let statements = template.resource("AnalyticsDomain").unwrap()["Properties"]["AccessPolicies"]
        ["Statement"]
        .as_array()
        .unwrap()
        .clone();
    let conditional: Vec<&Value> = statements.iter().filter(|s| is_conditional(s)).collect();
    assert_eq!(conditional.len(), 3);
    for statement in conditional {
        assert_eq!(statement["Fn::If"][0], "TelemetryToAnalytics");
        assert_eq!(
            statement["Fn::If"][1]["Principal"]["AWS"],
            json!(ROLES.map(|r| json!({"Fn::GetAtt": [r, "Arn"]})))
        );
    }
    let closed = with_access_policy(|s| s.retain(|s| !is_conditional(s)));
    let problems = telemetry::analytics_domain_access(&closed);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    for (role, function) in ROLES.iter().zip(FUNCTIONS) {
        assert!(problems.iter().any(|p| p.starts_with(&format!(
            "AnalyticsDomain: admits {role} ({function}'s) to {{}} under WithTelemetry, must be exactly its own grants"
        ))));
    }
    let stranger = with_access_policy(|s| {
        s[3]["Fn::If"][1]["Principal"]["AWS"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Fn::GetAtt": ["LoadgenRole", "Arn"]}))
    });
    assert_eq!(
        telemetry::analytics_domain_access(&stranger),
        ["AnalyticsDomain: the telemetry statements admit {\"Fn::GetAtt\":[\"LoadgenRole\",\"Arn\"]}, not a role of [\"OrderFunction\", \"PaymentFunction\", \"InventoryFunction\"]"]
    );
    // A path of the domain, so the analytics rules let it pass; wider than the roles' own grants.
    let wider = with_access_policy(|s| {
        s[3]["Fn::If"][1]["Resource"] = json!({"Fn::Sub": format!("{ANALYTICS_DOMAIN}/*")})
    });
    assert!(analytics::domains(&wider).is_empty());
    assert_eq!(telemetry::analytics_domain_access(&wider).len(), 3);
    // Unconditional: the core stack's domain would answer the function roles.
    let always = with_access_policy(|s| {
        for statement in s.iter_mut().filter(|s| is_conditional(s)) {
            *statement = statement["Fn::If"][1].clone();
        }
    });
    assert_has(
        &analytics::domains(&always),
        "AnalyticsDomain: the access policy names {\"AnalyticsDashboardsRole\", \"AnalyticsFirehoseRole\", \"InventoryRole\", \"OrderRole\", \"PaymentRole\"}, must name exactly {\"AnalyticsDashboardsRole\", \"AnalyticsFirehoseRole\"} (the master user and the roles Firehose writes as)",
    );
    // Only the telemetry extension's statements may be conditional.
    let other_condition =
        with_access_policy(|s| s[3]["Fn::If"][0] = json!("HasExtraOrderPrincipals"));
    assert_has(
        &analytics::domains(&other_condition),
        "AnalyticsDomain: a statement chosen by [(\"HasExtraOrderPrincipals\", true)]: only the telemetry extension's (under a condition implying WithTelemetry) may be conditional",
    );
}

#[test]
fn the_function_roles_are_outputs_for_the_backend_role_mapping() {
    let template = template();
    assert!(telemetry::outputs(&template).is_empty());
    for (output, role) in [
        ("TelemetryOrderRoleArn", "OrderRole"),
        ("TelemetryPaymentRoleArn", "PaymentRole"),
        ("TelemetryInventoryRoleArn", "InventoryRole"),
    ] {
        let output = &template.root["Outputs"][output];
        assert_eq!(output["Value"], json!({"Fn::GetAtt": [role, "Arn"]}));
        assert_eq!(output["Condition"], telemetry::CONDITION);
    }
    let wanted = ["Outputs: none gives PaymentRole's ARN (PaymentFunction's, a backend role to map) under WithTelemetry"];
    let missing = broken(|root| remove(&mut root["Outputs"], "TelemetryPaymentRoleArn"));
    assert_eq!(telemetry::outputs(&missing), wanted);
    let wrong = broken(|root| {
        root["Outputs"]["TelemetryPaymentRoleArn"]["Value"] =
            json!({"Fn::GetAtt": ["LoadgenRole", "Arn"]})
    });
    assert_eq!(telemetry::outputs(&wrong), wanted);
}
