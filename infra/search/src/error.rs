//! OpenSearch's error shape: `{"error":{"root_cause":[…],"type":…,"reason":…},"status":N}`.
//!
//! Every failure the engine answers is an [`ApiError`]: the exception type OpenSearch would name,
//! its reason text, the HTTP status and the extra fields OpenSearch adds for that type (`index`,
//! `resource.id`, `line`, …). The same value serializes as the top-level error body and, inside
//! `_bulk` items, as the per-item `error`.

use serde_json::{json, Map, Value};

/// One OpenSearch exception.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// OpenSearch's exception type, e.g. `mapper_parsing_exception`.
    pub kind: String,
    /// The reason text.
    pub reason: String,
    /// Extra fields of the exception (`index`, `index_uuid`, `line`, …), in order.
    pub extra: Map<String, Value>,
    /// The exception underneath, when OpenSearch names one (`caused_by`).
    pub caused_by: Option<Box<ApiError>>,
}

/// The engine's result type.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An exception with no extra fields.
    pub fn new(status: u16, kind: &str, reason: impl Into<String>) -> Self {
        Self {
            status,
            kind: kind.to_owned(),
            reason: reason.into(),
            extra: Map::new(),
            caused_by: None,
        }
    }

    /// Adds an extra field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `caused_by`.
    pub fn caused_by(mut self, cause: ApiError) -> Self {
        self.caused_by = Some(Box::new(cause));
        self
    }

    /// 400 `illegal_argument_exception`.
    pub fn illegal_argument(reason: impl Into<String>) -> Self {
        Self::new(400, "illegal_argument_exception", reason)
    }

    /// 400 `parsing_exception` (a query or body the DSL does not accept).
    pub fn parsing(reason: impl Into<String>) -> Self {
        Self::new(400, "parsing_exception", reason)
    }

    /// 404 `index_not_found_exception` for `index`.
    pub fn index_not_found(index: &str) -> Self {
        Self::new(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        )
        .with("index", index)
        .with("resource.id", index)
        .with("resource.type", "index_or_alias")
        .with("index_uuid", "_na_")
    }

    /// 400 `resource_already_exists_exception` for an index created twice.
    pub fn index_exists(index: &str, uuid: &str) -> Self {
        Self::new(
            400,
            "resource_already_exists_exception",
            format!("index [{index}/{uuid}] already exists"),
        )
        .with("index", index)
        .with("index_uuid", uuid)
    }

    /// 500 for a failure of the engine itself (disk, tantivy).
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(500, "exception", reason)
    }

    /// The exception object: `{type, reason, …extra, caused_by?}`.
    pub fn cause_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("type".into(), Value::String(self.kind.clone()));
        object.insert("reason".into(), Value::String(self.reason.clone()));
        for (key, value) in &self.extra {
            object.insert(key.clone(), value.clone());
        }
        if let Some(cause) = &self.caused_by {
            object.insert("caused_by".into(), cause.cause_json());
        }
        Value::Object(object)
    }

    /// The top-level error body.
    pub fn body(&self) -> Value {
        let mut root_cause = self.cause_json();
        if let Some(object) = root_cause.as_object_mut() {
            object.remove("caused_by");
        }
        let mut error = self.cause_json();
        if let Some(object) = error.as_object_mut() {
            object.insert("root_cause".into(), json!([root_cause]));
            // OpenSearch prints root_cause first.
            let mut ordered = Map::new();
            ordered.insert("root_cause".into(), object["root_cause"].clone());
            for (key, value) in object.iter() {
                if key != "root_cause" {
                    ordered.insert(key.clone(), value.clone());
                }
            }
            *object = ordered;
        }
        json!({"error": error, "status": self.status})
    }
}

impl From<tantivy::TantivyError> for ApiError {
    fn from(error: tantivy::TantivyError) -> Self {
        ApiError::internal(format!("search engine: {error}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.reason)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_not_found_has_opensearchs_shape() {
        assert_eq!(
            ApiError::index_not_found("logs").body(),
            json!({"error": {
                "root_cause": [{"type": "index_not_found_exception", "reason": "no such index [logs]",
                    "index": "logs", "resource.id": "logs", "resource.type": "index_or_alias",
                    "index_uuid": "_na_"}],
                "type": "index_not_found_exception", "reason": "no such index [logs]",
                "index": "logs", "resource.id": "logs", "resource.type": "index_or_alias",
                "index_uuid": "_na_"},
                "status": 404})
        );
    }

    #[test]
    fn caused_by_stays_out_of_root_cause() {
        let error = ApiError::new(400, "mapper_parsing_exception", "failed")
            .caused_by(ApiError::illegal_argument("For input string: \"-\""));
        let body = error.body();
        assert_eq!(body["error"]["root_cause"][0].get("caused_by"), None);
        assert_eq!(
            body["error"]["caused_by"],
            json!({"type": "illegal_argument_exception", "reason": "For input string: \"-\""})
        );
    }
}
