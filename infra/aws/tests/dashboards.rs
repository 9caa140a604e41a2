//! The OpenSearch Dashboards saved objects (`analytics/dashboards/lattice-access.ndjson`, the
//! NDJSON `_dashboards/api/saved_objects/_import` takes) against the index template whose mapping
//! they read (`analytics/lattice-access-template.json`).
//!
//! Dashboards cannot run here, so this checks structure, the things an import or a panel would
//! otherwise fail on at the customer's: every line parses, ids are unique, every reference
//! resolves to an object of the right type in the file and every `…RefName` has its reference,
//! every field a visualisation, search or filter names is mapped (a field the mapping lacks is
//! silently empty, `dynamic: false`), what is aggregated or sorted on is of an aggregatable type
//! (never `text`), and the dashboard places every visualisation and search exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

const SAVED_OBJECTS: &str = "analytics/dashboards/lattice-access.ndjson";
const INDEX_TEMPLATE: &str = "analytics/lattice-access-template.json";

/// Mapping types Dashboards can aggregate and sort on (doc values); `text` is not one.
const AGGREGATABLE: &[&str] = &[
    "keyword",
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "unsigned_long",
    "date",
    "date_nanos",
    "ip",
    "boolean",
];

/// The metadata fields an index pattern lists beside the mapped ones.
const META_FIELDS: &[&str] = &["_id", "_index", "_score", "_source"];

const TYPES: &[&str] = &["index-pattern", "visualization", "search", "dashboard"];

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every field of a mapping, dotted (`source.ip`, `requestPath.keyword`), with its type:
/// objects through `properties`, multi-fields through `fields`.
fn mapped_fields(properties: &Value, prefix: &str, into: &mut BTreeMap<String, String>) {
    for (name, spec) in properties.as_object().into_iter().flatten() {
        let full = format!("{prefix}{name}");
        if let Some(inner) = spec.get("properties") {
            mapped_fields(inner, &format!("{full}."), into);
            continue;
        }
        if let Some(kind) = spec["type"].as_str() {
            into.insert(full.clone(), kind.to_owned());
        }
        for (sub, sub_spec) in spec["fields"].as_object().into_iter().flatten() {
            if let Some(kind) = sub_spec["type"].as_str() {
                into.insert(format!("{full}.{sub}"), kind.to_owned());
            }
        }
    }
}

struct IndexTemplate {
    patterns: Vec<String>,
    fields: BTreeMap<String, String>,
}

fn index_template() -> IndexTemplate {
    let template: Value = serde_json::from_str(&read(INDEX_TEMPLATE)).unwrap();
    let mut fields = BTreeMap::new();
    mapped_fields(
        &template["template"]["mappings"]["properties"],
        "",
        &mut fields,
    );
    let patterns = template["index_patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    IndexTemplate { patterns, fields }
}

/// The saved objects of an export, one JSON object a line; an export summary line
/// (`exportedCount`, no `type`) may end it and must count the objects before it.
fn parse(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (number, line) in lines.iter().enumerate() {
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        if value.get("exportedCount").is_some() {
            if number + 1 != lines.len() || value["exportedCount"] != objects.len() {
                return Err(format!(
                    "line {}: an export summary must be last and count the {} objects",
                    number + 1,
                    objects.len()
                ));
            }
            continue;
        }
        objects.push(value);
    }
    Ok(objects)
}

fn saved_objects() -> Vec<Value> {
    parse(&read(SAVED_OBJECTS)).unwrap()
}

/// An attribute Dashboards stores as a JSON string (`visState`, `searchSourceJSON`, …), parsed.
fn embedded(object: &Value, pointer: &str) -> Result<Value, String> {
    let text = object
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{}: no {pointer} string", object["id"]))?;
    serde_json::from_str(text).map_err(|e| format!("{}: {pointer} is not JSON: {e}", object["id"]))
}

const SEARCH_SOURCE: &str = "/attributes/kibanaSavedObjectMeta/searchSourceJSON";

/// A field a saved object names, and whether it aggregates or sorts on it.
#[derive(Debug)]
struct FieldUse {
    field: String,
    aggregated: bool,
}

fn used(field: &Value, aggregated: bool) -> Option<FieldUse> {
    Some(FieldUse {
        field: field.as_str()?.to_owned(),
        aggregated,
    })
}

/// The fields filters name: `meta.key` and the keys of their `match_phrase` / `range` queries.
fn filter_fields(source: &Value) -> Vec<FieldUse> {
    let mut uses = Vec::new();
    for filter in source["filter"].as_array().into_iter().flatten() {
        uses.extend(used(&filter["meta"]["key"], false));
        for kind in ["match_phrase", "match", "term", "range"] {
            for key in filter["query"][kind]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                uses.extend(used(&json!(key), false));
            }
        }
    }
    uses
}

