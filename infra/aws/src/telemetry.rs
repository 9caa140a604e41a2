//! The telemetry-extension rules (`TelemetryExtension=true`): the `opensearch-telemetry` Lambda
//! extension (`extensions/telemetry`), packaged as a layer, on order, payment and inventory, writing
//! their platform, function and extension telemetry into OpenSearch.
//!
//! Why they exist: the linters check that a layer's properties are well-formed, not that `sam
//! build` can build it (SAM documents `rust-cargolambda` for functions only, so the layer is built
//! by a Makefile whose target must leave `extensions/opensearch-telemetry` at the layer's root,
//! for arm64), that exactly the three functions get it and only with the condition, that each
//! gets the settings the extension reads, or that the roles may read exactly the one secret and
//! write exactly the extension's indices on exactly the one domain, which admits them in turn.
//!
//! Layout: [`conditions`] and [`endpoint`] (the parameters, conditions and rules); [`layer`] and
//! [`makefile`] (how it is built); [`attachments`] and [`environment`] (what the functions get);
//! [`secret_access`], [`opensearch_access`] and [`analytics_domain_access`] (who may do what);
//! [`outputs`] (the role ARNs the backend-role mapping needs). [`scoped_wildcard`] tells
//! `checks::least_privilege` that the extension's `lambda-*` paths on the domain it is given stay
//! inside that domain.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

use crate::analytics::{self, as_text, domain_arn, role_of, unguarded_names};
use crate::checks::{crate_has_binary, equals, is_type, switch_parameter};
use crate::template::{
    alternatives, guard_implies, guarded_items, implies, reference, sub_text, Guard, Template,
};

/// The parameter that turns the extension on (`"true"`) or leaves the core stack alone.
pub const PARAMETER: &str = "TelemetryExtension";
/// The condition the layer and everything of the extension's in the core resources hang on.
pub const CONDITION: &str = "WithTelemetry";
/// The condition under which the extension authenticates with the basic-auth secret.
pub const SECRET_CONDITION: &str = "HasTelemetryAuthSecret";
/// The endpoint parameter (empty: the traffic-analytics domain).
pub const URL_PARAMETER: &str = "TelemetryOpenSearchUrl";
/// The name of the domain behind [`URL_PARAMETER`], which the roles' SigV4 permissions name.
pub const DOMAIN_PARAMETER: &str = "TelemetryOpenSearchDomainName";
/// The basic-auth secret's ARN (empty: SigV4).
pub const SECRET_PARAMETER: &str = "TelemetryAuthSecretArn";
/// The layer's logical id (the Makefile target is `build-<it>`).
pub const LAYER: &str = "TelemetryExtensionLayer";
/// The layer's type.
pub const LAYER_TYPE: &str = "AWS::Serverless::LayerVersion";
/// The extension's package and binary, and so its file name under `/opt/extensions/`.
pub const PACKAGE: &str = "opensearch-telemetry";
/// The functions that carry the extension.
pub const FUNCTIONS: &[&str] = &["OrderFunction", "PaymentFunction", "InventoryFunction"];
/// What every index the extension writes starts with (the roles' grants end in `lambda-*`).
pub const INDEX_PREFIX: &str = "lambda-";
/// The variables the extension reads, set on each function that carries it.
pub const VARIABLES: &[&str] = &[
    "URL",
    "DISPATCH_MIN_BATCH_SIZE",
    "PLATFORM_INDEX",
    "FUNCTION_INDEX",
    "EXTENSION_INDEX",
    "AUTH_SECRET",
];
/// The variables that name an index.
pub const INDEX_VARIABLES: &[&str] = &["PLATFORM_INDEX", "FUNCTION_INDEX", "EXTENSION_INDEX"];
/// A full secret ARN, with the 6-character suffix Secrets Manager adds, or nothing: no wildcard,
/// no partial ARN (which IAM would match only with `-??????`).
pub const SECRET_ARN_PATTERN: &str = "^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$";
/// An OpenSearch Service domain name, or nothing: no wildcard, no slash.
pub const DOMAIN_NAME_PATTERN: &str = "^$|^[a-z][a-z0-9-]{2,27}$";

/// What the extension sends to a domain, per action: the paths under the domain's ARN. `_bulk`
/// (its writes), its index templates (read, then put when missing or older) and its indices
/// (index-scoped writes and creation).
pub const ES_GRANTS: &[(&str, &[&str])] = &[
    ("es:ESHttpPost", &["_bulk", "lambda-*"]),
    ("es:ESHttpPut", &["_index_template/lambda-*", "lambda-*"]),
    ("es:ESHttpGet", &["_index_template/lambda-*"]),
];

