//! Tool names and property keys that every provider accepts, derived
//! deterministically from the originals so they are stable across syncs.
//!
//! The scheme, for a name or key that breaks the target rule:
//! 1. characters outside the rule become `_` (a tool name that would start with
//!    a digit or `-` gets a leading `_`);
//! 2. it is tagged `_xxxxxx` with the first six hex digits of the SHA-256 of
//!    the **original** text and, to fit 64 characters, shortened by trying in
//!    turn: collapsing runs of `_`, dropping filler words (`a`, `the`, `of`…,
//!    never the first word), and dropping words from the middle, so that both
//!    the head (toolkit, verb) and the tail (the object, the leaf of a
//!    flattened `a__b` key) survive.
//!
//! A tool name gets step 2 whenever it was altered, so it depends on its slug
//! alone, never on which other tools share the bundle. A key gets step 2 when
//! too long or when its sanitized form collides with a sibling key.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Longest tool name and property key accepted by every provider.
pub const MAX_NAME_LEN: usize = 64;
const HASH_LEN: usize = 6;

/// Words that carry little meaning in a slug: the first to go when shortening.
const FILLER_WORDS: &[&str] = &[
    "a", "an", "the", "of", "to", "for", "in", "on", "by", "is", "if", "and", "or", "with", "from",
    "your", "its", "at", "as", "be", "that", "this",
];

/// Which characters a property key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRule {
    /// `^[a-zA-Z0-9_.-]{1,64}$`: Anthropic's rule, also used for OpenAI and MCP
    /// so that one bundle can be relayed to any of them.
    Anthropic,
    /// `^[a-zA-Z0-9_]{1,64}$`: Gemini.
    Gemini,
}

impl KeyRule {
    fn allows(self, c: char) -> bool {
        c.is_ascii_alphanumeric()
            || c == '_'
            || (self == KeyRule::Anthropic && (c == '-' || c == '.'))
    }

    pub(crate) fn is_valid(self, key: &str) -> bool {
        !key.is_empty() && key.len() <= MAX_NAME_LEN && key.chars().all(|c| self.allows(c))
    }

    pub(crate) fn pattern(self) -> &'static str {
        match self {
            KeyRule::Anthropic => "^[a-zA-Z0-9_.-]{1,64}$",
            KeyRule::Gemini => "^[a-zA-Z0-9_]{1,64}$",
        }
    }
}

/// `^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$`: valid for every provider.
pub fn is_valid_tool_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The name sent to the model for a tool slug: the slug itself when valid,
/// otherwise a sanitized, shortened form tagged with a hash of the slug.
pub fn tool_name(slug: &str) -> String {
    if is_valid_tool_name(slug) {
        return slug.to_owned();
    }
    let mut clean: String = slug
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !clean.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        clean.insert(0, '_');
    }
    tagged(&clean, &short_hash(slug, HASH_LEN), MAX_NAME_LEN)
}

/// Renames the keys of one `properties` object that break `rule`; valid keys
/// are never renamed. Returns `(original, new)` pairs for the renamed keys
/// only. Deterministic and independent of the keys' order (bar a hash
/// collision between two renamed keys, resolved by lengthening the hash).
pub(crate) fn rename_keys<'k>(
    keys: impl Iterator<Item = &'k str> + Clone,
    rule: KeyRule,
) -> Vec<(&'k str, String)> {
    let valid: HashSet<&str> = keys.clone().filter(|k| rule.is_valid(k)).collect();
    let invalid: Vec<&str> = keys.filter(|k| !rule.is_valid(k)).collect();
    if invalid.is_empty() {
        return Vec::new();
    }
    let candidates: Vec<(&str, String)> = invalid
        .iter()
        .map(|&k| (k, derive_key(k, rule, false)))
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, c) in &candidates {
        *counts.entry(c.as_str()).or_default() += 1;
    }
    let mut taken: HashSet<String> = valid.iter().map(|k| (*k).to_owned()).collect();
    let mut renamed = Vec::with_capacity(candidates.len());
    for (original, candidate) in &candidates {
        let clashes = valid.contains(candidate.as_str()) || counts[candidate.as_str()] > 1;
        let mut new = if clashes {
            derive_key(original, rule, true)
        } else {
            candidate.clone()
        };
        // Only two distinct keys sharing a hash prefix get here.
        let mut hash_len = HASH_LEN;
        while taken.contains(&new) && hash_len < 64 {
            hash_len += 2;
            new = tagged(
                &sanitize_key(original, rule),
                &short_hash(original, hash_len),
                MAX_NAME_LEN,
            );
        }
        taken.insert(new.clone());
        renamed.push((*original, new));
    }
    renamed
}

