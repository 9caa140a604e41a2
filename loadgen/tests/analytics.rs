//! `loadgen analytics` against a real `local-search` engine on loopback: the template installed
//! by `--setup`'s code, documents made by the real transform's `normalise` from the recorded
//! Lattice access-log entry (varied in service, status, duration, path, caller, denial reason and
//! time), and the dashboard's answers asserted exactly (percentiles, estimates in OpenSearch too,
//! between the samples they fall between); then HTTP basic auth, SigV4 (`es`, payload hash signed) and the errors a person
//! sees for a wrong password, a wrong key, an unreachable endpoint and a missing index.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use access_log_transform::normalise::normalise;
use access_log_transform::ServiceNames;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use loadgen::analytics::answer::{ClassBucket, PrincipalDenials};
use loadgen::analytics::{
    render_text, AnalyticsClient, AnalyticsError, DashboardAnswers, SearchAuth, Window,
};
use local_search::{Auth, SearchConfig, SearchServer};
use serde_json::{json, Map, Value};
use sigv4_verify::{PrincipalKey, SigningRules, Verifier};

const ENTRY: &str =
    include_str!("../../analytics/transform/tests/fixtures/lattice-access-log-entry.json");
const ARN: &str = "arn:aws:vpc-lattice:ap-southeast-2:123467890123:service/svc-";
const INDEX: &str = "lattice-access-2024-08-04";
const PATTERN: &str = "lattice-access-*";
const INTRUDER: &str = "arn:aws:sts::123467890123:assumed-role/intruder/s1";
const STALE: &str = "arn:aws:iam::123467890123:role/stale";
const LOADGEN: &str = "arn:aws:sts::123467890123:assumed-role/loadgen/run";
const NO_POLICY: &str = "AccessDenied: no policy allows it";
const ACCESS_KEY: &str = "AKIDLOADGENANALYTICS";
const SECRET: &str = "analytics-test-secret";

async fn start(auth: Auth) -> SearchServer {
    SearchServer::start(SearchConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: None,
        auth,
    })
    .await
    .unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// One access-log entry as Lattice writes it, then as the transform indexes it.
struct Line {
    service: &'static str,
    status: u16,
    duration: u64,
    path: &'static str,
    principal: &'static str,
    denied: &'static str,
    time: &'static str,
}

fn document(line: &Line) -> Value {
    let mut entry: Map<String, Value> = serde_json::from_str(ENTRY).unwrap();
    let fields = [
        ("serviceArn", json!(format!("{ARN}{}", line.service))),
        ("responseCode", json!(line.status)),
        ("duration", json!(line.duration)),
        ("requestPath", json!(line.path)),
        ("requestMethod", json!("POST")),
        ("callerPrincipal", json!(line.principal)),
        ("authDeniedReason", json!(line.denied)),
        ("startTime", json!(format!("2024-08-04T{}Z", line.time))),
    ];
    for (key, value) in fields {
        entry.insert(key.to_owned(), value);
    }
    let names: ServiceNames = ["order", "payment", "inventory"]
        .map(|name| format!("{ARN}{name}={name}"))
        .join(",")
        .parse()
        .unwrap();
    Value::Object(normalise(entry, &names).unwrap())
}

