//! The workload `init` is writing: tables of settings, each with the comment that says why it was
//! chosen (what the target answered, or which default it is), rendered as TOML 1.0 text.
//!
//! A setting is either *found* (the target told us; `init --check` compares it with an existing
//! workload, by the [`Rule`] it carries) or *chosen* (a default a team starts from; never
//! compared). Keys are dotted paths within their table (`auth.client_auth` in `[target]`), which
//! TOML reads the same as the inline tables a hand-written workload uses, so one lookup serves
//! both when checking.

use std::fmt::Write as _;

use toml::Value;

/// How `init --check` judges an existing workload's value for a found setting.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The workload must have this very value (or leave the key out when `implied` is it).
    Equal,
    /// The workload must set the key, to anything (a required attribute).
    Present,
    /// Any of these values is right (the methods a token endpoint takes).
    OneOf(Vec<Value>),
}

/// What the target said about a setting, for `init --check`.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub rule: Rule,
    /// The value a workload has when it leaves the key out (its default), if it has one.
    pub implied: Option<Value>,
}

impl Found {
    pub fn equal() -> Found {
        Found {
            rule: Rule::Equal,
            implied: None,
        }
    }

    pub fn present() -> Found {
        Found {
            rule: Rule::Present,
            implied: None,
        }
    }

    pub fn one_of(values: Vec<Value>) -> Found {
        Found {
            rule: Rule::OneOf(values),
            implied: None,
        }
    }

    /// The workload's default for the key, when it leaves the key out.
    pub fn implied(mut self, value: impl Into<Value>) -> Found {
        self.implied = Some(value.into());
        self
    }
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key's path within its table (`["auth", "client_auth"]`).
    pub path: Vec<String>,
    pub value: Value,
    /// The comment on the line: what was discovered, or why this default.
    pub why: Option<String>,
    /// Set when the target told us this (`init --check` compares it).
    pub found: Option<Found>,
}

impl Entry {
    /// A chosen setting; `key` is dotted (`auth.kind`). Use [`Entry::at`] for a key segment that
    /// holds a dot or colon itself (a schema URN).
    pub fn new(key: &str, value: impl Into<Value>) -> Entry {
        Entry::at(key.split('.').map(str::to_string).collect(), value)
    }

    pub fn at(path: Vec<String>, value: impl Into<Value>) -> Entry {
        Entry {
            path,
            value: value.into(),
            why: None,
            found: None,
        }
    }

    pub fn why(mut self, why: impl Into<String>) -> Entry {
        self.why = Some(why.into());
        self
    }

    /// Marks the setting as what the target told us, judged by `found` in `init --check`.
    pub fn found(mut self, found: Found) -> Entry {
        self.found = Some(found);
        self
    }

    pub fn key(&self) -> String {
        self.path.iter().map(|s| key_segment(s)).collect::<Vec<_>>().join(".")
    }
}

/// A `[table]` (or one `[[array]]` element); the top level is the table named "".
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub array: bool,
    /// Comment lines above the header.
    pub comment: Vec<String>,
    pub entries: Vec<Entry>,
}

/// A built-in step the target cannot take, and why; journeys leave it out and `init --check`
/// names a workload journey that has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported {
    pub step: String,
    pub why: String,
}

/// A key the workload must not set, and why (a modify attribute the target refuses): never
/// written, named by `init --check` where a workload sets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Forbidden {
    pub table: String,
    pub path: Vec<String>,
    pub why: String,
}

/// The workload being written, and what was learnt on the way.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Comment lines at the top of the file.
    pub header: Vec<String>,
    sections: Vec<Section>,
    /// What discovery learnt, in order, for the report on stderr (and `--check`).
    pub heard: Vec<String>,
    /// Built-in steps the target cannot take.
    pub unsupported: Vec<Unsupported>,
    /// Keys a workload must not set.
    pub forbidden: Vec<Forbidden>,
}

impl Draft {
    pub fn new() -> Draft {
        Draft::default()
    }

