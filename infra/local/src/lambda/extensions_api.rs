//! The Extensions API (2020-01-01) of one execution environment: `register`, `event/next`,
//! `init/error` and `exit/error`, served on the environment's Runtime API address.
//!
//! It follows the Lambda developer guide ("Lambda Extensions API") and, for the error types and
//! statuses the guide leaves open, the Runtime Interface Emulator's `rapi/handler` (every refusal is
//! a 403 with `{errorType, errorMessage}`: `Extension.InvalidExtensionName`,
//! `Extension.RegistrationClosed`, `Extension.UnknownExtensionIdentifier`,
//! `Extension.InvalidExtensionState`, `Extension.MissingHeader`, `Extension.TooManyExtensions`,
//! `Extension.InvalidEventType`, `InvalidRequestFormat`).
//!
//! An extension whose `Lambda-Extension-Name` is one of the files the environment started is
//! external; any other name registers an internal extension (one inside the runtime's process),
//! which may not ask for `SHUTDOWN`. Registration closes when the init phase ends.
//!
//! What the environment needs from here: [`ExtensionsApi::all_ready`] (the runtime's invocation
//! is over, and the init phase too, only when every extension has called `next` again),
//! [`ExtensionsApi::deliver_invoke`] and [`ExtensionsApi::deliver_shutdown`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

/// The path prefix.
pub const PREFIX: &str = "/2020-01-01/extension";
/// Lambda's limit on extensions per function.
pub const MAX_EXTENSIONS: usize = 10;

const NAME_HEADER: &str = "lambda-extension-name";
const IDENTIFIER_HEADER: &str = "lambda-extension-identifier";
const ERROR_TYPE_HEADER: &str = "lambda-extension-function-error-type";

/// The events an extension can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Each invocation.
    Invoke,
    /// The environment's shutdown (external extensions only).
    Shutdown,
}

/// What the function tells its extensions about itself at registration.
#[derive(Clone, Debug)]
pub struct FunctionMetadata {
    /// `functionName`.
    pub function_name: String,
    /// `functionVersion`.
    pub function_version: String,
    /// `handler`.
    pub handler: String,
    /// `accountId`, sent when asked for with `Lambda-Extension-Accept-Feature: accountId`.
    pub account_id: String,
}

/// An error an extension reported (`init/error` or `exit/error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedError {
    /// The extension's name.
    pub extension: String,
    /// `Lambda-Extension-Function-Error-Type`.
    pub error_type: String,
    /// The body.
    pub body: String,
}

struct Agent {
    id: String,
    name: String,
    events: Vec<EventType>,
    /// Called `next` since the last event it was given (or since registering).
    ready: bool,
    events_tx: mpsc::UnboundedSender<Bytes>,
    events_rx: std::sync::Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Bytes>>>,
}

#[derive(Default)]
struct Registry {
    closed: bool,
    agents: Vec<Agent>,
    init_error: Option<ReportedError>,
    exit_errors: Vec<ReportedError>,
}

/// One environment's Extensions API.
pub struct ExtensionsApi {
    /// The file names of the external extensions started (what `Lambda-Extension-Name` must be).
    external: Vec<String>,
    metadata: FunctionMetadata,
    registry: Mutex<Registry>,
    changed: Notify,
}

impl std::fmt::Debug for ExtensionsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionsApi")
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

type HttpResponse = Response<Full<Bytes>>;

