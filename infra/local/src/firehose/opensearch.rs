//! The stream's OpenSearch destination: `_bulk` requests to the search engine's REST endpoint, as
//! Firehose sends them to a domain (one record = one document, the `index` action, a
//! Firehose-generated `_id`, the UTC day appended to the index name for `OneDay` rotation).
//!
//! A `_bulk` answer is 200 even when items failed, so each item's status is read. Items refused
//! with 429 or 5xx, and whole requests that fail to connect or answer 429/5xx, are retried with
//! backoff until the retry duration is spent (`RetryOptions.DurationInSeconds`); then, and at once
//! for any other refusal (a document the mapping rejects), the documents go to the backup
//! bucket's failed-documents folder.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use sigv4_verify::PrincipalKey;

/// One document to index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// `_id` (Firehose-generated, from the record id, so a retried request overwrites).
    pub id: String,
    /// When its record reached the stream (picks the day's index).
    pub arrival_ms: u64,
    /// The document's JSON.
    pub body: Vec<u8>,
}

/// A document that could not be indexed, as written to the failed-documents folder.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedDocument {
    /// The document.
    pub document: Document,
    /// The index it was meant for.
    pub index: String,
    /// Why (the item's error type, `OS.ConnectionFailed`, or an HTTP status).
    pub error_code: String,
    /// The error as OpenSearch (or the connection) gave it.
    pub error_message: String,
    /// Requests tried.
    pub attempts: u32,
    /// When the last attempt ended, epoch ms.
    pub ended_ms: u64,
}

impl FailedDocument {
    /// Firehose's failed-document record (facts: `{attemptsMade, arrivalTimestamp, errorCode,
    /// errorMessage, attemptEndingTimestamp, esDocumentId, esIndexName, esTypeName, rawData}`).
    pub fn to_record(&self) -> Value {
        json!({
            "attemptsMade": self.attempts,
            "arrivalTimestamp": self.document.arrival_ms,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "attemptEndingTimestamp": self.ended_ms,
            "esDocumentId": self.document.id,
            "esIndexName": self.index,
            "esTypeName": "",
            "rawData": base64::engine::general_purpose::STANDARD.encode(&self.document.body),
        })
    }
}

/// Where and how documents are delivered.
#[derive(Clone, Debug)]
pub struct OpenSearchDestination {
    client: reqwest::Client,
    /// The engine's endpoint (`http://127.0.0.1:9200`).
    pub url: String,
    /// How requests authenticate.
    pub auth: EngineAuth,
    /// `IndexName`; the day is appended.
    pub index_name: String,
    /// `RetryOptions.DurationInSeconds`.
    pub retry_duration: Duration,
}

/// How requests to the engine authenticate.
#[derive(Clone, Debug, Default)]
pub struct EngineAuth {
    /// HTTP basic credentials.
    pub basic: Option<(String, String)>,
    /// SigV4 (`es`) as this principal in this region (Firehose signs as its role).
    pub sigv4: Option<(PrincipalKey, String)>,
}

/// A request to the engine with `auth` applied.
pub fn signed_request(
    method: http::Method,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    auth: &EngineAuth,
) -> Result<reqwest::Request, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("host", uri.authority().map_or("", |a| a.as_str()))
        .header("content-type", content_type)
        .body(body)
        .map_err(|e| e.to_string())?;
    if let Some((user, password)) = &auth.basic {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let value =
            http::HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| e.to_string())?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
    }
    if let Some((key, region)) = &auth.sigv4 {
        sign_es(&mut request, key, region)?;
    }
    reqwest::Request::try_from(request).map_err(|e| e.to_string())
}

/// Signs `request` for OpenSearch Service (`es`) as `key` in `region`, the payload's hash
/// included (`lattice_xray::signing`, as every caller signs).
fn sign_es(
    request: &mut http::Request<Vec<u8>>,
    key: &PrincipalKey,
    region: &str,
) -> Result<(), String> {
    let identity = aws_credential_types::Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "local-firehose",
    )
    .into();
    let body = request.body().clone();
    lattice_xray::signing::sign_for_opensearch(
        request,
        &body,
        &identity,
        region,
        std::time::SystemTime::now(),
    )
    .map_err(|e| e.to_string())
}

/// What one delivery did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivered {
    /// Documents indexed.
    pub indexed: u64,
    /// Documents that were not.
    pub failed: Vec<FailedDocument>,
    /// `_bulk` requests sent.
    pub requests: u32,
}

