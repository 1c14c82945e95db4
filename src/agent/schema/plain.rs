//! The plain dialect: the schema kept as is but for renamed keys, inlined
//! `$ref`s and keywords whose values no JSON Schema validator would take.

use super::*;
use std::collections::HashSet;

/// Keywords holding one schema: rewritten too, so every `$ref` is inlined.
const ONE_SCHEMA: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
];
/// Keywords holding a map of schemas.
const SCHEMA_MAPS: &[&str] = &["patternProperties", "dependentSchemas"];

impl Rewriter<'_, '_> {
    pub(super) fn plain_node(&mut self, node: &Value, depth: usize) -> Node {
        let map = match node {
            Value::Object(map) => map,
            Value::Bool(_) => return (node.clone(), ArgNode::default()),
            _ => {
                self.record(|| "not a schema: any value accepted".into());
                return (json!({}), ArgNode::default());
            }
        };
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            return self.with_ref(map, reference, Self::plain, depth);
        }
        let mut args = ArgNode::default();
        let mut out = Map::with_capacity(map.len());
        let props = map.get("properties").and_then(Value::as_object);
        let renamed = props.map(|p| self.renames(p)).unwrap_or_default();
        for (key, value) in map {
            let rewritten = match (key.as_str(), value) {
                ("properties", Value::Object(props)) => {
                    Value::Object(self.plain_properties(props, &renamed, depth, &mut args))
                }
                ("required" | "propertyOrdering", Value::Array(keys)) => {
                    rename_list(keys, &renamed)
                }
                ("items" | "additionalProperties", Value::Object(_)) => {
                    let (schema, child) = self.descend(&[key], |s| s.plain(value, depth + 1));
                    let slot = if key == "items" {
                        &mut args.items
                    } else {
                        &mut args.values
                    };
                    if !child.is_empty() {
                        *slot = Some(Box::new(child));
                    }
                    schema
                }
                ("items" | "prefixItems" | "anyOf" | "oneOf" | "allOf", Value::Array(branches))
                    if !branches.is_empty() =>
                {
                    self.plain_branches(key, branches, depth, &mut args)
                }
                (k, Value::Object(_)) if ONE_SCHEMA.contains(&k) => {
                    let (schema, child) = self.descend(&[key], |s| s.plain(value, depth + 1));
                    if matches!(k, "if" | "then" | "else") {
                        args.merge(child);
                    }
                    schema
                }
                (k, Value::Object(schemas)) if SCHEMA_MAPS.contains(&k) => {
                    self.plain_schema_map(key, schemas, depth)
                }
                // Every `$ref` is inlined: the definitions are not needed.
                ("$defs" | "definitions", _) => continue,
                (k, v) if !keyword_fits(k, v) => {
                    self.record(|| format!("{k} dropped: not a valid value for it"));
                    continue;
                }
                _ => value.clone(),
            };
            out.insert(key.clone(), rewritten);
        }
        self.clean_required(&mut out);
        if matches!(out.get("items"), Some(Value::Array(_))) && !out.contains_key("prefixItems") {
            // Draft 2020-12 (Anthropic's, MCP's) takes a tuple as `prefixItems` only.
            let tuple = out.remove("items").unwrap_or_default();
            out.insert("prefixItems".into(), tuple);
            self.record(|| "tuple items sent as prefixItems".into());
        } else if matches!(out.get("items"), Some(Value::Array(_))) {
            out.remove("items");
            self.record(|| "tuple items dropped: prefixItems is there too".into());
        }
        if args.values.is_some() {
            declare_all(&mut args, &out);
        }
        rename_examples(&mut out, &args);
        self.pay_for_examples(&mut out);
        (Value::Object(out), args)
    }

    fn plain_properties(
        &mut self,
        props: &Map<String, Value>,
        renamed: &HashMap<&str, String>,
        depth: usize,
        args: &mut ArgNode,
    ) -> Map<String, Value> {
        let mut out_props = Map::with_capacity(props.len().min(MAX_NODES));
        for (i, (k, v)) in props.iter().enumerate() {
            if self.exhausted() {
                self.cut_rest("properties", props.len() - i);
                break;
            }
            let (schema, child) = self.descend(&["properties", k], |s| {
                let (schema, mut child) = s.plain(v, depth + 1);
                if let Some(new) = renamed.get(k.as_str()) {
                    child.from = Some(k.clone());
                    s.renamed(new);
                }
                (schema, child)
            });
            let sent = renamed.get(k.as_str()).unwrap_or(k).clone();
            if !child.is_empty() {
                args.properties.insert(sent.clone(), child);
            }
            out_props.insert(sent, schema);
        }
        out_props
    }

    fn plain_branches(
        &mut self,
        key: &str,
        branches: &[Value],
        depth: usize,
        args: &mut ArgNode,
    ) -> Value {
        let mut out_branches = Vec::with_capacity(branches.len().min(MAX_NODES));
        for (i, branch) in branches.iter().enumerate() {
            if self.exhausted() {
                self.cut_rest("branches", branches.len() - i);
                // An empty `anyOf` or `oneOf` would accept nothing.
                out_branches.push(json!({}));
                break;
            }
            let index = i.to_string();
            let (schema, child) = self.descend(&[key, &index], |s| s.plain(branch, depth + 1));
            if matches!(key, "items" | "prefixItems") {
                if !child.is_empty() {
                    args.items.get_or_insert_with(Default::default).merge(child);
                }
            } else {
                args.merge(child);
            }
            out_branches.push(schema);
        }
        Value::Array(out_branches)
    }

    fn plain_schema_map(&mut self, key: &str, schemas: &Map<String, Value>, depth: usize) -> Value {
        let mut out = Map::new();
        for (i, (k, v)) in schemas.iter().enumerate() {
            if self.exhausted() {
                self.cut_rest("schemas", schemas.len() - i);
                break;
            }
            let (schema, _) = self.descend(&[key, k], |s| s.plain(v, depth + 1));
            out.insert(k.clone(), schema);
        }
        Value::Object(out)
    }

    /// `required` names each declared property once, and only those.
    fn clean_required(&mut self, out: &mut Map<String, Value>) {
        let Some(Value::Array(required)) = out.get("required") else {
            return;
        };
        let declared = out.get("properties").and_then(Value::as_object);
        let mut seen = HashSet::new();
        let kept: Vec<Value> = required
            .iter()
            .filter(|r| {
                r.as_str()
                    .is_some_and(|r| declared.is_none_or(|d| d.contains_key(r)) && seen.insert(r))
            })
            .cloned()
            .collect();
        if kept.len() != required.len() {
            let dropped = required.len() - kept.len();
            self.record(|| format!("required: {dropped} repeated or undeclared names dropped"));
            out.insert("required".into(), Value::Array(kept));
        }
    }

    pub(super) fn renames<'k>(
        &mut self,
        props: &'k Map<String, Value>,
    ) -> HashMap<&'k str, String> {
        rename_keys(props.keys().map(String::as_str), self.rule)
            .into_iter()
            .collect()
    }

    pub(super) fn renamed(&mut self, new: &str) {
        self.tally.renamed_keys += 1;
        let pattern = self.rule.pattern();
        self.record(|| format!("key sent as {new:?}: keys must match {pattern}"));
    }
}

