//! Ranked tool search: BM25F over a tool's slug words, name, toolkit and
//! description, hand-written (about 150 lines) because the crates that do
//! this (tantivy and kin) are larger than the whole read bootstrap's budget
//! and bring an on-disk index we do not need.
//!
//! Built once per published meta; a query touches only the postings of its
//! terms. Every (term, tool) weight is computed at build time, so a query is a
//! sum over a few posting lists and a partial sort.

use serde::Serialize;
use std::collections::HashMap;

/// One tool to index. All fields borrowed: the index keeps its own copies of
/// what a hit returns.
#[derive(Debug, Clone, Copy)]
pub struct SearchDoc<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub toolkit_slug: &'a str,
    pub toolkit_name: &'a str,
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub toolkit_slug: String,
    pub score: f32,
}

/// Fields in the order of `FIELDS`.
#[derive(Clone, Copy)]
struct Field {
    weight: f32,
    /// BM25 length normalisation: short fields barely need it.
    b: f32,
}

const SLUG: usize = 0;
const NAME: usize = 1;
const TOOLKIT: usize = 2;
const DESCRIPTION: usize = 3;
/// A hit in the slug or the name weighs three times one in the description.
const FIELDS: [Field; 4] = [
    Field {
        weight: 3.0,
        b: 0.3,
    },
    Field {
        weight: 3.0,
        b: 0.3,
    },
    Field {
        weight: 1.5,
        b: 0.0,
    },
    Field {
        weight: 1.0,
        b: 0.75,
    },
];
const K1: f32 = 1.2;

/// Words too common in tool text to rank anything.
const STOP_WORD_MAX_LEN: usize = 4;
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "its", "of",
    "on", "or", "that", "the", "this", "to", "with", "your",
];

#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    /// idf × saturated field-weighted term frequency.
    weight: f32,
}

#[derive(Debug, Clone)]
struct StoredDoc {
    slug: String,
    name: String,
    description: String,
    toolkit: u32,
}

/// A search index over tools; immutable once built, cheap to share.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    /// Sorted by slug, then toolkit: a document's id breaks score ties.
    docs: Vec<StoredDoc>,
    toolkits: Vec<String>,
    terms: HashMap<String, u32>,
    postings: Vec<Vec<Posting>>,
}

