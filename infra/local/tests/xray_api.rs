//! The local X-Ray API answered through `aws-sdk-xray` (pointed at it with `endpoint_url`), over
//! a three-service trace produced by the real `lattice-xray` exporter and sent to the daemon.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_xray::primitives::DateTime;
use aws_sdk_xray::Client;
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::lattice_client::CallSegment;
use lattice_xray::testing::{fresh_root, lattice_request, with_trace_header};
use lattice_xray::{
    annotate, handle_traced, json_response, keys, Endpoint, Telemetry, TelemetryConfig,
};
use local_stack::xray::api::XrayApi;
use local_stack::xray::daemon::XrayDaemon;
use local_stack::xray::store::TraceStore;

const POST_JSON: &str = include_str!("../../../shared/tests/fixtures/lattice-v2-post-json.json");

fn telemetry(name: &str, daemon: std::net::SocketAddr) -> Telemetry {
    let config = TelemetryConfig::from_lookup(|key| match key {
        "AWS_LAMBDA_FUNCTION_NAME" => Some(name.to_owned()),
        "AWS_XRAY_DAEMON_ADDRESS" => Some(daemon.to_string()),
        _ => None,
    })
    .unwrap();
    Telemetry::from_config(&config).unwrap()
}

/// A peer that answers `status`.
struct Peer(u16);

impl Endpoint for Peer {
    async fn handle(&self, _request: Request) -> Response<Body> {
        json_response(http::StatusCode::from_u16(self.0).unwrap(), &"done")
    }
}

/// Order: calls inventory then payment in-process, carrying the trace header as Lattice would.
struct Order {
    me: Telemetry,
    inventory: Telemetry,
    payment: Telemetry,
    payment_status: u16,
}

impl Endpoint for Order {
    async fn handle(&self, _request: Request) -> Response<Body> {
        annotate(&keys::ORDER_ID, "ord-api");
        for (name, peer, status) in [
            ("inventory", &self.inventory, 200),
            ("payment", &self.payment, self.payment_status),
        ] {
            let call = CallSegment::start(
                self.me.tracer(),
                name,
                "POST",
                &format!("https://{name}.example/"),
            );
            let request =
                with_trace_header(lattice_request(POST_JSON), call.trace_header().unwrap());
            let answer = handle_traced(peer, &Peer(status), request).await;
            call.answered(answer.status().as_u16());
        }
        json_response(http::StatusCode::CREATED, &"created")
    }
}

