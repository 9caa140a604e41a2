//! Trace summaries (`GetTraceSummaries`) and filter matching over a trace's entities.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use super::filter::{FilterExpression, Flag, Literal, Term};
use super::store::Entity;

fn num(fields: &Map<String, Value>, key: &str) -> f64 {
    fields.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn flag(fields: &Map<String, Value>, key: &str) -> bool {
    fields.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// A trace's segments that nothing in the trace calls: where the request entered.
pub fn roots(entities: &[Entity]) -> Vec<&Entity> {
    let ids: std::collections::HashSet<&str> = entities.iter().map(|e| e.id.as_str()).collect();
    entities
        .iter()
        .filter(|e| e.is_segment && e.parent_id.as_deref().is_none_or(|p| !ids.contains(p)))
        .collect()
}

/// For each entity id, the segment it belongs to (itself for segments).
pub fn owning_segments(entities: &[Entity]) -> HashMap<&str, &Entity> {
    let by_id: HashMap<&str, &Entity> = entities.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut owners = HashMap::new();
    for entity in entities {
        let mut current = entity;
        let mut hops = 0;
        while !current.is_segment && hops < 64 {
            match current.parent_id.as_deref().and_then(|p| by_id.get(p)) {
                Some(parent) => current = parent,
                None => break,
            }
            hops += 1;
        }
        if current.is_segment {
            owners.insert(entity.id.as_str(), current);
        }
    }
    owners
}

/// `{"Name","Names","Type"}` of a segment.
pub fn service_id(segment: &Entity) -> Value {
    let name = segment.fields.get("name").cloned().unwrap_or(Value::Null);
    let mut id = json!({"Name": name, "Names": [name]});
    if let Some(origin) = segment.fields.get("origin") {
        id["Type"] = origin.clone();
    }
    id
}

/// Trace-level flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceFlags {
    /// Some segment has `fault`.
    pub fault: bool,
    /// Some segment has `error`.
    pub error: bool,
    /// Some segment has `throttle`.
    pub throttle: bool,
}

/// Flags of a trace, from its segments.
pub fn trace_flags(entities: &[Entity]) -> TraceFlags {
    let segments = entities.iter().filter(|e| e.is_segment);
    let mut flags = TraceFlags::default();
    for segment in segments {
        flags.fault |= flag(&segment.fields, "fault");
        flags.error |= flag(&segment.fields, "error");
        flags.throttle |= flag(&segment.fields, "throttle");
    }
    flags
}

fn annotation_matches(value: &Value, literal: &Literal) -> bool {
    match (value, literal) {
        (Value::String(v), Literal::String(l)) => v == l,
        (Value::Number(v), Literal::Number(l)) => v.as_f64() == Some(*l),
        (Value::Bool(v), Literal::Bool(l)) => v == l,
        _ => false,
    }
}

/// Whether a trace satisfies every term of `filter`.
pub fn matches(entities: &[Entity], filter: &FilterExpression) -> bool {
    let flags = trace_flags(entities);
    filter.terms.iter().all(|term| match term {
        Term::Annotation {
            key,
            value,
            negated,
        } => {
            let found = entities.iter().any(|e| {
                e.fields
                    .get("annotations")
                    .and_then(|a| a.get(key))
                    .is_some_and(|v| annotation_matches(v, value))
            });
            found != *negated
        }
        Term::Service(name) => entities
            .iter()
            .any(|e| e.is_segment && e.fields.get("name").and_then(Value::as_str) == Some(name)),
        Term::Flag { flag, negated } => {
            let set = match flag {
                Flag::Ok => !(flags.error || flags.fault || flags.throttle),
                Flag::Error => flags.error,
                Flag::Fault => flags.fault,
                Flag::Throttle => flags.throttle,
            };
            set != *negated
        }
    })
}

/// Start time of a trace: its earliest root segment (or earliest entity).
pub fn trace_start(entities: &[Entity]) -> f64 {
    roots(entities)
        .first()
        .copied()
        .or(entities.first())
        .map_or(0.0, |e| num(&e.fields, "start_time"))
}

/// Seconds from the earliest segment start to the latest segment end.
pub fn trace_duration(entities: &[Entity]) -> f64 {
    let segments = || entities.iter().filter(|e| e.is_segment);
    let start = segments()
        .map(|s| num(&s.fields, "start_time"))
        .fold(f64::INFINITY, f64::min);
    let end = segments()
        .map(|s| num(&s.fields, "end_time"))
        .fold(0.0, f64::max);
    if end > start {
        end - start
    } else {
        0.0
    }
}

/// The `TraceSummary` for one trace.
pub fn summarize(trace_id: &str, entities: &[Entity]) -> Value {
    let segments: Vec<&Entity> = entities.iter().filter(|e| e.is_segment).collect();
    let roots = roots(entities);
    let root = roots.first().copied();
    let flags = trace_flags(entities);
    let owners = owning_segments(entities);

    let mut annotations: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for entity in entities {
        let Some(Value::Object(found)) = entity.fields.get("annotations") else {
            continue;
        };
        for (key, value) in found {
            let typed = match value {
                Value::String(s) => json!({"StringValue": s}),
                Value::Number(n) => json!({"NumberValue": n.as_f64()}),
                Value::Bool(b) => json!({"BooleanValue": b}),
                _ => continue,
            };
            let service = owners.get(entity.id.as_str()).map(|s| service_id(s));
            annotations
                .entry(key.clone())
                .or_default()
                .push(json!({"AnnotationValue": typed, "ServiceIds": service.into_iter().collect::<Vec<_>>()}));
        }
    }
    let mut service_ids: Vec<Value> = Vec::new();
    for segment in &segments {
        let id = service_id(segment);
        if !service_ids.contains(&id) {
            service_ids.push(id);
        }
    }
    let in_progress = entities.iter().any(|e| flag(&e.fields, "in_progress"));

    let mut summary = json!({
        "Id": trace_id,
        "Duration": trace_duration(entities),
        "HasFault": flags.fault,
        "HasError": flags.error,
        "HasThrottle": flags.throttle,
        "IsPartial": in_progress,
        "Annotations": annotations,
        "ServiceIds": service_ids,
    });
    if let Some(root) = root {
        let root_start = num(&root.fields, "start_time");
        summary["StartTime"] = json!(root_start);
        summary["ResponseTime"] = json!((num(&root.fields, "end_time") - root_start).max(0.0));
        summary["EntryPoint"] = service_id(root);
        if let Some(http) = root.fields.get("http") {
            let request = &http["request"];
            let mut out = Map::new();
            for (from, to) in [
                ("url", "HttpURL"),
                ("method", "HttpMethod"),
                ("user_agent", "UserAgent"),
                ("client_ip", "ClientIp"),
            ] {
                if let Some(v) = request.get(from) {
                    out.insert(to.to_owned(), v.clone());
                }
            }
            if let Some(status) = http["response"].get("status") {
                out.insert("HttpStatus".to_owned(), status.clone());
            }
            summary["Http"] = Value::Object(out);
        }
    }
    summary
}
