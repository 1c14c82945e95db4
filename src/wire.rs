//! Composio v3 payloads as the API sends them (see `openapi-v3-subset.json`).
//!
//! Pure serde, shared by the client, the emulator and the mapping. Every struct
//! ignores fields it does not know; only what the sync truly needs is required,
//! and a missing one is reported with its path (`items[3].slug`).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Number;

/// The pagination envelope of every list call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub total_pages: Option<Number>,
    #[serde(default)]
    pub current_page: Option<Number>,
    #[serde(default)]
    pub total_items: Option<Number>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthConfig {
    pub id: String,
    pub toolkit: AuthConfigToolkit,
    #[serde(default)]
    pub name: Option<String>,
    /// `ENABLED` or `DISABLED`; absent means enabled (older payloads).
    #[serde(default)]
    pub status: Option<String>,
}

impl AuthConfig {
    pub fn is_enabled(&self) -> bool {
        !matches!(self.status.as_deref(), Some(s) if s.eq_ignore_ascii_case("DISABLED"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthConfigToolkit {
    pub slug: String,
    #[serde(default)]
    pub logo: Option<String>,
}

/// `GET /api/v3/toolkits/{slug}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolkitDetail {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    pub meta: ToolkitMeta,
    #[serde(default)]
    pub auth_config_details: Vec<AuthConfigDetail>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolkitMeta {
    #[serde(default)]
    pub logo: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub categories: Vec<CategoryWire>,
    #[serde(default)]
    pub tools_count: Option<Number>,
    /// How many trigger types the toolkit has: 0 means no trigger call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_count: Option<Number>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub available_versions: Vec<String>,
}

/// The detail call names a category `{slug, name}`, the list call `{id, name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryWire {
    #[serde(alias = "slug")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthConfigDetail {
    pub mode: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// An item of `GET /api/v3/toolkits`: everything the cache keeps of a
/// toolkit, so a sync needs no per-toolkit detail call for listed toolkits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolkitSummary {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub no_auth: Option<bool>,
    #[serde(default)]
    pub auth_schemes: Vec<String>,
    #[serde(default)]
    pub meta: ToolkitMeta,
}

/// An item of `GET /api/v3/tools`. The schemas stay raw JSON: their bytes and
/// key order go to the cache as they came, without a `Value` tree in between.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub toolkit: Option<ToolToolkit>,
    #[serde(default)]
    pub input_parameters: Option<Box<RawValue>>,
    #[serde(default)]
    pub output_parameters: Option<Box<RawValue>>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub available_versions: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub is_deprecated: bool,
    #[serde(default)]
    pub no_auth: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolToolkit {
    pub slug: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub logo: Option<String>,
}

/// An item of `GET /api/v3.1/triggers_types`: an event a connected app can
/// push. `config` and `payload` stay raw JSON, kept byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerType {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub instructions: Option<String>,
    /// `webhook` or `poll`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub toolkit: Option<ToolToolkit>,
    #[serde(default)]
    pub config: Option<Box<RawValue>>,
    #[serde(default)]
    pub payload: Option<Box<RawValue>>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_webhook_endpoint_setup: Option<bool>,
}

/// `{"error": {...}}`, the API's error envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(default)]
    pub code: Option<Number>,
    #[serde(default)]
    pub status: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_fix: Option<String>,
}

/// The 429's body: `{"message"}`, not the error envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimitBody {
    pub message: String,
}

/// Parses a body and names the path of whatever is missing or mistyped.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_field_is_named_with_its_path() {
        let err = parse::<Page<Tool>>(br#"{"items":[{"slug":"A","name":"a"},{"name":"b"}]}"#)
            .unwrap_err();
        assert!(err.contains("items[1]") && err.contains("slug"), "{err}");
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let page: Page<AuthConfig> = parse(
            br#"{"items":[{"id":"ac_1","uuid":"u","toolkit":{"slug":"gmail","logo":"x","new":1},"status":"DISABLED","extra":[1]}],"next_cursor":null,"total_pages":1,"current_page":1,"total_items":1}"#,
        )
        .unwrap();
        assert_eq!(page.items[0].toolkit.slug, "gmail");
        assert!(!page.items[0].is_enabled());
        assert!(page.next_cursor.is_none());
    }

    #[test]
    fn both_category_shapes_parse() {
        let m: ToolkitMeta =
            parse(br#"{"categories":[{"slug":"dev","name":"Dev"},{"id":"p","name":"P"}]}"#)
                .unwrap();
        assert_eq!(m.categories[0].id, "dev");
        assert_eq!(m.categories[1].id, "p");
    }
}
