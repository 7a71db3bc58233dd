//! Payload templates: a JSON body with `{placeholders}` compiled once into literal JSON fragments
//! and slots, then rendered into a reusable buffer per request (no JSON tree, no re-parsing).
//!
//! Placeholders: `{run_id}`, `{seq}` (unique per rendered payload in a run), `{first}`, `{last}`,
//! `{admin}` (virtual-admin index), and any name from `[users] vars`. Custom operations also
//! allow runtime names (`{id}`, `{user_name}`, values a step extracted), looked up at render
//! time. The same compiler serves text templates (a path, a header value), whose values are
//! escaped for where they land.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Barbara",
    "Edsger",
    "Frances",
    "Donald",
    "Radia",
    "Ken",
    "Margaret",
    "Dennis",
    "Hedy",
    "Linus",
    "Sophie",
    "Tim",
    "Katherine",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Allen",
    "Knuth",
    "Perlman",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Lamarr",
    "Torvalds",
    "Wilson",
    "Berners-Lee",
    "Johnson",
];

#[derive(Debug, Clone, PartialEq)]
enum Slot {
    RunId,
    Seq,
    First,
    Last,
    Admin,
    Var(String),
    /// Known only while a journey runs (`{id}`, an extracted value).
    Runtime(String),
}

/// How a value is written into its place in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON string.
    Json,
    /// Percent-encoded (RFC 3986 unreserved characters pass): a path segment or query value.
    Url,
    /// As it is (a header value; control characters are refused when the header is built).
    Raw,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// Already valid JSON text.
    Literal(String),
    /// A value substituted inside a JSON string, escaped on the way in.
    Slot(Slot),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
    vars: BTreeMap<String, String>,
}

/// Per-render values.
pub struct Vars<'a> {
    pub run_id: &'a str,
    pub seq: u64,
    pub admin: usize,
}

impl Template {
    /// Compiles `value`; unknown placeholders are an error naming them.
    pub fn compile(value: &Value, vars: &BTreeMap<String, String>) -> Result<Template, String> {
        Self::compile_with(value, vars, &|_| false)
    }

    /// As [`Template::compile`], also taking the runtime names `runtime` accepts.
    pub fn compile_with(
        value: &Value,
        vars: &BTreeMap<String, String>,
        runtime: &dyn Fn(&str) -> bool,
    ) -> Result<Template, String> {
        let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
        Self::compile_text(&text, vars, runtime)
    }

    /// A text template (a path, a header value): `{name}` slots in plain text.
    pub fn compile_text(
        text: &str,
        vars: &BTreeMap<String, String>,
        runtime: &dyn Fn(&str) -> bool,
    ) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        while let Some(open) = rest.find('{') {
            let (before, after) = rest.split_at(open);
            literal.push_str(before);
            let close = after.find('}');
            let name = close.map(|c| &after[1..c]);
            match name.filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
                Some(name) => {
                    let slot = match name {
                        "run_id" => Slot::RunId,
                        "seq" => Slot::Seq,
                        "first" => Slot::First,
                        "last" => Slot::Last,
                        "admin" => Slot::Admin,
                        other if vars.contains_key(other) => Slot::Var(other.to_string()),
                        other if runtime(other) => Slot::Runtime(other.to_string()),
                        other => {
                            return Err(format!(
                                "unknown placeholder `{{{other}}}` (known: run_id, seq, first, last, admin{})",
                                vars.keys().map(|k| format!(", {k}")).collect::<String>()
                            ));
                        }
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Slot(slot));
                    rest = &after[name.len() + 2..];
                }
                None => {
                    // A brace that is JSON structure, not a placeholder.
                    literal.push('{');
                    rest = &after[1..];
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template {
            pieces,
            vars: vars.clone(),
        })
    }

    /// True when some string in the template contains `{name}`.
    pub fn uses(&self, name: &str) -> bool {
        self.pieces.iter().any(|p| match (p, name) {
            (Piece::Slot(Slot::RunId), "run_id") | (Piece::Slot(Slot::Seq), "seq") => true,
            (Piece::Slot(Slot::Var(v)), n) => v == n,
            _ => false,
        })
    }

    /// True when every rendering is the same text: no placeholder that changes from one render
    /// to the next (`{run_id}`, `{seq}`, `{first}`, `{last}`, `{admin}`, a runtime name);
    /// `[users] vars` are fixed for the run. What is fixed can be rendered once.
    pub fn is_fixed(&self) -> bool {
        self.pieces
            .iter()
            .all(|p| matches!(p, Piece::Literal(_) | Piece::Slot(Slot::Var(_))))
    }

    /// The runtime names the template uses, in order.
    pub fn runtime_names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Slot(Slot::Runtime(n)) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Renders into `out` (cleared first), reusing its allocation.
    pub fn render_into(&self, vars: &Vars, out: &mut String) {
        // Compiled without runtime names, so nothing can be missing.
        let _ = self.render_with(vars, &|_| None, Escape::Json, out);
    }

