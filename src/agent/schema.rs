//! Rewriting a tool's input schema for a provider: property keys renamed to
//! the provider's rule everywhere, and, for Gemini and OpenAI strict mode, the
//! schema rebuilt from the keywords the provider accepts.

use super::args::{ArgNode, JsonKind};
use super::names::{rename_keys, KeyRule};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

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
    };
    rewriter.root()
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
}

type Node = (Value, ArgNode);

impl Rewriter<'_, '_> {
    fn record(&mut self, reason: impl FnOnce() -> String) {
        if let Some(changes) = self.changes.as_deref_mut() {
            if let Some(last) = changes
                .last_mut()
                .filter(|c| c.path == self.path && c.tool == self.tool)
            {
                last.reason.push_str("; ");
                last.reason.push_str(&reason());
                return;
            }
            changes.push(Change {
                tool: self.tool.to_owned(),
                path: self.path.clone(),
                reason: reason(),
            });
        }
    }

    fn descend<T>(&mut self, segments: &[&str], f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.path.len();
        for segment in segments {
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
        let map = root.as_object();
        let has_properties = map
            .and_then(|m| m.get("properties"))
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        if self.dialect == Dialect::Plain {
            let (mut schema, args) = self.plain(&root, 0);
            match schema.as_object_mut() {
                // Every provider wants an object root; OpenAI wants its properties too.
                Some(out) => {
                    out.entry("type").or_insert_with(|| json!("object"));
                    out.entry("properties").or_insert_with(|| json!({}));
                }
                None => schema = json!({"type": "object", "properties": {}}),
            }
            return Rewritten {
                schema: Some(schema),
                args,
            };
        }
        if has_properties {
            let (schema, args) = self.object(map.unwrap_or(&Map::new()), false, 0, true);
            return Rewritten {
                schema: Some(schema),
                args,
            };
        }
        let takes_arguments = map.is_some_and(|m| {
            m.get("additionalProperties")
                .is_some_and(|a| a != &Value::Bool(false))
                || ["anyOf", "oneOf", "patternProperties"]
                    .iter()
                    .any(|k| m.contains_key(*k))
        });
        if takes_arguments {
            self.tally.root_closed = true;
            self.record(|| {
                "the root takes arguments this format cannot express (no declared \
                 properties): the tool takes none here"
                    .into()
            });
        }
        let schema = match self.dialect {
            Dialect::Gemini => None,
            _ => Some(json!({
                "type": "object", "properties": {}, "required": [], "additionalProperties": false
            })),
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
        match target {
            Ok(target) => {
                let mut merged = target.as_object().cloned().unwrap_or_default();
                for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
                    merged.insert(k.clone(), v.clone());
                }
                self.refs.push(reference.to_owned());
                let out = f(self, &Value::Object(merged), depth);
                self.refs.pop();
                out
            }
            Err(why) => {
                let mut any = Map::new();
                copy_annotations(map, &mut any);
                if self.dialect == Dialect::Plain {
                    self.record(|| format!("{why}: any value accepted"));
                    return (Value::Object(any), ArgNode::default());
                }
                self.json_string(&any, JsonKind::Any, false, why)
            }
        }
    }

    // ---- Plain: renames only -------------------------------------------

    fn plain(&mut self, node: &Value, depth: usize) -> Node {
        let Some(map) = node.as_object() else {
            return (node.clone(), ArgNode::default());
        };
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            return self.with_ref(map, reference, Self::plain, depth);
        }
        let mut args = ArgNode::default();
        let mut out = Map::with_capacity(map.len());
        let mut renamed: HashMap<&str, String> = HashMap::new();
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            renamed = self.renames(props);
        }
        for (key, value) in map {
            let rewritten = match (key.as_str(), value) {
                ("properties", Value::Object(props)) => {
                    let mut out_props = Map::with_capacity(props.len());
                    for (k, v) in props {
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
                    Value::Object(out_props)
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
                ("items" | "prefixItems" | "anyOf" | "oneOf" | "allOf", Value::Array(branches)) => {
                    let mut out_branches = Vec::with_capacity(branches.len());
                    for (i, branch) in branches.iter().enumerate() {
                        let index = i.to_string();
                        let (schema, child) =
                            self.descend(&[key, &index], |s| s.plain(branch, depth + 1));
                        if matches!(key.as_str(), "items" | "prefixItems") {
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
                // Every `$ref` is inlined: the definitions are not needed.
                ("$defs" | "definitions", _) if depth == 0 => continue,
                _ => value.clone(),
            };
            out.insert(key.clone(), rewritten);
        }
        if args.values.is_some() {
            declare_all(&mut args, &out);
        }
        rename_examples(&mut out, &args);
        (Value::Object(out), args)
    }

    fn renames<'k>(&mut self, props: &'k Map<String, Value>) -> HashMap<&'k str, String> {
        rename_keys(props.keys().map(String::as_str), self.rule)
            .into_iter()
            .collect()
    }

    fn renamed(&mut self, new: &str) {
        self.tally.renamed_keys += 1;
        let pattern = self.rule.pattern();
        self.record(|| format!("key sent as {new:?}: keys must match {pattern}"));
    }

    // ---- Gemini and strict: rebuilt ------------------------------------

    fn typed(&mut self, node: &Value, depth: usize) -> Node {
        let empty = Map::new();
        let map = node.as_object().unwrap_or(&empty);
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            return self.with_ref(map, reference, Self::typed, depth);
        }
        if let Some(all) = map.get("allOf").and_then(Value::as_array) {
            self.record(|| "allOf merged into one schema".into());
            return self.typed(&merge_all_of(self.root, map, all), depth);
        }
        let union = match (map.get("anyOf"), map.get("oneOf")) {
            (Some(Value::Array(any)), _) => Some(("anyOf", any)),
            (_, Some(Value::Array(one))) => {
                self.record(|| "oneOf sent as anyOf".into());
                Some(("oneOf", one))
            }
            _ => None,
        };
        let (types, mut nullable) = type_list(map);
        if let Some((keyword, branches)) = union {
            return self.union(map, keyword, branches, nullable, depth);
        }
        if types.len() > 1 {
            let branches: Vec<Value> = types
                .iter()
                .map(|t| {
                    let mut branch = map.clone();
                    branch.insert("type".into(), json!(t));
                    branch.remove("nullable");
                    for k in ["title", "description", "default", "examples", "example"] {
                        branch.remove(k);
                    }
                    Value::Object(branch)
                })
                .collect();
            return self.union(map, "type", &branches, nullable, depth);
        }
        let ty = types.first().copied().or_else(|| infer_type(map));
        if ty == Some("null") {
            nullable = true;
        }
        match ty {
            Some("object") => {
                let has_properties = map
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| !p.is_empty());
                let closed = map.get("additionalProperties") == Some(&Value::Bool(false));
                if self.dialect == Dialect::Strict && depth >= STRICT_MAX_DEPTH {
                    let why = "an object nested deeper than strict mode's 10 levels";
                    self.json_string(map, JsonKind::Object, nullable, why)
                } else if has_properties {
                    self.object(map, nullable, depth, false)
                } else if closed && self.dialect == Dialect::Strict {
                    // Only `{}` is valid: strict mode can say so.
                    let mut out = Map::new();
                    out.insert("type".into(), strict_type("object", nullable));
                    copy_annotations(map, &mut out);
                    out.insert("properties".into(), json!({}));
                    out.insert("required".into(), json!([]));
                    out.insert("additionalProperties".into(), json!(false));
                    (Value::Object(out), ArgNode::default())
                } else {
                    self.json_string(map, JsonKind::Object, nullable, "a free-form object")
                }
            }
            Some("array") => self.array(map, nullable, depth),
            Some(scalar @ ("string" | "number" | "integer" | "boolean")) => {
                self.scalar(map, scalar, nullable)
            }
            Some("null") => self.scalar(map, "null", true),
            _ => self.json_string(map, JsonKind::Any, nullable, "an untyped value"),
        }
    }

