//! The layering rule of `src/lib.rs`, checked on the source: no two files of one module import
//! each other, directly or around a longer circle. A file is a node of its module (a folder with
//! its own `mod.rs` is one node, its files together); an edge is a reference to a sibling by path
//! (`super::x`, `crate::path::x`, grouped imports spelt out). A module's `mod.rs` is its front
//! door, not a sibling: it declares the files and may hold what they share, so it is no node.
//! Tests inside a file (`#[cfg(test)]` onward) and comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The text of a file without its tests, grouped imports spelt out (`super::{a, b::C}` becomes
/// `super::a super::b::C`).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    // Comments name modules without importing them.
    let text: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
    expand(&text.join("\n"))
}

fn expand(text: &str) -> String {
    let Some(open) = text.find("::{") else {
        return text.to_string();
    };
    let start = text[..open]
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .map_or(0, |i| i + 1);
    let prefix = &text[start..open + 2];
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut from = open + 3;
    let mut end = text.len();
    for (i, c) in text[open + 3..].char_indices() {
        let at = open + 3 + i;
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                parts.push(&text[from..at]);
                end = at + 1;
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[from..at]);
                from = at + 1;
            }
            _ => {}
        }
    }
    let spelt: Vec<String> = parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p == "self" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect();
    format!("{}{}{}", &text[..start], expand(&spelt.join(" ")), expand(&text[end..]))
}

/// Every `.rs` file under `dir`, with its depth below `dir` (0 for `dir`'s own files).
fn files(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, usize)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, depth + 1, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path, depth));
        }
    }
}

/// Whether `text` names `name` right after `prefix` as a whole path segment.
fn names(text: &str, prefix: &str, name: &str) -> bool {
    let needle = format!("{prefix}{name}");
    text.match_indices(&needle).any(|(i, _)| {
        let after = text[i + needle.len()..].chars().next();
        let before = text[..i].chars().next_back();
        after.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            && before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
    })
}

/// The import graph among the nodes of the module in `dir` (module path `path`, e.g. `engine`).
fn graph(dir: &Path, path: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut nodes: BTreeMap<String, Vec<(PathBuf, usize)>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir() && p.join("mod.rs").exists() {
            let mut all = Vec::new();
            files(&p, 1, &mut all);
            nodes.insert(name, all);
        } else if p.extension().is_some_and(|e| e == "rs") {
            nodes.insert(name, vec![(p, 0)]);
        }
    }
    nodes.remove("mod");
    let siblings: BTreeSet<String> = nodes.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (node, node_files) in &nodes {
        let out = edges.entry(node.clone()).or_default();
        for (file, depth) in node_files {
            let text = code(file);
            let is_mod_rs = file.file_name().is_some_and(|f| f == "mod.rs");
            if *depth == 0 && is_mod_rs {
                continue;
            }
            // How this file names its module's siblings: `super::` from a file of the module,
            // `super::super::` from a file one folder down (`super::` from that folder's mod.rs).
            let up = match (*depth, is_mod_rs) {
                (0, _) => "super::".to_string(),
                (d, true) => "super::".repeat(d),
                (d, false) => "super::".repeat(d + 1),
            };
            let absolute = format!("crate::{path}::");
            for sibling in &siblings {
                if sibling == node {
                    continue;
                }
                if names(&text, &up, sibling) || names(&text, &absolute, sibling) {
                    out.insert(sibling.clone());
                }
            }
        }
    }
    edges
}

/// A circle in `edges`, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

/// Every module folder under `src/`, with its module path.
fn modules(dir: &Path, path: &str, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() && p.join("mod.rs").exists() {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let child = if path.is_empty() {
                name
            } else {
                format!("{path}::{name}")
            };
            out.push((p.clone(), child.clone()));
            modules(&p, &child, out);
        }
    }
}

#[test]
fn no_two_files_of_a_module_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    modules(&src, "", &mut all);
    assert!(all.len() > 10, "modules found: {all:?}");
    let circles: Vec<String> = all
        .iter()
        .filter_map(|(dir, path)| circle(&graph(dir, path)).map(|c| format!("{path}: {}", c.join(" → "))))
        .collect();
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

#[test]
fn the_check_finds_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(m.join("mod.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(m.join("a.rs"), "use super::b::B;\n").unwrap();
    std::fs::write(
        m.join("b.rs"),
        "fn f() { crate::m::a::g(); }\n#[cfg(test)]\nmod tests { use super::*; }\n",
    )
    .unwrap();
    let c = circle(&graph(&m, "m")).expect("a → b → a");
    assert_eq!(c.len(), 3, "{c:?}");
    std::fs::write(m.join("b.rs"), "pub struct B;\n").unwrap();
    assert_eq!(circle(&graph(&m, "m")), None);
    // Through a folder of its own: b/ names a, a names b/.
    std::fs::remove_file(m.join("b.rs")).unwrap();
    std::fs::create_dir(m.join("b")).unwrap();
    std::fs::write(m.join("b/mod.rs"), "pub mod c;\n").unwrap();
    std::fs::write(m.join("b/c.rs"), "use super::super::a::g;\n").unwrap();
    assert!(circle(&graph(&m, "m")).is_some());
}
