//! OpenSearch's query DSL compiled to tantivy queries, per index (field types come from the
//! index's mapping).
//!
//! Served: `match_all`, `match_none`, `match` (`operator`, `minimum_should_match`),
//! `match_phrase`, `term`, `terms`, `ids`, `range` (`gt`/`gte`/`lt`/`lte`, `format`, date math),
//! `bool` (`must`, `filter`, `should`, `must_not`, `minimum_should_match`), `exists`, `prefix`,
//! `query_string` (see `query_string`), and `boost` where OpenSearch takes it. Anything else is a
//! 400 `parsing_exception` naming it. Scores are tantivy's BM25, close to but not equal to
//! OpenSearch's.

use serde_json::{Map, Value};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, PhraseQuery, Query,
};

use crate::date::DateFormat;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Resolver, Target};
use crate::query_string;

/// Compiles a `query` object.
pub fn compile(resolver: &Resolver<'_>, query: &Value) -> ApiResult<Box<dyn Query>> {
    let object = query.as_object().ok_or_else(|| {
        ApiError::parsing(format!(
            "query malformed, must start with start_object, got [{query}]"
        ))
    })?;
    let mut entries = object.iter();
    let Some((kind, body)) = entries.next() else {
        return Err(ApiError::parsing("query malformed, empty clause found"));
    };
    if let Some((second, _)) = entries.next() {
        return Err(ApiError::parsing(format!(
            "[{kind}] malformed query, expected [END_OBJECT] but found [FIELD_NAME] ([{second}])"
        )));
    }
    match kind.as_str() {
        "match_all" => Ok(boosted(Box::new(AllQuery), boost_of(body))),
        "match_none" => Ok(Box::new(EmptyQuery)),
        "match" => match_query(resolver, body, false),
        "match_phrase" => match_query(resolver, body, true),
        "term" => {
            let (field, value, params) = field_clause("term", body, "value")?;
            check_params("term", params, &["value", "boost", "case_insensitive"])?;
            if params.and_then(|p| p.get("case_insensitive")) == Some(&Value::Bool(true)) {
                return Err(ApiError::parsing("[term] case_insensitive is not served"));
            }
            Ok(boosted(resolver.term(field, value)?, boost_param(params)))
        }
        "terms" => {
            let object = as_object("terms", body)?;
            let mut fields = object.iter().filter(|(key, _)| key.as_str() != "boost");
            let (field, values) = fields
                .next()
                .ok_or_else(|| ApiError::parsing("[terms] query requires a field"))?;
            if fields.next().is_some() {
                return Err(ApiError::parsing(
                    "[terms] query does not support multiple fields",
                ));
            }
            let values = values.as_array().ok_or_else(|| {
                ApiError::parsing(format!("[terms] query does not support [{field}] with a non-array value (terms lookup is not served)"))
            })?;
            Ok(boosted(resolver.terms(field, values)?, boost_of(body)))
        }
        "ids" => {
            let values = body
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::parsing("[ids] query requires [values]"))?;
            resolver.terms("_id", values)
        }
        "range" => range_query(resolver, body),
        "bool" => bool_query(resolver, body),
        "exists" => {
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::parsing("[exists] must be provided with a [field]"))?;
            Ok(resolver.exists(field))
        }
        "prefix" => {
            let (field, value, params) = field_clause("prefix", body, "value")?;
            check_params("prefix", params, &["value", "boost"])?;
            let prefix = value
                .as_str()
                .ok_or_else(|| ApiError::parsing("[prefix] value must be a string"))?;
            Ok(boosted(
                resolver.prefix(field, prefix)?,
                boost_param(params),
            ))
        }
        "query_string" => query_string::compile(resolver, body),
        other => Err(ApiError::parsing(format!("unknown query [{other}]"))
            .with("line", 1)
            .with("col", 1)),
    }
}

fn as_object<'v>(kind: &str, body: &'v Value) -> ApiResult<&'v Map<String, Value>> {
    body.as_object().ok_or_else(|| {
        ApiError::parsing(format!(
            "[{kind}] query malformed, no start_object after query name"
        ))
    })
}

fn boost_param(params: Option<&Map<String, Value>>) -> Option<f64> {
    params.and_then(|p| p.get("boost")).and_then(Value::as_f64)
}

fn boost_of(body: &Value) -> Option<f64> {
    body.get("boost").and_then(Value::as_f64)
}

fn boosted(query: Box<dyn Query>, boost: Option<f64>) -> Box<dyn Query> {
    match boost {
        Some(boost) if boost != 1.0 => Box::new(BoostQuery::new(query, boost as f32)),
        _ => query,
    }
}