async fn client(api: &XrayApi) -> Client {
    let config = aws_sdk_xray::Config::builder()
        .behavior_version(aws_sdk_xray::config::BehaviorVersion::latest())
        .region(aws_sdk_xray::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKID", "secret", None, None, "test",
        ))
        .endpoint_url(format!("http://{}", api.addr))
        .build();
    Client::from_conf(config)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn sdk_reads_summaries_traces_and_the_service_graph() {
    let store = Arc::new(TraceStore::new(10_000));
    let daemon = XrayDaemon::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&store))
        .await
        .unwrap();
    let api = XrayApi::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&store))
        .await
        .unwrap();
    let order = Order {
        me: telemetry("order", daemon.addr),
        inventory: telemetry("inventory", daemon.addr),
        payment: telemetry("payment", daemon.addr),
        payment_status: 200,
    };
    let roots: Vec<String> = (0..3).map(|_| fresh_root().to_string()).collect();
    for root in &roots {
        let request = with_trace_header(
            lattice_request(POST_JSON),
            &format!("Root={root};Sampled=1"),
        );
        assert_eq!(
            handle_traced(&order.me, &order, request).await.status(),
            201
        );
    }
    let faulty = Order {
        payment_status: 503,
        ..order
    };
    let fault_root = fresh_root().to_string();
    let request = with_trace_header(
        lattice_request(POST_JSON),
        &format!("Root={fault_root};Sampled=1"),
    );
    handle_traced(&faulty.me, &faulty, request).await;
    for _ in 0..200 {
        if store.stats().accepted >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.stats().accepted, 12, "3 segments per order, 4 orders");

    let xray = client(&api).await;
    let (start, end) = (
        DateTime::from_secs_f64(now() - 60.0),
        DateTime::from_secs_f64(now() + 60.0),
    );

    // Summaries, filtered.
    let summaries = xray
        .get_trace_summaries()
        .start_time(start)
        .end_time(end)
        .filter_expression("annotation.order_id = \"ord-api\" AND !fault")
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = summaries
        .trace_summaries()
        .iter()
        .map(|s| s.id().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = roots.clone();
    expected.sort();
    assert_eq!(ids, expected);
    let summary = &summaries.trace_summaries()[0];
    assert_eq!(summary.http().unwrap().http_status(), Some(201));
    assert_eq!(summary.entry_point().unwrap().name(), Some("order"));
    let mut services: Vec<&str> = summary
        .service_ids()
        .iter()
        .filter_map(|s| s.name())
        .collect();
    services.sort_unstable();
    assert_eq!(services, ["inventory", "order", "payment"]);
    assert_eq!(
        summary.annotations().unwrap()["order_id"][0]
            .annotation_value()
            .unwrap()
            .as_string_value()
            .unwrap(),
        "ord-api"
    );
    assert_eq!(summaries.traces_processed_count(), Some(4));

    let faults = xray
        .get_trace_summaries()
        .start_time(start)
        .end_time(end)
        .filter_expression("fault")
        .send()
        .await
        .unwrap();
    assert_eq!(faults.trace_summaries().len(), 1);
    assert_eq!(faults.trace_summaries()[0].id(), Some(fault_root.as_str()));
    assert_eq!(faults.trace_summaries()[0].has_fault(), Some(true));

    let refused = xray
        .get_trace_summaries()
        .start_time(start)
        .end_time(end)
        .filter_expression("responsetime >")
        .send()
        .await;
    let error = refused.unwrap_err().into_service_error();
    assert!(error.is_invalid_request_exception(), "{error:?}");

    // Whole traces.
    let traces = xray
        .batch_get_traces()
        .trace_ids(&roots[0])
        .trace_ids("1-00000000-000000000000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(traces.traces().len(), 1);
    assert_eq!(traces.traces()[0].segments().len(), 3);
    assert_eq!(
        traces.unprocessed_trace_ids(),
        ["1-00000000-000000000000000000000000"]
    );

    // The service graph: client → order → {inventory, payment}.
    let graph = xray
        .get_service_graph()
        .start_time(start)
        .end_time(end)
        .send()
        .await
        .unwrap();
    let name_of = |reference: i32| {
        graph
            .services()
            .iter()
            .find(|s| s.reference_id() == Some(reference))
            .map(|s| s.name().unwrap_or("client").to_owned())
            .unwrap()
    };
    let mut edges: Vec<(String, String, i64, i64)> = Vec::new();
    for service in graph.services() {
        for edge in service.edges() {
            let stats = edge.summary_statistics().unwrap();
            let faults = stats
                .fault_statistics()
                .and_then(|f| f.total_count())
                .unwrap_or(0);
            edges.push((
                service.name().unwrap_or("client").to_owned(),
                name_of(edge.reference_id().unwrap()),
                stats.total_count().unwrap(),
                faults,
            ));
        }
    }
    edges.sort();
    assert_eq!(
        edges,
        [
            ("client".into(), "order".into(), 4, 0),
            ("order".into(), "inventory".into(), 4, 0),
            ("order".into(), "payment".into(), 4, 1),
        ]
    );
    let payment = graph
        .services()
        .iter()
        .find(|s| s.name() == Some("payment"))
        .unwrap();
    assert_eq!(payment.r#type(), Some("AWS::Lambda::Function"));
    assert_eq!(
        payment
            .summary_statistics()
            .unwrap()
            .fault_statistics()
            .unwrap()
            .total_count(),
        Some(1)
    );

    // PutTraceSegments: one good, one refused.
    let good = format!(
        r#"{{"trace_id":"{}","id":"abcdefabcdefabcd","name":"cli","start_time":{},"end_time":{}}}"#,
        fresh_root(),
        now(),
        now()
    );
    let put = xray
        .put_trace_segments()
        .trace_segment_documents(good)
        .trace_segment_documents("{\"id\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(put.unprocessed_trace_segments().len(), 1);
    assert_eq!(store.stats().accepted, 13);
}

/// A segment document of `trace_id` started at `start`, annotated with `run_id`.
fn run_segment(trace_id: &str, start: f64, run_id: &str) -> String {
    serde_json::json!({
        "trace_id": trace_id, "id": "abcdefabcdefabcd", "name": "loadgen",
        "start_time": start, "end_time": start + 0.01,
        "annotations": {"run_id": run_id},
    })
    .to_string()
}

#[tokio::test]
async fn summaries_page_through_more_traces_than_a_page_each_once() {
    let store = Arc::new(TraceStore::new(10_000));
    let api = XrayApi::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&store))
        .await
        .unwrap();
    let xray = client(&api).await;
    let t0 = now();
    // One trace before the window, then 250 in it: even ones belong to run "r1".
    let early = fresh_root().to_string();
    let mut documents = vec![run_segment(&early, t0 - 600.0, "r1")];
    let mut expected = Vec::new();
    for i in 0..250 {
        let root = fresh_root().to_string();
        let run = if i % 2 == 0 { "r1" } else { "r2" };
        documents.push(run_segment(&root, t0 + f64::from(i) * 0.001, run));
        if run == "r1" {
            expected.push(root);
        }
    }
    let put = xray
        .put_trace_segments()
        .set_trace_segment_documents(Some(documents))
        .send()
        .await
        .unwrap();
    assert!(put.unprocessed_trace_segments().is_empty());

    let (start, end) = (
        DateTime::from_secs_f64(t0 - 60.0),
        DateTime::from_secs_f64(t0 + 60.0),
    );
    let mut found = Vec::new();
    let (mut pages, mut processed) = (Vec::new(), 0);
    let mut token = None;
    loop {
        let page = xray
            .get_trace_summaries()
            .start_time(start)
            .end_time(end)
            .filter_expression("annotation.run_id = \"r1\"")
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages.push(page.trace_summaries().len());
        processed += page.traces_processed_count().unwrap();
        found.extend(
            page.trace_summaries()
                .iter()
                .map(|s| s.id().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if pages.len() == 1 {
            // A trace arriving while the listing is paged joins its end.
            let late = fresh_root().to_string();
            xray.put_trace_segments()
                .trace_segment_documents(run_segment(&late, t0 + 1.0, "r1"))
                .send()
                .await
                .unwrap();
            expected.push(late);
        }
        if token.is_none() {
            break;
        }
    }
    // Pages of 100 summaries; the late trace ends the second.
    assert_eq!(pages, [100, 26]);
    assert_eq!(processed, 251);
    assert_eq!(found, expected, "each trace once, in arrival order");
}

/// Lambda's own trace of an invocation: the service segment (`AWS::Lambda`) and the function's
/// segment (`AWS::Lambda::Function`) under it, in the shape of the X-Ray developer guide's
/// "AWS Lambda and AWS X-Ray" documents. The graph draws client → service → function, as the
/// console does.
#[tokio::test]
async fn the_graph_draws_lambdas_service_node_in_front_of_its_function() {
    let store = Arc::new(TraceStore::new(100));
    let api = XrayApi::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&store))
        .await
        .unwrap();
    let xray = client(&api).await;
    let t = now();
    let trace_id = fresh_root().to_string();
    let service = serde_json::json!({
        "trace_id": trace_id, "id": "1a2b3c4d5e6f7081", "name": "order", "origin": "AWS::Lambda",
        "start_time": t - 0.050, "end_time": t,
        "http": {"response": {"status": 200}}, "aws": {"request_id": "r-1"},
    });
    let function = serde_json::json!({
        "trace_id": trace_id, "id": "2a2b3c4d5e6f7082", "parent_id": "1a2b3c4d5e6f7081",
        "name": "order", "origin": "AWS::Lambda::Function",
        "start_time": t - 0.040, "end_time": t - 0.010, "aws": {"request_id": "r-1"},
    });
    // The function's code tracing its own segment under Lambda's (the transform does: Firehose
    // passes no trace header, so its parent is Lambda's function segment): the same node.
    let code = serde_json::json!({
        "trace_id": trace_id, "id": "3a2b3c4d5e6f7083", "parent_id": "2a2b3c4d5e6f7082",
        "name": "order", "origin": "AWS::Lambda::Function",
        "start_time": t - 0.035, "end_time": t - 0.015,
    });
    let put = xray
        .put_trace_segments()
        .trace_segment_documents(service.to_string())
        .trace_segment_documents(function.to_string())
        .trace_segment_documents(code.to_string())
        .send()
        .await
        .unwrap();
    assert!(put.unprocessed_trace_segments().is_empty());
    let graph = xray
        .get_service_graph()
        .start_time(DateTime::from_secs_f64(t - 60.0))
        .end_time(DateTime::from_secs_f64(t + 60.0))
        .send()
        .await
        .unwrap();
    let node = |reference: Option<i32>| {
        let service = graph
            .services()
            .iter()
            .find(|s| s.reference_id() == reference)
            .unwrap();
        format!(
            "{} ({})",
            service.name().unwrap_or("client"),
            service.r#type().unwrap_or("")
        )
    };
    // One invocation of the function, counted once.
    let function_node = graph
        .services()
        .iter()
        .find(|s| s.r#type() == Some("AWS::Lambda::Function"))
        .unwrap();
    assert_eq!(
        function_node.summary_statistics().unwrap().total_count(),
        Some(1)
    );
    let mut edges: Vec<(String, String, i64, f64)> = Vec::new();
    for service in graph.services() {
        for edge in service.edges() {
            let stats = edge.summary_statistics().unwrap();
            edges.push((
                node(service.reference_id()),
                node(edge.reference_id()),
                stats.total_count().unwrap(),
                (stats.total_response_time().unwrap() * 1000.0).round(),
            ));
        }
    }
    edges.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        edges,
        [
            (
                "client (client)".into(),
                "order (AWS::Lambda)".into(),
                1,
                50.0
            ),
            // Timed by the function's segment: 30 ms.
            (
                "order (AWS::Lambda)".into(),
                "order (AWS::Lambda::Function)".into(),
                1,
                30.0
            ),
            // and no edge from the function to itself.
        ]
    );
}
