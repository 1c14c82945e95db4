//! The lexical signal: BM25F over a document's fields, hand-written (about a
//! hundred lines) because the crates that do this (tantivy and kin) are
//! larger than the whole read bootstrap's budget and bring an on-disk index
//! we do not need. Every (term, document) weight is computed at build time,
//! so a query is a sum over a few posting lists.

use super::lexicon::STOP_WORDS;
use super::text::{for_each_word, stem};
use std::collections::HashMap;

/// The fields of a document, in this order.
pub const SLUG: usize = 0;
pub const NAME: usize = 1;
pub const SUMMARY: usize = 2;
pub const DESCRIPTION: usize = 3;
pub const TOOLKIT: usize = 4;
pub const PARAMETERS: usize = 5;
pub const FIELD_COUNT: usize = 6;

#[derive(Clone, Copy)]
struct Field {
    weight: f32,
    /// BM25 length normalisation: short fields barely need it.
    b: f32,
}

/// The slug's words (without the toolkit's prefix) and the name say what a
/// tool does; the description's first sentence says it again in other words,
/// the rest says how; its arguments' names ("attendees", "due date") say
/// what it works on, words the rest often leaves out, so they weigh least
/// (0.2, chosen on the tuning part, confirmed on validation).
const FIELDS: [Field; FIELD_COUNT] = [
    Field {
        weight: 2.5,
        b: 0.3,
    },
    Field {
        weight: 2.0,
        b: 0.3,
    },
    Field {
        weight: 1.0,
        b: 0.5,
    },
    Field {
        weight: 0.6,
        b: 0.75,
    },
    Field {
        weight: 0.5,
        b: 0.0,
    },
    Field {
        weight: 0.2,
        b: 0.3,
    },
];
const K1: f32 = 1.2;

#[derive(Debug, Clone, Copy)]
pub struct Posting {
    pub doc: u32,
    /// idf × saturated, field-weighted term frequency.
    pub weight: f32,
}

#[derive(Debug, Clone, Default)]
pub struct LexicalIndex {
    terms: HashMap<String, u32>,
    postings: Vec<Vec<Posting>>,
}

impl LexicalIndex {
    /// `docs`: each document's text by field.
    pub fn build<'a>(docs: impl ExactSizeIterator<Item = [&'a str; FIELD_COUNT]>) -> Self {
        let mut index = LexicalIndex::default();
        let n_docs = docs.len();
        // Per document: (term, field, count), and field lengths.
        let mut counts: Vec<Vec<(u32, u8, u32)>> = Vec::with_capacity(n_docs);
        let mut lengths: Vec<[u32; FIELD_COUNT]> = Vec::with_capacity(n_docs);
        let mut tokens: Vec<(u32, u8)> = Vec::new();
        let mut word = String::new();
        for fields in docs {
            tokens.clear();
            let mut length = [0u32; FIELD_COUNT];
            for (field, text) in fields.iter().enumerate() {
                for_each_word(text, &mut word, |w| {
                    if STOP_WORDS.contains(&w) {
                        return;
                    }
                    let mut w = w.to_owned();
                    stem(&mut w);
                    let next = index.terms.len() as u32;
                    let term = *index.terms.entry(w).or_insert(next);
                    tokens.push((term, field as u8));
                    length[field] += 1;
                });
            }
            tokens.sort_unstable();
            let mut doc_counts: Vec<(u32, u8, u32)> = Vec::new();
            for &(term, field) in &tokens {
                match doc_counts.last_mut() {
                    Some((t, f, n)) if *t == term && *f == field => *n += 1,
                    _ => doc_counts.push((term, field, 1)),
                }
            }
            counts.push(doc_counts);
            lengths.push(length);
        }

        let n = n_docs.max(1) as f32;
        let mut average = [0f32; FIELD_COUNT];
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
                    let Field { weight, b } = FIELDS[field as usize];
                    let norm =
                        1.0 - b + b * length[field as usize] as f32 / average[field as usize];
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

    /// The postings of a stemmed term (empty if no document has it).
    pub fn postings(&self, term: &str) -> &[Posting] {
        match self.terms.get(term) {
            Some(&t) => &self.postings[t as usize],
            None => &[],
        }
    }

    /// A stemmed term's id (`None` if no document has it).
    pub fn term_id(&self, term: &str) -> Option<u32> {
        self.terms.get(term).copied()
    }

    pub fn term_count(&self) -> usize {
        self.terms.len()
    }
}
