//! Query understanding: from a request as a person or an agent types it to
//! weighted terms, the action it asks for and the toolkits it names.

use super::lexicon::{self, Action};
use super::text::{for_each_word, stem, stemmed};

/// Requests are cut to this many words: enough for any request, and it
/// bounds the work of a hostile one.
pub const MAX_WORDS: usize = 32;

/// The weight of a term that stands for a request word (a synonym), against
/// 1 for the word itself.
pub const SYNONYM_WEIGHT: f32 = 0.8;

/// How much less each later synonym of a word weighs.
pub const SYNONYM_DECAY: f32 = 0.1;

/// One term to look up: stemmed, with its weight and the request word it
/// stands for (its concept, an index below [`MAX_WORDS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub text: String,
    pub weight: f32,
    pub concept: u8,
}

/// What a request means, as far as words tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Understood {
    pub terms: Vec<Term>,
    /// How many request words carry meaning (the concepts terms stand for).
    pub concepts: usize,
    /// The action the request's first verb asks for.
    pub intent: Option<Action>,
    /// Toolkits the request names (positions in the index's toolkit table).
    pub toolkits: Vec<u32>,
    /// It asks about many things ("my repositories", "all the links").
    pub many: bool,
    /// It is about the one asking ("my", "me", "I").
    pub about_self: bool,
}

/// How a request can name a toolkit: joined, stemmed words ("google
/// calendar" → "googlecalendar", "linked in" → "linkedin").
pub struct ToolkitNames {
    names: Vec<(String, u32)>,
}

impl ToolkitNames {
    /// `toolkits`: (slug, name) by position.
    pub fn new<'a>(toolkits: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut names = Vec::new();
        for (id, (slug, name)) in toolkits.into_iter().enumerate() {
            let id = id as u32;
            let mut keys = vec![joined(slug), joined(name)];
            // "browser_tool" is also "the browser".
            if let Some(head) = joined(slug).strip_suffix("tool") {
                if head.len() >= 4 {
                    keys.push(head.to_owned());
                }
            }
            if let Some((_, aliases)) = lexicon::TOOLKIT_ALIASES.iter().find(|(s, _)| *s == slug) {
                keys.extend(aliases.iter().map(|a| stemmed(a)));
            }
            keys.sort();
            keys.dedup();
            names.extend(keys.into_iter().filter(|k| k.len() >= 2).map(|k| (k, id)));
        }
        ToolkitNames { names }
    }

    fn find(&self, key: &str) -> impl Iterator<Item = u32> + '_ {
        let key = key.to_owned();
        self.names
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|&(_, id)| id)
    }
}

/// Words lowercased, stemmed and joined: how a name is compared.
fn joined(text: &str) -> String {
    let mut out = String::new();
    for_each_word(text, &mut String::new(), |w| out.push_str(w));
    stem(&mut out);
    out
}

/// Understands `request`: phrases rewritten, the toolkits it names found, its
/// verb's action, filler dropped, every word stemmed with its synonyms.
pub fn understand(request: &str, toolkits: &ToolkitNames) -> Understood {
    let mut words: Vec<String> = Vec::new();
    for_each_word(request, &mut String::new(), |w| {
        if words.len() < MAX_WORDS {
            words.push(w.to_owned())
        }
    });
    let words = rewrite_phrases(words);

    let mut understood = Understood::default();
    let mut named = vec![false; words.len()];
    for i in 0..words.len() {
        for (len, key) in [(1, stemmed(&words[i])), (2, pair(&words, i))] {
            if key.is_empty() {
                continue;
            }
            let found: Vec<u32> = toolkits.find(&key).collect();
            if !found.is_empty() {
                understood.toolkits.extend(found);
                named[i..i + len].iter_mut().for_each(|n| *n = true);
            }
        }
    }
    understood.toolkits.sort_unstable();
    understood.toolkits.dedup();
    understood.intent = words.iter().find_map(|w| lexicon::request_verb(w));

    understood.about_self = words
        .iter()
        .any(|w| lexicon::SELF_WORDS.contains(&w.as_str()));
    understood.many = words.iter().enumerate().any(|(i, w)| {
        lexicon::MANY_WORDS.contains(&w.as_str())
            || (!named[i]
                && lexicon::request_verb(w).is_none()
                && !lexicon::REQUEST_FILLER.contains(&w.as_str())
                && super::text::is_plural(w))
    });
    for (i, word) in words.iter().enumerate() {
        let filler = lexicon::REQUEST_FILLER.contains(&word.as_str())
            || lexicon::STOP_WORDS.contains(&word.as_str());
        // A toolkit's name still counts as a word (its tools say it), but
        // not as a concept a tool must cover.
        if filler && !named[i] {
            continue;
        }
        let concept = understood.concepts as u8;
        push_term(&mut understood.terms, stemmed(word), 1.0, concept);
        // The lexicon lists first what tool text says most: later synonyms weigh less.
        for (rank, synonym) in lexicon::synonyms(word).iter().enumerate() {
            let weight = SYNONYM_WEIGHT * (1.0 - SYNONYM_DECAY * rank as f32).max(0.5);
            push_term(&mut understood.terms, stemmed(synonym), weight, concept);
        }
        if !named[i] {
            understood.concepts += 1;
        } else {
            for term in understood.terms.iter_mut().filter(|t| t.concept == concept) {
                term.concept = u8::MAX;
            }
        }
    }
    understood
}

