//! The conformance table: every served endpoint and error, request by request, with the exact
//! response JSON OpenSearch gives (volatile values — `took`, uuids, generated ids, dates of
//! creation — masked). Runs the engine in memory through its REST dispatcher, no sockets.
//!
//! Documents are shaped like VPC Lattice access-log entries
//! (`tests/fixtures/lattice-access-log-entry.json`, from `../shared/fixtures`, AWS's documented
//! field list with a real entry's values).

#![recursion_limit = "256"]

use local_search::api::{handle, Reply, ReplyBody, Request};
use local_search::Engine;
use serde_json::{json, Value};

struct Node(Engine);

impl Node {
    fn new() -> Self {
        Self(Engine::open(None).unwrap())
    }

    fn call(&self, method: &str, target: &str, body: &str) -> (u16, Value) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let reply: Reply = handle(
            &self.0,
            &Request {
                method,
                path,
                params,
                body: body.as_bytes(),
            },
        );
        let value = match reply.body {
            Some(ReplyBody::Json(value)) => mask(value),
            Some(ReplyBody::Text(text)) => Value::String(text),
            None => Value::Null,
        };
        (reply.status, value)
    }

    fn json(&self, method: &str, target: &str, body: Value) -> (u16, Value) {
        self.call(method, target, &body.to_string())
    }

    /// Asserts one row of the table.
    #[track_caller]
    fn expect(&self, method: &str, target: &str, body: Value, status: u16, expected: Value) {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (got_status, got) = self.call(method, target, &text);
        assert_eq!(
            (got_status, &got),
            (status, &expected),
            "{method} {target}\n got: {}",
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
}

/// Replaces values that change from run to run.
fn mask(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(key, value)| {
                    let masked = match key.as_str() {
                        "took" => json!(0),
                        "uuid" | "index_uuid" if value != json!("_na_") => json!("<uuid>"),
                        "creation_date" => json!("<date>"),
                        _ => mask(value),
                    };
                    (key, masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(mask).collect()),
        Value::String(s) if s.starts_with("index [") && s.ends_with("] already exists") => {
            Value::String(s.split('/').next().unwrap().to_owned() + "/<uuid>] already exists")
        }
        other => other,
    }
}

fn entry(service: &str, code: u64, duration: Value, minute: u32, method: &str) -> Value {
    let mut entry: Value =
        serde_json::from_str(include_str!("fixtures/lattice-access-log-entry.json")).unwrap();
    entry["serviceArn"] = json!(format!(
        "arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-{service}"
    ));
    entry["serviceName"] = json!(service);
    entry["responseCode"] = json!(code);
    entry["duration"] = duration;
    entry["startTime"] = json!(format!("2026-12-01T10:{minute:02}:00Z"));
    entry["requestMethod"] = json!(method);
    entry
}

/// The index template for Lattice access logs (every field of the 35-field entry mapped; strict).
fn template_body() -> Value {
    serde_json::from_str(include_str!("fixtures/lattice-access-template.json")).unwrap()
}

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

/// Loads 6 entries (order ×3, payment ×2, inventory ×1) into `lattice-access-2026.12.01`.
fn loaded() -> Node {
    let node = Node::new();
    node.expect(
        "PUT",
        "/_index_template/lattice-access",
        template_body(),
        200,
        json!({"acknowledged": true}),
    );
    let docs = [
        ("1", entry("order", 200, json!(30), 0, "POST")),
        ("2", entry("order", 200, json!(50), 0, "POST")),
        ("3", entry("order", 502, json!(110), 1, "POST")),
        ("4", entry("payment", 200, json!(12), 1, "POST")),
        ("5", entry("payment", 402, json!(8), 2, "POST")),
        ("6", entry("inventory", 200, json!(4), 2, "GET")),
    ];
    let mut lines = Vec::new();
    for (id, doc) in docs {
        lines.push(json!({"index": {"_index": "lattice-access-2026.12.01", "_id": id}}));
        lines.push(doc);
    }
    let (status, body) = node.call("POST", "/_bulk?refresh=true", &ndjson(&lines));
    assert_eq!(status, 200);
    assert_eq!(body["errors"], json!(false), "{body}");
    node
}

#[test]
fn root_health_and_cat() {
    let node = loaded();
    let (status, root) = node.call("GET", "/", "");
    assert_eq!(status, 200);
    assert_eq!(root["version"]["distribution"], "opensearch");
    assert_eq!(root["version"]["number"], "2.19.0");
    assert_eq!(
        root["tagline"],
        "The OpenSearch Project: https://opensearch.org/"
    );
    node.expect("GET", "/_cluster/health", Value::Null, 200, json!({
        "cluster_name": "local-stack", "status": "green", "timed_out": false,
        "number_of_nodes": 1, "number_of_data_nodes": 1, "discovered_master": true,
        "discovered_cluster_manager": true, "active_primary_shards": 1, "active_shards": 1,
        "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
        "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0
    }));
    let (status, cat) = node.call("GET", "/_cat/indices?format=json&bytes=b", "");
    assert_eq!(status, 200);
    let row = &cat[0];
    assert_eq!(
        (
            row["health"].as_str(),
            row["status"].as_str(),
            row["index"].as_str(),
            row["pri"].as_str(),
            row["rep"].as_str(),
            row["docs.count"].as_str(),
            row["docs.deleted"].as_str()
        ),
        (
            Some("green"),
            Some("open"),
            Some("lattice-access-2026.12.01"),
            Some("1"),
            Some("0"),
            Some("6"),
            Some("0")
        )
    );
    let (_, text) = node.call("GET", "/_cat/indices?v", "");
    assert!(text
        .as_str()
        .unwrap()
        .starts_with("health status index uuid pri rep docs.count"));
}

#[test]
fn templates_indices_and_mappings() {
    let node = loaded();
    let (status, templates) = node.call("GET", "/_index_template/lattice-access", "");
    assert_eq!(status, 200);
    assert_eq!(templates["index_templates"][0]["name"], "lattice-access");
    assert_eq!(
        templates["index_templates"][0]["index_template"]["priority"],
        10
    );
    assert_eq!(
        templates["index_templates"][0]["index_template"]["index_patterns"],
        json!(["lattice-access-*"])
    );
    node.expect("GET", "/_index_template/nope", Value::Null, 404, json!({"error": {
        "root_cause": [{"type": "resource_not_found_exception", "reason": "index template matching [nope] not found"}],
        "type": "resource_not_found_exception", "reason": "index template matching [nope] not found"}, "status": 404}));
    let (status, mapping) = node.call("GET", "/lattice-access-2026.12.01/_mapping", "");
    assert_eq!(status, 200);
    let mappings = &mapping["lattice-access-2026.12.01"]["mappings"];
    assert_eq!(mappings["dynamic"], "strict");
    assert_eq!(mappings["properties"]["duration"], json!({"type": "long"}));
    assert_eq!(mappings["properties"]["startTime"], json!({"type": "date"}));
    node.expect(
        "HEAD",
        "/lattice-access-2026.12.01",
        Value::Null,
        200,
        Value::Null,
    );
    node.expect("HEAD", "/missing", Value::Null, 404, Value::Null);
    node.expect(
        "PUT",
        "/created",
        json!({"mappings": {"properties": {"a": {"type": "keyword"}}}}),
        200,
        json!({"acknowledged": true, "shards_acknowledged": true, "index": "created"}),
    );
    node.expect("PUT", "/created", Value::Null, 400, json!({"error": {
        "root_cause": [{"type": "resource_already_exists_exception", "reason": "index [created/<uuid>] already exists", "index": "created", "index_uuid": "<uuid>"}],
        "type": "resource_already_exists_exception", "reason": "index [created/<uuid>] already exists", "index": "created", "index_uuid": "<uuid>"}, "status": 400}));
    node.expect("PUT", "/Bad", Value::Null, 400, json!({"error": {
        "root_cause": [{"type": "invalid_index_name_exception", "reason": "Invalid index name [Bad], must be lowercase", "index": "Bad", "index_uuid": "_na_"}],
        "type": "invalid_index_name_exception", "reason": "Invalid index name [Bad], must be lowercase", "index": "Bad", "index_uuid": "_na_"}, "status": 400}));
    node.expect(
        "DELETE",
        "/created",
        Value::Null,
        200,
        json!({"acknowledged": true}),
    );
    node.expect("GET", "/created/_mapping", Value::Null, 404, json!({"error": {
        "root_cause": [{"type": "index_not_found_exception", "reason": "no such index [created]", "index": "created", "resource.id": "created", "resource.type": "index_or_alias", "index_uuid": "_na_"}],
        "type": "index_not_found_exception", "reason": "no such index [created]", "index": "created", "resource.id": "created", "resource.type": "index_or_alias", "index_uuid": "_na_"}, "status": 404}));
    node.expect(
        "DELETE",
        "/_index_template/lattice-access",
        Value::Null,
        200,
        json!({"acknowledged": true}),
    );
}

#[test]
fn dynamic_mapping_infers_types_from_first_values() {
    let node = Node::new();
    let (status, _) = node.json("POST", "/telemetry/_doc/1?refresh=true", json!({
        "time": "2026-12-01T10:00:00.000Z", "type": "platform.report", "record": {"metrics": {"durationMs": 12.5, "maxMemoryUsedMB": 31}, "status": "success"}, "cold": true
    }));
    assert_eq!(status, 201);
    node.expect("GET", "/telemetry/_mapping", Value::Null, 200, json!({"telemetry": {"mappings": {"properties": {
        "cold": {"type": "boolean"},
        "record": {"properties": {
            "metrics": {"properties": {"durationMs": {"type": "float"}, "maxMemoryUsedMB": {"type": "long"}}},
            "status": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        }},
        "time": {"type": "date"},
        "type": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    }}}}));
    // The first value decided: a string in a long field now fails that document.
    let (status, body) = node.json(
        "POST",
        "/telemetry/_doc/2",
        json!({"record": {"metrics": {"maxMemoryUsedMB": "lots"}}}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "mapper_parsing_exception");
    assert_eq!(body["error"]["reason"], "failed to parse field [record.metrics.maxMemoryUsedMB] of type [long] in document with id '2'. Preview of field's value: 'lots'");
}

#[test]
fn bulk_with_some_failing_items_indexes_the_rest() {
    let node = Node::new();
    node.expect(
        "PUT",
        "/_index_template/lattice-access",
        template_body(),
        200,
        json!({"acknowledged": true}),
    );
    let mut bad_duration = entry("order", 200, json!("-"), 3, "POST");
    bad_duration["duration"] = json!("-");
    let mut unknown_field = entry("order", 200, json!(3), 3, "POST");
    unknown_field["responseTimeMs"] = json!(3);
    let body = ndjson(&[
        json!({"index": {"_index": "lattice-access-x", "_id": "a"}}),
        entry("order", 200, json!(10), 3, "POST"),
        json!({"index": {"_index": "lattice-access-x", "_id": "b"}}),
        bad_duration,
        json!({"create": {"_index": "lattice-access-x", "_id": "a"}}),
        entry("order", 200, json!(11), 3, "POST"),
        json!({"index": {"_index": "lattice-access-x", "_id": "c"}}),
        unknown_field,
        json!({"delete": {"_index": "lattice-access-x", "_id": "zzz"}}),
        json!({"index": {"_index": "lattice-access-x", "_id": "a"}}),
        entry("order", 201, json!(12), 3, "POST"),
    ]);
    node.expect("POST", "/_bulk", json!(null), 400, json!({"error": {
        "root_cause": [{"type": "action_request_validation_exception", "reason": "Validation Failed: 1: no requests added;"}],
        "type": "action_request_validation_exception", "reason": "Validation Failed: 1: no requests added;"}, "status": 400}));
    let shards = json!({"total": 1, "successful": 1, "failed": 0});
    node.expect("POST", "/_bulk", json!(null), 400, json!({"error": {
        "root_cause": [{"type": "action_request_validation_exception", "reason": "Validation Failed: 1: no requests added;"}],
        "type": "action_request_validation_exception", "reason": "Validation Failed: 1: no requests added;"}, "status": 400}));
    let (status, got) = node.call("POST", "/_bulk", &body);
    assert_eq!(status, 200);
    assert_eq!(
        got,
        json!({"took": 0, "errors": true, "items": [
            {"index": {"_index": "lattice-access-x", "_id": "a", "_version": 1, "result": "created", "_shards": shards, "_seq_no": 0, "_primary_term": 1, "status": 201}},
            {"index": {"_index": "lattice-access-x", "_id": "b", "status": 400, "error": {
                "type": "mapper_parsing_exception",
                "reason": "failed to parse field [duration] of type [long] in document with id 'b'. Preview of field's value: '-'",
                "caused_by": {"type": "number_format_exception", "reason": "For input string: \"-\""}}}},
            {"create": {"_index": "lattice-access-x", "_id": "a", "status": 409, "error": {
                "type": "version_conflict_engine_exception",
                "reason": "[a]: version conflict, document already exists (current version [1])",
                "index": "lattice-access-x", "shard": "0", "index_uuid": "<uuid>"}}},
            {"index": {"_index": "lattice-access-x", "_id": "c", "status": 400, "error": {
                "type": "strict_dynamic_mapping_exception",
                "reason": "mapping set to strict, dynamic introduction of [responseTimeMs] within [_doc] is not allowed"}}},
            {"delete": {"_index": "lattice-access-x", "_id": "zzz", "_version": 1, "result": "not_found", "_shards": shards, "_seq_no": 1, "_primary_term": 1, "status": 404}},
            {"index": {"_index": "lattice-access-x", "_id": "a", "_version": 2, "result": "updated", "_shards": shards, "_seq_no": 2, "_primary_term": 1, "status": 200}}
        ]})
    );
    // Realtime GET sees the write before any refresh; search does not.
    let (status, doc) = node.call("GET", "/lattice-access-x/_doc/a", "");
    assert_eq!(status, 200);
    assert_eq!(
        (
            doc["_version"].clone(),
            doc["_source"]["responseCode"].clone(),
            doc["found"].clone()
        ),
        (json!(2), json!(201), json!(true))
    );
    let (_, count) = node.call("GET", "/lattice-access-x/_count", "");
    assert_eq!(count["count"], 0);
    node.expect(
        "POST",
        "/lattice-access-x/_refresh",
        Value::Null,
        200,
        json!({"_shards": {"total": 2, "successful": 1, "failed": 0}}),
    );
    let (_, count) = node.call("GET", "/lattice-access-x/_count", "");
    assert_eq!(count["count"], 1);
    node.expect(
        "GET",
        "/lattice-access-x/_doc/b",
        Value::Null,
        404,
        json!({"_index": "lattice-access-x", "_id": "b", "found": false}),
    );
}

#[test]
fn malformed_and_oversized_requests() {
    let node = Node::new();
    node.expect("POST", "/_bulk", json!(null), 400, json!({"error": {
        "root_cause": [{"type": "action_request_validation_exception", "reason": "Validation Failed: 1: no requests added;"}],
        "type": "action_request_validation_exception", "reason": "Validation Failed: 1: no requests added;"}, "status": 400}));
    let (status, body) = node.call(
        "POST",
        "/_bulk",
        "{\"index\":{\"_index\":\"a\"}}\n{}\n{\"index\":{\"_index\":\"a\"\n{}\n",
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "illegal_argument_exception");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Malformed action/metadata line [3], "),
        "{body}"
    );
    let (status, body) = node.call("GET", "/a/_search", "{\"query\": {\"nope\": {}}}");
    assert_eq!(status, 404, "{body}");
    node.call("PUT", "/a", "");
    node.expect("GET", "/a/_search", json!({"query": {"nope": {}}}), 400, json!({"error": {
        "root_cause": [{"type": "parsing_exception", "reason": "unknown query [nope]", "line": 1, "col": 1}],
        "type": "parsing_exception", "reason": "unknown query [nope]", "line": 1, "col": 1}, "status": 400}));
    node.expect("GET", "/a/_search?scroll=1m", Value::Null, 400, json!({"error": {
        "root_cause": [{"type": "illegal_argument_exception", "reason": "request [/a/_search] contains unrecognized parameter: [scroll]"}],
        "type": "illegal_argument_exception", "reason": "request [/a/_search] contains unrecognized parameter: [scroll]"}, "status": 400}));
    let (status, body) = node.call("POST", "/a/_update/1", "{}");
    assert_eq!(status, 400);
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("no handler found for uri [/a/_update/1] and method [POST]"));
    let (status, body) = node.json("GET", "/a/_search", json!({"from": u64::MAX, "size": 10}));
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (400, json!("illegal_argument_exception"))
    );
    node.expect("GET", "/a/_search", json!({"size": 5, "highlight": {}}), 400, json!({"error": {
        "root_cause": [{"type": "parsing_exception", "reason": "Unknown key for a START_OBJECT in [highlight].", "line": 1, "col": 1}],
        "type": "parsing_exception", "reason": "Unknown key for a START_OBJECT in [highlight].", "line": 1, "col": 1}, "status": 400}));
}