/// A refusal's error type and message, before it becomes a 403.
type Refusal = (&'static str, String);

fn refuse(error_type: &str, message: impl Into<String>) -> HttpResponse {
    let body = json!({"errorType": error_type, "errorMessage": message.into()}).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl ExtensionsApi {
    /// The API for an environment that started the external extensions named `external`.
    pub fn new(external: Vec<String>, metadata: FunctionMetadata) -> Self {
        Self {
            external,
            metadata,
            registry: Mutex::default(),
            changed: Notify::new(),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves one request under [`PREFIX`] (`rest` is the path after it).
    pub async fn route(
        &self,
        method: &str,
        rest: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> HttpResponse {
        match (method, rest) {
            ("POST", "/register") => self.register(headers, &body),
            ("GET", "/event/next") => self.next(headers).await,
            ("POST", "/init/error") => self.report_error(headers, body, true),
            ("POST", "/exit/error") => self.report_error(headers, body, false),
            _ => {
                let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        }
    }

    fn register(&self, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
        let name = header(headers, NAME_HEADER).unwrap_or_default().to_owned();
        if name.is_empty() {
            return refuse("Extension.InvalidExtensionName", "Empty extension name");
        }
        let events = match parse_events(body) {
            Ok(events) => events,
            Err((error_type, message)) => return refuse(error_type, message),
        };
        let external = self.external.contains(&name);
        if !external && events.contains(&EventType::Shutdown) {
            return refuse(
                "Extension.InvalidEventType",
                "SHUTDOWN: internal extensions cannot register for the SHUTDOWN event",
            );
        }
        let id = uuid_v4();
        {
            let mut registry = self.registry();
            if registry.closed {
                return refuse(
                    "Extension.RegistrationClosed",
                    "Extension registration closed already",
                );
            }
            if registry.agents.iter().any(|a| a.name == name) {
                return refuse(
                    "Extension.InvalidExtensionState",
                    "Extension with this name already registered",
                );
            }
            if registry.agents.len() >= MAX_EXTENSIONS {
                return refuse(
                    "Extension.TooManyExtensions",
                    format!("Extension limit ({MAX_EXTENSIONS}) reached"),
                );
            }
            let (events_tx, events_rx) = mpsc::unbounded_channel();
            registry.agents.push(Agent {
                id: id.clone(),
                name,
                events,
                ready: false,
                events_tx,
                events_rx: std::sync::Arc::new(tokio::sync::Mutex::new(events_rx)),
            });
        }
        self.changed.notify_waiters();
        let mut answer = json!({
            "functionName": self.metadata.function_name,
            "functionVersion": self.metadata.function_version,
            "handler": self.metadata.handler,
        });
        let wants_account = header(headers, "lambda-extension-accept-feature")
            .is_some_and(|features| features.split(',').any(|f| f.trim() == "accountId"));
        if wants_account {
            answer["accountId"] = json!(self.metadata.account_id);
        }
        let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
        if let Ok(value) = id.parse() {
            response.headers_mut().insert(IDENTIFIER_HEADER, value);
        }
        response
    }

    fn agent_receiver(
        &self,
        headers: &HeaderMap,
    ) -> Result<std::sync::Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Bytes>>>, Refusal> {
        let Some(id) = header(headers, IDENTIFIER_HEADER) else {
            return Err((
                "Extension.MissingHeader",
                "Missing Lambda-Extension-Identifier header".to_owned(),
            ));
        };
        let mut registry = self.registry();
        let Some(agent) = registry.agents.iter_mut().find(|a| a.id == id) else {
            return Err((
                "Extension.UnknownExtensionIdentifier",
                format!("Unknown extension {id}"),
            ));
        };
        agent.ready = true;
        Ok(std::sync::Arc::clone(&agent.events_rx))
    }

    async fn next(&self, headers: &HeaderMap) -> HttpResponse {
        let receiver = match self.agent_receiver(headers) {
            Ok(receiver) => receiver,
            Err((error_type, message)) => return refuse(error_type, message),
        };
        self.changed.notify_waiters();
        let event = receiver.lock().await.recv().await;
        let Some(event) = event else {
            // The environment is gone; the process is about to be killed.
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            *response.status_mut() = StatusCode::GONE;
            return response;
        };
        let mut response = Response::new(Full::new(event));
        let headers = response.headers_mut();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = uuid_v4().parse() {
            headers.insert("lambda-extension-event-identifier", value);
        }
        response
    }

    fn report_error(&self, headers: &HeaderMap, body: Bytes, init: bool) -> HttpResponse {
        let Some(id) = header(headers, IDENTIFIER_HEADER) else {
            return refuse(
                "Extension.MissingHeader",
                "Missing Lambda-Extension-Identifier header",
            );
        };
        let error_type = header(headers, ERROR_TYPE_HEADER)
            .unwrap_or("Unknown")
            .to_owned();
        {
            let mut registry = self.registry();
            let Some(agent) = registry.agents.iter().find(|a| a.id == id) else {
                return refuse(
                    "Extension.UnknownExtensionIdentifier",
                    format!("Unknown extension {id}"),
                );
            };
            let reported = ReportedError {
                extension: agent.name.clone(),
                error_type,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            if init {
                registry.init_error.get_or_insert(reported);
            } else {
                registry.exit_errors.push(reported);
            }
        }
        self.changed.notify_waiters();
        let mut response = Response::new(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)));
        *response.status_mut() = StatusCode::ACCEPTED;
        response
    }

    /// Names of the external extensions that have registered so far.
    pub fn registered_external(&self) -> Vec<String> {
        self.registry()
            .agents
            .iter()
            .filter(|a| self.external.contains(&a.name))
            .map(|a| a.name.clone())
            .collect()
    }

    /// Waits until every external extension started has registered.
    pub async fn all_registered(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.registered_external().len() >= self.external.len() {
                return;
            }
            notified.await;
        }
    }

    /// Whether `id` is a registered extension (for the Telemetry API).
    pub fn name_of(&self, id: &str) -> Option<String> {
        self.registry()
            .agents
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.clone())
    }

    fn every_agent_ready(&self) -> bool {
        let registry = self.registry();
        registry.init_error.is_some() || registry.agents.iter().all(|a| a.ready)
    }

    /// Waits until every registered extension has called `next` since its last event (or an
    /// extension reported an init error).
    pub async fn all_ready(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.every_agent_ready() {
                return;
            }
            notified.await;
        }
    }

    /// Ends the init phase: no registration after this.
    pub fn close_registration(&self) {
        self.registry().closed = true;
    }

    /// The init error an extension reported, if one did.
    pub fn init_error(&self) -> Option<ReportedError> {
        self.registry().init_error.clone()
    }

    /// The exit errors extensions reported.
    pub fn exit_errors(&self) -> Vec<ReportedError> {
        self.registry().exit_errors.clone()
    }

    /// Whether any extension is registered.
    pub fn any_registered(&self) -> bool {
        !self.registry().agents.is_empty()
    }

    fn deliver(&self, event_type: EventType, event: &Value) -> usize {
        let bytes = Bytes::from(event.to_string());
        let mut registry = self.registry();
        let mut delivered = 0;
        for agent in registry
            .agents
            .iter_mut()
            .filter(|a| a.events.contains(&event_type))
        {
            agent.ready = false;
            if agent.events_tx.send(bytes.clone()).is_ok() {
                delivered += 1;
            }
        }
        delivered
    }

    /// Hands the `INVOKE` event to every extension registered for it.
    pub fn deliver_invoke(
        &self,
        request_id: &str,
        deadline_ms: u64,
        function_arn: &str,
        trace_id: Option<&str>,
    ) -> usize {
        let mut event = json!({
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": request_id,
            "invokedFunctionArn": function_arn,
        });
        if let Some(trace_id) = trace_id {
            event["tracing"] = json!({"type": "X-Amzn-Trace-Id", "value": trace_id});
        }
        self.deliver(EventType::Invoke, &event)
    }

    /// Hands the `SHUTDOWN` event (`reason`: `spindown`, `timeout` or `failure`) to every
    /// extension registered for it. Returns how many got it.
    pub fn deliver_shutdown(&self, reason: ShutdownReason, deadline_ms: u64) -> usize {
        let event = json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": reason.as_str(),
            "deadlineMs": deadline_ms,
        });
        self.deliver(EventType::Shutdown, &event)
    }

    /// Ids and names of the registered extensions.
    pub fn agents(&self) -> HashMap<String, String> {
        self.registry()
            .agents
            .iter()
            .map(|a| (a.id.clone(), a.name.clone()))
            .collect()
    }
}

