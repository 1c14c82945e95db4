//! Wire → cache. Everything the upstream sends is checked here before it can
//! reach the store: the toolkit is the one we asked for, every tool belongs to
//! it, tool slugs are unique and URL-safe, schemas are objects.
//!
//! Schemas stay raw JSON from the wire to the stored object: their bytes and
//! key order are kept, and no `Value` tree is built. The object is written
//! once, here, and each tool's byte range in it is recorded, so a reader can
//! serve one tool without parsing the toolkit.

use super::{Category, CompatReport, Failure, IndexEntry, Slug, ToolEntry, ToolSlug, TriggerEntry};
use crate::wire::{Tool, ToolkitDetail, ToolkitSummary, TriggerType};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// What the index knew of a toolkit's tools, by slug: their change hash and
/// compatibility report, reused for a tool whose hash did not change.
pub type KnownTools = HashMap<String, (String, Option<CompatReport>)>;

pub fn known_tools(entry: &IndexEntry) -> KnownTools {
    entry
        .tools
        .iter()
        .filter_map(|t| Some((t.slug.clone(), (t.hash.clone()?, t.compat.clone()))))
        .collect()
}

/// What the change feed compares: name, description and both schemas' bytes.
fn tool_hash(name: &str, description: &str, input: &RawValue, output: &RawValue) -> String {
    let mut hasher = Sha256::new();
    for part in [name, description, input.get(), output.get()] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..12])
}

/// One tool's input, for the compatibility report.
pub struct ToolInput<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub input_schema: &'a serde_json::Value,
}

/// Computes a tool's compatibility report (`None`: nothing to report). The
/// domain knows no provider format: the caller that does passes this in.
pub type CompatOf<'a> = dyn Fn(&ToolInput<'_>) -> Option<CompatReport> + Sync + 'a;

/// JSON nesting a stored schema may have. A toolkit object nests a tool's
/// schema three levels down and serde_json reads 128 at most: a deeper schema
/// would make the whole object unreadable, so its tool is left out.
pub const MAX_SCHEMA_DEPTH: usize = 100;

/// The compatibility report of a tool whose schema changed (or is new).
fn fresh_compat(p: &Prepared<'_>, compat: &CompatOf<'_>) -> Option<CompatReport> {
    let input: serde_json::Value = serde_json::from_str(p.input.get()).ok()?;
    compat(&ToolInput {
        slug: &p.tool.slug,
        name: &p.tool.name,
        description: p.description,
        input_schema: &input,
    })
}

/// A tool checked and hashed, before its compatibility report.
struct Prepared<'a> {
    tool: &'a Tool,
    description: &'a str,
    input: &'a RawValue,
    output: &'a RawValue,
    hash: String,
    parameters: String,
}

/// Tools per thread below which a toolkit's reports are not worth splitting.
const COMPAT_TOOLS_PER_THREAD: usize = 128;

