//! The emulator's data: toolkits in the cached format (as the replaced system
//! wrote them), held as the v3 API's own `wire` types, which the emulator
//! serialises: the client and its stand-in cannot drift apart.

use crate::cache::CachedToolkit;
use crate::wire::{
    AuthConfigDetail, CategoryWire, Tool, ToolToolkit, ToolkitDetail, ToolkitMeta, ToolkitSummary,
    TriggerType,
};
use serde_json::value::{to_raw_value, RawValue};
use serde_json::Number;
use std::collections::BTreeMap;
use std::path::Path;

/// The base version v3 serves when `toolkit_versions=latest` is missing.
pub const BASE_VERSION: &str = "00000000_00";
const LATEST: &str = "20251201_00";

#[derive(Debug, Clone)]
pub struct CatalogToolkit {
    pub slug: String,
    pub name: String,
    pub logo: String,
    pub description: String,
    pub no_auth: bool,
    pub version: String,
    pub updated_at: String,
    /// Tools at the latest version, as `GET /api/v3/tools` sends them.
    pub tools: Vec<Tool>,
    /// Trigger types, as `GET /api/v3.1/triggers_types` sends them.
    pub triggers: Vec<TriggerType>,
    /// Left out of the toolkit listing unless `include_deprecated=true`.
    pub deprecated: bool,
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

/// 94 real trigger types of 26 toolkits, as Composio's CLI caches them
/// (`slug, name, description, instructions, type, config, payload`).
const TRIGGER_TYPES: &str = include_str!("../../catalog/triggers/trigger_types.json");

/// The whole real catalogue bundled in the repository (21 toolkits).
pub fn bundled_catalog_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")
}

fn raw(value: &serde_json::Value) -> Box<RawValue> {
    to_raw_value(value).expect("a JSON value serializes")
}

