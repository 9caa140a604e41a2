//! Malformed requests, one table: what each gets back through the local Lattice (exact status and
//! body), and how the trace records it. Bad input reaching a function is answered by that function
//! with a 4xx and its segment marked `error`; requests Lattice refuses (signature, policy, size)
//! never reach a function and leave no segment. Garbage or oversized trace headers never fail a
//! request: the service starts a new trace instead.

mod support;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use lattice_xray::lattice_client::sign_for_lattice;
use lattice_xray::testing::fresh_root;
use local_stack::lattice::credentials::PrincipalKey;
use local_stack::stack::{function_role, LocalStack};
use local_stack::xray::store::Entity;
use serde_json::{json, Value};
use support::{identity, start};

const VALID: &str = r#"{"order_id":"ord-ok","customer_id":"c","items":[{"sku":"SKU-0001","quantity":1,"unit_price":1.0}]}"#;

/// Who signs a row's request.
#[derive(Clone, Copy, Debug)]
enum Signer {
    Loadgen,
    Unsigned,
    WrongSecret,
    Expired,
    PaymentRole,
}

/// The trace header a row sends.
#[derive(Clone, Copy, Debug)]
enum TraceHeader {
    /// A fresh root with a parent, sampled: the order segment must join it.
    Ours,
    Garbage,
    /// A valid root followed by 3 KB of extras (the limit is 2 KB).
    Oversized,
    /// Well-formed, but its Root is from 2016: X-Ray keeps 30 days and would drop it all.
    Stale,
}

