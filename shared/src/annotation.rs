//! Typed X-Ray annotations and namespaced metadata on the current (sub)segment.
//!
//! X-Ray indexes annotations for filter expressions: keys must match `^[A-Za-z0-9_]{1,500}$`,
//! values are strings (≤ 1,000 chars), numbers or booleans, and at most 50 are indexed per trace.
//! The opentelemetry-aws translator *rewrites* a bad key (`order-id` → `order_id`), which silently
//! merges keys; here a bad key is rejected before it reaches a span, counted, and logged once.
//!
//! Metadata is free JSON grouped by namespace. The translator can only write flat string/number
//! metadata, so a namespace's JSON is carried on a private span attribute
//! ([`METADATA_ATTRIBUTE_PREFIX`]) and spliced into the document by [`crate::export`].

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue, Value};

use crate::Error;

/// Span attribute prefix the translator turns into an annotation.
pub const ANNOTATION_ATTRIBUTE_PREFIX: &str = "annotation.";
/// Span attribute prefix for our namespaced metadata (ignored by the translator, read by export).
pub const METADATA_ATTRIBUTE_PREFIX: &str = "xray.metadata.";
/// Longest string annotation value X-Ray indexes.
pub const MAX_ANNOTATION_STRING_LEN: usize = 1000;

static REJECTED: AtomicU64 = AtomicU64::new(0);
static LOG_FIRST_REJECTION: Once = Once::new();

/// A key X-Ray accepts for an annotation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AnnotationKey(Cow<'static, str>);

const fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 500 {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_alphanumeric() || b == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

impl AnnotationKey {
    /// A key known at compile time; an invalid one fails the build when used in a `const`.
    pub const fn from_static(key: &'static str) -> Self {
        assert!(is_valid_key(key), "invalid X-Ray annotation key");
        Self(Cow::Borrowed(key))
    }

    /// A key built at run time.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        if is_valid_key(&key) {
            Ok(Self(Cow::Owned(key)))
        } else {
            Err(Error::InvalidAnnotationKey(key))
        }
    }

    /// The key as X-Ray will index it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Annotation names shared by every service, so one filter expression finds an order everywhere.
pub mod keys {
    use super::AnnotationKey;

    /// The order being processed.
    pub const ORDER_ID: AnnotationKey = AnnotationKey::from_static("order_id");
    /// Who placed it.
    pub const CUSTOMER_ID: AnnotationKey = AnnotationKey::from_static("customer_id");
    /// Number of line items.
    pub const ITEM_COUNT: AnnotationKey = AnnotationKey::from_static("item_count");
    /// Order total in the order's currency (a number, so `order_total > 100` works).
    pub const ORDER_TOTAL: AnnotationKey = AnnotationKey::from_static("order_total");
    /// approved | declined | fault | timeout | not_attempted.
    pub const PAYMENT_STATUS: AnnotationKey = AnnotationKey::from_static("payment_status");
    /// reserved | insufficient | released | fault | timeout.
    pub const INVENTORY_STATUS: AnnotationKey = AnnotationKey::from_static("inventory_status");
}

/// A value X-Ray can index.
#[derive(Clone, Debug, PartialEq)]
pub enum AnnotationValue {
    /// At most 1,000 characters; longer strings are truncated at a char boundary.
    String(String),
    /// Integral number.
    Int(i64),
    /// Floating-point number (finite).
    Float(f64),
    /// Boolean.
    Bool(bool),
}

impl From<&str> for AnnotationValue {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}
impl From<String> for AnnotationValue {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}
impl From<i64> for AnnotationValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<u32> for AnnotationValue {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}
impl From<usize> for AnnotationValue {
    fn from(v: usize) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for AnnotationValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<bool> for AnnotationValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl AnnotationValue {
    fn into_otel(self) -> Option<Value> {
        Some(match self {
            Self::String(mut s) => {
                if s.len() > MAX_ANNOTATION_STRING_LEN {
                    let mut cut = MAX_ANNOTATION_STRING_LEN;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                }
                Value::from(s)
            }
            Self::Int(i) => Value::I64(i),
            Self::Float(f) if f.is_finite() => Value::F64(f),
            Self::Float(_) => return None,
            Self::Bool(b) => Value::Bool(b),
        })
    }
}

/// Records an annotation on the current (sub)segment. A no-op when nothing is being recorded.
pub fn annotate(key: &AnnotationKey, value: impl Into<AnnotationValue>) {
    let cx = Context::current();
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    match value.into().into_otel() {
        Some(value) => span.set_attribute(KeyValue::new(
            format!("{ANNOTATION_ATTRIBUTE_PREFIX}{}", key.as_str()),
            value,
        )),
        None => reject(key.as_str(), "value is not a finite number"),
    }
}

/// Records an annotation whose key is only known at run time. A key X-Ray would refuse is
/// dropped here, counted in [`rejected_annotations`], and logged the first time it happens.
pub fn annotate_dynamic(key: &str, value: impl Into<AnnotationValue>) {
    match AnnotationKey::new(key) {
        Ok(key) => annotate(&key, value),
        Err(_) => reject(key, "key must match ^[A-Za-z0-9_]{1,500}$"),
    }
}

fn reject(key: &str, why: &str) {
    REJECTED.fetch_add(1, Ordering::Relaxed);
    LOG_FIRST_REJECTION.call_once(|| {
        tracing::warn!(
            key,
            why,
            "annotation rejected (further rejections are only counted)"
        );
    });
}

/// How many annotations have been rejected in this process.
pub fn rejected_annotations() -> u64 {
    REJECTED.load(Ordering::Relaxed)
}

/// Records metadata under `namespace` on the current (sub)segment. Non-object values are wrapped
/// as `{"value": …}` because X-Ray's schema requires each namespace to be an object.
pub fn record_metadata(namespace: &str, value: serde_json::Value) {
    let cx = Context::current();
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    if !is_valid_key(namespace) {
        reject(
            namespace,
            "metadata namespace must match ^[A-Za-z0-9_]{1,500}$",
        );
        return;
    }
    let value = match value {
        serde_json::Value::Object(_) => value,
        other => serde_json::json!({ "value": other }),
    };
    span.set_attribute(KeyValue::new(
        format!("{METADATA_ATTRIBUTE_PREFIX}{namespace}"),
        value.to_string(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_validation_table() {
        let long_ok = "a".repeat(500);
        let long_bad = "a".repeat(501);
        let table: &[(&str, bool)] = &[
            ("order_id", true),
            ("A1_b2", true),
            (&long_ok, true),
            ("", false),
            ("order-id", false),
            ("order.id", false),
            ("order id", false),
            ("ordér", false),
            (&long_bad, false),
        ];
        for (key, ok) in table {
            assert_eq!(AnnotationKey::new(*key).is_ok(), *ok, "key {key:?}");
        }
    }

    #[test]
    fn long_strings_are_truncated_on_char_boundary() {
        let value = AnnotationValue::from("é".repeat(600)).into_otel().unwrap();
        let Value::String(s) = value else {
            panic!("not a string")
        };
        assert_eq!(s.as_str().len(), 1000);
        assert!(AnnotationValue::Float(f64::NAN).into_otel().is_none());
    }
}