/// Every telemetry rule. The layer's crate and Makefile are read relative to `template_dir`.
pub fn all(template: &Template, template_dir: &Path) -> Vec<String> {
    [
        conditions(template),
        endpoint(template),
        layer(template, template_dir),
        attachments(template),
        environment(template),
        secret_access(template),
        opensearch_access(template),
        analytics_domain_access(template),
        outputs(template),
    ]
    .concat()
}

/// Whether a resource or output carries a condition that implies [`CONDITION`].
fn carries(template: &Template, value: &Value) -> bool {
    value["Condition"]
        .as_str()
        .is_some_and(|c| implies(template, c, CONDITION))
}

fn not(value: Value) -> Value {
    json!({ "Fn::Not": [value] })
}

/// The parameter (`"true"`/`"false"`, default `"false"`), [`CONDITION`] (`!Equals [!Ref
/// TelemetryExtension, "true"]`) and [`SECRET_CONDITION`] (it, and the secret given); every layer
/// carries a condition implying [`CONDITION`]; and nothing without one refers to such a resource
/// except inside an `Fn::If` on a condition that implies it (else the core stack fails to deploy
/// without the extension).
pub fn conditions(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(switch_parameter(template, PARAMETER, CONDITION));
    let conditions = &template.root["Conditions"];
    let wanted = json!({"Fn::And": [{"Condition": CONDITION}, not(equals(SECRET_PARAMETER, ""))]});
    if conditions[SECRET_CONDITION] != wanted {
        problems.push(format!("{SECRET_CONDITION}: must be {wanted}"));
    }
    for (id, resource) in template.of_type(LAYER_TYPE) {
        if !carries(template, resource) {
            problems.push(format!(
                "{id}: a telemetry {LAYER_TYPE} without a Condition implying {CONDITION}"
            ));
        }
    }
    let conditional: BTreeSet<&str> = template
        .resources()
        .filter(|(_, r)| carries(template, r))
        .map(|(id, _)| id)
        .collect();
    let outputs = template.root["Outputs"].as_object().into_iter().flatten();
    let users = template
        .resources()
        .map(|(id, r)| (id.to_owned(), r))
        .chain(outputs.map(|(name, o)| (format!("Outputs.{name}"), o)));
    for (user, value) in users.filter(|(_, v)| !carries(template, v)) {
        for used in unguarded_names(template, value, CONDITION)
            .iter()
            .filter(|u| conditional.contains(u.as_str()))
        {
            problems.push(format!(
                "{user}: refers to {used}, which exists only with {CONDITION}, outside an Fn::If on a condition implying it"
            ));
        }
    }
    problems
}

/// The endpoint: [`URL_PARAMETER`] is empty or `https://…` (the extension may send credentials),
/// and the template's `Rules` refuse a stack that would leave the extension nowhere to write
/// (on, without the analytics domain, without a URL), SigV4 to a URL without the domain its roles
/// are granted ([`DOMAIN_PARAMETER`]), or basic auth to the analytics domain (it has no internal
/// user database).
pub fn endpoint(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let url = &template.root["Parameters"][URL_PARAMETER];
    let https = url["AllowedPattern"]
        .as_str()
        .is_some_and(|p| p.starts_with("^$|^https://"));
    if url["Type"] != "String" || url["Default"] != "" || !https {
        problems.push(format!(
            "{URL_PARAMETER}: must be a String parameter, Default \"\", AllowedPattern \"^$|^https://…\""
        ));
    }
    let on = equals(PARAMETER, "true");
    let wanted = [
        (
            json!({"Fn::And": [on, equals(analytics::PARAMETER, "false")]}),
            not(equals(URL_PARAMETER, "")),
            format!("with {PARAMETER}=true and {}=false, {URL_PARAMETER} must be given", analytics::PARAMETER),
        ),
        (
            json!({"Fn::And": [on, not(equals(URL_PARAMETER, "")), equals(SECRET_PARAMETER, "")]}),
            not(equals(DOMAIN_PARAMETER, "")),
            format!("SigV4 to {URL_PARAMETER} ({SECRET_PARAMETER} empty) needs {DOMAIN_PARAMETER}"),
        ),
        (
            json!({"Fn::And": [on, equals(analytics::PARAMETER, "true"), equals(URL_PARAMETER, "")]}),
            equals(SECRET_PARAMETER, ""),
            format!("writing to the traffic-analytics domain (IAM only), {SECRET_PARAMETER} must be empty"),
        ),
    ];
    let rules: Vec<&Value> = template.root["Rules"]
        .as_object()
        .into_iter()
        .flat_map(|r| r.values())
        .collect();
    for (condition, assertion, what) in wanted {
        let held = rules.iter().any(|rule| {
            rule["RuleCondition"] == condition
                && guarded_items(&rule["Assertions"])
                    .iter()
                    .any(|(_, a)| a["Assert"] == assertion)
        });
        if !held {
            problems.push(format!(
                "Rules: none asserts {assertion} when {condition} ({what})"
            ));
        }
    }
    problems
}