    /// Renders into `out` (cleared first), runtime names from `lookup`, values escaped by
    /// `escape`; the error names a runtime value that is not there.
    pub fn render_with<'v>(
        &self,
        vars: &Vars,
        lookup: &dyn Fn(&str) -> Option<&'v str>,
        escape: Escape,
        out: &mut String,
    ) -> Result<(), String> {
        out.clear();
        // In a URL, a runtime value (one a target answered) fills exactly one path segment or
        // is refused (threat-model invariant 1): `..`, `/`, `?` never reshape the request.
        let put_runtime = |s: &str, out: &mut String| -> Result<(), String> {
            match escape {
                Escape::Url => {
                    let seg = crate::http::url::segment(s)
                        .map_err(|why| format!("the value {s:?} cannot be part of a URL: {why}"))?;
                    out.push_str(seg.as_str());
                }
                Escape::Json => escape_into(s, out),
                Escape::Raw => out.push_str(s),
            }
            Ok(())
        };
        let put = |s: &str, out: &mut String| match escape {
            Escape::Json => escape_into(s, out),
            Escape::Url => out.push_str(&crate::http::client::encode_query(s)),
            Escape::Raw => out.push_str(s),
        };
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Slot(slot) => match slot {
                    Slot::RunId => put(vars.run_id, out),
                    Slot::Seq => {
                        let _ = write!(out, "{}", vars.seq);
                    }
                    Slot::First => out.push_str(FIRST[(vars.seq % FIRST.len() as u64) as usize]),
                    Slot::Last => out.push_str(LAST[((vars.seq / FIRST.len() as u64) % LAST.len() as u64) as usize]),
                    Slot::Admin => {
                        let _ = write!(out, "{}", vars.admin);
                    }
                    Slot::Var(name) => put(self.vars.get(name).map(String::as_str).unwrap_or(""), out),
                    Slot::Runtime(name) => match lookup(name) {
                        Some(v) => put_runtime(v, out)?,
                        None => return Err(format!("no value for `{{{name}}}` yet")),
                    },
                },
            }
        }
        Ok(())
    }

    pub fn render(&self, vars: &Vars) -> String {
        let mut s = String::new();
        self.render_into(vars, &mut s);
        s
    }
}

/// Appends `s` escaped for the inside of a JSON string.
fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Every `{run_id}` in `template` is bounded by characters that cannot extend the run id as a
/// token once rendered: not a letter or digit, and not another placeholder (cleanup matches the
/// run id as a whole token).
pub fn marker_stands_alone(template: &str) -> bool {
    let bytes = template.as_bytes();
    let apart =
        |b: Option<&u8>, placeholder_edge: u8| b.is_none_or(|b| !b.is_ascii_alphanumeric() && *b != placeholder_edge);
    template.match_indices("{run_id}").all(|(at, m)| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i));
        apart(before, b'}') && apart(bytes.get(at + m.len()), b'{')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An extracted `..` (from `Location: …/users/..`) once turned a cleanup hook into a DELETE
    /// of the realm: in a URL a runtime value is one path segment or the step fails.
    #[test]
    fn a_runtime_value_in_a_url_is_one_segment_or_refused() {
        let t = Template::compile_text("/admin/realms/acme/users/{uid}", &BTreeMap::new(), &|n| n == "uid").unwrap();
        let vars = Vars {
            run_id: "pb-1",
            seq: 1,
            admin: 0,
        };
        let mut out = String::new();
        for bad in ["..", ".", "", "a/b", "%2e%2e", "x?y=1", "a%2Fb"] {
            let r = t.render_with(&vars, &|_| Some(bad), Escape::Url, &mut out);
            assert!(r.is_err(), "{bad:?} rendered as {out}");
        }
        t.render_with(&vars, &|_| Some("42 x"), Escape::Url, &mut out).unwrap();
        assert_eq!(out, "/admin/realms/acme/users/42%20x");
    }

    #[test]
    fn renders_valid_json_with_escaped_values() {
        let mut vars = BTreeMap::new();
        vars.insert("dept".to_string(), "R\"&D".to_string());
        let t = Template::compile(
            &json!({"userName": "{run_id}-{seq}@example.test", "name": {"givenName": "{first}", "familyName": "{last}"},
                    "title": "{dept}", "literal": "{not a placeholder}"}),
            &vars,
        )
        .unwrap();
        let out = t.render(&Vars {
            run_id: "pb-1",
            seq: 17,
            admin: 3,
        });
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["userName"], "pb-1-17@example.test");
        assert_eq!(v["title"], "R\"&D");
        assert_eq!(v["literal"], "{not a placeholder}");
        assert_eq!(v["name"]["givenName"], FIRST[1]);
        assert!(t.uses("run_id") && t.uses("seq") && !t.uses("admin"));
    }

    #[test]
    fn unknown_placeholders_are_named() {
        let err = Template::compile(&json!({"userName": "{runid}"}), &BTreeMap::new()).unwrap_err();
        assert!(err.contains("`{runid}`"), "{err}");
    }

    #[test]
    fn render_into_reuses_the_buffer() {
        let t = Template::compile(&json!({"a": "{seq}"}), &BTreeMap::new()).unwrap();
        let mut buf = String::with_capacity(64);
        let cap = buf.capacity();
        for seq in 0..100 {
            t.render_into(
                &Vars {
                    run_id: "r",
                    seq,
                    admin: 0,
                },
                &mut buf,
            );
        }
        assert_eq!(buf, r#"{"a":"99"}"#);
        assert_eq!(buf.capacity(), cap);
    }
}
