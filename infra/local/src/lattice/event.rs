//! The Lambda side of a LAMBDA target group: the V2 event Lattice invokes the function with, and
//! the response document it expects back.
//!
//! Event shape (VPC Lattice guide, "Lambda functions as targets", "Receive events from the VPC
//! Lattice service"; `aws_lambda_events`' Lattice V2 fixtures): `version: "2.0"`, `path` (no query),
//! `method`, `headers` with every value an array, `queryStringParameters` with array values,
//! `body` (null when empty), `isBase64Encoded`, and `requestContext` with the network, service
//! and target-group ARNs, `identity` (`sourceVpcArn`, `type`, `principal`, …; absent fields
//! omitted), `region`, and `timeEpoch`, a string of epoch microseconds. Lattice adds
//! `x-forwarded-for`, `x-forwarded-port` and `x-forwarded-proto`, and never adds a trace header.
//!
//! The base64 rule: the pages retrieved here show the flag but not when it is set. We use the
//! rule Elastic Load Balancing applies to Lambda targets as we know it (its guide's "Receive
//! events from the load balancer", which the search tools here could not retrieve to quote), and
//! which the `aws_lambda_events` Lattice fixtures agree with (gzip → base64, JSON → text): the
//! body is base64-encoded when a `content-encoding` header is present or the content type is not
//! `text/*`, `application/json`, `application/javascript` or `application/xml`. A body that is
//! not UTF-8 is always encoded. To confirm on AWS (README).

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

/// `requestContext.identity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The caller's VPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_vpc_arn: Option<String>,
    /// `AWS_IAM` for a signed caller.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    /// The caller's IAM principal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The principal's organization.
    #[serde(rename = "principalOrgID", skip_serializing_if = "Option::is_none")]
    pub principal_org_id: Option<String>,
    /// Role session name, for assumed roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

/// `requestContext`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    /// The service network.
    pub service_network_arn: String,
    /// The service.
    pub service_arn: String,
    /// The target group.
    pub target_group_arn: String,
    /// The caller.
    pub identity: Identity,
    /// The region.
    pub region: String,
    /// Arrival, epoch microseconds, as a string.
    pub time_epoch: String,
}

/// A Lattice V2 event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatticeEventV2 {
    /// Always `"2.0"`.
    pub version: String,
    /// The request path, without the query.
    pub path: String,
    /// The HTTP method.
    pub method: String,
    /// Header name → all its values, in arrival order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Query parameter → all its values.
    pub query_string_parameters: BTreeMap<String, Vec<String>>,
    /// The body, or null.
    pub body: Option<String>,
    /// Whether `body` is base64.
    pub is_base64_encoded: bool,
    /// Where and from whom.
    pub request_context: RequestContext,
}

/// What the proxy knows of the incoming request.
#[derive(Debug)]
pub struct IncomingRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// Path and query as received.
    pub path_and_query: &'a str,
    /// Headers as received.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
    /// The caller's address.
    pub peer: std::net::SocketAddr,
    /// The listener's port.
    pub listener_port: u16,
}