/// The layer: [`LAYER`], an `AWS::Serverless::LayerVersion` built by `BuildMethod: makefile` for
/// `BuildArchitecture: arm64`, compatible with exactly arm64 and `provided.al2023` (what the
/// functions are), from a `ContentUri` crate that builds [`PACKAGE`], with a `Makefile` (in
/// `Metadata.ContextPath`, else the `ContentUri`) whose target passes [`makefile`]; and every
/// function it is attached to runs on an architecture and runtime it lists.
pub fn layer(template: &Template, template_dir: &Path) -> Vec<String> {
    let Some(layer) = template.resource(LAYER).filter(|r| r["Type"] == LAYER_TYPE) else {
        return vec![format!("{LAYER}: no {LAYER_TYPE} of that id")];
    };
    let mut problems = Vec::new();
    let metadata = &layer["Metadata"];
    if metadata["BuildMethod"] != "makefile" {
        problems.push(format!(
            "{LAYER}: Metadata.BuildMethod must be makefile (SAM's rust-cargolambda builds functions only), is {}",
            metadata["BuildMethod"]
        ));
    }
    if metadata["BuildArchitecture"] != "arm64" {
        problems.push(format!(
            "{LAYER}: Metadata.BuildArchitecture must be arm64, is {}",
            metadata["BuildArchitecture"]
        ));
    }
    let properties = &layer["Properties"];
    let architectures = &properties["CompatibleArchitectures"];
    if *architectures != json!(["arm64"]) {
        problems.push(format!(
            "{LAYER}: CompatibleArchitectures must be [arm64], is {architectures}"
        ));
    }
    let runtimes = &properties["CompatibleRuntimes"];
    if *runtimes != json!(["provided.al2023"]) {
        problems.push(format!(
            "{LAYER}: CompatibleRuntimes must be [provided.al2023], is {runtimes}"
        ));
    }
    for function in attached_to(template) {
        let property = |name| template.function_property(function, name);
        let architecture_ok = property("Architectures")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .all(|x| architectures.as_array().is_some_and(|l| l.contains(x)))
            });
        let runtime_ok =
            property("Runtime").is_some_and(|r| runtimes.as_array().is_some_and(|l| l.contains(r)));
        if !architecture_ok || !runtime_ok {
            problems.push(format!(
                "{function}: runs on an architecture or runtime {LAYER} is not built for"
            ));
        }
    }
    match properties["ContentUri"].as_str() {
        Some(code) if crate_has_binary(&template_dir.join(code), PACKAGE) => {}
        code => problems.push(format!(
            "{LAYER}: ContentUri {code:?} is not a crate of this repository that builds {PACKAGE}"
        )),
    }
    let context = metadata["ContextPath"]
        .as_str()
        .or_else(|| properties["ContentUri"].as_str())
        .unwrap_or(".");
    let path = template_dir.join(context).join("Makefile");
    match std::fs::read_to_string(&path) {
        Ok(text) => problems.extend(makefile(&text)),
        Err(e) => problems.push(format!(
            "{LAYER}: no Makefile for BuildMethod makefile at {}: {e}",
            path.display()
        )),
    }
    problems
}

