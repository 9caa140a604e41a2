//! The `_bulk` request body and what its answer means for each document.
//!
//! The body is NDJSON: `{"index":{"_index":…,"_id":…}}` and the document's source, one line
//! each, the source at the top level (the Python sample wrapped it under `doc`, so its mapping
//! never applied). `index` with our deterministic `_id` makes a resent document overwrite itself.
//! A request carries at most [`MAX_BULK_BYTES`], below OpenSearch Service's smallest
//! `http.max_content_length` (10 MiB), so no flush is refused whole with 413.
//!
//! The answer is judged item by item ([`judge`]): 2xx shipped, 429 and 5xx to retry, anything else
//! refused for good. The whole request is retried after 429, 5xx or an answer that does not account
//! for every document; any other status refuses all of its documents.

use serde::Deserialize;
use serde_json::Value;

use crate::documents::Document;

/// The `Content-Type` of a `_bulk` body.
pub const CONTENT_TYPE: &str = "application/x-ndjson";
/// The most bytes of one `_bulk` request (one document larger than this goes alone).
pub const MAX_BULK_BYTES: usize = 5 * 1024 * 1024;

/// The action line of `document`, with its newline.
pub fn action_line(document: &Document) -> String {
    let mut out = Vec::new();
    write_action(document, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn write_action(document: &Document, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    out.extend_from_slice(br#"{"index":{"_index":"#);
    let _ = serde_json::to_writer(&mut *out, &document.index);
    out.extend_from_slice(br#","_id":"#);
    let _ = serde_json::to_writer(&mut *out, &document.id);
    out.extend_from_slice(b"}}\n");
}

/// The bytes `document` adds to a body.
pub fn encoded_len(document: &Document) -> usize {
    // `{"index":{"_index":"","_id":""}}` and its newline are 33 bytes; our index names and
    // ids need no escaping.
    33 + document.index.len() + document.id.len() + document.source.len() + 1
}

/// The `_bulk` body of `documents`.
pub fn body(documents: &[Document]) -> Vec<u8> {
    let mut out = Vec::with_capacity(documents.iter().map(encoded_len).sum());
    for document in documents {
        write_action(document, &mut out);
        out.extend_from_slice(document.source.as_bytes());
        out.push(b'\n');
    }
    out
}

/// `documents` in order, in requests of at most `max_bytes` each.
pub fn split(documents: Vec<Document>, max_bytes: usize) -> Vec<Vec<Document>> {
    let mut requests = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for document in documents {
        let len = encoded_len(&document);
        if !current.is_empty() && bytes + len > max_bytes {
            requests.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += len;
        current.push(document);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    requests
}

/// What became of one document of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Indexed (2xx).
    Shipped,
    /// To send again (429, 5xx).
    Retry(u16),
    /// Refused for good, with the item's `error.type` when it gave one.
    Failed(u16, Option<String>),
}

/// What a whole `_bulk` answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// One outcome per document sent, in order.
    Items(Vec<ItemOutcome>),
    /// Send everything again: the status (0 when the answer was unusable) and why.
    Retry(u16, String),
    /// Every document refused for good with this status.
    Failed(u16),
}

#[derive(Deserialize)]
struct Answer {
    items: Vec<std::collections::HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

/// Whether an HTTP status is worth retrying.
pub fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// What the answer `status`/`body` to a `_bulk` of `sent` documents means.
pub fn judge(status: u16, body: &[u8], sent: usize) -> RequestOutcome {
    if retryable(status) {
        return RequestOutcome::Retry(status, format!("_bulk answered {status}"));
    }
    if !(200..300).contains(&status) {
        return RequestOutcome::Failed(status);
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return RequestOutcome::Retry(0, "_bulk answer is not a bulk response".into());
    };
    if answer.items.len() != sent {
        let got = answer.items.len();
        return RequestOutcome::Retry(0, format!("_bulk answered {got} items for {sent}"));
    }
    let outcomes = answer
        .items
        .into_iter()
        .map(|item| match item.into_values().next() {
            Some(item) => item_outcome(item),
            None => ItemOutcome::Retry(0),
        })
        .collect();
    RequestOutcome::Items(outcomes)
}

fn item_outcome(item: Item) -> ItemOutcome {
    match item.status {
        200..=299 => ItemOutcome::Shipped,
        status if retryable(status) => ItemOutcome::Retry(status),
        status => {
            let kind = item.error.as_ref().and_then(|error| match error {
                Value::String(text) => Some(text.clone()),
                other => other.get("type").and_then(Value::as_str).map(str::to_owned),
            });
            ItemOutcome::Failed(status, kind)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, source: &str) -> Document {
        Document {
            index: "lambda-function-2026-12-01".into(),
            id: id.into(),
            source: source.into(),
        }
    }

    #[test]
    fn the_body_is_an_action_and_a_source_per_document() {
        let docs = [
            doc("a1", r#"{"message":"x"}"#),
            doc("b2", r#"{"message":"y"}"#),
        ];
        let body = body(&docs);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "{\"index\":{\"_index\":\"lambda-function-2026-12-01\",\"_id\":\"a1\"}}\n{\"message\":\"x\"}\n\
             {\"index\":{\"_index\":\"lambda-function-2026-12-01\",\"_id\":\"b2\"}}\n{\"message\":\"y\"}\n"
        );
        assert_eq!(body.len(), docs.iter().map(encoded_len).sum::<usize>());
    }

    #[test]
    fn requests_are_split_by_size_in_order() {
        let docs: Vec<Document> = (0..5).map(|i| doc(&i.to_string(), "{}")).collect();
        let one = encoded_len(&docs[0]);
        let requests = split(docs, one * 2);
        let ids: Vec<Vec<&str>> = requests
            .iter()
            .map(|r| r.iter().map(|d| d.id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec!["0", "1"], vec!["2", "3"], vec!["4"]]);
        let big = vec![doc("big", &"x".repeat(100))];
        assert_eq!(split(big, 10).len(), 1, "an oversized document goes alone");
    }

    #[test]
    fn whole_request_statuses_are_judged() {
        assert!(matches!(judge(503, b"", 3), RequestOutcome::Retry(503, _)));
        assert!(matches!(judge(429, b"", 3), RequestOutcome::Retry(429, _)));
        assert_eq!(judge(403, b"{}", 3), RequestOutcome::Failed(403));
        assert_eq!(judge(413, b"", 3), RequestOutcome::Failed(413));
        assert!(matches!(
            judge(200, b"<html>", 3),
            RequestOutcome::Retry(0, _)
        ));
        let one_item = br#"{"took":1,"errors":false,"items":[{"index":{"status":201}}]}"#;
        assert!(matches!(
            judge(200, one_item, 2),
            RequestOutcome::Retry(0, _)
        ));
    }
}
