//! The domain: validated slugs, the cached model, the mapping from the wire
//! format, content hashing, and the sync's pure decisions (`plan`). No I/O here.

pub mod changes;
mod compat;
mod mapping;
mod model;
pub mod plan;
mod slug;

pub use compat::{CompatReport, Rewrite};
pub use mapping::{
    content_hash, known_tools, map_toolkit, parameter_words, CompatOf, EncodedToolkit, KnownTools,
    MappingError, ToolInput, ToolkitInfo, UpstreamToolkit, MAX_SCHEMA_DEPTH,
};
pub use model::{
    CachedToolSchema, CachedToolkit, CachedTriggerType, Category, Failure, IndexEntry, LeftOutTool,
    Meta, ToolEntry, TriggerEntry, INDEX_FORMAT,
};
pub use slug::{Slug, SlugError, ToolSlug, MAX_SLUG_LEN, MAX_TOOL_SLUG_LEN};

/// RFC 3339 with milliseconds, as the replaced system wrote `lastSyncedAt`.
pub fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