/// The Makefile's `build-<LAYER>` target (what `sam build` runs, with `ARTIFACTS_DIR` set): a
/// recipe line (tab-indented) running `cargo lambda build` with `--release`, `--extension`,
/// `--arm64`, `-p opensearch-telemetry` and `--lambda-dir $(ARTIFACTS_DIR)`, so that cargo lambda
/// writes the binary itself to `$(ARTIFACTS_DIR)/extensions/opensearch-telemetry`, the layer's
/// `extensions/opensearch-telemetry`; and none of `--internal` (not a process of its own),
/// `--flatten`, `--output-format` (a zip inside the layer's zip), `--x86-64` or `--target`.
pub fn makefile(text: &str) -> Vec<String> {
    let target = format!("build-{LAYER}");
    let name = format!("Makefile {target}");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|line| {
        !line.starts_with('\t')
            && !line.trim_start().starts_with('#')
            && line
                .split_once(':')
                .is_some_and(|(names, _)| names.split_whitespace().any(|n| n == target))
    });
    let Some(start) = start else {
        return vec![format!(
            "{name}: no such target (sam build runs `make {target}`)"
        )];
    };
    let recipe: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| {
            l.starts_with('\t') || l.trim().is_empty() || l.trim_start().starts_with('#')
        })
        .filter(|l| l.starts_with('\t'))
        .copied()
        .collect();
    let command = recipe.iter().find_map(|line| {
        let (_, rest) = line.split_once("cargo lambda build")?;
        let end = ["&&", ";", "||", "|"]
            .iter()
            .filter_map(|s| rest.find(s))
            .min()
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    });
    let Some(command) = command else {
        return vec![format!(
            "{name}: no recipe line (tab-indented) runs cargo lambda build"
        )];
    };
    let tokens: Vec<String> = command
        .split_whitespace()
        .map(|t| t.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect();
    let value_of = |flags: &[&str]| -> Option<String> {
        tokens.iter().enumerate().find_map(|(i, token)| {
            flags.iter().find_map(|flag| {
                if token == flag {
                    tokens.get(i + 1).cloned()
                } else {
                    token.strip_prefix(&format!("{flag}=")).map(str::to_owned)
                }
            })
        })
    };
    let has = |flags: &[&str]| {
        tokens.iter().any(|t| {
            flags
                .iter()
                .any(|f| t == f || t.starts_with(&format!("{f}=")))
        })
    };
    let mut problems = Vec::new();
    for (flags, why) in [
        (&["--release", "-r"][..], "a release build"),
        (
            &["--extension"][..],
            "the binary at <lambda-dir>/extensions/<name>, not <name>/bootstrap",
        ),
        (&["--arm64"][..], "the functions are arm64"),
    ] {
        if !has(flags) {
            problems.push(format!(
                "{name}: cargo lambda build without {} ({why})",
                flags[0]
            ));
        }
    }
    if value_of(&["-p", "--package"]).as_deref() != Some(PACKAGE) {
        problems.push(format!(
            "{name}: cargo lambda build must build -p {PACKAGE}"
        ));
    }
    let lambda_dir = value_of(&["--lambda-dir", "-l"]);
    if !matches!(
        lambda_dir.as_deref(),
        Some("$(ARTIFACTS_DIR)" | "${ARTIFACTS_DIR}")
    ) {
        problems.push(format!(
            "{name}: cargo lambda build must write to --lambda-dir $(ARTIFACTS_DIR) (the layer's root), not {lambda_dir:?}"
        ));
    }
    for (flags, why) in [
        (
            &["--internal"][..],
            "an internal extension is no process of its own",
        ),
        (&["--flatten"][..], "it lays out functions"),
        (
            &["--output-format", "-o"][..],
            "a zip inside the layer's zip",
        ),
        (&["--x86-64", "--target"][..], "the functions are arm64"),
    ] {
        if has(flags) {
            problems.push(format!(
                "{name}: cargo lambda build with {} ({why})",
                flags[0]
            ));
        }
    }
    problems
}

/// The functions that list [`LAYER`] in `Layers`, under any choice.
fn attached_to(template: &Template) -> Vec<&str> {
    template
        .of_type("AWS::Serverless::Function")
        .map(|(id, _)| id)
        .filter(|id| {
            template
                .function_property(id, "Layers")
                .is_some_and(|layers| {
                    guarded_items(layers)
                        .iter()
                        .any(|(_, l)| reference(l) == Some((LAYER, None)))
                })
        })
        .collect()
}

/// Attachments: each of [`FUNCTIONS`] lists `!Ref TelemetryExtensionLayer` in `Layers`, only in
/// the first branch of an `Fn::If` on a condition implying [`CONDITION`]; no other function lists
/// it; and `Globals.Function` has no `Layers` (SAM would attach them to every function).
pub fn attachments(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    if template.root["Globals"]["Function"].get("Layers").is_some() {
        problems.push(
            "Globals.Function: Layers would attach to every function; attach the telemetry layer to order, payment and inventory only".to_owned(),
        );
    }
    let attached = attached_to(template);
    for function in FUNCTIONS {
        if !attached.contains(function) {
            problems.push(format!("{function}: does not attach {LAYER}"));
        }
    }
    for function in &attached {
        if !FUNCTIONS.contains(function) {
            problems.push(format!(
                "{function}: attaches {LAYER}, which only {FUNCTIONS:?} carry"
            ));
        }
        let layers = template.function_property(function, "Layers").unwrap();
        for (guard, _) in guarded_items(layers)
            .iter()
            .filter(|(_, l)| reference(l) == Some((LAYER, None)))
        {
            if !guard_implies(template, guard, CONDITION) {
                problems.push(format!(
                    "{function}: attaches {LAYER} when {guard:?}, not only under {CONDITION}"
                ));
            }
        }
    }
    problems
}

