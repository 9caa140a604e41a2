//! The Lattice V2 fixtures shipped by `aws_lambda_events`, decoded by lambda_http and served
//! through `handle_traced`: method, path, array-valued headers, base64 bodies, and the segment.

use lattice_xray::api::body_bytes;
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::testing::lattice_request;
use lattice_xray::{handle_traced, json_response, Endpoint, MemorySink, Telemetry};
use serde_json::{json, Value};

/// Echoes what the handler was given.
struct Echo;

impl Endpoint for Echo {
    async fn handle(&self, request: Request) -> Response<Body> {
        let multi: Vec<&str> = request
            .headers()
            .get_all("multi")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        json_response(
            http::StatusCode::OK,
            &json!({
                "method": request.method().as_str(),
                "path": request.uri().path(),
                "query": request.uri().query(),
                "multi_header": multi,
                "body_len": body_bytes(request.body()).len(),
                "binary": matches!(request.body(), Body::Binary(_)),
            }),
        )
    }
}

async fn serve(event: &str) -> (Value, Value) {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("echo", sink.clone(), 1.0);
    let response = handle_traced(&telemetry, &Echo, lattice_request(event)).await;
    let Body::Text(text) = response.body() else {
        panic!("json body")
    };
    (
        serde_json::from_str(text).unwrap(),
        sink.documents().pop().unwrap(),
    )
}

#[tokio::test]
async fn plain_v2_event_with_array_headers_and_query() {
    let (echo, segment) = serve(include_str!("fixtures/example-vpc-lattice-v2-request.json")).await;
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/health");
    assert_eq!(echo["multi_header"], json!(["x", "y"]));
    let query = echo["query"].as_str().unwrap();
    assert!(
        query.contains("state=prod") && query.contains("multi=a&multi=DEF&multi=g"),
        "{query}"
    );
    assert_eq!(segment["http"]["request"]["client_ip"], "10.0.2.100");
    assert_eq!(segment["http"]["request"]["user_agent"], "curl/7.68.0");
}

#[tokio::test]
async fn base64_event_body_is_decoded_to_bytes() {
    let (echo, segment) = serve(include_str!(
        "fixtures/example-vpc-lattice-v2-request-base64.json"
    ))
    .await;
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/files/upload");
    assert_eq!(echo["binary"], true);
    // "H4sIAAAA…" is 68 base64 characters: 51 bytes of gzip.
    assert_eq!(echo["body_len"], 51);
    assert_eq!(segment["http"]["request"]["client_ip"], "10.0.1.45");
}

#[tokio::test]
async fn roles_anywhere_event_is_served() {
    let (echo, segment) = serve(include_str!(
        "fixtures/example-vpc-lattice-v2-request-roles-anywhere.json"
    ))
    .await;
    assert_eq!(echo["path"], "/api/external/data-sync");
    assert_eq!(echo["body_len"], 129);
    assert_eq!(segment["http"]["response"]["status"], 200);
}

#[test]
fn a_body_marked_base64_that_does_not_decode_is_refused_not_a_panic() {
    let fixture = include_str!("fixtures/example-vpc-lattice-v2-request-base64.json");
    let good: lattice_xray::lambda_http::request::LambdaRequest =
        serde_json::from_str(fixture).unwrap();
    let (request, refusal) = lattice_xray::serve::into_request(good);
    assert_eq!(refusal, None);
    assert!(matches!(request.body(), Body::Binary(bytes) if !bytes.is_empty()));

    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["body"] = json!("%%% not base64 %%%");
    let bad = serde_json::from_value(event).unwrap();
    let (request, refusal) = lattice_xray::serve::into_request(bad);
    let refusal = refusal.expect("refused");
    assert_eq!(refusal.status, http::StatusCode::BAD_REQUEST);
    assert_eq!(refusal.code, "invalid_base64");
    assert_eq!(
        refusal.message,
        "the body is marked base64-encoded but is not valid base64"
    );
    assert_eq!(body_bytes(request.body()), b"");
    assert_eq!(request.uri().path(), "/api/files/upload");
}
