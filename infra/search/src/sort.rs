//! `sort`: field sorts read from the exact side's fast columns, as OpenSearch sorts on doc values:
//! `asc`/`desc`, missing values last, multi-valued fields by their minimum (asc) or maximum (desc),
//! `_doc` for index order and `_score` alone for relevance.
//!
//! The sort key is computed per segment by a closure handed to tantivy's `TopDocs::order_by`
//! (tantivy's own erased-type sort fails on a segment that lacks the column, which sparse JSON
//! paths often do).

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64, StrColumn};
use tantivy::{DocId, SegmentReader};

use crate::error::{ApiError, ApiResult};
use crate::fields::{ExactKind, Resolver, Target};
use crate::store::EXACT;

/// One sort key of the request.
#[derive(Clone, Debug, PartialEq)]
pub enum SortField {
    /// Relevance.
    Score,
    /// Index order.
    Doc,
    /// A field's value.
    Field {
        /// The request's field name.
        name: String,
        /// Descending.
        descending: bool,
    },
}

/// Reads `sort` (body) or `sort=a:desc,b` (URL).
pub fn parse_sort(value: &Value) -> ApiResult<Vec<SortField>> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items.into_iter().map(parse_one).collect()
}

/// Reads the URL form.
pub fn parse_sort_param(text: &str) -> ApiResult<Vec<SortField>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|part| {
            let (name, order) = part.split_once(':').unwrap_or((part, "asc"));
            parse_one(&json!({ name: order }))
        })
        .collect()
}

fn parse_one(value: &Value) -> ApiResult<SortField> {
    let (name, order) = match value {
        Value::String(name) => (name.clone(), None),
        Value::Object(object) if object.len() == 1 => {
            let (name, spec) = object.iter().next().expect("one entry");
            let order = match spec {
                Value::String(order) => Some(order.clone()),
                Value::Object(options) => {
                    if let Some(key) = options
                        .keys()
                        .find(|k| !matches!(k.as_str(), "order" | "unmapped_type"))
                    {
                        return Err(ApiError::parsing(format!(
                            "[sort] option [{key}] is not served"
                        )));
                    }
                    options
                        .get("order")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }
                other => return Err(ApiError::parsing(format!("[sort] cannot read [{other}]"))),
            };
            (name.clone(), order)
        }
        other => return Err(ApiError::parsing(format!("[sort] cannot read [{other}]"))),
    };
    let descending = match order.as_deref().map(str::to_lowercase).as_deref() {
        None => name == "_score",
        Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::illegal_argument(format!(
                "Unknown SortOrder [{other}]"
            )))
        }
    };
    Ok(match name.as_str() {
        "_score" if descending => SortField::Score,
        "_score" => {
            return Err(ApiError::parsing("[sort] _score ascending is not served"));
        }
        "_doc" if !descending => SortField::Doc,
        _ => SortField::Field { name, descending },
    })
}

/// One value of a sort key.
#[derive(Clone, Debug, PartialEq)]
pub enum SortValue {
    /// Numbers, dates (epoch ms), booleans (0/1).
    Number(f64),
    /// Strings.
    Text(String),
    /// No value: always last.
    Missing,
}

impl SortValue {
    /// The value as OpenSearch prints it in a hit's `sort`.
    pub fn to_json(&self, integral: bool) -> Value {
        match self {
            Self::Number(n) if integral => json!(*n as i64),
            Self::Number(n) => json!(n),
            Self::Text(s) => json!(s),
            // OpenSearch prints Long.MAX_VALUE / MIN_VALUE for a missing value; null is clearer.
            Self::Missing => Value::Null,
        }
    }
}

/// A document's sort key; greater is better (tantivy keeps the greatest).
#[derive(Clone, Debug)]
pub struct SortKey {
    /// One per sort field.
    pub values: Vec<SortValue>,
    descending: Arc<Vec<bool>>,
    doc: DocId,
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        for ((a, b), descending) in self
            .values
            .iter()
            .zip(&other.values)
            .zip(self.descending.iter())
        {
            let ordering = match (a, b) {
                (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
                (SortValue::Missing, _) => Ordering::Less,
                (_, SortValue::Missing) => Ordering::Greater,
                (SortValue::Number(x), SortValue::Number(y)) => {
                    let natural = x.partial_cmp(y).unwrap_or(Ordering::Equal);
                    if *descending {
                        natural
                    } else {
                        natural.reverse()
                    }
                }
                (SortValue::Text(x), SortValue::Text(y)) => {
                    let natural = x.cmp(y);
                    if *descending {
                        natural
                    } else {
                        natural.reverse()
                    }
                }
                // Mixed types across indices: numbers first.
                (SortValue::Number(_), SortValue::Text(_)) => Ordering::Greater,
                (SortValue::Text(_), SortValue::Number(_)) => Ordering::Less,
            };
            if ordering != Ordering::Equal {
                return Some(ordering);
            }
        }
        // Earlier documents first.
        Some(other.doc.cmp(&self.doc))
    }
}

