//! Lambda's Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`), as
//! `aws-sdk-lambda` calls it with `endpoint_url`, over the local functions. Behaviour follows the
//! Lambda API reference ("Invoke"): a function error is still HTTP 200, flagged by
//! `X-Amz-Function-Error: Unhandled` with the error document as payload; a throttle is 429
//! `TooManyRequestsException`; an unknown function is 404 `ResourceNotFoundException`. Only
//! synchronous `RequestResponse` invocations are served; other types get a 400 saying so. The
//! local endpoint does not verify signatures (it stands in for the service, not for IAM).

use crate::http_server::serve;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::function::{Function, InvokeError};

const PREFIX: &str = "/2015-03-31/functions/";

/// A running Invoke API.
#[derive(Debug)]
pub struct InvokeApi {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for InvokeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(status: StatusCode, headers: &[(&str, String)], body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn error(status: StatusCode, kind: &str, body: serde_json::Value) -> Response<Full<Bytes>> {
    respond(
        status,
        &[
            ("x-amzn-errortype", kind.to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        Bytes::from(body.to_string()),
    )
}

fn function_error(error_type: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        StatusCode::OK,
        &[
            ("x-amz-function-error", "Unhandled".to_owned()),
            ("x-amz-executed-version", "$LATEST".to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        Bytes::from(json!({"errorType": error_type, "errorMessage": message}).to_string()),
    )
}

/// The function name in a path segment holding a name, a partial or a full ARN.
fn function_name(segment: &str) -> &str {
    match segment.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => segment.split(':').next().unwrap_or(segment),
    }
}

async fn handle(
    functions: &BTreeMap<String, Arc<Function>>,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Some(name) = path
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix("/invocations"))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            json!({"message": format!("no operation at {path}")}),
        );
    };
    let name = function_name(name).to_owned();
    let invocation_type = request
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let Some(function) = functions.get(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            json!({"Type": "User", "Message": format!("Function not found: {name}")}),
        );
    };
    if invocation_type != "RequestResponse" {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            json!({"Type": "User", "message": format!("the local Lambda serves RequestResponse invocations only, not {invocation_type}")}),
        );
    }
    let payload = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                json!({"Type": "User", "message": e.to_string()}),
            )
        }
    };
    match function.invoke(payload, None).await {
        Ok(output) => respond(
            StatusCode::OK,
            &[
                ("x-amz-executed-version", "$LATEST".to_owned()),
                ("x-amzn-requestid", output.request_id.clone()),
                ("content-type", "application/json".to_owned()),
            ],
            output.payload,
        ),
        Err(InvokeError::Throttled) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            json!({"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}),
        ),
        Err(InvokeError::Function { body, .. }) => respond(
            StatusCode::OK,
            &[
                ("x-amz-function-error", "Unhandled".to_owned()),
                ("x-amz-executed-version", "$LATEST".to_owned()),
                ("content-type", "application/json".to_owned()),
            ],
            body,
        ),
        Err(InvokeError::Timeout(message)) => function_error("Sandbox.Timedout", &message),
        Err(InvokeError::EnvironmentExited(why)) => {
            function_error("Runtime.ExitError", &format!("Runtime exited: {why}"))
        }
        Err(InvokeError::InitFailed(why)) => function_error("Runtime.InitError", &why),
    }
}

impl InvokeApi {
    /// Serves `functions` on `addr` (port 0 for any).
    pub async fn start(
        addr: SocketAddr,
        functions: BTreeMap<String, Arc<Function>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let functions = Arc::new(functions);
        let task = serve(listener, move |request, _| {
            let functions = Arc::clone(&functions);
            async move { handle(&functions, request).await }
        });
        Ok(Self { addr, task })
    }
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn function_names_from_names_and_arns() {
        assert_eq!(function_name("order"), "order");
        assert_eq!(function_name("order:live"), "order");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:order"),
            "order"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:order:$LATEST"),
            "order"
        );
        assert_eq!(function_name("123456789012:function:order"), "order");
    }
}
