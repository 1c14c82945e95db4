//! Wire → cache. Everything the upstream sends is checked here before it can
//! reach the store: the toolkit is the one we asked for, every tool belongs to
//! it, tool slugs are unique and URL-safe, schemas are objects.

use super::{CachedToolSchema, CachedToolkit, Category, Slug, ToolSlug};
use crate::wire::{Tool, ToolkitDetail};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// What one toolkit's calls returned.
pub struct UpstreamToolkit {
    pub detail: ToolkitDetail,
    pub tools: Vec<Tool>,
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
}

pub fn map_toolkit(asked: &Slug, upstream: UpstreamToolkit) -> Result<CachedToolkit, MappingError> {
    let UpstreamToolkit { detail, tools } = upstream;
    if detail.slug != asked.as_str() {
        return Err(MappingError::SlugMismatch {
            asked: asked.to_string(),
            got: detail.slug,
        });
    }
    let mut seen = HashSet::with_capacity(tools.len());
    let mut cached = Vec::with_capacity(tools.len());
    for tool in tools {
        if let Some(owner) = &tool.toolkit {
            if !owner.slug.eq_ignore_ascii_case(asked.as_str()) {
                return Err(MappingError::ForeignTool {
                    tool: tool.slug,
                    other: owner.slug.clone(),
                });
            }
        }
        if let Err(e) = ToolSlug::parse(&tool.slug) {
            return Err(MappingError::BadToolSlug {
                tool: tool.slug,
                reason: e.to_string(),
            });
        }
        if !seen.insert(tool.slug.clone()) {
            return Err(MappingError::DuplicateTool(tool.slug));
        }
        cached.push(CachedToolSchema {
            input_parameters: schema(&tool.slug, "input_parameters", tool.input_parameters)?,
            output_parameters: schema(&tool.slug, "output_parameters", tool.output_parameters)?,
            slug: tool.slug,
            name: tool.name,
            description: tool.description,
            toolkit_slug: asked.clone(),
            tags: tool.tags,
            version: tool.version,
            is_deprecated: tool.is_deprecated,
        });
    }
    let auth_modes: Vec<String> = detail
        .auth_config_details
        .iter()
        .map(|d| d.mode.clone())
        .collect();
    let no_auth = auth_modes.iter().any(|m| m.eq_ignore_ascii_case("NO_AUTH"));
    let meta = detail.meta;
    Ok(CachedToolkit {
        slug: asked.clone(),
        name: detail.name,
        logo: meta.logo.unwrap_or_default(),
        tool_count: cached.len(),
        tools: cached,
        description: meta.description,
        categories: meta
            .categories
            .into_iter()
            .map(|c| Category {
                id: c.id,
                name: c.name,
            })
            .collect(),
        version: meta.version,
        updated_at: meta.updated_at,
        auth_modes,
        no_auth,
    })
}

/// A missing schema is an empty object; anything but an object is refused.
fn schema(tool: &str, field: &'static str, value: Value) -> Result<Value, MappingError> {
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(MappingError::BadSchema {
            tool: tool.to_owned(),
            field,
        }),
    }
}

/// Hex SHA-256 of an object's bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn tool(slug: &str, toolkit: &str) -> Tool {
        Tool {
            slug: slug.into(),
            name: slug.to_lowercase(),
            description: "does things".into(),
            toolkit: Some(ToolToolkit {
                slug: toolkit.into(),
                name: None,
                logo: None,
            }),
            input_parameters: json!({"type": "object", "properties": {"z": {}, "a": {}}}),
            output_parameters: Value::Null,
            version: Some("20251201_00".into()),
            tags: vec!["issues".into()],
            is_deprecated: false,
            no_auth: false,
        }
    }

    fn github() -> Slug {
        Slug::parse("github").unwrap()
    }

    #[test]
    fn maps_to_the_reference_format() {
        let cached = map_toolkit(
            &github(),
            UpstreamToolkit {
                detail: detail("github"),
                tools: vec![tool("GITHUB_A", "github"), tool("GITHUB_B", "GITHUB")],
            },
        )
        .unwrap();
        let v = serde_json::to_value(&cached).unwrap();
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
        assert!(!cached.no_auth);
        assert_eq!(cached.auth_modes, ["OAUTH2"]);
    }

    #[test]
    fn refuses_what_does_not_belong() {
        let gh = github();
        let mismatch = map_toolkit(
            &gh,
            UpstreamToolkit {
                detail: detail("gitlab"),
                tools: vec![],
            },
        );
        assert!(matches!(mismatch, Err(MappingError::SlugMismatch { .. })));
        let foreign = map_toolkit(
            &gh,
            UpstreamToolkit {
                detail: detail("github"),
                tools: vec![tool("GMAIL_X", "gmail")],
            },
        );
        assert!(matches!(foreign, Err(MappingError::ForeignTool { .. })));
        let dup = map_toolkit(
            &gh,
            UpstreamToolkit {
                detail: detail("github"),
                tools: vec![tool("GITHUB_A", "github"), tool("GITHUB_A", "github")],
            },
        );
        assert_eq!(
            dup.unwrap_err(),
            MappingError::DuplicateTool("GITHUB_A".into())
        );
        let mut bad = tool("GITHUB_A", "github");
        bad.input_parameters = json!("not a schema");
        let bad = map_toolkit(
            &gh,
            UpstreamToolkit {
                detail: detail("github"),
                tools: vec![bad],
            },
        );
        assert!(matches!(
            bad,
            Err(MappingError::BadSchema {
                field: "input_parameters",
                ..
            })
        ));
        let traversal = map_toolkit(
            &gh,
            UpstreamToolkit {
                detail: detail("github"),
                tools: vec![tool("../../x", "github")],
            },
        );
        assert!(matches!(traversal, Err(MappingError::BadToolSlug { .. })));
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
            let cached = map_toolkit(&github(), UpstreamToolkit { detail: d, tools }).unwrap();
            prop_assert_eq!(cached.tool_count, n);
            prop_assert_eq!(cached.tools.len(), n);
            prop_assert_eq!(cached.version.as_deref(), Some(version.as_str()));
            let bytes = serde_json::to_vec(&cached).unwrap();
            let back: CachedToolkit = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(&back, &cached);
        }
    }
}
