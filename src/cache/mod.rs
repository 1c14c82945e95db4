//! The domain: validated slugs, the cached model, the mapping from the wire
//! format, content hashing, and the sync's pure decisions (`plan`). No I/O here.

pub mod changes;
mod mapping;
mod model;
pub mod plan;
mod slug;

pub use mapping::{
    content_hash, known_tools, map_toolkit, EncodedToolkit, KnownTools, MappingError, ToolkitInfo,
    UpstreamToolkit,
};
pub use model::{
    CachedToolSchema, CachedToolkit, CachedTriggerType, Category, Failure, IndexEntry, Meta,
    ToolEntry, TriggerEntry,
};
pub use slug::{Slug, SlugError, ToolSlug, MAX_SLUG_LEN, MAX_TOOL_SLUG_LEN};

/// RFC 3339 with milliseconds, as the replaced system wrote `lastSyncedAt`.
pub fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