/// Two adjacent words joined and stemmed, or "" at the end.
fn pair(words: &[String], i: usize) -> String {
    match words.get(i + 1) {
        Some(next) => stemmed(&format!("{}{next}", words[i])),
        None => String::new(),
    }
}

fn push_term(terms: &mut Vec<Term>, text: String, weight: f32, concept: u8) {
    if text.is_empty() {
        return;
    }
    match terms
        .iter_mut()
        .find(|t| t.text == text && t.concept == concept)
    {
        Some(t) => t.weight = t.weight.max(weight),
        None => terms.push(Term {
            text,
            weight,
            concept,
        }),
    }
}

fn rewrite_phrases(words: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    'words: while i < words.len() {
        for (phrase, replacement) in lexicon::PHRASES {
            let end = i + phrase.len();
            if end <= words.len() && words[i..end].iter().zip(phrase.iter()).all(|(w, p)| w == p) {
                out.extend(replacement.iter().map(|r| (*r).to_owned()));
                i = end;
                continue 'words;
            }
        }
        out.push(words[i].clone());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ToolkitNames {
        ToolkitNames::new([
            ("googlecalendar", "Google Calendar"),
            ("linkedin", "Linkedin"),
            ("browser_tool", "Browser tool"),
            ("browseai", "Browseai"),
            ("googletasks", "Google Tasks"),
        ])
    }

    #[test]
    fn filler_goes_verbs_give_the_action_and_synonyms_join_in() {
        let u = understand("Please add a task to my to-do list", &names());
        assert_eq!(u.intent, Some(Action::Create));
        let words: Vec<&str> = u
            .terms
            .iter()
            .filter(|t| t.weight == 1.0)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(words, ["add", "task", "todo"]);
        assert!(u.terms.iter().any(|t| t.text == "insert" && t.weight < 1.0));
        assert_eq!(u.concepts, 3);
        assert!(u.toolkits.is_empty());
        assert_eq!(
            understand("cancel my appointment", &names()).intent,
            Some(Action::Delete)
        );
        assert_eq!(
            understand("what's on my calendar", &names()).intent,
            Some(Action::Read)
        );
    }

    #[test]
    fn toolkits_are_found_by_slug_name_joined_words_and_alias() {
        let find = |q: &str| understand(q, &names()).toolkits;
        assert_eq!(find("post on LinkedIn"), [1]);
        assert_eq!(find("post on linked in"), [1]);
        assert_eq!(find("my google calendar"), [0]);
        assert_eq!(find("my calendar"), [0]);
        assert_eq!(find("run my browse ai robot"), [3]);
        assert_eq!(find("open it in the browser"), [2]);
        assert_eq!(find("add a task"), Vec::<u32>::new());
        let u = understand("post on linkedin", &names());
        assert_eq!(
            u.concepts, 1,
            "the toolkit's name is not a concept to cover"
        );
    }

    #[test]
    fn a_phrasal_verb_is_one_verb_and_a_request_says_whom_and_how_many() {
        let intent = |q: &str| understand(q, &names()).intent;
        assert_eq!(intent("get rid of the old repo"), Some(Action::Delete));
        assert_eq!(intent("kick off the deploy workflow"), Some(Action::Create));
        assert_eq!(intent("tick off the groceries item"), Some(Action::Update));
        assert_eq!(intent("close issue 42"), Some(Action::Update));
        let u = understand("list my repositories", &names());
        assert!(u.many && u.about_self, "{u:?}");
        let u = understand("star this repo", &names());
        assert!(!u.many && !u.about_self, "{u:?}");
        // "status" and "address" are not plurals.
        assert!(!understand("what's the status", &names()).many);
        assert!(!understand("change the address", &names()).many);
    }

    #[test]
    fn hostile_requests_are_bounded() {
        let long = "word ".repeat(10_000);
        let u = understand(&long, &names());
        assert!(u.terms.len() <= MAX_WORDS * 8, "{}", u.terms.len());
        assert_eq!(understand("", &names()), Understood::default());
        assert_eq!(understand("the a of my", &names()).terms, []);
    }
}
