//! The way back from a model's arguments to the tool's own: `argumentMap`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Per tool name (as sent to the model), what to undo in its arguments. A tool
/// absent from the map takes its arguments unchanged.
///
/// Serialized, it is `{"<tool name>": <node>}`, where a node mirrors the
/// schema and only where something must be undone:
/// `{"from"?: "<original key>", "properties"?: {"<key sent>": node},
///   "items"?: node, "values"?: node, "jsonString"?: "object" | "any",
///   "omitIfNull"?: ["<key sent>", …]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArgumentMap(pub BTreeMap<String, ArgNode>);

/// What to undo at one place of a tool's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgNode {
    /// The property's original key, when the model sees another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Children, keyed by the key the model sees.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, ArgNode>,
    /// Every element of an array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ArgNode>>,
    /// Values under keys not declared in `properties` (`additionalProperties`).
    /// When present, `properties` lists every declared key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Box<ArgNode>>,
    /// The model sends this value as a JSON-encoded string: a free-form object
    /// (`"object"`) or an untyped value (`"any"`) the provider cannot describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_string: Option<JsonKind>,
    /// Keys (as sent) of properties that were optional and are required of the
    /// model (strict mode): a `null` there means "absent", so the tool's
    /// default applies.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub omit_if_null: BTreeSet<String>,
}

/// What a JSON-encoded string holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JsonKind {
    /// An object: a string that decodes to anything else is passed on as is.
    Object,
    /// Any JSON value: a string that is not JSON is passed on as is.
    Any,
}

impl ArgNode {
    pub fn is_empty(&self) -> bool {
        self == &ArgNode::default()
    }

    /// Adds what `other` undoes (the branches of an `anyOf`). On a conflict
    /// (two branches renaming one key differently) the first branch wins.
    pub(crate) fn merge(&mut self, other: ArgNode) {
        if self.from.is_none() {
            self.from = other.from;
        }
        for (key, node) in other.properties {
            self.properties.entry(key).or_default().merge(node);
        }
        merge_boxed(&mut self.items, other.items);
        merge_boxed(&mut self.values, other.values);
        self.json_string = self.json_string.or(other.json_string);
        self.omit_if_null.extend(other.omit_if_null);
    }

    /// The tool's arguments from the model's.
    pub fn restore(&self, value: Value) -> Value {
        let value = match (value, self.json_string) {
            (Value::String(s), Some(kind)) => {
                // A decoded value holds original keys: nothing more to undo.
                return match serde_json::from_str::<Value>(&s) {
                    Ok(decoded) if kind == JsonKind::Any || decoded.is_object() => decoded,
                    _ => Value::String(s),
                };
            }
            (other, _) => other,
        };
        match value {
            Value::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (key, field) in fields {
                    if field.is_null() && self.omit_if_null.contains(&key) {
                        continue;
                    }
                    let child = self.properties.get(&key).or(self.values.as_deref());
                    let original = child.and_then(|c| c.from.clone()).unwrap_or(key);
                    let field = match child {
                        Some(c) => c.restore(field),
                        None => field,
                    };
                    out.insert(original, field);
                }
                Value::Object(out)
            }
            Value::Array(elements) => match &self.items {
                Some(items) => {
                    Value::Array(elements.into_iter().map(|e| items.restore(e)).collect())
                }
                None => Value::Array(elements),
            },
            other => other,
        }
    }

    /// The model's arguments from the tool's: the inverse of `restore`, for
    /// replaying stored calls to a model and for examples inside schemas.
    pub fn to_model(&self, value: Value) -> Value {
        if self.json_string.is_some() && !value.is_null() {
            return Value::String(value.to_string());
        }
        match value {
            Value::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                // By original key: one lookup a field, not a scan of the properties.
                let by_original: HashMap<&str, (&String, &ArgNode)> = self
                    .properties
                    .iter()
                    .map(|(sent, c)| (c.from.as_deref().unwrap_or(sent), (sent, c)))
                    .collect();
                for (key, field) in fields {
                    let declared = by_original.get(key.as_str()).copied();
                    let (sent, child) = match declared {
                        Some((sent, c)) => (sent.clone(), Some(c)),
                        None => (key, self.values.as_deref()),
                    };
                    let field = match child {
                        Some(c) => c.to_model(field),
                        None => field,
                    };
                    out.insert(sent, field);
                }
                for sent in &self.omit_if_null {
                    if !out.contains_key(sent) {
                        out.insert(sent.clone(), Value::Null);
                    }
                }
                Value::Object(out)
            }
            Value::Array(elements) => match &self.items {
                Some(items) => {
                    Value::Array(elements.into_iter().map(|e| items.to_model(e)).collect())
                }
                None => Value::Array(elements),
            },
            other => other,
        }
    }
}