/// Why an environment shuts down (`shutdownReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The environment is no longer needed.
    Spindown,
    /// An invocation timed out.
    Timeout,
    /// A process failed.
    Failure,
}

impl ShutdownReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spindown => "spindown",
            Self::Timeout => "timeout",
            Self::Failure => "failure",
        }
    }
}

fn parse_events(body: &[u8]) -> Result<Vec<EventType>, Refusal> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| ("InvalidRequestFormat", e.to_string()))?;
    if request
        .get("configurationKeys")
        .and_then(Value::as_array)
        .is_some_and(|keys| !keys.is_empty())
    {
        return Err((
            "InvalidRequestFormat",
            "configurationKeys are deprecated; use environment variables instead".to_owned(),
        ));
    }
    let Some(events) = request.get("events").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    events
        .iter()
        .map(|event| match event.as_str() {
            Some("INVOKE") => Ok(EventType::Invoke),
            Some("SHUTDOWN") => Ok(EventType::Shutdown),
            other => Err((
                "Extension.InvalidEventType",
                format!("{}: unknown event type", other.unwrap_or("(not a string)")),
            )),
        })
        .collect()
}

/// A random version-4 UUID (the extension and event identifiers).
fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http_body_util::BodyExt;

    pub(crate) fn api(external: &[&str]) -> ExtensionsApi {
        ExtensionsApi::new(
            external.iter().map(|n| (*n).to_owned()).collect(),
            FunctionMetadata {
                function_name: "payment".into(),
                function_version: "$LATEST".into(),
                handler: "bootstrap".into(),
                account_id: "123456789012".into(),
            },
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    pub(crate) async fn body(response: HttpResponse) -> (StatusCode, HeaderMap, Value) {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub(crate) async fn register(
        api: &ExtensionsApi,
        name: &str,
        events: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let headers = headers(&[
            (NAME_HEADER, name),
            ("lambda-extension-accept-feature", "accountId"),
        ]);
        let body_text = format!(r#"{{"events":{events}}}"#);
        body(
            api.route("POST", "/register", &headers, Bytes::from(body_text))
                .await,
        )
        .await
    }

    fn error_type(answer: &(StatusCode, HeaderMap, Value)) -> (StatusCode, &str) {
        (answer.0, answer.2["errorType"].as_str().unwrap_or_default())
    }

    #[tokio::test]
    async fn registration_answers_with_an_identifier_and_the_function_and_refuses_as_the_emulator_does(
    ) {
        let api = api(&["telemetry"]);
        let ok = register(&api, "telemetry", r#"["INVOKE","SHUTDOWN"]"#).await;
        assert_eq!(ok.0, StatusCode::OK);
        assert_eq!(ok.1[IDENTIFIER_HEADER].len(), 36);
        assert_eq!(
            ok.2,
            json!({"functionName": "payment", "functionVersion": "$LATEST",
                   "handler": "bootstrap", "accountId": "123456789012"})
        );
        let forbidden = StatusCode::FORBIDDEN;
        let again = register(&api, "telemetry", r#"["INVOKE"]"#).await;
        assert_eq!(
            error_type(&again),
            (forbidden, "Extension.InvalidExtensionState")
        );
        let empty = register(&api, "", r#"["INVOKE"]"#).await;
        assert_eq!(
            error_type(&empty),
            (forbidden, "Extension.InvalidExtensionName")
        );
        let internal = register(&api, "in-process", r#"["INVOKE","SHUTDOWN"]"#).await;
        assert_eq!(
            error_type(&internal),
            (forbidden, "Extension.InvalidEventType")
        );
        let unknown_event = register(&api, "other", r#"["RESTORE"]"#).await;
        assert_eq!(
            error_type(&unknown_event),
            (forbidden, "Extension.InvalidEventType")
        );
        let internal = register(&api, "in-process", r#"["INVOKE"]"#).await;
        assert_eq!(
            internal.0,
            StatusCode::OK,
            "an internal extension may ask for INVOKE"
        );
        api.close_registration();
        let late = register(&api, "late", r#"["INVOKE"]"#).await;
        assert_eq!(
            error_type(&late),
            (forbidden, "Extension.RegistrationClosed")
        );
    }

    #[tokio::test]
    async fn next_needs_a_known_identifier() {
        let api = api(&[]);
        let missing = body(
            api.route("GET", "/event/next", &HeaderMap::new(), Bytes::new())
                .await,
        )
        .await;
        assert_eq!(
            error_type(&missing),
            (StatusCode::FORBIDDEN, "Extension.MissingHeader")
        );
        let unknown = body(
            api.route(
                "GET",
                "/event/next",
                &headers(&[(IDENTIFIER_HEADER, "nope")]),
                Bytes::new(),
            )
            .await,
        )
        .await;
        assert_eq!(
            error_type(&unknown),
            (
                StatusCode::FORBIDDEN,
                "Extension.UnknownExtensionIdentifier"
            )
        );
    }

    #[tokio::test]
    async fn an_invocation_is_over_only_when_every_extension_called_next_again() {
        let api = std::sync::Arc::new(api(&["a", "b"]));
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            let (_, headers, _) = register(&api, name, r#"["INVOKE","SHUTDOWN"]"#).await;
            ids.push(headers[IDENTIFIER_HEADER].to_str().unwrap().to_owned());
        }
        api.all_registered().await;
        assert!(!api.every_agent_ready(), "registered, not yet ready");
        let next = |id: String| {
            let api = std::sync::Arc::clone(&api);
            tokio::spawn(async move {
                let headers = headers(&[(IDENTIFIER_HEADER, &id)]);
                body(
                    api.route("GET", "/event/next", &headers, Bytes::new())
                        .await,
                )
                .await
            })
        };
        let (first_a, first_b) = (next(ids[0].clone()), next(ids[1].clone()));
        tokio::time::timeout(std::time::Duration::from_secs(1), api.all_ready())
            .await
            .expect("both called next: init is over");
        assert_eq!(api.deliver_invoke("r-1", 99, "arn", Some("Root=1-2-3")), 2);
        assert!(!api.every_agent_ready());
        let (_, _, event) = first_a.await.unwrap();
        assert_eq!(
            event,
            json!({"eventType": "INVOKE", "deadlineMs": 99, "requestId": "r-1",
                   "invokedFunctionArn": "arn",
                   "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-2-3"}})
        );
        let _again_a = next(ids[0].clone());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!api.every_agent_ready(), "b has not called next yet");
        let _ = first_b.await.unwrap();
        let _again_b = next(ids[1].clone());
        tokio::time::timeout(std::time::Duration::from_secs(1), api.all_ready())
            .await
            .expect("both called next again");
    }
}