    fn union(
        &mut self,
        outer: &Map<String, Value>,
        keyword: &str,
        branches: &[Value],
        nullable: bool,
        depth: usize,
    ) -> Node {
        let non_null: Vec<(usize, &Value)> = branches
            .iter()
            .enumerate()
            .filter(|(_, b)| !is_null_schema(b))
            .collect();
        let nullable = nullable || non_null.len() < branches.len();
        if non_null.is_empty() {
            return self.scalar(outer, "null", true);
        }
        if let [(index, only)] = non_null[..] {
            // `anyOf: [X, null]`: X, nullable, with the outer annotations.
            let mut merged = only.as_object().cloned().unwrap_or_default();
            for (k, v) in outer {
                if !matches!(k.as_str(), "anyOf" | "oneOf" | "type") {
                    merged.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            if nullable {
                merged.insert("nullable".into(), json!(true));
            }
            let segments = branch_path(keyword, index);
            return self.descend(&segments, |s| s.typed(&Value::Object(merged), depth));
        }
        let mut args = ArgNode::default();
        let mut out_branches = Vec::with_capacity(non_null.len() + 1);
        for (index, branch) in non_null {
            let segments = branch_path(keyword, index);
            let (schema, child) = self.descend(&segments, |s| s.typed(branch, depth));
            args.merge(child);
            out_branches.push(schema);
        }
        let mut out = Map::new();
        copy_annotations(outer, &mut out);
        if nullable {
            match self.dialect {
                Dialect::Strict => out_branches.push(json!({"type": "null"})),
                _ => {
                    out.insert("nullable".into(), json!(true));
                }
            }
        }
        out.insert("anyOf".into(), Value::Array(out_branches));
        if self.dialect == Dialect::Gemini {
            self.gemini_values(outer, &mut out, &args);
        }
        (Value::Object(out), args)
    }

    fn object(
        &mut self,
        map: &Map<String, Value>,
        nullable: bool,
        depth: usize,
        is_root: bool,
    ) -> Node {
        let empty = Map::new();
        let props = map
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: BTreeSet<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let renamed = self.renames(props);
        let mut args = ArgNode::default();
        let mut out_props = Map::with_capacity(props.len());
        for (key, value) in props {
            let sent = renamed.get(key.as_str()).unwrap_or(key).clone();
            let optional = !required.contains(key.as_str());
            let (schema, child) = self.descend(&["properties", key], |s| {
                let (mut schema, mut child) = s.typed(value, depth + 1);
                if renamed.contains_key(key.as_str()) {
                    child.from = Some(key.clone());
                    s.renamed(&sent);
                }
                if s.dialect == Dialect::Strict && optional {
                    if !strict_nullable(&schema) {
                        make_nullable(&mut schema);
                    }
                    s.tally.made_required += 1;
                    s.record(|| "was optional: made required and nullable".into());
                }
                (schema, child)
            });
            if !child.is_empty() {
                args.properties.insert(sent.clone(), child);
            }
            if self.dialect == Dialect::Strict && optional {
                args.omit_if_null.insert(sent.clone());
            }
            out_props.insert(sent, schema);
        }
        let mut out = Map::new();
        match self.dialect {
            Dialect::Strict => {
                out.insert("type".into(), strict_type("object", nullable && !is_root));
            }
            _ => {
                out.insert("type".into(), json!("object"));
            }
        }
        copy_annotations(map, &mut out);
        if self.dialect == Dialect::Gemini && nullable {
            out.insert("nullable".into(), json!(true));
        }
        let sent_required: Vec<Value> = match self.dialect {
            Dialect::Strict => out_props.keys().map(|k| json!(k)).collect(),
            _ => props
                .keys()
                .filter(|k| required.contains(k.as_str()))
                .map(|k| json!(renamed.get(k.as_str()).unwrap_or(k)))
                .collect(),
        };
        out.insert("properties".into(), Value::Object(out_props));
        if !sent_required.is_empty() || self.dialect == Dialect::Strict {
            out.insert("required".into(), Value::Array(sent_required));
        }
        match self.dialect {
            Dialect::Strict => {
                out.insert("additionalProperties".into(), json!(false));
                if map
                    .get("additionalProperties")
                    .is_some_and(|a| a != &Value::Bool(false))
                {
                    self.tally.closed += 1;
                    self.record(|| "undeclared keys no longer accepted".into());
                }
                self.copy_allowed(map, &mut out, STRICT_COPIED);
            }
            _ => {
                if let Some(Value::Array(order)) = map.get("propertyOrdering") {
                    out.insert("propertyOrdering".into(), rename_list(order, &renamed));
                }
                self.copy_allowed(map, &mut out, GEMINI_COPIED);
                self.gemini_values(map, &mut out, &args);
            }
        }
        self.dropped(map, &["propertyOrdering"]);
        (Value::Object(out), args)
    }

    fn array(&mut self, map: &Map<String, Value>, nullable: bool, depth: usize) -> Node {
        let (items, item_args) = match map.get("items") {
            Some(items @ Value::Object(_)) => self.descend(&["items"], |s| s.typed(items, depth)),
            Some(Value::Array(tuple)) => {
                self.record(|| "tuple items sent as anyOf".into());
                let branches = Value::Array(tuple.clone());
                let union = json!({"anyOf": branches});
                self.descend(&["items"], |s| s.typed(&union, depth))
            }
            _ => self.descend(&["items"], |s| s.typed(&json!({}), depth)),
        };
        let mut out = Map::new();
        out.insert("type".into(), self.type_value("array", nullable));
        copy_annotations(map, &mut out);
        if self.dialect == Dialect::Gemini && nullable {
            out.insert("nullable".into(), json!(true));
        }
        out.insert("items".into(), items);
        let mut args = ArgNode::default();
        if !item_args.is_empty() {
            args.items = Some(Box::new(item_args));
        }
        match self.dialect {
            Dialect::Strict => self.copy_allowed(map, &mut out, STRICT_COPIED),
            _ => {
                self.copy_allowed(map, &mut out, GEMINI_COPIED);
                self.gemini_values(map, &mut out, &args);
            }
        }
        self.dropped(map, &[]);
        (Value::Object(out), args)
    }

    fn scalar(&mut self, map: &Map<String, Value>, ty: &str, nullable: bool) -> Node {
        let mut out = Map::new();
        let gemini = self.dialect == Dialect::Gemini;
        let mut note = None;
        // Gemini has no null type: a value that can only be null is a nullable string.
        let sent_ty = if gemini && ty == "null" { "string" } else { ty };
        out.insert(
            "type".into(),
            self.type_value(sent_ty, nullable && ty != "null"),
        );
        if let Some(format) = map.get("format").and_then(Value::as_str) {
            let allowed = match self.dialect {
                Dialect::Strict => ty == "string" && STRICT_FORMATS.contains(&format),
                _ => matches!(
                    (ty, format),
                    ("string", "date-time" | "enum")
                        | ("integer", "int32" | "int64")
                        | ("number", "float" | "double")
                ),
            };
            if allowed {
                out.insert("format".into(), json!(format));
            } else {
                self.note_dropped("format");
                self.record(|| format!("format {format:?} dropped"));
            }
        }
        copy_annotations(map, &mut out);
        if gemini && nullable {
            out.insert("nullable".into(), json!(true));
        }
        let mut values: Option<Vec<Value>> = map
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .or_else(|| map.get("const").map(|c| vec![c.clone()]));
        if let Some(values) = values.as_mut() {
            let had_null = values.iter().any(Value::is_null);
            values.retain(|v| !v.is_null());
            match self.dialect {
                Dialect::Strict => {
                    if nullable || had_null {
                        values.push(Value::Null);
                    }
                    if map.contains_key("enum") {
                        out.insert("enum".into(), Value::Array(values.clone()));
                    } else if let [single] = &values[..] {
                        out.insert("const".into(), single.clone());
                    } else {
                        out.insert("enum".into(), Value::Array(values.clone()));
                    }
                }
                _ if values.iter().all(Value::is_string) => {
                    if had_null {
                        out.insert("nullable".into(), json!(true));
                    }
                    out.insert("enum".into(), Value::Array(values.clone()));
                }
                _ => {
                    let listed: Vec<String> = values.iter().map(Value::to_string).collect();
                    note = Some(format!("Allowed values: {}.", listed.join(", ")));
                    self.note_dropped("enum");
                    self.record(|| "non-string enum moved to the description".into());
                }
            }
        }
        if let Some(note) = note {
            append_description(&mut out, &note);
        }
        match self.dialect {
            Dialect::Strict => self.copy_allowed(map, &mut out, STRICT_COPIED),
            _ => {
                self.copy_allowed(map, &mut out, GEMINI_COPIED);
                self.exclusive_bounds(map, ty, &mut out);
                self.gemini_values(map, &mut out, &ArgNode::default());
            }
        }
        self.dropped(map, &["format", "enum", "const"]);
        (Value::Object(out), ArgNode::default())
    }

    /// A value the dialect cannot describe (`why`), sent as a JSON-encoded string.
    fn json_string(
        &mut self,
        map: &Map<String, Value>,
        kind: JsonKind,
        nullable: bool,
        why: &str,
    ) -> Node {
        self.tally.json_encoded += 1;
        let note = match kind {
            JsonKind::Object => "Send a JSON object encoded as a string.",
            JsonKind::Any => "Send any JSON value encoded as a string.",
        };
        self.record(|| format!("{why}: sent as a JSON-encoded string"));
        let mut out = Map::new();
        out.insert("type".into(), self.type_value("string", nullable));
        copy_annotations(map, &mut out);
        append_description(&mut out, note);
        if self.dialect == Dialect::Gemini {
            if nullable {
                out.insert("nullable".into(), json!(true));
            }
            let example = match (map.get("examples"), map.get("example")) {
                (Some(Value::Array(all)), _) => all.first(),
                (_, Some(one)) => Some(one),
                _ => None,
            };
            if let Some(example) = example {
                out.insert("example".into(), json!(example.to_string()));
            }
        }
        let args = ArgNode {
            json_string: Some(kind),
            ..ArgNode::default()
        };
        (Value::Object(out), args)
    }

    fn type_value(&self, ty: &str, nullable: bool) -> Value {
        match self.dialect {
            Dialect::Strict => strict_type(ty, nullable),
            _ => json!(ty),
        }
    }

    fn copy_allowed(
        &self,
        map: &Map<String, Value>,
        out: &mut Map<String, Value>,
        allowed: &[&str],
    ) {
        for (k, v) in map {
            if allowed.contains(&k.as_str()) && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }

    /// Gemini's `default` and `example`, with keys as the model sees them.
    fn gemini_values(
        &mut self,
        map: &Map<String, Value>,
        out: &mut Map<String, Value>,
        args: &ArgNode,
    ) {
        if let Some(default) = map.get("default") {
            out.insert("default".into(), args.to_model(default.clone()));
        }
        let is_array = out.get("type").and_then(Value::as_str) == Some("array");
        let example = match (map.get("example"), map.get("examples")) {
            (Some(one), _) => Some(one),
            // Examples of an array's elements are, together, an example of it.
            (_, Some(all @ Value::Array(items)))
                if is_array && items.first().is_some_and(|e| !e.is_array()) =>
            {
                Some(all)
            }
            (_, Some(Value::Array(all))) => all.first(),
            (_, Some(other)) => Some(other),
            _ => None,
        };
        if let Some(example) = example {
            out.insert("example".into(), args.to_model(example.clone()));
        }
    }

    /// Gemini has no exclusive bounds: an integer's becomes inclusive exactly,
    /// a number's loosely.
    fn exclusive_bounds(
        &mut self,
        map: &Map<String, Value>,
        ty: &str,
        out: &mut Map<String, Value>,
    ) {
        for (exclusive, inclusive) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            let Some(bound) = map.get(exclusive).and_then(Value::as_f64) else {
                continue;
            };
            let value = if ty == "integer" && exclusive == "exclusiveMinimum" {
                json!(bound.floor() as i64 + 1)
            } else if ty == "integer" {
                json!(bound.ceil() as i64 - 1)
            } else {
                self.record(|| format!("{exclusive} sent as the inclusive {inclusive}"));
                json!(bound)
            };
            out.entry(inclusive.to_owned()).or_insert(value);
        }
    }

    /// Records the keywords of `map` the dialect has no place for.
    fn dropped(&mut self, map: &Map<String, Value>, also_kept: &[&str]) {
        let copied = match self.dialect {
            Dialect::Strict => STRICT_COPIED,
            _ => GEMINI_COPIED,
        };
        let translated_here: &[&str] = match self.dialect {
            // Gemini keeps these; strict mode has no place for them.
            Dialect::Gemini => &[
                "default",
                "examples",
                "example",
                "exclusiveMinimum",
                "exclusiveMaximum",
            ],
            _ => &[],
        };
        // Gemini sends declared properties only: an open object is closed.
        let opened = |k: &str, v: &Value| {
            k == "additionalProperties"
                && self.dialect == Dialect::Gemini
                && v != &Value::Bool(false)
        };
        let dropped: Vec<&str> = map
            .iter()
            .filter(|(k, v)| {
                let k = k.as_str();
                opened(k, v)
                    || !(copied.contains(&k)
                        || TRANSLATED.contains(&k)
                        || translated_here.contains(&k)
                        || also_kept.contains(&k))
            })
            .map(|(k, _)| k.as_str())
            .collect();
        if dropped.is_empty() {
            return;
        }
        for k in &dropped {
            self.note_dropped(k);
        }
        self.record(|| format!("keywords dropped: {}", dropped.join(", ")));
    }

    fn note_dropped(&mut self, keyword: &str) {
        if !self.tally.dropped.contains(keyword) {
            self.tally.dropped.insert(keyword.to_owned());
        }
    }
}

/// How many keys the plain rewrite renames, without building it (for the
/// compatibility report): the same walk, counting.
pub(crate) fn count_renamed_keys(schema: &Value, rule: KeyRule) -> u32 {
    count_keys(&resolve_root(schema), schema, rule, &mut Vec::new())
}

fn count_keys(node: &Value, root: &Value, rule: KeyRule, refs: &mut Vec<String>) -> u32 {
    let Some(map) = node.as_object() else {
        return 0;
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        if refs.iter().any(|r| r == reference) {
            return 0;
        }
        let Some(target) = lookup(root, reference) else {
            return 0;
        };
        let mut merged = target.as_object().cloned().unwrap_or_default();
        for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
            merged.insert(k.clone(), v.clone());
        }
        refs.push(reference.to_owned());
        let count = count_keys(&Value::Object(merged), root, rule, refs);
        refs.pop();
        return count;
    }
    let mut count = 0;
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            count += u32::from(!rule.is_valid(key)) + count_keys(child, root, rule, refs);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child @ Value::Object(_)) = map.get(key) {
            count += count_keys(child, root, rule, refs);
        }
    }
    for key in ["items", "prefixItems", "anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            for branch in branches {
                count += count_keys(branch, root, rule, refs);
            }
        }
    }
    count
}