impl Catalog {
    pub fn sample() -> Self {
        let mut catalog = Self::default();
        for (name, text) in SAMPLE {
            let toolkit: CachedToolkit = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("bundled catalog {name}.json: {e}"));
            catalog.insert(toolkit);
        }
        catalog.attach_bundled_triggers();
        catalog
    }

    /// Gives each toolkit the bundled trigger types whose slug it prefixes
    /// (the longest prefix wins: `GOOGLEDRIVE_` is googledrive's, not google's).
    pub fn attach_bundled_triggers(&mut self) {
        let all: Vec<TriggerType> =
            serde_json::from_str(TRIGGER_TYPES).expect("the bundled trigger types parse");
        for mut trigger in all {
            let owner = self
                .toolkits
                .keys()
                .filter(|slug| {
                    let prefix = format!("{}_", slug.to_ascii_uppercase());
                    trigger.slug.starts_with(&prefix)
                })
                .max_by_key(|slug| slug.len())
                .cloned();
            let Some(owner) = owner else { continue };
            let toolkit = self.toolkits.get_mut(&owner).expect("found above");
            trigger.toolkit = Some(ToolToolkit {
                slug: owner.clone(),
                name: Some(toolkit.name.clone()),
                logo: Some(toolkit.logo.clone()),
            });
            trigger
                .version
                .get_or_insert_with(|| toolkit.version.clone());
            toolkit.triggers.push(trigger);
        }
    }

    pub fn total_triggers(&self) -> usize {
        self.toolkits.values().map(|t| t.triggers.len()).sum()
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
        catalog.attach_bundled_triggers();
        Ok(catalog)
    }

    /// `toolkits` toolkits with `tools_per_toolkit` tools each, shaped like the
    /// real schemas of `template` (cycled), for scale runs.
    pub fn synthetic(template: &Catalog, toolkits: usize, tools_per_toolkit: usize) -> Self {
        let shapes: Vec<&Tool> = template
            .toolkits
            .values()
            .flat_map(|t| t.tools.iter())
            .collect();
        let triggers: Vec<&TriggerType> = template
            .toolkits
            .values()
            .flat_map(|t| t.triggers.iter())
            .collect();
        let mut catalog = Self::default();
        for i in 0..toolkits {
            let slug = format!("synthetic_{i:04}");
            let upper = slug.to_uppercase();
            let tools = (0..tools_per_toolkit)
                .filter_map(|j| {
                    let shape = shapes.get((i * tools_per_toolkit + j) % shapes.len().max(1))?;
                    let mut tool = (*shape).clone();
                    tool.slug = format!("{upper}_TOOL_{j:03}");
                    tool.toolkit = Some(ToolToolkit {
                        slug: slug.clone(),
                        name: Some(slug.clone()),
                        logo: Some(String::new()),
                    });
                    Some(tool)
                })
                .collect();
            // Every third toolkit has three trigger types, as about a third
            // of the real catalogue has some.
            let triggers = (0..if i % 3 == 0 { 3 } else { 0 })
                .filter_map(|k| {
                    let shape = triggers.get((i + k) % triggers.len().max(1))?;
                    let mut trigger = (*shape).clone();
                    trigger.slug = format!("{upper}_TRIGGER_{k}");
                    trigger.toolkit = Some(ToolToolkit {
                        slug: slug.clone(),
                        name: Some(slug.clone()),
                        logo: Some(String::new()),
                    });
                    Some(trigger)
                })
                .collect();
            catalog.toolkits.insert(
                slug.clone(),
                CatalogToolkit {
                    name: format!("Synthetic {i}"),
                    logo: format!("https://logos.example/{slug}.svg"),
                    description: format!("Synthetic toolkit {i}"),
                    no_auth: false,
                    version: LATEST.into(),
                    updated_at: "2025-12-01T00:00:00.000Z".into(),
                    tools,
                    triggers,
                    deprecated: false,
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
            .map(|t| Tool {
                slug: t.slug,
                name: t.name,
                description: Some(t.description),
                toolkit: Some(ToolToolkit {
                    slug: slug.clone(),
                    name: Some(toolkit.name.clone()),
                    logo: Some(toolkit.logo.clone()),
                }),
                input_parameters: Some(raw(&t.input_parameters)),
                output_parameters: Some(raw(&t.output_parameters)),
                version: Some(t.version.unwrap_or_else(|| LATEST.into())),
                available_versions: vec![BASE_VERSION.into(), LATEST.into()],
                scopes: vec![],
                tags: t.tags,
                is_deprecated: t.is_deprecated,
                no_auth,
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
                version: toolkit.version.unwrap_or_else(|| LATEST.into()),
                updated_at: toolkit
                    .updated_at
                    .unwrap_or_else(|| "2025-12-01T00:00:00.000Z".into()),
                tools,
                triggers: Vec::new(),
                deprecated: false,
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
    pub fn base_tools(&self) -> &[Tool] {
        let n = self.tools.len();
        &self.tools[..if n > 1 { n * 3 / 4 } else { n }]
    }

    fn auth_schemes(&self) -> Vec<String> {
        if self.no_auth {
            vec![]
        } else {
            vec!["OAUTH2".into()]
        }
    }

    pub fn detail(&self) -> ToolkitDetail {
        ToolkitDetail {
            slug: self.slug.clone(),
            name: self.name.clone(),
            enabled: Some(true),
            meta: self.meta(true),
            auth_config_details: vec![AuthConfigDetail {
                mode: if self.no_auth { "NO_AUTH" } else { "OAUTH2" }.into(),
                name: Some(self.name.clone()),
            }],
        }
    }

    pub fn summary(&self) -> ToolkitSummary {
        ToolkitSummary {
            slug: self.slug.clone(),
            name: self.name.clone(),
            no_auth: Some(self.no_auth),
            auth_schemes: self.auth_schemes(),
            meta: self.meta(false),
        }
    }

    fn meta(&self, detail: bool) -> ToolkitMeta {
        ToolkitMeta {
            logo: Some(self.logo.clone()),
            description: Some(self.description.clone()),
            categories: vec![CategoryWire {
                id: "productivity".into(),
                name: "Productivity".into(),
            }],
            tools_count: Some(Number::from(self.tools.len())),
            triggers_count: Some(Number::from(self.triggers.len())),
            version: Some(self.version.clone()),
            updated_at: Some(self.updated_at.clone()),
            created_at: Some("2024-01-01T00:00:00.000Z".into()),
            available_versions: if detail {
                vec![BASE_VERSION.into(), self.version.clone()]
            } else {
                vec![]
            },
        }
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
        let triggers: Vec<(&str, usize)> = c
            .toolkits
            .values()
            .filter(|t| !t.triggers.is_empty())
            .map(|t| (t.slug.as_str(), t.triggers.len()))
            .collect();
        assert_eq!(triggers, [("github", 6)]);
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
            .map(|t| t.slug.as_str())
            .collect();
        assert_eq!(slugs.len(), 25);
    }
}