/// Every field an object names: an index pattern's time field; a visualisation's aggregation
/// fields; a search's columns and sort; and the fields of both ones' filters.
fn field_uses(object: &Value) -> Result<Vec<FieldUse>, String> {
    let attributes = &object["attributes"];
    let mut uses = Vec::new();
    match object["type"].as_str() {
        Some("index-pattern") => uses.extend(used(&attributes["timeFieldName"], true)),
        Some("visualization") => {
            let state = embedded(object, "/attributes/visState")?;
            for agg in state["aggs"].as_array().into_iter().flatten() {
                uses.extend(used(&agg["params"]["field"], true));
            }
            uses.extend(filter_fields(&embedded(object, SEARCH_SOURCE)?));
        }
        Some("search") => {
            for column in attributes["columns"].as_array().into_iter().flatten() {
                uses.extend(used(column, false));
            }
            for sort in attributes["sort"].as_array().into_iter().flatten() {
                uses.extend(used(&sort[0], true));
            }
            uses.extend(filter_fields(&embedded(object, SEARCH_SOURCE)?));
        }
        _ => {}
    }
    Ok(uses)
}

/// Fields named are mapped, and aggregated or sorted ones are of an aggregatable type; an index
/// pattern's own field list agrees with the mapping (type and aggregatability) and its title is
/// one of the template's `index_patterns`.
fn field_problems(object: &Value, template: &IndexTemplate) -> Vec<String> {
    let id = object["id"].as_str().unwrap_or("?");
    let mut problems = Vec::new();
    let uses = field_uses(object).unwrap_or_else(|problem| {
        problems.push(problem);
        Vec::new()
    });
    for FieldUse { field, aggregated } in uses {
        match template.fields.get(&field) {
            None => problems.push(format!(
                "{id}: names {field}, which the index template does not map"
            )),
            Some(kind) if aggregated && !AGGREGATABLE.contains(&kind.as_str()) => problems.push(
                format!("{id}: aggregates or sorts on {field}, a {kind} field (not aggregatable)"),
            ),
            Some(_) => {}
        }
    }
    if object["type"] == "index-pattern" {
        let title = object["attributes"]["title"].as_str().unwrap_or_default();
        if !template.patterns.iter().any(|p| p == title) {
            problems.push(format!(
                "{id}: title {title} is not one of the index template's index_patterns"
            ));
        }
        let specs = embedded(object, "/attributes/fields").unwrap_or_default();
        for spec in specs.as_array().into_iter().flatten() {
            let name = spec["name"].as_str().unwrap_or_default();
            if META_FIELDS.contains(&name) {
                continue;
            }
            let Some(kind) = template.fields.get(name) else {
                problems.push(format!(
                    "{id}: lists field {name}, which the index template does not map"
                ));
                continue;
            };
            let aggregatable = AGGREGATABLE.contains(&kind.as_str());
            if spec["esTypes"] != json!([kind]) || spec["aggregatable"] != aggregatable {
                problems.push(format!(
                    "{id}: field {name} is listed as {} (aggregatable {}), the mapping has {kind}",
                    spec["esTypes"], spec["aggregatable"]
                ));
            }
        }
    }
    problems
}

/// The `…RefName`s an object's embedded JSON uses, each of which needs a reference of that name.
fn ref_names(object: &Value) -> Vec<String> {
    let mut names = Vec::new();
    if object["type"] == "dashboard" {
        let panels = embedded(object, "/attributes/panelsJSON").unwrap_or_default();
        for panel in panels.as_array().into_iter().flatten() {
            names.push(
                panel["panelRefName"]
                    .as_str()
                    .unwrap_or("(none)")
                    .to_owned(),
            );
        }
        return names;
    }
    if let Ok(source) = embedded(object, SEARCH_SOURCE) {
        names.extend(source["indexRefName"].as_str().map(str::to_owned));
        for filter in source["filter"].as_array().into_iter().flatten() {
            names.extend(filter["meta"]["indexRefName"].as_str().map(str::to_owned));
        }
    }
    names
}

