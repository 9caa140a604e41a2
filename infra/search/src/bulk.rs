//! `_bulk` and the single-document writes: NDJSON read and checked as a whole first (a malformed
//! action line fails the request with 400 naming the line, before anything is written), then each
//! item executed on its own, so failing items carry their own error and the others are indexed,
//! as OpenSearch answers it: `{took, errors, items:[{<action>: {…, status}}]}`.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::engine::Engine;
use crate::error::{ApiError, ApiResult};
use crate::store::{SourceDocument, WriteKind, WriteOutcome};

/// `?refresh=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Return at once.
    No,
    /// Refresh the touched indices before answering (`true`, or empty).
    Now,
    /// Answer once the writes are searchable (`wait_for`); done here by refreshing.
    WaitFor,
}

impl Refresh {
    /// Reads the parameter.
    pub fn parse(value: Option<&str>) -> ApiResult<Self> {
        match value {
            None | Some("false") => Ok(Self::No),
            Some("true") | Some("") => Ok(Self::Now),
            Some("wait_for") => Ok(Self::WaitFor),
            Some(other) => Err(ApiError::illegal_argument(format!(
                "Unknown value for refresh: [{other}]."
            ))),
        }
    }
}

/// A source line: the parsed object and its text, or why it did not parse.
type SourceLine<'b> = Result<(Map<String, Value>, &'b str), String>;

/// One item of a bulk request.
#[derive(Debug)]
struct Item<'b> {
    kind: WriteKind,
    index: String,
    id: Option<String>,
    /// The source line: parsed (with its text), or the parse error.
    source: Option<SourceLine<'b>>,
}

fn action_name(kind: WriteKind) -> &'static str {
    match kind {
        WriteKind::Index => "index",
        WriteKind::Create => "create",
        WriteKind::Delete => "delete",
    }
}

fn malformed(line: usize, what: String) -> ApiError {
    ApiError::illegal_argument(format!("Malformed action/metadata line [{line}], {what}"))
}

fn parse_items<'b>(body: &'b [u8], default_index: Option<&str>) -> ApiResult<Vec<Item<'b>>> {
    if !body.is_empty() && !body.ends_with(b"\n") {
        return Err(ApiError::illegal_argument(
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::parsing(format!("bulk body is not UTF-8: {e}")))?;
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .peekable();
    let mut items = Vec::new();
    while let Some((number, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let action: Value = serde_json::from_str(line).map_err(|e| {
            malformed(
                number,
                format!("expected START_OBJECT but found a JSON error: {e}"),
            )
        })?;
        let object = action
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(|| malformed(number, "expected START_OBJECT with one action".into()))?;
        let (name, meta) = object.iter().next().expect("one action");
        let kind = match name.as_str() {
            "index" => WriteKind::Index,
            "create" => WriteKind::Create,
            "delete" => WriteKind::Delete,
            "update" => {
                return Err(ApiError::illegal_argument(format!(
                    "Malformed action/metadata line [{number}], the [update] action is not served by this engine (index, create and delete are)"
                )))
            }
            other => {
                return Err(malformed(
                    number,
                    format!("expected field [create], [delete], [index] or [update] but found [{other}]"),
                ))
            }
        };
        let meta = meta
            .as_object()
            .ok_or_else(|| malformed(number, "expected START_OBJECT after the action".into()))?;
        let mut index = default_index.map(str::to_owned);
        let mut id = None;
        for (key, value) in meta {
            let text = || match value {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(malformed(number, format!("[{key}] must be a string"))),
            };
            match key.as_str() {
                "_index" => index = Some(text()?),
                "_id" => id = Some(text()?),
                other => {
                    return Err(ApiError::illegal_argument(format!(
                        "Action/metadata line [{number}] contains an unknown parameter [{other}]"
                    )))
                }
            }
        }
        let index = index.ok_or_else(|| {
            ApiError::new(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;",
            )
        })?;
        if kind == WriteKind::Delete && id.is_none() {
            return Err(ApiError::new(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: id is missing;",
            ));
        }
        let source = if kind == WriteKind::Delete {
            None
        } else {
            let (_, line) = lines
                .next()
                .filter(|(_, l)| !l.trim().is_empty())
                .ok_or_else(|| {
                    ApiError::illegal_argument(format!(
                        "The bulk request's [{}] action on line [{number}] has no source line",
                        action_name(kind)
                    ))
                })?;
            Some(match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(object)) => Ok((object, line)),
                Ok(_) => Err("the document source must be a JSON object".to_owned()),
                Err(e) => Err(e.to_string()),
            })
        };
        items.push(Item {
            kind,
            index,
            id,
            source,
        });
    }
    Ok(items)
}

