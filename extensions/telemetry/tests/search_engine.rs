//! Dispatch into a real OpenSearch-API engine (the workspace's `local-search`, in process on
//! loopback): the templates and `_bulk` bodies are accepted, every record becomes one document
//! with the template's mapping, a redelivered POST adds nothing, and basic auth from a secret and
//! SigV4 are accepted.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use local_search::{Auth as SearchAuth, SearchConfig, SearchServer};
use opensearch_telemetry::auth::{Auth, BasicFromSecret, BoxFuture, SecretSource, SigV4};
use opensearch_telemetry::backend::HttpBackend;
use opensearch_telemetry::config::Indices;
use opensearch_telemetry::counters::Counters;
use opensearch_telemetry::dispatch::{Dispatcher, Flushed};
use opensearch_telemetry::intake::Intake;
use opensearch_telemetry::pending::Pending;
use opensearch_telemetry::say::OnceLog;
use opensearch_telemetry::templates::{self, Installer};
use serde_json::{json, Value};
use sigv4_verify::{PrincipalKey, SigningRules, Verifier};
use tokio::time::Instant;

async fn engine(auth: SearchAuth) -> SearchServer {
    SearchServer::start(SearchConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: None,
        auth,
    })
    .await
    .unwrap()
}

fn dispatcher(url: &str, auth: Auth, counters: &Arc<Counters>, log: &Arc<OnceLog>) -> Dispatcher {
    let backend = HttpBackend::new(url, auth, Arc::clone(log)).unwrap();
    let installer = Installer::new(templates::all(&Indices::default()));
    Dispatcher::new(
        Arc::new(backend),
        installer,
        Arc::clone(counters),
        Arc::clone(log),
        3,
    )
}

/// Every fixture record, as the POSTs Lambda would send.
fn posts() -> Vec<Vec<u8>> {
    vec![
        BATCH.as_bytes().to_vec(),
        LOGS_DROPPED.as_bytes().to_vec(),
        JSON_LOGS.as_bytes().to_vec(),
        RESTORE_START.as_bytes().to_vec(),
    ]
}

async fn ship(
    dispatcher: &mut Dispatcher,
    counters: &Arc<Counters>,
    bodies: &[Vec<u8>],
) -> Flushed {
    let mut pending = Pending::new(10_000);
    Intake::new(context(), Arc::clone(counters)).ingest_all(bodies, &mut pending, Utc::now());
    dispatcher
        .flush(&mut pending, Instant::now() + Duration::from_secs(10))
        .await
}

