//! The compatibility report's shape: what serving a tool in each provider
//! format alters. Computed by `agent::compat_report` (which knows the formats)
//! at sync time and kept with each tool; the domain only stores and compares it.

use serde::{Deserialize, Serialize};

/// What serving a tool in each format alters. Empty parts are omitted: a tool
/// every format takes as is reports `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatReport {
    /// The name sent instead of the slug, in every format (the slug is too
    /// long or has characters providers refuse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Property keys renamed for openai, openai-responses, anthropic and mcp
    /// (outside `^[a-zA-Z0-9_.-]{1,64}$`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub renamed_keys: u32,
    /// Rewrites for Gemini's OpenAPI subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemini: Option<Rewrite>,
    /// Rewrites for OpenAI strict mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<Rewrite>,
    /// The conversion for openai, openai-responses, anthropic and mcp ran out
    /// of budget (the limit hit): the part cut accepts any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<String>,
}

/// What one dialect alters in a tool's input schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rewrite {
    /// Keys renamed (Gemini: outside `^[a-zA-Z0-9_]{1,64}$`; for strict mode
    /// they are the top-level `renamedKeys`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub renamed_keys: u32,
    /// Free-form objects and untyped values sent as JSON-encoded strings.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub json_encoded: u32,
    /// Optional properties made required and nullable (strict).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub made_required: u32,
    /// Objects that took undeclared keys and no longer do (strict).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub closed: u32,
    /// Keywords dropped somewhere in the schema, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// The root takes arguments the dialect cannot express: none are sent.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_arguments: bool,
    /// The conversion ran out of budget (the limit hit): the part cut accepts
    /// any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl CompatReport {
    /// Every format takes the tool as cached.
    pub fn is_clean(&self) -> bool {
        self == &CompatReport::default()
    }
}
