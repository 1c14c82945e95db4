//! What one conversion may spend. Untrusted schemas (any MCP server's) can be
//! small and expand without bound (`$ref` "billion laughs", long chains,
//! self-referencing `allOf`): every node of every pass is paid for here, and
//! a node past the budget is replaced by one accepting any value, named in
//! `changes` and the compatibility report.
//!
//! The limits sit above what providers take, so a tool they would accept is
//! never cut: OpenAI strict mode allows 5,000 properties and 10 levels of
//! nesting in all of a request's tools, and a Lambda answer holds 6 MB.

use super::*;

/// Schema nodes one conversion may produce (`$ref`s inlined count each time).
pub(crate) const MAX_NODES: usize = 10_000;
/// Bytes (about) one conversion may produce: a sixth of a Lambda answer.
pub(crate) const MAX_BYTES: usize = 1 << 20;
/// Nested nodes (properties, items, branches, `$ref` hops) on the way to one
/// node: bounds the native stack every pass recurses on.
pub(crate) const MAX_LEVELS: usize = 48;
/// Changes listed for one tool; the rest are counted in one more.
pub(super) const MAX_CHANGES: usize = 200;
/// A change's reason grows no longer than this.
pub(super) const MAX_REASON_LEN: usize = 2_000;

/// Keywords a pass recurses into: paid for node by node, not as a copy.
const RECURSED: &[&str] = &[
    "properties",
    "items",
    "prefixItems",
    "anyOf",
    "oneOf",
    "allOf",
    "additionalProperties",
    "patternProperties",
    "dependentSchemas",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "$defs",
    "definitions",
    "$ref",
    // Paid for once the node's children are, or dropped: see `pay_for_examples`.
    "default",
    "examples",
    "example",
];

#[derive(Debug, Default)]
pub(super) struct Spent {
    pub nodes: usize,
    pub bytes: usize,
    pub level: usize,
    pub changes: usize,
    pub unlisted: usize,
}

impl Rewriter<'_, '_> {
    /// Every node of every pass comes through here, to be paid for.
    pub(super) fn visit(
        &mut self,
        node: &Value,
        depth: usize,
        pass: fn(&mut Self, &Value, usize) -> Node,
    ) -> Node {
        if let Some(why) = self.over_budget() {
            let empty = Map::new();
            return self.cut(node.as_object().unwrap_or(&empty), &why);
        }
        self.spent.nodes += 1;
        self.spent.bytes += node_cost(node, self.bytes_left());
        self.spent.level += 1;
        let out = pass(self, node, depth);
        self.spent.level -= 1;
        out
    }

    pub(super) fn plain(&mut self, node: &Value, depth: usize) -> Node {
        self.visit(node, depth, Self::plain_node)
    }

    pub(super) fn typed(&mut self, node: &Value, depth: usize) -> Node {
        self.visit(node, depth, Self::typed_node)
    }

    /// No more nodes or bytes: every node still to come is cut.
    pub(super) fn exhausted(&self) -> bool {
        self.spent.nodes >= MAX_NODES || self.spent.bytes >= MAX_BYTES
    }

    pub(super) fn bytes_left(&self) -> usize {
        MAX_BYTES.saturating_sub(self.spent.bytes)
    }

    fn over_budget(&self) -> Option<String> {
        if self.spent.nodes >= MAX_NODES {
            Some(format!(
                "over the conversion budget of {MAX_NODES} schema nodes"
            ))
        } else if self.spent.bytes >= MAX_BYTES {
            Some(format!("over the conversion budget of {MAX_BYTES} bytes"))
        } else if self.spent.level >= MAX_LEVELS {
            Some(format!(
                "nested deeper than the conversion's {MAX_LEVELS} levels"
            ))
        } else {
            None
        }
    }

    /// A node past the budget: any value accepted, and said so.
    pub(super) fn cut(&mut self, map: &Map<String, Value>, why: &str) -> Node {
        if self.tally.cut.is_none() {
            self.tally.cut = Some(why.to_owned());
        }
        self.any_value(map, why)
    }

    /// `default` and examples are paid for after the node's children: when
    /// the budget is spent they are dropped, the schema's constraints kept.
    pub(super) fn pay_for_examples(&mut self, out: &mut Map<String, Value>) {
        for key in ["default", "examples", "example"] {
            let Some(value) = out.get(key) else {
                continue;
            };
            let left = self.bytes_left();
            let size = approx_size(value, left.saturating_add(1));
            if size > left {
                out.remove(key);
                self.record(|| {
                    format!("{key} dropped: over the conversion budget of {MAX_BYTES} bytes")
                });
            } else {
                self.spent.bytes += size;
            }
        }
    }

    /// Properties or branches left out of a node once the budget is spent.
    pub(super) fn cut_rest(&mut self, what: &str, left: usize) {
        let why = self.over_budget().unwrap_or_default();
        if self.tally.cut.is_none() {
            self.tally.cut = Some(why.clone());
        }
        self.record(|| format!("{why}: {left} more {what} left out"));
    }
}

/// What a node costs besides the nodes it holds: its own keywords' values.
fn node_cost(node: &Value, cap: usize) -> usize {
    let Some(map) = node.as_object() else {
        return 8;
    };
    let mut cost = 16;
    for (k, v) in map {
        if cost >= cap {
            break;
        }
        if !RECURSED.contains(&k.as_str()) {
            cost += k.len() + approx_size(v, cap - cost);
        }
    }
    cost
}

/// About the size of `value` as JSON, counted up to `cap` at most, without
/// recursing.
pub(crate) fn approx_size(value: &Value, cap: usize) -> usize {
    let mut stack = vec![value];
    let mut size = 0;
    while let Some(v) = stack.pop() {
        if size >= cap {
            break;
        }
        size += match v {
            Value::String(s) => s.len() + 2,
            Value::Array(all) => {
                stack.extend(all);
                2 + all.len()
            }
            Value::Object(map) => {
                for (k, v) in map {
                    size += k.len() + 4;
                    stack.push(v);
                }
                2
            }
            _ => 8,
        };
    }
    size
}