fn hits_ids(body: &Value) -> Vec<String> {
    body["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn queries_find_exact_hits() {
    let node = loaded();
    let search = |query: Value| {
        let (status, body) = node.json(
            "POST",
            "/lattice-access-*/_search",
            json!({"query": query, "sort": [{"duration": "asc"}], "size": 10}),
        );
        assert_eq!(status, 200, "{body}");
        hits_ids(&body)
    };
    assert_eq!(
        search(json!({"match_all": {}})),
        ["6", "5", "4", "1", "2", "3"]
    );
    assert_eq!(
        search(json!({"term": {"serviceName": "order"}})),
        ["1", "2", "3"]
    );
    assert_eq!(
        search(json!({"term": {"responseCode": "200"}})),
        ["6", "4", "1", "2"]
    );
    assert_eq!(
        search(json!({"terms": {"serviceName": ["payment", "inventory"]}})),
        ["6", "5", "4"]
    );
    assert_eq!(
        search(json!({"range": {"duration": {"gte": 10, "lt": 110}}})),
        ["4", "1", "2"]
    );
    assert_eq!(
        search(json!({"range": {"startTime": {"gte": "2026-12-01T10:01:00Z"}}})),
        ["6", "5", "4", "3"]
    );
    assert_eq!(
        search(json!({"range": {"startTime": {"lte": "2026-12-01T10:00:00Z||+1m/m"}}})),
        ["4", "1", "2", "3"]
    );
    assert_eq!(
        search(json!({"range": {"startTime": {"gte": "now-15m"}}})),
        Vec::<String>::new()
    );
    assert_eq!(
        search(json!({"bool": {
        "must": [{"term": {"requestMethod": "POST"}}],
        "filter": [{"range": {"responseCode": {"gte": 400}}}],
        "must_not": [{"term": {"serviceName": "payment"}}]}})),
        ["3"]
    );
    assert_eq!(
        search(
            json!({"bool": {"should": [{"term": {"serviceName": "inventory"}}, {"term": {"responseCode": 502}}, {"term": {"duration": 4}}], "minimum_should_match": 2}})
        ),
        ["6"]
    );
    assert_eq!(
        search(json!({"bool": {"must_not": [{"term": {"serviceName": "order"}}]}})),
        ["6", "5", "4"]
    );
    assert_eq!(search(json!({"exists": {"field": "duration"}})).len(), 6);
    assert_eq!(
        search(json!({"exists": {"field": "responseTimeMs"}})).len(),
        0
    );
    assert_eq!(
        search(json!({"prefix": {"serviceName": "pay"}})),
        ["5", "4"]
    );
    assert_eq!(search(json!({"match": {"userAgent": "CURL"}})).len(), 6);
    assert_eq!(
        search(json!({"match": {"serviceName": "order"}})),
        ["1", "2", "3"]
    );
    assert_eq!(search(json!({"ids": {"values": ["2", "5"]}})), ["5", "2"]);
    assert_eq!(
        search(json!({"query_string": {"query": "serviceName:order AND NOT responseCode:502"}})),
        ["1", "2"]
    );
    assert_eq!(
        search(json!({"query_string": {"query": "duration:[50 TO *] OR serviceName:inventory"}})),
        ["6", "2", "3"]
    );
    assert_eq!(
        search(json!({"query_string": {"query": "payment"}})),
        ["5", "4"]
    );
}

#[test]
fn paging_sorting_source_and_totals() {
    let node = loaded();
    let (status, body) = node.json(
        "POST",
        "/lattice-access-2026.12.01/_search",
        json!({
            "query": {"term": {"requestMethod": "POST"}},
            "sort": [{"serviceName": "desc"}, {"duration": {"order": "desc"}}],
            "from": 1, "size": 2, "_source": ["serviceName", "duration"], "track_total_hits": true
        }),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"took": 0, "timed_out": false,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": 5, "relation": "eq"}, "max_score": null, "hits": [
            {"_index": "lattice-access-2026.12.01", "_id": "5", "_score": null, "_source": {"serviceName": "payment", "duration": 8}, "sort": ["payment", 8]},
            {"_index": "lattice-access-2026.12.01", "_id": "3", "_score": null, "_source": {"serviceName": "order", "duration": 110}, "sort": ["order", 110]}
        ]}})
    );
    let (_, body) = node.json(
        "POST",
        "/_search",
        json!({"size": 0, "track_total_hits": 3}),
    );
    assert_eq!(
        body["hits"]["total"],
        json!({"value": 3, "relation": "gte"})
    );
    let (_, body) = node.call("GET", "/_search?size=0&rest_total_hits_as_int=true", "");
    assert_eq!(body["hits"]["total"], json!(6));
    let (_, body) = node.call(
        "GET",
        "/_search?q=serviceName:payment&sort=duration:desc&_source=false",
        "",
    );
    assert_eq!(hits_ids(&body), ["4", "5"]);
    assert_eq!(body["hits"]["hits"][0].get("_source"), None);
    node.expect("POST", "/_search", json!({"sort": [{"userAgent": "asc"}]}), 400, json!({"error": {
        "root_cause": [{"type": "illegal_argument_exception", "reason": "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [userAgent] in order to load field data by uninverting the inverted index. Note that this can use significant memory."}],
        "type": "illegal_argument_exception", "reason": "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [userAgent] in order to load field data by uninverting the inverted index. Note that this can use significant memory."}, "status": 400}));
}