impl SearchIndex {
    pub fn build<'a>(docs: impl IntoIterator<Item = SearchDoc<'a>>) -> SearchIndex {
        let mut docs: Vec<SearchDoc<'a>> = docs.into_iter().collect();
        docs.sort_by(|a, b| (a.slug, a.toolkit_slug).cmp(&(b.slug, b.toolkit_slug)));

        let mut index = SearchIndex::default();
        let mut toolkit_ids: HashMap<&str, u32> = HashMap::new();
        // Per document: (term, field, count), and field lengths.
        let mut counts: Vec<Vec<(u32, usize, u32)>> = Vec::with_capacity(docs.len());
        let mut lengths: Vec<[u32; 4]> = Vec::with_capacity(docs.len());
        let mut tokens: Vec<(u32, usize)> = Vec::new();
        let mut word = String::new();
        for doc in &docs {
            let next_id = toolkit_ids.len() as u32;
            let toolkit = *toolkit_ids.entry(doc.toolkit_slug).or_insert_with(|| {
                index.toolkits.push(doc.toolkit_slug.to_owned());
                next_id
            });
            tokens.clear();
            let mut length = [0u32; 4];
            let texts: [(usize, &str); 5] = [
                (SLUG, doc.slug),
                (NAME, doc.name),
                (TOOLKIT, doc.toolkit_slug),
                (TOOLKIT, doc.toolkit_name),
                (DESCRIPTION, doc.description),
            ];
            for (field, text) in texts {
                for_each_token(text, &mut word, |token| {
                    let term = match index.terms.get(token) {
                        Some(&term) => term,
                        None => {
                            let term = index.terms.len() as u32;
                            index.terms.insert(token.to_owned(), term);
                            term
                        }
                    };
                    tokens.push((term, field));
                    length[field] += 1;
                });
            }
            tokens.sort_unstable();
            let mut doc_counts: Vec<(u32, usize, u32)> = Vec::new();
            for &(term, field) in &tokens {
                match doc_counts.last_mut() {
                    Some((t, f, n)) if *t == term && *f == field => *n += 1,
                    _ => doc_counts.push((term, field, 1)),
                }
            }
            counts.push(doc_counts);
            lengths.push(length);
            index.docs.push(StoredDoc {
                slug: doc.slug.to_owned(),
                name: doc.name.to_owned(),
                description: doc.description.to_owned(),
                toolkit,
            });
        }

        let n = docs.len().max(1) as f32;
        let mut average = [0f32; 4];
        for length in &lengths {
            for (sum, l) in average.iter_mut().zip(length) {
                *sum += *l as f32;
            }
        }
        for sum in &mut average {
            *sum = (*sum / n).max(1.0);
        }

        index.postings = vec![Vec::new(); index.terms.len()];
        for (doc, (doc_counts, length)) in counts.iter().zip(&lengths).enumerate() {
            let mut i = 0;
            while i < doc_counts.len() {
                let term = doc_counts[i].0;
                let mut tf = 0.0;
                while i < doc_counts.len() && doc_counts[i].0 == term {
                    let (_, field, count) = doc_counts[i];
                    let Field { weight, b } = FIELDS[field];
                    let norm = 1.0 - b + b * length[field] as f32 / average[field];
                    tf += weight * count as f32 / norm;
                    i += 1;
                }
                index.postings[term as usize].push(Posting {
                    doc: doc as u32,
                    weight: tf * (K1 + 1.0) / (tf + K1),
                });
            }
        }
        for postings in &mut index.postings {
            let df = postings.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for posting in postings.iter_mut() {
                posting.weight *= idf;
            }
        }
        index
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The tools matching `query` (any of its words), best first, within
    /// `toolkit` if given; `offset`/`limit` page through a stable order
    /// (score, then slug). Returns the page and the number of matches. A query
    /// without words matches nothing.
    pub fn search(
        &self,
        query: &str,
        toolkit: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> (Vec<Hit>, usize) {
        let toolkit = match toolkit {
            Some(slug) => match self.toolkits.iter().position(|t| t == slug) {
                Some(id) => Some(id as u32),
                None => return (Vec::new(), 0),
            },
            None => None,
        };
        let mut terms: Vec<u32> = Vec::new();
        for_each_token(query, &mut String::new(), |t| {
            terms.extend(self.terms.get(t).copied());
        });
        terms.sort_unstable();
        terms.dedup();

        let mut scores = vec![0f32; self.docs.len()];
        let mut matched: Vec<u32> = Vec::new();
        for term in terms {
            for posting in &self.postings[term as usize] {
                let score = &mut scores[posting.doc as usize];
                if *score == 0.0 {
                    matched.push(posting.doc);
                }
                *score += posting.weight;
            }
        }
        if let Some(toolkit) = toolkit {
            matched.retain(|&d| self.docs[d as usize].toolkit == toolkit);
        }
        let total = matched.len();
        let order = |a: &u32, b: &u32| {
            scores[*b as usize]
                .total_cmp(&scores[*a as usize])
                .then(a.cmp(b))
        };
        let end = offset.saturating_add(limit).min(total);
        if offset >= end {
            return (Vec::new(), total);
        }
        if end < total {
            matched.select_nth_unstable_by(end - 1, order);
            matched.truncate(end);
        }
        matched.sort_unstable_by(order);
        let hits = matched[offset..]
            .iter()
            .map(|&d| {
                let doc = &self.docs[d as usize];
                Hit {
                    slug: doc.slug.clone(),
                    name: doc.name.clone(),
                    description: doc.description.clone(),
                    toolkit_slug: self.toolkits[doc.toolkit as usize].clone(),
                    score: scores[d as usize],
                }
            })
            .collect();
        (hits, total)
    }
}

/// Calls `f` with each word of `text`: lowercased, split on anything but
/// letters and digits (so `_` splits slugs), without stop words or one-letter
/// words, lightly stemmed. `word` is scratch space, reused to spare allocations.
fn for_each_token(text: &str, word: &mut String, mut f: impl FnMut(&str)) {
    let mut emit = |raw: &str| {
        if raw.len() < 2 {
            return;
        }
        word.clear();
        if raw.is_ascii() {
            word.push_str(raw);
            word.make_ascii_lowercase();
        } else {
            word.extend(raw.chars().flat_map(char::to_lowercase));
        }
        if word.len() <= STOP_WORD_MAX_LEN && STOP_WORDS.contains(&word.as_str()) {
            return;
        }
        stem(word);
        f(word);
    };
    // Tool text is nearly always ASCII: split bytes, not chars.
    if text.is_ascii() {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .for_each(&mut emit);
    } else {
        text.split(|c: char| !c.is_alphanumeric())
            .for_each(&mut emit);
    }
}

/// The "S" stemmer (Harman, 1991): plurals to singulars, nothing bolder, so
/// `issues` meets `issue` and `sends` meets `send` without false friends.
/// (Its `-es` rule drops the same `s` as the last one.)
fn stem(word: &mut String) {
    let n = word.len();
    if n > 4 && word.ends_with("ies") && !word.ends_with("eies") && !word.ends_with("aies") {
        word.truncate(n - 3);
        word.push('y');
    } else if n > 3 && word.ends_with('s') && !word.ends_with("us") && !word.ends_with("ss") {
        word.truncate(n - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testkit::toolkits;
    use std::time::{Duration, Instant};

    fn catalogue_docs() -> Vec<SearchDoc<'static>> {
        toolkits()
            .iter()
            .flat_map(|t| {
                t.tools.iter().map(move |tool| SearchDoc {
                    slug: &tool.slug,
                    name: &tool.name,
                    description: &tool.description,
                    toolkit_slug: t.slug.as_str(),
                    toolkit_name: &t.name,
                })
            })
            .collect()
    }

    fn slugs(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.slug.as_str()).collect()
    }

    #[test]
    fn hand_picked_queries_find_the_right_tool() {
        let index = SearchIndex::build(catalogue_docs());
        assert_eq!(index.len(), 1357);
        let first = |q: &str| {
            index
                .search(q, None, 0, 1)
                .0
                .first()
                .map(|h| h.slug.clone())
        };
        assert_eq!(first("send an email").as_deref(), Some("GMAIL_SEND_EMAIL"));
        assert_eq!(
            first("text to speech").as_deref(),
            Some("ELEVENLABS_TEXT_TO_SPEECH")
        );
        assert_eq!(
            first("upload file to drive").as_deref(),
            Some("GOOGLEDRIVE_UPLOAD_FILE")
        );
        assert_eq!(
            first("list calendar events").as_deref(),
            Some("GOOGLECALENDAR_EVENTS_LIST")
        );
        assert_eq!(
            first("Search YouTube videos").as_deref(),
            Some("YOUTUBE_SEARCH_YOU_TUBE")
        );
        let (top, _) = index.search("create issue", None, 0, 3);
        assert!(
            slugs(&top).contains(&"GITHUB_CREATE_AN_ISSUE"),
            "{:?}",
            slugs(&top)
        );
        let (top, _) = index.search("star a repository", None, 0, 3);
        assert!(slugs(&top).contains(&"GITHUB_STAR_A_REPOSITORY_FOR_THE_AUTHENTICATED_USER"));
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        let hit = &top[0];
        assert_eq!(hit.toolkit_slug, "github");
        assert!(!hit.name.is_empty() && !hit.description.is_empty());
    }

    #[test]
    fn the_toolkit_filter_keeps_its_tools_only() {
        let index = SearchIndex::build(catalogue_docs());
        let (all, total_all) = index.search("create", None, 0, 2000);
        let (notion, total_notion) = index.search("create", Some("notion"), 0, 2000);
        assert!(total_notion > 0 && total_notion < total_all);
        assert!(notion.iter().all(|h| h.toolkit_slug == "notion"));
        let expected: Vec<&str> = slugs(&all)
            .into_iter()
            .filter(|s| s.starts_with("NOTION_"))
            .collect();
        assert_eq!(slugs(&notion), expected, "same order as unfiltered");
        assert_eq!(index.search("create", Some("nope"), 0, 10), (Vec::new(), 0));
    }

    #[test]
    fn paging_is_stable_and_covers_every_match_once() {
        let docs = catalogue_docs();
        let index = SearchIndex::build(docs.iter().copied());
        let (everything, total) = index.search("list repository", None, 0, usize::MAX);
        assert_eq!(everything.len(), total);
        assert!(total > 100);
        let mut paged = Vec::new();
        for offset in (0..total + 7).step_by(7) {
            let (page, page_total) = index.search("list repository", None, offset, 7);
            assert_eq!(page_total, total);
            paged.extend(page);
        }
        assert_eq!(paged, everything);
        // Ties break by slug, whatever order the tools came in.
        let reversed = SearchIndex::build(docs.iter().rev().copied());
        assert_eq!(
            reversed.search("list repository", None, 0, usize::MAX).0,
            everything
        );
        let tied: Vec<&Hit> = everything
            .windows(2)
            .filter(|w| w[0].score == w[1].score)
            .map(|w| &w[0])
            .collect();
        assert!(!tied.is_empty(), "the catalogue has ties to break");
        assert!(everything
            .windows(2)
            .all(|w| w[0].score > w[1].score || w[0].slug < w[1].slug));
    }

    #[test]
    fn queries_without_words_match_nothing() {
        let index = SearchIndex::build(catalogue_docs());
        assert_eq!(index.search("", None, 0, 10), (Vec::new(), 0));
        assert_eq!(index.search("  the a of ", None, 0, 10), (Vec::new(), 0));
        assert_eq!(index.search("zzzzqqq", None, 0, 10), (Vec::new(), 0));
        assert!(SearchIndex::build([])
            .search("email", None, 0, 10)
            .0
            .is_empty());
    }

    #[test]
    fn tokens_are_lowercased_split_and_stemmed() {
        let mut tokens: Vec<String> = Vec::new();
        let text = "GMAIL_SEND_EMAIL: Sends the e-mails, issues & Qüeries";
        for_each_token(text, &mut String::new(), |t| tokens.push(t.to_owned()));
        assert_eq!(
            tokens,
            ["gmail", "send", "email", "send", "mail", "issue", "qüery"]
        );
    }

    /// `cargo test --release --lib agent::search -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark: prints build time and query latency at 25,000 tools"]
    fn benchmark_at_25000_tools() {
        let base = catalogue_docs();
        let mut owned: Vec<(String, String, String)> = Vec::with_capacity(25_000);
        'fill: for copy in 0.. {
            for doc in &base {
                if owned.len() == 25_000 {
                    break 'fill;
                }
                owned.push((
                    format!("{}_C{copy}", doc.slug),
                    format!("{}{copy}", doc.toolkit_slug),
                    format!("{} {copy}", doc.toolkit_name),
                ));
            }
        }
        let docs: Vec<SearchDoc<'_>> = owned
            .iter()
            .zip(base.iter().cycle())
            .map(|((slug, toolkit_slug, toolkit_name), doc)| SearchDoc {
                slug,
                name: doc.name,
                description: doc.description,
                toolkit_slug,
                toolkit_name,
            })
            .collect();
        let mut builds = Vec::new();
        let mut index = SearchIndex::default();
        for _ in 0..5 {
            let start = Instant::now();
            index = SearchIndex::build(docs.iter().copied());
            builds.push(start.elapsed());
        }
        builds.sort();
        let queries = [
            "send an email",
            "create issue",
            "star a repository",
            "upload file to drive",
            "search videos",
            "list calendar events",
            "create a page in notion",
            "scrape a website",
            "delete a branch",
            "get my profile",
            "add a comment to a pull request",
            "create",
            "list",
            "get",
            "text to speech",
            "pull request review comments",
            "update",
            "crawl",
            "repository",
            "user",
        ];
        let mut samples = Vec::new();
        for round in 0..51 {
            for (i, q) in queries.iter().enumerate() {
                let toolkit = (i % 4 == 0).then_some("github3");
                let start = Instant::now();
                let (hits, _) = index.search(q, toolkit, 0, 20);
                let elapsed = start.elapsed();
                std::hint::black_box(hits);
                if round > 0 {
                    samples.push(elapsed);
                }
            }
        }
        samples.sort();
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "search: {} tools, {} terms; build median {:.1} ms (min {:.1}); query warm p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} queries)",
            index.len(), index.terms.len(), ms(builds[2]), ms(builds[0]), ms(at(0.5)), ms(at(0.99)),
            ms(samples[samples.len() - 1]), samples.len()
        );
    }
}
