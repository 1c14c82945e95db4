//! The layers stay layered: no module of the library imports a module that
//! imports it. Every `crate::`, `super::` and `self::` path in `src/` (test
//! modules included, comments and strings not) is an edge from the module it
//! is written in to the module it names; two modules with a common parent are
//! compared as that parent's children, so `http::routes` → `http::answer` ←
//! `http::agent_routes` is fine and `cache` → `agent` → `cache` is not. A
//! module using its own parent or child is not an edge: that is Rust's way of
//! splitting one module into files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Cycles being taken apart on other branches, by the modules in each. The
/// list only shrinks: a cycle not listed fails, and so does one listed that
/// is gone (remove it here once it is).
const CYCLES_BEING_REMOVED: &[&[&str]] = &[];

#[test]
fn no_module_imports_its_importer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = library_modules(&src);
    let known: BTreeSet<Module> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<Module, BTreeSet<(Module, String)>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = code_only(&std::fs::read_to_string(file).unwrap());
        for path in paths_in(&text) {
            let Some(target) = resolve(module, &path, &known) else {
                continue;
            };
            if let Some((from, to)) = siblings(module, &target) {
                let at = format!("{} names {}", file.display(), path.join("::"));
                edges.entry(from).or_default().insert((to, at));
            }
        }
    }
    let cycles = find_cycles(&edges);
    let listed: BTreeSet<BTreeSet<String>> = CYCLES_BEING_REMOVED
        .iter()
        .map(|c| c.iter().map(|m| m.to_string()).collect())
        .collect();
    let found: BTreeSet<BTreeSet<String>> =
        cycles.iter().map(|(members, _)| members.clone()).collect();
    let new: Vec<&str> = cycles
        .iter()
        .filter(|(members, _)| !listed.contains(members))
        .map(|(_, shown)| shown.as_str())
        .collect();
    assert!(
        new.is_empty(),
        "modules that import their importers:\n{}",
        new.join("\n")
    );
    let gone: Vec<&BTreeSet<String>> = listed.difference(&found).collect();
    assert!(
        gone.is_empty(),
        "these cycles are gone: remove them from CYCLES_BEING_REMOVED: {gone:?}"
    );
    // The scan sees what it must: without these edges it would pass on anything.
    let has = |from: &[&str], to: &[&str]| {
        let from: Module = from.iter().map(|s| s.to_string()).collect();
        let to: Module = to.iter().map(|s| s.to_string()).collect();
        edges
            .get(&from)
            .is_some_and(|e| e.iter().any(|(t, _)| *t == to))
    };
    assert!(has(&["sync"], &["cache"]) && has(&["http"], &["store"]));
}

#[test]
fn the_scan_finds_a_planted_cycle() {
    let known: BTreeSet<Module> = [vec!["a".to_string()], vec!["b".to_string()]]
        .into_iter()
        .collect();
    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    let mut edges: BTreeMap<Module, BTreeSet<(Module, String)>> = BTreeMap::new();
    for (from, code) in [(&a, "use crate::b::X;"), (&b, "fn f() { crate::a::y() }")] {
        for path in paths_in(&code_only(code)) {
            let target = resolve(from, &path, &known).unwrap();
            let (f, t) = siblings(from, &target).unwrap();
            edges.entry(f).or_default().insert((t, code.into()));
        }
    }
    let cycles = find_cycles(&edges);
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].0, ["a".to_string(), "b".to_string()].into());
    assert!(code_only("// crate::b::X\n\"crate::b\"").trim().is_empty());
    let grouped = paths_in("use crate::{cache::{Slug, Meta}, store::Store};");
    assert!(grouped.contains(&vec!["crate".into(), "cache".into(), "Slug".into()]));
    assert!(grouped.contains(&vec!["crate".into(), "store".into(), "Store".into()]));
}

