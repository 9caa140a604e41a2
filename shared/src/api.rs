//! The JSON edge every service shares: reading a request body, and writing success and error
//! responses. Errors become `{"error": code, "message": …, "field"?: …}` with a status chosen in
//! one place; the segment's `cause` is taken from the same [`ApiError`] so the trace and the
//! response agree. Internal error text never reaches a body.

use http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::invocation::ErrorCause;

/// Largest request body a service accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most lines an order (and so a reservation) may hold.
pub const MAX_LINES: usize = 50;
/// Most units of one SKU per line.
pub const MAX_QUANTITY: u32 = 100;

/// Checks an order's or reservation's lines: 1–[`MAX_LINES`] of them, each with a SKU and
/// 1–[`MAX_QUANTITY`] units. Order and inventory apply the same rule, so it lives here once.
pub fn check_lines<'a>(
    lines: impl ExactSizeIterator<Item = (&'a str, u32)>,
) -> Result<(), ApiError> {
    if lines.len() == 0 || lines.len() > MAX_LINES {
        return Err(ApiError::invalid_field(
            "items",
            format!("items must hold 1-{MAX_LINES} lines"),
        ));
    }
    for (i, (sku, quantity)) in lines.enumerate() {
        if sku.trim().is_empty() {
            return Err(ApiError::invalid_field(
                format!("items[{i}].sku"),
                "sku must not be empty",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(ApiError::invalid_field(
                format!("items[{i}].quantity"),
                format!("quantity must be between 1 and {MAX_QUANTITY}"),
            ));
        }
    }
    Ok(())
}

/// An error answer: status, stable code, message, and the offending field when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message, safe to show a caller.
    pub message: String,
    /// JSON path of the offending field (`items[0].quantity`).
    pub field: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 naming the field at fault.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "validation_failed",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// 404 for a path the service does not serve.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}"),
        )
    }

    /// 405 for a known path with the wrong method.
    pub fn method_not_allowed(method: &http::Method, allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here; use {allowed}"),
        )
    }

    /// The response: JSON body plus the [`ErrorCause`] extension the tracing layer records.
    pub fn into_response(self) -> Response<Body> {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        };
        let mut response = json_response(self.status, &body);
        response.extensions_mut().insert(ErrorCause {
            kind: self.code.to_owned(),
            message: self.message,
        });
        response
    }
}

/// A JSON response with `content-type: application/json`.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    // Serializing our own plain structs cannot fail; fall back to an empty object if it ever did.
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The body's bytes, whatever form lambda_http decoded it into (base64 bodies arrive as Binary).
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// Parses a JSON request body: 415 unless `content-type` is JSON, 413 over [`MAX_BODY_BYTES`],
/// 400 naming the field for bad JSON, wrong types and unknown fields.
pub fn read_json<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let is_json = essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5 && essence.to_ascii_lowercase().ends_with("+json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "content-type must be application/json",
        ));
    }
    let bytes = body_bytes(request.body());
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "body is empty; expected a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Data => strip_position(&inner.to_string()),
            _ => format!(
                "body is not valid JSON ({})",
                strip_position(&inner.to_string())
            ),
        };
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            if inner.is_data() {
                "validation_failed"
            } else {
                "invalid_json"
            },
            message,
        );
        if inner.is_data() && path != "." {
            error.field = Some(path);
        }
        error
    })?;
    deserializer.end().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "trailing characters after the JSON value",
        )
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C"; callers get the field path instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}