/// Whether Lattice sends this body base64-encoded (see the module docs for the rule's source).
pub fn needs_base64(headers: &HeaderMap, body: &[u8]) -> bool {
    if headers.contains_key(http::header::CONTENT_ENCODING) {
        return true;
    }
    if std::str::from_utf8(body).is_err() {
        return true;
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    !(content_type.starts_with("text/")
        || matches!(
            content_type.as_str(),
            "application/json" | "application/javascript" | "application/xml"
        ))
}

impl LatticeEventV2 {
    /// The event for `request`, with Lattice's `context` (ARNs, caller, arrival time).
    pub fn build(request: &IncomingRequest<'_>, context: RequestContext) -> Self {
        let (path, query) = match request.path_and_query.split_once('?') {
            Some((path, query)) => (path, query),
            None => (request.path_and_query, ""),
        };
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in request.headers {
            headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        // Lattice's own headers replace anything the caller sent under these names.
        headers.insert(
            "x-forwarded-for".into(),
            vec![request.peer.ip().to_string()],
        );
        headers.insert(
            "x-forwarded-port".into(),
            vec![request.listener_port.to_string()],
        );
        headers.insert("x-forwarded-proto".into(), vec!["http".into()]);
        // The x-amzn-lattice-* headers Lattice adds about the request's origin and route
        // (VPC Lattice guide, "Services": headers added to requests forwarded to targets).
        if let Some(vpc) = &context.identity.source_vpc_arn {
            headers.insert(
                "x-amzn-lattice-network".into(),
                vec![format!("SourceVpcArn={vpc}")],
            );
        }
        headers.insert(
            "x-amzn-lattice-target".into(),
            vec![format!(
                "ServiceArn={}; ServiceNetworkArn={}; TargetGroupArn={}",
                context.service_arn, context.service_network_arn, context.target_group_arn
            )],
        );
        if let Some(principal) = &context.identity.principal {
            headers.insert(
                "x-amzn-lattice-identity".into(),
                vec![format!("Principal={principal}")],
            );
        } else {
            headers.remove("x-amzn-lattice-identity");
        }
        let mut query_string_parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            query_string_parameters
                .entry(key.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        let (body, is_base64_encoded) = if request.body.is_empty() {
            (None, false)
        } else if needs_base64(request.headers, request.body) {
            (
                Some(base64::engine::general_purpose::STANDARD.encode(request.body)),
                true,
            )
        } else {
            (
                Some(String::from_utf8_lossy(request.body).into_owned()),
                false,
            )
        };
        Self {
            version: "2.0".into(),
            path: path.to_owned(),
            method: request.method.to_owned(),
            headers,
            query_string_parameters,
            body,
            is_base64_encoded,
            request_context: context,
        }
    }
}

/// The function's answer, as Lattice reads it (VPC Lattice guide, "Respond to the VPC Lattice
/// service": `statusCode`, `headers` (string values), `body`, `isBase64Encoded`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionResponse {
    status_code: u16,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

/// The HTTP response Lattice sends back for a function's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// Why a function's answer could not be turned into a response (Lattice answers 502).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Lambda response: {0}")]
pub struct InvalidResponse(pub String);

/// Maps a function's response payload to the HTTP response.
pub fn map_response(payload: &[u8]) -> Result<MappedResponse, InvalidResponse> {
    let response: FunctionResponse =
        serde_json::from_slice(payload).map_err(|e| InvalidResponse(e.to_string()))?;
    let status = StatusCode::from_u16(response.status_code)
        .map_err(|_| InvalidResponse(format!("statusCode {}", response.status_code)))?;
    let mut headers = HeaderMap::new();
    for (name, value) in response.headers.unwrap_or_default() {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| InvalidResponse(format!("header name {name:?}")))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| InvalidResponse(format!("header {name} value")))?;
        headers.append(name, value);
    }
    let body = match response.body {
        None => Bytes::new(),
        Some(body) if response.is_base64_encoded => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| InvalidResponse(format!("body is not base64: {e}")))?,
        ),
        Some(body) => Bytes::from(body),
    };
    Ok(MappedResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_event_is_lattice_v2_exactly_and_lambda_http_reads_it() {
        let incoming_headers = headers(&[
            ("content-type", "application/json"),
            ("host", "127.0.0.1:8080"),
            (
                "x-amzn-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            ),
            ("multi", "x"),
            ("multi", "y"),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        let request = IncomingRequest {
            method: "POST",
            path_and_query: "/orders?a=1&a=two%20words&b=",
            headers: &incoming_headers,
            body: br#"{"k":1}"#,
            peer: "127.0.0.1:50000".parse().unwrap(),
            listener_port: 8080,
        };
        let event = LatticeEventV2::build(
            &request,
            RequestContext {
                service_network_arn:
                    "arn:aws:vpc-lattice:us-east-1:123456789012:servicenetwork/sn-0aaaaaaaaaaaaaaaa"
                        .into(),
                service_arn:
                    "arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-0bbbbbbbbbbbbbbbb"
                        .into(),
                target_group_arn:
                    "arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-0cccccccccccccccc"
                        .into(),
                identity: Identity {
                    source_vpc_arn: Some(
                        "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0ddddddddddddddd".into(),
                    ),
                    identity_type: Some("AWS_IAM".into()),
                    principal: Some("arn:aws:iam::123456789012:role/loadgen".into()),
                    principal_org_id: None,
                    session_name: None,
                },
                region: "us-east-1".into(),
                time_epoch: "1795339805123456".into(),
            },
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": "2.0",
                "path": "/orders",
                "method": "POST",
                "headers": {
                    "content-type": ["application/json"],
                    "host": ["127.0.0.1:8080"],
                    "multi": ["x", "y"],
                    // The caller's trace header passes through untouched; Lattice adds none.
                    "x-amzn-trace-id": ["Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"],
                    // Lattice's own values replace what the caller claimed.
                    "x-forwarded-for": ["127.0.0.1"],
                    "x-forwarded-port": ["8080"],
                    "x-forwarded-proto": ["http"],
                    "x-amzn-lattice-identity": ["Principal=arn:aws:iam::123456789012:role/loadgen"],
                    "x-amzn-lattice-network": ["SourceVpcArn=arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0ddddddddddddddd"],
                    "x-amzn-lattice-target": ["ServiceArn=arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-0bbbbbbbbbbbbbbbb; ServiceNetworkArn=arn:aws:vpc-lattice:us-east-1:123456789012:servicenetwork/sn-0aaaaaaaaaaaaaaaa; TargetGroupArn=arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-0cccccccccccccccc"],
                },
                "queryStringParameters": {"a": ["1", "two words"], "b": [""]},
                "body": "{\"k\":1}",
                "isBase64Encoded": false,
                "requestContext": {
                    "serviceNetworkArn": "arn:aws:vpc-lattice:us-east-1:123456789012:servicenetwork/sn-0aaaaaaaaaaaaaaaa",
                    "serviceArn": "arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-0bbbbbbbbbbbbbbbb",
                    "targetGroupArn": "arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-0cccccccccccccccc",
                    "identity": {
                        "sourceVpcArn": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0ddddddddddddddd",
                        "type": "AWS_IAM",
                        "principal": "arn:aws:iam::123456789012:role/loadgen"
                    },
                    "region": "us-east-1",
                    "timeEpoch": "1795339805123456"
                }
            })
        );
        // The consumer side: aws_lambda_events (what lambda_http decodes with) reads it.
        use lattice_xray::lambda_http::aws_lambda_events::vpc_lattice::VpcLatticeRequestV2;
        let decoded: VpcLatticeRequestV2 = serde_json::from_value(json).unwrap();
        assert_eq!(decoded.path.as_deref(), Some("/orders"));
        assert_eq!(decoded.request_context.time_epoch, "1795339805123456");
        assert_eq!(decoded.headers.get_all("multi").iter().count(), 2);
    }

    #[test]
    fn the_base64_rule() {
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert!(!needs_base64(&json, b"{}"));
        assert!(!needs_base64(
            &headers(&[("content-type", "text/plain")]),
            b"x"
        ));
        assert!(needs_base64(
            &headers(&[("content-type", "application/octet-stream")]),
            b"x"
        ));
        assert!(
            needs_base64(&headers(&[]), b"x"),
            "no content type is binary"
        );
        assert!(needs_base64(
            &headers(&[
                ("content-type", "application/json"),
                ("content-encoding", "gzip")
            ]),
            b"x"
        ));
        assert!(needs_base64(&json, &[0xff, 0xfe]), "not UTF-8");
    }

    #[test]
    fn responses_are_mapped_and_bad_ones_refused() {
        let ok = map_response(
            br#"{"statusCode":201,"headers":{"content-type":"application/json"},"body":"{\"a\":1}","isBase64Encoded":false}"#,
        )
        .unwrap();
        assert_eq!(ok.status, StatusCode::CREATED);
        assert_eq!(ok.headers["content-type"], "application/json");
        assert_eq!(ok.body, Bytes::from_static(b"{\"a\":1}"));
        let binary =
            map_response(br#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#).unwrap();
        assert_eq!(binary.body, Bytes::from_static(b"hi"));
        for bad in [
            &b"not json"[..],
            br#"{"body":"x"}"#,
            br#"{"statusCode":1000}"#,
            br#"{"statusCode":200,"body":"***","isBase64Encoded":true}"#,
            br#"{"statusCode":200,"headers":{"bad header":"x"}}"#,
        ] {
            assert!(
                map_response(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