/// A field clause: the field, its value, and the parameters object when the long form was used.
type FieldClause<'v> = (&'v str, &'v Value, Option<&'v Map<String, Value>>);

/// `{"field": value}` or `{"field": {"<key>": value, …params}}`.
fn field_clause<'v>(kind: &str, body: &'v Value, key: &str) -> ApiResult<FieldClause<'v>> {
    let object = as_object(kind, body)?;
    let mut fields = object.iter();
    let (field, value) = fields.next().ok_or_else(|| {
        ApiError::parsing(format!("[{kind}] query doesn't support an empty field"))
    })?;
    if let Some((other, _)) = fields.next() {
        return Err(ApiError::parsing(format!(
            "[{kind}] query doesn't support multiple fields, found [{field}] and [{other}]"
        )));
    }
    match value {
        Value::Object(params) => {
            let inner = params.get(key).ok_or_else(|| {
                ApiError::parsing(format!("[{kind}] query on [{field}] requires [{key}]"))
            })?;
            Ok((field, inner, Some(params)))
        }
        scalar => Ok((field, scalar, None)),
    }
}

fn check_params(
    kind: &str,
    params: Option<&Map<String, Value>>,
    allowed: &[&str],
) -> ApiResult<()> {
    if let Some(params) = params {
        if let Some(key) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::parsing(format!(
                "[{kind}] query does not support [{key}]"
            )));
        }
    }
    Ok(())
}

fn match_query(resolver: &Resolver<'_>, body: &Value, phrase: bool) -> ApiResult<Box<dyn Query>> {
    let kind = if phrase { "match_phrase" } else { "match" };
    let (field, value, params) = field_clause(kind, body, "query")?;
    let allowed: &[&str] = if phrase {
        &["query", "boost", "slop"]
    } else {
        &["query", "operator", "minimum_should_match", "boost"]
    };
    check_params(kind, params, allowed)?;
    let param = |key: &str| params.and_then(|p| p.get(key));
    let query: Box<dyn Query> = match resolver.target(field) {
        Target::Text { path } => {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let terms: Vec<_> = resolver
                .tokens(&text)
                .iter()
                .map(|token| resolver.text_term(&path, token))
                .collect();
            if terms.is_empty() {
                Box::new(EmptyQuery)
            } else if phrase && terms.len() > 1 {
                let slop = param("slop").and_then(Value::as_u64).unwrap_or(0) as u32;
                let mut query = PhraseQuery::new(terms);
                query.set_slop(slop);
                Box::new(query)
            } else {
                let and = match param("operator")
                    .map(|v| v.as_str().unwrap_or_default().to_lowercase())
                {
                    None => false,
                    Some(op) if op == "or" => false,
                    Some(op) if op == "and" => true,
                    Some(op) => {
                        return Err(ApiError::parsing(format!(
                            "[match] unknown operator [{op}]"
                        )))
                    }
                };
                let count = terms.len();
                let clauses: Vec<(Occur, Box<dyn Query>)> = terms
                    .into_iter()
                    .map(|term| {
                        let query: Box<dyn Query> = Box::new(tantivy::query::TermQuery::new(
                            term,
                            tantivy::schema::IndexRecordOption::WithFreqs,
                        ));
                        (if and { Occur::Must } else { Occur::Should }, query)
                    })
                    .collect();
                match param("minimum_should_match") {
                    Some(msm) if !and => {
                        let required = minimum_should_match(msm, count)?;
                        Box::new(BooleanQuery::with_minimum_required_clauses(
                            clauses, required,
                        ))
                    }
                    _ => Box::new(BooleanQuery::new(clauses)),
                }
            }
        }
        // Keyword, numeric, date, boolean, ip: the value as one term, as OpenSearch does.
        _ => resolver.term(field, value)?,
    };
    Ok(boosted(query, boost_param(params)))
}

