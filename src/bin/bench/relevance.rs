//! Search relevance on the labelled set (`src/search/eval/queries.json`):
//! ours, plain BM25 and a sentence-embedding model, side by side, each on the
//! tuning, validation and held-out parts. The baselines run in Python
//! (`scripts/search_baselines`); if they cannot, the table says so.

use crate::stats::Table;
use composio_schema_cache::cache::parameter_words;
use composio_schema_cache::emulator::{bundled_catalog_dir, Catalog};
use composio_schema_cache::search::eval::{evaluate, Figures, LabelledSet, Part};
use composio_schema_cache::search::{Document, Kind, SearchIndex};
use std::path::Path;
use std::process::Command;

fn cell(f: &Figures) -> String {
    format!(
        "R@1 {:.2} / R@5 {:.2} / MRR {:.2}",
        f.recall_at1, f.recall_at5, f.mrr
    )
}

pub fn relevance(run_baselines: bool, table: &mut Table) -> Result<(), String> {
    let catalog = Catalog::from_dir(&bundled_catalog_dir())?;
    // As the sync stores them: each tool's argument names from its schema.
    let parameters: Vec<Vec<String>> = catalog
        .toolkits
        .values()
        .map(|t| {
            t.tools
                .iter()
                .map(|tool| {
                    parameter_words(tool.input_parameters.as_ref().map_or("{}", |s| s.get()))
                })
                .collect()
        })
        .collect();
    let docs: Vec<Document<'_>> = catalog
        .toolkits
        .values()
        .zip(&parameters)
        .flat_map(|(t, parameters)| {
            t.tools
                .iter()
                .zip(parameters)
                .map(move |(tool, parameters)| Document {
                    kind: Kind::Tool,
                    slug: &tool.slug,
                    name: &tool.name,
                    description: tool.description.as_deref().unwrap_or(""),
                    toolkit_slug: &t.slug,
                    toolkit_name: &t.name,
                    parameters,
                })
        })
        .collect();
    let index = SearchIndex::build(docs);
    let set = LabelledSet::bundled();
    let parts = [
        (Part::Tuning, "tuning"),
        (Part::Validation, "validation"),
        (Part::Heldout, "held-out"),
    ];
    let counts = |p: Part| set.part(p).count();
    let about = format!(
        "{} requests ({} tuning, {} validation and {} held out, both written blind) over {} tools",
        set.queries.len(),
        counts(Part::Tuning),
        counts(Part::Validation),
        counts(Part::Heldout),
        index.len()
    );
    for (part, label) in parts {
        let ours = evaluate(&index, &set, part);
        table.row(
            format!("search relevance, ours ({label})"),
            cell(&ours),
            about.clone(),
        );
    }
    if !run_baselines {
        table.row(
            "search relevance, baselines",
            "not run",
            "--quick skips the Python baselines (BM25, all-MiniLM-L6-v2)",
        );
        return Ok(());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(root.join("scripts/search_baselines"))
        .arg(bundled_catalog_dir())
        .arg(root.join("src/search/eval/queries.json"))
        .output();
    let answer: serde_json::Value = match output {
        Ok(o) if o.status.success() => {
            serde_json::from_slice(&o.stdout).map_err(|e| format!("the baselines' answer: {e}"))?
        }
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why: String = why.lines().last().unwrap_or("").chars().take(200).collect();
            table.row("search relevance, baselines", "could not run", why);
            return Ok(());
        }
        Err(e) => {
            table.row(
                "search relevance, baselines",
                "could not run",
                e.to_string(),
            );
            return Ok(());
        }
    };
    let baselines = [
        (
            "bm25",
            "plain BM25 (rank_bm25 0.2.2, BM25Okapi over slug words, name, description)",
        ),
        (
            "minilm",
            "all-MiniLM-L6-v2 (sentence-transformers, name: description, cosine, no tuning)",
        ),
    ];
    for (key, what) in baselines {
        for (part, label) in parts {
            let value = match serde_json::from_value::<Figures>(answer[key][part.key()].clone()) {
                Ok(f) => cell(&f),
                Err(_) => format!("could not run: {}", answer[key]["error"]),
            };
            table.row(format!("search relevance, {key} ({label})"), value, what);
        }
    }
    Ok(())
}