#[test]
fn aggregations_answer_in_opensearchs_format() {
    let node = loaded();
    let (status, body) = node.json("POST", "/lattice-access-*/_search", json!({
        "size": 0,
        "aggs": {
            "first": {"min": {"field": "startTime"}},
            "by_service": {"terms": {"field": "serviceName", "size": 2},
                "aggs": {"p": {"percentiles": {"field": "duration", "percents": [50]}}, "avg_ms": {"avg": {"field": "duration"}}}},
            "per_minute": {"date_histogram": {"field": "startTime", "fixed_interval": "1m"},
                "aggs": {"codes": {"terms": {"field": "responseCode"}}}},
            "durations": {"histogram": {"field": "duration", "interval": 50}},
            "speed": {"range": {"field": "duration", "ranges": [{"to": 10}, {"from": 10, "to": 100}, {"from": 100}]}},
            "errors": {"filter": {"range": {"responseCode": {"gte": 500}}}, "aggs": {"n": {"value_count": {"field": "duration"}}}},
            "classes": {"filters": {"filters": {"ok": {"term": {"responseCode": 200}}, "client": {"range": {"responseCode": {"gte": 400, "lt": 500}}}}}},
            "stats": {"stats": {"field": "duration"}},
            "total": {"sum": {"field": "bytesSent"}},
            "fastest": {"min": {"field": "duration"}},
            "slowest": {"max": {"field": "duration"}},
            "services": {"cardinality": {"field": "serviceName"}}
        }
    }));
    assert_eq!(status, 200, "{body}");
    let aggs = &body["aggregations"];
    assert_eq!(
        aggs["first"],
        json!({"value": 1_796_119_200_000.0, "value_as_string": "2026-12-01T10:00:00.000Z"})
    );
    assert_eq!(aggs["by_service"]["buckets"][0]["key"], "order");
    assert_eq!(aggs["by_service"]["buckets"][0]["doc_count"], 3);
    assert_eq!(
        aggs["by_service"]["buckets"][0]["avg_ms"],
        json!({"value": 190.0 / 3.0})
    );
    assert_eq!(aggs["by_service"]["buckets"][1]["key"], "payment");
    assert_eq!(aggs["by_service"]["sum_other_doc_count"], 1);
    let p50 = aggs["by_service"]["buckets"][0]["p"]["values"]["50.0"]
        .as_f64()
        .unwrap();
    assert!(
        (p50 - 50.0).abs() <= 1.0,
        "p50 of 30, 50, 110 is about 50, got {p50}"
    );
    assert_eq!(aggs["per_minute"]["buckets"].as_array().unwrap().len(), 3);
    assert_eq!(
        aggs["per_minute"]["buckets"][0]["key_as_string"],
        "2026-12-01T10:00:00.000Z"
    );
    assert_eq!(
        aggs["per_minute"]["buckets"][0]["key"],
        1_796_119_200_000i64
    );
    assert_eq!(aggs["per_minute"]["buckets"][0]["doc_count"], 2);
    assert_eq!(
        aggs["per_minute"]["buckets"][1]["codes"]["buckets"],
        json!([
        {"key": 200, "doc_count": 1}, {"key": 502, "doc_count": 1}])
    );
    assert_eq!(
        aggs["durations"]["buckets"],
        json!([
        {"key": 0.0, "doc_count": 4}, {"key": 50.0, "doc_count": 1}, {"key": 100.0, "doc_count": 1}])
    );
    assert_eq!(
        aggs["speed"]["buckets"],
        json!([
        {"key": "*-10", "to": 10.0, "doc_count": 2},
        {"key": "10-100", "from": 10.0, "to": 100.0, "doc_count": 3},
        {"key": "100-*", "from": 100.0, "doc_count": 1}])
    );
    assert_eq!(aggs["errors"], json!({"doc_count": 1, "n": {"value": 1}}));
    assert_eq!(
        aggs["classes"],
        json!({"buckets": {"client": {"doc_count": 1}, "ok": {"doc_count": 4}}})
    );
    assert_eq!(
        aggs["stats"],
        json!({"count": 6, "min": 4.0, "max": 110.0, "avg": 214.0 / 6.0, "sum": 214.0})
    );
    assert_eq!(aggs["total"], json!({"value": 6.0 * 1247.0}));
    assert_eq!(aggs["fastest"], json!({"value": 4.0}));
    assert_eq!(aggs["slowest"], json!({"value": 110.0}));
    assert_eq!(aggs["services"], json!({"value": 3}));
}

