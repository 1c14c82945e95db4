//! Search: from a request as a person or an agent phrases it ("add a task to
//! my todo list", "cancel my dentist appointment") to the tools that fulfil
//! it, best first. Pure: no I/O, no clock; built once per published meta.
//!
//! # Signals and their fusion
//!
//! - **Query understanding** ([`query`]): filler dropped ("my", "please",
//!   "what's"), phrases rewritten ("to-do list" → todo), words stemmed and
//!   expanded with what tool text calls them ("meeting" → event,
//!   "inbox" → email), the action the request's verb asks for (create, read,
//!   update, delete, send), and the toolkits it names ("on linkedin",
//!   "google calendar", "insta").
//! - **Lexical**: BM25F over each document's slug words, name, the
//!   description's first sentence, the whole description, its toolkit and
//!   its arguments' names (words the rest often leaves out: "attendees",
//!   "hireable"), weighted in that order.
//! - **Fusion**: the lexical score (normalised to the best match), scaled by
//!   the share of the request's words a document covers, plus a bonus when
//!   the document is in a toolkit the request names or performs the action it
//!   asks for, minus a penalty for a destructive tool (delete, cancel, clear)
//!   the request did not ask to destroy with. A request that names no
//!   toolkit gets a smaller bonus for the toolkits its words are most about:
//!   per word, the share of a toolkit's documents that say it, weighted by
//!   how few toolkits do (an IDF over toolkits), so "my todo list" leans to
//!   the toolkit whose tools all say task, with no lexicon saying so.
//!
//! The labelled set that measures all this ([`eval`]) lives here too.
//!
//! # Kinds
//!
//! Documents have a [`Kind`] (tools today); a query can keep to one kind, so a
//! second kind of item joins the same index without a second search.
//!
//! ```
//! use composio_schema_cache::search::{Document, Kind, Query, SearchIndex};
//!
//! let index = SearchIndex::build([Document {
//!     kind: Kind::Tool, slug: "GOOGLETASKS_INSERT_TASK", name: "Insert task",
//!     description: "Creates a new task in a Google Tasks list.",
//!     toolkit_slug: "googletasks", toolkit_name: "Google Tasks", parameters: "tasklist title due",
//! }]);
//! let (hits, total) = index.search(&Query::new("add a todo").limit(5));
//! assert_eq!((hits[0].slug.as_str(), total), ("GOOGLETASKS_INSERT_TASK", 1));
//! ```

pub mod eval;
mod lexical;
mod lexicon;
pub mod query;
mod text;

use lexical::{LexicalIndex, DESCRIPTION, FIELD_COUNT, NAME, PARAMETERS, SLUG, SUMMARY, TOOLKIT};
use lexicon::Action;
use query::{understand, ToolkitNames};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a document is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A Composio tool (an action an agent can call).
    #[default]
    Tool,
    /// A trigger type (an event a connected app can push).
    Trigger,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Trigger => "trigger",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tool" => Ok(Kind::Tool),
            "trigger" => Ok(Kind::Trigger),
            other => Err(format!(
                "unknown kind {other:?}: the index holds tool and trigger"
            )),
        }
    }
}

/// One item to index, borrowed: the index keeps its own copies of what a hit
/// returns.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub kind: Kind,
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub toolkit_slug: &'a str,
    pub toolkit_name: &'a str,
    /// The words of its arguments' names ("calendar id start datetime").
    pub parameters: &'a str,
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub toolkit_slug: String,
    /// What the result is (`tool` or `trigger`).
    pub kind: Kind,
    /// Higher is better; comparable within one answer only.
    pub score: f32,
}

/// A search: the request's text, optional filters and the page wanted.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub text: &'a str,
    /// Only this toolkit's documents.
    pub toolkit: Option<&'a str>,
    /// Only documents of this kind.
    pub kind: Option<Kind>,
    pub offset: usize,
    pub limit: usize,
}