/// Each object's shape, references and `…RefName`s.
fn reference_problems(object: &Value, by_id: &BTreeMap<&str, &str>) -> Vec<String> {
    let id = object["id"].as_str().unwrap_or("?");
    let mut problems = Vec::new();
    for key in ["attributes", "migrationVersion", "updated_at", "version"] {
        if object.get(key).is_none() {
            problems.push(format!("{id}: no {key}"));
        }
    }
    if !TYPES.contains(&object["type"].as_str().unwrap_or_default()) {
        problems.push(format!(
            "{id}: type {} is none of {TYPES:?}",
            object["type"]
        ));
    }
    let references = object["references"].as_array().cloned().unwrap_or_default();
    for reference in &references {
        let (name, target, kind) = (&reference["name"], &reference["id"], &reference["type"]);
        match target.as_str().and_then(|t| by_id.get(t)) {
            None => problems.push(format!(
                "{id}: reference {name} → {kind} {target}, which is not in the file"
            )),
            Some(actual) if kind != *actual => problems.push(format!(
                "{id}: reference {name} → {target} says {kind}, the object is a {actual}"
            )),
            Some(_) => {}
        }
    }
    let names: BTreeSet<&str> = references
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    let wanted = ref_names(object);
    if object["type"] == "visualization" || object["type"] == "search" {
        let index = "kibanaSavedObjectMeta.searchSourceJSON.index".to_owned();
        if !wanted.contains(&index) {
            problems.push(format!(
                "{id}: searchSourceJSON has no indexRefName {index}"
            ));
        }
    }
    for name in wanted.iter().filter(|n| !names.contains(n.as_str())) {
        problems.push(format!("{id}: {name} has no reference of that name"));
    }
    problems
}

/// The dashboard's panels place every visualisation and search exactly once.
fn dashboard_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let dashboards: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "dashboard")
        .collect();
    if dashboards.len() != 1 {
        return vec![format!("{} dashboards, must be one", dashboards.len())];
    }
    let dashboard = dashboards[0];
    let by_name: BTreeMap<&str, &str> = dashboard["references"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["name"].as_str()?, r["id"].as_str()?)))
        .collect();
    let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
    for name in ref_names(dashboard) {
        if let Some(target) = by_name.get(name.as_str()) {
            *placed.entry(target).or_default() += 1;
        }
    }
    for object in objects
        .iter()
        .filter(|o| o["type"] == "visualization" || o["type"] == "search")
    {
        let id = object["id"].as_str().unwrap_or("?");
        let times = placed.get(id).copied().unwrap_or(0);
        if times != 1 {
            problems.push(format!(
                "{}: places {id} {times} times, must be once",
                dashboard["id"].as_str().unwrap_or("?")
            ));
        }
    }
    problems
}

/// Every rule over one export.
fn problems(objects: &[Value], template: &IndexTemplate) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_id: BTreeMap<&str, &str> = BTreeMap::new();
    for object in objects {
        let id = object["id"].as_str().unwrap_or_default();
        if by_id
            .insert(id, object["type"].as_str().unwrap_or_default())
            .is_some()
        {
            problems.push(format!("{id}: two objects with this id"));
        }
    }
    for object in objects {
        problems.extend(reference_problems(object, &by_id));
        problems.extend(field_problems(object, template));
    }
    problems.extend(dashboard_problems(objects));
    problems
}

fn object<'a>(objects: &'a mut [Value], id: &str) -> &'a mut Value {
    objects.iter_mut().find(|o| o["id"] == id).unwrap()
}

/// Changes the JSON an attribute holds as a string.
fn edit_embedded(object: &mut Value, pointer: &str, change: impl FnOnce(&mut Value)) {
    let mut value = embedded(object, pointer).unwrap();
    change(&mut value);
    *object.pointer_mut(pointer).unwrap() = Value::String(value.to_string());
}

