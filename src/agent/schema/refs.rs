//! `$ref` and `allOf`: resolving local references and merging branches.

use super::*;

/// The root schema, with a root `$ref` resolved and a root `allOf` merged.
pub(super) fn resolve_root(root: &Value) -> Cow<'_, Value> {
    if let Some(Value::Array(all)) = root.get("allOf") {
        if let Some(map) = root.as_object() {
            return Cow::Owned(merge_all_of(root, map, all, &[]).merged);
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

/// A local `$ref` (`#/$defs/X`, `#/definitions/X`, any `#/...` pointer). The
/// fragment of a URI is percent-encoded (RFC 6901 §6): `#/$defs/e%25f` names `e%f`.
pub(super) fn lookup<'v>(root: &'v Value, reference: &str) -> Option<&'v Value> {
    let fragment = reference.strip_prefix('#')?;
    let pointer = percent_decoded(fragment)?;
    root.pointer(&pointer).filter(|v| v.is_object())
}

fn percent_decoded(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// An `allOf` merged into one node, and the `$ref`s its branches named (to be
/// held as "being inlined" while the merged node is rewritten).
pub(super) struct Merged {
    pub merged: Value,
    pub refs: Vec<String>,
    /// A branch named a `$ref` already being inlined: a cycle, left out.
    pub cycle: bool,
}

/// `allOf` of objects merged: properties and required lists united, other
/// keywords from the first branch that has them (the outer node first). A
/// branch `$ref`ing one of `inlining` is a cycle and left out.
pub(super) fn merge_all_of(
    root: &Value,
    outer: &Map<String, Value>,
    branches: &[Value],
    inlining: &[String],
) -> Merged {
    let mut merged: Map<String, Value> = outer
        .iter()
        .filter(|(k, _)| *k != "allOf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (mut refs, mut cycle) = (Vec::new(), false);
    let mut resolved = Vec::with_capacity(branches.len());
    for branch in branches {
        match branch.get("$ref").and_then(Value::as_str) {
            Some(reference) if inlining.iter().any(|r| r == reference) => cycle = true,
            Some(reference) => {
                refs.push(reference.to_owned());
                resolved.push(lookup(root, reference).unwrap_or(branch));
            }
            None => resolved.push(branch),
        }
    }
    for branch in resolved.into_iter().filter_map(Value::as_object) {
        merge_branch(&mut merged, branch);
    }
    Merged {
        merged: Value::Object(merged),
        refs,
        cycle,
    }
}

fn merge_branch(merged: &mut Map<String, Value>, branch: &Map<String, Value>) {
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
