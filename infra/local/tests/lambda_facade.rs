//! Active tracing: the Lambda facade segments and the real payment binary's own segment form one
//! trace, parented as on AWS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use local_stack::binaries::service_binary;
use local_stack::dynamodb::{DynamoDbSetup, StackDynamoDb};
use local_stack::lambda::facade::{Facade, FacadeSampling};
use local_stack::lambda::function::{Function, FunctionConfig};
use local_stack::xray::daemon::XrayDaemon;
use local_stack::xray::store::TraceStore;
use serde_json::Value;

const EVENT: &str =
    include_str!("../../../services/payment/tests/fixtures/lattice-v2-post-payment.json");

#[tokio::test]
async fn function_segment_parents_the_functions_own_segment() {
    let store = Arc::new(TraceStore::new(100));
    let daemon = XrayDaemon::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&store))
        .await
        .unwrap();
    let facade = Arc::new(Facade::new(daemon.addr, FacadeSampling::Always, 7).unwrap());
    let dynamodb = StackDynamoDb::start(&DynamoDbSetup::default())
        .await
        .unwrap();
    let mut env = vec![
        ("PAYMENT_LATENCY_MS".into(), "0".into()),
        ("PAYMENT_DECLINE_RATE".into(), "0".into()),
        ("PAYMENT_FAULT_RATE".into(), "0".into()),
        ("AWS_ACCESS_KEY_ID".into(), "local".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
    ];
    env.extend(dynamodb.function_env());
    let function = Function::new(FunctionConfig {
        name: "payment".into(),
        binary: service_binary("payment").unwrap(),
        env,
        memory_mb: 128,
        timeout: Duration::from_secs(3),
        concurrency: 1,
        region: "eu-west-1".into(),
        account_id: "123456789012".into(),
        xray_daemon: Some(daemon.addr.to_string()),
        show_logs: false,
        extensions: Vec::new(),
        log: None,
    })
    .with_facade(facade);

    for (i, cold) in [(1, true), (2, false)] {
        let mut event: Value = serde_json::from_str(EVENT).unwrap();
        event["body"] = Value::String(format!(
            r#"{{"order_id":"f-{i}","amount":5,"currency":"EUR"}}"#
        ));
        let output = function
            .invoke(Bytes::from(event.to_string()), None)
            .await
            .unwrap();
        assert_eq!(output.init_duration.is_some(), cold);
        let expected_docs = 3 * i;
        for _ in 0..200 {
            if store.stats().accepted as usize >= expected_docs {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            store.stats().accepted as usize,
            expected_docs,
            "facade (2) + the function's own segment"
        );
    }

    for trace_id in store.trace_ids() {
        let entities = store.entities(&trace_id).unwrap();
        let by_origin = |origin: &str| {
            entities
                .iter()
                .find(|e| e.is_segment && e.fields["origin"] == origin)
                .unwrap()
        };
        let service = by_origin("AWS::Lambda");
        let function_segment = by_origin("AWS::Lambda::Function");
        let own = entities
            .iter()
            .find(|e| e.is_segment && e.id != service.id && e.id != function_segment.id)
            .expect("payment's own segment is in the facade trace");
        assert_eq!(service.parent_id, None);
        assert_eq!(
            function_segment.parent_id.as_deref(),
            Some(service.id.as_str())
        );
        assert_eq!(own.parent_id.as_deref(), Some(function_segment.id.as_str()));
        assert_eq!(own.fields["name"], "payment");
        assert_eq!(
            own.fields["metadata"]["xray_context"]["source"],
            "lambda_function"
        );
        let subsegment_names: Vec<&str> = entities
            .iter()
            .filter(|e| {
                e.parent_id.as_deref() == Some(function_segment.id.as_str()) && !e.is_segment
            })
            .map(|e| e.fields["name"].as_str().unwrap())
            .collect();
        assert!(
            subsegment_names.contains(&"Invocation"),
            "{subsegment_names:?}"
        );
    }
    // A caller's header (as Lattice passes it through) wins over Lambda's trace: payment continues
    // the caller's trace and keeps Lambda's trace id as metadata. lambda_http's own adapter would
    // have overwritten the header; this is what `lattice_xray::run` exists for.
    let upstream = lattice_xray::testing::fresh_root().to_string();
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["headers"]["x-amzn-trace-id"] =
        serde_json::json!([format!("Root={upstream};Parent=0123456789abcdef;Sampled=1")]);
    function
        .invoke(Bytes::from(event.to_string()), None)
        .await
        .unwrap();
    for _ in 0..200 {
        if store.documents(&upstream).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let continued = store
        .documents(&upstream)
        .expect("payment continued the caller's trace");
    assert_eq!(continued[0]["parent_id"], "0123456789abcdef");
    assert_eq!(
        continued[0]["metadata"]["xray_context"]["source"],
        "upstream"
    );
    let lambda_trace = continued[0]["metadata"]["lambda"]["trace_id"]
        .as_str()
        .unwrap();
    assert!(
        lambda_trace.starts_with("Root=1-") && !lambda_trace.contains(&upstream),
        "{lambda_trace}"
    );

    let initializations: usize = store
        .trace_ids()
        .iter()
        .map(|t| {
            store
                .entities(t)
                .unwrap()
                .iter()
                .filter(|e| e.fields["name"] == "Initialization")
                .count()
        })
        .sum();
    assert_eq!(
        initializations, 1,
        "only the cold start has an Initialization subsegment"
    );
    assert_eq!(store.stats().rejected, 0, "{:?}", store.rejects());
}