/// Each tool's report: the known one if its hash did not change, else a fresh
/// one. A large toolkit's fresh reports are computed on every core: on a full
/// sync the largest toolkit arrives last and its mapping is the critical path.
fn compat_reports(
    prepared: &[Prepared<'_>],
    known: &KnownTools,
    compat: &CompatOf<'_>,
) -> Vec<Option<CompatReport>> {
    let report = |p: &Prepared<'_>| match known.get(&p.tool.slug) {
        Some((known_hash, report)) if *known_hash == p.hash => report.clone(),
        _ => fresh_compat(p, compat),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(prepared.len() / COMPAT_TOOLS_PER_THREAD);
    if threads <= 1 {
        return prepared.iter().map(report).collect();
    }
    let report = &report;
    std::thread::scope(|scope| {
        let chunks: Vec<_> = prepared
            .chunks(prepared.len().div_ceil(threads))
            .map(|chunk| scope.spawn(move || chunk.iter().map(report).collect::<Vec<_>>()))
            .collect();
        chunks
            .into_iter()
            .flat_map(|chunk| {
                chunk
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// What the cache keeps of a toolkit besides its tools. The toolkit listing
/// carries all of it, so a listed toolkit costs one call (its tools); the
/// detail call is the fallback for a toolkit the listing does not name.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolkitInfo {
    /// The slug as the upstream named it (checked against the one asked for).
    pub slug: String,
    pub name: String,
    pub logo: String,
    pub description: Option<String>,
    pub categories: Vec<Category>,
    pub version: Option<String>,
    pub updated_at: Option<String>,
    pub auth_modes: Vec<String>,
    pub no_auth: bool,
}

const NO_AUTH: &str = "NO_AUTH";

impl ToolkitInfo {
    pub fn from_summary(summary: &ToolkitSummary) -> Self {
        let no_auth = summary.no_auth.unwrap_or(false);
        let mut auth_modes = summary.auth_schemes.clone();
        // The detail call names no-auth toolkits' mode; the listing says `no_auth`.
        if no_auth && !auth_modes.iter().any(|m| m.eq_ignore_ascii_case(NO_AUTH)) {
            auth_modes.push(NO_AUTH.into());
        }
        let meta = &summary.meta;
        Self {
            slug: summary.slug.clone(),
            name: summary.name.clone(),
            logo: meta.logo.clone().unwrap_or_default(),
            description: meta.description.clone(),
            categories: categories(&meta.categories),
            version: meta.version.clone(),
            updated_at: meta.updated_at.clone(),
            auth_modes,
            no_auth,
        }
    }

    pub fn from_detail(detail: &ToolkitDetail) -> Self {
        let auth_modes: Vec<String> = detail
            .auth_config_details
            .iter()
            .map(|d| d.mode.clone())
            .collect();
        let meta = &detail.meta;
        Self {
            slug: detail.slug.clone(),
            name: detail.name.clone(),
            logo: meta.logo.clone().unwrap_or_default(),
            description: meta.description.clone(),
            categories: categories(&meta.categories),
            version: meta.version.clone(),
            updated_at: meta.updated_at.clone(),
            no_auth: auth_modes.iter().any(|m| m.eq_ignore_ascii_case(NO_AUTH)),
            auth_modes,
        }
    }
}

fn categories(wire: &[crate::wire::CategoryWire]) -> Vec<Category> {
    wire.iter()
        .map(|c| Category {
            id: c.id.clone(),
            name: c.name.clone(),
        })
        .collect()
}

/// What one toolkit's calls returned.
pub struct UpstreamToolkit {
    pub info: ToolkitInfo,
    pub tools: Vec<Tool>,
    pub triggers: Vec<TriggerType>,
}

/// A toolkit object, written once: its bytes, their hash, and what the index
/// keeps of it.
#[derive(Debug, Clone)]
pub struct EncodedToolkit {
    pub slug: Slug,
    pub body: bytes::Bytes,
    pub content_hash: String,
    pub name: String,
    pub logo: String,
    pub version: Option<String>,
    pub updated_at: Option<String>,
    pub tools: Vec<ToolEntry>,
    /// Tools left out, with the reason: their toolkit publishes without them.
    pub left_out: Vec<Failure>,
    pub triggers: Vec<TriggerEntry>,
    /// Trigger types left out, and why: one bad trigger type never costs
    /// the toolkit.
    pub refused_triggers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("asked for toolkit {asked:?} but the upstream answered with {got:?}")]
    SlugMismatch { asked: String, got: String },
    #[error("tool {tool:?} belongs to toolkit {other:?}, not to this one")]
    ForeignTool { tool: String, other: String },
    #[error("tool slug {0:?} appears more than once")]
    DuplicateTool(String),
    #[error("tool slug {tool:?} is not URL-safe: {reason}")]
    BadToolSlug { tool: String, reason: String },
    #[error("tool {tool:?}: {field} must be a JSON object")]
    BadSchema { tool: String, field: &'static str },
    #[error("tool {tool:?}: {field} nests deeper than {MAX_SCHEMA_DEPTH} levels")]
    TooDeep { tool: String, field: &'static str },
    #[error("the upstream listed no tools for a toolkit that had {had}; kept the last good copy")]
    Emptied { had: usize },
}

/// The cached format's head: the replaced system's first three fields.
#[derive(Serialize)]
struct Head<'a> {
    slug: &'a str,
    name: &'a str,
    logo: &'a str,
}

/// After the tools: the replaced system's `toolCount`, then our additions.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tail<'a> {
    tool_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    categories: &'a [Category],
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<&'a str>,
    auth_modes: &'a [String],
    no_auth: bool,
}

/// One tool in the cached format (`CachedToolSchema`'s fields, in its order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolRecord<'a> {
    slug: &'a str,
    name: &'a str,
    description: &'a str,
    input_parameters: &'a RawValue,
    output_parameters: &'a RawValue,
    toolkit_slug: &'a str,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    is_deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    compat: Option<&'a CompatReport>,
}

fn empty_object() -> &'static RawValue {
    static EMPTY: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| RawValue::from_string("{}".into()).expect("valid JSON"))
}

/// A missing or `null` schema is an empty object; anything but an object is refused.
fn schema<'a>(
    tool: &str,
    field: &'static str,
    raw: &'a Option<Box<RawValue>>,
) -> Result<&'a RawValue, MappingError> {
    let Some(raw) = raw else {
        return Ok(empty_object());
    };
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') if nests_deeper_than(raw.get(), MAX_SCHEMA_DEPTH) => {
            Err(MappingError::TooDeep {
                tool: tool.to_owned(),
                field,
            })
        }
        Some(b'{') => Ok(raw),
        Some(b'n') => Ok(empty_object()),
        _ => Err(MappingError::BadSchema {
            tool: tool.to_owned(),
            field,
        }),
    }
}