/// The resource a `https://${X.DomainEndpoint}` names, when `X` is an OpenSearch domain.
fn endpoint_domain<'a>(template: &Template, value: &'a Value) -> Option<&'a str> {
    let id = sub_text(value)?
        .strip_prefix("https://${")?
        .strip_suffix(".DomainEndpoint}")?;
    is_type(template, id, analytics::DOMAIN).then_some(id)
}

/// The domains the functions' `URL` may name.
fn url_domains(template: &Template) -> BTreeSet<&str> {
    FUNCTIONS
        .iter()
        .filter_map(|f| template.function_property(f, "Environment"))
        .flat_map(|e| alternatives(&e["Variables"]["URL"]))
        .filter_map(|(_, v)| endpoint_domain(template, v))
        .collect()
}

/// The settings: each of [`FUNCTIONS`] has every variable of [`VARIABLES`], each set only in the
/// first branch of an `Fn::If` on a condition implying [`CONDITION`] (`AUTH_SECRET`:
/// [`SECRET_CONDITION`]), so that the core stack gets none of them; `URL` is `!Ref
/// TelemetryOpenSearchUrl` or `https://${<domain>.DomainEndpoint}` of a domain of this template
/// (under that domain's condition), and names the traffic-analytics domain when there is one;
/// `DISPATCH_MIN_BATCH_SIZE` a positive integer; the three indices distinct names starting with
/// [`INDEX_PREFIX`] (what the grants cover); `AUTH_SECRET` `!Ref TelemetryAuthSecretArn`; the same
/// on all three functions; and no other function has any of them.
pub fn environment(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let mut first: Option<(&str, BTreeMap<&str, &Value>)> = None;
    for function in FUNCTIONS {
        let variables = template
            .function_property(function, "Environment")
            .map(|e| &e["Variables"]);
        let mut given = BTreeMap::new();
        for variable in VARIABLES {
            let Some(value) = variables.and_then(|v| v.get(variable)) else {
                problems.push(format!(
                    "{function}: no {variable} (the telemetry extension reads it)"
                ));
                continue;
            };
            given.insert(*variable, value);
            let needed = if *variable == "AUTH_SECRET" {
                SECRET_CONDITION
            } else {
                CONDITION
            };
            let leaves = alternatives(value);
            if leaves.is_empty() {
                problems.push(format!("{function}: {variable} is never set"));
            }
            for (guard, leaf) in leaves {
                if !guard_implies(template, &guard, needed) {
                    problems.push(format!(
                        "{function}: {variable} = {leaf} when {guard:?}, not only under {needed}"
                    ));
                }
                problems.extend(setting(template, function, variable, &guard, leaf));
            }
        }
        match &first {
            None => first = Some((function, given)),
            Some((other, theirs)) if *theirs != given => problems.push(format!(
                "{function}: its telemetry variables differ from {other}'s"
            )),
            Some(_) => {}
        }
    }
    if let Some((function, given)) = &first {
        let names: BTreeSet<String> = INDEX_VARIABLES
            .iter()
            .filter_map(|v| given.get(v))
            .flat_map(|v| alternatives(v))
            .filter_map(|(_, leaf)| leaf.as_str().map(str::to_owned))
            .collect();
        if names.len() != INDEX_VARIABLES.len() {
            problems.push(format!(
                "{function}: {INDEX_VARIABLES:?} must name {} distinct indices, name {names:?}",
                INDEX_VARIABLES.len()
            ));
        }
    }
    let domains: BTreeSet<&str> = template
        .of_type(analytics::DOMAIN)
        .map(|(id, _)| id)
        .collect();
    let named = url_domains(template);
    for domain in domains.difference(&named) {
        problems.push(format!(
            "URL: never the endpoint of {domain} (the extension's default when it exists)"
        ));
    }
    for (function, _) in template.of_type("AWS::Serverless::Function") {
        if FUNCTIONS.contains(&function) {
            continue;
        }
        let variables = template
            .function_property(function, "Environment")
            .map(|e| &e["Variables"]);
        for variable in VARIABLES {
            if variables.and_then(|v| v.get(variable)).is_some() {
                problems.push(format!(
                    "{function}: {variable} without the telemetry extension"
                ));
            }
        }
    }
    problems
}

