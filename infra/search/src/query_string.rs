//! `query_string`, simple form: Lucene syntax parsed by tantivy's own query grammar
//! (`tantivy-query-grammar`), its tree compiled through the same field resolution as the DSL so
//! `status:200`, `service:order AND NOT path:/health`, `"exact phrase"`, `pay*`,
//! `duration:[100 TO *]` and `field:(a b)` mean what they mean on OpenSearch.
//!
//! Served parameters: `query`, `default_field` (default `*`: every mapped text and keyword field),
//! `default_operator` (`OR`/`AND`). Others are refused by name.

use serde_json::{json, Value};
use tantivy::query::{BooleanQuery, BoostQuery, EmptyQuery, Occur, Query};
use tantivy_query_grammar::{Occur as GrammarOccur, UserInputAst, UserInputBound, UserInputLeaf};

use crate::error::{ApiError, ApiResult};
use crate::fields::Resolver;
use crate::mapping::{FieldMapping, ObjectMapping};
use crate::query::compile as compile_dsl;

/// Compiles a `query_string` body.
pub fn compile(resolver: &Resolver<'_>, body: &Value) -> ApiResult<Box<dyn Query>> {
    let object = body.as_object().ok_or_else(|| {
        ApiError::parsing("[query_string] query malformed, no start_object after query name")
    })?;
    let mut text = None;
    let mut default_field = "*".to_owned();
    let mut conjunction = false;
    for (key, value) in object {
        match key.as_str() {
            "query" => text = value.as_str(),
            "default_field" => {
                default_field = value
                    .as_str()
                    .ok_or_else(|| {
                        ApiError::parsing("[query_string] default_field must be a string")
                    })?
                    .to_owned()
            }
            "default_operator" => {
                conjunction = match value.as_str().map(str::to_uppercase).as_deref() {
                    Some("AND") => true,
                    Some("OR") => false,
                    _ => {
                        return Err(ApiError::parsing(format!(
                            "[query_string] default_operator [{value}] is not OR or AND"
                        )))
                    }
                }
            }
            "boost" => {}
            other => {
                return Err(ApiError::parsing(format!(
                    "[query_string] query does not support [{other}]"
                )))
            }
        }
    }
    let text = text.ok_or_else(|| ApiError::parsing("[query_string] requires [query]"))?;
    let ast = tantivy_query_grammar::parse_query(text).map_err(|_| {
        ApiError::parsing(format!("Failed to parse query [{text}]"))
            .with("line", 1)
            .with("col", 1)
    })?;
    let compiler = Compiler {
        resolver,
        default_fields: default_fields(resolver, &default_field),
        conjunction,
    };
    compiler.ast(&ast)
}

/// `*` → every text and keyword leaf of the mapping; otherwise the field itself.
fn default_fields(resolver: &Resolver<'_>, default_field: &str) -> Vec<String> {
    if default_field != "*" {
        return vec![default_field.to_owned()];
    }
    fn walk(prefix: &str, object: &ObjectMapping, out: &mut Vec<String>) {
        for (name, field) in &object.properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match field {
                FieldMapping::Object(inner) => walk(&path, inner, out),
                FieldMapping::Text { .. } | FieldMapping::Keyword { .. } => out.push(path),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", &resolver.mapping.root, &mut out);
    out
}

struct Compiler<'r, 'm> {
    resolver: &'r Resolver<'m>,
    default_fields: Vec<String>,
    conjunction: bool,
}

impl Compiler<'_, '_> {
    fn ast(&self, ast: &UserInputAst) -> ApiResult<Box<dyn Query>> {
        match ast {
            UserInputAst::Clause(clauses) => {
                if clauses.is_empty() {
                    return Ok(Box::new(tantivy::query::AllQuery));
                }
                let default = if self.conjunction {
                    Occur::Must
                } else {
                    Occur::Should
                };
                let mut compiled = Vec::new();
                let mut positive = false;
                for (occur, clause) in clauses {
                    let occur = match occur {
                        Some(GrammarOccur::Must) => Occur::Must,
                        Some(GrammarOccur::MustNot) => Occur::MustNot,
                        Some(GrammarOccur::Should) => Occur::Should,
                        None => default,
                    };
                    positive |= occur != Occur::MustNot;
                    compiled.push((occur, self.ast(clause)?));
                }
                if !positive {
                    compiled.push((Occur::Must, Box::new(tantivy::query::AllQuery)));
                }
                Ok(Box::new(BooleanQuery::new(compiled)))
            }
            UserInputAst::Boost(inner, boost) => {
                Ok(Box::new(BoostQuery::new(self.ast(inner)?, boost.0 as f32)))
            }
            UserInputAst::Leaf(leaf) => self.leaf(leaf),
        }
    }

    fn each_field(
        &self,
        field: Option<&String>,
        build: impl Fn(&str) -> ApiResult<Box<dyn Query>>,
    ) -> ApiResult<Box<dyn Query>> {
        match field {
            Some(field) => build(field),
            None => {
                let clauses = self
                    .default_fields
                    .iter()
                    .map(|field| Ok((Occur::Should, build(field)?)))
                    .collect::<ApiResult<Vec<_>>>()?;
                if clauses.is_empty() {
                    return Ok(Box::new(EmptyQuery));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
        }
    }

    fn leaf(&self, leaf: &UserInputLeaf) -> ApiResult<Box<dyn Query>> {
        let resolver = self.resolver;
        match leaf {
            UserInputLeaf::All => Ok(Box::new(tantivy::query::AllQuery)),
            UserInputLeaf::Literal(literal) => {
                self.each_field(literal.field_name.as_ref(), |field| {
                    if literal.prefix {
                        return resolver.prefix(field, &literal.phrase);
                    }
                    let kind =
                        if literal.delimiter == tantivy_query_grammar::Delimiter::DoubleQuotes {
                            "match_phrase"
                        } else {
                            "match"
                        };
                    compile_dsl(
                        resolver,
                        &json!({ kind: { field: {"query": literal.phrase} } }),
                    )
                })
            }
            UserInputLeaf::Range {
                field,
                lower,
                upper,
            } => {
                let bound = |b: &UserInputBound| match b {
                    UserInputBound::Inclusive(v) => Some((Value::String(v.clone()), true)),
                    UserInputBound::Exclusive(v) => Some((Value::String(v.clone()), false)),
                    UserInputBound::Unbounded => None,
                };
                let (lower, upper) = (bound(lower), bound(upper));
                self.each_field(field.as_ref(), |field| {
                    resolver.range(
                        field,
                        lower.as_ref().map(|(v, i)| (v, *i)),
                        upper.as_ref().map(|(v, i)| (v, *i)),
                        None,
                    )
                })
            }
            UserInputLeaf::Set { field, elements } => {
                let values: Vec<Value> = elements.iter().cloned().map(Value::String).collect();
                self.each_field(field.as_ref(), |field| resolver.terms(field, &values))
            }
            UserInputLeaf::Exists { field } => Ok(resolver.exists(field)),
            other => Err(ApiError::parsing(format!(
                "[query_string] syntax not served: {other:?}"
            ))),
        }
    }
}
