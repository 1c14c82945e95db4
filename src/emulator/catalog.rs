//! The emulator's data: toolkits in the cached format (as the replaced system
//! wrote them), turned back into what the v3 API sends.

use crate::cache::CachedToolkit;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The base version v3 serves when `toolkit_versions=latest` is missing.
pub const BASE_VERSION: &str = "00000000_00";

#[derive(Debug, Clone)]
pub struct CatalogToolkit {
    pub slug: String,
    pub name: String,
    pub logo: String,
    pub description: String,
    pub no_auth: bool,
    pub version: String,
    pub updated_at: String,
    /// Tools in the wire format, at the latest version.
    pub tools: Vec<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub toolkits: BTreeMap<String, CatalogToolkit>,
}

/// The sample bundled in the repository, embedded so `demo` works anywhere.
const SAMPLE: &[(&str, &str)] = &[
    ("browseai", include_str!("../../catalog/browseai.json")),
    (
        "browser_tool",
        include_str!("../../catalog/browser_tool.json"),
    ),
    ("firecrawl", include_str!("../../catalog/firecrawl.json")),
    ("github", include_str!("../../catalog/github.json")),
    (
        "googletasks",
        include_str!("../../catalog/googletasks.json"),
    ),
    ("linkedin", include_str!("../../catalog/linkedin.json")),
    (
        "perplexityai",
        include_str!("../../catalog/perplexityai.json"),
    ),
];

impl Catalog {
    pub fn sample() -> Self {
        let mut catalog = Self::default();
        for (name, text) in SAMPLE {
            let toolkit: CachedToolkit = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("bundled catalog {name}.json: {e}"));
            catalog.insert(toolkit);
        }
        catalog
    }

    /// Every `*.json` of a directory in the cached format (`_meta.json` aside).
    pub fn from_dir(dir: &Path) -> Result<Self, String> {
        let mut catalog = Self::default();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !name.ends_with(".json") || name.starts_with('_') {
                continue;
            }
            let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let toolkit: CachedToolkit =
                serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            catalog.insert(toolkit);
        }
        Ok(catalog)
    }

    /// `toolkits` toolkits with `tools_per_toolkit` tools each, shaped like the
    /// real schemas of `template` (cycled), for scale runs.
    pub fn synthetic(template: &Catalog, toolkits: usize, tools_per_toolkit: usize) -> Self {
        let shapes: Vec<&Value> = template
            .toolkits
            .values()
            .flat_map(|t| t.tools.iter())
            .collect();
        let mut catalog = Self::default();
        for i in 0..toolkits {
            let slug = format!("synthetic_{i:04}");
            let upper = slug.to_uppercase();
            let tools = (0..tools_per_toolkit)
                .map(|j| {
                    let mut tool = shapes
                        .get((i * tools_per_toolkit + j) % shapes.len().max(1))
                        .map(|v| (*v).clone())
                        .unwrap_or_else(|| json!({}));
                    tool["slug"] = json!(format!("{upper}_TOOL_{j:03}"));
                    tool["toolkit"] = json!({"slug": slug, "name": slug, "logo": ""});
                    tool
                })
                .collect();
            catalog.toolkits.insert(
                slug.clone(),
                CatalogToolkit {
                    name: format!("Synthetic {i}"),
                    logo: format!("https://logos.example/{slug}.svg"),
                    description: format!("Synthetic toolkit {i}"),
                    no_auth: false,
                    version: "20251201_00".into(),
                    updated_at: "2025-12-01T00:00:00.000Z".into(),
                    tools,
                    slug,
                },
            );
        }
        catalog
    }

    fn insert(&mut self, toolkit: CachedToolkit) {
        let slug = toolkit.slug.to_string();
        let no_auth = toolkit.no_auth || slug == "browser_tool";
        let tools = toolkit
            .tools
            .into_iter()
            .map(|t| {
                json!({
                    "slug": t.slug,
                    "name": t.name,
                    "description": t.description,
                    "toolkit": {"slug": slug, "name": toolkit.name, "logo": toolkit.logo},
                    "input_parameters": t.input_parameters,
                    "output_parameters": t.output_parameters,
                    "no_auth": no_auth,
                    "available_versions": [BASE_VERSION, "20251201_00"],
                    "version": t.version.unwrap_or_else(|| "20251201_00".into()),
                    "scopes": [],
                    "tags": t.tags,
                    "is_deprecated": t.is_deprecated,
                    "deprecated": {
                        "displayName": t.name,
                        "version": "20251201_00",
                        "available_versions": [BASE_VERSION, "20251201_00"],
                        "is_deprecated": t.is_deprecated,
                        "toolkit": {"logo": toolkit.logo}
                    }
                })
            })
            .collect();
        self.toolkits.insert(
            slug.clone(),
            CatalogToolkit {
                name: toolkit.name,
                logo: toolkit.logo,
                description: toolkit
                    .description
                    .unwrap_or_else(|| format!("{slug} toolkit")),
                no_auth,
                version: toolkit.version.unwrap_or_else(|| "20251201_00".into()),
                updated_at: toolkit
                    .updated_at
                    .unwrap_or_else(|| "2025-12-01T00:00:00.000Z".into()),
                tools,
                slug,
            },
        );
    }

    pub fn total_tools(&self) -> usize {
        self.toolkits.values().map(|t| t.tools.len()).sum()
    }
}