/// Whether JSON text nests arrays and objects deeper than `max`, without
/// parsing it (a scan, so any depth is fine).
fn nests_deeper_than(json: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in json.bytes() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, ..) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'{' | b'[') => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            (false, _, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A tool whose schemas can be stored and served, or why it is left out.
fn prepare<'a>(tool: &'a Tool) -> Result<Prepared<'a>, MappingError> {
    let description = tool.description.as_deref().unwrap_or_default();
    let input = schema(&tool.slug, "input_parameters", &tool.input_parameters)?;
    let output = schema(&tool.slug, "output_parameters", &tool.output_parameters)?;
    let hash = tool_hash(&tool.name, description, input, output);
    Ok(Prepared {
        tool,
        description,
        input,
        output,
        hash,
        parameters: parameter_words(input.get()),
    })
}

/// Argument names a tool's search text takes at most, and the longest kept:
/// a hostile schema's ten thousand properties do not grow the meta.
const MAX_PARAMETER_NAMES: usize = 32;
const MAX_PARAMETER_NAME_LEN: usize = 64;

/// The words of an input schema's argument names, for search: `calendarId`
/// and `start_datetime` say "calendar id start datetime", words a tool's
/// name and description often leave out. Empty when the schema (JSON text)
/// has no `properties` object. Reads the text once without building a tree.
pub fn parameter_words(schema: &str) -> String {
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;

    struct Names(String);
    impl<'de> serde::Deserialize<'de> for Names {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> Visitor<'de> for Keys {
                type Value = Names;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Names, A::Error> {
                    let mut words = String::new();
                    let mut kept = 0;
                    while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                        map.next_value::<IgnoredAny>()?;
                        if kept == MAX_PARAMETER_NAMES || name.len() > MAX_PARAMETER_NAME_LEN {
                            continue;
                        }
                        kept += 1;
                        let mut lower_before = false;
                        for c in name.chars() {
                            if c.is_uppercase() && lower_before {
                                words.push(' ');
                            }
                            lower_before = c.is_lowercase();
                            words.push(c);
                        }
                        words.push(' ');
                    }
                    words.pop();
                    Ok(Names(words))
                }
            }
            d.deserialize_map(Keys)
        }
    }
    #[derive(serde::Deserialize)]
    struct Root {
        properties: Option<Names>,
    }
    match serde_json::from_str::<Root>(schema) {
        Ok(Root {
            properties: Some(Names(words)),
        }) => words,
        _ => String::new(),
    }
}

/// The toolkit's object. A tool whose schema cannot be stored (not an object,
/// nested too deep) is left out and named in `left_out`: one bad tool does
/// not keep its toolkit's other tools from publishing.
pub fn map_toolkit(
    asked: &Slug,
    upstream: &UpstreamToolkit,
    known: &KnownTools,
    compat: &CompatOf<'_>,
) -> Result<EncodedToolkit, MappingError> {
    let UpstreamToolkit {
        info,
        tools,
        triggers,
    } = upstream;
    if !Slug::matches_upstream(asked, &info.slug) {
        return Err(MappingError::SlugMismatch {
            asked: asked.to_string(),
            got: info.slug.clone(),
        });
    }
    // An empty answer for a toolkit that had tools is a glitch far more
    // often than a real change: publishing it would wipe the toolkit.
    if tools.is_empty() && !known.is_empty() {
        return Err(MappingError::Emptied { had: known.len() });
    }
    let mut body = Vec::with_capacity(tools.len() * 2048 + 512);
    let head = Head {
        slug: asked.as_str(),
        name: &info.name,
        logo: &info.logo,
    };
    write_open(&mut body, &head);
    body.extend_from_slice(b",\"tools\":[");
    let mut left_out = Vec::new();
    let mut prepared = Vec::with_capacity(tools.len());
    let mut seen = HashSet::with_capacity(tools.len());
    for tool in tools {
        // One bad tool is left out, named with its reason; its neighbours publish.
        match identify(asked, tool, &mut seen).and_then(|()| prepare(tool)) {
            Ok(p) => prepared.push(p),
            Err(e) => left_out.push(Failure {
                slug: tool.slug.clone(),
                error: e.to_string(),
            }),
        }
    }
    let compats = compat_reports(&prepared, known, compat);
    let mut entries = Vec::with_capacity(tools.len());
    for (i, (prepared, compat)) in prepared.into_iter().zip(compats).enumerate() {
        let Prepared {
            tool,
            description,
            input,
            output,
            hash,
            parameters,
        } = prepared;
        if i > 0 {
            body.push(b',');
        }
        let start = body.len();
        let record = ToolRecord {
            slug: &tool.slug,
            name: &tool.name,
            description,
            input_parameters: input,
            output_parameters: output,
            toolkit_slug: asked.as_str(),
            tags: &tool.tags,
            version: tool.version.as_deref(),
            is_deprecated: tool.is_deprecated,
            compat: compat.as_ref(),
        };
        serde_json::to_writer(&mut body, &record).expect("a tool serializes");
        entries.push(ToolEntry {
            slug: tool.slug.clone(),
            name: tool.name.clone(),
            description: description.to_owned(),
            range: Some([start, body.len()]),
            hash: Some(hash),
            deprecated: tool.is_deprecated,
            compat,
            parameters,
        });
    }
    body.push(b']');
    let tail = Tail {
        tool_count: entries.len(),
        description: info.description.as_deref(),
        categories: &info.categories,
        version: info.version.as_deref(),
        updated_at: info.updated_at.as_deref(),
        auth_modes: &info.auth_modes,
        no_auth: info.no_auth,
    };
    write_continued(&mut body, &tail);
    let (trigger_entries, refused_triggers) = write_triggers(&mut body, asked, triggers);
    let content_hash = content_hash(&body);
    Ok(EncodedToolkit {
        slug: asked.clone(),
        body: body.into(),
        content_hash,
        name: info.name.clone(),
        logo: info.logo.clone(),
        version: info.version.clone(),
        updated_at: info.updated_at.clone(),
        tools: entries,
        left_out,
        triggers: trigger_entries,
        refused_triggers,
    })
}

