//! Leaves and keywords of the rebuilt dialects: scalars, JSON-encoded values,
//! copied and dropped keywords.

use super::*;

/// 2^53: below it, every integer is an f64.
const SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

impl Rewriter<'_, '_> {
    pub(super) fn scalar(&mut self, map: &Map<String, Value>, ty: &str, nullable: bool) -> Node {
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
    pub(super) fn json_string(
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

    pub(super) fn type_value(&self, ty: &str, nullable: bool) -> Value {
        match self.dialect {
            Dialect::Strict => strict_type(ty, nullable),
            _ => json!(ty),
        }
    }

    pub(super) fn copy_allowed(
        &self,
        map: &Map<String, Value>,
        out: &mut Map<String, Value>,
        allowed: &[&str],
    ) {
        for (k, v) in map {
            let fits = plain::keyword_fits(k, v);
            if allowed.contains(&k.as_str()) && !out.contains_key(k) && fits {
                out.insert(k.clone(), v.clone());
            }
        }
    }

    /// Gemini's `default` and `example`, with keys as the model sees them.
    pub(super) fn gemini_values(
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
        self.pay_for_examples(out);
    }

    /// Gemini has no exclusive bounds: an integer's becomes inclusive exactly,
    /// a number's loosely.
    pub(super) fn exclusive_bounds(
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
            // Past 2^53 an f64 no longer holds every integer: no exact bound to send.
            let exact = ty == "integer" && bound.abs() < SAFE_INTEGER;
            let value = if exact && exclusive == "exclusiveMinimum" {
                json!(bound.floor() as i64 + 1)
            } else if exact {
                json!(bound.ceil() as i64 - 1)
            } else {
                self.record(|| format!("{exclusive} sent as the inclusive {inclusive}"));
                json!(bound)
            };
            out.entry(inclusive.to_owned()).or_insert(value);
        }
    }

    /// Records the keywords of `map` the dialect has no place for.
    pub(super) fn dropped(&mut self, map: &Map<String, Value>, also_kept: &[&str]) {
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

    pub(super) fn note_dropped(&mut self, keyword: &str) {
        if !self.tally.dropped.contains(keyword) {
            self.tally.dropped.insert(keyword.to_owned());
        }
    }
}
