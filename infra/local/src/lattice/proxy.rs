//! The data plane: one loopback HTTP listener per Lattice service. Each request is authenticated
//! (SigV4), authorized (network ∧ service ∧ identity policy), turned into a V2 event, handed to
//! the target group's function, and its answer mapped back; then one access-log line is written
//! and the metrics counted, for denied and failed requests too.
//!
//! Status mapping when the function does not answer with a valid response. Lattice's guide does
//! not tabulate it. A function error, a crashed environment or a malformed response → 502, as
//! Elastic Load Balancing does for Lambda targets (its closest documented analogue); the function
//! timing out → 504 and Lambda throttling the invocation → 503 follow HTTP gateway semantics.
//! All three are to be confirmed on AWS (README, "What only AWS can confirm"). A body over
//! Lattice's 6 MB Lambda limit (VPC Lattice guide, "Lambda functions as targets", Limitations)
//! → 413.

use crate::http_server::serve;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::access_log::{or_absent, start_time, AccessLogEntry, AccessLogWriter, ABSENT};
use super::event::{map_response, Identity, IncomingRequest, LatticeEventV2, RequestContext};
use super::metrics::{Dimension, MetricsRecorder, RequestSample};
use super::network::{NetworkTopology, ServiceTopology};
use super::policy::{authorize, Denial, Policy, PolicyLayer, INVOKE};
use crate::lambda::function::{Function, InvokeError};
use sigv4_verify::{Caller, Verifier};

/// Lattice's limit on a request body sent to a Lambda target.
pub const MAX_LAMBDA_BODY: usize = 6 * 1024 * 1024;

/// The auth policies of the network.
#[derive(Clone, Debug)]
pub struct AuthPolicies {
    /// The service network's auth policy.
    pub network: Policy,
    /// Each service's auth policy, by service name.
    pub services: HashMap<String, Policy>,
    /// Each principal's identity policy, by principal ARN.
    pub identities: HashMap<String, Policy>,
}

/// Time Lattice itself adds to requests that reached their target (everything but the invoke).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HopOverhead {
    /// Requests measured.
    pub requests: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Worst, µs.
    pub max_us: u64,
}

/// Everything a listener needs.
pub struct LatticeNetwork {
    overhead_us: std::sync::Mutex<hdrhistogram::Histogram<u64>>,
    /// Ids and ARNs.
    pub topology: NetworkTopology,
    verifier: Verifier,
    policies: AuthPolicies,
    functions: HashMap<String, Arc<Function>>,
    access_log: Arc<AccessLogWriter>,
    metrics: Arc<MetricsRecorder>,
}

impl std::fmt::Debug for LatticeNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatticeNetwork")
            .field("network", &self.topology.service_network_arn)
            .finish_non_exhaustive()
    }
}

/// A running listener.
#[derive(Debug)]
pub struct ServiceListener {
    /// The service.
    pub service: String,
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ServiceListener {
    /// `http://<addr>`: the service URL callers use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServiceListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request as it arrived: what processing, the access log and the metrics all read.
struct Arrival<'a> {
    service: &'a ServiceTopology,
    parts: http::request::Parts,
    path_and_query: String,
    body: Bytes,
    peer: SocketAddr,
    port: u16,
    at: SystemTime,
}

/// What one request became, for the log and metrics.
struct Outcome {
    status: StatusCode,
    body: Bytes,
    headers: HeaderMap,
    caller: Option<String>,
    auth_denied: Option<String>,
    failure: Option<&'static str>,
    reached_target: bool,
    to_target: Duration,
    from_target: Duration,
    timed_out: bool,
}

impl Outcome {
    fn refused(status: StatusCode, body: String, failure: &'static str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        Self {
            status,
            body: Bytes::from(body),
            headers,
            caller: None,
            auth_denied: None,
            failure: Some(failure),
            reached_target: false,
            to_target: Duration::ZERO,
            from_target: Duration::ZERO,
            timed_out: false,
        }
    }
}