/// A tool's slug is its own, URL-safe, and its toolkit's (the first tool of
/// a repeated slug is kept, later ones are left out).
fn identify<'t>(
    asked: &Slug,
    tool: &'t Tool,
    seen: &mut HashSet<&'t str>,
) -> Result<(), MappingError> {
    if let Some(owner) = &tool.toolkit {
        if !Slug::matches_upstream(asked, &owner.slug) {
            return Err(MappingError::ForeignTool {
                tool: tool.slug.clone(),
                other: owner.slug.clone(),
            });
        }
    }
    if let Err(e) = ToolSlug::parse(&tool.slug) {
        return Err(MappingError::BadToolSlug {
            tool: tool.slug.clone(),
            reason: e.to_string(),
        });
    }
    if !seen.insert(tool.slug.as_str()) {
        return Err(MappingError::DuplicateTool(tool.slug.clone()));
    }
    Ok(())
}

/// One trigger type in the cached format (`CachedTriggerType`'s fields, in its order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TriggerRecord<'a> {
    slug: &'a str,
    name: &'a str,
    description: &'a str,
    instructions: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    toolkit_slug: &'a str,
    version: Option<&'a str>,
    config: &'a RawValue,
    payload: &'a RawValue,
}

/// What the change feed compares of a trigger type: everything but its version stamp.
fn trigger_hash(record: &TriggerRecord<'_>) -> String {
    let mut hasher = Sha256::new();
    let parts = [
        record.name,
        record.description,
        record.instructions,
        record.kind,
        record.config.get(),
        record.payload.get(),
    ];
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..12])
}

/// Why a trigger type cannot be cached, if it cannot.
fn refuse_trigger(asked: &Slug, trigger: &TriggerType, seen: &HashSet<&str>) -> Option<String> {
    if let Err(e) = ToolSlug::parse(&trigger.slug) {
        return Some(format!("slug is not URL-safe: {e}"));
    }
    if let Some(owner) = trigger.toolkit.as_ref() {
        if !Slug::matches_upstream(asked, &owner.slug) {
            return Some(format!("belongs to toolkit {:?}", owner.slug));
        }
    }
    if seen.contains(trigger.slug.as_str()) {
        return Some("appears more than once".into());
    }
    None
}

/// Closes the toolkit's object with `,"triggers":[...]}` when it has any
/// (an object without trigger types keeps its bytes, and its hash). A bad
/// trigger type is left out and named, never the toolkit's failure.
fn write_triggers(
    body: &mut Vec<u8>,
    asked: &Slug,
    triggers: &[TriggerType],
) -> (Vec<TriggerEntry>, Vec<(String, String)>) {
    let mut entries = Vec::with_capacity(triggers.len());
    let mut refused = Vec::new();
    let mut seen = HashSet::with_capacity(triggers.len());
    let mut records = Vec::with_capacity(triggers.len());
    for trigger in triggers {
        if let Some(reason) = refuse_trigger(asked, trigger, &seen) {
            refused.push((trigger.slug.clone(), reason));
            continue;
        }
        let config = schema(&trigger.slug, "config", &trigger.config);
        let payload = schema(&trigger.slug, "payload", &trigger.payload);
        let (config, payload) = match (config, payload) {
            (Ok(config), Ok(payload)) => (config, payload),
            (Err(e), _) | (_, Err(e)) => {
                refused.push((trigger.slug.clone(), e.to_string()));
                continue;
            }
        };
        seen.insert(trigger.slug.as_str());
        records.push(TriggerRecord {
            slug: &trigger.slug,
            name: &trigger.name,
            description: trigger.description.as_deref().unwrap_or_default(),
            instructions: trigger.instructions.as_deref().unwrap_or_default(),
            kind: trigger.kind.as_deref().unwrap_or_default(),
            toolkit_slug: asked.as_str(),
            version: trigger.version.as_deref(),
            config,
            payload,
        });
    }
    if records.is_empty() {
        return (entries, refused);
    }
    debug_assert_eq!(body.last(), Some(&b'}'));
    body.pop();
    body.extend_from_slice(b",\"triggers\":[");
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let start = body.len();
        serde_json::to_writer(&mut *body, record).expect("a trigger type serializes");
        entries.push(TriggerEntry {
            slug: record.slug.to_owned(),
            name: record.name.to_owned(),
            description: record.description.to_owned(),
            kind: record.kind.to_owned(),
            range: Some([start, body.len()]),
            hash: Some(trigger_hash(record)),
        });
    }
    body.extend_from_slice(b"]}");
    (entries, refused)
}