impl<'a> Query<'a> {
    /// The first 20 results of every kind, in every toolkit.
    pub fn new(text: &'a str) -> Self {
        Query {
            text,
            toolkit: None,
            kind: None,
            offset: 0,
            limit: 20,
        }
    }
    pub fn toolkit(mut self, toolkit: Option<&'a str>) -> Self {
        self.toolkit = toolkit;
        self
    }
    pub fn kind(mut self, kind: Option<Kind>) -> Self {
        self.kind = kind;
        self
    }
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// How much each signal weighs in the fusion (see the module's doc); chosen
/// on the labelled set's tuning part only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// The share of the lexical score a document keeps covering none of the
    /// request's words (it keeps all of it covering every word).
    pub coverage_floor: f32,
    pub toolkit_bonus: f32,
    pub action_bonus: f32,
    pub destructive_penalty: f32,
    /// A synonym's weight against the request's own word's 1.
    pub synonym: f32,
    /// The share of the lexical score a document keeps when the request
    /// covers none of its slug's words (it keeps all of it covering every
    /// one): of two tools that both match, the one whose name is all about
    /// the request ("delete event") goes before the one that only touches
    /// it ("remove attendee" of an event).
    pub name_floor: f32,
    /// A request about many things ("my repositories") and a tool that
    /// gives many (a list, a search, a plural).
    pub many_bonus: f32,
    /// A request about the one asking ("my profile") and a tool for the
    /// signed-in user.
    pub self_bonus: f32,
    /// A request that names no toolkit and the toolkit its words are most
    /// about ("my todo list": the one whose tools all say task).
    pub implied_toolkit_bonus: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            coverage_floor: 0.35,
            toolkit_bonus: 0.6,
            action_bonus: 0.1,
            destructive_penalty: 0.15,
            synonym: query::SYNONYM_WEIGHT,
            name_floor: 0.5,
            many_bonus: 0.1,
            self_bonus: 0.2,
            implied_toolkit_bonus: 0.1,
        }
    }
}

#[derive(Debug, Clone)]
struct StoredDoc {
    kind: Kind,
    slug: String,
    name: String,
    description: String,
    toolkit: u32,
    action: Option<Action>,
    /// The lexical terms of its slug's words (the toolkit's prefix and stop
    /// words left out), its verb's first if it has one.
    name_terms: Box<[u32]>,
    name_has_verb: bool,
    /// It gives many things (a list, a search, a plural in its name).
    gives_many: bool,
    /// It is about the signed-in user.
    about_self: bool,
}

/// The search index over every document of a published meta; immutable once
/// built, cheap to share.
pub struct SearchIndex {
    /// Sorted by slug, then toolkit: a document's id breaks score ties.
    docs: Vec<StoredDoc>,
    toolkits: Vec<String>,
    toolkit_names: ToolkitNames,
    /// Documents per toolkit.
    toolkit_sizes: Vec<u32>,
    lexical: LexicalIndex,
    weights: Weights,
}

impl Default for SearchIndex {
    fn default() -> Self {
        SearchIndex::build([])
    }
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("docs", &self.docs.len())
            .field("toolkits", &self.toolkits.len())
            .field("terms", &self.lexical.term_count())
            .finish()
    }
}