/// What the body must be.
enum Body {
    Exact(String),
    Json(Value),
    Prefix(&'static str),
}

/// Where the row's trace ends up.
#[derive(Debug, PartialEq)]
enum Traced {
    /// Order's segment in our trace, marked error, with this status.
    Error,
    /// Order's segment in a new trace (the header was unusable), request succeeded.
    NewTrace,
    /// Nothing reached a function: no segment.
    Nothing,
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    signer: Signer,
    trace: TraceHeader,
    status: u16,
    expected: Body,
    traced: Traced,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, status: u16, expected: Body) -> Case {
    Case {
        name,
        body: body.into(),
        content_type: Some("application/json"),
        signer: Signer::Loadgen,
        trace: TraceHeader::Ours,
        status,
        expected,
        traced: Traced::Error,
    }
}

fn signed_request(url: &str, case: &Case, keys: &Keys, trace_header: &str) -> reqwest::Request {
    let uri: http::Uri = url.parse().unwrap();
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("host", uri.authority().unwrap().as_str());
    if let Some(content_type) = case.content_type {
        builder = builder.header("content-type", content_type);
    }
    let mut request = builder.body(Bytes::from(case.body.clone())).unwrap();
    let now = SystemTime::now();
    let (key, time) = match case.signer {
        Signer::Loadgen => (Some(&keys.loadgen), now),
        Signer::Unsigned => (None, now),
        Signer::WrongSecret => (Some(&keys.forged), now),
        Signer::Expired => (Some(&keys.loadgen), now - Duration::from_secs(600)),
        Signer::PaymentRole => (Some(&keys.payment_role), now),
    };
    if let Some(key) = key {
        sign_for_lattice(&mut request, &identity(key), "us-east-1", time).unwrap();
    }
    request
        .headers_mut()
        .insert("x-amzn-trace-id", trace_header.parse().unwrap());
    reqwest::Request::try_from(request).unwrap()
}

struct Keys {
    loadgen: PrincipalKey,
    forged: PrincipalKey,
    payment_role: PrincipalKey,
}

fn keys(stack: &LocalStack) -> Keys {
    let loadgen = stack.loadgen_key().unwrap().clone();
    let mut forged = loadgen.clone();
    forged.secret_access_key = "wrong-secret-wrong-secret-wrong-secret-00".into();
    let payment_role = stack
        .key_of(&stack.topology.role_arn(&function_role("payment")))
        .unwrap()
        .clone();
    Keys {
        loadgen,
        forged,
        payment_role,
    }
}

/// Order's own segment in `trace_id` (it records the request; Lambda's facade segments of the
/// same name record only the response) and every entity of the trace, once it has arrived.
async fn order_segment(stack: &LocalStack, trace_id: &str) -> (Entity, Vec<Entity>) {
    for _ in 0..100 {
        let entities = stack.store.entities(trace_id).unwrap_or_default();
        if let Some(order) = entities.iter().find(|e| {
            let records_request = e.fields.get("http").and_then(|h| h.get("request"));
            e.is_segment && e.fields["name"] == "order" && records_request.is_some()
        }) {
            return (order.clone(), entities);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no order segment in {trace_id}");
}

/// Waits (up to 5 s) for the entity `id` of `trace_id` to reach the store.
async fn entity(stack: &LocalStack, trace_id: &str, id: &str) -> Entity {
    for _ in 0..100 {
        let entities = stack.store.entities(trace_id).unwrap_or_default();
        if let Some(found) = entities.into_iter().find(|e| e.id == id) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("entity {id} never reached trace {trace_id}");
}

fn root_of(header: &str) -> &str {
    header
        .split(';')
        .find_map(|part| part.strip_prefix("Root="))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_request_gets_its_exact_answer_and_trace() {
    let stack = start("malformed", &[], |_| {}).await;
    let keys = keys(&stack);
    let url = format!("{}/orders", stack.service_url("order").unwrap());
    let order_arn = stack.state.services["order"].service_arn.clone();

    let mut cases = vec![
        case(
            "bad JSON",
            r#"{"order_id": "#,
            400,
            Body::Json(json!({"error": "invalid_json", "message": "body is not valid JSON (EOF while parsing a value)"})),
        ),
        case(
            "empty body",
            "",
            400,
            Body::Json(json!({"error": "invalid_json", "message": "body is empty; expected a JSON object"})),
        ),
        case(
            "wrong type",
            VALID.replace(r#""ord-ok""#, "5"),
            400,
            Body::Json(json!({"error": "validation_failed", "message": "invalid type: integer `5`, expected a string", "field": "order_id"})),
        ),
        case(
            "unknown field",
            VALID.replace(r#""customer_id""#, r#""coupon":"x","customer_id""#),
            400,
            Body::Json(json!({"error": "validation_failed", "message": "unknown field `coupon`, expected one of `order_id`, `customer_id`, `items`", "field": "coupon"})),
        ),
        Case {
            content_type: None,
            ..case(
                "missing content-type",
                VALID,
                415,
                Body::Json(json!({"error": "unsupported_media_type", "message": "content-type must be application/json"})),
            )
        },
        case(
            "body over the service's 64 KiB",
            vec![b' '; 1 << 20],
            413,
            Body::Json(json!({"error": "payload_too_large", "message": "body is larger than 65536 bytes"})),
        ),
        Case {
            traced: Traced::Nothing,
            ..case(
                "body over Lattice's 6 MB for Lambda",
                vec![b' '; 7 << 20],
                413,
                Body::Exact("Request body exceeds the 6 MB limit for Lambda targets".into()),
            )
        },
        Case {
            trace: TraceHeader::Garbage,
            traced: Traced::NewTrace,
            ..case("garbage trace header", VALID.replace("ord-ok", "ord-garbage"), 201, Body::Prefix(r#"{"order_id":"ord-garbage","status":"created""#))
        },
        Case {
            trace: TraceHeader::Stale,
            traced: Traced::NewTrace,
            ..case(
                "trace header with a Root X-Ray would refuse",
                VALID.replace("ord-ok", "ord-stale"),
                201,
                Body::Prefix(r#"{"order_id":"ord-stale","status":"created""#),
            )
        },
        Case {
            trace: TraceHeader::Oversized,
            traced: Traced::NewTrace,
            ..case("oversized trace header", VALID.replace("ord-ok", "ord-oversized"), 201, Body::Prefix(r#"{"order_id":"ord-oversized","status":"created""#))
        },
        Case {
            signer: Signer::Unsigned,
            traced: Traced::Nothing,
            ..case("unsigned", VALID, 403, Body::Exact(format!("AccessDeniedException: User: anonymous is not authorized to perform: vpc-lattice-svcs:Invoke on resource: {order_arn}/orders because no network-based policy allows the vpc-lattice-svcs:Invoke action")))
        },
        Case {
            signer: Signer::WrongSecret,
            traced: Traced::Nothing,
            ..case("wrong signature", VALID, 403, Body::Exact("InvalidSignatureException: The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into()))
        },
        Case {
            signer: Signer::Expired,
            traced: Traced::Nothing,
            ..case("expired signature", VALID, 403, Body::Prefix("InvalidSignatureException: Signature expired: "))
        },
        Case {
            signer: Signer::PaymentRole,
            traced: Traced::Nothing,
            ..case("wrong principal", VALID, 403, Body::Exact(format!("AccessDeniedException: User: {} is not authorized to perform: vpc-lattice-svcs:Invoke on resource: {order_arn}/orders because no service-based policy allows the vpc-lattice-svcs:Invoke action", keys.payment_role.principal)))
        },
    ];

    let client = reqwest::Client::new();
    for case in cases.drain(..) {
        let root = fresh_root().to_string();
        let header = match case.trace {
            TraceHeader::Ours => format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"),
            TraceHeader::Garbage => "garbage;;==Root".to_owned(),
            TraceHeader::Stale => {
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                    .to_owned()
            }
            TraceHeader::Oversized => format!(
                "Root={root};Parent=53995c3f42cd8ad8;Sampled=1;Extra={}",
                "a".repeat(3000)
            ),
        };
        let response = client
            .execute(signed_request(&url, &case, &keys, &header))
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answered_trace = response
            .headers()
            .get("x-amzn-trace-id")
            .map(|h| h.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        assert_eq!(status, case.status, "{}: {text}", case.name);
        match &case.expected {
            Body::Exact(body) => assert_eq!(&text, body, "{}", case.name),
            Body::Json(body) => assert_eq!(
                &serde_json::from_str::<Value>(&text).unwrap(),
                body,
                "{}",
                case.name
            ),
            Body::Prefix(prefix) => assert!(text.starts_with(prefix), "{}: {text}", case.name),
        }
        match case.traced {
            Traced::Error => {
                assert_eq!(answered_trace.as_deref().map(root_of), Some(root.as_str()));
                let (order, _) = order_segment(&stack, &root).await;
                assert_eq!(
                    order.parent_id.as_deref(),
                    Some("53995c3f42cd8ad8"),
                    "{}",
                    case.name
                );
                assert_eq!(order.fields["error"], true, "{}", case.name);
                assert_eq!(order.fields.get("fault"), None, "{}", case.name);
                assert_eq!(
                    order.fields["http"]["response"]["status"], case.status,
                    "{}",
                    case.name
                );
            }
            Traced::NewTrace => {
                let answered = answered_trace.expect("a trace header in the answer");
                let new_root = root_of(&answered);
                assert_ne!(new_root, root, "{}", case.name);
                // Policy rule 3: no usable header, so order continues Lambda's own trace, under
                // Lambda's function segment.
                let (order, _) = order_segment(&stack, new_root).await;
                assert_eq!(order.fields.get("error"), None, "{}", case.name);
                let parent = order.parent_id.as_deref().expect("a parent");
                // Lambda's function segment is sent when the invocation ends, after order's.
                let lambda_function = entity(&stack, new_root, parent).await;
                assert_eq!(lambda_function.fields["origin"], "AWS::Lambda::Function");
                assert!(stack.store.entities(&root).is_none(), "{}", case.name);
            }
            Traced::Nothing => {
                assert_eq!(answered_trace, None, "{}: Lattice adds no trace", case.name);
                // The next rows' segments arrive after this one's would have.
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert!(stack.store.entities(&root).is_none(), "{}", case.name);
            }
        }
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_base64_body_invoked_directly_is_a_400_not_a_crash() {
    let stack = start("bad-base64", &[], |_| {}).await;
    let mut event: Value = serde_json::from_str(include_str!(
        "../../../services/order/tests/fixtures/lattice-v2-post-order.json"
    ))
    .unwrap();
    event["isBase64Encoded"] = json!(true);
    event["body"] = json!("%%% not base64 %%%");
    let response = reqwest::Client::new()
        .post(format!(
            "{}/2015-03-31/functions/order/invocations",
            stack.lambda_endpoint()
        ))
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let function_error = response
        .headers()
        .get("x-amz-function-error")
        .map(|h| h.to_str().unwrap().to_owned());
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!((status, function_error), (200, None), "{answer}");
    assert_eq!(answer["statusCode"], 400);
    assert_eq!(
        serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap(),
        json!({"error": "invalid_base64", "message": "the body is marked base64-encoded but is not valid base64"})
    );
    let header = answer["headers"]["x-amzn-trace-id"].as_str().unwrap();
    let (order, _) = order_segment(&stack, root_of(header)).await;
    assert_eq!(order.fields["error"], true);
    assert_eq!(order.fields["http"]["response"]["status"], 400);
    stack.shutdown().await;
}
