//! Command-line changes to a workload (`--set`, `--duration`, `--target-url`, `--threshold`,
//! `--shard`), applied as the file loads, and the map that keeps error locations true after
//! them: an error in a value the command line set says so; any other error points at its line
//! in the file as written, not in the document the overrides produced.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Changes to a workload file from the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Dotted-key assignments, in order.
    pub set: Vec<Setting>,
    /// Extra thresholds (`--threshold EXPR`), judged like the file's own.
    pub thresholds: Vec<String>,
    /// This process's part of a sharded run.
    pub shard: Option<Shard>,
}

/// `KEY=VALUE`, and how the user gave it (`--set load.rate=5/s`, `--duration 5s`).
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub assignment: String,
    pub given_as: String,
}

impl Overrides {
    /// `--set KEY=VALUE` as given.
    pub fn set(mut self, assignment: &str) -> Self {
        self.set.push(Setting {
            assignment: assignment.to_string(),
            given_as: format!("--set {assignment}"),
        });
        self
    }

    /// A flag that stands for an assignment, e.g. `--duration 5s` for `load.duration=5s`.
    pub fn flag(mut self, given_as: String, assignment: String) -> Self {
        self.set.push(Setting { assignment, given_as });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.thresholds.is_empty() && self.shard.is_none()
    }

    /// Every change, as the user would type it (for `summary.json` and the saved workload).
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.set.iter().map(|s| s.given_as.clone()).collect();
        out.extend(self.thresholds.iter().map(|t| format!("--threshold '{t}'")));
        if let Some(s) = self.shard {
            out.push(format!("--shard {}/{}", s.index, s.count));
        }
        out
    }
}

/// `load.rate=500/s`: the value is read as TOML when it parses as such, else as a string.
pub fn apply(table: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or("expected KEY=VALUE, e.g. load.rate=500/s")?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts = key_path(key);
    let (last, parents) = parts.split_last().ok_or("empty key")?;
    let mut cur = table;
    for p in parents {
        cur = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a table"))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

fn key_path(key: &str) -> Vec<String> {
    key.trim().split('.').map(|p| p.trim().to_string()).collect()
}

/// One step of a path into a TOML document.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Where every key and value of a document sits.
struct SpanIndex(Vec<(Vec<Seg>, Range<usize>, Range<usize>)>);

impl SpanIndex {
    fn of(text: &str) -> SpanIndex {
        let mut out = Vec::new();
        if let Ok(root) = DeTable::parse(text) {
            walk_table(root.get_ref(), &mut Vec::new(), &mut out);
        }
        SpanIndex(out)
    }

    /// The deepest entry whose key or value holds `offset`.
    fn at(&self, offset: usize) -> Option<&(Vec<Seg>, Range<usize>, Range<usize>)> {
        self.0
            .iter()
            .filter(|(_, k, v)| k.contains(&offset) || v.contains(&offset) || (v.is_empty() && v.start == offset))
            .max_by_key(|(p, _, _)| p.len())
    }

    fn get(&self, path: &[Seg]) -> Option<&(Vec<Seg>, Range<usize>, Range<usize>)> {
        self.0.iter().find(|(p, _, _)| p == path)
    }
}

fn walk_table(t: &DeTable, path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Range<usize>, Range<usize>)>) {
    for (k, v) in t {
        path.push(Seg::Key(k.get_ref().to_string()));
        walk_value(v, k.span(), path, out);
        path.pop();
    }
}

fn walk_value(
    v: &Spanned<DeValue>,
    key: Range<usize>,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, Range<usize>, Range<usize>)>,
) {
    out.push((path.clone(), key, v.span()));
    match v.get_ref() {
        DeValue::Table(t) => walk_table(t, path, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                walk_value(item, item.span(), path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The file as written and the document after the overrides, to map a location in the one
/// back to the other.
pub struct Remap<'a> {
    /// The file as written.
    pub text: &'a str,
    original: SpanIndex,
    merged: SpanIndex,
    set: Vec<(Vec<Seg>, String)>,
}

/// Where an error in the merged document belongs.
pub enum Origin<'a> {
    /// At this offset of the file as written.
    File(usize),
    /// In a value the command line set.
    CommandLine(&'a str),
    Unknown,
}

impl<'a> Remap<'a> {
    pub fn new(original: &'a str, merged: &str, set: &[Setting]) -> Remap<'a> {
        Remap {
            text: original,
            original: SpanIndex::of(original),
            merged: SpanIndex::of(merged),
            set: set
                .iter()
                .map(|s| {
                    let key = s.assignment.split_once('=').map_or(s.assignment.as_str(), |(k, _)| k);
                    (key_path(key).into_iter().map(Seg::Key).collect(), s.given_as.clone())
                })
                .collect(),
        }
    }

    /// Where the merged document's `offset` came from.
    pub fn origin(&self, offset: usize) -> Origin<'_> {
        let Some((path, key, value)) = self.merged.at(offset) else {
            return Origin::Unknown;
        };
        // The latest assignment that covers this path is where the value came from.
        if let Some((_, given)) = self.set.iter().rev().find(|(p, _)| path.starts_with(p)) {
            return Origin::CommandLine(given);
        }
        match self.original.get(path) {
            Some((_, okey, _)) if key.contains(&offset) => Origin::File(okey.start + (offset - key.start)),
            // Same text at the same path: the same place within it.
            Some((_, _, ovalue)) if ovalue.len() == value.len() => Origin::File(ovalue.start + (offset - value.start)),
            Some((_, _, ovalue)) => Origin::File(ovalue.start),
            None => Origin::Unknown,
        }
    }
}

/// This process's part of a sharded run: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected INDEX/COUNT, e.g. 0/3"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("`{i}` is not a shard index"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("`{n}` is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count (0-based)"
            ));
        }
        Ok(Shard { index, count })
    }
}