fn sanitize_key(key: &str, rule: KeyRule) -> String {
    key.chars()
        .map(|c| if rule.allows(c) { c } else { '_' })
        .collect()
}

fn derive_key(key: &str, rule: KeyRule, force_hash: bool) -> String {
    let clean = sanitize_key(key, rule);
    if !force_hash && !clean.is_empty() && clean.len() <= MAX_NAME_LEN {
        return clean;
    }
    let clean = if clean.is_empty() {
        "key".to_owned()
    } else {
        clean
    };
    tagged(&clean, &short_hash(key, HASH_LEN), MAX_NAME_LEN)
}

/// `text` shortened to fit `max` together with `_{hash}`. `text` is ASCII.
fn tagged(text: &str, hash: &str, max: usize) -> String {
    let room = max.saturating_sub(hash.len() + 1);
    if text.len() <= room {
        return format!("{text}_{hash}");
    }
    let collapsed = collapse_underscores(text);
    if collapsed.len() <= room {
        return format!("{collapsed}_{hash}");
    }
    let words: Vec<&str> = collapsed.split('_').collect();
    let kept: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|(i, w)| *i == 0 || !FILLER_WORDS.contains(&w.to_ascii_lowercase().as_str()))
        .map(|(_, w)| *w)
        .collect();
    let trimmed = kept.join("_");
    if trimmed.len() <= room {
        return format!("{trimmed}_{hash}");
    }
    elide(&kept, hash, max)
}

fn collapse_underscores(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out
}

/// `head_{hash}_tail` at most `max` long: words are dropped one at a time
/// from the middle (from the longer side), so both ends survive; words too
/// long by themselves are cut.
fn elide(words: &[&str], hash: &str, max: usize) -> String {
    let mid = words.len().div_ceil(2);
    let mut left: Vec<&str> = words[..mid].to_vec();
    let mut right: VecDeque<&str> = words[mid..].iter().copied().collect();
    let joined = |words: &mut dyn Iterator<Item = &&str>| -> usize {
        let (count, chars) = words.fold((0, 0), |(n, l), w| (n + 1, l + w.len()));
        (chars + count).saturating_sub(1)
    };
    loop {
        let (l, r) = (joined(&mut left.iter()), joined(&mut right.iter()));
        let total = l + 1 + hash.len() + if right.is_empty() { 0 } else { r + 1 };
        if total <= max {
            break;
        }
        if right.len() > 1 && (r >= l || left.len() <= 1) {
            right.pop_front();
        } else if left.len() > 1 {
            left.pop();
        } else {
            break;
        }
    }
    let mut head = left.join("_");
    let mut tail = Vec::from(right).join("_");
    let separators = if tail.is_empty() { 1 } else { 2 };
    let budget = max.saturating_sub(hash.len() + separators);
    if head.len() + tail.len() > budget {
        let head_budget = if tail.is_empty() {
            budget
        } else {
            (budget / 2).max(budget.saturating_sub(tail.len()))
        };
        head.truncate(head_budget.min(head.len()));
        let keep = budget.saturating_sub(head.len()).min(tail.len());
        tail = tail[tail.len() - keep..].to_owned();
    }
    if tail.is_empty() {
        format!("{head}_{hash}")
    } else {
        format!("{head}_{hash}_{tail}")
    }
}

