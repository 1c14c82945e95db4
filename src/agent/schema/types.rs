//! Small questions about one schema node: its types, nullability, annotations.

use super::*;

pub(super) fn branch_path(keyword: &str, index: usize) -> Vec<&'static str> {
    // Pointers name the original place; a split type array has no place of its own.
    let keyword: &'static str = match keyword {
        "anyOf" => "anyOf",
        "oneOf" => "oneOf",
        _ => return Vec::new(),
    };
    vec![keyword, INDEXES.get(index).copied().unwrap_or("*")]
}

const INDEXES: &[&str] = &[
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
];

/// The non-null types of a node, and whether it accepts null.
pub(super) fn type_list(map: &Map<String, Value>) -> (Vec<&str>, bool) {
    let mut nullable = map.get("nullable") == Some(&Value::Bool(true))
        || map
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|e| e.iter().any(Value::is_null));
    let mut types = Vec::new();
    match map.get("type") {
        Some(Value::String(t)) => types.push(t.as_str()),
        Some(Value::Array(all)) => {
            for t in all.iter().filter_map(Value::as_str) {
                if t == "null" {
                    nullable = true;
                } else if !types.contains(&t) {
                    types.push(t);
                }
            }
            if types.is_empty() && nullable {
                types.push("null");
            }
        }
        _ => {}
    }
    (types, nullable)
}

pub(super) fn infer_type(map: &Map<String, Value>) -> Option<&'static str> {
    if map
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
    {
        return Some("object");
    }
    if map.contains_key("items") {
        return Some("array");
    }
    let values: Vec<&Value> = match (map.get("enum"), map.get("const")) {
        (Some(Value::Array(all)), _) => all.iter().filter(|v| !v.is_null()).collect(),
        (_, Some(one)) => vec![one],
        _ => return None,
    };
    let first = json_type(values.first()?);
    values
        .iter()
        .all(|v| json_type(v) == first)
        .then_some(first)
}

pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

pub(super) fn strict_type(ty: &str, nullable: bool) -> Value {
    if nullable && ty != "null" {
        json!([ty, "null"])
    } else {
        json!(ty)
    }
}

/// Whether a strict-mode schema accepts null.
pub(crate) fn strict_nullable(schema: &Value) -> bool {
    let null_type = |t: &Value| match t {
        Value::String(s) => s == "null",
        Value::Array(all) => all.iter().any(|t| t == "null"),
        _ => false,
    };
    schema.get("type").is_some_and(null_type)
        || schema
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|b| b.iter().any(|b| b.get("type").is_some_and(null_type)))
}

pub(super) fn make_nullable(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
        branches.push(json!({"type": "null"}));
        return;
    }
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            map.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(all)) => all.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = map.get_mut("enum") {
        values.push(Value::Null);
    }
    if let Some(single) = map.remove("const") {
        map.insert("enum".into(), json!([single, null]));
    }
}

pub(super) fn copy_annotations(from: &Map<String, Value>, out: &mut Map<String, Value>) {
    for k in ["title", "description"] {
        if let Some(v) = from.get(k).filter(|v| v.is_string()) {
            out.insert(k.into(), v.clone());
        }
    }
}

pub(super) fn append_description(out: &mut Map<String, Value>, note: &str) {
    let text = match out
        .get("description")
        .and_then(Value::as_str)
        .map(str::trim_end)
    {
        Some(d) if d.ends_with(['.', '!', '?', ':']) => format!("{d} {note}"),
        Some(d) if !d.is_empty() => format!("{d}. {note}"),
        _ => note.to_owned(),
    };
    out.insert("description".into(), json!(text));
}
