//! Rewriting a tool's input schema for a provider: property keys renamed to
//! the provider's rule everywhere, and, for Gemini and OpenAI strict mode, the
//! schema rebuilt from the keywords the provider accepts.

use super::args::{ArgNode, JsonKind};
use super::names::{rename_keys, KeyRule};
use plain::rename_list;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

mod budget;
mod keywords;
mod plain;
mod refs;
mod typed;
mod types;

#[cfg(test)]
mod tests;

pub(crate) use budget::approx_size;
use budget::*;
use refs::*;
pub(crate) use types::strict_nullable;
use types::*;

/// One alteration of a tool for a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The tool's slug.
    pub tool: String,
    /// JSON Pointer into the cached tool (`/slug`, `/inputParameters/...`).
    pub path: String,
    pub reason: String,
}

/// How far a schema is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Kept as is but for renamed keys and inlined `$ref`s.
    Plain,
    /// Gemini's OpenAPI subset.
    Gemini,
    /// OpenAI strict mode (structured outputs).
    Strict,
}

/// Counts of what a rewrite altered, for the compatibility report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    pub renamed_keys: u32,
    pub json_encoded: u32,
    pub made_required: u32,
    pub closed: u32,
    pub dropped: BTreeSet<String>,
    /// The root accepts arbitrary keys, which the dialect cannot express.
    pub root_closed: bool,
    /// The conversion ran out of budget (the first limit hit): the part cut
    /// accepts any value.
    pub cut: Option<String>,
}

/// OpenAI strict mode allows this many levels of object nesting.
const STRICT_MAX_DEPTH: usize = 10;
/// Formats OpenAI strict mode accepts on strings.
const STRICT_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];
/// Keywords copied unchanged, where they appear, per dialect.
const GEMINI_COPIED: &[&str] = &[
    "title",
    "description",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
];
const STRICT_COPIED: &[&str] = &[
    "title",
    "description",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
];
/// Keywords the rewrite reads and translates itself, in both dialects.
const TRANSLATED: &[&str] = &[
    "type",
    "nullable",
    "properties",
    "required",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "$defs",
    "definitions",
    "additionalProperties",
];

/// The rewritten input schema (`None`: Gemini, no parameters) and the way
/// back for the arguments.
pub(crate) struct Rewritten {
    pub schema: Option<Value>,
    pub args: ArgNode,
}

pub(crate) fn rewrite_input(
    schema: &Value,
    dialect: Dialect,
    rule: KeyRule,
    tool: &str,
    changes: Option<&mut Vec<Change>>,
    tally: &mut Tally,
) -> Rewritten {
    let mut rewriter = Rewriter {
        dialect,
        rule,
        root: schema,
        refs: Vec::new(),
        path: String::from("/inputParameters"),
        tool,
        changes,
        tally,
        spent: Spent::default(),
    };
    let mut out = rewriter.root();
    rewriter.list_unlisted();
    if let Some(schema) = out.schema.as_mut() {
        object_root(schema);
    }
    out
}

struct Rewriter<'s, 'c> {
    dialect: Dialect,
    rule: KeyRule,
    root: &'s Value,
    /// `$ref`s being inlined, outermost first: a repeat is a cycle.
    refs: Vec<String>,
    /// JSON Pointer of the node being rewritten, in the cached tool.
    path: String,
    tool: &'s str,
    changes: Option<&'c mut Vec<Change>>,
    tally: &'c mut Tally,
    spent: Spent,
}

type Node = (Value, ArgNode);

impl Rewriter<'_, '_> {
    fn record(&mut self, reason: impl FnOnce() -> String) {
        let Some(changes) = self.changes.as_deref_mut() else {
            return;
        };
        if let Some(last) = changes
            .last_mut()
            .filter(|c| c.path == self.path && c.tool == self.tool)
        {
            if last.reason.len() < MAX_REASON_LEN {
                last.reason.push_str("; ");
                last.reason.push_str(&reason());
            }
            return;
        }
        if self.spent.changes >= MAX_CHANGES {
            self.spent.unlisted += 1;
            return;
        }
        self.spent.changes += 1;
        changes.push(Change {
            tool: self.tool.to_owned(),
            path: self.path.clone(),
            reason: reason(),
        });
    }

    /// One change says how many were not listed, so a tool's list stays short.
    fn list_unlisted(&mut self) {
        let unlisted = std::mem::take(&mut self.spent.unlisted);
        if let (Some(changes), true) = (self.changes.as_deref_mut(), unlisted > 0) {
            changes.push(Change {
                tool: self.tool.to_owned(),
                path: "/inputParameters".into(),
                reason: format!(
                    "{unlisted} more changes not listed (at most {MAX_CHANGES} a tool)"
                ),
            });
        }
    }