/// Whether a keyword's value is of the kind JSON Schema (Draft 7 and 2020-12)
/// requires; keywords this does not know pass.
pub(super) fn keyword_fits(key: &str, value: &Value) -> bool {
    let count = |v: &Value| v.as_u64().is_some();
    match key {
        "title" | "description" | "pattern" | "format" | "$comment" | "contentMediaType"
        | "contentEncoding" | "$ref" | "$id" | "$schema" | "$anchor" | "$dynamicRef"
        | "$dynamicAnchor" | "$recursiveRef" => value.is_string(),
        "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties" | "maxProperties"
        | "minContains" | "maxContains" => count(value),
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => value.is_number(),
        "multipleOf" => value.as_f64().is_some_and(|m| m > 0.0),
        "enum" | "examples" => value.is_array(),
        "items" => {
            value.is_object()
                || value.is_boolean()
                || value.as_array().is_some_and(|a| !a.is_empty())
        }
        "uniqueItems" | "readOnly" | "writeOnly" | "deprecated" => value.is_boolean(),
        "type" => type_fits(value),
        "properties" | "patternProperties" | "dependentSchemas" => value.is_object(),
        "required" => value.is_array(),
        "additionalProperties"
        | "not"
        | "if"
        | "then"
        | "else"
        | "contains"
        | "propertyNames"
        | "additionalItems"
        | "unevaluatedItems"
        | "unevaluatedProperties" => value.is_object() || value.is_boolean(),
        "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
            value.as_array().is_some_and(|a| !a.is_empty())
        }
        _ => true,
    }
}

fn type_fits(value: &Value) -> bool {
    const TYPES: &[&str] = &[
        "array", "boolean", "integer", "null", "number", "object", "string",
    ];
    match value {
        Value::String(t) => TYPES.contains(&t.as_str()),
        Value::Array(all) => {
            let mut seen = HashSet::new();
            !all.is_empty()
                && all.iter().all(|t| {
                    t.as_str()
                        .is_some_and(|t| TYPES.contains(&t) && seen.insert(t))
                })
        }
        _ => false,
    }
}

pub(super) fn rename_list(keys: &[Value], renamed: &HashMap<&str, String>) -> Value {
    keys.iter()
        .map(|k| match k.as_str().and_then(|k| renamed.get(k)) {
            Some(new) => json!(new),
            None => k.clone(),
        })
        .collect()
}

/// Declares every property in `args`, so `values` applies to the others only.
fn declare_all(args: &mut ArgNode, out: &Map<String, Value>) {
    if let Some(props) = out.get("properties").and_then(Value::as_object) {
        for key in props.keys() {
            args.properties.entry(key.clone()).or_default();
        }
    }
}

/// Values inside the schema that hold arguments get the model's keys too.
fn rename_examples(out: &mut Map<String, Value>, args: &ArgNode) {
    if args.is_empty() {
        return;
    }
    for k in ["default", "example", "const"] {
        if let Some(v) = out.get_mut(k) {
            *v = args.to_model(v.take());
        }
    }
    for k in ["examples", "enum"] {
        if let Some(Value::Array(all)) = out.get_mut(k) {
            for v in all.iter_mut() {
                *v = args.to_model(v.take());
            }
        }
    }
}
