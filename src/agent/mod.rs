//! Agent-ready schemas: cached tools in a model provider's format, with the
//! way back to the original names and a per-tool compatibility report (search
//! is its own module, `crate::search`). Pure domain code: no I/O, no clock, no
//! async.
//!
//! # Provider formats
//!
//! ```
//! use composio_schema_cache::agent::{bundle, Format, ToolSource};
//! use serde_json::json;
//!
//! let input = json!({"type": "object", "properties": {"agent.name": {"type": "string"}},
//!                    "required": ["agent.name"]});
//! let output = json!({"type": "object"});
//! let tools = [ToolSource {
//!     slug: "ELEVENLABS_CREATE_AGENT", name: "Create agent", description: "Creates an agent.",
//!     input_schema: &input, output_schema: &output,
//! }];
//! let format: Format = "gemini".parse()?;              // `UnknownFormat` lists the valid names
//! let bundle = bundle(&tools, format, false)?;         // `strict` is for openai[-responses] only
//! let body = serde_json::to_string(&bundle)?;          // {"format","tools","nameMap","argumentMap","changes"?}
//!
//! // The model calls a tool: map its name and arguments back.
//! let call = bundle.resolve_call("ELEVENLABS_CREATE_AGENT", json!({"agent_name": "Ada"})).unwrap();
//! assert_eq!(call.arguments, json!({"agent.name": "Ada"}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Routes build [`ToolSource`]s from cached tools (`ToolSource::from(&cached_tool)`) and
//! serialize the [`Bundle`]. A client that kept only the bundle's JSON restores
//! arguments with [`restore_arguments`] after deserializing `argumentMap` into
//! an [`ArgumentMap`].
//!
//! **Names** are valid for every provider (`^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$`);
//! a slug that is not is shortened deterministically from the slug alone
//! (sanitized, filler words dropped, middle words elided, tagged with 6 hex
//! digits of its SHA-256: see [`tool_name`]).
//!
//! **Keys**: Gemini takes `^[a-zA-Z0-9_]{1,64}$`; every other format takes
//! Anthropic's `^[a-zA-Z0-9_.-]{1,64}$`. OpenAI documents no rule for
//! property keys, and an MCP client or an OpenAI-compatible gateway may hand
//! the schema to Claude, so the strictest rule of the JSON Schema providers
//! is the safe one. Keys are renamed at every level (properties, items,
//! `additionalProperties`, `anyOf`/`oneOf`/`allOf` branches) and `required`
//! follows. MCP's `outputSchema` is left as cached: the results come from
//! Composio with the original keys.
//!
//! **Gemini** gets its OpenAPI subset only: `$ref` inlined (a cycle is cut to
//! a JSON string), `examples` → `example`, `const` → one-value `enum`, type
//! arrays and `anyOf [X, null]` → `nullable`, non-string enums dropped into
//! the description, `format` kept only where Gemini documents it
//! (`date-time`, `enum`, `int32`, `int64`, `float`, `double`), and free-form
//! objects or untyped values sent as JSON-encoded strings (Gemini refuses an
//! object without properties). A tool without parameters declares none.
//!
//! **OpenAI strict** (`strict = true`): every object closed with
//! `additionalProperties: false` and every property required, optional ones
//! made nullable (`null` from the model means "absent": restoring drops it);
//! keywords strict mode refuses (`default`, `examples`, `minLength`, other
//! `format`s…) dropped. A free-form object cannot be closed without losing
//! it, so it is sent as a JSON-encoded string the model fills and restoring
//! decodes; an object allowed no keys at all stays `{}`. Objects nested
//! deeper than strict mode's 10 levels travel as JSON strings too.
//!
//! Every alteration is listed in `changes`, each with a JSON Pointer into the
//! cached tool (`/slug`, `/inputParameters/properties/...`).
//!
//! # Compatibility report
//!
//! [`compat_report`] says, per tool, which formats rename or rewrite what;
//! meant for the index at sync time (`{}` for a tool every format takes as is).

mod args;
mod bundle;
mod compat;
mod names;
mod schema;

#[cfg(test)]
mod testkit;

pub use args::{restore_arguments, ArgNode, ArgumentMap, JsonKind};
pub use bundle::{
    bundle, bundle_within, Bundle, BundleError, BundleLimits, Format, ToolCall, UnknownFormat,
};
pub use compat::{compat_report, CompatReport, Rewrite};
pub use names::{is_valid_tool_name, tool_name, MAX_NAME_LEN};
pub use schema::Change;

use crate::cache::CachedToolSchema;
use serde_json::Value;

/// One tool to convert, borrowed from wherever it is kept.
#[derive(Debug, Clone, Copy)]
pub struct ToolSource<'a> {
    pub slug: &'a str,
    /// Human-readable name (MCP's `title`).
    pub name: &'a str,
    pub description: &'a str,
    pub input_schema: &'a Value,
    pub output_schema: &'a Value,
}

impl<'a> From<&'a CachedToolSchema> for ToolSource<'a> {
    fn from(tool: &'a CachedToolSchema) -> Self {
        ToolSource {
            slug: &tool.slug,
            name: &tool.name,
            description: &tool.description,
            input_schema: &tool.input_parameters,
            output_schema: &tool.output_parameters,
        }
    }
}