    fn descend<T>(&mut self, segments: &[&str], f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.path.len();
        for segment in segments {
            self.spent.bytes += segment.len();
            self.path.push('/');
            self.path
                .push_str(&segment.replace('~', "~0").replace('/', "~1"));
        }
        let out = f(self);
        self.path.truncate(len);
        out
    }

    fn root(&mut self) -> Rewritten {
        let root = resolve_root(self.root);
        if let Some(why) = not_an_object(&root) {
            return self.no_arguments(&format!("{why}: providers take an object"));
        }
        let map = root.as_object();
        if self.dialect == Dialect::Plain {
            let (schema, args) = self.plain(&root, 0);
            return Rewritten {
                schema: Some(schema),
                args,
            };
        }
        let has_properties = map
            .and_then(|m| m.get("properties"))
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        if has_properties {
            let (schema, args) = self.object(map.unwrap_or(&Map::new()), false, 0, true);
            return Rewritten {
                schema: Some(schema),
                args,
            };
        }
        if map.is_some_and(takes_undeclared_arguments) {
            return self.no_arguments(
                "the root takes arguments this format cannot express (no declared properties)",
            );
        }
        self.no_arguments_quietly()
    }

    /// The tool takes no arguments in this format, for the reason `why`.
    fn no_arguments(&mut self, why: &str) -> Rewritten {
        self.tally.root_closed = true;
        self.record(|| format!("{why}: the tool takes none here"));
        self.no_arguments_quietly()
    }

    fn no_arguments_quietly(&mut self) -> Rewritten {
        let schema = match self.dialect {
            Dialect::Gemini => None,
            Dialect::Strict => Some(json!({
                "type": "object", "properties": {}, "required": [], "additionalProperties": false
            })),
            Dialect::Plain => Some(json!({"type": "object", "properties": {}})),
        };
        Rewritten {
            schema,
            args: ArgNode::default(),
        }
    }

    /// Inlines a `$ref`, guarding against cycles, then rewrites with `f`.
    fn with_ref(
        &mut self,
        map: &Map<String, Value>,
        reference: &str,
        f: fn(&mut Self, &Value, usize) -> Node,
        depth: usize,
    ) -> Node {
        let target = if self.refs.iter().any(|r| r == reference) {
            Err("a recursive $ref, cut here")
        } else {
            lookup(self.root, reference).ok_or("an unresolvable $ref")
        };
        let target = match target {
            Ok(target) => target,
            Err(why) => return self.any_value(map, why),
        };
        self.refs.push(reference.to_owned());
        let out = if map.len() == 1 {
            f(self, target, depth)
        } else {
            // Siblings of `$ref` override the target's keywords: a copy, paid for.
            self.spent.bytes += approx_size(target, self.bytes_left());
            let mut merged = target.as_object().cloned().unwrap_or_default();
            for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
                merged.insert(k.clone(), v.clone());
            }
            f(self, &Value::Object(merged), depth)
        };
        self.refs.pop();
        out
    }

    /// A node replaced by one accepting any value, for the reason `why`.
    fn any_value(&mut self, map: &Map<String, Value>, why: &str) -> Node {
        let mut any = Map::new();
        copy_annotations(map, &mut any);
        if self.dialect == Dialect::Plain {
            self.record(|| format!("{why}: any value accepted"));
            return (Value::Object(any), ArgNode::default());
        }
        self.json_string(&any, JsonKind::Any, false, why)
    }
}

/// Why a root cannot be the object providers require (`None`: it can).
fn not_an_object(root: &Value) -> Option<String> {
    let ty = match root {
        Value::Null | Value::Bool(true) => return None,
        Value::Object(map) => map.get("type"),
        other => return Some(format!("the input schema is {}", json_type(other))),
    };
    let object_allowed = match ty {
        None => true,
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(all)) => all.iter().any(|t| t == "object"),
        Some(_) => false,
    };
    (!object_allowed).then(|| format!("the root is of type {}", ty.unwrap_or(&Value::Null)))
}

fn takes_undeclared_arguments(map: &Map<String, Value>) -> bool {
    map.get("additionalProperties")
        .is_some_and(|a| a != &Value::Bool(false))
        || ["anyOf", "oneOf", "patternProperties"]
            .iter()
            .any(|k| map.contains_key(*k))
}

/// Every provider wants an object root with its properties (OpenAI too).
fn object_root(schema: &mut Value) {
    let Some(out) = schema.as_object_mut() else {
        *schema = json!({"type": "object", "properties": {}});
        return;
    };
    out.insert("type".into(), json!("object"));
    if !out.get("properties").is_some_and(Value::is_object) {
        out.insert("properties".into(), json!({}));
    }
    // A root `required` without `properties` names keys the root now declares not.
    let declared = &out["properties"];
    if let Some(Value::Array(required)) = out.get("required") {
        let kept: Vec<Value> = required
            .iter()
            .filter(|r| r.as_str().is_some_and(|r| declared.get(r).is_some()))
            .cloned()
            .collect();
        out.insert("required".into(), Value::Array(kept));
    }
}