impl SearchIndex {
    pub fn build<'a>(docs: impl IntoIterator<Item = Document<'a>>) -> SearchIndex {
        let mut docs: Vec<Document<'a>> = docs.into_iter().collect();
        docs.sort_by(|a, b| (a.slug, a.toolkit_slug).cmp(&(b.slug, b.toolkit_slug)));

        let mut toolkit_ids: HashMap<&str, u32> = HashMap::new();
        let mut toolkits: Vec<(&str, &str)> = Vec::new();
        let mut stored = Vec::with_capacity(docs.len());
        let mut fields: Vec<[&str; FIELD_COUNT]> = Vec::with_capacity(docs.len());
        let mut toolkit_text: Vec<String> = Vec::new();
        for doc in &docs {
            let toolkit = *toolkit_ids.entry(doc.toolkit_slug).or_insert_with(|| {
                toolkits.push((doc.toolkit_slug, doc.toolkit_name));
                toolkit_text.push(format!("{} {}", doc.toolkit_slug, doc.toolkit_name));
                toolkits.len() as u32 - 1
            });
            let slug_words = without_toolkit_prefix(doc.slug, doc.toolkit_slug);
            stored.push(StoredDoc {
                kind: doc.kind,
                slug: doc.slug.to_owned(),
                name: doc.name.to_owned(),
                description: doc.description.to_owned(),
                toolkit,
                action: action_of(slug_words),
                name_terms: Box::default(),
                name_has_verb: false,
                gives_many: gives_many(slug_words),
                about_self: about_self(slug_words),
            });
            let mut row = [""; FIELD_COUNT];
            row[SLUG] = slug_words;
            row[NAME] = doc.name;
            row[SUMMARY] = first_sentence(doc.description);
            row[DESCRIPTION] = doc.description;
            row[PARAMETERS] = doc.parameters;
            fields.push(row);
        }
        let lexical = LexicalIndex::build(fields.iter().zip(&stored).map(|(row, doc)| {
            let mut row = *row;
            row[TOOLKIT] = &toolkit_text[doc.toolkit as usize];
            row
        }));
        for (doc, row) in stored.iter_mut().zip(&fields) {
            (doc.name_terms, doc.name_has_verb) =
                name_terms(row[SLUG], doc.action.is_some(), &lexical);
        }
        let mut toolkit_sizes = vec![0u32; toolkits.len()];
        for doc in &stored {
            toolkit_sizes[doc.toolkit as usize] += 1;
        }
        SearchIndex {
            toolkit_sizes,
            toolkit_names: ToolkitNames::new(toolkits.iter().copied()),
            toolkits: toolkits.iter().map(|(s, _)| (*s).to_owned()).collect(),
            docs: stored,
            lexical,
            weights: Weights::default(),
        }
    }

    /// Fuses with other weights from now on (for tuning).
    pub fn set_weights(&mut self, weights: Weights) {
        self.weights = weights;
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The documents matching `query`, best first, and how many match in
    /// all. Pages (`offset`, `limit`) follow one stable order: score, then
    /// slug. A request without a meaningful word matches nothing.
    pub fn search(&self, query: &Query<'_>) -> (Vec<Hit>, usize) {
        let toolkit = match query.toolkit {
            Some(slug) => match self.toolkits.iter().position(|t| t == slug) {
                Some(id) => Some(id as u32),
                None => return (Vec::new(), 0),
            },
            None => None,
        };
        let (scores, mut matched) = self.score(query.text);
        matched.retain(|&d| {
            let doc = &self.docs[d as usize];
            toolkit.is_none_or(|t| doc.toolkit == t) && query.kind.is_none_or(|k| doc.kind == k)
        });
        let total = matched.len();
        let order = |a: &u32, b: &u32| {
            scores[*b as usize]
                .total_cmp(&scores[*a as usize])
                .then(a.cmp(b))
        };
        let end = query.offset.saturating_add(query.limit).min(total);
        if query.offset >= end {
            return (Vec::new(), total);
        }
        if end < total {
            matched.select_nth_unstable_by(end - 1, order);
            matched.truncate(end);
        }
        matched.sort_unstable_by(order);
        let hits = matched[query.offset..]
            .iter()
            .map(|&d| {
                let doc = &self.docs[d as usize];
                Hit {
                    slug: doc.slug.clone(),
                    name: doc.name.clone(),
                    description: doc.description.clone(),
                    toolkit_slug: self.toolkits[doc.toolkit as usize].clone(),
                    kind: doc.kind,
                    score: scores[d as usize],
                }
            })
            .collect();
        (hits, total)
    }

    /// How much each toolkit is about a request that names none, from 0 to
    /// 1 (the most): per request word, its best term's share of the
    /// toolkit's documents times an IDF over toolkits, summed over words.
    /// Empty when the request names a toolkit or no toolkit says its words.
    fn implied_toolkits(&self, understood: &query::Understood) -> Vec<f32> {
        let count = self.toolkit_sizes.len();
        if self.weights.implied_toolkit_bonus <= 0.0 || !understood.toolkits.is_empty() {
            return Vec::new();
        }
        let mut per_concept: Vec<(u8, Vec<f32>)> = Vec::new();
        let mut holding = vec![0u32; count];
        for term in understood.terms.iter().filter(|t| t.concept != u8::MAX) {
            let postings = self.lexical.postings(&term.text);
            if postings.is_empty() {
                continue;
            }
            holding.fill(0);
            for posting in postings {
                holding[self.docs[posting.doc as usize].toolkit as usize] += 1;
            }
            let with = holding.iter().filter(|&&h| h > 0).count() as f32;
            let idf = (1.0 + count as f32 / with).ln();
            let slot = match per_concept.iter().position(|(c, _)| *c == term.concept) {
                Some(slot) => slot,
                None => {
                    per_concept.push((term.concept, vec![0f32; count]));
                    per_concept.len() - 1
                }
            };
            let sizes = self.toolkit_sizes.iter();
            for ((best, &held), &size) in per_concept[slot].1.iter_mut().zip(&holding).zip(sizes) {
                let share = held as f32 / size.max(1) as f32;
                *best = best.max(term.weight.min(1.0) * idf * share);
            }
        }
        let mut about = vec![0f32; count];
        for (_, per) in &per_concept {
            for (total, v) in about.iter_mut().zip(per) {
                *total += v;
            }
        }
        let most = about.iter().copied().fold(0f32, f32::max);
        if most <= 0.0 {
            return Vec::new();
        }
        about.iter_mut().for_each(|a| *a /= most);
        about
    }

    /// Every document's fused score for `text` (0 where it does not match),
    /// and the documents that match.
    fn score(&self, text: &str) -> (Vec<f32>, Vec<u32>) {
        let w = self.weights;
        let understood = understand(text, &self.toolkit_names);
        let mut scores = vec![0f32; self.docs.len()];
        let mut covered = vec![0u32; self.docs.len()];
        let mut matched: Vec<u32> = Vec::new();
        let implied = self.implied_toolkits(&understood);
        for term in &understood.terms {
            for posting in self.lexical.postings(&term.text) {
                let doc = posting.doc as usize;
                if scores[doc] == 0.0 {
                    matched.push(posting.doc);
                }
                // A synonym's weight, scaled to the fusion's.
                let weight = if term.weight < 1.0 {
                    term.weight * w.synonym / query::SYNONYM_WEIGHT
                } else {
                    1.0
                };
                scores[doc] += weight * posting.weight;
                if term.concept != u8::MAX {
                    covered[doc] |= 1 << term.concept;
                }
            }
        }
        // Only words some document has can be covered.
        let concepts = understood
            .terms
            .iter()
            .filter(|t| t.concept != u8::MAX && !self.lexical.postings(&t.text).is_empty())
            .map(|t| t.concept)
            .collect::<std::collections::BTreeSet<u8>>()
            .len();
        let mut asked: Vec<u32> = understood
            .terms
            .iter()
            .filter_map(|t| self.lexical.term_id(&t.text))
            .collect();
        asked.sort_unstable();
        let best = matched
            .iter()
            .map(|&d| scores[d as usize])
            .fold(0f32, f32::max);
        if best <= 0.0 {
            return (scores, Vec::new());
        }
        for &d in &matched {
            let doc = &self.docs[d as usize];
            let d = d as usize;
            let coverage = if concepts == 0 {
                1.0
            } else {
                covered[d].count_ones() as f32 / concepts as f32
            };
            let mut score =
                scores[d] / best * (w.coverage_floor + (1.0 - w.coverage_floor) * coverage);
            let verb_asked =
                doc.name_has_verb && understood.intent.is_some() && understood.intent == doc.action;
            let precision = name_precision(&doc.name_terms, verb_asked, &asked);
            score *= w.name_floor + (1.0 - w.name_floor) * precision;
            let reads = understood.intent.is_none_or(|a| a == Action::Read);
            if understood.many && reads && doc.gives_many {
                score += w.many_bonus;
            }
            if understood.about_self && doc.about_self {
                score += w.self_bonus;
            }
            if understood.toolkits.contains(&doc.toolkit) {
                score += w.toolkit_bonus;
            } else if let Some(about) = implied.get(doc.toolkit as usize) {
                score += w.implied_toolkit_bonus * about;
            }
            if let (Some(asked), Some(done)) = (understood.intent, doc.action) {
                if asked == done {
                    score += w.action_bonus;
                }
            }
            if doc.action.is_some_and(Action::is_destructive)
                && understood.intent != Some(Action::Delete)
            {
                score -= w.destructive_penalty;
            }
            // Keep every match above zero, in order: a match is a match.
            scores[d] = score.max(f32::MIN_POSITIVE);
        }
        (scores, matched)
    }
}