    /// Sets `entry` in `[table]` ("" for the top level), replacing an entry with the same key.
    pub fn set(&mut self, table: &str, entry: Entry) -> &mut Draft {
        let section = self.table(table);
        match section.entries.iter_mut().find(|e| e.path == entry.path) {
            Some(e) => *e = entry,
            // Dotted keys of one table stay together (`auth.kind`, then `auth.client_auth`).
            None => match section
                .entries
                .iter()
                .rposition(|e| e.path.len() > 1 && e.path[0] == entry.path[0])
            {
                Some(i) if entry.path.len() > 1 => section.entries.insert(i + 1, entry),
                _ => section.entries.push(entry),
            },
        }
        self
    }

    /// Adds one `[[array]]` element (a journey, a probe service).
    pub fn push(&mut self, array: &str, comment: Vec<String>, entries: Vec<Entry>) -> &mut Draft {
        self.sections.push(Section {
            name: array.to_string(),
            array: true,
            comment,
            entries,
        });
        self
    }

    /// Comment lines above `[table]`'s header.
    pub fn comment(&mut self, table: &str, lines: &[&str]) -> &mut Draft {
        self.table(table).comment.extend(lines.iter().map(|l| l.to_string()));
        self
    }

    /// Something discovery learnt, for the report.
    pub fn heard(&mut self, line: impl Into<String>) -> &mut Draft {
        self.heard.push(line.into());
        self
    }

    /// A built-in step the target cannot take, and why.
    pub fn unsupported(&mut self, step: &str, why: impl Into<String>) -> &mut Draft {
        if !self.unsupported.iter().any(|u| u.step == step) {
            self.unsupported.push(Unsupported {
                step: step.to_string(),
                why: why.into(),
            });
        }
        self
    }

    /// A key the workload must not set (`path` within `[table]`), and why.
    pub fn forbid(&mut self, table: &str, path: Vec<String>, why: impl Into<String>) -> &mut Draft {
        self.forbidden.push(Forbidden {
            table: table.to_string(),
            path,
            why: why.into(),
        });
        self
    }

    pub fn supports(&self, step: &str) -> bool {
        !self.unsupported.iter().any(|u| u.step == step)
    }

    /// The value at dotted `key` in `[table]`, if set.
    pub fn get(&self, table: &str, key: &str) -> Option<&Value> {
        let path: Vec<&str> = key.split('.').collect();
        self.entry(table, &path).map(|e| &e.value)
    }

    pub fn entry(&self, table: &str, path: &[&str]) -> Option<&Entry> {
        self.sections
            .iter()
            .filter(|s| !s.array && s.name == table)
            .flat_map(|s| &s.entries)
            .find(|e| e.path.iter().map(String::as_str).eq(path.iter().copied()))
    }

    pub fn remove(&mut self, table: &str, key: &str) -> &mut Draft {
        let path: Vec<&str> = key.split('.').collect();
        for s in self.sections.iter_mut().filter(|s| !s.array && s.name == table) {
            s.entries
                .retain(|e| !e.path.iter().map(String::as_str).eq(path.iter().copied()));
        }
        self
    }

    /// Every table and array element, in the order they are written.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    fn table(&mut self, name: &str) -> &mut Section {
        let at = match self.sections.iter().position(|s| !s.array && s.name == name) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name: name.to_string(),
                    array: false,
                    comment: Vec::new(),
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[at]
    }

    /// The TOML text: the header, the top level, then each table and array element in order.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            comment_line(&mut out, line);
        }
        let top = self.sections.iter().filter(|s| !s.array && s.name.is_empty());
        let rest = self.sections.iter().filter(|s| s.array || !s.name.is_empty());
        for s in top.chain(rest) {
            if !s.name.is_empty() {
                out.push('\n');
                for line in &s.comment {
                    comment_line(&mut out, line);
                }
                let name = s.name.split('.').map(key_segment).collect::<Vec<_>>().join(".");
                match s.array {
                    true => writeln!(out, "[[{name}]]").unwrap(),
                    false => writeln!(out, "[{name}]").unwrap(),
                }
            } else {
                for line in &s.comment {
                    comment_line(&mut out, line);
                }
            }
            for e in &s.entries {
                entry_line(&mut out, e);
            }
        }
        out
    }
}

/// Longest line the comment goes beside its setting; past it, the comment goes above.
const WIDTH: usize = 100;