/// How one field is read in a segment.
enum Reader {
    Numbers(tantivy::columnar::Column<u64>, ColumnType),
    Strings(StrColumn),
    Missing,
    Doc,
}

/// What the per-segment closure needs for each sort field.
#[derive(Clone, Debug)]
pub struct SortColumn {
    path: Option<String>,
    descending: bool,
    text: bool,
    /// Whether values print as integers (long, integer, date, boolean).
    pub integral: bool,
}

/// The columns for `fields` in one index.
pub fn columns(resolver: &Resolver<'_>, fields: &[SortField]) -> ApiResult<Vec<SortColumn>> {
    fields
        .iter()
        .map(|field| match field {
            SortField::Score => Err(ApiError::parsing(
                "[sort] _score together with other sort keys is not served",
            )),
            SortField::Doc => Ok(SortColumn {
                path: None,
                descending: false,
                text: false,
                integral: true,
            }),
            SortField::Field { name, descending } => match resolver.target(name) {
                Target::Exact { path, kind } => Ok(SortColumn {
                    path: Some(format!("{EXACT}.{path}")),
                    descending: *descending,
                    text: matches!(kind, ExactKind::Str),
                    integral: !matches!(kind, ExactKind::Float(_) | ExactKind::Str),
                }),
                Target::Unmapped => Err(ApiError::new(
                    400,
                    "query_shard_exception",
                    format!("No mapping found for [{name}] in order to sort on"),
                )),
                Target::Text { .. } => Err(ApiError::illegal_argument(format!(
                    "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{name}] in order to load field data by uninverting the inverted index. Note that this can use significant memory."
                ))),
                Target::Object { .. } | Target::Id => Err(ApiError::illegal_argument(format!(
                    "sorting on [{name}] is not served"
                ))),
            },
        })
        .collect()
}

fn open(segment: &SegmentReader, column: &SortColumn) -> Reader {
    let Some(path) = &column.path else {
        return Reader::Doc;
    };
    let fast = segment.fast_fields();
    if column.text {
        return match fast.str(path) {
            Ok(Some(strings)) => Reader::Strings(strings),
            _ => Reader::Missing,
        };
    }
    let types = [
        ColumnType::I64,
        ColumnType::U64,
        ColumnType::F64,
        ColumnType::DateTime,
        ColumnType::Bool,
    ];
    match fast.u64_lenient_for_type(Some(&types), path) {
        Ok(Some((values, kind))) => Reader::Numbers(values, kind),
        _ => Reader::Missing,
    }
}

fn number(raw: u64, kind: ColumnType) -> f64 {
    match kind {
        ColumnType::I64 => i64::from_u64(raw) as f64,
        ColumnType::F64 => f64::from_u64(raw),
        ColumnType::DateTime => tantivy::DateTime::from_u64(raw).into_timestamp_millis() as f64,
        _ => raw as f64,
    }
}

fn read(reader: &Reader, doc: DocId, descending: bool) -> SortValue {
    match reader {
        Reader::Missing => SortValue::Missing,
        Reader::Doc => SortValue::Number(f64::from(doc)),
        Reader::Numbers(values, kind) => {
            let all = values.values_for_doc(doc).map(|raw| number(raw, *kind));
            let chosen = if descending {
                all.fold(None, |best: Option<f64>, v| {
                    Some(best.map_or(v, |b| b.max(v)))
                })
            } else {
                all.fold(None, |best: Option<f64>, v| {
                    Some(best.map_or(v, |b| b.min(v)))
                })
            };
            chosen.map_or(SortValue::Missing, SortValue::Number)
        }
        Reader::Strings(strings) => {
            let mut ords = strings.term_ords(doc);
            // Ordinals follow the dictionary's order: the first is the minimum.
            let ord = if descending { ords.last() } else { ords.next() };
            let Some(ord) = ord else {
                return SortValue::Missing;
            };
            let mut text = String::new();
            match strings.ord_to_str(ord, &mut text) {
                Ok(true) => SortValue::Text(text),
                _ => SortValue::Missing,
            }
        }
    }
}

/// The closure tantivy calls per segment.
pub fn key_computer(
    columns: Vec<SortColumn>,
) -> impl Fn(&SegmentReader) -> Box<dyn FnMut(DocId) -> SortKey + Send + Sync> + Send + Sync + 'static
{
    let descending = Arc::new(columns.iter().map(|c| c.descending).collect::<Vec<_>>());
    let columns = Arc::new(columns);
    move |segment: &SegmentReader| {
        let readers: Vec<(Reader, bool)> = columns
            .iter()
            .map(|column| (open(segment, column), column.descending))
            .collect();
        let descending = descending.clone();
        Box::new(move |doc: DocId| SortKey {
            values: readers
                .iter()
                .map(|(reader, desc)| read(reader, doc, *desc))
                .collect(),
            descending: descending.clone(),
            doc,
        })
    }
}