/// One value a telemetry variable may take.
fn setting(
    template: &Template,
    function: &str,
    variable: &str,
    guard: &Guard,
    leaf: &Value,
) -> Vec<String> {
    let text = match leaf {
        Value::Number(n) => Some(n.to_string()),
        other => other.as_str().map(str::to_owned),
    };
    let fine = match variable {
        "URL" => {
            if reference(leaf) == Some((URL_PARAMETER, None)) {
                true
            } else if let Some(domain) = endpoint_domain(template, leaf) {
                let condition = template.resource(domain).unwrap()["Condition"].as_str();
                if !condition.is_none_or(|c| guard_implies(template, guard, c)) {
                    return vec![format!(
                        "{function}: URL names {domain} when {guard:?}, which does not imply its condition {}",
                        condition.unwrap_or_default()
                    )];
                }
                true
            } else {
                false
            }
        }
        "DISPATCH_MIN_BATCH_SIZE" => text
            .as_deref()
            .and_then(|t| t.parse::<u32>().ok())
            .is_some_and(|n| n > 0),
        "AUTH_SECRET" => reference(leaf) == Some((SECRET_PARAMETER, None)),
        _ if INDEX_VARIABLES.contains(&variable) => text.as_deref().is_some_and(|t| {
            t.len() > INDEX_PREFIX.len()
                && t.starts_with(INDEX_PREFIX)
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }),
        _ => true,
    };
    if fine {
        return Vec::new();
    }
    let wanted = match variable {
        "URL" => format!("!Ref {URL_PARAMETER} or https://${{<an OpenSearch domain of this template>.DomainEndpoint}}"),
        "DISPATCH_MIN_BATCH_SIZE" => "a positive integer".to_owned(),
        "AUTH_SECRET" => format!("!Ref {SECRET_PARAMETER}"),
        _ => format!("a lowercase index name starting with {INDEX_PREFIX}"),
    };
    vec![format!("{function}: {variable} = {leaf}, must be {wanted}")]
}

/// One allowed (action, resource) of a role's inline policies, with the choices that lead to it.
#[derive(Clone, Debug)]
struct Grant {
    guard: Guard,
    action: String,
    resource: String,
}

/// Every [`Grant`] of a role (resources as `!Sub` text: `${X}` for `!Ref X`).
fn grants(template: &Template, role: &str) -> Vec<Grant> {
    let mut found = Vec::new();
    let Some(properties) = template.resource(role).map(|r| &r["Properties"]) else {
        return found;
    };
    for (policy_guard, policy) in guarded_items(&properties["Policies"]) {
        for (document_guard, document) in alternatives(&policy["PolicyDocument"]) {
            for (statement_guard, statement) in guarded_items(&document["Statement"]) {
                if statement["Effect"] != "Allow" {
                    continue;
                }
                for (action_guard, action) in guarded_items(&statement["Action"]) {
                    for (resource_guard, resource) in guarded_items(&statement["Resource"]) {
                        let guard: Guard = [
                            &policy_guard,
                            &document_guard,
                            &statement_guard,
                            &action_guard,
                            &resource_guard,
                        ]
                        .into_iter()
                        .flatten()
                        .cloned()
                        .collect();
                        found.push(Grant {
                            guard,
                            action: action.as_str().unwrap_or_default().to_owned(),
                            resource: as_text(resource).unwrap_or_else(|| resource.to_string()),
                        });
                    }
                }
            }
        }
    }
    found
}

/// The roles of [`FUNCTIONS`] (function, role).
fn function_roles(template: &Template) -> Vec<(&'static str, &str)> {
    FUNCTIONS
        .iter()
        .filter_map(|f| {
            let (role, attribute) = reference(template.function_property(f, "Role")?)?;
            (attribute == Some("Arn") && is_type(template, role, "AWS::IAM::Role"))
                .then_some((*f, role))
        })
        .collect()
}

fn reaches(action: &str, service: &str) -> bool {
    action == "*"
        || action
            .to_ascii_lowercase()
            .starts_with(&format!("{service}:"))
}

