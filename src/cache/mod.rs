//! The domain: validated slugs, the cached model, the mapping from the wire
//! format and content hashing. No I/O here.

mod mapping;
mod model;
mod slug;

pub use mapping::{content_hash, map_toolkit, MappingError, UpstreamToolkit};
pub use model::{
    CachedToolSchema, CachedToolkit, Category, Failure, IndexEntry, Meta, ToolSummary,
};
pub use slug::{Slug, SlugError, ToolSlug, MAX_SLUG_LEN, MAX_TOOL_SLUG_LEN};

/// RFC 3339 with milliseconds, as the replaced system wrote `lastSyncedAt`.
pub fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