/// A write's success as an item (and as the `_doc` response).
pub fn outcome_json(
    index: &str,
    replicas: u32,
    outcome: &WriteOutcome,
    forced_refresh: bool,
) -> Value {
    let mut object = json!({
        "_index": index,
        "_id": outcome.id,
        "_version": outcome.version,
        "result": outcome.result,
        "_shards": {"total": replicas + 1, "successful": 1, "failed": 0},
        "_seq_no": outcome.seq_no,
        "_primary_term": 1,
        "status": outcome.status,
    });
    if forced_refresh {
        object["forced_refresh"] = json!(true);
    }
    object
}

fn execute(engine: &Engine, item: Item<'_>, touched: &mut BTreeSet<String>) -> (Value, bool) {
    let action = action_name(item.kind);
    let failure = |index: &str, id: Option<&str>, error: ApiError| {
        let mut object =
            json!({"_index": index, "status": error.status, "error": error.cause_json()});
        if let Some(id) = id {
            object["_id"] = json!(id);
        }
        (json!({ action: object }), true)
    };
    let source = match item.source {
        Some(Err(reason)) => {
            let error = ApiError::new(400, "mapper_parsing_exception", "failed to parse")
                .caused_by(ApiError::new(400, "json_parse_exception", reason));
            return failure(&item.index, item.id.as_deref(), error);
        }
        Some(Ok(source)) => Some(source),
        None => None,
    };
    let store = match item.kind {
        WriteKind::Delete => engine.index(&item.index),
        _ => engine.index_for_write(&item.index),
    };
    let store = match store {
        Ok(store) => store,
        Err(error) => return failure(&item.index, item.id.as_deref(), error),
    };
    let document = source.as_ref().map(|(fields, line)| SourceDocument {
        fields,
        raw: Some(line.as_bytes()),
    });
    match store.write(item.kind, item.id.as_deref(), document) {
        Ok(outcome) => {
            touched.insert(item.index.clone());
            let replicas = store.settings().number_of_replicas;
            (
                json!({ action: outcome_json(&item.index, replicas, &outcome, false) }),
                false,
            )
        }
        Err(error) => {
            let id = item.id.clone();
            failure(&item.index, id.as_deref(), error)
        }
    }
}

/// `POST [<index>/]_bulk`.
pub fn bulk(
    engine: &Engine,
    default_index: Option<&str>,
    body: &[u8],
    refresh: Refresh,
) -> ApiResult<Value> {
    let started = Instant::now();
    let items = parse_items(body, default_index)?;
    if items.is_empty() {
        return Err(ApiError::new(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ));
    }
    let mut touched = BTreeSet::new();
    let mut errors = false;
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        let (answer, failed) = execute(engine, item, &mut touched);
        errors |= failed;
        answers.push(answer);
    }
    if refresh != Refresh::No {
        for name in &touched {
            engine.index(name)?.refresh()?;
        }
        if refresh == Refresh::Now {
            for answer in answers.iter_mut() {
                if let Some(object) = answer.as_object_mut().and_then(|o| o.values_mut().next()) {
                    if object.get("error").is_none() {
                        object["forced_refresh"] = json!(true);
                    }
                }
            }
        }
    }
    Ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": answers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_named_before_anything_is_written() {
        let body = b"{\"index\":{\"_index\":\"a\"}}\n{\"x\":1}\n{\"upsert\":{}}\n{}\n";
        let error = parse_items(body, None).unwrap_err();
        assert_eq!(
            error.reason,
            "Malformed action/metadata line [3], expected field [create], [delete], [index] or [update] but found [upsert]"
        );
        let error = parse_items(b"{\"index\":{}}\n{}", None).unwrap_err();
        assert_eq!(
            error.reason,
            "The bulk request must be terminated by a newline [\\n]"
        );
        let error = parse_items(b"{\"index\":{}}\n{}\n", None).unwrap_err();
        assert_eq!(error.reason, "Validation Failed: 1: index is missing;");
        let error = parse_items(b"not json\n", Some("a")).unwrap_err();
        assert!(error
            .reason
            .starts_with("Malformed action/metadata line [1]"));
    }

    #[test]
    fn a_bad_source_line_fails_only_its_item() {
        let items = parse_items(
            b"{\"index\":{\"_id\":\"1\"}}\n{bad\n{\"delete\":{\"_id\":\"2\"}}\n",
            Some("a"),
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert!(matches!(items[0].source, Some(Err(_))));
        assert_eq!(items[1].kind, WriteKind::Delete);
    }
}
