//! Serving an [`Endpoint`] as a Lambda function behind a Lattice LAMBDA target group.
//!
//! `lambda_http` decodes Lattice's V2 event into an `http::Request`; this module wraps each call
//! in an [`Invocation`] (context policy, server segment, response trace header) and encodes the
//! answer as Lattice's response, so a service's handler only ever sees a request and returns a
//! response.
//!
//! Why not `lambda_http::run`: its adapter overwrites the request's `x-amzn-trace-id` with the
//! Lambda context's trace id whenever Lambda tracing is active (`update_xray_trace_id_header` in
//! lambda_http 1.3). Behind Lattice that header is the *caller's*, so the overwrite would cut every
//! trace at every hop. [`run`] drives `lambda_runtime` directly with lambda_http's own event
//! decoding and leaves the header alone; Lambda's trace id still reaches the policy through
//! `Context.xray_trace_id`.
//!
//! Also not `lambda_http`'s own event-to-request conversion alone: it panics on a body marked
//! base64 that does not decode (`Body::from_maybe_encoded` in aws_lambda_events 1.2). [`run`]
//! checks that first and answers such a request 400 `invalid_base64`, traced like any bad input.

use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use http::{HeaderValue, StatusCode};
use lambda_http::aws_lambda_events::vpc_lattice::VpcLatticeResponse;
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Body, LambdaEvent, Request, RequestExt, Response};
use opentelemetry::context::FutureExt as _;

use crate::api::{body_bytes, ApiError};
use crate::header::TRACE_HEADER;
use crate::invocation::{ErrorCause, Invocation, RequestInfo};
use crate::telemetry::Telemetry;

/// A service's request handler: pure logic over its ports, no telemetry wiring.
pub trait Endpoint: Send + Sync + 'static {
    /// Answers one request. Errors are responses (see [`crate::ApiError`]), never panics.
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// Runs `endpoint` for one request inside its invocation's trace context and returns the
/// response with `x-amzn-trace-id` set. Every segment has been exported when this returns.
pub async fn handle_traced<E: Endpoint>(
    telemetry: &Telemetry,
    endpoint: &E,
    request: Request,
) -> Response<Body> {
    let lambda_trace_id = request
        .lambda_context_ref()
        .and_then(|cx| cx.xray_trace_id.clone());
    let invocation = Invocation::start(
        telemetry,
        RequestInfo {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            lambda_trace_id: lambda_trace_id.as_deref(),
        },
    );
    let mut response = endpoint
        .handle(request)
        .with_context(invocation.context().clone())
        .await;
    let cause = response.extensions_mut().remove::<ErrorCause>();
    let length = body_bytes(response.body()).len() as u64;
    if let Ok(value) = HeaderValue::from_str(&invocation.response_header()) {
        response.headers_mut().insert(TRACE_HEADER, value);
    }
    invocation.finish(response.status().as_u16(), Some(length), cause.as_ref());
    response
}

/// Lattice's answer format for a handler's response (`lambda_http` does the same for Lattice
/// events, but keeps that conversion private).
pub fn lattice_response(response: Response<Body>) -> VpcLatticeResponse {
    let (parts, body) = response.into_parts();
    let (is_base64_encoded, body) = match body {
        Body::Text(text) => (false, Some(Body::Text(text))),
        Body::Binary(bytes) => (true, Some(Body::Binary(bytes))),
        _ => (false, None),
    };
    let mut answer = VpcLatticeResponse::default();
    answer.is_base64_encoded = is_base64_encoded;
    answer.status_code = parts.status.as_u16();
    answer.headers = parts.headers;
    answer.body = body;
    answer
}

/// Lattice's event as a request, or the request (body dropped) with the refusal to answer it when
/// its body is marked base64 but does not decode.
pub fn into_request(payload: LambdaRequest) -> (Request, Option<ApiError>) {
    match payload {
        LambdaRequest::VpcLatticeV2(mut event) => {
            let undecodable = event.is_base64_encoded
                && event.body.as_deref().is_some_and(|body| {
                    base64::engine::general_purpose::STANDARD
                        .decode(body)
                        .is_err()
                });
            if !undecodable {
                return (LambdaRequest::VpcLatticeV2(event).into(), None);
            }
            event.body = None;
            event.is_base64_encoded = false;
            let refusal = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_base64",
                "the body is marked base64-encoded but is not valid base64",
            );
            (LambdaRequest::VpcLatticeV2(event).into(), Some(refusal))
        }
        #[allow(unreachable_patterns)]
        other => (other.into(), None),
    }
}

/// Answers every request with one error (a request refused before its endpoint sees it).
struct Refuse(ApiError);

impl Endpoint for Refuse {
    fn handle(&self, _request: Request) -> impl Future<Output = Response<Body>> + Send {
        let response = self.0.clone().into_response();
        async move { response }
    }
}

/// Serves `endpoint` on the Lambda Runtime API until the runtime stops.
pub async fn run<E: Endpoint>(telemetry: Telemetry, endpoint: E) -> Result<(), lambda_http::Error> {
    let endpoint = Arc::new(endpoint);
    let handler_telemetry = telemetry.clone();
    let result =
        lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<LambdaRequest>| {
            let telemetry = handler_telemetry.clone();
            let endpoint = Arc::clone(&endpoint);
            async move {
                let LambdaEvent { payload, context } = event;
                let (request, refusal) = into_request(payload);
                let request = request.with_lambda_context(context);
                let response = match refusal {
                    None => handle_traced(&telemetry, endpoint.as_ref(), request).await,
                    Some(refusal) => handle_traced(&telemetry, &Refuse(refusal), request).await,
                };
                Ok::<_, std::convert::Infallible>(lattice_response(response))
            }
        }))
        .await;
    telemetry.flush();
    result
}
