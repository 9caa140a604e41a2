//! What the integration tests share: the fixtures, a document context, and a scripted
//! [`Backend`] that records every call.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use opensearch_telemetry::auth::BoxFuture;
use opensearch_telemetry::backend::{Backend, BackendError, Payload, Reply};
use opensearch_telemetry::config::Indices;
use opensearch_telemetry::documents::DocumentContext;
use serde_json::{json, Value};

pub const BATCH: &str = include_str!("../fixtures/telemetry-batch.json");
pub const LOGS_DROPPED: &str = include_str!("../fixtures/platform-logs-dropped.json");
pub const JSON_LOGS: &str = include_str!("../fixtures/function-json-log.json");
pub const RESTORE_START: &str = include_str!("../fixtures/platform-restore-start.json");
pub const BULK_MIXED: &str = include_str!("../fixtures/bulk-response-mixed.json");

pub const EXTENSION_ID: &str = "0c2d4b3e-1b8f-4f3a-9f0e-6d1e2a7b9c10";

pub fn context() -> DocumentContext {
    DocumentContext {
        extension_id: EXTENSION_ID.into(),
        function_name: "order".into(),
        function_version: Some("$LATEST".into()),
        indices: Indices::default(),
    }
}

/// One record of `fixture` (a JSON array), as a one-record POST body.
pub fn post_of(fixture: &str, index: usize) -> Vec<u8> {
    let records: Vec<Value> = serde_json::from_str(fixture).unwrap();
    json!([records[index]]).to_string().into_bytes()
}

/// A POST body of `records`.
pub fn post(records: &[Value]) -> Vec<u8> {
    Value::Array(records.to_vec()).to_string().into_bytes()
}

/// `n` distinct function lines, as one POST body.
pub fn function_lines(n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"time": "2026-12-01T10:00:00.000Z", "type": "function", "record": format!("line {i}")}))
        .collect();
    post(&records)
}

/// A `platform.report` for `request_id`.
pub fn report(request_id: &str) -> Value {
    json!({
        "time": "2026-12-01T10:00:01.000Z",
        "type": "platform.report",
        "record": {"requestId": request_id, "status": "success",
                   "metrics": {"durationMs": 12.5, "billedDurationMs": 13, "memorySizeMB": 128, "maxMemoryUsedMB": 40}}
    })
}

/// One call the scripted backend received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: String,
    pub timeout: Duration,
}

impl Call {
    /// The `_id`s of a `_bulk` body, in order.
    pub fn bulk_ids(&self) -> Vec<String> {
        self.body
            .lines()
            .step_by(2)
            .map(|line| {
                let action: Value = serde_json::from_str(line).unwrap();
                action["index"]["_id"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// The sources of a `_bulk` body, in order.
    pub fn bulk_sources(&self) -> Vec<Value> {
        self.body
            .lines()
            .skip(1)
            .step_by(2)
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// What the scripted backend does for one `_bulk`.
pub enum Answer {
    /// This status and body.
    Reply(u16, String),
    /// Every item with this status.
    Items(u16),
    /// No connection.
    Unreachable,
    /// Never answers.
    Hang,
}

/// A backend answering `_bulk` from a script (then 201 for every item) and templates with
/// `template_get` (then 200 for the PUT).
pub struct Scripted {
    pub calls: Mutex<Vec<Call>>,
    bulk: Mutex<VecDeque<Answer>>,
    template_get: Mutex<VecDeque<Result<u16, ()>>>,
}

impl Scripted {
    /// `_bulk` answers in order; templates already installed.
    pub fn new(bulk: Vec<Answer>) -> Arc<Self> {
        Self::with_templates(bulk, vec![])
    }

    /// Also the answers to `GET _index_template/…` in order (`Err`: unreachable); then 200.
    pub fn with_templates(bulk: Vec<Answer>, template_get: Vec<Result<u16, ()>>) -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            bulk: Mutex::new(bulk.into()),
            template_get: Mutex::new(template_get.into()),
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn bulk_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == "/_bulk")
            .collect()
    }

    fn answer(
        &self,
        method: &Method,
        path: &str,
        body: &str,
    ) -> Option<Result<Reply, BackendError>> {
        let reply = |status: u16, body: String| {
            Some(Ok(Reply {
                status,
                body: Bytes::from(body),
            }))
        };
        if path.starts_with("/_index_template/") {
            if method == Method::PUT {
                return reply(200, r#"{"acknowledged":true}"#.into());
            }
            return match self.template_get.lock().unwrap().pop_front() {
                Some(Err(())) => Some(Err(BackendError::Unreachable("refused".into()))),
                Some(Ok(status)) => reply(status, "{}".into()),
                None => reply(200, "{}".into()),
            };
        }
        let items = body.lines().count() / 2;
        match self
            .bulk
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Items(201))
        {
            Answer::Reply(status, body) => reply(status, body),
            Answer::Items(status) => reply(200, bulk_answer(items, status)),
            Answer::Unreachable => {
                Some(Err(BackendError::Unreachable("connection refused".into())))
            }
            Answer::Hang => None,
        }
    }
}

/// A `_bulk` answer with `items` items of `status`.
pub fn bulk_answer(items: usize, status: u16) -> String {
    let items: Vec<Value> = (0..items)
        .map(|_| json!({"index": {"status": status}}))
        .collect();
    json!({"took": 1, "errors": status >= 300, "items": items}).to_string()
}

impl Backend for Scripted {
    fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        payload: Option<Payload>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Reply, BackendError>> {
        let body = payload
            .map(|p| String::from_utf8(p.bytes.to_vec()).unwrap())
            .unwrap_or_default();
        let answer = self.answer(&method, path, &body);
        self.calls.lock().unwrap().push(Call {
            method,
            path: path.to_owned(),
            body,
            timeout,
        });
        Box::pin(async move {
            match answer {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        })
    }
}
