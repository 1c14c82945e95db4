use super::budget::{MAX_CHANGES, MAX_NODES};
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
    let mut schema =
        json!({"type": "object", "properties": {"leaf": {"type": "string"}}, "required": ["leaf"]});
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
    let restored = args
        .restore(json!({"list": [{"_1": 5}], "either": {"a_b": "x"}, "map": {"k": {"c_d": "y"}}}));
    assert_eq!(
        restored,
        json!({"list": [{"+1": 5}], "either": {"a b": "x"}, "map": {"k": {"c/d": "y"}}})
    );
}

// ---- Hostile schemas: bounded work, valid output ---------------------------

/// Checked by a validator nobody here wrote: the Draft 7 and 2020-12
/// meta-schemas, a 2020-12 validator built from it (every `$ref` resolves),
/// and an object root.
pub(crate) fn assert_valid_schema(schema: &Value) {
    let shown = || {
        let text = schema.to_string();
        text.chars().take(300).collect::<String>()
    };
    if let Err(e) = jsonschema::draft7::meta::validate(schema) {
        panic!("not Draft 7: {e}: {}", shown());
    }
    if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
        panic!("not 2020-12: {e}: {}", shown());
    }
    if let Err(e) = jsonschema::draft202012::new(schema) {
        panic!("does not compile: {e}: {}", shown());
    }
    assert_eq!(schema["type"], "object", "an object root: {}", shown());
    assert!(schema["properties"].is_object(), "{}", shown());
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        let names: BTreeSet<&str> = required.iter().filter_map(Value::as_str).collect();
        assert_eq!(names.len(), required.len(), "required repeats: {}", shown());
        assert!(names.iter().all(|n| schema["properties"].get(n).is_some()));
    }
}

const DIALECTS: [Dialect; 3] = [Dialect::Plain, Dialect::Gemini, Dialect::Strict];

/// Every dialect: terminates, a valid schema, an answer of bounded size.
fn rewrite_everywhere(schema: &Value) -> Vec<(Option<Value>, Vec<Change>, Tally)> {
    DIALECTS
        .iter()
        .map(|&dialect| {
            let (out, _, changes, tally) = rewrite(schema.clone(), dialect);
            if let Some(out) = &out {
                assert_valid_schema(out);
                let size = out.to_string().len();
                assert!(size < 2 * MAX_BYTES, "{dialect:?}: {size} bytes");
            }
            assert!(changes.len() <= MAX_CHANGES + 1, "{}", changes.len());
            (out, changes, tally)
        })
        .collect()
}

pub(crate) fn laughs(n: usize) -> Value {
    let mut defs = Map::new();
    for i in 0..n {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(
            format!("d{i}"),
            json!({"type": "object", "properties": {"a": next, "b": next}}),
        );
    }
    defs.insert(format!("d{n}"), json!({"type": "string"}));
    json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}, "ok": {"type": "string"}},
           "$defs": defs})
}

pub(crate) fn chain(n: usize) -> Value {
    let mut defs = Map::new();
    for i in 0..n {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        let def = if i % 2 == 0 {
            next
        } else {
            json!({"type": "object", "properties": {"next": next}})
        };
        defs.insert(format!("d{i}"), def);
    }
    defs.insert(format!("d{n}"), json!({"type": "integer"}));
    json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": defs})
}

pub(crate) fn renamed_keys(n: usize) -> Value {
    let mut props = Map::new();
    let mut default = Map::new();
    for i in 0..n {
        props.insert(format!("key {i}"), json!({"type": "integer"}));
        default.insert(format!("key {i}"), json!(i));
    }
    json!({"type": "object", "properties": props, "default": default})
}

#[test]
fn a_billion_laughs_is_cut_at_the_budget() {
    // Strict mode sends objects past its 10 levels as JSON strings first.
    for (_, changes, tally) in &rewrite_everywhere(&laughs(30))[..2] {
        assert!(tally.cut.is_some());
        assert!(changes
            .iter()
            .any(|c| c.reason.contains("budget") || c.reason.contains("levels")));
    }
}