impl LatticeNetwork {
    /// A network over `functions` (by service name) with these policies and keys.
    pub fn new(
        topology: NetworkTopology,
        verifier: Verifier,
        policies: AuthPolicies,
        functions: HashMap<String, Arc<Function>>,
        access_log: Arc<AccessLogWriter>,
        metrics: Arc<MetricsRecorder>,
    ) -> Self {
        Self {
            overhead_us: std::sync::Mutex::new(
                hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
                    .expect("static histogram bounds are valid"),
            ),
            topology,
            verifier,
            policies,
            functions,
            access_log,
            metrics,
        }
    }

    /// What the Lattice hop (read, verify, authorize, build the event, map, log) added so far.
    pub fn hop_overhead(&self) -> HopOverhead {
        let histogram = self.overhead_us.lock().unwrap_or_else(|p| p.into_inner());
        HopOverhead {
            requests: histogram.len(),
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        }
    }

    /// Serves `service` on `listener` (bound beforehand, so the functions can be told every
    /// service's URL before any request arrives).
    pub fn serve(
        self: &Arc<Self>,
        service: &str,
        listener: TcpListener,
    ) -> std::io::Result<ServiceListener> {
        let topology = self
            .topology
            .service(service)
            .cloned()
            .ok_or_else(|| std::io::Error::other(format!("no service {service}")))?;
        let addr = listener.local_addr()?;
        let network = Arc::clone(self);
        let topology = Arc::new(topology);
        let port = addr.port();
        let task = serve(listener, move |request, peer| {
            let network = Arc::clone(&network);
            let topology = Arc::clone(&topology);
            async move { network.handle(topology, request, peer, port).await }
        });
        Ok(ServiceListener {
            service: service.to_owned(),
            addr,
            task,
        })
    }