fn range_query(resolver: &Resolver<'_>, body: &Value) -> ApiResult<Box<dyn Query>> {
    let object = as_object("range", body)?;
    let mut fields = object.iter();
    let (field, bounds) = fields
        .next()
        .ok_or_else(|| ApiError::parsing("[range] query requires a field"))?;
    if let Some((other, _)) = fields.next() {
        return Err(ApiError::parsing(format!(
            "[range] query doesn't support multiple fields, found [{field}] and [{other}]"
        )));
    }
    let bounds = bounds.as_object().ok_or_else(|| {
        ApiError::parsing(format!(
            "[range] query malformed, no start_object after [{field}]"
        ))
    })?;
    let mut lower = None;
    let mut upper = None;
    let mut format = None;
    for (key, value) in bounds {
        match key.as_str() {
            "gt" => lower = Some((value, false)),
            "gte" | "from" => lower = Some((value, true)),
            "lt" => upper = Some((value, false)),
            "lte" | "to" => upper = Some((value, true)),
            "format" => {
                let spec = value
                    .as_str()
                    .ok_or_else(|| ApiError::parsing("[range] format must be a string"))?;
                format = Some(DateFormat::parse(spec).map_err(ApiError::parsing)?);
            }
            "boost" => {}
            "time_zone" if value == "Z" || value == "UTC" || value == "+00:00" => {}
            other => {
                return Err(ApiError::parsing(format!(
                    "[range] query does not support [{other}]"
                )))
            }
        }
    }
    // `null` bounds are open.
    let lower = lower.filter(|(v, _)| !v.is_null());
    let upper = upper.filter(|(v, _)| !v.is_null());
    Ok(boosted(
        resolver.range(field, lower, upper, format.as_ref())?,
        bounds.get("boost").and_then(Value::as_f64),
    ))
}

fn clauses(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn bool_query(resolver: &Resolver<'_>, body: &Value) -> ApiResult<Box<dyn Query>> {
    let object = as_object("bool", body)?;
    let mut positive: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut negative: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut minimum = None;
    for (key, value) in object {
        match key.as_str() {
            "must" => {
                for clause in clauses(value) {
                    positive.push((Occur::Must, compile(resolver, clause)?));
                }
            }
            "filter" => {
                for clause in clauses(value) {
                    let query = compile(resolver, clause)?;
                    positive.push((Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0))));
                }
            }
            "should" => {
                for clause in clauses(value) {
                    should.push((Occur::Should, compile(resolver, clause)?));
                }
            }
            "must_not" => {
                for clause in clauses(value) {
                    negative.push((Occur::MustNot, compile(resolver, clause)?));
                }
            }
            "minimum_should_match" => minimum = Some(value),
            "boost" | "_name" | "adjust_pure_negative" => {}
            other => {
                return Err(ApiError::parsing(format!(
                    "[bool] query does not support [{other}]"
                )))
            }
        }
    }
    let should_count = should.len();
    // Should clauses are optional beside must/filter unless minimum_should_match says otherwise,
    // and at least one must match when they stand alone.
    let required = match minimum {
        Some(value) => minimum_should_match(value, should_count)?,
        None if positive.is_empty() && should_count > 0 => 1,
        None => 0,
    };
    if should_count > 0 {
        if required > 0 {
            positive.push((
                Occur::Must,
                Box::new(BooleanQuery::with_minimum_required_clauses(
                    should,
                    required.min(should_count),
                )),
            ));
        } else {
            positive.extend(should);
        }
    }
    if required > should_count {
        return Ok(Box::new(EmptyQuery));
    }
    if positive.is_empty() {
        positive.push((Occur::Must, Box::new(AllQuery)));
    }
    positive.extend(negative);
    Ok(boosted(
        Box::new(BooleanQuery::new(positive)),
        boost_of(body),
    ))
}

/// `minimum_should_match`: `2`, `-1`, `"75%"`, `"-25%"` of `count` optional clauses.
pub fn minimum_should_match(value: &Value, count: usize) -> ApiResult<usize> {
    let bad = || ApiError::parsing(format!("[minimum_should_match] cannot read [{value}]"));
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err(bad()),
    };
    let count = count as i64;
    let required = if let Some(percent) = text.strip_suffix('%') {
        let percent: i64 = percent.parse().map_err(|_| bad())?;
        let part = count * percent.abs() / 100;
        if percent < 0 {
            count - part
        } else {
            part
        }
    } else {
        let number: i64 = text.parse().map_err(|_| bad())?;
        if number < 0 {
            count + number
        } else {
            number
        }
    };
    Ok(required.max(0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimum_should_match_reads_every_form() {
        assert_eq!(minimum_should_match(&json!(2), 3).unwrap(), 2);
        assert_eq!(minimum_should_match(&json!(-1), 3).unwrap(), 2);
        assert_eq!(minimum_should_match(&json!("75%"), 4).unwrap(), 3);
        assert_eq!(minimum_should_match(&json!("-25%"), 4).unwrap(), 3);
        assert!(minimum_should_match(&json!("x"), 4).is_err());
    }
}
