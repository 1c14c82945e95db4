//! Validated identifiers. Nothing becomes a store key, a path or a URL segment
//! without passing through one of these constructors.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Longest toolkit slug we accept. Composio's are far shorter; the bound keeps
/// keys and paths small and refuses garbage early.
pub const MAX_SLUG_LEN: usize = 100;
/// Longest tool slug we accept in a URL.
pub const MAX_TOOL_SLUG_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug is empty")]
    Empty,
    #[error("slug is longer than {max} characters")]
    TooLong { max: usize },
    #[error("slug must start with a lowercase letter or a digit")]
    BadStart,
    #[error("slug may contain only lowercase letters, digits, '_' and '-' (found {found:?})")]
    BadChar { found: char },
    #[error("slug may contain only ASCII letters, digits, '_' and '-' (found {found:?})")]
    BadToolChar { found: char },
}

/// A toolkit slug: `[a-z0-9][a-z0-9_-]{0,99}`.
///
/// The first character can't be `_`, so a toolkit never collides with the
/// store's own `_meta.json`, `_lease.json` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        validate(raw, MAX_SLUG_LEN, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
        })?;
        let first = raw.chars().next().unwrap_or('_');
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(SlugError::BadStart);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A slug as the upstream sent it: Composio's are lower case, some
    /// payloads are not. The one normalisation, used by the plan and the mapping alike.
    pub fn from_upstream(raw: &str) -> Result<Self, SlugError> {
        Self::parse(&raw.to_ascii_lowercase())
    }

    /// Whether an upstream slug names this toolkit (case aside, as `from_upstream`).
    pub fn matches_upstream(&self, raw: &str) -> bool {
        raw.eq_ignore_ascii_case(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Slug::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Slug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slug::parse(s)
    }
}

/// A tool slug as it appears in a URL: `[A-Za-z0-9_-]{1,200}` (Composio's are
/// upper case, e.g. `GITHUB_CREATE_AN_ISSUE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolSlug(String);

impl ToolSlug {
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        validate(raw, MAX_TOOL_SLUG_LEN, |c| {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        })
        .map_err(|e| match e {
            // Tool slugs take upper case: the toolkit rule's message would mislead.
            SlugError::BadChar { found } => SlugError::BadToolChar { found },
            other => other,
        })?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(raw: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), SlugError> {
    if raw.is_empty() {
        return Err(SlugError::Empty);
    }
    if raw.len() > max {
        return Err(SlugError::TooLong { max });
    }
    match raw.chars().find(|c| !allowed(*c)) {
        Some(found) => Err(SlugError::BadChar { found }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_real_toolkit_slugs() {
        for ok in ["github", "browser_tool", "google-sheets", "0x", "a"] {
            assert_eq!(Slug::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_anything_that_could_escape_a_key() {
        let long = "a".repeat(300);
        for bad in [
            "",
            "../x",
            "a/b",
            "%2e%2e",
            "..",
            ".",
            "a\\b",
            "A",
            "Github",
            "gïthub",
            "日本",
            "_meta",
            "-x",
            "a b",
            "a\0b",
            "a\nb",
            long.as_str(),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn upstream_slugs_are_normalised_once() {
        let slug = Slug::from_upstream("GitHub").unwrap();
        assert_eq!(slug.as_str(), "github");
        assert!(slug.matches_upstream("GITHUB") && slug.matches_upstream("github"));
        assert!(!slug.matches_upstream("gitlab"));
        assert!(Slug::from_upstream("../X").is_err());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<Slug>("\"../etc\"").is_err());
        assert_eq!(
            serde_json::from_str::<Slug>("\"gmail\"").unwrap().as_str(),
            "gmail"
        );
    }

    #[test]
    fn tool_slugs() {
        assert!(ToolSlug::parse("GITHUB_CREATE_AN_ISSUE").is_ok());
        for bad in ["", "A/B", "..%2f", "x".repeat(201).as_str(), "É"] {
            assert!(ToolSlug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_tool_slug_is_told_the_tool_rule_not_the_toolkit_rule() {
        let message = ToolSlug::parse("a.b").unwrap_err().to_string();
        assert!(!message.contains("lowercase"), "{message}");
        assert!(
            message.contains("letters, digits, '_' and '-'"),
            "{message}"
        );
        assert!(message.contains("'.'"), "{message}");
        let toolkit = Slug::parse("a.b").unwrap_err().to_string();
        assert!(toolkit.contains("lowercase"), "{toolkit}");
    }

    proptest! {
        #[test]
        fn every_accepted_slug_is_a_safe_file_name(raw in "\\PC{0,120}") {
            if let Ok(slug) = Slug::parse(&raw) {
                let s = slug.as_str();
                prop_assert!(!s.is_empty() && s.len() <= MAX_SLUG_LEN);
                prop_assert!(!s.contains('/') && !s.contains('\\') && !s.contains('.') && !s.contains('%'));
                prop_assert!(!s.starts_with('_') && !s.starts_with('-'));
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
            }
        }

        #[test]
        fn every_valid_pattern_is_accepted(raw in "[a-z0-9][a-z0-9_-]{0,99}") {
            prop_assert!(Slug::parse(&raw).is_ok());
        }
    }
}
