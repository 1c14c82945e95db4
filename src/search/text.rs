//! Words out of text, the same way for tools and requests: lowercased, split
//! on anything but letters and digits (so `_` splits slugs and `'` splits
//! "what's"), one-letter words dropped, lightly stemmed.

/// Calls `f` with each word of `text`, unstemmed and lowercased. `word` is
/// scratch space, reused to spare allocations.
pub fn for_each_word(text: &str, word: &mut String, mut f: impl FnMut(&str)) {
    let mut emit = |raw: &str| {
        if raw.is_empty() || (raw.len() < 2 && !raw.bytes().all(|b| b.is_ascii_digit())) {
            return;
        }
        word.clear();
        if raw.is_ascii() {
            word.push_str(raw);
            word.make_ascii_lowercase();
        } else {
            word.extend(raw.chars().flat_map(char::to_lowercase));
        }
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

/// Whether a word is a plural the stemmer makes singular ("voices",
/// "repositories"; not "status", "address").
pub fn is_plural(word: &str) -> bool {
    if !word.ends_with('s') {
        return false;
    }
    let mut singular = word.to_owned();
    stem(&mut singular);
    singular.len() < word.len() && !word.ends_with("ss")
}

/// The words of `text`, lowercased, unstemmed.
#[cfg(test)]
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(text, &mut String::new(), |w| out.push(w.to_owned()));
    out
}

/// A light English stemmer (plurals, -ing, -ed, a final e), so "meetings",
/// "meeting" and "meet", or "creates", "created" and "create", meet. Bolder
/// stemmers (Porter's) conflate words tool text keeps apart ("organization"
/// and "organ"), and every stemmer crate brings every language's tables into
/// the read bootstrap.
pub fn stem(word: &mut String) {
    if !word.is_ascii()
        || word.len() <= 3
        || word.bytes().any(|b| b.is_ascii_digit())
        || UNSTEMMED.contains(&word.as_str())
    {
        return;
    }
    let n = word.len();
    if n > 4 && word.ends_with("ies") {
        word.truncate(n - 3);
        word.push('y');
    } else if word.ends_with("sses") {
        word.truncate(n - 2);
    } else if word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
    {
        word.truncate(n - 1);
    }
    let stripped = strip_suffix(word, "ing") || strip_suffix(word, "ed");
    if stripped {
        undouble(word);
    }
    if word.len() > 3 && word.ends_with('e') && !word.ends_with("ee") {
        word.pop();
    }
}

/// Words a suffix rule would turn into another word.
const UNSTEMMED: &[&str] = &[
    "news",
    "during",
    "thing",
    "nothing",
    "something",
    "everything",
];

/// Drops `suffix` when at least three letters with a vowel remain ("meeting"
/// → "meet", but "string" and "need" stay).
fn strip_suffix(word: &mut String, suffix: &str) -> bool {
    let Some(rest) = word.strip_suffix(suffix) else {
        return false;
    };
    if rest.len() < 3 || !rest.bytes().any(|b| b"aeiouy".contains(&b)) {
        return false;
    }
    let keep = rest.len();
    word.truncate(keep);
    true
}

/// "starr" → "star", "runn" → "run" (but "ll", "ss" and "zz" stay: "call",
/// "pass").
fn undouble(word: &mut String) {
    let bytes = word.as_bytes();
    let n = bytes.len();
    if n >= 3 && bytes[n - 1] == bytes[n - 2] && b"bdgmnprt".contains(&bytes[n - 1]) {
        word.pop();
    }
}

/// `word`, stemmed, as a new string.
pub fn stemmed(word: &str) -> String {
    let mut w = word.to_owned();
    stem(&mut w);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_split_on_anything_but_letters_and_digits() {
        assert_eq!(
            words("GMAIL_SEND_EMAIL: what's a Qüery? 3pm, x"),
            ["gmail", "send", "email", "what", "qüery", "3pm"]
        );
        assert_eq!(words("PR #42"), ["pr", "42"]);
    }

    #[test]
    fn inflections_meet_and_unrelated_words_stay_apart() {
        let same = |a: &str, b: &str| assert_eq!(stemmed(a), stemmed(b), "{a} / {b}");
        same("meetings", "meeting");
        same("meeting", "meet");
        same("creates", "create");
        same("created", "creating");
        same("issues", "issue");
        same("stories", "story");
        same("starred", "star");
        same("scheduled", "schedule");
        same("files", "file");
        same("addresses", "address");
        let apart = |a: &str, b: &str| assert_ne!(stemmed(a), stemmed(b), "{a} / {b}");
        apart("organization", "organ");
        apart("status", "state");
        apart("need", "ne");
        assert_eq!(stemmed("string"), "string");
        assert_eq!(stemmed("news"), "news");
        assert_eq!(stemmed("call"), "call");
        assert_eq!(stemmed("3pm"), "3pm");
    }
}
