//! Per-tool compatibility report: which formats alter a tool, and how.

use super::names::{tool_name, KeyRule};
use super::schema::{rewrite_input, Dialect, Tally};
use super::ToolSource;
pub use crate::cache::{CompatReport, Rewrite};

/// The compatibility report of one tool: cheap enough for every tool at
/// every sync (no change lists are built).
pub fn compat_report(tool: &ToolSource<'_>) -> CompatReport {
    let name = tool_name(tool.slug);
    let tally = |dialect, rule| {
        let mut tally = Tally::default();
        rewrite_input(
            tool.input_schema,
            dialect,
            rule,
            tool.slug,
            None,
            &mut tally,
        );
        tally
    };
    let plain = tally(Dialect::Plain, KeyRule::Anthropic);
    let gemini = tally(Dialect::Gemini, KeyRule::Gemini);
    let mut strict = tally(Dialect::Strict, KeyRule::Anthropic);
    // Strict renames are those of every other format, reported once.
    strict.renamed_keys = 0;
    CompatReport {
        name: (name != tool.slug).then_some(name),
        renamed_keys: plain.renamed_keys,
        gemini: rewrite(gemini),
        strict: rewrite(strict),
        cut: plain.cut,
    }
}

fn rewrite(tally: Tally) -> Option<Rewrite> {
    let rewrite = Rewrite {
        renamed_keys: tally.renamed_keys,
        json_encoded: tally.json_encoded,
        made_required: tally.made_required,
        closed: tally.closed,
        dropped: tally.dropped.into_iter().collect(),
        no_arguments: tally.root_closed,
        cut: tally.cut,
    };
    (rewrite != Rewrite::default()).then_some(rewrite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testkit::{load, sources};
    use crate::agent::{bundle, Format};
    use serde_json::json;
    use std::time::Instant;

    fn report(slug: &str) -> CompatReport {
        let sources = sources();
        let tool = sources
            .iter()
            .find(|s| s.slug == slug)
            .expect("in the catalogue");
        compat_report(tool)
    }

    #[test]
    fn a_tool_every_format_takes_as_is_reports_nothing() {
        let report = report("BROWSER_TOOL_GET_CLIPBOARD");
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(serde_json::to_value(&report).expect("json"), json!({}));
    }

    #[test]
    fn reports_say_which_formats_alter_what() {
        let long = report("GITHUB_CHECK_IF_A_REPOSITORY_IS_STARRED_BY_THE_AUTHENTICATED_USER");
        assert!(long.name.as_deref().is_some_and(|n| n.len() <= 64));

        let github = report("GITHUB_UPDATE_BRANCH_PROTECTION");
        assert_eq!(github.renamed_keys, 4);
        assert_eq!(github.gemini.as_ref().map(|g| g.renamed_keys), Some(4));
        let strict = github.strict.as_ref().expect("strict rewrites");
        assert!(strict.made_required > 0 && strict.renamed_keys == 0);

        let elevenlabs = report("ELEVENLABS_OUTBOUND_CALL");
        assert_eq!(elevenlabs.renamed_keys, 0, "dots are fine but for Gemini");
        assert_eq!(elevenlabs.gemini.as_ref().map(|g| g.renamed_keys), Some(4));

        let browseai = report("BROWSEAI_RUN_ROBOT");
        let value = serde_json::to_value(&browseai).expect("json");
        assert_eq!(value["gemini"]["jsonEncoded"], 1);
        assert_eq!(value["strict"]["jsonEncoded"], 1);
        assert_eq!(value["strict"]["madeRequired"], 1);
        assert!(value.get("name").is_none() && value.get("renamedKeys").is_none());
        let back: CompatReport = serde_json::from_value(value).expect("reads back");
        assert_eq!(back, browseai);
    }

    /// The report counts what the bundles do, tool by tool.
    #[test]
    fn reports_agree_with_the_bundles_over_the_whole_catalogue() {
        let sources = sources();
        let anthropic = bundle(&sources, Format::Anthropic, false).expect("a bundle");
        let gemini = bundle(&sources, Format::Gemini, false).expect("a bundle");
        let strict = bundle(&sources, Format::OpenAi, true).expect("a bundle");
        let count = |changes: &[crate::agent::Change], slug: &str, what: &str| {
            changes
                .iter()
                .filter(|c| c.tool == slug)
                .map(|c| c.reason.matches(what).count() as u32)
                .sum::<u32>()
        };
        let mut clean = 0;
        for tool in &sources {
            let report = compat_report(tool);
            clean += usize::from(report.is_clean());
            let cut = [&report.gemini, &report.strict]
                .iter()
                .filter_map(|r| r.as_ref()?.cut.as_ref())
                .chain(report.cut.as_ref())
                .next();
            assert_eq!(cut, None, "no real tool is over budget: {}", tool.slug);
            assert_eq!(
                report.name.is_some(),
                count(&anthropic.changes, tool.slug, "tool names must match") == 1
            );
            assert_eq!(
                report.renamed_keys,
                count(&anthropic.changes, tool.slug, "key sent as")
            );
            let g = report.gemini.clone().unwrap_or_default();
            assert_eq!(
                g.renamed_keys,
                count(&gemini.changes, tool.slug, "key sent as"),
                "{}",
                tool.slug
            );
            assert_eq!(
                g.json_encoded,
                count(&gemini.changes, tool.slug, "JSON-encoded"),
                "{}",
                tool.slug
            );
            let s = report.strict.clone().unwrap_or_default();
            assert_eq!(
                s.json_encoded,
                count(&strict.changes, tool.slug, "JSON-encoded"),
                "{}",
                tool.slug
            );
            assert_eq!(
                s.made_required,
                count(&strict.changes, tool.slug, "made required"),
                "{}",
                tool.slug
            );
        }
        assert!(clean > 0 && clean < sources.len());
    }

    /// `cargo test --release --lib agent::compat -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark: prints the cost of parsing the catalogue and reporting every tool"]
    fn benchmark_reports_over_the_catalogue() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
        let files: Vec<Vec<u8>> = load()
            .iter()
            .map(|t| std::fs::read(dir.join(format!("{}.json", t.slug))).expect("a file"))
            .collect();
        let mut runs = Vec::new();
        let mut reports = Vec::new();
        for _ in 0..7 {
            let start = Instant::now();
            let toolkits: Vec<crate::cache::CachedToolkit> = files
                .iter()
                .map(|f| serde_json::from_slice(f).expect("a toolkit"))
                .collect();
            let parsed = start.elapsed();
            reports = toolkits
                .iter()
                .flat_map(|t| t.tools.iter().map(|tool| compat_report(&tool.into())))
                .collect::<Vec<_>>();
            runs.push((start.elapsed(), parsed));
        }
        runs.sort();
        let (total, parse) = runs[3];
        let bytes = serde_json::to_vec(&reports).expect("json").len();
        let clean = reports.iter().filter(|r| r.is_clean()).count();
        println!(
            "compat: {} tools, parse + report median {:.1} ms (parse {:.1} ms, reports {:.1} ms, {:.1} µs a tool); {} clean; all reports {} KB as JSON",
            reports.len(),
            total.as_secs_f64() * 1e3,
            parse.as_secs_f64() * 1e3,
            (total - parse).as_secs_f64() * 1e3,
            (total - parse).as_secs_f64() * 1e6 / reports.len() as f64,
            clean,
            bytes / 1024
        );
    }
}