/// The secret: [`SECRET_PARAMETER`] admits only a full secret ARN ([`SECRET_ARN_PATTERN`]); each
/// role of [`FUNCTIONS`] may `secretsmanager:GetSecretValue` on exactly `!Ref
/// TelemetryAuthSecretArn`, only under a condition implying [`SECRET_CONDITION`]; and that is every
/// Secrets Manager grant of the template.
pub fn secret_access(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let parameter = &template.root["Parameters"][SECRET_PARAMETER];
    if parameter["Type"] != "String"
        || parameter["Default"] != ""
        || parameter["AllowedPattern"] != SECRET_ARN_PATTERN
    {
        problems.push(format!(
            "{SECRET_PARAMETER}: must be a String parameter, Default \"\", AllowedPattern {SECRET_ARN_PATTERN:?} (one full secret ARN)"
        ));
    }
    let owners = function_roles(template);
    let secret = format!("${{{SECRET_PARAMETER}}}");
    for (role, _) in template.of_type("AWS::IAM::Role") {
        let owned = owners.iter().any(|(_, r)| *r == role);
        let mut granted = false;
        for grant in grants(template, role)
            .into_iter()
            .filter(|g| reaches(&g.action, "secretsmanager"))
        {
            if !owned {
                problems.push(format!(
                    "{role}: {} on {} - only the telemetry extension's functions read its secret",
                    grant.action, grant.resource
                ));
                continue;
            }
            if grant.action != "secretsmanager:GetSecretValue" || grant.resource != secret {
                problems.push(format!(
                    "{role}: {} on {}, must be exactly secretsmanager:GetSecretValue on {secret}",
                    grant.action, grant.resource
                ));
            }
            if !guard_implies(template, &grant.guard, SECRET_CONDITION) {
                problems.push(format!(
                    "{role}: {} on {} when {:?}, not only under {SECRET_CONDITION}",
                    grant.action, grant.resource, grant.guard
                ));
            }
            granted = true;
        }
        if owned && !granted {
            problems.push(format!(
                "{role}: no secretsmanager:GetSecretValue on {secret} (the extension's basic auth)"
            ));
        }
    }
    problems
}

/// The paths [`ES_GRANTS`] gives `action` on the domain `arn`, or `None` for another action.
fn es_paths(arn: &str, action: &str) -> Option<Vec<String>> {
    ES_GRANTS
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, paths)| paths.iter().map(|p| format!("{arn}/{p}")).collect())
}

/// A domain the extension may write to: its ARN as `!Sub` text, and the condition it exists
/// under (a domain of this template) or `None` (the [`DOMAIN_PARAMETER`] one).
fn telemetry_domains(template: &Template) -> Vec<(String, Option<String>)> {
    let mut domains: Vec<(String, Option<String>)> = url_domains(template)
        .into_iter()
        .filter_map(|id| {
            let domain = template.resource(id)?;
            let name = domain["Properties"]["DomainName"].as_str()?;
            Some((
                domain_arn(name),
                domain["Condition"].as_str().map(str::to_owned),
            ))
        })
        .collect();
    domains.push((domain_arn(&format!("${{{DOMAIN_PARAMETER}}}")), None));
    domains
}