async fn get(server: &SearchServer, path: &str, body: Option<Value>) -> Value {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", server.url());
    let request = match body {
        Some(body) => client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => client.get(url),
    };
    let bytes = request.send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn count(server: &SearchServer, pattern: &str, query: Value) -> u64 {
    let answer = get(
        server,
        &format!("/{pattern}/_count"),
        Some(json!({"query": query})),
    )
    .await;
    answer["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("{answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_indexed_once_with_the_templates_mappings() {
    let server = engine(SearchAuth::default()).await;
    let (counters, log) = (Arc::new(Counters::new()), Arc::new(OnceLog::new()));
    let mut dispatcher = dispatcher(&server.url(), Auth::None, &counters, &log);
    let flushed = ship(&mut dispatcher, &counters, &posts()).await;
    assert_eq!(
        flushed,
        Flushed {
            shipped: 17,
            retried: 0,
            failed: 0,
            left: 0
        },
        "{:?}",
        log.kinds()
    );
    // Lambda redelivering every POST: same ids, no new documents.
    let again = ship(&mut dispatcher, &counters, &posts()).await;
    assert_eq!(again.shipped, 17);
    reqwest::Client::new()
        .post(format!("{}/_refresh", server.url()))
        .send()
        .await
        .unwrap();
    let all = json!({"match_all": {}});
    assert_eq!(count(&server, "lambda-platform-*", all.clone()).await, 10);
    assert_eq!(count(&server, "lambda-function-*", all.clone()).await, 5);
    assert_eq!(count(&server, "lambda-extension-*", all).await, 2);
    let trace = json!({"term": {"traceId": "1-6352a70e-1e2c502e358361800241fd45"}});
    assert_eq!(
        count(&server, "lambda-platform-*", trace).await,
        3,
        "start, runtimeDone, report"
    );
    let slow = json!({"range": {"billedDurationMs": {"gte": 2600}}});
    assert_eq!(count(&server, "lambda-platform-*", slow).await, 1);
    let warn = json!({"term": {"level": "WARN"}});
    assert_eq!(count(&server, "lambda-function-*", warn).await, 1);
    let mapping = get(&server, "/lambda-platform-2022-10-21/_mapping", None).await;
    let properties = &mapping["lambda-platform-2022-10-21"]["mappings"]["properties"];
    assert_eq!(properties["record"]["enabled"], json!(false));
    assert_eq!(properties["durationMs"]["type"], "double");
    let template = get(&server, "/_index_template/lambda-function", None).await;
    assert_eq!(
        template["index_templates"][0]["index_template"]["index_patterns"],
        json!(["lambda-function-*"])
    );
    server.stop().await;
}

struct FakeSecrets;

impl SecretSource for FakeSecrets {
    fn secret_string<'a>(&'a self, secret_id: &'a str) -> BoxFuture<'a, Result<String, String>> {
        let answer = match secret_id {
            "opensearch/telemetry" => {
                Ok(r#"{"username":"telemetry","password":"pa55"}"#.to_owned())
            }
            other => Err(format!("{other}: ResourceNotFoundException")),
        };
        Box::pin(async move { answer })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_the_secret_is_accepted() {
    let server = engine(SearchAuth {
        basic: Some(("telemetry".into(), "pa55".into())),
        sigv4: None,
    })
    .await;
    let (counters, log) = (Arc::new(Counters::new()), Arc::new(OnceLog::new()));
    let auth = Auth::Basic(BasicFromSecret::new(
        "opensearch/telemetry",
        Arc::new(FakeSecrets),
    ));
    let mut dispatcher = dispatcher(&server.url(), auth, &counters, &log);
    let flushed = ship(&mut dispatcher, &counters, &[function_lines(3)]).await;
    assert_eq!(flushed.shipped, 3, "{:?}", log.kinds());
    // A wrong password is refused (401): counted failed, not retried.
    let server_wrong = engine(SearchAuth {
        basic: Some(("telemetry".into(), "other".into())),
        sigv4: None,
    })
    .await;
    let auth = Auth::Basic(BasicFromSecret::new(
        "opensearch/telemetry",
        Arc::new(FakeSecrets),
    ));
    let mut refused = dispatcher_for(&server_wrong, auth, &counters, &log);
    let flushed = ship(&mut refused, &counters, &[function_lines(2)]).await;
    assert_eq!((flushed.shipped, flushed.failed), (0, 2));
    assert!(
        log.kinds().contains(&"bulk 401".to_owned()),
        "{:?}",
        log.kinds()
    );
    server.stop().await;
    server_wrong.stop().await;
}

fn dispatcher_for(
    server: &SearchServer,
    auth: Auth,
    counters: &Arc<Counters>,
    log: &Arc<OnceLog>,
) -> Dispatcher {
    dispatcher(&server.url(), auth, counters, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_signed_requests_are_verified() {
    let key = PrincipalKey {
        principal: "arn:aws:iam::123456789012:role/order-function".into(),
        access_key_id: "AKIDTELEMETRY0000001".into(),
        secret_access_key: "telemetry-secret-for-tests-only".into(),
    };
    let keys = HashMap::from([(key.access_key_id.clone(), key.clone())]);
    let verifier = Verifier::new(keys, "us-east-1", SigningRules::opensearch());
    let server = engine(SearchAuth {
        basic: None,
        sigv4: Some(verifier),
    })
    .await;
    let (counters, log) = (Arc::new(Counters::new()), Arc::new(OnceLog::new()));
    let credentials = aws_credential_types::Credentials::new(
        key.access_key_id.clone(),
        key.secret_access_key.clone(),
        Some("session-token".into()),
        None,
        "test",
    );
    let auth = Auth::SigV4(SigV4::new(credentials, Some("us-east-1".into())));
    let mut dispatcher = dispatcher(&server.url(), auth, &counters, &log);
    let flushed = ship(&mut dispatcher, &counters, &posts()).await;
    assert_eq!(flushed.shipped, 17, "{:?}", log.kinds());
    assert!(log.kinds().is_empty(), "{:?}", log.kinds());
    server.stop().await;
}