/// Every module of the library and its file (`src/bin` is not the library).
fn library_modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut modules = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(src).unwrap();
            if path.is_dir() {
                if relative != Path::new("bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let mut module: Module = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            modules.insert(module, path);
        }
    }
    modules
}

/// The text without comments, string literals and char literals.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
        } else if let Some(len) = raw_string_len(rest) {
            i += len;
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"…"`, `r#"…"#` and so on, from the start of `rest`.
fn raw_string_len(rest: &str) -> Option<usize> {
    let after_r = rest.strip_prefix('r')?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    let body = after_r[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body.find(&close)?;
    Some(1 + hashes + 1 + end + close.len())
}

/// Every path that starts with `crate`, `super` or `self`, braces expanded.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let word = ident_at(&chars, i);
        if at_word_start && matches!(word.as_str(), "crate" | "super" | "self") {
            let (found, end) = path_from(&chars, i, Vec::new());
            paths.extend(found);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    paths
        .into_iter()
        .filter(|p| p.len() > 1 || p[0] != "self")
        .collect()
}

fn ident_at(chars: &[char], i: usize) -> String {
    chars[i..]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .collect()
}

/// The paths of one `a::b::{c, d::e}` from `i`, each prefixed by `prefix`,
/// and where it ends.
fn path_from(chars: &[char], mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix;
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if chars.get(i) == Some(&'{') {
            let mut found = Vec::new();
            i += 1;
            loop {
                while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                    i += 1;
                }
                match chars.get(i) {
                    None => return (found, i),
                    Some('}') => return (found, i + 1),
                    _ => {}
                }
                let (inner, end) = path_from(chars, i, path.clone());
                found.extend(inner);
                i = end.max(i + 1);
            }
        }
        let word = ident_at(chars, i);
        if word.is_empty() {
            return (vec![path], i);
        }
        i += word.chars().count();
        path.push(word);
        let rest: String = chars[i..].iter().take(2).collect();
        if rest != "::" {
            return (vec![path], i);
        }
        i += 2;
    }
}

/// The deepest known module a path names, from the module it is written in.
fn resolve(from: &Module, path: &[String], known: &BTreeSet<Module>) -> Option<Module> {
    let mut base: Module = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("self") => {
            base = from.clone();
            rest = &path[1..];
        }
        Some("super") => {
            base = from.clone();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut target = base;
    for segment in rest {
        let mut deeper = target.clone();
        deeper.push(segment.clone());
        if !known.contains(&deeper) {
            break;
        }
        target = deeper;
    }
    Some(target)
}

/// The edge as seen by the two modules' common parent: (its child holding
/// `from`, its child holding `to`); none when one contains the other.
fn siblings(from: &Module, to: &Module) -> Option<(Module, Module)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

/// Each cycle once: its modules, and `a → b → a` with the lines that make its edges.
fn find_cycles(
    edges: &BTreeMap<Module, BTreeSet<(Module, String)>>,
) -> Vec<(BTreeSet<String>, String)> {
    let mut cycles = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first from `start`, through modules that sort after it, so
        // each cycle is found once, from its smallest module.
        let mut stack: Vec<(Module, Vec<(Module, String)>)> = vec![(start.clone(), Vec::new())];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for (next, why) in edges.get(&at).into_iter().flatten() {
                let mut trail = trail.clone();
                trail.push((next.clone(), why.clone()));
                if next == start {
                    let names: Vec<String> = std::iter::once(start)
                        .chain(trail.iter().map(|(m, _)| m))
                        .map(|m| m.join("::"))
                        .collect();
                    let whys: Vec<&str> = trail.iter().map(|(_, w)| w.as_str()).collect();
                    let members = trail.iter().map(|(m, _)| m.join("::")).collect();
                    let shown = format!("{}  ({})", names.join(" → "), whys.join("; "));
                    cycles.insert((members, shown));
                } else if next > start && seen.insert(next.clone()) {
                    stack.push((next.clone(), trail));
                }
            }
        }
    }
    cycles.into_iter().collect()
}