fn merge_boxed(into: &mut Option<Box<ArgNode>>, from: Option<Box<ArgNode>>) {
    match (into.as_mut(), from) {
        (Some(a), Some(b)) => a.merge(*b),
        (None, Some(b)) => *into = Some(b),
        _ => {}
    }
}

impl ArgumentMap {
    /// The arguments to send to Composio for a call the model made to
    /// `tool_name` (the name the model saw).
    pub fn restore(&self, tool_name: &str, args: Value) -> Value {
        match self.0.get(tool_name) {
            Some(node) => node.restore(args),
            None => args,
        }
    }

    /// The arguments as the model would send them, from the tool's own.
    pub fn to_model(&self, tool_name: &str, args: Value) -> Value {
        match self.0.get(tool_name) {
            Some(node) => node.to_model(args),
            None => args,
        }
    }
}

/// The arguments to send to Composio for a call the model made to `tool_name`.
pub fn restore_arguments(map: &ArgumentMap, tool_name: &str, args: Value) -> Value {
    map.restore(tool_name, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(json: Value) -> ArgNode {
        serde_json::from_value(json).expect("a node")
    }

    #[test]
    fn restores_renamed_keys_at_every_level_and_drops_nulls_of_optional_fields() {
        let map = node(json!({
            "properties": {
                "a_b": {"from": "a.b"},
                "list": {"items": {"properties": {"_1_x": {"from": "+1"}}}},
                "blob": {"jsonString": "object"}
            },
            "omitIfNull": ["opt", "blob"]
        }));
        let model = json!({"a_b": 1, "list": [{"_1_x": 2}, {"other": 3}], "opt": null,
                           "blob": "{\"k\": [1]}", "free": 4});
        let original = json!({"a.b": 1, "list": [{"+1": 2}, {"other": 3}],
                              "blob": {"k": [1]}, "free": 4});
        assert_eq!(map.restore(model.clone()), original);
        assert_eq!(
            map.to_model(original),
            json!({"a_b": 1, "list": [{"_1_x": 2}, {"other": 3}],
            "blob": "{\"k\":[1]}", "free": 4, "opt": null})
        );
        assert_eq!(map.restore(json!({"blob": null, "opt": null})), json!({}));
    }

    #[test]
    fn a_string_that_is_not_json_is_kept() {
        let any = node(json!({"jsonString": "any"}));
        assert_eq!(any.restore(json!("music")), json!("music"));
        assert_eq!(any.restore(json!("[1]")), json!([1]));
        let object = node(json!({"jsonString": "object"}));
        assert_eq!(object.restore(json!("[1]")), json!("[1]"));
        assert_eq!(object.restore(json!("{}")), json!({}));
    }

    #[test]
    fn values_apply_to_undeclared_keys_only() {
        let map = node(json!({
            "properties": {"known": {}},
            "values": {"properties": {"x_y": {"from": "x.y"}}}
        }));
        let model = json!({"known": {"x_y": 1}, "extra": {"x_y": 2}});
        assert_eq!(
            map.restore(model),
            json!({"known": {"x_y": 1}, "extra": {"x.y": 2}})
        );
    }

    #[test]
    fn unknown_tools_pass_through() {
        let map = ArgumentMap::default();
        assert_eq!(
            restore_arguments(&map, "X", json!({"a": 1})),
            json!({"a": 1})
        );
    }
}