fn lines() -> Vec<Line> {
    let line = |service, status, duration, path, principal, denied, time| Line {
        service,
        status,
        duration,
        path,
        principal,
        denied,
        time,
    };
    vec![
        line("order", 201, 120, "/orders", LOADGEN, "-", "11:28:10"),
        line("order", 201, 80, "/orders", LOADGEN, "-", "11:28:40"),
        line("order", 502, 900, "/orders", LOADGEN, "-", "11:29:05"),
        line("order", 402, 300, "/orders", LOADGEN, "-", "11:29:30"),
        line("payment", 200, 40, "/charge", LOADGEN, "-", "11:28:20"),
        line("payment", 503, 60, "/charge", LOADGEN, "-", "11:30:00"),
        line(
            "inventory",
            200,
            10,
            "/reservations",
            LOADGEN,
            "-",
            "11:28:50",
        ),
        line(
            "inventory",
            403,
            1,
            "/reservations",
            INTRUDER,
            NO_POLICY,
            "11:29:10",
        ),
        line(
            "inventory",
            403,
            2,
            "/reservations",
            INTRUDER,
            NO_POLICY,
            "11:29:50",
        ),
        line(
            "order",
            403,
            3,
            "/orders",
            STALE,
            "SignatureExpired",
            "11:30:30",
        ),
        line("order", 403, 2, "/orders", "-", NO_POLICY, "11:30:40"),
        // Before the window: counted by `count`, not by the dashboard.
        line("order", 200, 5000, "/early", LOADGEN, "-", "10:59:59"),
    ]
}

async fn load(client: &AnalyticsClient) {
    let setup = client.setup(None, &[]).await.unwrap();
    assert_eq!(setup.len(), 2, "{setup:?}");
    let documents: Vec<Value> = lines().iter().map(document).collect();
    assert_eq!(client.bulk_index(INDEX, &documents).await.unwrap(), 12);
    client.refresh(PATTERN).await.unwrap();
}

fn window() -> Window {
    Window::between(at("2024-08-04T11:00:00Z"), at("2024-08-04T12:00:00Z")).unwrap()
}

/// A percentile between the two samples it falls between (2 % of sketch error allowed): the
/// engines estimate differently (local: DDSketch at the lower rank, so p99 of six samples is the
/// fifth; OpenSearch: t-digest, interpolating towards the largest).
fn between(value: Option<f64>, low: f64, high: f64) -> bool {
    value.is_some_and(|v| v >= low * 0.98 && v <= high * 1.02)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_answers_exactly_from_transformed_entries() {
    let server = start(Auth::default()).await;
    let client = AnalyticsClient::new(&server.url(), SearchAuth::None).unwrap();
    let missing = client.dashboard(PATTERN, &window(), 3).await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "no lattice-access-* index yet: index_not_found_exception: no such index [lattice-access-*]"
    );
    load(&client).await;
    assert_eq!(client.count(PATTERN).await.unwrap(), 12);
    let answers = client.dashboard(PATTERN, &window(), 3).await.unwrap();
    assert_eq!((answers.requests, answers.interval.as_str()), (11, "1m"));
    requests_errors_and_latency_per_service(&answers);
    status_classes_per_minute(&answers);
    paths_and_slowest_requests(&answers);
    denials_by_principal_and_reason(&answers);
    let text = render_text(&answers);
    assert!(text.starts_with("lattice-access-* from 2024-08-04T11:00:00.000Z to 2024-08-04T12:00:00.000Z: 11 requests\n"), "{text}");
    let json = serde_json::to_value(&answers).unwrap();
    assert_eq!(json["schema"], "loadgen-analytics/1");
    assert_eq!(
        serde_json::from_value::<DashboardAnswers>(json).unwrap(),
        answers
    );
    server.stop().await;
}

fn requests_errors_and_latency_per_service(answers: &DashboardAnswers) {
    let services: Vec<(&str, u64, u64, f64)> = answers
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.requests, s.errors, s.error_rate))
        .collect();
    assert_eq!(
        services,
        [
            ("order", 6, 4, 4.0 / 6.0),
            ("inventory", 3, 2, 2.0 / 3.0),
            ("payment", 2, 1, 0.5)
        ]
    );
    // order's durations: 2, 3, 80, 120, 300, 900 ms; payment's: 40, 60.
    let order = &answers.services[0];
    assert!(between(order.p50_ms, 80.0, 120.0), "{order:?}");
    assert!(between(order.p99_ms, 300.0, 900.0), "{order:?}");
    assert!(between(answers.services[2].p50_ms, 40.0, 60.0));
}