#[test]
fn a_long_ref_chain_is_cut_at_the_level_bound_without_the_stack() {
    for n in [700, 5_000] {
        let results = rewrite_everywhere(&chain(n));
        // Strict mode sends objects past its 10 levels as JSON strings first.
        for (_, _, tally) in &results[..2] {
            assert!(tally.cut.as_ref().expect("cut").contains("levels"));
        }
    }
}

#[test]
fn a_self_referencing_all_of_terminates() {
    let schema = json!({"properties": {"a": {"allOf": [{"$ref": "#/properties/a"}]}}});
    rewrite_everywhere(&schema);
    let schema = json!({"$defs": {"x": {"allOf": [{"$ref": "#/$defs/x"}, {"properties": {"y": {"$ref": "#/$defs/x"}}}]}},
                        "properties": {"a": {"$ref": "#/$defs/x"}}});
    rewrite_everywhere(&schema);
}

#[test]
fn a_hundred_thousand_renamed_keys_cost_linear_time() {
    let results = rewrite_everywhere(&renamed_keys(100_000));
    let (plain, changes, tally) = &results[0];
    assert!(
        tally.renamed_keys as usize >= MAX_NODES - 10,
        "{}",
        tally.renamed_keys
    );
    assert!(tally.cut.is_some());
    let plain = plain.as_ref().expect("a schema");
    assert!(plain.get("default").is_none(), "dropped: over the budget");
    // Within the budget (OpenAI's 5,000 properties), nothing is cut.
    let results = rewrite_everywhere(&renamed_keys(5_000));
    let (plain, _, tally) = &results[0];
    assert_eq!((tally.renamed_keys, &tally.cut), (5_000, &None));
    assert_eq!(
        plain.as_ref().expect("a schema")["default"]["key_4999"],
        4999
    );
    assert!(changes
        .last()
        .is_some_and(|c| c.reason.contains("not listed")));
}

#[test]
fn roots_that_are_not_objects_are_replaced_and_said_so() {
    for root in [
        json!({"type": "array", "items": {"type": "string"}}),
        json!({"type": "string"}),
        json!([1, 2]),
        json!("text"),
        json!(false),
        json!({"type": 7}),
    ] {
        for (out, changes, tally) in rewrite_everywhere(&root) {
            assert!(tally.root_closed, "{root}");
            assert!(changes
                .iter()
                .any(|c| c.reason.contains("providers take an object")));
            if let Some(out) = out {
                assert_eq!(out["properties"], json!({}));
            }
        }
    }
    for root in [json!(true), json!(null), json!({})] {
        rewrite_everywhere(&root);
    }
}

#[test]
fn required_is_deduplicated_and_names_only_declared_properties() {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "v": {
        "type": "object", "properties": {"x": {"type": "string"}}, "required": ["x", "x", "y", 3]}},
        "required": ["name", "name", "ghost"]});
    let (plain, ..) = rewrite(schema.clone(), Dialect::Plain);
    let plain = plain.expect("a schema");
    assert_eq!(plain["required"], json!(["name"]));
    assert_eq!(plain["properties"]["v"]["required"], json!(["x"]));
    rewrite_everywhere(&schema);
}

#[test]
fn invalid_keyword_values_are_dropped_in_plain() {
    let schema = json!({"type": "object", "properties": {
        "a": {"type": "string", "minLength": "5", "enum": 3, "pattern": 1},
        "b": {"type": ["string", "string"]},
        "c": {"type": "integer", "exclusiveMinimum": true, "properties": [1]}
    }, "required": "a"});
    let (plain, ..) = rewrite(schema.clone(), Dialect::Plain);
    let plain = plain.expect("a schema");
    assert_eq!(plain["properties"]["a"], json!({"type": "string"}));
    assert!(plain.get("required").is_none());
    rewrite_everywhere(&schema);
}

#[test]
fn huge_integer_bounds_do_not_wrap_for_gemini() {
    let schema = json!({"type": "object", "properties": {
        "n": {"type": "integer", "exclusiveMinimum": 1e19, "exclusiveMaximum": -1e19},
        "m": {"type": "integer", "exclusiveMinimum": 5}
    }});
    let out = gemini(schema);
    let n = &out["properties"]["n"];
    assert_eq!(n["minimum"].as_f64(), Some(1e19), "{n}");
    assert_eq!(n["maximum"].as_f64(), Some(-1e19), "{n}");
    assert_eq!(out["properties"]["m"]["minimum"], 6);
}