/// The root schema, with a root `$ref` resolved and a root `allOf` merged.
fn resolve_root(root: &Value) -> Cow<'_, Value> {
    if let Some(Value::Array(all)) = root.get("allOf") {
        if let Some(map) = root.as_object() {
            return Cow::Owned(merge_all_of(root, map, all));
        }
    }
    match root.get("$ref").and_then(Value::as_str) {
        Some(reference) if !root.get("properties").is_some_and(Value::is_object) => {
            match lookup(root, reference) {
                Some(target) => {
                    let mut merged = target.as_object().cloned().unwrap_or_default();
                    if let Some(map) = root.as_object() {
                        for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
                            merged.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                    Cow::Owned(Value::Object(merged))
                }
                None => Cow::Borrowed(root),
            }
        }
        _ => Cow::Borrowed(root),
    }
}

/// A local `$ref` (`#/$defs/X`, `#/definitions/X`, any `#/...` pointer).
fn lookup<'v>(root: &'v Value, reference: &str) -> Option<&'v Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer).filter(|v| v.is_object())
}

fn branch_path(keyword: &str, index: usize) -> Vec<&'static str> {
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
fn type_list(map: &Map<String, Value>) -> (Vec<&str>, bool) {
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

fn infer_type(map: &Map<String, Value>) -> Option<&'static str> {
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

fn json_type(value: &Value) -> &'static str {
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

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn strict_type(ty: &str, nullable: bool) -> Value {
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

fn make_nullable(schema: &mut Value) {
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

fn copy_annotations(from: &Map<String, Value>, out: &mut Map<String, Value>) {
    for k in ["title", "description"] {
        if let Some(v) = from.get(k).filter(|v| v.is_string()) {
            out.insert(k.into(), v.clone());
        }
    }
}

fn append_description(out: &mut Map<String, Value>, note: &str) {
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

fn rename_list(keys: &[Value], renamed: &HashMap<&str, String>) -> Value {
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

/// `allOf` of objects merged: properties and required lists united, other
/// keywords from the first branch that has them (the outer node first).
fn merge_all_of(root: &Value, outer: &Map<String, Value>, branches: &[Value]) -> Value {
    let mut merged: Map<String, Value> = outer
        .iter()
        .filter(|(k, _)| *k != "allOf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let resolved = branches
        .iter()
        .map(|b| match b.get("$ref").and_then(Value::as_str) {
            Some(reference) => lookup(root, reference).unwrap_or(b),
            None => b,
        });
    for branch in resolved.filter_map(Value::as_object) {
        for (k, v) in branch {
            match (k.as_str(), merged.get_mut(k), v) {
                ("properties", Some(Value::Object(into)), Value::Object(more)) => {
                    for (pk, pv) in more {
                        into.entry(pk.clone()).or_insert_with(|| pv.clone());
                    }
                }
                ("required", Some(Value::Array(into)), Value::Array(more)) => {
                    for r in more {
                        if !into.contains(r) {
                            into.push(r.clone());
                        }
                    }
                }
                (_, None, _) => {
                    merged.insert(k.clone(), v.clone());
                }
                _ => {}
            }
        }
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(schema: Value, dialect: Dialect) -> (Option<Value>, ArgNode, Vec<Change>, Tally) {
        let rule = if dialect == Dialect::Gemini {
            KeyRule::Gemini
        } else {
            KeyRule::Anthropic
        };
        let (mut changes, mut tally) = (Vec::new(), Tally::default());
        let out = rewrite_input(&schema, dialect, rule, "T", Some(&mut changes), &mut tally);
        (out.schema, out.args, changes, tally)
    }

    fn gemini(schema: Value) -> Value {
        rewrite(schema, Dialect::Gemini).0.expect("parameters")
    }

    #[test]
    fn refs_are_inlined_and_cycles_cut() {
        let schema = json!({
            "type": "object",
            "properties": {
                "node": {"$ref": "#/$defs/Node", "description": "the root node"},
                "missing": {"$ref": "#/$defs/Nope"}
            },
            "$defs": {"Node": {"type": "object", "properties": {
                "label": {"type": "string"},
                "child": {"$ref": "#/$defs/Node"}
            }}}
        });
        let out = gemini(schema.clone());
        let node = &out["properties"]["node"];
        assert_eq!(node["description"], "the root node");
        assert_eq!(node["properties"]["label"]["type"], "string");
        let cut = &node["properties"]["child"];
        assert_eq!(cut["type"], "string", "the cycle is cut to a JSON string");
        assert!(cut["description"]
            .as_str()
            .is_some_and(|d| d.contains("JSON")));
        assert_eq!(out["properties"]["missing"]["type"], "string");
        assert!(!out.to_string().contains("$ref") && !out.to_string().contains("$defs"));

        let (plain, ..) = rewrite(schema, Dialect::Plain);
        let plain = plain.expect("a schema");
        assert!(!plain.to_string().contains("$ref"), "{plain}");
        assert_eq!(
            plain["properties"]["node"]["properties"]["label"]["type"],
            "string"
        );
    }

    #[test]
    fn gemini_translates_type_arrays_const_examples_and_enums() {
        let out = gemini(json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"], "examples": ["x", "y"]},
                "b": {"const": "only"},
                "c": {"type": "integer", "enum": [1, 2], "description": "Level"},
                "d": {"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "D"},
                "e": {"type": ["string", "integer"]},
                "f": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
                "g": {"type": "string", "format": "uri"},
                "h": {"type": "string", "format": "date-time"},
                "i": {"oneOf": [{"type": "string"}, {"type": "boolean"}]},
                "j": {"allOf": [{"type": "object", "properties": {"x": {"type": "string"}}},
                                {"properties": {"y": {"type": "number"}}, "required": ["y"]}]},
                "k": {"type": "array"},
                "l": {"type": "array", "items": {"type": "string"}, "examples": ["one", "two"]}
            }
        }));
        let p = &out["properties"];
        assert_eq!(
            p["a"],
            json!({"type": "string", "nullable": true, "example": "x"})
        );
        assert_eq!(p["b"], json!({"type": "string", "enum": ["only"]}));
        assert_eq!(p["c"]["description"], "Level. Allowed values: 1, 2.");
        assert!(p["c"].get("enum").is_none());
        assert_eq!(
            p["d"],
            json!({"type": "integer", "title": "D", "nullable": true})
        );
        assert_eq!(
            p["e"]["anyOf"],
            json!([{"type": "string"}, {"type": "integer"}])
        );
        assert_eq!(
            (&p["f"]["minimum"], &p["f"]["maximum"]),
            (&json!(1), &json!(9))
        );
        assert!(p["g"].get("format").is_none());
        assert_eq!(p["h"]["format"], "date-time");
        assert_eq!(p["i"]["anyOf"].as_array().map(Vec::len), Some(2));
        assert_eq!(p["j"]["properties"]["y"]["type"], "number");
        assert_eq!(p["j"]["required"], json!(["y"]));
        assert_eq!(
            p["k"]["items"]["type"], "string",
            "an array of anything: JSON strings"
        );
        assert_eq!(p["l"]["example"], json!(["one", "two"]));
    }

    #[test]
    fn gemini_renames_dotted_keys_and_sends_empty_objects_as_json() {
        let (out, args, changes, tally) = rewrite(
            json!({"type": "object", "properties": {
                "agent.name": {"type": "string"},
                "meta": {"type": "object", "additionalProperties": {"type": "string"}}
            }, "required": ["agent.name"], "propertyOrdering": ["agent.name", "meta"]}),
            Dialect::Gemini,
        );
        let out = out.expect("parameters");
        assert_eq!(out["required"], json!(["agent_name"]));
        assert_eq!(out["propertyOrdering"], json!(["agent_name", "meta"]));
        assert_eq!(out["properties"]["meta"]["type"], "string");
        assert_eq!(
            args.properties["agent_name"].from.as_deref(),
            Some("agent.name")
        );
        assert_eq!(args.properties["meta"].json_string, Some(JsonKind::Object));
        assert_eq!((tally.renamed_keys, tally.json_encoded), (1, 1));
        assert_eq!(changes.len(), 2, "{changes:?}");
    }

    #[test]
    fn gemini_tools_without_parameters_declare_none() {
        let (out, ..) = rewrite(json!({"type": "object", "properties": {}}), Dialect::Gemini);
        assert_eq!(out, None);
        let (out, _, changes, tally) = rewrite(
            json!({"type": "object", "additionalProperties": true}),
            Dialect::Gemini,
        );
        assert_eq!(out, None);
        assert!(tally.root_closed && changes.len() == 1);
    }

    #[test]
    fn strict_closes_objects_requires_everything_and_encodes_free_form_objects() {
        let (out, args, changes, tally) = rewrite(
            json!({"type": "object", "properties": {
                "name": {"type": "string", "minLength": 1, "default": "x"},
                "level": {"type": "integer", "enum": [1, 2]},
                "mode": {"const": "fast"},
                "empty": {"type": "object", "properties": {}, "additionalProperties": false},
                "extra": {"type": "object", "additionalProperties": true},
                "open": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": true},
                "url": {"type": "string", "format": "uri"},
                "tags": {"type": "array", "items": {"type": "string"}, "nullable": true}
            }, "required": ["name"]}),
            Dialect::Strict,
        );
        let out = out.expect("parameters");
        let p = &out["properties"];
        assert_eq!(
            out["required"],
            json!(["name", "level", "mode", "empty", "extra", "open", "url", "tags"])
        );
        assert_eq!(p["name"], json!({"type": "string"}));
        assert_eq!(
            p["level"],
            json!({"type": ["integer", "null"], "enum": [1, 2, null]})
        );
        assert_eq!(
            p["mode"],
            json!({"type": ["string", "null"], "enum": ["fast", null]})
        );
        assert_eq!(p["empty"]["properties"], json!({}));
        assert_eq!(p["extra"]["type"], json!(["string", "null"]));
        assert_eq!(p["open"]["additionalProperties"], json!(false));
        assert!(p["url"].get("format").is_none());
        assert_eq!(p["tags"]["type"], json!(["array", "null"]));
        assert_eq!(args.omit_if_null.len(), 7);
        // Seven at the root, and `open.a`.
        assert_eq!(
            (tally.made_required, tally.json_encoded, tally.closed),
            (8, 1, 1)
        );
        assert!(tally.dropped.contains("minLength") && tally.dropped.contains("default"));
        assert!(changes
            .iter()
            .all(|c| c.tool == "T" && c.path.starts_with("/inputParameters/properties/")));
    }

    #[test]
    fn strict_encodes_objects_nested_too_deep() {
        let mut schema = json!({"type": "object", "properties": {"leaf": {"type": "string"}}, "required": ["leaf"]});
        for _ in 0..STRICT_MAX_DEPTH + 1 {
            schema = json!({"type": "object", "properties": {"n": schema}, "required": ["n"]});
        }
        let (out, args, ..) = rewrite(schema, Dialect::Strict);
        let mut node = &out.expect("parameters");
        let mut arg = &args;
        for _ in 0..STRICT_MAX_DEPTH {
            node = &node["properties"]["n"];
            arg = &arg.properties["n"];
        }
        assert_eq!(node["type"], "string");
        assert_eq!(arg.json_string, Some(JsonKind::Object));
    }

    #[test]
    fn plain_renames_inside_items_branches_and_values_and_keeps_the_rest() {
        let schema = json!({"type": "object", "properties": {
            "list": {"type": "array", "items": {"type": "object", "properties": {"+1": {"type": "integer"}},
                     "required": ["+1"], "default": {"+1": 0}}},
            "either": {"anyOf": [{"type": "object", "properties": {"a b": {"type": "string"}}}, {"type": "null"}]},
            "map": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Entry"}}
        }, "x-custom": 1, "$defs": {"Entry": {"type": "object", "properties": {"c/d": {"type": "string"}}}}});
        let (out, args, _, tally) = rewrite(schema.clone(), Dialect::Plain);
        let out = out.expect("a schema");
        assert_eq!(tally.renamed_keys, 3);
        assert_eq!(
            count_renamed_keys(&schema, KeyRule::Anthropic),
            3,
            "the report counts alike"
        );
        assert!(out.get("$defs").is_none());
        assert_eq!(out["x-custom"], 1, "plain keeps unknown keywords");
        let item = &out["properties"]["list"]["items"];
        assert_eq!(item["required"], json!(["_1"]));
        assert_eq!(
            item["default"],
            json!({"_1": 0}),
            "values inside the schema follow the renames"
        );
        assert_eq!(
            out["properties"]["either"]["anyOf"][0]["properties"]["a_b"]["type"],
            "string"
        );
        assert_eq!(
            out["properties"]["map"]["additionalProperties"]["properties"]["c_d"]["type"],
            "string"
        );
        let restored = args.restore(
            json!({"list": [{"_1": 5}], "either": {"a_b": "x"}, "map": {"k": {"c_d": "y"}}}),
        );
        assert_eq!(
            restored,
            json!({"list": [{"+1": 5}], "either": {"a b": "x"}, "map": {"k": {"c/d": "y"}}})
        );
    }
}
