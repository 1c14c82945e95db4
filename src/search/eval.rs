//! The labelled set (`eval/queries.json`) and its figures: requests phrased
//! as people and agents phrase them, each with every tool of the bundled
//! catalogue that fulfils it. The held-out and validation parts were each
//! written by a separate session that saw the catalogue only (never this
//! code, its lexicon or its rankings), and nothing in the ranking is tuned
//! on them: their figures are reported apart, so a lexicon that only fits
//! the tuning part shows. Only the validation part's figures (never its
//! requests) may choose between two levers; the held-out part's count.
//!
//! A request's rank is the position of its best-ranked relevant tool;
//! recall@k is the share of requests ranked k or better; MRR the mean of
//! 1/rank (0 when no relevant tool is found). `scripts/search_baselines.py`
//! computes the same for the baselines.

use super::{Query, SearchIndex};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Looked at, request by request, while the ranking was tuned.
    Tuning,
    /// Written blind to the engine, like the held-out part; its figures (never
    /// its requests) may guide a choice between levers.
    Validation,
    /// Written blind to the engine and never tuned on: the figures that count.
    Heldout,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Tuning, Part::Validation, Part::Heldout];

    /// As `queries.json` and the baselines' answer spell it.
    pub fn key(self) -> &'static str {
        match self {
            Part::Tuning => "tuning",
            Part::Validation => "validation",
            Part::Heldout => "heldout",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    pub query: String,
    /// Every tool that fulfils the request.
    pub relevant: Vec<String>,
    pub part: Part,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LabelledSet {
    pub queries: Vec<Labelled>,
}

impl LabelledSet {
    /// The set kept in the repository, for the bundled catalogue.
    pub fn bundled() -> LabelledSet {
        serde_json::from_str(include_str!("eval/queries.json")).expect("queries.json parses")
    }

    pub fn part(&self, part: Part) -> impl Iterator<Item = &Labelled> {
        self.queries.iter().filter(move |q| q.part == part)
    }
}

/// recall@1, recall@5 and MRR over some requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub requests: usize,
    pub recall_at1: f64,
    pub recall_at5: f64,
    pub mrr: f64,
}

impl Figures {
    pub fn of_ranks(ranks: &[Option<usize>]) -> Figures {
        let n = ranks.len().max(1) as f64;
        let within = |k: usize| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64;
        Figures {
            requests: ranks.len(),
            recall_at1: within(1) / n,
            recall_at5: within(5) / n,
            mrr: ranks.iter().flatten().map(|&r| 1.0 / r as f64).sum::<f64>() / n,
        }
    }
}

/// How deep a ranking is read for MRR.
pub const DEPTH: usize = 50;

/// The rank (from 1) of the best-ranked relevant tool, if within [`DEPTH`].
pub fn rank_of(index: &SearchIndex, labelled: &Labelled) -> Option<usize> {
    let (hits, _) = index.search(&Query::new(&labelled.query).limit(DEPTH));
    hits.iter()
        .position(|h| labelled.relevant.contains(&h.slug))
        .map(|i| i + 1)
}

/// The figures of `index` on one part of `set`.
pub fn evaluate(index: &SearchIndex, set: &LabelledSet, part: Part) -> Figures {
    let ranks: Vec<Option<usize>> = set.part(part).map(|q| rank_of(index, q)).collect();
    Figures::of_ranks(&ranks)
}