/// Whether a slug's words give many things.
fn gives_many(slug_words: &str) -> bool {
    let mut many = false;
    let mut first = true;
    text::for_each_word(slug_words, &mut String::new(), |w| {
        // "PULLS_GET" gets one pull: the plural of a word before the verb is not a list.
        many |= lexicon::MANY_TOOL_WORDS.contains(&w) || (!first && text::is_plural(w));
        first = false;
    });
    many
}

fn about_self(slug_words: &str) -> bool {
    let mut found = false;
    text::for_each_word(slug_words, &mut String::new(), |w| {
        found |= lexicon::SELF_TOOL_WORDS.contains(&w);
    });
    found
}

/// The lexical terms of a slug's words, once each; with `has_verb`, the
/// verb (the first word that is one) first, and whether it is there.
fn name_terms(slug_words: &str, has_verb: bool, lexical: &LexicalIndex) -> (Box<[u32]>, bool) {
    let mut terms = Vec::new();
    let mut verb = None;
    text::for_each_word(slug_words, &mut String::new(), |w| {
        if lexicon::STOP_WORDS.contains(&w) || w.len() < 2 || w.bytes().all(|b| b.is_ascii_digit())
        {
            return;
        }
        let is_verb = has_verb && verb.is_none() && lexicon::tool_verb(w).is_some();
        let mut w = w.to_owned();
        text::stem(&mut w);
        if let Some(id) = lexical.term_id(&w) {
            if is_verb {
                verb = Some(id);
            } else if !terms.contains(&id) {
                terms.push(id);
            }
        }
    });
    if let Some(verb) = verb {
        terms.retain(|&t| t != verb);
        terms.insert(0, verb);
    }
    (terms.into_boxed_slice(), verb.is_some())
}

