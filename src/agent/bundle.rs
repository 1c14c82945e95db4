//! Provider-ready bundles of tools.

use super::args::ArgumentMap;
use super::names::{is_valid_tool_name, tool_name, KeyRule};
use super::schema::{rewrite_input, Change, Dialect, Tally};
use super::ToolSource;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A model provider's tool format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// Chat Completions: `{"type":"function","function":{"name","description","parameters"}}`.
    #[serde(rename = "openai")]
    OpenAi,
    /// Responses API: `{"type":"function","name","description","parameters"}`.
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    /// Messages API: `{"name","description","input_schema"}`.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// A function declaration: `{"name","description","parameters"?}`.
    #[serde(rename = "gemini")]
    Gemini,
    /// A `tools/list` entry: `{"name","title","description","inputSchema","outputSchema"?}`.
    #[serde(rename = "mcp")]
    Mcp,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::OpenAi,
        Format::OpenAiResponses,
        Format::Anthropic,
        Format::Gemini,
        Format::Mcp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::OpenAiResponses => "openai-responses",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
            Format::Mcp => "mcp",
        }
    }

    /// Whether `strict` (OpenAI structured outputs) applies.
    pub fn supports_strict(self) -> bool {
        matches!(self, Format::OpenAi | Format::OpenAiResponses)
    }

    fn key_rule(self) -> KeyRule {
        match self {
            Format::Gemini => KeyRule::Gemini,
            _ => KeyRule::Anthropic,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `format`; its message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown format {given:?}: expected one of openai, openai-responses, anthropic, gemini, mcp"
)]
pub struct UnknownFormat {
    pub given: String,
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFormat {
                given: s.to_owned(),
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("strict applies to openai and openai-responses only, not {0}")]
    StrictUnsupported(Format),
    #[error("building these tools took longer than the {} ms one answer may take: ask for fewer tools, one at a time or in a batch", .limit.as_millis())]
    OutOfTime { limit: Duration },
    #[error("these tools would be more than the {limit} bytes one answer may hold (a Lambda answer holds 6 MB): ask for fewer tools, one at a time or in a batch")]
    TooLarge { limit: usize },
    /// Whoever asked for the bundle no longer waits for it.
    #[error("the bundle is no longer wanted")]
    Abandoned,
}

/// When building a bundle gives up. Each tool's conversion is bounded by the
/// converter's budget; these bound the whole bundle, checked between tools,
/// so a deadline is overrun by one tool's conversion at most.
#[derive(Debug, Clone, Default)]
pub struct BundleLimits {
    pub deadline: Option<(Instant, Duration)>,
    /// About the largest bundle, as JSON.
    pub max_bytes: Option<usize>,
    /// Set when the bundle is no longer wanted (its client went away).
    pub abandoned: Option<Arc<AtomicBool>>,
}

impl BundleLimits {
    /// A bundle that must be built within `limit` from now.
    pub fn within(limit: Duration) -> Self {
        Self {
            deadline: Some((Instant::now() + limit, limit)),
            ..Self::default()
        }
    }

    fn check(&self, bytes: usize) -> Result<(), BundleError> {
        if self
            .abandoned
            .as_ref()
            .is_some_and(|a| a.load(Ordering::Relaxed))
        {
            return Err(BundleError::Abandoned);
        }
        if let Some((at, limit)) = self.deadline {
            if Instant::now() >= at {
                return Err(BundleError::OutOfTime { limit });
            }
        }
        match self.max_bytes {
            Some(limit) if bytes > limit => Err(BundleError::TooLarge { limit }),
            _ => Ok(()),
        }
    }
}

/// Tools in a provider's format, with the way back to the cached tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub format: Format,
    /// Exactly the provider's tool objects, nothing else.
    pub tools: Vec<Value>,
    /// Name sent to the model → tool slug, for every tool.
    pub name_map: BTreeMap<String, String>,
    /// What to undo in a model's arguments, per name sent (see [`ArgumentMap`]).
    pub argument_map: ArgumentMap,
    /// Every alteration of a tool (name, keys, keywords, strict-mode rules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// A model's tool call, mapped back to the cached tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub slug: String,
    pub arguments: Value,
}

