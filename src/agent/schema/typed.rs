//! Gemini and strict: the schema rebuilt from the keywords the provider accepts.

use super::*;

impl Rewriter<'_, '_> {
    pub(super) fn typed_node(&mut self, node: &Value, depth: usize) -> Node {
        let empty = Map::new();
        let map = node.as_object().unwrap_or(&empty);
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            return self.with_ref(map, reference, Self::typed, depth);
        }
        if let Some(all) = map.get("allOf").and_then(Value::as_array) {
            return self.typed_all_of(map, all, depth);
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
            let copy = approx_size(node, self.bytes_left());
            self.spent.bytes = self
                .spent
                .bytes
                .saturating_add(copy.saturating_mul(types.len()));
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

    pub(super) fn union(
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
            self.spent.bytes += approx_size(only, self.bytes_left());
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
        let count = non_null.len();
        for (i, (index, branch)) in non_null.into_iter().enumerate() {
            if self.exhausted() {
                self.cut_rest("branches", count - i);
                break;
            }
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

    pub(super) fn object(
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
        let (out_props, args) = self.typed_properties(props, &required, &renamed, depth);
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

    /// Each property rewritten, renamed and (strict) made required.
    fn typed_properties(
        &mut self,
        props: &Map<String, Value>,
        required: &BTreeSet<&str>,
        renamed: &HashMap<&str, String>,
        depth: usize,
    ) -> (Map<String, Value>, ArgNode) {
        let mut args = ArgNode::default();
        let mut out_props = Map::with_capacity(props.len().min(MAX_NODES));
        for (i, (key, value)) in props.iter().enumerate() {
            if self.exhausted() {
                self.cut_rest("properties", props.len() - i);
                break;
            }
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
        (out_props, args)
    }

    pub(super) fn array(&mut self, map: &Map<String, Value>, nullable: bool, depth: usize) -> Node {
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

    /// `allOf` merged into one node, its `$ref`s held as being inlined: a
    /// branch naming one of them again is a cycle, left out.
    fn typed_all_of(&mut self, map: &Map<String, Value>, all: &[Value], depth: usize) -> Node {
        self.record(|| "allOf merged into one schema".into());
        let Merged {
            merged,
            refs,
            cycle,
        } = merge_all_of(self.root, map, all, &self.refs);
        if cycle {
            self.record(|| "a recursive $ref in allOf left out".into());
        }
        self.spent.bytes += approx_size(&merged, self.bytes_left());
        let held = self.refs.len();
        self.refs.extend(refs);
        let out = self.typed(&merged, depth);
        self.refs.truncate(held);
        out
    }
}