impl CatalogToolkit {
    /// What the base version serves: fewer tools than the latest.
    pub fn base_tools(&self) -> &[Value] {
        let n = self.tools.len();
        &self.tools[..if n > 1 { n * 3 / 4 } else { n }]
    }

    pub fn detail(&self) -> Value {
        let mode = if self.no_auth { "NO_AUTH" } else { "OAUTH2" };
        json!({
            "slug": self.slug,
            "name": self.name,
            "enabled": true,
            "is_local_toolkit": false,
            "composio_managed_auth_schemes": if self.no_auth { json!([]) } else { json!(["OAUTH2"]) },
            "auth_config_details": [{
                "mode": mode,
                "name": self.name,
                "fields": {
                    "auth_config_creation": {"required": [], "optional": []},
                    "connected_account_initiation": {"required": [], "optional": []}
                }
            }],
            "meta": self.meta(true),
            "deprecated": {"toolkitId": format!("tk_{}", self.slug), "rawProxyInfoByAuthSchemes": []}
        })
    }

    pub fn summary(&self) -> Value {
        json!({
            "slug": self.slug,
            "name": self.name,
            "auth_schemes": if self.no_auth { json!([]) } else { json!(["OAUTH2"]) },
            "composio_managed_auth_schemes": [],
            "is_local_toolkit": false,
            "no_auth": self.no_auth,
            "deprecated": {"toolkitId": format!("tk_{}", self.slug)},
            "meta": self.meta(false)
        })
    }

    fn meta(&self, detail: bool) -> Value {
        let category = if detail {
            json!({"slug": "productivity", "name": "Productivity"})
        } else {
            json!({"id": "productivity", "name": "Productivity"})
        };
        let mut meta = json!({
            "created_at": "2024-01-01T00:00:00.000Z",
            "updated_at": self.updated_at,
            "description": self.description,
            "logo": self.logo,
            "app_url": null,
            "categories": [category],
            "triggers_count": 0,
            "tools_count": self.tools.len(),
            "version": self.version,
        });
        if detail {
            meta["available_versions"] = json!([BASE_VERSION, self.version]);
        }
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_has_the_bundled_toolkits_with_their_real_counts() {
        let c = Catalog::sample();
        let counts: Vec<(&str, usize)> = c
            .toolkits
            .values()
            .map(|t| (t.slug.as_str(), t.tools.len()))
            .collect();
        assert_eq!(
            counts,
            [
                ("browseai", 9),
                ("browser_tool", 18),
                ("firecrawl", 8),
                ("github", 831),
                ("googletasks", 14),
                ("linkedin", 4),
                ("perplexityai", 1)
            ]
        );
        assert!(c.toolkits["browser_tool"].no_auth);
        assert!(c.toolkits["github"].base_tools().len() < 831);
    }

    #[test]
    fn synthetic_catalog_has_the_asked_size() {
        let c = Catalog::synthetic(&Catalog::sample(), 10, 25);
        assert_eq!(c.toolkits.len(), 10);
        assert_eq!(c.total_tools(), 250);
        let slugs: std::collections::HashSet<&str> = c.toolkits["synthetic_0003"]
            .tools
            .iter()
            .map(|t| t["slug"].as_str().unwrap())
            .collect();
        assert_eq!(slugs.len(), 25);
    }
}
