//! The cached format. Field names and order of the first fields are exactly
//! those of the system we replace, so its consumers read our objects unchanged;
//! everything after them is an addition.

use super::Slug;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object per toolkit: `{prefix}{slug}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachedToolkit {
    #[schema(value_type = String)]
    pub slug: Slug,
    pub name: String,
    pub logo: String,
    pub tools: Vec<CachedToolSchema>,
    pub tool_count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub categories: Vec<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub auth_modes: Vec<String>,
    #[serde(default)]
    pub no_auth: bool,
    /// *Added*: the toolkit's trigger types (absent when it has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<CachedTriggerType>,
}

/// One trigger type: an event the connected app pushes. `config` (what
/// setting one up takes) and `payload` (what the webhook delivers) are
/// exactly as Composio sent them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachedTriggerType {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub instructions: String,
    /// `webhook` or `poll`.
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = String)]
    pub toolkit_slug: Slug,
    pub version: Option<String>,
    /// JSON Schema of the set-up fields, as Composio sent it.
    #[schema(value_type = Object)]
    pub config: Value,
    /// JSON Schema of what the webhook delivers, as Composio sent it.
    #[schema(value_type = Object)]
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Category {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachedToolSchema {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The tool's input JSON Schema, as Composio sent it.
    #[schema(value_type = Object)]
    pub input_parameters: Value,
    /// The tool's output JSON Schema, as Composio sent it.
    #[schema(value_type = Object)]
    pub output_parameters: Value,
    #[schema(value_type = String)]
    pub toolkit_slug: Slug,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub is_deprecated: bool,
    /// *Added*: what serving this tool in each provider format renames or
    /// rewrites; absent when every format takes it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat: Option<super::CompatReport>,
}

/// `{prefix}_meta.json`: the first four fields are the replaced system's; the
/// index lets every list route answer from this one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub last_synced_at: String,
    pub toolkit_count: usize,
    pub total_tool_count: usize,
    pub sync_duration_ms: u64,
    #[serde(default)]
    pub sync_id: String,
    #[serde(default)]
    pub toolkits: Vec<IndexEntry>,
    #[serde(default)]
    pub failed: Vec<Failure>,
    /// Objects this meta no longer names that are still to be deleted: a
    /// failed delete is retried by the next sync, never forgotten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_deletes: Vec<Slug>,
    /// A full sync ran out of time: when its pass began. The next full sync
    /// resumes it (fetches what was not synced since) instead of starting over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished_full_pass: Option<String>,
    /// The change record this sync writes just after publishing (when tools
    /// changed): a reader that lists records before it appears knows its
    /// listing is not complete yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_record: Option<String>,
}

/// What a sync derives into an [`IndexEntry`] beyond the toolkit's object,
/// numbered: 1 added each tool's argument names for search
/// ([`ToolEntry::parameters`]).
pub const INDEX_FORMAT: u32 = 1;

/// What the index knows of one cached toolkit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    pub slug: Slug,
    pub name: String,
    pub logo: String,
    pub tool_count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// SHA-256 of the object's bytes: a write is skipped when it is unchanged.
    pub content_hash: String,
    /// The store's ETag of the object as this sync wrote it: an object whose
    /// listed ETag differs was changed, rolled back or deleted behind our back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The store's ETag of its snapshot (`_objects/{slug}.{contentHash}.json`,
    /// the same bytes, never rewritten) as this sync wrote it: what readers
    /// serve. `None` in a meta written before snapshots (the next sync writes one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_etag: Option<String>,
    /// When this toolkit was last fetched successfully.
    pub synced_at: String,
    /// The last sync failed for this toolkit; the object is its last good copy.
    #[serde(default)]
    pub stale: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Tool slugs, names and descriptions, so `GET /toolkits` needs no other read.
    #[serde(default)]
    pub tools: Vec<ToolEntry>,
    /// Tools the upstream sent that were left out of the object (by slug),
    /// with the reason: a schema that cannot be stored and served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<Failure>,
    /// Trigger types, so `GET /triggers` and search need no other read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerEntry>,
    /// What the sync derives into the entry, by [`INDEX_FORMAT`]: an entry of
    /// an older format is refetched by the next sync even when its toolkit
    /// did not change, so what a new release derives (search's argument
    /// names) reaches every toolkit, not only those that change. 0 in a meta
    /// written before the number.
    #[serde(default)]
    pub index_format: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerEntry {
    pub slug: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Where its record sits in the toolkit's object (bytes `[start, end)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[usize; 2]>,
    /// Hash of what the change feed calls a change: name, description,
    /// instructions, type and both schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolEntry {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Where this tool's object sits in the toolkit's object (bytes `[start, end)`),
    /// so the tool route answers without parsing the toolkit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[usize; 2]>,
    /// Hash of what a change feed calls a change: name, description and both
    /// schemas (not the version stamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    /// What provider formats rename or rewrite; absent when nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat: Option<super::CompatReport>,
    /// The words of its arguments' names, for search (see
    /// [`parameter_words`](super::parameter_words)); absent in metas written
    /// before search read them, and for a tool that takes none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parameters: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Failure {
    /// Kept as a string: a slug refused by validation is reported as received.
    pub slug: String,
    pub error: String,
}

/// A tool the sync left out of its toolkit's object, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeftOutTool {
    pub toolkit: String,
    pub tool: String,
    pub reason: String,
}

impl Meta {
    pub fn entry(&self, slug: &Slug) -> Option<&IndexEntry> {
        self.toolkits.iter().find(|e| &e.slug == slug)
    }

    /// Every tool left out of a published toolkit, toolkit by toolkit.
    pub fn tools_left_out(&self) -> Vec<LeftOutTool> {
        self.toolkits
            .iter()
            .flat_map(|e| {
                e.left_out.iter().map(|f| LeftOutTool {
                    toolkit: e.slug.to_string(),
                    tool: f.slug.clone(),
                    reason: f.error.clone(),
                })
            })
            .collect()
    }
}

impl CachedToolkit {
    pub fn tool(&self, slug: &str) -> Option<&CachedToolSchema> {
        self.tools.iter().find(|t| t.slug == slug)
    }

    pub fn trigger(&self, slug: &str) -> Option<&CachedTriggerType> {
        self.triggers.iter().find(|t| t.slug == slug)
    }
}