/// Writes `{...fields` of a struct, leaving the object open.
fn write_open(out: &mut Vec<u8>, value: &impl Serialize) {
    let start = out.len();
    serde_json::to_writer(&mut *out, value).expect("serializes");
    debug_assert_eq!(out.last(), Some(&b'}'));
    out.truncate(out.len() - 1);
    debug_assert_eq!(out.get(start), Some(&b'{'));
}

/// Writes `,fields...}` of a struct, closing an object left open.
fn write_continued(out: &mut Vec<u8>, value: &impl Serialize) {
    let start = out.len();
    serde_json::to_writer(&mut *out, value).expect("serializes");
    debug_assert_eq!(out.get(start), Some(&b'{'));
    out[start] = b',';
}

/// Hex SHA-256 of an object's bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CachedToolSchema, CachedToolkit};
    use crate::wire::{AuthConfigDetail, ToolToolkit, ToolkitMeta};
    use proptest::prelude::*;
    use serde_json::json;

    fn detail(slug: &str) -> ToolkitDetail {
        ToolkitDetail {
            slug: slug.into(),
            name: "GitHub".into(),
            enabled: Some(true),
            meta: ToolkitMeta {
                logo: Some("https://logos.composio.dev/api/github".into()),
                description: Some("Code hosting".into()),
                version: Some("20251201_00".into()),
                ..Default::default()
            },
            auth_config_details: vec![AuthConfigDetail {
                mode: "OAUTH2".into(),
                name: None,
            }],
        }
    }

    fn raw(v: serde_json::Value) -> Option<Box<RawValue>> {
        Some(serde_json::value::to_raw_value(&v).unwrap())
    }

    fn tool(slug: &str, toolkit: &str) -> Tool {
        Tool {
            slug: slug.into(),
            name: slug.to_lowercase(),
            description: Some("does things".into()),
            toolkit: Some(ToolToolkit {
                slug: toolkit.into(),
                name: None,
                logo: None,
            }),
            input_parameters: raw(json!({"type": "object", "properties": {"z": {}, "a": {}}})),
            output_parameters: None,
            version: Some("20251201_00".into()),
            available_versions: vec![],
            scopes: vec![],
            tags: vec!["issues".into()],
            is_deprecated: false,
            no_auth: false,
        }
    }

    fn no_known() -> KnownTools {
        KnownTools::new()
    }

    /// What the index would know after publishing `encoded`.
    fn known_from(encoded: &EncodedToolkit) -> KnownTools {
        encoded
            .tools
            .iter()
            .map(|t| (t.slug.clone(), (t.hash.clone().unwrap(), t.compat.clone())))
            .collect()
    }

    /// Stands in for `agent::compat_report` (the domain does not know it):
    /// counts top-level keys with a space.
    fn spaced_keys(tool: &ToolInput<'_>) -> Option<CompatReport> {
        let props = tool.input_schema.get("properties")?.as_object()?;
        let renamed_keys = props.keys().filter(|k| k.contains(' ')).count() as u32;
        (renamed_keys > 0).then(|| CompatReport {
            renamed_keys,
            ..Default::default()
        })
    }

    fn github() -> Slug {
        Slug::parse("github").unwrap()
    }

    fn upstream(detail: ToolkitDetail, tools: Vec<Tool>) -> UpstreamToolkit {
        UpstreamToolkit {
            info: ToolkitInfo::from_detail(&detail),
            tools,
            triggers: vec![],
        }
    }

    #[test]
    fn a_tools_argument_names_become_its_search_words_within_bounds() {
        let words = |schema: serde_json::Value| parameter_words(&schema.to_string());
        let calendar = json!({"type": "object", "properties": {
            "calendarId": {"type": "string"}, "start_datetime": {}, "sendUpdates": {"properties": {"inner": {}}}
        }});
        assert_eq!(words(calendar), "calendar Id start_datetime send Updates");
        // Escaped names are read as names; nothing else in the schema is.
        assert_eq!(
            parameter_words(r#"{"properties": {"due\u0020date": {}}, "title": "x"}"#),
            "due date"
        );
        for nothing in [
            json!({"type": "object"}),
            json!({"properties": ["a", "b"]}),
            json!({"properties": "a"}),
            json!({"properties": null}),
            json!([1]),
        ] {
            assert_eq!(words(nothing.clone()), "", "{nothing}");
        }
        // A schema of ten thousand long and short names keeps 32 short ones.
        let mut many = serde_json::Map::new();
        for i in 0..10_000 {
            many.insert(
                format!(
                    "{}{i}",
                    if i % 2 == 0 {
                        "x".repeat(100)
                    } else {
                        "p".into()
                    }
                ),
                json!({}),
            );
        }
        let kept = words(json!({ "properties": many }));
        assert_eq!(kept.split(' ').count(), MAX_PARAMETER_NAMES);
        assert!(kept.split(' ').all(|w| w.starts_with('p')), "{kept}");
        // What the sync stores in the meta, so the reader's index has it.
        let mut t = tool("GITHUB_CREATE_ISSUE", "github");
        t.input_parameters =
            raw(json!({"type": "object", "properties": {"repoName": {}, "assignees": {}}}));
        let mapped = map_toolkit(
            &github(),
            &upstream(detail("github"), vec![t]),
            &no_known(),
            &spaced_keys,
        )
        .unwrap();
        assert_eq!(mapped.tools[0].parameters, "repo Name assignees");
    }

    #[test]
    fn a_large_toolkit_split_across_threads_keeps_order_and_reuses_known_reports() {
        // Every third tool has a key providers refuse.
        let tools: Vec<Tool> = (0..3 * COMPAT_TOOLS_PER_THREAD + 7)
            .map(|i| {
                let mut t = tool(&format!("GITHUB_T{i:04}"), "github");
                if i % 3 == 0 {
                    t.input_parameters =
                        raw(json!({"type": "object", "properties": {format!("bad key {i}"): {}}}));
                }
                t
            })
            .collect();
        let toolkit = upstream(detail("github"), tools.clone());
        let first = map_toolkit(&github(), &toolkit, &no_known(), &spaced_keys).unwrap();
        assert_eq!(first.tools.len(), tools.len());
        for (i, (entry, tool)) in first.tools.iter().zip(&tools).enumerate() {
            assert_eq!(entry.slug, tool.slug);
            let input = serde_json::from_str(tool.input_parameters.as_deref().unwrap().get());
            let alone = spaced_keys(&ToolInput {
                slug: &tool.slug,
                name: &tool.name,
                description: "does things",
                input_schema: &input.unwrap(),
            });
            assert_eq!(entry.compat, alone, "tool {i}");
            let renamed = entry.compat.as_ref().is_some_and(|c| c.renamed_keys > 0);
            assert_eq!(renamed, i % 3 == 0, "tool {i}");
        }
        // Known reports are reused as they were: a planted one shows it.
        let mut known = known_from(&first);
        let planted = CompatReport {
            renamed_keys: 99,
            ..Default::default()
        };
        known.get_mut("GITHUB_T0001").unwrap().1 = Some(planted.clone());
        let again = map_toolkit(&github(), &toolkit, &known, &spaced_keys).unwrap();
        assert_eq!(again.tools[1].compat, Some(planted));
        assert_eq!(again.tools[3].compat, first.tools[3].compat);
    }

    #[test]
    fn a_toolkit_that_had_tools_and_now_has_none_is_refused() {
        let had = map_toolkit(
            &github(),
            &upstream(detail("github"), vec![tool("GITHUB_A", "github")]),
            &no_known(),
            &spaced_keys,
        )
        .unwrap();
        let known = known_from(&had);
        let emptied = map_toolkit(
            &github(),
            &upstream(detail("github"), vec![]),
            &known,
            &spaced_keys,
        );
        assert_eq!(emptied.unwrap_err(), MappingError::Emptied { had: 1 });
        // A toolkit new to the cache may have no tools.
        assert!(map_toolkit(
            &github(),
            &upstream(detail("github"), vec![]),
            &no_known(),
            &spaced_keys
        )
        .is_ok());
    }

    #[test]
    fn maps_to_the_reference_format_with_exact_tool_ranges() {
        let encoded = map_toolkit(
            &github(),
            &upstream(
                detail("github"),
                vec![tool("GITHUB_A", "github"), tool("GITHUB_B", "GITHUB")],
            ),
            &no_known(),
            &spaced_keys,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&encoded.body).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(&keys[..5], ["slug", "name", "logo", "tools", "toolCount"]);
        assert_eq!(v["toolCount"], 2);
        let t = &v["tools"][0];
        let tkeys: Vec<&str> = t.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            &tkeys[..6],
            [
                "slug",
                "name",
                "description",
                "inputParameters",
                "outputParameters",
                "toolkitSlug"
            ]
        );
        assert_eq!(t["toolkitSlug"], "github");
        assert_eq!(t["outputParameters"], json!({}));
        // Upstream property order survives (UIs show parameters in that order).
        let props: Vec<&String> = t["inputParameters"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(props, ["z", "a"]);
        // The object reads back in the cached format, and each range is its tool.
        let cached: CachedToolkit = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(cached.auth_modes, ["OAUTH2"]);
        assert!(!cached.no_auth);
        for (entry, tool) in encoded.tools.iter().zip(&cached.tools) {
            let [start, end] = entry.range.unwrap();
            let alone: CachedToolSchema =
                serde_json::from_slice(&encoded.body[start..end]).unwrap();
            assert_eq!(&alone, tool);
            assert_eq!(entry.slug, tool.slug);
        }
        assert_eq!(encoded.content_hash, content_hash(&encoded.body));
    }

    fn trigger(slug: &str, toolkit: &str, config: &str) -> TriggerType {
        TriggerType {
            slug: slug.into(),
            name: slug.to_lowercase(),
            description: Some("fires".into()),
            instructions: None,
            kind: Some("webhook".into()),
            toolkit: Some(ToolToolkit {
                slug: toolkit.into(),
                name: None,
                logo: None,
            }),
            config: Some(RawValue::from_string(config.into()).unwrap()),
            payload: None,
            version: Some("20251201_00".into()),
            requires_webhook_endpoint_setup: Some(false),
        }
    }

    #[test]
    fn trigger_types_follow_the_reference_fields_exactly_and_a_bad_one_is_left_out() {
        let tools = vec![tool("GITHUB_A", "github")];
        let without = map_toolkit(
            &github(),
            &upstream(detail("github"), tools.clone()),
            &no_known(),
            &spaced_keys,
        )
        .unwrap();
        let odd = r#"{"properties":{"repo":{"type":"string","x":1.50}},"type":"object"}"#;
        let mut toolkit = upstream(detail("github"), tools);
        toolkit.triggers = vec![
            trigger("GITHUB_COMMIT_EVENT", "github", odd),
            trigger("GITHUB_COMMIT_EVENT", "github", "{}"),
            trigger("GITHUB_STAR", "github", "[1]"),
            trigger("NOTION_PAGE", "notion", "{}"),
            trigger("BAD SLUG", "github", "{}"),
            trigger(
                "GITHUB_DEEP",
                "github",
                &format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200)),
            ),
        ];
        let with = map_toolkit(&github(), &toolkit, &no_known(), &spaced_keys).unwrap();
        // The reference fields come first and unchanged; triggers come last.
        assert!(with
            .body
            .starts_with(&without.body[..without.body.len() - 1]));
        let text = std::str::from_utf8(&with.body).unwrap();
        assert!(text.contains(odd), "config bytes kept: {text}");
        let v: serde_json::Value = serde_json::from_slice(&with.body).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.last(), Some(&"triggers"));
        assert_eq!(with.triggers.len(), 1);
        let refused: Vec<&str> = with.refused_triggers.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            refused,
            [
                "GITHUB_COMMIT_EVENT",
                "GITHUB_STAR",
                "NOTION_PAGE",
                "BAD SLUG",
                "GITHUB_DEEP"
            ]
        );
        // Too deep for a reader's parser: left out, and the reason says so.
        assert!(with.refused_triggers[4].1.contains("deeper than"));
        let [start, end] = with.triggers[0].range.unwrap();
        let record: serde_json::Value = serde_json::from_slice(&with.body[start..end]).unwrap();
        let rkeys: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            rkeys,
            [
                "slug",
                "name",
                "description",
                "instructions",
                "type",
                "toolkitSlug",
                "version",
                "config",
                "payload"
            ]
        );
        assert_eq!(record["payload"], json!({}));
        let cached: CachedToolkit = serde_json::from_slice(&with.body).unwrap();
        assert_eq!(cached.triggers[0].kind, "webhook");
        let mut edited = toolkit.triggers[0].clone();
        edited.description = Some("fires differently".into());
        toolkit.triggers = vec![edited];
        let changed = map_toolkit(&github(), &toolkit, &no_known(), &spaced_keys).unwrap();
        assert_ne!(changed.triggers[0].hash, with.triggers[0].hash);
    }

    #[test]
    fn schema_bytes_pass_through_untouched() {
        let mut t = tool("GITHUB_A", "github");
        let odd = r#"{"type":"object","properties":{"b":{"x":1.50,"y":"\u00e9"},"a":{}}}"#;
        t.input_parameters = Some(RawValue::from_string(odd.into()).unwrap());
        let encoded = map_toolkit(
            &github(),
            &upstream(detail("github"), vec![t]),
            &no_known(),
            &spaced_keys,
        )
        .unwrap();
        let text = std::str::from_utf8(&encoded.body).unwrap();
        assert!(text.contains(odd), "{text}");
    }

    #[test]
    fn the_listing_and_the_detail_give_the_same_object() {
        let summary: ToolkitSummary = serde_json::from_value(json!({
            "slug": "browser_tool", "name": "Browser", "no_auth": true, "auth_schemes": [],
            "meta": {"logo": "l", "description": "d", "categories": [{"id": "c", "name": "C"}],
                     "version": "v1", "updated_at": "u", "tools_count": 0}
        }))
        .unwrap();
        let detail: ToolkitDetail = serde_json::from_value(json!({
            "slug": "browser_tool", "name": "Browser",
            "auth_config_details": [{"mode": "NO_AUTH"}],
            "meta": {"logo": "l", "description": "d", "categories": [{"slug": "c", "name": "C"}],
                     "version": "v1", "updated_at": "u"}
        }))
        .unwrap();
        assert_eq!(
            ToolkitInfo::from_summary(&summary),
            ToolkitInfo::from_detail(&detail)
        );
    }

    #[test]
    fn refuses_what_does_not_belong() {
        let gh = github();
        let mismatch = map_toolkit(
            &gh,
            &upstream(detail("gitlab"), vec![]),
            &no_known(),
            &spaced_keys,
        );
        assert!(matches!(mismatch, Err(MappingError::SlugMismatch { .. })));
        // A tool of another toolkit, a repeated slug, a slug that is not
        // URL-safe: that tool is left out, named with its reason.
        let mut repeated = tool("GITHUB_A", "github");
        repeated.name = "the second GITHUB_A".into();
        for (bad, reason) in [
            (tool("GMAIL_X", "gmail"), "belongs to toolkit \"gmail\""),
            (repeated, "appears more than once"),
            (tool("../../x", "github"), "is not URL-safe"),
        ] {
            let bad_slug = bad.slug.clone();
            let tools = vec![tool("GITHUB_A", "github"), bad, tool("GITHUB_B", "github")];
            let encoded = map_toolkit(
                &gh,
                &upstream(detail("github"), tools),
                &no_known(),
                &spaced_keys,
            )
            .unwrap();
            let kept: Vec<&str> = encoded.tools.iter().map(|t| t.slug.as_str()).collect();
            assert_eq!(kept, ["GITHUB_A", "GITHUB_B"], "{reason}");
            assert_eq!(
                encoded.tools[0].name, "github_a",
                "the first of a repeat is kept"
            );
            assert_eq!(encoded.left_out.len(), 1);
            assert_eq!(encoded.left_out[0].slug, bad_slug);
            assert!(
                encoded.left_out[0].error.contains(reason),
                "{}",
                encoded.left_out[0].error
            );
            let cached: CachedToolkit = serde_json::from_slice(&encoded.body).unwrap();
            assert_eq!(cached.tools.len(), 2);
        }
        // A tool whose schema cannot be stored is left out; its toolkit publishes.
        let deep = format!(
            "{}{}",
            "{\"a\":[".repeat(MAX_SCHEMA_DEPTH),
            "]}".repeat(MAX_SCHEMA_DEPTH)
        );
        for (input, field) in [
            (
                raw(json!("not a schema")),
                "input_parameters must be a JSON object",
            ),
            (raw(json!([1])), "input_parameters must be a JSON object"),
            (raw(json!(true)), "input_parameters must be a JSON object"),
            (
                Some(RawValue::from_string(deep.clone()).unwrap()),
                "nests deeper than 100",
            ),
        ] {
            let mut bad = tool("GITHUB_BAD", "github");
            bad.input_parameters = input;
            let tools = vec![tool("GITHUB_A", "github"), bad];
            let encoded = map_toolkit(
                &gh,
                &upstream(detail("github"), tools),
                &no_known(),
                &spaced_keys,
            )
            .unwrap();
            assert_eq!(encoded.tools.len(), 1);
            assert_eq!(encoded.left_out.len(), 1);
            assert_eq!(encoded.left_out[0].slug, "GITHUB_BAD");
            assert!(
                encoded.left_out[0].error.contains(field),
                "{}",
                encoded.left_out[0].error
            );
            let cached: CachedToolkit = serde_json::from_slice(&encoded.body).unwrap();
            assert_eq!(cached.tools.len(), 1);
        }
        // A string holding brackets is not nesting.
        assert!(!nests_deeper_than(
            &format!("{{\"a\":\"{}\"}}", "[".repeat(500)),
            3
        ));
        assert!(nests_deeper_than(&"[".repeat(5), 4));
    }

    #[test]
    fn slug_case_is_handled_alike_for_the_toolkit_and_its_tools() {
        let encoded = map_toolkit(
            &github(),
            &upstream(detail("GitHub"), vec![tool("GITHUB_A", "GITHUB")]),
            &no_known(),
            &spaced_keys,
        )
        .unwrap();
        let cached: CachedToolkit = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(cached.slug.as_str(), "github");
        assert_eq!(cached.tools[0].toolkit_slug.as_str(), "github");
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
        assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
        assert_eq!(content_hash(b"").len(), 64);
    }

    proptest! {
        #[test]
        fn mapping_keeps_every_tool_and_counts_them(n in 0usize..40, version in "[0-9]{8}_[0-9]{2}") {
            let tools: Vec<Tool> = (0..n).map(|i| tool(&format!("GITHUB_T{i}"), "github")).collect();
            let mut d = detail("github");
            d.meta.version = Some(version.clone());
            let encoded = map_toolkit(&github(), &upstream(d, tools), &no_known(), &spaced_keys).unwrap();
            let cached: CachedToolkit = serde_json::from_slice(&encoded.body).unwrap();
            prop_assert_eq!(cached.tool_count, n);
            prop_assert_eq!(cached.tools.len(), n);
            prop_assert_eq!(encoded.tools.len(), n);
            prop_assert_eq!(cached.version.as_deref(), Some(version.as_str()));
            let again = serde_json::to_vec(&cached).unwrap();
            let back: CachedToolkit = serde_json::from_slice(&again).unwrap();
            prop_assert_eq!(&back, &cached);
        }
    }
}