#[test]
fn calendar_histograms_and_aggregation_errors() {
    let node = loaded();
    let (status, body) = node.json("POST", "/_search", json!({"size": 0, "aggs": {
        "months": {"date_histogram": {"field": "startTime", "calendar_interval": "month", "format": "yyyy-MM"}},
        "days": {"date_histogram": {"field": "startTime", "calendar_interval": "1d"}},
        "windows": {"range": {"field": "startTime", "ranges": [{"to": "2026-12-01T10:01:00Z"}, {"from": 1_796_119_260_000i64}]}}
    }}));
    assert_eq!(
        body["aggregations"]["windows"]["buckets"],
        json!([
        {"key": "*-2026-12-01T10:01:00.000Z", "to": 1_796_119_260_000.0, "to_as_string": "2026-12-01T10:01:00.000Z", "doc_count": 2},
        {"key": "2026-12-01T10:01:00.000Z-*", "from": 1_796_119_260_000.0, "from_as_string": "2026-12-01T10:01:00.000Z", "doc_count": 4}])
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["aggregations"]["months"],
        json!({"buckets": [{"key_as_string": "2026-12", "key": 1_796_083_200_000i64, "doc_count": 6}]})
    );
    assert_eq!(
        body["aggregations"]["days"]["buckets"][0]["key_as_string"],
        "2026-12-01T00:00:00.000Z"
    );
    assert_eq!(body["aggregations"]["days"]["buckets"][0]["doc_count"], 6);
    let (status, body) = node.json(
        "POST",
        "/_search",
        json!({"aggs": {"x": {"terms": {"field": "userAgent"}}}}),
    );
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (400, json!("illegal_argument_exception"))
    );
    let (status, body) = node.json(
        "POST",
        "/_search",
        json!({"aggs": {"x": {"geohash_grid": {"field": "a"}}}}),
    );
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (400, json!("parsing_exception"))
    );
}