/// The share of a tool's name the request asks for: its words among the
/// request's terms (`asked`, sorted), its verb (first) also when the request
/// asks for the same action in other words (`verb_asked`).
fn name_precision(terms: &[u32], verb_asked: bool, asked: &[u32]) -> f32 {
    if terms.is_empty() {
        return 1.0;
    }
    let hit = terms
        .iter()
        .enumerate()
        .filter(|&(i, t)| (i == 0 && verb_asked) || asked.binary_search(t).is_ok())
        .count();
    hit as f32 / terms.len() as f32
}

/// "GOOGLECALENDAR_EVENTS_LIST" → "EVENTS_LIST" for toolkit "googlecalendar".
fn without_toolkit_prefix<'a>(slug: &'a str, toolkit: &str) -> &'a str {
    let n = toolkit.len();
    if slug.len() > n + 1 && slug.as_bytes()[n] == b'_' && slug[..n].eq_ignore_ascii_case(toolkit) {
        &slug[n + 1..]
    } else {
        slug
    }
}

/// The action the first verb among a slug's words names.
fn action_of(slug_words: &str) -> Option<Action> {
    let mut action = None;
    text::for_each_word(slug_words, &mut String::new(), |w| {
        if action.is_none() {
            action = lexicon::tool_verb(w);
        }
    });
    action
}

/// A description's first sentence (at most 300 bytes).
fn first_sentence(description: &str) -> &str {
    let end = description
        .find(". ")
        .map(|i| i + 1)
        .unwrap_or(description.len())
        .min(300);
    let mut end = end.min(description.len());
    while !description.is_char_boundary(end) {
        end -= 1;
    }
    &description[..end]
}

#[cfg(test)]
mod tests;
