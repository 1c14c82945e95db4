//! The bundled real catalogue (`catalog/*.json`), loaded once for the tests.

use super::ToolSource;
use crate::cache::CachedToolkit;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::OnceLock;

pub(crate) fn toolkits() -> &'static [CachedToolkit] {
    static TOOLKITS: OnceLock<Vec<CachedToolkit>> = OnceLock::new();
    TOOLKITS.get_or_init(load)
}

pub(crate) fn load() -> Vec<CachedToolkit> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("catalog/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("a catalogue file");
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} is a CachedToolkit: {e}", p.display()))
        })
        .collect()
}

/// Every tool of the catalogue.
pub(crate) fn sources() -> Vec<ToolSource<'static>> {
    toolkits()
        .iter()
        .flat_map(|t| t.tools.iter().map(ToolSource::from))
        .collect()
}

#[test]
fn the_whole_catalogue_is_there() {
    assert_eq!(toolkits().len(), 21);
    assert_eq!(sources().len(), 1357);
}

/// Every schema node of `schema` with its JSON Pointer, visiting every place
/// a schema can sit.
pub(crate) fn walk<'v>(schema: &'v Value, path: String, visit: &mut impl FnMut(&str, &'v Value)) {
    visit(&path, schema);
    let Some(map) = schema.as_object() else {
        return;
    };
    for key in ["properties", "$defs", "definitions", "patternProperties"] {
        if let Some(Value::Object(children)) = map.get(key) {
            for (k, v) in children {
                walk(v, format!("{path}/{key}/{k}"), visit);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child @ Value::Object(_)) = map.get(key) {
            walk(child, format!("{path}/{key}"), visit);
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems", "items"] {
        if let Some(Value::Array(children)) = map.get(key) {
            for (i, v) in children.iter().enumerate() {
                walk(v, format!("{path}/{key}/{i}"), visit);
            }
        }
    }
}

/// An instance of an original schema: every property filled (or only the
/// required ones), free-form objects given keys a provider would refuse.
pub(crate) fn instance(schema: &Value, root: &Value, only_required: bool, depth: usize) -> Value {
    let Some(map) = schema.as_object() else {
        return json!({"any": ["value"]});
    };
    if depth > 12 {
        return Value::Null;
    }
    if let Some(target) = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| root.pointer(p))
    {
        return instance(target, root, only_required, depth + 1);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            let branch = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"));
            if let Some(branch) = branch {
                return instance(branch, root, only_required, depth + 1);
            }
        }
    }
    if let Some(c) = map.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(values)) = map.get("enum") {
        if let Some(v) = values.iter().find(|v| !v.is_null()) {
            return v.clone();
        }
    }
    let ty = match map.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ if map
            .get("properties")
            .is_some_and(|p| p.as_object().is_some_and(|p| !p.is_empty())) =>
        {
            Some("object")
        }
        _ if map.contains_key("items") => Some("array"),
        _ => None,
    };
    match ty {
        Some("object") => object_instance(map, root, only_required, depth),
        Some("array") => match map.get("items") {
            Some(items) => json!([instance(items, root, only_required, depth + 1)]),
            None => json!(["item"]),
        },
        Some("string") => json!("text"),
        Some("integer") => json!(3),
        Some("number") => json!(2.5),
        Some("boolean") => json!(true),
        Some("null") => Value::Null,
        // Untyped: an object with undeclared keys unless objects are closed.
        _ if map.get("additionalProperties") == Some(&Value::Bool(false)) => json!("value"),
        _ => json!({"any": ["value"]}),
    }
}

/// An instance of an object schema: its properties, or a free key.
fn object_instance(
    map: &Map<String, Value>,
    root: &Value,
    only_required: bool,
    depth: usize,
) -> Value {
    let required: Vec<&str> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    match map.get("properties").and_then(Value::as_object) {
        Some(props) if !props.is_empty() => {
            for (k, v) in props {
                if !only_required || required.contains(&k.as_str()) {
                    out.insert(k.clone(), instance(v, root, only_required, depth + 1));
                }
            }
        }
        _ => {
            let value = match map.get("additionalProperties") {
                Some(values @ Value::Object(_)) => instance(values, root, only_required, depth + 1),
                // A root without properties is a tool without arguments.
                _ if depth == 0 => return Value::Object(out),
                Some(Value::Bool(false)) => return Value::Object(out),
                _ => json!([1, {"x.y": true}]),
            };
            out.insert("free key".into(), value);
        }
    }
    Value::Object(out)
}

/// Whether `value` fits a provider schema; an object with declared properties
/// is closed unless `additionalProperties` opens it, so a key left unrenamed
/// is caught.
pub(crate) fn validate(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(map) = schema.as_object() else {
        return Ok(());
    };
    let nullable = map.get("nullable") == Some(&Value::Bool(true));
    if value.is_null() && nullable {
        return Ok(());
    }
    if let Some(Value::Array(branches)) = map.get("anyOf") {
        return if branches.iter().any(|b| validate(b, value, path).is_ok()) {
            Ok(())
        } else {
            Err(format!("{path}: {value} fits no anyOf branch"))
        };
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |t: &str| match (t, value) {
        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("string", Value::String(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("number", Value::Number(_)) => true,
        ("array", Value::Array(_)) | ("object", Value::Object(_)) => true,
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| fits(t)) {
        return Err(format!("{path}: {value} is not {types:?}"));
    }
    if let Some(Value::Array(values)) = map.get("enum") {
        if !values.contains(value) {
            return Err(format!("{path}: {value} not in enum"));
        }
    }
    match value {
        Value::Object(fields) => {
            let props = map.get("properties").and_then(Value::as_object);
            let extra = map.get("additionalProperties");
            for (k, v) in fields {
                match (props.and_then(|p| p.get(k)), extra) {
                    (Some(child), _) => validate(child, v, &format!("{path}/{k}"))?,
                    (None, Some(child @ Value::Object(_))) => {
                        validate(child, v, &format!("{path}/{k}"))?
                    }
                    (None, Some(Value::Bool(true))) => {}
                    (None, None) if props.is_none_or(|p| p.is_empty()) => {}
                    (None, _) => return Err(format!("{path}: undeclared key {k:?}")),
                }
            }
            for r in map
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = r.as_str().filter(|r| !fields.contains_key(*r)) {
                    return Err(format!("{path}: required {r:?} missing"));
                }
            }
            Ok(())
        }
        Value::Array(elements) => match map.get("items") {
            Some(items) => elements
                .iter()
                .enumerate()
                .try_for_each(|(i, e)| validate(items, e, &format!("{path}/{i}"))),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}