fn status_classes_per_minute(answers: &DashboardAnswers) {
    let minute = |time: &str, classes: &[(&str, u64)]| ClassBucket {
        time: format!("2024-08-04T{time}.000Z"),
        epoch_ms: at(&format!("2024-08-04T{time}Z")).timestamp_millis(),
        requests: classes.iter().map(|(_, n)| n).sum(),
        classes: classes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
    };
    assert_eq!(
        answers.status_classes,
        [
            minute("11:28:00", &[("2xx", 4)]),
            minute("11:29:00", &[("4xx", 3), ("5xx", 1)]),
            minute("11:30:00", &[("4xx", 2), ("5xx", 1)]),
        ]
    );
}

fn paths_and_slowest_requests(answers: &DashboardAnswers) {
    let paths: Vec<(&str, u64)> = answers
        .top_paths
        .iter()
        .map(|p| (p.path.as_str(), p.requests))
        .collect();
    assert_eq!(
        paths,
        [("/orders", 6), ("/reservations", 3), ("/charge", 2)]
    );
    assert!(between(answers.top_paths[0].p99_ms, 300.0, 900.0));

    let slowest: Vec<(Option<&str>, Option<u64>, Option<u16>)> = answers
        .slowest
        .iter()
        .map(|r| (r.path.as_deref(), r.duration_ms, r.status))
        .collect();
    assert_eq!(
        slowest,
        [
            (Some("/orders"), Some(900), Some(502)),
            (Some("/orders"), Some(300), Some(402)),
            (Some("/orders"), Some(120), Some(201)),
        ]
    );
    let first = &answers.slowest[0];
    assert_eq!(
        (
            first.time.as_deref(),
            first.service.as_deref(),
            first.method.as_deref()
        ),
        (Some("2024-08-04T11:29:05Z"), Some("order"), Some("POST"))
    );
    assert_eq!(first.caller_role.as_deref(), Some("loadgen"));
}

