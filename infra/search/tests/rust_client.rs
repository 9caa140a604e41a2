//! Clients nobody here wrote, over HTTP: the official `opensearch` Rust crate (2.4) creates a
//! template, bulk-indexes access-log entries, searches and aggregates, with exact hits, totals and
//! aggregation values asserted; its SigV4 signer (`aws-auth`, service `es`) and HTTP basic auth
//! are checked against the engine's verification, and a body over `http.max_content_length` is
//! refused with 413.

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials as AwsCredentials;
use local_search::{Auth, SearchConfig, SearchServer};
use opensearch::auth::Credentials;
use opensearch::http::request::JsonBody;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::Url;
use opensearch::indices::IndicesPutIndexTemplateParts;
use opensearch::params::Refresh;
use opensearch::{BulkParts, OpenSearch, SearchParts};
use serde_json::{json, Value};
use sigv4_verify::{PrincipalKey, SigningRules, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACCESS_KEY: &str = "AKIDLOCALSEARCH00001";
const SECRET: &str = "local-search-secret-key-for-tests-only";

async fn start(auth: Auth) -> SearchServer {
    SearchServer::start(SearchConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: None,
        auth,
    })
    .await
    .unwrap()
}

fn client(server: &SearchServer, credentials: Option<Credentials>) -> OpenSearch {
    let pool = SingleNodeConnectionPool::new(Url::parse(&server.url()).unwrap());
    let mut builder = TransportBuilder::new(pool).disable_proxy();
    if let Some(credentials) = credentials {
        builder = builder.auth(credentials);
    }
    OpenSearch::new(builder.build().unwrap())
}

fn sigv4(secret: &str) -> Credentials {
    let provider =
        SharedCredentialsProvider::new(AwsCredentials::new(ACCESS_KEY, secret, None, None, "test"));
    Credentials::AwsSigV4(provider, aws_types::region::Region::new("us-east-1"))
}

fn entry(service: &str, code: u16, duration: u64, second: u32) -> Value {
    json!({
        "serviceName": service, "responseCode": code, "duration": duration,
        "startTime": format!("2026-12-01T10:00:{second:02}Z"), "requestMethod": "POST",
        "targetIpPort": if code == 403 { "-".to_owned() } else { "10.0.0.7:443".to_owned() }
    })
}

async fn load(client: &OpenSearch) {
    let template = client
        .indices()
        .put_index_template(IndicesPutIndexTemplateParts::Name("lattice-access"))
        .body(json!({
            "index_patterns": ["lattice-access-*"],
            "template": {"mappings": {"properties": {
                "serviceName": {"type": "keyword"}, "responseCode": {"type": "integer"},
                "duration": {"type": "long"}, "startTime": {"type": "date"},
                "requestMethod": {"type": "keyword"}, "targetIpPort": {"type": "keyword"}
            }}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(template.status_code().as_u16(), 200);
    let mut body: Vec<JsonBody<Value>> = Vec::new();
    let docs = [
        entry("order", 200, 40, 1),
        entry("order", 200, 60, 2),
        entry("order", 500, 300, 3),
        entry("payment", 200, 10, 4),
        entry("payment", 403, 2, 5),
    ];
    for (i, doc) in docs.into_iter().enumerate() {
        body.push(json!({"index": {"_id": format!("d{i}")}}).into());
        body.push(doc.into());
    }
    let response = client
        .bulk(BulkParts::Index("lattice-access-2026.12.01"))
        .body(body)
        .refresh(Refresh::True)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status_code().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["errors"], json!(false), "{answer}");
    assert_eq!(answer["items"].as_array().unwrap().len(), 5);
    assert_eq!(answer["items"][4]["index"]["result"], "created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opensearch_crate_indexes_searches_and_aggregates() {
    let server = start(Auth::default()).await;
    let client = client(&server, None);
    load(&client).await;
    let response = client
        .search(SearchParts::Index(&["lattice-access-*"]))
        .body(json!({
            "query": {"bool": {"filter": [{"term": {"serviceName": "order"}}, {"range": {"startTime": {"gte": "2026-12-01T10:00:02Z"}}}]}},
            "sort": [{"duration": "desc"}],
            "aggs": {
                "by_service": {"terms": {"field": "serviceName"}, "aggs": {"slowest": {"max": {"field": "duration"}}}},
                "denied": {"filter": {"term": {"targetIpPort": "-"}}}
            }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status_code().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["hits"]["total"], json!({"value": 2, "relation": "eq"}));
    let ids: Vec<&str> = body["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d2", "d1"]);
    assert_eq!(body["hits"]["hits"][0]["sort"], json!([300]));
    assert_eq!(
        body["aggregations"]["by_service"]["buckets"],
        json!([
            {"key": "order", "doc_count": 2, "slowest": {"value": 300.0}}
        ])
    );
    assert_eq!(body["aggregations"]["denied"], json!({"doc_count": 0}));

    // The crate reads OpenSearch's error body into its own error type.
    let missing = client
        .search(SearchParts::Index(&["nope"]))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status_code().as_u16(), 404);
    let exception = missing.exception().await.unwrap().unwrap();
    assert_eq!(exception.error().ty(), Some("index_not_found_exception"));
    assert_eq!(exception.error().reason(), Some("no such index [nope]"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_from_the_crates_signer_is_verified() {
    let keys = HashMap::from([(
        ACCESS_KEY.to_owned(),
        PrincipalKey {
            principal: "arn:aws:iam::123456789012:role/analytics".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET.into(),
        },
    )]);
    let auth = Auth {
        basic: None,
        sigv4: Some(Verifier::new(keys, "us-east-1", SigningRules::opensearch())),
    };
    let server = start(auth).await;
    // Signed, with a body (the payload hash is checked against the body).
    load(&client(&server, Some(sigv4(SECRET)))).await;
    let count = client(&server, Some(sigv4(SECRET)))
        .count(opensearch::CountParts::Index(&[
            "lattice-access-2026.12.01",
        ]))
        .body(json!({"query": {"term": {"serviceName": "payment"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(count.json::<Value>().await.unwrap()["count"], 2);
    // A wrong secret and no signature are refused as Amazon OpenSearch Service refuses them.
    let forged = client(&server, Some(sigv4("not-the-secret")))
        .info()
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status_code().as_u16(), 403);
    assert_eq!(
        forged.json::<Value>().await.unwrap(),
        json!({"message": "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."})
    );
    let anonymous = client(&server, None).info().send().await.unwrap();
    assert_eq!(anonymous.status_code().as_u16(), 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_the_content_length_limit() {
    let server = start(Auth {
        basic: Some(("admin".into(), "local-password".into())),
        sigv4: None,
    })
    .await;
    let good = client(
        &server,
        Some(Credentials::Basic("admin".into(), "local-password".into())),
    );
    let info: Value = good.info().send().await.unwrap().json().await.unwrap();
    assert_eq!(info["version"]["distribution"], "opensearch");
    let bad = client(
        &server,
        Some(Credentials::Basic("admin".into(), "wrong".into())),
    );
    assert_eq!(bad.info().send().await.unwrap().status_code().as_u16(), 401);

    // A declared body over 100 MB is refused before it is read.
    let mut stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    stream
        .write_all(b"POST /_bulk HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46bG9jYWwtcGFzc3dvcmQ=\r\nContent-Type: application/x-ndjson\r\nContent-Length: 104857601\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    let text = String::from_utf8_lossy(&buffer[..read]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("\"type\":\"content_too_long_exception\""),
        "{text}"
    );
    server.stop().await;
}