#[test]
fn percent_encoded_ref_pointers_resolve() {
    let schema = json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/e%25f"},
        "y": {"$ref": "#/$defs/a~1b"}},
        "$defs": {"e%f": {"type": "integer"}, "a/b": {"type": "boolean"}}, "required": ["x", "y"]});
    for dialect in DIALECTS {
        let (out, _, changes, _) = rewrite(schema.clone(), dialect);
        let out = out.expect("a schema");
        assert_eq!(
            out["properties"]["x"]["type"],
            json!("integer"),
            "{dialect:?}"
        );
        assert_eq!(
            out["properties"]["y"]["type"],
            json!("boolean"),
            "{dialect:?}"
        );
        assert!(!changes.iter().any(|c| c.reason.contains("unresolvable")));
    }
}

#[test]
fn dangling_refs_in_other_keywords_are_inlined_too() {
    let schema = json!({"type": "object", "properties": {"a": {"not": {"$ref": "#/$defs/N"},
        "patternProperties": {"^x": {"$ref": "#/$defs/N"}}}}, "$defs": {"N": {"type": "null"}}});
    let results = rewrite_everywhere(&schema);
    let plain = results[0].0.as_ref().expect("a schema");
    assert!(!plain.to_string().contains("$ref"), "{plain}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value, biased towards schema keywords and local `$ref`s
    /// (some to nodes that exist, some not, some cyclic).
    fn schema_like() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "type",
            "properties",
            "items",
            "anyOf",
            "oneOf",
            "allOf",
            "$ref",
            "required",
            "additionalProperties",
            "enum",
            "const",
            "default",
            "not",
            "a.b",
            "c d",
            "x",
            "minimum",
            "exclusiveMinimum",
            "format",
            "nullable",
            "$defs",
            "description",
        ]);
        let refs = prop::sample::select(vec![
            "#",
            "#/$defs/a",
            "#/$defs/b",
            "#/properties/x",
            "#/properties/a.b",
            "#/nope",
            "#/$defs/a/properties/x",
            "other.json#/x",
            "#/properties/x/allOf/0",
        ]);
        let types = prop::sample::select(vec![
            "object", "array", "string", "integer", "number", "boolean", "null", "bogus",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e20f64..1e20).prop_map(|n| json!(n)),
            types.prop_map(|t| json!(t)),
            refs.prop_map(|r| json!(r)),
        ];
        leaf.prop_recursive(6, 200, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    /// `$defs` a, b that refer to each other and to the root's properties.
    fn with_defs() -> impl Strategy<Value = Value> {
        (schema_like(), schema_like(), schema_like()).prop_map(|(root, a, b)| {
            let mut root = match root {
                Value::Object(map) => map,
                other => {
                    let mut m = Map::new();
                    m.insert("properties".into(), json!({"x": other}));
                    m
                }
            };
            root.insert("$defs".into(), json!({"a": a, "b": b}));
            Value::Object(root)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn any_schema_converts_within_budget_to_a_valid_object_schema(schema in with_defs()) {
            for (dialect, rule) in [(Dialect::Plain, KeyRule::Anthropic), (Dialect::Gemini, KeyRule::Gemini), (Dialect::Strict, KeyRule::Anthropic)] {
                let (mut changes, mut tally) = (Vec::new(), Tally::default());
                let out = rewrite_input(&schema, dialect, rule, "T", Some(&mut changes), &mut tally);
                if let Some(s) = &out.schema {
                    assert_valid_schema(s);
                    prop_assert!(s.to_string().len() < 2 * MAX_BYTES);
                }
                prop_assert!(changes.len() <= MAX_CHANGES + 1);
                // The way back: a model's `{}` restores to an object.
                let restored = out.args.restore(Value::Object(Map::new()));
                prop_assert!(restored.is_object());
            }
        }
    }
}
