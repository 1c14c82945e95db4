//! Any bytes that parse as JSON, taken as a tool's input schema, converted
//! to every provider format (and OpenAI strict mode): the conversion ends
//! within its budget, never panics, and gives an object root with
//! `properties` an object and a `required` naming each declared property
//! once; its compatibility report too.
#![no_main]

use composio_schema_cache::agent::{bundle, compat_report, Format, ToolSource};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Four times the converter's byte budget (1 MiB): nothing one schema
/// produces comes near it.
const MAX_OUTPUT: usize = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let output = Value::Null;
    let tool = ToolSource {
        slug: "FUZZ_TOOL",
        name: "Fuzz tool",
        description: "A schema the fuzzer wrote.",
        input_schema: &schema,
        output_schema: &output,
    };
    let _ = compat_report(&tool);
    for format in Format::ALL {
        for strict in [false, true] {
            if strict && !format.supports_strict() {
                continue;
            }
            let bundle = bundle(std::slice::from_ref(&tool), format, strict).expect("bundled");
            assert_eq!(bundle.tools.len(), 1);
            let written = serde_json::to_vec(&bundle).expect("serializes");
            assert!(
                written.len() < MAX_OUTPUT,
                "{format} {strict}: {} bytes",
                written.len()
            );
            let provided = &bundle.tools[0];
            let root = match format {
                Format::OpenAi => &provided["function"]["parameters"],
                Format::OpenAiResponses | Format::Gemini => &provided["parameters"],
                Format::Anthropic => &provided["input_schema"],
                Format::Mcp => &provided["inputSchema"],
            };
            if format == Format::Gemini && root.is_null() {
                continue; // a declaration without parameters: Gemini's way to take none
            }
            check_root(root, format, strict);
        }
    }
});

fn check_root(root: &Value, format: Format, strict: bool) {
    let what = format!("{format} strict={strict}: {root}");
    let root = root
        .as_object()
        .unwrap_or_else(|| panic!("object root: {what}"));
    assert_eq!(root.get("type"), Some(&Value::from("object")), "{what}");
    let properties = root["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}"));
    if let Some(required) = root.get("required") {
        let required = required.as_array().unwrap_or_else(|| panic!("{what}"));
        let mut seen = std::collections::HashSet::new();
        for name in required {
            let name = name.as_str().unwrap_or_else(|| panic!("{what}"));
            assert!(seen.insert(name), "{name} required twice: {what}");
            assert!(properties.contains_key(name), "{name} undeclared: {what}");
        }
    }
}