#[test]
fn documents_create_get_and_delete() {
    let node = Node::new();
    let shards = json!({"total": 2, "successful": 1, "failed": 0});
    node.expect("PUT", "/docs/_doc/1", json!({"a": "x"}), 201, json!({"_index": "docs", "_id": "1", "_version": 1, "result": "created", "_shards": shards, "_seq_no": 0, "_primary_term": 1}));
    node.expect("PUT", "/docs/_create/1", json!({"a": "y"}), 409, json!({"error": {
        "root_cause": [{"type": "version_conflict_engine_exception", "reason": "[1]: version conflict, document already exists (current version [1])", "index": "docs", "shard": "0", "index_uuid": "<uuid>"}],
        "type": "version_conflict_engine_exception", "reason": "[1]: version conflict, document already exists (current version [1])", "index": "docs", "shard": "0", "index_uuid": "<uuid>"}, "status": 409}));
    node.expect("GET", "/docs/_doc/1", Value::Null, 200, json!({"_index": "docs", "_id": "1", "_version": 1, "_seq_no": 0, "_primary_term": 1, "found": true, "_source": {"a": "x"}}));
    node.expect("DELETE", "/docs/_doc/1?refresh=true", Value::Null, 200, json!({"_index": "docs", "_id": "1", "_version": 2, "result": "deleted", "_shards": shards, "_seq_no": 1, "_primary_term": 1, "forced_refresh": true}));
    node.expect(
        "GET",
        "/docs/_doc/1",
        Value::Null,
        404,
        json!({"_index": "docs", "_id": "1", "found": false}),
    );
    let (status, body) = node.json("POST", "/docs/_doc", json!({"a": "auto"}));
    assert_eq!(status, 201);
    assert_eq!(body["_id"].as_str().unwrap().len(), 20);
}