enum ItemOutcome {
    Indexed,
    Retry(String, String),
    Refused(String, String),
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

impl OpenSearchDestination {
    /// A destination at `url`.
    pub fn new(url: &str, index_name: &str, retry_duration: Duration) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            url: url.trim_end_matches('/').to_owned(),
            auth: EngineAuth::default(),
            index_name: index_name.to_owned(),
            retry_duration,
        }
    }

    /// The index a document arriving at `arrival_ms` goes to (`OneDay` rotation, UTC).
    pub fn index_for(&self, arrival_ms: u64) -> String {
        let day = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(arrival_ms),
        )
        .to_string();
        format!(
            "{}-{}",
            self.index_name,
            day.get(..10).unwrap_or("1970-01-01")
        )
    }

    fn bulk_body(&self, documents: &[Document]) -> Vec<u8> {
        let mut body = Vec::new();
        for document in documents {
            let action = json!({"index": {"_index": self.index_for(document.arrival_ms), "_id": document.id}});
            body.extend_from_slice(action.to_string().as_bytes());
            body.push(b'\n');
            body.extend_from_slice(&document.body);
            body.push(b'\n');
        }
        body
    }

    /// One `_bulk` request: an outcome per document, in order.
    fn bulk_request(&self, documents: &[Document]) -> Result<reqwest::Request, String> {
        let url = format!("{}/_bulk", self.url);
        signed_request(
            http::Method::POST,
            &url,
            "application/x-ndjson",
            self.bulk_body(documents),
            &self.auth,
        )
    }

    async fn send(&self, documents: &[Document]) -> Vec<ItemOutcome> {
        let all = |outcome: fn(String, String) -> ItemOutcome, code: String, message: String| {
            documents
                .iter()
                .map(|_| outcome(code.clone(), message.clone()))
                .collect()
        };
        let request = match self.bulk_request(documents) {
            Ok(request) => request,
            Err(e) => return all(ItemOutcome::Refused, "OS.InvalidRequest".into(), e),
        };
        let response = match self.client.execute(request).await {
            Ok(response) => response,
            Err(e) => {
                return all(
                    ItemOutcome::Retry,
                    "OS.ConnectionFailed".into(),
                    e.to_string(),
                )
            }
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 200 {
            let outcome = if retryable(status) {
                ItemOutcome::Retry
            } else {
                ItemOutcome::Refused
            };
            return all(outcome, status.to_string(), text);
        }
        let items = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default();
        documents
            .iter()
            .enumerate()
            .map(|(i, _)| item_outcome(items.get(i)))
            .collect()
    }

    /// Delivers `documents`, retrying within the retry duration.
    pub async fn deliver(&self, documents: Vec<Document>) -> Delivered {
        let started = Instant::now();
        let mut delivered = Delivered::default();
        let mut pending = documents;
        let mut backoff = Duration::from_millis(200);
        while !pending.is_empty() {
            delivered.requests += 1;
            let outcomes = self.send(&pending).await;
            let out_of_time = started.elapsed() + backoff > self.retry_duration;
            let mut retry = Vec::new();
            for (document, outcome) in pending.into_iter().zip(outcomes) {
                let (code, message) = match outcome {
                    ItemOutcome::Indexed => {
                        delivered.indexed += 1;
                        continue;
                    }
                    ItemOutcome::Retry(code, message) if !out_of_time => {
                        retry.push((document, code, message));
                        continue;
                    }
                    ItemOutcome::Retry(code, message) | ItemOutcome::Refused(code, message) => {
                        (code, message)
                    }
                };
                delivered.failed.push(FailedDocument {
                    index: self.index_for(document.arrival_ms),
                    document,
                    error_code: code,
                    error_message: message,
                    attempts: delivered.requests,
                    ended_ms: epoch_ms(),
                });
            }
            pending = retry.into_iter().map(|(document, _, _)| document).collect();
            if !pending.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        delivered
    }
}

fn item_outcome(item: Option<&Value>) -> ItemOutcome {
    let Some(result) = item
        .and_then(|i| i.as_object())
        .and_then(|o| o.values().next())
    else {
        return ItemOutcome::Retry(
            "OS.MissingItem".into(),
            "the _bulk answer has no item for this document".into(),
        );
    };
    let status = result["status"].as_u64().unwrap_or(0) as u16;
    if (200..300).contains(&status) {
        return ItemOutcome::Indexed;
    }
    let error = &result["error"];
    let code = error["type"]
        .as_str()
        .map_or_else(|| status.to_string(), str::to_owned);
    if retryable(status) {
        ItemOutcome::Retry(code, error.to_string())
    } else {
        ItemOutcome::Refused(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_go_to_the_day_s_index_with_their_ids() {
        let destination = OpenSearchDestination::new("http://x/", "lattice-access", Duration::ZERO);
        assert_eq!(
            destination.index_for(1_722_770_920_750),
            "lattice-access-2024-08-04"
        );
        let body = destination.bulk_body(&[Document {
            id: "r1".into(),
            arrival_ms: 0,
            body: b"{\"a\":1}".to_vec(),
        }]);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"index\":{\"_id\":\"r1\",\"_index\":\"lattice-access-1970-01-01\"}}\n{\"a\":1}\n"
        );
    }

    #[test]
    fn items_are_judged_by_their_own_status() {
        let indexed = json!({"index": {"status": 201}});
        let rejected = json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "x"}}});
        let busy =
            json!({"index": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}});
        assert!(matches!(item_outcome(Some(&indexed)), ItemOutcome::Indexed));
        assert!(
            matches!(item_outcome(Some(&rejected)), ItemOutcome::Refused(code, _) if code == "mapper_parsing_exception")
        );
        assert!(
            matches!(item_outcome(Some(&busy)), ItemOutcome::Retry(code, _) if code == "es_rejected_execution_exception")
        );
        assert!(matches!(item_outcome(None), ItemOutcome::Retry(..)));
    }

    #[tokio::test]
    async fn an_unreachable_engine_is_retried_then_every_document_fails() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let destination = OpenSearchDestination::new(&url, "i", Duration::from_millis(700));
        let documents = (0..3)
            .map(|i| Document {
                id: format!("d{i}"),
                arrival_ms: 0,
                body: b"{}".to_vec(),
            })
            .collect();
        let delivered = destination.deliver(documents).await;
        assert_eq!(delivered.indexed, 0);
        assert_eq!(delivered.failed.len(), 3);
        assert!(delivered.requests >= 2, "retried: {}", delivered.requests);
        let record = delivered.failed[0].to_record();
        assert_eq!(record["errorCode"], "OS.ConnectionFailed");
        assert_eq!(record["esDocumentId"], "d0");
        assert_eq!(record["esIndexName"], "i-1970-01-01");
        assert_eq!(record["rawData"], "e30=");
        assert_eq!(record["attemptsMade"], delivered.requests);
    }
}