    async fn handle(
        self: Arc<Self>,
        service: Arc<ServiceTopology>,
        request: Request<Incoming>,
        peer: SocketAddr,
        port: u16,
    ) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let arrived = SystemTime::now();
        let (parts, body) = request.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let collected = Limited::new(body, MAX_LAMBDA_BODY).collect().await;
        // From here Lattice holds the whole request, and what follows runs to the end even if the
        // caller hangs up (hyper then drops this future): the target is invoked and the access log
        // gets its line exactly once, as on Lattice. Without the task, a caller timing out under
        // load cancelled the record of invocations that still ran.
        let finish = tokio::spawn(async move {
            let mut arrival = Arrival {
                service: &service,
                parts,
                path_and_query,
                body: Bytes::new(),
                peer,
                port,
                at: arrived,
            };
            let outcome = match collected {
                Ok(collected) => {
                    arrival.body = collected.to_bytes();
                    self.process(&arrival).await
                }
                Err(_) => Outcome::refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request body exceeds the 6 MB limit for Lambda targets".into(),
                    "RequestBodyTooLarge",
                ),
            };
            let duration = started.elapsed();
            if outcome.reached_target {
                let overhead = duration.saturating_sub(outcome.to_target);
                self.overhead_us
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .saturating_record((overhead.as_micros() as u64).max(1));
            }
            self.record(&arrival, duration, &outcome);
            let mut response = Response::new(Full::new(outcome.body));
            *response.status_mut() = outcome.status;
            *response.headers_mut() = outcome.headers;
            response
        });
        finish.await.unwrap_or_else(|panic| {
            tracing::error!(%panic, "Lattice proxy task failed");
            let mut response = Response::new(Full::new(Bytes::from_static(
                b"{\"message\":\"Internal server error\"}",
            )));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
    }

    async fn process(&self, arrival: &Arrival<'_>) -> Outcome {
        let (service, parts, path_and_query, body) = (
            arrival.service,
            &arrival.parts,
            arrival.path_and_query.as_str(),
            &arrival.body,
        );
        let (peer, port, arrived) = (arrival.peer, arrival.port, arrival.at);
        let caller = match self.verifier.verify(
            parts.method.as_str(),
            path_and_query,
            &parts.headers,
            &[],
            arrived,
        ) {
            Ok(caller) => caller,
            Err(error) => {
                return Outcome::refused(
                    StatusCode::FORBIDDEN,
                    format!("{}: {error}", error.code()),
                    "AuthenticationFailed",
                )
            }
        };
        let principal = match &caller {
            Caller::Anonymous => None,
            Caller::Principal(p) => Some(p.as_str()),
        };
        let path = path_and_query.split('?').next().unwrap_or("/");
        let resource = format!("{}{}", service.service_arn, path);
        let denial = match self.policies.services.get(&service.name) {
            Some(service_policy) => authorize(
                &self.policies.network,
                service_policy,
                principal.and_then(|p| self.policies.identities.get(p)),
                principal,
                &resource,
            )
            .err(),
            // A service with no auth policy allows nothing (fail closed).
            None => Some(Denial {
                layer: PolicyLayer::Service,
                explicit: false,
            }),
        };
        if let Some(denial) = denial {
            let user = principal.unwrap_or("anonymous");
            let mut outcome = Outcome::refused(
                StatusCode::FORBIDDEN,
                format!(
                    "AccessDeniedException: User: {user} is not authorized to perform: {INVOKE} on resource: {resource} {}",
                    denial.because()
                ),
                "AuthDenied",
            );
            outcome.caller = principal.map(str::to_owned);
            outcome.auth_denied = Some(format!(
                "{}{}",
                if denial.explicit {
                    "ExplicitDeny"
                } else {
                    "NoAllow"
                },
                match denial.layer {
                    PolicyLayer::Network => "InServiceNetworkPolicy",
                    PolicyLayer::Service => "InServicePolicy",
                    PolicyLayer::Identity => "InIdentityPolicy",
                }
            ));
            return outcome;
        }
        let Some(function) = self.functions.get(&service.function_name) else {
            return Outcome::refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "No healthy target".into(),
                "NoTarget",
            );
        };
        let incoming = IncomingRequest {
            method: parts.method.as_str(),
            path_and_query,
            headers: &parts.headers,
            body,
            peer,
            listener_port: port,
        };
        let time_epoch = arrived
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let event = LatticeEventV2::build(
            &incoming,
            RequestContext {
                service_network_arn: self.topology.service_network_arn.clone(),
                service_arn: service.service_arn.clone(),
                target_group_arn: service.target_group_arn.clone(),
                identity: Identity {
                    source_vpc_arn: Some(self.topology.source_vpc_arn.clone()),
                    identity_type: Some(
                        if principal.is_some() {
                            "AWS_IAM"
                        } else {
                            "NONE"
                        }
                        .into(),
                    ),
                    principal: principal.map(str::to_owned),
                    principal_org_id: None,
                    session_name: None,
                },
                region: self.topology.region.clone(),
                time_epoch: time_epoch.to_string(),
            },
        );
        let event = match serde_json::to_vec(&event) {
            Ok(bytes) => Bytes::from(bytes),
            Err(_) => {
                return Outcome::refused(
                    StatusCode::BAD_REQUEST,
                    "Request cannot be represented as an event".into(),
                    "InvalidRequest",
                )
            }
        };
        let invoked = Instant::now();
        let result = function.invoke(event, None).await;
        let in_target = invoked.elapsed();
        let mut outcome = match result {
            Ok(output) => match map_response(&output.payload) {
                Ok(mapped) => Outcome {
                    status: mapped.status,
                    body: mapped.body,
                    headers: mapped.headers,
                    caller: None,
                    auth_denied: None,
                    failure: None,
                    reached_target: true,
                    to_target: Duration::ZERO,
                    from_target: Duration::ZERO,
                    timed_out: false,
                },
                Err(error) => Outcome::refused(
                    StatusCode::BAD_GATEWAY,
                    error.to_string(),
                    "LambdaInvalidResponse",
                ),
            },
            Err(InvokeError::Throttled) => Outcome::refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Lambda throttled the invocation (TooManyRequestsException)".into(),
                "LambdaThrottled",
            ),
            Err(InvokeError::Timeout(message)) => {
                let mut outcome =
                    Outcome::refused(StatusCode::GATEWAY_TIMEOUT, message, "LambdaTimeout");
                outcome.timed_out = true;
                outcome
            }
            Err(InvokeError::Function { error_type, .. }) => Outcome::refused(
                StatusCode::BAD_GATEWAY,
                format!("Lambda function error: {error_type}"),
                "LambdaFunctionError",
            ),
            Err(error @ (InvokeError::EnvironmentExited(_) | InvokeError::InitFailed(_))) => {
                Outcome::refused(
                    StatusCode::BAD_GATEWAY,
                    error.to_string(),
                    "LambdaFunctionError",
                )
            }
        };
        outcome.reached_target = true;
        outcome.caller = principal.map(str::to_owned);
        // The invoke is synchronous: the time up to the function's answer is time "to target";
        // Lattice has nothing to stream back afterwards.
        outcome.to_target = in_target;
        outcome
    }

    fn record(&self, arrival: &Arrival<'_>, duration: Duration, outcome: &Outcome) {
        let (service, parts, path_and_query, body) = (
            arrival.service,
            &arrival.parts,
            arrival.path_and_query.as_str(),
            &arrival.body,
        );
        let (peer, arrived) = (arrival.peer, arrival.at);
        let header = |name: http::header::HeaderName| {
            or_absent(parts.headers.get(name).and_then(|v| v.to_str().ok()))
        };
        let request_bytes: u64 = (parts.method.as_str().len()
            + path_and_query.len()
            + parts
                .headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum::<usize>()
            + body.len()
            + 14) as u64;
        let response_bytes: u64 = (outcome
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
            + outcome.body.len()
            + 17) as u64;
        let principal = or_absent(outcome.caller.as_deref());
        let entry = AccessLogEntry {
            service_network_arn: self.topology.service_network_arn.clone(),
            resolved_user: if outcome.caller.is_some() {
                principal.clone()
            } else {
                "Anonymous".to_owned()
            },
            listener_type: "HTTP".to_owned(),
            auth_denied_reason: or_absent(outcome.auth_denied.as_deref()),
            target_group_arn: if outcome.reached_target {
                service.target_group_arn.clone()
            } else {
                ABSENT.to_owned()
            },
            source_vpc_arn: self.topology.source_vpc_arn.clone(),
            destination_vpc_id: ABSENT.to_owned(),
            source_ip_port: peer.to_string(),
            listener_id: service.listener_id.clone(),
            // A Lambda target has no IP address.
            target_ip_port: ABSENT.to_owned(),
            failure_reason: or_absent(outcome.failure),
            service_arn: service.service_arn.clone(),
            source_vpc_id: self.topology.source_vpc_id.clone(),
            start_time: start_time(arrived),
            request_method: parts.method.as_str().to_owned(),
            request_path: path_and_query.to_owned(),
            protocol: format!("{:?}", parts.version),
            response_code: outcome.status.as_u16(),
            bytes_received: request_bytes,
            bytes_sent: response_bytes,
            duration: duration.as_millis() as u64,
            user_agent: header(http::header::USER_AGENT),
            host_header: header(http::header::HOST),
            server_name_indication: ABSENT.to_owned(),
            request_to_target_duration: outcome.to_target.as_millis() as u64,
            response_from_target_duration: outcome.from_target.as_millis() as u64,
            ssl_cipher: ABSENT.to_owned(),
            tls_version: ABSENT.to_owned(),
            caller_principal: principal,
            caller_principal_org_id: ABSENT.to_owned(),
            caller_x509_issuer_ou: ABSENT.to_owned(),
            caller_x509_subject_cn: ABSENT.to_owned(),
            caller_x509_san_name_cn: ABSENT.to_owned(),
            caller_x509_san_dns: ABSENT.to_owned(),
            caller_x509_san_uri: ABSENT.to_owned(),
        };
        self.access_log.write(&entry);
        let mut dimensions = vec![Dimension::Service(service.service_id.clone())];
        if outcome.reached_target {
            dimensions.push(Dimension::TargetGroup(service.target_group_id.clone()));
        }
        self.metrics.record(
            &dimensions,
            RequestSample {
                status: outcome.status.as_u16(),
                duration,
                timed_out: outcome.timed_out,
                at: arrived,
            },
        );
    }
}