impl Bundle {
    /// The tool and arguments to send to Composio for a call the model made;
    /// `None` when the name is not in this bundle.
    pub fn resolve_call(&self, name: &str, arguments: Value) -> Option<ToolCall> {
        let slug = self.name_map.get(name)?;
        Some(ToolCall {
            slug: slug.clone(),
            arguments: self.argument_map.restore(name, arguments),
        })
    }
}

/// Builds a bundle of `tools` for `format`; `strict` (OpenAI only) rewrites
/// every schema for structured outputs. A slug given twice is bundled once.
pub fn bundle(
    tools: &[ToolSource<'_>],
    format: Format,
    strict: bool,
) -> Result<Bundle, BundleError> {
    bundle_within(tools, format, strict, &BundleLimits::default())
}

/// [`bundle`], given up when `limits` say so.
pub fn bundle_within(
    tools: &[ToolSource<'_>],
    format: Format,
    strict: bool,
    limits: &BundleLimits,
) -> Result<Bundle, BundleError> {
    if strict && !format.supports_strict() {
        return Err(BundleError::StrictUnsupported(format));
    }
    let dialect = match format {
        Format::Gemini => Dialect::Gemini,
        _ if strict => Dialect::Strict,
        _ => Dialect::Plain,
    };
    let mut out = Bundle {
        format,
        tools: Vec::with_capacity(tools.len()),
        name_map: BTreeMap::new(),
        argument_map: ArgumentMap::default(),
        changes: Vec::new(),
    };
    let mut seen: HashSet<&str> = HashSet::with_capacity(tools.len());
    let mut names: HashMap<String, &str> = HashMap::with_capacity(tools.len());
    let mut bytes = 0;
    for tool in tools {
        limits.check(bytes)?;
        if !seen.insert(tool.slug) {
            continue;
        }
        let name = unique_name(tool.slug, &names);
        names.insert(name.clone(), tool.slug);
        if name != tool.slug {
            out.changes.push(Change {
                tool: tool.slug.to_owned(),
                path: "/slug".into(),
                reason: format!(
                    "sent as {name:?}: tool names must match ^[a-zA-Z_][a-zA-Z0-9_-]{{0,63}}$"
                ),
            });
        }
        let rewritten = rewrite_input(
            tool.input_schema,
            dialect,
            format.key_rule(),
            tool.slug,
            Some(&mut out.changes),
            &mut Tally::default(),
        );
        if !rewritten.args.is_empty() {
            out.argument_map.0.insert(name.clone(), rewritten.args);
        }
        let provided = provider_tool(format, strict, &name, tool, rewritten.schema);
        if limits.max_bytes.is_some() {
            // A lower bound of the answer: the exact size is checked once it is written.
            bytes += super::schema::approx_size(&provided, usize::MAX);
        }
        out.tools.push(provided);
        out.name_map.insert(name, tool.slug.to_owned());
    }
    limits.check(bytes)?;
    Ok(out)
}

/// The slug's name, or, on the (unseen) clash of two derived names, the name
/// of the slug with a counter.
fn unique_name(slug: &str, taken: &HashMap<String, &str>) -> String {
    let mut name = tool_name(slug);
    let mut n = 2;
    while taken.contains_key(&name) {
        name = tool_name(&format!("{slug}#{n}"));
        n += 1;
    }
    debug_assert!(is_valid_tool_name(&name));
    name
}

fn provider_tool(
    format: Format,
    strict: bool,
    name: &str,
    tool: &ToolSource<'_>,
    schema: Option<Value>,
) -> Value {
    // Gemini refuses an object without properties: the rewrite gives `None`
    // for a tool without parameters, which then declares none.
    let declared = schema.is_some();
    let parameters = schema.unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    match format {
        Format::OpenAi => {
            let mut function = Map::new();
            function.insert("name".into(), json!(name));
            function.insert("description".into(), json!(tool.description));
            function.insert("parameters".into(), parameters);
            if strict {
                function.insert("strict".into(), json!(true));
            }
            json!({"type": "function", "function": function})
        }
        Format::OpenAiResponses => {
            let mut function = Map::new();
            function.insert("type".into(), json!("function"));
            function.insert("name".into(), json!(name));
            function.insert("description".into(), json!(tool.description));
            function.insert("parameters".into(), parameters);
            // The Responses API takes a tool without `strict` as strict
            // (its SDK's FunctionToolParam requires the field): say which.
            function.insert("strict".into(), json!(strict));
            Value::Object(function)
        }
        Format::Anthropic => json!({
            "name": name,
            "description": tool.description,
            "input_schema": parameters,
        }),
        Format::Gemini => {
            let mut declaration = Map::new();
            declaration.insert("name".into(), json!(name));
            declaration.insert("description".into(), json!(tool.description));
            if declared {
                declaration.insert("parameters".into(), parameters);
            }
            Value::Object(declaration)
        }
        Format::Mcp => {
            let mut entry = Map::new();
            entry.insert("name".into(), json!(name));
            entry.insert("title".into(), json!(tool.name));
            entry.insert("description".into(), json!(tool.description));
            entry.insert("inputSchema".into(), parameters);
            // Kept as cached: structured results come from Composio with the
            // original keys.
            if tool.output_schema.get("type").and_then(Value::as_str) == Some("object") {
                entry.insert("outputSchema".into(), tool.output_schema.clone());
            }
            Value::Object(entry)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testkit::{instance, sources, validate, walk};
    use std::collections::BTreeSet;

    #[test]
    fn a_bundle_gives_up_past_its_deadline_its_size_or_once_abandoned() {
        let all = sources();
        let format = Format::OpenAi;
        let whole = bundle(&all, format, false).unwrap();
        let within = |limits: &BundleLimits| bundle_within(&all, format, false, limits);
        assert_eq!(
            within(&BundleLimits::within(Duration::from_secs(3600))),
            Ok(whole.clone())
        );
        let late = BundleLimits {
            deadline: Some((Instant::now(), Duration::from_millis(1))),
            ..BundleLimits::default()
        };
        let out_of_time = within(&late).unwrap_err();
        assert_eq!(
            out_of_time,
            BundleError::OutOfTime {
                limit: Duration::from_millis(1)
            }
        );
        assert!(out_of_time
            .to_string()
            .contains("the 1 ms one answer may take"));
        let written = serde_json::to_vec(&whole).unwrap().len();
        let small = BundleLimits {
            max_bytes: Some(written / 4),
            ..BundleLimits::default()
        };
        assert_eq!(
            within(&small),
            Err(BundleError::TooLarge { limit: written / 4 })
        );
        // The estimate is a lower bound: a bound the bundle fits is never refused.
        let roomy = BundleLimits {
            max_bytes: Some(written),
            ..BundleLimits::default()
        };
        assert_eq!(within(&roomy), Ok(whole));
        let abandoned = BundleLimits {
            abandoned: Some(Arc::new(AtomicBool::new(true))),
            ..BundleLimits::default()
        };
        assert_eq!(within(&abandoned), Err(BundleError::Abandoned));
    }

    const GEMINI_KEYWORDS: &[&str] = &[
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "default",
        "items",
        "minItems",
        "maxItems",
        "enum",
        "properties",
        "propertyOrdering",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "minimum",
        "maximum",
    ];
    const STRICT_KEYWORDS: &[&str] = &[
        "type",
        "title",
        "description",
        "enum",
        "const",
        "anyOf",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    ];
    const COMBINATIONS: [(Format, bool); 7] = [
        (Format::OpenAi, false),
        (Format::OpenAi, true),
        (Format::OpenAiResponses, false),
        (Format::OpenAiResponses, true),
        (Format::Anthropic, false),
        (Format::Gemini, false),
        (Format::Mcp, false),
    ];

    /// `^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$`, written out independently.
    fn name_ok(name: &str) -> bool {
        let bytes = name.as_bytes();
        (1..=64).contains(&bytes.len())
            && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    }

    fn key_ok(format: Format, key: &str) -> bool {
        let extra: &[u8] = if format == Format::Gemini {
            b"_"
        } else {
            b"_.-"
        };
        (1..=64).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    }

    fn keys(value: &Value) -> BTreeSet<&str> {
        value
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn set<'a>(all: &[&'a str]) -> BTreeSet<&'a str> {
        all.iter().copied().collect()
    }

    /// The tool's name and input schema, checking the provider's exact shape.
    fn unpack<'t>(
        format: Format,
        strict: bool,
        tool: &'t Value,
        source: &ToolSource<'_>,
    ) -> (&'t str, Option<&'t Value>) {
        let expected = match format {
            Format::OpenAi => {
                assert_eq!(keys(tool), set(&["type", "function"]));
                assert_eq!(tool["type"], "function");
                let mut fields = vec!["name", "description", "parameters"];
                if strict {
                    fields.push("strict");
                    assert_eq!(tool["function"]["strict"], true);
                }
                assert_eq!(keys(&tool["function"]), set(&fields));
                return (
                    tool["function"]["name"].as_str().unwrap_or_default(),
                    Some(&tool["function"]["parameters"]),
                );
            }
            Format::OpenAiResponses => {
                assert_eq!(tool["type"], "function");
                assert_eq!(tool["strict"], strict);
                vec!["type", "name", "description", "parameters", "strict"]
            }
            Format::Anthropic => vec!["name", "description", "input_schema"],
            Format::Gemini if tool.get("parameters").is_some() => {
                vec!["name", "description", "parameters"]
            }
            Format::Gemini => vec!["name", "description"],
            Format::Mcp => {
                assert_eq!(tool["title"], source.name);
                if source.output_schema.get("type") == Some(&json!("object")) {
                    assert_eq!(&tool["outputSchema"], source.output_schema);
                    vec![
                        "name",
                        "title",
                        "description",
                        "inputSchema",
                        "outputSchema",
                    ]
                } else {
                    vec!["name", "title", "description", "inputSchema"]
                }
            }
        };
        assert_eq!(keys(tool), set(&expected), "{format} shape");
        assert_eq!(tool["description"], source.description);
        let schema = tool
            .get("parameters")
            .or(tool.get("input_schema"))
            .or(tool.get("inputSchema"));
        (tool["name"].as_str().unwrap_or_default(), schema)
    }

    #[test]
    fn every_format_meets_the_providers_rules_over_the_whole_catalogue() {
        let sources = sources();
        let slugs: BTreeSet<&str> = sources.iter().map(|s| s.slug).collect();
        for (format, strict) in COMBINATIONS {
            let bundle = bundle(&sources, format, strict).expect("a bundle");
            assert_eq!(bundle.tools.len(), sources.len());
            assert_eq!(bundle.name_map.len(), sources.len(), "names are unique");
            assert_eq!(
                bundle
                    .name_map
                    .values()
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>(),
                slugs
            );
            let mut renamed_keys = 0;
            for (tool, source) in bundle.tools.iter().zip(&sources) {
                let (name, schema) = unpack(format, strict, tool, source);
                assert!(name_ok(name), "{format}: name {name:?}");
                assert_eq!(bundle.name_map[name], source.slug);
                let Some(schema) = schema else {
                    assert_eq!(format, Format::Gemini);
                    assert!(source.input_schema["properties"]
                        .as_object()
                        .is_none_or(|p| p.is_empty()));
                    continue;
                };
                assert_eq!(
                    schema["type"], "object",
                    "{format}: {name}: root is an object"
                );
                walk(schema, String::new(), &mut |path, node| {
                    let Some(map) = node.as_object() else {
                        panic!("{format}: {name}{path}: a schema is an object");
                    };
                    if let Some(props) = map.get("properties").and_then(Value::as_object) {
                        for key in props.keys() {
                            assert!(key_ok(format, key), "{format}: {name}{path}: key {key:?}");
                        }
                        for key in map
                            .get("required")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            assert!(
                                props.contains_key(key.as_str().unwrap_or_default()),
                                "{format}: {name}{path}: required {key}"
                            );
                        }
                    }
                    if format == Format::Gemini {
                        check_gemini(map, &format!("{name}{path}"));
                    }
                    if strict {
                        check_strict(map, &format!("{name}{path}"));
                    }
                });
                renamed_keys += count_renames(bundle.argument_map.0.get(name));
            }
            for name in bundle.argument_map.0.keys() {
                assert!(bundle.name_map.contains_key(name));
            }
            // The real catalogue's offenders: github's five `a__b` keys over 64
            // characters, and for Gemini four dotted elevenlabs keys too.
            let expected = if format == Format::Gemini { 9 } else { 5 };
            assert_eq!(renamed_keys, expected, "{format}");
            let shortened = bundle.name_map.iter().filter(|(n, s)| n != s).count();
            assert_eq!(shortened, 4, "the four slugs over 64 characters");
        }
    }

    fn count_renames(node: Option<&crate::agent::ArgNode>) -> usize {
        let Some(node) = node else { return 0 };
        usize::from(node.from.is_some())
            + node
                .properties
                .values()
                .map(|c| count_renames(Some(c)))
                .sum::<usize>()
            + count_renames(node.items.as_deref())
            + count_renames(node.values.as_deref())
    }

    fn check_gemini(map: &Map<String, Value>, at: &str) {
        for key in map.keys() {
            assert!(
                GEMINI_KEYWORDS.contains(&key.as_str()),
                "gemini: {at}: keyword {key}"
            );
        }
        let ty = map.get("type").and_then(Value::as_str);
        assert!(
            ty.is_some() || map.contains_key("anyOf"),
            "gemini: {at}: every schema has one type"
        );
        if let Some(ty) = ty {
            assert!(
                ["string", "number", "integer", "boolean", "array", "object"].contains(&ty),
                "{at}: {ty}"
            );
        }
        if ty == Some("object") {
            assert!(
                map.get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| !p.is_empty()),
                "gemini: {at}: empty object"
            );
        }
        if ty == Some("array") {
            assert!(
                map.get("items").is_some_and(Value::is_object),
                "gemini: {at}: array without items"
            );
        }
        if let Some(values) = map.get("enum") {
            assert!(
                values
                    .as_array()
                    .is_some_and(|v| v.iter().all(Value::is_string)),
                "gemini: {at}: enum of strings"
            );
        }
    }

    fn check_strict(map: &Map<String, Value>, at: &str) {
        for key in map.keys() {
            assert!(
                STRICT_KEYWORDS.contains(&key.as_str()),
                "strict: {at}: keyword {key}"
            );
        }
        let types: Vec<&str> = match map.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).collect(),
            _ => {
                assert!(map.contains_key("anyOf"), "strict: {at}: untyped");
                Vec::new()
            }
        };
        if types.contains(&"object") {
            assert_eq!(
                map.get("additionalProperties"),
                Some(&json!(false)),
                "strict: {at}"
            );
            let props = map
                .get("properties")
                .and_then(Value::as_object)
                .expect("properties");
            let required: BTreeSet<&str> = map["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                required,
                props.keys().map(String::as_str).collect(),
                "strict: {at}: all required"
            );
        }
        if let Some(format) = map.get("format") {
            assert!(
                types.contains(&"string"),
                "strict: {at}: format on a string"
            );
            assert!([
                "date-time",
                "time",
                "date",
                "duration",
                "email",
                "hostname",
                "ipv4",
                "ipv6",
                "uuid"
            ]
            .contains(&format.as_str().unwrap_or_default()));
        }
        if let Some(Value::Array(values)) = map.get("enum") {
            if types.contains(&"null") {
                assert!(
                    values.contains(&Value::Null),
                    "strict: {at}: a nullable enum lists null"
                );
            }
        }
    }

    #[test]
    fn renamed_arguments_round_trip_over_the_whole_catalogue() {
        let sources = sources();
        for (format, strict) in COMBINATIONS {
            let bundle = bundle(&sources, format, strict).expect("a bundle");
            let mut json_strings = 0;
            for (tool, source) in bundle.tools.iter().zip(&sources) {
                let (name, schema) = unpack(format, strict, tool, source);
                let empty = json!({"type": "object", "properties": {}});
                let schema = schema.unwrap_or(&empty);
                for only_required in [false, true] {
                    let original =
                        instance(source.input_schema, source.input_schema, only_required, 0);
                    let sent = bundle.argument_map.to_model(name, original.clone());
                    json_strings += sent.to_string().matches("\\\"").count();
                    if let Err(e) = validate(schema, &sent, "") {
                        panic!("{format} strict={strict}: {name}: the model's arguments {sent} break the schema: {e}");
                    }
                    let call = bundle.resolve_call(name, sent).expect("a known name");
                    assert_eq!(call.slug, source.slug);
                    assert_eq!(call.arguments, original, "{format} strict={strict}: {name}");
                }
            }
            if format == Format::Gemini || strict {
                assert!(json_strings > 0, "free-form objects travel as JSON strings");
            }
        }
    }

    #[test]
    fn bundles_are_deterministic_and_names_depend_on_the_slug_alone() {
        let sources = sources();
        for (format, strict) in COMBINATIONS {
            let first = serde_json::to_vec(&bundle(&sources, format, strict).expect("a bundle"))
                .expect("json");
            let again = serde_json::to_vec(&bundle(&sources, format, strict).expect("a bundle"))
                .expect("json");
            assert!(first == again, "{format}: byte-identical");
        }
        let all = bundle(&sources, Format::Anthropic, false).expect("a bundle");
        let reversed: Vec<ToolSource<'_>> = sources.iter().rev().copied().collect();
        let one_by_one: BTreeMap<String, String> = reversed
            .iter()
            .flat_map(|s| {
                bundle(std::slice::from_ref(s), Format::Anthropic, false)
                    .expect("a bundle")
                    .name_map
            })
            .collect();
        assert_eq!(all.name_map, one_by_one);
    }

    #[test]
    fn long_slugs_get_readable_names_that_map_back() {
        let sources = sources();
        let bundle = bundle(&sources, Format::OpenAi, false).expect("a bundle");
        let long: Vec<(&String, &String)> =
            bundle.name_map.iter().filter(|(n, s)| n != s).collect();
        assert_eq!(long.len(), 4);
        for (name, slug) in long {
            assert!(slug.len() > 64 && name.len() <= 64, "{name}");
            assert!(name.starts_with("GITHUB_"), "{name}");
            assert!(bundle
                .changes
                .iter()
                .any(|c| &c.tool == slug && c.path == "/slug"));
        }
        let slug = "GITHUB_REMOVE_INTERACTION_RESTRICTIONS_FROM_YOUR_PUBLIC_REPOSITORIES";
        assert!(bundle.name_map.contains_key(&tool_name(slug)));
        let name = tool_name(slug);
        assert!(
            name.starts_with("GITHUB_REMOVE_INTERACTION_")
                && name.ends_with("_PUBLIC_REPOSITORIES"),
            "{name}"
        );
    }

    #[test]
    fn a_github_argument_over_64_characters_is_renamed_and_restored() {
        let sources = sources();
        let tool = sources
            .iter()
            .find(|s| s.slug == "GITHUB_UPDATE_A_REPOSITORY")
            .expect("in the catalogue");
        let key = "security__and__analysis__secret__scanning__push__protection__status";
        let bundle =
            bundle(std::slice::from_ref(tool), Format::Anthropic, false).expect("a bundle");
        let props = bundle.tools[0]["input_schema"]["properties"]
            .as_object()
            .expect("properties");
        assert!(!props.contains_key(key));
        let sent = props
            .keys()
            .find(|k| k.starts_with("security_analysis_secret_scanning"))
            .expect("renamed")
            .clone();
        let call = bundle
            .resolve_call(
                "GITHUB_UPDATE_A_REPOSITORY",
                json!({"owner": "o", "repo": "r", sent.as_str(): "enabled"}),
            )
            .expect("known");
        assert_eq!(
            call.arguments,
            json!({"owner": "o", "repo": "r", key: "enabled"})
        );
        assert!(bundle
            .changes
            .iter()
            .any(|c| c.path == format!("/inputParameters/properties/{key}")));
    }

    #[test]
    fn strict_mode_is_for_openai_only_and_formats_parse() {
        assert_eq!(
            bundle(&[], Format::Anthropic, true),
            Err(BundleError::StrictUnsupported(Format::Anthropic))
        );
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
            assert_eq!(
                serde_json::to_value(format).expect("json"),
                json!(format.as_str())
            );
        }
        let error = "claude".parse::<Format>().expect_err("unknown").to_string();
        assert!(
            error.contains("claude")
                && error.contains("openai, openai-responses, anthropic, gemini, mcp"),
            "{error}"
        );
    }

    #[test]
    fn a_name_clash_gets_another_valid_name_deterministically() {
        let slug = "GITHUB_CREATE_AN_ISSUE";
        let taken: HashMap<String, &str> = [(slug.to_owned(), "ANOTHER_TOOL")].into();
        let name = unique_name(slug, &taken);
        assert!(name_ok(&name) && name != slug, "{name}");
        assert_eq!(name, unique_name(slug, &taken));
    }

    #[test]
    fn a_slug_given_twice_is_bundled_once() {
        let sources = sources();
        let twice = [sources[0], sources[1], sources[0]];
        let bundle = bundle(&twice, Format::Gemini, false).expect("a bundle");
        assert_eq!(bundle.tools.len(), 2);
        assert_eq!(bundle.name_map.len(), 2);
    }

    #[test]
    fn strict_mode_lists_its_changes_and_encodes_free_form_objects() {
        let sources = sources();
        let tool = sources
            .iter()
            .find(|s| s.slug == "BROWSEAI_RUN_ROBOT")
            .expect("in the catalogue");
        let bundle =
            bundle(std::slice::from_ref(tool), Format::OpenAiResponses, true).expect("a bundle");
        let params = &bundle.tools[0]["parameters"]["properties"]["input_parameters"];
        assert_eq!(params["type"], json!(["string", "null"]), "{params}");
        let reasons: Vec<&str> = bundle.changes.iter().map(|c| c.reason.as_str()).collect();
        assert!(
            reasons.iter().any(|r| r.contains("JSON-encoded")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("made required and nullable")),
            "{reasons:?}"
        );
        let call = bundle
            .resolve_call(
                tool.slug,
                json!({"robot_id": "r1", "input_parameters": "{\"originUrl\": \"https://x\"}"}),
            )
            .expect("known");
        assert_eq!(
            call.arguments,
            json!({"robot_id": "r1", "input_parameters": {"originUrl": "https://x"}})
        );
    }

    /// `cargo test --release --lib agent::bundle -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark: prints bundle sizes and build times"]
    fn benchmark_bundle_sizes() {
        let sources = sources();
        let github: Vec<ToolSource<'_>> = sources
            .iter()
            .filter(|s| s.slug.starts_with("GITHUB_"))
            .copied()
            .collect();
        for (format, strict) in COMBINATIONS {
            let start = std::time::Instant::now();
            let all = bundle(&sources, format, strict).expect("a bundle");
            let built = start.elapsed();
            let bytes = serde_json::to_vec(&all).expect("json").len();
            let tools = serde_json::to_vec(&all.tools).expect("json").len();
            let maps = serde_json::to_vec(&all.argument_map).expect("json").len();
            let changes = serde_json::to_vec(&all.changes).expect("json").len();
            let one = bundle(&github[..1], format, strict).expect("a bundle");
            let github_bytes =
                serde_json::to_vec(&bundle(&github, format, strict).expect("a bundle"))
                    .expect("json")
                    .len();
            println!(
                "{format:17} strict={strict:5}: catalogue {:5} KB (tools {:5} KB, argumentMap {:4} KB, changes {:5} KB, {} changes) built in {:5.1} ms; github ({} tools) {:5} KB; one tool {} B",
                bytes / 1024, tools / 1024, maps / 1024, changes / 1024, all.changes.len(),
                built.as_secs_f64() * 1e3, github.len(), github_bytes / 1024,
                serde_json::to_vec(&one).expect("json").len()
            );
        }
        let cached: usize = sources
            .iter()
            .map(|s| s.input_schema.to_string().len())
            .sum();
        println!("cached input schemas: {} KB", cached / 1024);
    }
}