/// The first `len` hex digits of the SHA-256 of `text`.
fn short_hash(text: &str, len: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(len);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_slugs_are_kept() {
        assert_eq!(
            tool_name("GITHUB_CREATE_AN_ISSUE"),
            "GITHUB_CREATE_AN_ISSUE"
        );
        assert_eq!(tool_name("_x-y"), "_x-y");
    }

    #[test]
    fn long_slugs_drop_filler_words_and_carry_a_hash() {
        let slug = "GITHUB_CHECK_IF_A_REPOSITORY_IS_STARRED_BY_THE_AUTHENTICATED_USER";
        let name = tool_name(slug);
        assert!(is_valid_tool_name(&name), "{name}");
        assert!(
            name.starts_with("GITHUB_CHECK_REPOSITORY_STARRED_AUTHENTICATED_USER_"),
            "{name}"
        );
        assert_eq!(name, tool_name(slug), "deterministic");
        assert_ne!(name, tool_name(&format!("{slug}S")));
    }

    #[test]
    fn slugs_that_are_invalid_but_short_are_sanitized() {
        let name = tool_name("1PASSWORD.GET ITEM");
        assert!(name.starts_with("_1PASSWORD_GET_ITEM_"), "{name}");
        assert!(is_valid_tool_name(&name));
        assert!(is_valid_tool_name(&tool_name("")));
        assert!(is_valid_tool_name(&tool_name("ü".repeat(80).as_str())));
    }

    #[test]
    fn words_without_separators_are_cut() {
        let name = tool_name(&"X".repeat(200));
        assert!(is_valid_tool_name(&name), "{name}");
        let name = tool_name(&format!("A_{}", "Y".repeat(200)));
        assert!(is_valid_tool_name(&name), "{name}");
    }

    #[test]
    fn long_flattened_keys_keep_head_and_tail() {
        let keys = [
            "required__pull__request__reviews__bypass__pull__request__allowances__apps",
            "required__pull__request__reviews__bypass__pull__request__allowances__teams",
        ];
        let renamed = rename_keys(keys.iter().copied(), KeyRule::Anthropic);
        assert_eq!(renamed.len(), 2);
        for (original, new) in &renamed {
            assert!(KeyRule::Anthropic.is_valid(new), "{new}");
            assert!(new.starts_with("required_pull_request_"), "{new}");
            let leaf = original.rsplit("__").next().unwrap_or_default();
            assert!(new.ends_with(leaf), "{new} keeps {leaf}");
        }
    }

    #[test]
    fn colliding_keys_get_distinct_hashed_names_whatever_their_order() {
        let keys = ["+1", "-1", "_1"];
        let a = rename_keys(keys.iter().copied(), KeyRule::Gemini);
        let b = rename_keys(keys.iter().rev().copied(), KeyRule::Gemini);
        let lookup =
            |v: &[(&str, String)], k: &str| v.iter().find(|(o, _)| *o == k).map(|(_, n)| n.clone());
        for k in ["+1", "-1"] {
            let new = lookup(&a, k).unwrap_or_default();
            assert!(KeyRule::Gemini.is_valid(&new) && new != "_1", "{new}");
            assert_eq!(lookup(&b, k), Some(new));
        }
        assert_ne!(lookup(&a, "+1"), lookup(&a, "-1"));
        assert_eq!(lookup(&a, "_1"), None, "valid keys keep their name");
    }

    #[test]
    fn anthropic_keeps_dots_gemini_does_not() {
        let keys = ["agent.first_message"];
        assert!(rename_keys(keys.iter().copied(), KeyRule::Anthropic).is_empty());
        let gemini = rename_keys(keys.iter().copied(), KeyRule::Gemini);
        assert_eq!(gemini[0].1, "agent_first_message");
        let empty = rename_keys([""].iter().copied(), KeyRule::Anthropic);
        assert!(KeyRule::Anthropic.is_valid(&empty[0].1));
    }
}