fn entry_line(out: &mut String, e: &Entry) {
    let line = format!("{} = {}", e.key(), e.value);
    match &e.why {
        Some(why) if line.chars().count() + why.chars().count() + 4 <= WIDTH => {
            writeln!(out, "{line}  # {}", one_line(why)).unwrap()
        }
        Some(why) => {
            comment_line(out, why);
            writeln!(out, "{line}").unwrap();
        }
        None => writeln!(out, "{line}").unwrap(),
    }
}

fn comment_line(out: &mut String, text: &str) {
    for line in one_line(text).split('\n') {
        match line.is_empty() {
            true => out.push_str("#\n"),
            false => writeln!(out, "# {line}").unwrap(),
        }
    }
}

/// A comment's text with every control character but newline made visible, so that nothing a
/// target answered can end the comment and write a setting of its own.
fn one_line(text: &str) -> String {
    crate::redact::line(text).replace("\r", "")
}

/// A key segment, quoted unless it is bare (letters, digits, `_` and `-`).
fn key_segment(s: &str) -> String {
    let bare = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        return s.to_string();
    }
    // Always a one-line basic string, every quote, backslash and control character escaped
    // (`toml`'s value form may choose a multi-line string, which TOML refuses as a key).
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_toml_that_reads_back_the_same() {
        let mut d = Draft::new();
        d.header.push("written by provbench init".into());
        d.set("", Entry::new("name", "idp").why("the target's host"));
        d.set(
            "target",
            Entry::new("auth.client_auth", "basic")
                .why("the token endpoint takes client_secret_basic only")
                .found(Found::equal().implied("basic")),
        );
        d.set("target", Entry::new("auth.kind", "oauth2-client-credentials"));
        d.set(
            "users",
            Entry::at(
                vec![
                    "modify".into(),
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".into(),
                ],
                "Dept {seq}",
            ),
        );
        d.push("journey", vec!["the lifecycle".into()], vec![Entry::new("name", "a")]);
        d.push("journey", vec![], vec![Entry::new("name", "b")]);
        let text = d.render();
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t["name"].as_str(), Some("idp"));
        assert_eq!(t["target"]["auth"]["client_auth"].as_str(), Some("basic"));
        assert_eq!(
            t["users"]["modify"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"].as_str(),
            Some("Dept {seq}")
        );
        assert_eq!(t["journey"].as_array().unwrap().len(), 2);
        assert!(
            text.contains("# the token endpoint takes client_secret_basic only"),
            "{text}"
        );
    }

    #[test]
    fn a_comment_cannot_write_a_setting() {
        let mut d = Draft::new();
        d.set(
            "target",
            Entry::new("timeout", "10s").why("answered\nkeep_alive = false\r\n[x]"),
        );
        d.heard("x");
        let text = d.render();
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert!(t["target"].get("keep_alive").is_none(), "{text}");
        assert!(t.get("x").is_none(), "{text}");
    }

    #[test]
    fn dotted_keys_of_one_table_stay_together() {
        let mut d = Draft::new();
        d.set("target", Entry::new("auth.kind", "bearer"));
        d.set("target", Entry::new("timeout", "10s"));
        d.set("target", Entry::new("auth.token_env", "T"));
        let keys: Vec<String> = d.sections()[0].entries.iter().map(Entry::key).collect();
        assert_eq!(keys, ["auth.kind", "auth.token_env", "timeout"]);
    }

    #[test]
    fn any_key_is_one_key() {
        let names = [
            "a\nb",
            "q\"uote",
            "back\\slash",
            "'''x",
            "\"\"\"y",
            "tab\there",
            "\u{7f}del",
            "line\u{2028}sep",
            "urn:a.b:c",
            "",
        ];
        for name in names {
            let mut d = Draft::new();
            d.set("users", Entry::at(vec!["template".into(), name.into()], "v"));
            let text = d.render();
            let t: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{name:?}: {e}\n{text}"));
            let template = t["users"]["template"].as_table().unwrap();
            assert_eq!(template.keys().collect::<Vec<_>>(), [name], "{text}");
        }
    }

    #[test]
    fn set_replaces_the_same_key() {
        let mut d = Draft::new();
        d.set("load", Entry::new("admins", 2));
        d.set("load", Entry::new("admins", 4));
        assert_eq!(d.get("load", "admins"), Some(&Value::Integer(4)));
        assert_eq!(d.sections().len(), 1);
    }
}