/// OpenSearch: [`DOMAIN_PARAMETER`] admits only a domain name ([`DOMAIN_NAME_PATTERN`]); each role
/// of [`FUNCTIONS`] holds exactly [`ES_GRANTS`] on each domain the extension may write to (the
/// traffic-analytics domain its `URL` may name, under that domain's condition too, and the one
/// [`DOMAIN_PARAMETER`] names), only under a condition implying [`CONDITION`], and no other
/// OpenSearch action or path.
pub fn opensearch_access(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let parameter = &template.root["Parameters"][DOMAIN_PARAMETER];
    if parameter["Type"] != "String"
        || parameter["Default"] != ""
        || parameter["AllowedPattern"] != DOMAIN_NAME_PATTERN
    {
        problems.push(format!(
            "{DOMAIN_PARAMETER}: must be a String parameter, Default \"\", AllowedPattern {DOMAIN_NAME_PATTERN:?} (one domain name)"
        ));
    }
    let domains = telemetry_domains(template);
    for (function, role) in function_roles(template) {
        let es: Vec<Grant> = grants(template, role)
            .into_iter()
            .filter(|g| reaches(&g.action, "es"))
            .collect();
        for grant in &es {
            if !guard_implies(template, &grant.guard, CONDITION) {
                problems.push(format!(
                    "{role}: {} on {} when {:?}, not only under {CONDITION}",
                    grant.action, grant.resource, grant.guard
                ));
            }
            let domain = domains.iter().find(|(arn, _)| {
                es_paths(arn, &grant.action).is_some_and(|paths| paths.contains(&grant.resource))
            });
            match domain {
                None => problems.push(format!(
                    "{role}: {} on {} - the telemetry extension needs only {ES_GRANTS:?} on the paths of the domain it writes to",
                    grant.action, grant.resource
                )),
                Some((_, Some(condition)))
                    if !guard_implies(template, &grant.guard, condition) =>
                {
                    problems.push(format!(
                        "{role}: {} on {} when {:?}, which does not imply that domain's condition {condition}",
                        grant.action, grant.resource, grant.guard
                    ))
                }
                Some(_) => {}
            }
        }
        for (arn, _) in &domains {
            for (action, _) in ES_GRANTS {
                for path in es_paths(arn, action).unwrap_or_default() {
                    if !es.iter().any(|g| g.action == *action && g.resource == path) {
                        problems.push(format!(
                            "{role}: no {action} on {path}, which {function}'s telemetry extension needs"
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The traffic-analytics domain, when the extension may write to it: its access policy admits
/// each role of [`FUNCTIONS`], in statements under a condition implying [`CONDITION`], to exactly
/// what that role's own policy grants it on that domain (neither less, which would refuse the
/// writes, nor more, which would undo the role's least privilege: within one account an allow in
/// either suffices), and admits no other role in such statements.
pub fn analytics_domain_access(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let roles = function_roles(template);
    for domain in url_domains(template) {
        let resource = template.resource(domain).unwrap();
        let Some(name) = resource["Properties"]["DomainName"].as_str() else {
            continue;
        };
        let prefix = format!("{}/", domain_arn(name));
        let mut admitted: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
        for (guard, statement) in
            guarded_items(&resource["Properties"]["AccessPolicies"]["Statement"])
        {
            if statement["Effect"] != "Allow" || !guard_implies(template, &guard, CONDITION) {
                continue;
            }
            let actions: Vec<String> = guarded_items(&statement["Action"])
                .into_iter()
                .filter_map(|(_, a)| a.as_str().map(str::to_owned))
                .collect();
            let resources: Vec<String> = guarded_items(&statement["Resource"])
                .into_iter()
                .filter_map(|(_, r)| as_text(r))
                .collect();
            for (_, principal) in guarded_items(&statement["Principal"]["AWS"]) {
                let role = role_of(template, principal);
                let Some(role) = role.filter(|r| roles.iter().any(|(_, own)| own == r)) else {
                    problems.push(format!(
                        "{domain}: the telemetry statements admit {principal}, not a role of {FUNCTIONS:?}"
                    ));
                    continue;
                };
                let entry = admitted.entry(role).or_default();
                for action in &actions {
                    entry.extend(resources.iter().map(|r| (action.clone(), r.clone())));
                }
            }
        }
        for (function, role) in &roles {
            let own: BTreeSet<(String, String)> = grants(template, role)
                .into_iter()
                .filter(|g| reaches(&g.action, "es") && g.resource.starts_with(&prefix))
                .map(|g| (g.action, g.resource))
                .collect();
            let given = admitted.remove(role).unwrap_or_default();
            if given != own {
                problems.push(format!(
                    "{domain}: admits {role} ({function}'s) to {given:?} under {CONDITION}, must be exactly its own grants on the domain {own:?}"
                ));
            }
        }
    }
    problems
}

/// Outputs: each role of [`FUNCTIONS`] is the `Value` (`!GetAtt <role>.Arn`) of an output that
/// carries [`CONDITION`]: with fine-grained access control the roles must be mapped as backend
/// roles before the extension's writes are allowed, and that mapping needs their ARNs.
pub fn outputs(template: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let outputs = template.root["Outputs"].as_object();
    for (function, role) in function_roles(template) {
        let arn = json!({"Fn::GetAtt": [role, "Arn"]});
        let found = outputs
            .into_iter()
            .flatten()
            .any(|(_, o)| o["Value"] == arn && carries(template, o));
        if !found {
            problems.push(format!(
                "Outputs: none gives {role}'s ARN ({function}'s, a backend role to map) under {CONDITION}"
            ));
        }
    }
    problems
}

/// Whether a wildcard resource is a path of the domain [`DOMAIN_PARAMETER`] names, whose pattern
/// admits a plain domain name only.
pub fn scoped_wildcard(template: &Template, text: &str) -> bool {
    let parameter = &template.root["Parameters"][DOMAIN_PARAMETER];
    parameter["AllowedPattern"] == DOMAIN_NAME_PATTERN
        && text.starts_with(&format!(
            "{}/",
            domain_arn(&format!("${{{DOMAIN_PARAMETER}}}"))
        ))
}
