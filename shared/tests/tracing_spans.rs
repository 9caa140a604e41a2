//! `tracing` spans opened inside a handler become X-Ray subsegments of the invocation's segment,
//! through the `tracing-opentelemetry` layer `Telemetry::install_subscriber` installs.
//! (Own test binary: it installs the process-global subscriber.)

use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::testing::{flatten_segments, fresh_root, lattice_request, with_trace_header};
use lattice_xray::{handle_traced, json_response, Endpoint, MemorySink, Telemetry};
use tracing::Instrument;

const POST_JSON: &str = include_str!("fixtures/lattice-v2-post-json.json");

struct Instrumented;

impl Endpoint for Instrumented {
    async fn handle(&self, _request: Request) -> Response<Body> {
        let validated = tracing::info_span!("validate_order").in_scope(|| 42);
        async { tokio::task::yield_now().await }
            .instrument(tracing::info_span!("load_catalog"))
            .await;
        json_response(http::StatusCode::OK, &validated)
    }
}

#[tokio::test]
async fn tracing_spans_become_nested_subsegments() {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("inventory", sink.clone(), 1.0);
    telemetry.install_subscriber();
    let root = fresh_root();
    let request = with_trace_header(
        lattice_request(POST_JSON),
        &format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"),
    );
    let response = handle_traced(&telemetry, &Instrumented, request).await;
    assert_eq!(response.status(), 200);

    let datagrams = sink.documents();
    assert_eq!(datagrams.len(), 1, "{datagrams:#?}");
    let docs = flatten_segments(&datagrams);
    let segment = &docs[0];
    assert_eq!(segment["name"], "inventory");
    let mut names: Vec<&str> = docs[1..]
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["load_catalog", "validate_order"]);
    for sub in &docs[1..] {
        assert_eq!(sub["parent_id"], segment["id"]);
        assert_eq!(sub["trace_id"], root.to_string());
        assert!(
            sub.get("namespace").is_none(),
            "internal work is not a remote call: {sub}"
        );
    }
}
