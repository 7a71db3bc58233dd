//! Workload errors that point at the file, line and key, with a hint where one helps
//! ("unknown key `rat` in \[load\]: did you mean `rate`?").

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::overrides::{Origin, Remap};

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("{}{message}", location(.file, .line, .column))]
pub struct WorkloadError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn location(file: &Path, line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}: ", file.display()),
        (Some(l), None) => format!("{}:{l}: ", file.display()),
        _ => format!("{}: ", file.display()),
    }
}

/// Turns byte offsets into positions and names the table a position sits in.
pub struct Source<'a> {
    pub file: &'a Path,
    /// The text spans point into: the document after the command-line overrides, if any.
    pub text: &'a str,
    /// Set when `text` is not the file as written: maps its offsets back.
    pub remap: Option<&'a Remap<'a>>,
}

/// The 1-based line and column of `offset` in `text`.
fn position(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    if offset > text.len() || !text.is_char_boundary(offset) {
        return (None, None);
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    (Some(line), Some(column))
}

/// One step of a path into the document: a table's key or an array's index.
#[derive(Debug, Clone, Copy)]
pub enum At<'k> {
    Key(&'k str),
    Index(usize),
}

impl Source<'_> {
    /// The workload's folder: the files it names are relative to it.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// Reads the value at `path` again, as `T`: a table whose shape depends on one of its keys
    /// (a target's `kind`) is read once to learn that key, then as its own shape, so that
    /// `deny_unknown_fields` rejects what belongs to another shape and every span still points
    /// into the file. `None` when nothing is at `path`.
    pub fn reread<T: DeserializeOwned>(&self, path: &[At]) -> Result<Option<T>, WorkloadError> {
        let root = DeTable::parse(self.text).map_err(|e| self.from_toml(&e))?;
        let span = root.span();
        let mut value = Spanned::new(span, DeValue::Table(root.into_inner()));
        for step in path {
            let next = match step {
                At::Key(k) => value.get_ref().get(*k),
                At::Index(i) => value.get_ref().get(*i),
            };
            let Some(next) = next.cloned() else { return Ok(None) };
            value = next;
        }
        T::deserialize(ValueDeserializer::from(value))
            .map(Some)
            .map_err(|e| self.from_toml(&e))
    }

    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> WorkloadError {
        let mut message = message.into();
        let (line, column) = match (span, self.remap) {
            (Some(s), Some(remap)) => match remap.origin(s.start) {
                Origin::File(at) => position(remap.text, at),
                Origin::CommandLine(given) => {
                    message.push_str(&format!(" (the value comes from `{given}`)"));
                    (None, None)
                }
                Origin::Unknown => {
                    message.push_str(" (in the workload after the command-line overrides)");
                    (None, None)
                }
            },
            (Some(s), None) => position(self.text, s.start),
            (None, _) => (None, None),
        };
        WorkloadError {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        }
    }

    /// The `[table]` or `[[array]]` header above `offset`, for messages.
    fn table_at(&self, offset: usize) -> Option<String> {
        let before = &self.text[..offset.min(self.text.len())];
        before.lines().rev().find_map(|l| {
            let t = l.trim();
            (t.starts_with('[') && t.ends_with(']')).then(|| t.to_string())
        })
    }

    /// Rewrites a TOML/serde error: location, the table it is in, and a did-you-mean hint.
    pub fn from_toml(&self, err: &toml::de::Error) -> WorkloadError {
        let span = err.span();
        let original = err.message().trim().to_string();
        let mut message = original.clone();
        if let Some(rest) = original.strip_prefix("unknown field `") {
            let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let table = span
                .as_ref()
                .and_then(|s| self.table_at(s.start))
                .map(|t| format!(" in {t}"))
                .unwrap_or_else(|| " at the top level".into());
            message = format!("unknown key `{field}`{table}");
            match did_you_mean(field, &candidates) {
                Some(best) => message.push_str(&format!(": did you mean `{best}`?")),
                None if !candidates.is_empty() => {
                    message.push_str(&format!(" (known keys: {})", candidates.join(", ")))
                }
                None => {}
            }
        }
        self.error(span, message)
    }
}

/// The closest candidate, if it is close enough to be what was meant.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_picks_close_words_only() {
        assert_eq!(did_you_mean("rat", &["model", "rate", "duration"]), Some("rate"));
        assert_eq!(
            did_you_mean("duraton", &["model", "rate", "duration"]),
            Some("duration")
        );
        assert_eq!(did_you_mean("zzzzzz", &["model", "rate"]), None);
    }

    #[test]
    fn positions_are_one_based() {
        let src = Source {
            file: Path::new("w.toml"),
            text: "a = 1\n[load]\nrat = 2\n",
            remap: None,
        };
        let e = src.error(Some(13..16), "x");
        assert_eq!((e.line, e.column), (Some(3), Some(1)));
        assert_eq!(e.to_string(), "w.toml:3:1: x");
        assert_eq!(src.table_at(13).as_deref(), Some("[load]"));
    }
}