fn denials_by_principal_and_reason(answers: &DashboardAnswers) {
    let reasons = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
    };
    assert_eq!(answers.denials.total, 4);
    assert_eq!(
        answers.denials.by_principal,
        [
            PrincipalDenials {
                principal: INTRUDER.into(),
                denials: 2,
                reasons: reasons(&[(NO_POLICY, 2)])
            },
            PrincipalDenials {
                principal: STALE.into(),
                denials: 1,
                reasons: reasons(&[("SignatureExpired", 1)])
            },
        ]
    );
    assert_eq!(
        answers.denials.other, 1,
        "the unsigned caller has no principal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_by_service_and_status_cover_every_document() {
    let server = start(Auth::default()).await;
    let client = AnalyticsClient::new(&server.url(), SearchAuth::None).unwrap();
    load(&client).await;
    let counts = client.counts_by_service_and_status(PATTERN).await.unwrap();
    let expected: BTreeMap<(String, u16), u64> = [
        ("inventory", 200, 1),
        ("inventory", 403, 2),
        ("order", 200, 1),
        ("order", 201, 2),
        ("order", 402, 1),
        ("order", 403, 2),
        ("order", 502, 1),
        ("payment", 200, 1),
        ("payment", 503, 1),
    ]
    .into_iter()
    .map(|(service, status, n)| ((service.to_owned(), status), n))
    .collect();
    assert_eq!(counts, expected);
    // A search of the caller's own, and a question the engine refuses, named.
    let answer = client
        .search(
            PATTERN,
            &json!({"size": 0, "query": {"term": {"service": "payment"}}}),
        )
        .await
        .unwrap();
    assert_eq!(answer["hits"]["total"]["value"], 2);
    let refused = client
        .search(
            PATTERN,
            &json!({"aggs": {"x": {"terms": {"field": "requestPath"}}}}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, AnalyticsError::Refused { status: 400, reason, .. } if reason.starts_with("illegal_argument_exception: Text fields")),
        "{refused}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_sent_and_a_wrong_password_is_named() {
    let server = start(Auth {
        basic: Some(("admin".into(), "local-password".into())),
        sigv4: None,
    })
    .await;
    let basic = |password: &str| SearchAuth::Basic {
        user: "admin".into(),
        password: password.into(),
    };
    let client = AnalyticsClient::new(&server.url(), basic("local-password")).unwrap();
    load(&client).await;
    assert_eq!(client.count(PATTERN).await.unwrap(), 12);
    let wrong = AnalyticsClient::new(&server.url(), basic("wrong")).unwrap();
    assert_eq!(
        wrong.count(PATTERN).await.unwrap_err().to_string(),
        "the search endpoint refused the credentials (401): Unauthorized"
    );
    let anonymous = AnalyticsClient::new(&server.url(), SearchAuth::None).unwrap();
    let error = anonymous
        .dashboard(PATTERN, &window(), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(error, AnalyticsError::Unauthorized { .. }),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_signs_every_request_and_its_body() {
    let keys = HashMap::from([(
        ACCESS_KEY.to_owned(),
        PrincipalKey {
            principal: "arn:aws:iam::123467890123:role/dashboards".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET.into(),
        },
    )]);
    let server = start(Auth {
        basic: None,
        sigv4: Some(Verifier::new(
            keys,
            "ap-southeast-2",
            SigningRules::opensearch(),
        )),
    })
    .await;
    let signed = |secret: &str| SearchAuth::SigV4 {
        credentials: SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY, secret, None, None, "test",
        )),
        region: "ap-southeast-2".into(),
    };
    let client = AnalyticsClient::new(&server.url(), signed(SECRET)).unwrap();
    load(&client).await;
    let answers = client.dashboard(PATTERN, &window(), 3).await.unwrap();
    assert_eq!((answers.requests, answers.denials.total), (11, 4));
    let forged = AnalyticsClient::new(&server.url(), signed("not-the-secret")).unwrap();
    assert_eq!(
        forged.count(PATTERN).await.unwrap_err().to_string(),
        "the search endpoint denied access (403): The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    );
    let unsigned = AnalyticsClient::new(&server.url(), SearchAuth::None).unwrap();
    let error = unsigned.count(PATTERN).await.unwrap_err();
    assert!(matches!(error, AnalyticsError::Forbidden { .. }), "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoints_and_unserved_apis_are_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}");
    let client = AnalyticsClient::new(&url, SearchAuth::None).unwrap();
    let error = client.count(PATTERN).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("cannot reach the search endpoint {url}: ")),
        "{error}"
    );
    // The local engine serves no security plugin: --firehose-role-arn is for a domain.
    let server = start(Auth::default()).await;
    let client = AnalyticsClient::new(&server.url(), SearchAuth::None).unwrap();
    let error = client
        .setup(Some("arn:aws:iam::123467890123:role/firehose"), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("security role: refused with 400: illegal_argument_exception: no handler found for uri [/_plugins/_security/api/roles/lattice_access_writer]"),
        "{error}"
    );
    let bad_arn = client.setup(Some("firehose"), &[]).await.unwrap_err();
    assert!(
        matches!(bad_arn, AnalyticsError::BadRoleArn(_)),
        "{bad_arn}"
    );
    let bad_arn = client
        .setup(None, &["arn:aws:iam::123467890123:role/order", "order"])
        .await
        .unwrap_err();
    assert!(
        matches!(bad_arn, AnalyticsError::BadRoleArn(_)),
        "{bad_arn}"
    );
    // The telemetry roles get their own writer role, on lambda-*.
    let error = client
        .setup(None, &["arn:aws:iam::123467890123:role/order"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/_plugins/_security/api/roles/lambda_telemetry_writer"),
        "{error}"
    );
    server.stop().await;
}
