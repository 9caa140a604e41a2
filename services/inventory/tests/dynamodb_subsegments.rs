//! Every DynamoDB call is an X-Ray `aws` subsegment, built from the SDK's own operation span plus
//! lattice-xray's interceptor: the exact fields, checked against AWS's segment schema, for a
//! reservation that succeeds and one the table refuses. (Own test binary: it installs the
//! process-global `tracing` subscriber.)

use std::collections::HashMap;

use inventory::dynamo::DynamoStockStore;
use inventory::{table, InventoryEndpoint};
use lattice_xray::dynamodb::local::{client_for, EmbeddedDynamoDb};
use lattice_xray::simulation::{LatencyRange, Simulator};
use lattice_xray::testing::{flatten_segments, fresh_root, lattice_request, with_trace_header};
use lattice_xray::{handle_traced, MemorySink, Telemetry};
use serde_json::{json, Value};

const EVENT: &str = include_str!("fixtures/lattice-v2-post-reservation.json");
const SCHEMA: &str = include_str!("fixtures/xray-segmentdocument-schema-v1.0.0.json");

fn request(order_id: &str, quantity: u32) -> lattice_xray::lambda_http::Request {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] = json!(
        json!({"order_id": order_id, "items": [{"sku": "SKU-0001", "quantity": quantity}]})
            .to_string()
    );
    with_trace_header(
        lattice_request(&event.to_string()),
        &format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", fresh_root()),
    )
}

/// The DynamoDB subsegments of one request's documents, with the times and ids that vary
/// replaced by their kind, and the schema checked on every document.
fn dynamodb_subsegments(sink: &MemorySink) -> (Value, Vec<Value>) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    let datagrams = sink.documents();
    assert_eq!(
        datagrams.len(),
        1,
        "one document per invocation: {datagrams:#?}"
    );
    for document in &datagrams {
        let errors: Vec<String> = validator
            .iter_errors(document)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?} in {document:#}");
    }
    sink.clear();
    let docs = flatten_segments(&datagrams);
    let segment = docs[0].clone();
    let subsegments = docs[1..]
        .iter()
        .filter(|d| d["name"] == "DynamoDB")
        .map(|d| {
            let mut d = d.clone();
            let object = d.as_object_mut().unwrap();
            // Nested in the segment's document (one datagram per invocation); flattening added
            // these three, so they are checked here and dropped.
            assert_eq!(object.remove("type"), Some(json!("subsegment")));
            assert_eq!(object.remove("parent_id"), Some(segment["id"].clone()));
            assert_eq!(object.remove("trace_id"), Some(segment["trace_id"].clone()));
            for key in ["id", "start_time", "end_time"] {
                assert!(object.remove(key).is_some(), "{key} in {d}");
            }
            let request_id = object
                .get_mut("aws")
                .and_then(|aws| aws.as_object_mut())
                .and_then(|aws| aws.remove("request_id"));
            assert!(request_id.is_some_and(|id| id.as_str().is_some_and(|id| !id.is_empty())));
            if let Some(exceptions) = object
                .get_mut("cause")
                .and_then(|c| c.get_mut("exceptions"))
            {
                for exception in exceptions.as_array_mut().unwrap() {
                    exception.as_object_mut().unwrap().remove("id");
                }
            }
            d
        })
        .collect();
    (segment, subsegments)
}

#[tokio::test]
async fn dynamodb_calls_are_aws_subsegments_with_table_status_and_cause() {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("inventory", sink.clone(), 1.0);
    telemetry.install_subscriber();
    let server = EmbeddedDynamoDb::start(0).unwrap();
    let client = client_for(&server.endpoint());
    table::create(&client, "inventory").await.unwrap();
    table::seed(&client, "inventory", &[("SKU-0001".to_owned(), 3)])
        .await
        .unwrap();
    sink.clear();
    let endpoint = InventoryEndpoint::new(
        DynamoStockStore::new(client, "inventory"),
        Simulator::seeded(2),
        LatencyRange::NONE,
        0.0,
    );

    let response = handle_traced(&telemetry, &endpoint, request("ord-1", 2)).await;
    assert_eq!(response.status(), 200);
    let (segment, subsegments) = dynamodb_subsegments(&sink);
    assert_eq!(segment["name"], "inventory");
    assert_eq!(
        subsegments,
        [json!({
            "name": "DynamoDB",
            "namespace": "aws",
            "aws": {
                "operation": "TransactWriteItems",
                "region": "us-east-1",
                "table_name": "inventory",
                "table_names": ["inventory"],
                "xray": {"sdk": "opentelemetry for rust"}
            },
            "http": {"response": {"status": 200}}
        })]
    );

    // Short stock: the transaction is cancelled (400), so the subsegment is an error with the
    // service's exception; the segment answers 409, a domain outcome, not a fault.
    let response = handle_traced(&telemetry, &endpoint, request("ord-2", 2)).await;
    assert_eq!(response.status(), 409);
    let (segment, subsegments) = dynamodb_subsegments(&sink);
    assert_eq!(
        (segment["error"].clone(), segment.get("fault")),
        (json!(true), None)
    );
    assert_eq!(subsegments.len(), 1, "{subsegments:#?}");
    let cancelled = &subsegments[0];
    assert_eq!(cancelled["error"], true);
    assert_eq!(cancelled.get("fault"), None);
    assert_eq!(cancelled["http"], json!({"response": {"status": 400}}));
    assert_eq!(cancelled["aws"]["operation"], "TransactWriteItems");
    let exception = &cancelled["cause"]["exceptions"][0];
    assert_eq!(exception["type"], "TransactionCanceledException");
    assert!(
        exception["message"]
            .as_str()
            .unwrap()
            .contains("ConditionalCheckFailed"),
        "{exception}"
    );

    // A release: a consistent GetItem, then the transaction.
    let response = handle_traced(&telemetry, &endpoint, {
        let mut event: Value = serde_json::from_str(EVENT).unwrap();
        event["path"] = json!("/reservations/ord-1/release");
        event["body"] = json!("{}");
        with_trace_header(
            lattice_request(&event.to_string()),
            &format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", fresh_root()),
        )
    })
    .await;
    assert_eq!(response.status(), 200);
    let (_, subsegments) = dynamodb_subsegments(&sink);
    let operations: Vec<&Value> = subsegments.iter().map(|s| &s["aws"]["operation"]).collect();
    assert_eq!(
        operations,
        [&json!("GetItem"), &json!("TransactWriteItems")]
    );
    let tables: HashMap<&str, usize> = subsegments
        .iter()
        .map(|s| (s["aws"]["table_name"].as_str().unwrap(), 1))
        .collect();
    assert_eq!(tables, HashMap::from([("inventory", 1)]));
}