#[test]
fn the_saved_objects_import_cleanly_and_read_only_mapped_fields() {
    let objects = saved_objects();
    let problems = problems(&objects, &index_template());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_export_has_the_index_pattern_every_view_and_one_dashboard() {
    let objects = saved_objects();
    let kinds: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| (o["type"].as_str().unwrap(), o["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds.iter().filter(|(t, _)| *t == "visualization").count(),
        6
    );
    assert_eq!(kinds.iter().filter(|(t, _)| *t == "search").count(), 1);
    let pattern = objects
        .iter()
        .find(|o| o["type"] == "index-pattern")
        .unwrap();
    assert_eq!(pattern["attributes"]["title"], "lattice-access-*");
    assert_eq!(pattern["attributes"]["timeFieldName"], "@timestamp");
    let search = objects.iter().find(|o| o["type"] == "search").unwrap();
    assert_eq!(search["attributes"]["sort"], json!([["duration", "desc"]]));
    // The p50/p99 view asks for exactly those percentiles of duration.
    let durations = objects
        .iter()
        .find(|o| o["id"] == "lattice-duration-percentiles-per-service")
        .unwrap();
    let state = embedded(durations, "/attributes/visState").unwrap();
    assert_eq!(state["aggs"][0]["type"], "percentiles");
    assert_eq!(
        state["aggs"][0]["params"],
        json!({"field": "duration", "percents": [50, 99], "customLabel": "duration (ms)"})
    );
    // Auth denials are filtered on authDenied:true.
    let denials = objects
        .iter()
        .find(|o| o["id"] == "lattice-auth-denials")
        .unwrap();
    let source = embedded(denials, SEARCH_SOURCE).unwrap();
    assert_eq!(
        source["filter"][0]["query"],
        json!({"match_phrase": {"authDenied": true}})
    );
    let denial_fields: Vec<String> = field_uses(denials)
        .unwrap()
        .into_iter()
        .map(|u| u.field)
        .collect();
    // The filter names authDenied twice: its meta.key and its match_phrase.
    assert_eq!(
        denial_fields,
        [
            "callerPrincipal",
            "authDeniedReason",
            "authDenied",
            "authDenied"
        ]
    );
}

#[test]
fn an_unknown_field_a_text_aggregation_or_a_text_sort_is_caught() {
    let template = index_template();
    let mut objects = saved_objects();
    edit_embedded(
        object(&mut objects, "lattice-top-paths"),
        "/attributes/visState",
        |state| {
            state["aggs"][1]["params"]["field"] = json!("responseTimeMs");
            state["aggs"][2]["params"]["field"] = json!("requestPath");
        },
    );
    object(&mut objects, "lattice-slowest-requests")["attributes"]["sort"] =
        json!([["userAgent", "desc"]]);
    assert_eq!(
        problems(&objects, &template),
        [
            "lattice-top-paths: names responseTimeMs, which the index template does not map",
            "lattice-top-paths: aggregates or sorts on requestPath, a text field (not aggregatable)",
            "lattice-slowest-requests: aggregates or sorts on userAgent, a text field (not aggregatable)",
        ]
    );
    let mut unmapped_filter = saved_objects();
    edit_embedded(
        object(&mut unmapped_filter, "lattice-auth-denials"),
        SEARCH_SOURCE,
        |source| {
            source["filter"][0]["meta"]["key"] = json!("denied");
            source["filter"][0]["query"] = json!({"match_phrase": {"denied": true}});
        },
    );
    assert_eq!(problems(&unmapped_filter, &template).len(), 2);
}

#[test]
fn a_dangling_or_mistyped_reference_and_a_missing_panel_are_caught() {
    let template = index_template();
    let mut objects = saved_objects();
    let dashboard = object(&mut objects, "lattice-access-dashboard");
    dashboard["references"][3]["id"] = json!("lattice-status-codes");
    dashboard["references"][6]["type"] = json!("visualization");
    assert_eq!(
        problems(&objects, &template),
        [
            "lattice-access-dashboard: reference \"panel_3\" → \"visualization\" \"lattice-status-codes\", which is not in the file",
            "lattice-access-dashboard: reference \"panel_6\" → \"lattice-slowest-requests\" says \"visualization\", the object is a search",
            "lattice-access-dashboard: places lattice-status-classes-over-time 0 times, must be once",
        ]
    );
    let mut unplaced = saved_objects();
    edit_embedded(
        object(&mut unplaced, "lattice-access-dashboard"),
        "/attributes/panelsJSON",
        |panels| {
            panels.as_array_mut().unwrap().truncate(6);
        },
    );
    assert_eq!(
        problems(&unplaced, &template),
        ["lattice-access-dashboard: places lattice-slowest-requests 0 times, must be once"]
    );
    let mut unnamed = saved_objects();
    object(&mut unnamed, "lattice-auth-denials")["references"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    assert_eq!(
        problems(&unnamed, &template),
        ["lattice-auth-denials: kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index has no reference of that name"]
    );
}

#[test]
fn a_repeated_id_a_broken_line_or_a_wrong_summary_is_caught() {
    let mut objects = saved_objects();
    let copy = objects[1].clone();
    objects.push(copy);
    let problems = problems(&objects, &index_template());
    assert!(
        problems.contains(&"lattice-requests-per-service: two objects with this id".to_owned()),
        "{problems:#?}"
    );
    let text = read(SAVED_OBJECTS);
    let broken = text.replacen("{\"attributes\"", "{attributes", 1);
    assert!(parse(&broken).unwrap_err().starts_with("line 1: "));
    let lines: Vec<&str> = text.lines().collect();
    let summary_first = [lines[lines.len() - 1], lines[0]].join("\n");
    assert!(parse(&summary_first).is_err());
}