#[test]
fn disk_indices_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(Some(dir.path().to_owned())).unwrap();
        let node = Node(engine);
        node.expect("PUT", "/_index_template/t", json!({"index_patterns": ["kept-*"], "template": {"mappings": {"properties": {"n": {"type": "long"}}}}}), 200, json!({"acknowledged": true}));
        let (status, _) = node.call(
            "POST",
            "/_bulk?refresh=wait_for",
            &ndjson(&[
                json!({"index": {"_index": "kept-1", "_id": "x"}}),
                json!({"n": 7}),
            ]),
        );
        assert_eq!(status, 200);
    }
    let node = Node(Engine::open(Some(dir.path().to_owned())).unwrap());
    let (_, body) = node.json(
        "POST",
        "/kept-1/_search",
        json!({"query": {"term": {"n": 7}}}),
    );
    assert_eq!(hits_ids(&body), ["x"]);
    let (_, templates) = node.call("GET", "/_index_template/t", "");
    assert_eq!(
        templates["index_templates"][0]["index_template"]["index_patterns"],
        json!(["kept-*"])
    );
    let (_, body) = node.json("PUT", "/kept-1/_doc/x", json!({"n": 8}));
    assert_eq!(body["_version"], 2);
}

#[test]
fn mapping_updates_settings_and_template_conflicts() {
    let node = loaded();
    // A new field may be added; a mapped field may not change type.
    node.expect(
        "PUT",
        "/lattice-access-2026.12.01/_mapping",
        json!({"properties": {"region": {"type": "keyword"}}}),
        200,
        json!({"acknowledged": true}),
    );
    let (_, mapping) = node.call("GET", "/lattice-access-2026.12.01/_mapping", "");
    assert_eq!(
        mapping["lattice-access-2026.12.01"]["mappings"]["properties"]["region"],
        json!({"type": "keyword"})
    );
    node.expect("PUT", "/lattice-access-2026.12.01/_mapping", json!({"properties": {"duration": {"type": "keyword"}}}), 400, json!({"error": {
        "root_cause": [{"type": "illegal_argument_exception", "reason": "mapper [duration] cannot be changed from type [long] to [keyword]"}],
        "type": "illegal_argument_exception", "reason": "mapper [duration] cannot be changed from type [long] to [keyword]"}, "status": 400}));
    node.expect("GET", "/lattice-access-2026.12.01/_settings", Value::Null, 200, json!({"lattice-access-2026.12.01": {"settings": {"index": {
        "creation_date": "<date>", "number_of_shards": "1", "number_of_replicas": "0", "refresh_interval": "-1",
        "uuid": "<uuid>", "version": {"created": "136407827"}, "provided_name": "lattice-access-2026.12.01"}}}}));
    node.expect("PUT", "/other", json!({"settings": {"index": {"codec": "best_compression"}}}), 400, json!({"error": {
        "root_cause": [{"type": "illegal_argument_exception", "reason": "unknown setting [index.codec] please check that any required plugins are installed, or check the breaking changes documentation for removed settings"}],
        "type": "illegal_argument_exception", "reason": "unknown setting [index.codec] please check that any required plugins are installed, or check the breaking changes documentation for removed settings"}, "status": 400}));
    // Two templates of one priority may not match the same indices.
    let (status, body) = node.json(
        "PUT",
        "/_index_template/clash",
        json!({"index_patterns": ["lattice-access-2026*"], "priority": 10}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "illegal_argument_exception");
    assert!(body["error"]["reason"].as_str().unwrap().starts_with(
        "index template [clash] has index patterns [\"lattice-access-2026*\"] matching patterns from existing templates [lattice-access]"
    ));
}
