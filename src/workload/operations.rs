//! Custom operations (`[operations.NAME]`): requests the built-in SCIM steps do not cover (a
//! vendor's admin API, a dialect's PATCH, a discovery endpoint), usable as journey steps and
//! recorded as `api_latency{op=NAME}`. Each names its method, a path template, headers, a JSON
//! body template, the statuses that count as success, the values it extracts from the answer
//! for later steps, and the operation that undoes it at cleanup.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::downstream::HeaderValue;
use super::error::{Source, WorkloadError};
use super::template::Template;

/// Headers by which a request asks a server to read it as another method (lowercase).
pub const METHOD_OVERRIDES: &[&str] = &["x-http-method-override", "x-http-method", "x-method-override"];

/// Runtime names every custom operation may use: the journey's current user and group.
pub const RUNTIME: &[&str] = &["id", "user_name", "group_id"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationWire {
    pub method: Spanned<String>,
    /// Relative to the target's base URL, or absolute.
    pub path: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<HeaderValue>>,
    /// A JSON body (a TOML table or array), with placeholders in its strings.
    #[serde(default)]
    pub body: Option<Spanned<toml::Value>>,
    /// The statuses that count as success (default: any 2xx).
    #[serde(default)]
    pub expect: Option<Spanned<Vec<i64>>>,
    /// `name = "/json/pointer"`, `"header:Location"` or `"header:Location | last-segment"`.
    #[serde(default)]
    pub extract: BTreeMap<String, Spanned<String>>,
    /// The custom operation that undoes this one at cleanup, unless the journey runs it.
    #[serde(default)]
    pub cleanup: Option<Spanned<String>>,
    /// How the resource whose values this operation extracts is proven the run's before
    /// anything changes it (invariant 4).
    #[serde(default)]
    pub owns: Option<Spanned<OwnsWire>>,
}

/// `owns = { read = "/users/{vendor_id}", identity = "/username" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnsWire {
    /// A GET of the resource, named by a value this operation extracts.
    pub read: String,
    /// A JSON pointer to its identity in that read's answer.
    pub identity: String,
    /// A JSON pointer to its id in that answer (default `/id`, judged where present).
    #[serde(default)]
    pub id: Option<String>,
}

/// The proof that what an operation made is the run's: right after the operation, a GET of
/// `read` must answer a JSON document about what it read (its `id`) whose `identity` is a string
/// carrying the run's marker as a whole token (`ledger::RunId::marks`). Until then, nothing it
/// extracted may be used, and no cleanup of it is owed.
#[derive(Debug, Clone, PartialEq)]
pub struct Owns {
    pub read: Template,
    /// `read` as written, for messages.
    pub read_text: String,
    pub identity: String,
    /// The extracted value `read` names last in its path (not its query): the one it proves.
    pub proves: Vec<String>,
    /// Where the answer names the id read (`None`: `/id`, where present).
    pub id: Option<String>,
}

/// Where an extracted value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Extract {
    /// A JSON pointer into the answer's body (strings as they are, numbers as text).
    Pointer(String),
    /// A header of the answer; `last_segment` keeps what follows its last `/` (an id at the end
    /// of a `Location` URL).
    Header {
        name: ::http::HeaderName,
        last_segment: bool,
    },
}

impl Extract {
    fn parse(text: &str) -> Result<Extract, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("header:") {
            let (name, modifier) = match rest.split_once('|') {
                Some((n, m)) => (n.trim(), Some(m.trim())),
                None => (rest.trim(), None),
            };
            let last_segment = match modifier {
                None => false,
                Some("last-segment") => true,
                Some(other) => return Err(format!("`{other}`: the only modifier is `last-segment`")),
            };
            let name = ::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            return Ok(Extract::Header { name, last_segment });
        }
        if !text.starts_with('/') {
            return Err(format!(
                "`{text}`: a JSON pointer starts with `/` (e.g. `/id`, `/data/0/id`), a header with `header:` (e.g. `header:Location | last-segment`)"
            ));
        }
        let bytes = text.as_bytes();
        let bad_tilde = (0..bytes.len()).any(|i| bytes[i] == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')));
        if bad_tilde {
            return Err(format!("`{text}`: `~` in a JSON pointer must be `~0` or `~1`"));
        }
        Ok(Extract::Pointer(text.to_string()))
    }
}

/// A header of a custom operation: a template, or a value from the environment (a secret, read
/// when the run starts).
#[derive(Debug, Clone, PartialEq)]
pub enum OpHeader {
    Template(Template),
    Env(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub name: String,
    pub method: ::http::Method,
    pub path: Template,
    /// The path as written, for failure samples.
    pub path_text: String,
    pub headers: Vec<(::http::HeaderName, OpHeader)>,
    pub body: Option<Template>,
    /// Empty: any 2xx.
    pub expect: Vec<u16>,
    pub extract: Vec<(String, Extract)>,
    /// Index of the operation that undoes this one.
    pub cleanup: Option<usize>,
    pub owns: Option<Owns>,
}

impl Operation {
    pub fn accepts(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }

    /// Every runtime name its path, headers and body use.
    pub fn runtime_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.path.runtime_names().collect();
        for (_, h) in &self.headers {
            if let OpHeader::Template(t) = h {
                names.extend(t.runtime_names());
            }
        }
        if let Some(b) = &self.body {
            names.extend(b.runtime_names());
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Whether the request may change what it names (any method but GET, HEAD and OPTIONS, or
    /// any request with a method-override header): the one test of it, for `check_owners`, the
    /// journeys' validation (`journeys::check_custom_steps`) and the SCIM gate
    /// (`scim::own::before_custom_step`).
    pub fn changes(&self) -> bool {
        // A method-override header makes a GET whatever the server reads it as.
        let overridden = self
            .headers
            .iter()
            .any(|(name, _)| METHOD_OVERRIDES.contains(&name.as_str()));
        overridden
            || !matches!(
                self.method,
                ::http::Method::GET | ::http::Method::HEAD | ::http::Method::OPTIONS
            )
    }
}

/// A located conversion error: the span of the key at fault, and the message.
pub type Located = (Option<std::ops::Range<usize>>, String);

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Converts `[operations]`. `vars` are `[users] vars`; `builtin` says whether a name is a
/// built-in step's. Errors point at the key at fault.
pub fn from_wire(
    src: &Source,
    wires: BTreeMap<String, Spanned<OperationWire>>,
    vars: &BTreeMap<String, String>,
    builtin: &dyn Fn(&str) -> bool,
) -> Result<Vec<Operation>, WorkloadError> {
    convert(wires, vars, builtin).map_err(|(span, m)| src.error(span, m))
}

fn convert(
    wires: BTreeMap<String, Spanned<OperationWire>>,
    vars: &BTreeMap<String, String>,
    builtin: &dyn Fn(&str) -> bool,
) -> Result<Vec<Operation>, Located> {
    let names: Vec<String> = wires.keys().cloned().collect();
    let extracted: Vec<String> = wires
        .values()
        .flat_map(|w| w.get_ref().extract.keys().cloned())
        .collect();
    let runtime = |n: &str| RUNTIME.contains(&n) || extracted.iter().any(|e| e == n);
    let mut ops = Vec::new();
    let mut cleanup_spans = Vec::new();
    let mut spans = Vec::new();
    for (name, wire) in wires {
        let span = Some(wire.span());
        if !is_name(&name) {
            return Err((
                span,
                format!("operation `{name}`: names are lowercase letters, digits and `_`, starting with a letter"),
            ));
        }
        if builtin(&name) {
            return Err((
                span,
                format!("operation `{name}` has a built-in step's name: choose another"),
            ));
        }
        let w = wire.into_inner();
        let one = One {
            name: &name,
            vars,
            runtime: &runtime,
        };
        let (method, path, path_text) = one.request_line(&w)?;
        cleanup_spans.push(w.cleanup.as_ref().map(|c| c.span()));
        spans.push(span);
        let extract = one.extract(&w)?;
        ops.push(Operation {
            method,
            path,
            path_text,
            headers: one.headers(&w)?,
            body: one.body(&w)?,
            expect: one.expect(&w)?,
            owns: one.owns(&w, &extract)?,
            extract,
            cleanup: one.cleanup(&w, &names)?,
            name,
        });
    }
    check_cleanups(&ops, &cleanup_spans)?;
    check_owners(&ops, &spans)?;
    Ok(ops)
}

/// One operation being converted: its name (for messages) and the placeholders it may use.
struct One<'a> {
    name: &'a str,
    vars: &'a BTreeMap<String, String>,
    runtime: &'a dyn Fn(&str) -> bool,
}

impl One<'_> {
    /// An error at `span`, naming the operation.
    fn at(&self, span: std::ops::Range<usize>, m: String) -> Located {
        (Some(span), format!("operations.{}: {m}", self.name))
    }

    fn text(&self, t: &str, span: std::ops::Range<usize>, key: &str) -> Result<Template, Located> {
        Template::compile_text(t, self.vars, self.runtime).map_err(|m| self.at(span, format!("{key}: {m}")))
    }

    /// The method, and the path as a template and as written.
    fn request_line(&self, w: &OperationWire) -> Result<(::http::Method, Template, String), Located> {
        let method =
            ::http::Method::from_bytes(w.method.get_ref().trim().to_ascii_uppercase().as_bytes()).map_err(|_| {
                self.at(
                    w.method.span(),
                    format!("`{}` is not an HTTP method", w.method.get_ref()),
                )
            })?;
        let path_text = w.path.get_ref().trim();
        if !(path_text.starts_with('/') || path_text.starts_with("http://") || path_text.starts_with("https://")) {
            return Err(self.at(
                w.path.span(),
                format!(
                    "`path` starts with `/` (relative to the target) or is an absolute http(s) URL, got `{path_text}`"
                ),
            ));
        }
        let path = self.text(path_text, w.path.span(), "path")?;
        Ok((method, path, path_text.to_string()))
    }

    fn headers(&self, w: &OperationWire) -> Result<Vec<(::http::HeaderName, OpHeader)>, Located> {
        let mut headers = Vec::new();
        for (key, value) in &w.headers {
            let header = ::http::HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| self.at(value.span(), format!("`{key}` is not a header name")))?;
            let h = match value.get_ref() {
                HeaderValue::Literal(v) => OpHeader::Template(self.text(v, value.span(), &format!("headers.{key}"))?),
                HeaderValue::Env { env } => OpHeader::Env(env.clone()),
            };
            headers.push((header, h));
        }
        Ok(headers)
    }

    fn body(&self, w: &OperationWire) -> Result<Option<Template>, Located> {
        let Some(b) = &w.body else { return Ok(None) };
        let json = serde_json::to_value(b.get_ref()).map_err(|e| self.at(b.span(), format!("body: {e}")))?;
        Template::compile_with(&json, self.vars, self.runtime)
            .map(Some)
            .map_err(|m| self.at(b.span(), format!("body: {m}")))
    }

    fn expect(&self, w: &OperationWire) -> Result<Vec<u16>, Located> {
        let Some(list) = &w.expect else { return Ok(Vec::new()) };
        if list.get_ref().is_empty() {
            return Err(self.at(
                list.span(),
                "`expect` is empty: list the statuses that count as success, e.g. [200, 201]".into(),
            ));
        }
        list.get_ref()
            .iter()
            .map(|s| {
                u16::try_from(*s)
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| self.at(list.span(), format!("`expect`: {s} is not an HTTP status (100 to 599)")))
            })
            .collect()
    }

    fn extract(&self, w: &OperationWire) -> Result<Vec<(String, Extract)>, Located> {
        let mut extract = Vec::new();
        for (var, from) in &w.extract {
            if !is_name(var) {
                return Err(self.at(
                    from.span(),
                    format!("extract `{var}`: names are lowercase letters, digits and `_`"),
                ));
            }
            if ["run_id", "seq", "first", "last", "admin"].contains(&var.as_str()) || self.vars.contains_key(var) {
                return Err(self.at(
                    from.span(),
                    format!("extract `{var}`: that name is already a placeholder"),
                ));
            }
            // `{id}`, `{user_name}` and `{group_id}` always name the journey's user and group,
            // which a SCIM journey reads back before changing them: a value extracted under one
            // of those names would stand in for what was proven.
            if ["id", "user_name", "group_id"].contains(&var.as_str()) {
                return Err(self.at(
                    from.span(),
                    format!("extract `{var}`: `{{{var}}}` is the journey's own user or group; name the extracted value otherwise (e.g. `vendor_{var}`)"),
                ));
            }
            let e =
                Extract::parse(from.get_ref()).map_err(|m| self.at(from.span(), format!("extract `{var}`: {m}")))?;
            extract.push((var.clone(), e));
        }
        Ok(extract)
    }

    /// `owns`: a read that names a value this operation extracts, and a JSON pointer.
    fn owns(&self, w: &OperationWire, extract: &[(String, Extract)]) -> Result<Option<Owns>, Located> {
        let Some(o) = &w.owns else { return Ok(None) };
        let (span, o) = (o.span(), o.get_ref());
        let read_text = o.read.trim();
        if !read_text.starts_with('/') {
            return Err(self.at(
                span,
                format!("owns.read: a path relative to the target, starting with `/`, got `{read_text}`"),
            ));
        }
        let read = self.text(read_text, span.clone(), "owns.read")?;
        // Only a value in the path names the resource read (a server may ignore a query), and
        // only its last one: `/orgs/{org}/members/{mid}` reads the member, which many APIs
        // find by its own id whatever the parent segment says.
        let path = read_text.split(['?', '#']).next().unwrap_or_default();
        let proves: Vec<String> = extract
            .iter()
            .filter_map(|(v, _)| path.rfind(&format!("{{{v}}}")).map(|at| (at, v.clone())))
            .max()
            .map(|(_, v)| v)
            .into_iter()
            .collect();
        if proves.is_empty() {
            return Err(self.at(
                span,
                format!("owns.read `{read_text}` names none of the values this operation extracts in its path: it must read what it made"),
            ));
        }
        let id = match o.id.as_deref().map(Extract::parse) {
            None => None,
            Some(Ok(Extract::Pointer(p))) => Some(p),
            Some(_) => {
                return Err(self.at(
                    span,
                    format!(
                        "owns.id: a JSON pointer into the read's answer (e.g. `/id`), got `{}`",
                        o.id.as_deref().unwrap_or_default()
                    ),
                ));
            }
        };
        match Extract::parse(&o.identity) {
            Ok(Extract::Pointer(identity)) => Ok(Some(Owns {
                read,
                read_text: read_text.to_string(),
                identity,
                proves,
                id,
            })),
            _ => Err(self.at(
                span,
                format!(
                    "owns.identity: a JSON pointer into the read's answer (e.g. `/username`), got `{}`",
                    o.identity
                ),
            )),
        }
    }

    /// The index, among `names`, of the operation that undoes this one.
    fn cleanup(&self, w: &OperationWire, names: &[String]) -> Result<Option<usize>, Located> {
        let Some(c) = &w.cleanup else { return Ok(None) };
        names.iter().position(|n| n == c.get_ref()).map(Some).ok_or_else(|| {
            let known: Vec<&str> = names.iter().map(String::as_str).collect();
            let hint = super::error::did_you_mean(c.get_ref(), &known)
                .map(|k| format!(": did you mean `{k}`?"))
                .unwrap_or_default();
            self.at(
                c.span(),
                format!("cleanup `{}` is not an operation of this workload{hint}", c.get_ref()),
            )
        })
    }
}

/// A cleanup operation can use only what its creator knew: the creator's extracted values and
/// the current user's `id` and `user_name`. `spans`: where each operation names its cleanup.
fn check_cleanups(ops: &[Operation], spans: &[Option<std::ops::Range<usize>>]) -> Result<(), Located> {
    for (op, span) in ops.iter().zip(spans) {
        let Some(undo) = op.cleanup.map(|i| &ops[i]) else {
            continue;
        };
        if undo.name == op.name {
            return Err((
                span.clone(),
                format!("operations.{}: an operation cannot be its own cleanup", op.name),
            ));
        }
        for n in undo.runtime_names() {
            let known = op.extract.iter().any(|(v, _)| v == n) || n == "id" || n == "user_name";
            if !known {
                return Err((
                    span.clone(),
                    format!(
                        "operations.{}: its cleanup `{}` uses `{{{n}}}`, which `{}` does not extract",
                        op.name, undo.name, op.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Invariant 4 for custom operations: a request that may change what it names (a later step,
/// or a cleanup), naming in its path or body a value an operation extracts, is allowed only when
/// every operation extracting that value proves it the run's (`owns`). Nothing else decides
/// whether an extracted value may be changed or deleted. `spans`: each operation's.
fn check_owners(ops: &[Operation], spans: &[Option<std::ops::Range<usize>>]) -> Result<(), Located> {
    for (op, span) in ops.iter().zip(spans).filter(|(op, _)| op.changes()) {
        // Headers too: an API may select the resource by one (`X-User-Id`), and the SCIM gate
        // (`scim::own::before_custom_step`) counts them as well.
        for n in op.runtime_names() {
            // Its maker's read must name this very value: a read of another value it extracts
            // proves nothing about this one.
            let proves = |o: &Operation| o.owns.as_ref().is_some_and(|w| w.proves.iter().any(|r| r == n));
            let unproven = ops.iter().find(|o| !proves(o) && o.extract.iter().any(|(v, _)| v == n));
            if let Some(maker) = unproven {
                return Err((
                    span.clone(),
                    format!(
                        "operations.{}: a {} of `{{{n}}}`, which `{}` extracts without proving it the run's: give `{}` an `owns = {{ read = \"/path/{{{n}}}\", identity = \"/json/pointer/to/its/name\" }}` whose read names `{{{n}}}` (what it made is changed or deleted only once that read shows the run's marker in its name: Safety, invariant 4)",
                        op.name, op.method, maker.name, maker.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(text: &str) -> Result<Vec<Operation>, String> {
        #[derive(Deserialize)]
        struct W {
            operations: BTreeMap<String, Spanned<OperationWire>>,
        }
        let w: W = toml::from_str(text).map_err(|e| e.to_string())?;
        convert(w.operations, &BTreeMap::new(), &|n| n == "create_user").map_err(|(_, m)| m)
    }

    #[test]
    fn a_vendor_create_with_its_cleanup() {
        let o = ops(r#"
            [operations.kc_create]
            method = "post"
            path = "/users"
            headers = { Content-Type = "application/json", X-Key = { env = "KEY" } }
            body = { username = "{run_id}-{seq}", enabled = true }
            expect = [201]
            extract = { kc_id = "header:Location | last-segment" }
            cleanup = "kc_delete"
            owns = { read = "/users/{kc_id}", identity = "/username" }
            [operations.kc_delete]
            method = "DELETE"
            path = "/users/{kc_id}"
            expect = [204, 404]
        "#)
        .unwrap();
        let create = o.iter().find(|o| o.name == "kc_create").unwrap();
        assert_eq!(create.method, ::http::Method::POST);
        assert_eq!(create.cleanup.map(|i| o[i].name.as_str()), Some("kc_delete"));
        assert_eq!(
            create.extract[0].1,
            Extract::Header {
                name: ::http::header::LOCATION,
                last_segment: true
            }
        );
        assert!(create.accepts(201) && !create.accepts(200));
        assert_eq!(
            o.iter().find(|o| o.name == "kc_delete").unwrap().runtime_names(),
            vec!["kc_id"]
        );
    }

    /// Invariant 4: a request that may change what it names in its path or body takes an
    /// extracted value only from operations that prove it the run's (`owns`); reads, and values
    /// in headers (tokens, versions), need no proof.
    #[test]
    fn an_extracted_value_is_changed_only_when_its_maker_proves_it() {
        let make = |owns: &str| {
            format!(
                "[operations.mk]\nmethod = \"POST\"\npath = \"/things\"\nextract = {{ thing = \"/id\", etag = \"header:ETag\" }}\n{owns}\n"
            )
        };
        let owns = "owns = { read = \"/things/{thing}\", identity = \"/name\" }";
        for (user, ok) in [
            ("method = \"DELETE\"\npath = \"/things/{thing}\"", false),
            (
                "method = \"PUT\"\npath = \"/x\"\nbody = { target = \"{thing}\" }",
                false,
            ),
            ("method = \"POST\"\npath = \"/groups/g/members/{thing}\"", false),
            ("method = \"GET\"\npath = \"/things/{thing}\"", true),
            (
                "method = \"DELETE\"\npath = \"/users\"\nheaders = { X-User-Id = \"{thing}\" }",
                false,
            ),
            (
                "method = \"GET\"\npath = \"/u/{thing}\"\nheaders = { X-HTTP-Method-Override = \"DELETE\" }",
                false,
            ),
        ] {
            let text = |o: &str| format!("{}[operations.use]\n{user}\n", make(o));
            let unproven = ops(&text(""));
            assert_eq!(unproven.is_ok(), ok, "{user}: {unproven:?}");
            if !ok {
                let err = unproven.unwrap_err();
                assert!(
                    err.contains("`mk` extracts without proving it") && err.contains("owns = {"),
                    "{err}"
                );
            }
            let proven = ops(&text(owns)).unwrap();
            let mk = proven.iter().find(|o| o.name == "mk").unwrap();
            assert_eq!(mk.owns.as_ref().map(|o| o.identity.as_str()), Some("/name"));
        }
        // Only a value in the read's path is proven: a server may ignore a query.
        let err = ops(&format!(
            "{}[operations.use]\nmethod = \"DELETE\"\npath = \"/things/{{thing}}\"\n",
            make("owns = { read = \"/things?id={thing}\", identity = \"/0/name\" }")
        ))
        .unwrap_err();
        assert!(err.contains("in its path"), "{err}");
        // The read must name the value changed: proving `thing` says nothing of `other`.
        let err = ops(
            "[operations.mk]\nmethod = \"POST\"\npath = \"/things\"\nextract = { thing = \"/id\", other = \"/other_id\" }\nowns = { read = \"/things/{thing}\", identity = \"/name\" }\n[operations.use]\nmethod = \"DELETE\"\npath = \"/others/{other}\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("a DELETE of `{other}`") && err.contains("whose read names `{other}`"),
            "{err}"
        );
        // A cleanup hook is a change like any other.
        let err = ops(&format!(
            "{}cleanup = \"rm\"\n[operations.rm]\nmethod = \"DELETE\"\npath = \"/things/{{thing}}\"\n",
            make("")
        ))
        .unwrap_err();
        assert!(err.contains("operations.rm: a DELETE of `{thing}`"), "{err}");
    }

    #[test]
    fn mistakes_are_named() {
        let base = "[operations.x]\nmethod = \"GET\"\n";
        for (tail, needle) in [
            ("path = \"/a/{nope}\"", "unknown placeholder `{nope}`"),
            ("path = \"a\"", "starts with `/`"),
            ("path = \"/a\"\nexpect = [2000]", "2000 is not an HTTP status"),
            ("path = \"/a\"\nexpect = []", "`expect` is empty"),
            (
                "path = \"/a\"\nextract = { v = \"id\" }",
                "a JSON pointer starts with `/`",
            ),
            (
                "path = \"/a\"\nextract = { v = \"header:Location | first\" }",
                "only modifier",
            ),
            ("path = \"/a\"\ncleanup = \"y\"", "not an operation"),
            ("path = \"/a\"\nbogus = 1", "unknown field"),
        ] {
            let err = ops(&format!("{base}{tail}")).unwrap_err();
            assert!(err.contains(needle), "{tail}: {err}");
        }
        let err = ops("[operations.create_user]\nmethod = \"GET\"\npath = \"/a\"").unwrap_err();
        assert!(err.contains("built-in"), "{err}");
        for (tail, needle) in [
            ("owns = { read = \"/a/{v}\" }", "missing field `identity`"),
            (
                "owns = { read = \"/a\", identity = \"/n\" }",
                "names none of the values",
            ),
            ("owns = { read = \"a/{v}\", identity = \"/n\" }", "starting with `/`"),
            ("owns = { read = \"/a/{v}\", identity = \"n\" }", "owns.identity"),
        ] {
            let err = ops(&format!("{base}path = \"/a\"\nextract = {{ v = \"/id\" }}\n{tail}")).unwrap_err();
            assert!(err.contains(needle), "{tail}: {err}");
        }
        let err = ops("[operations.a]\nmethod = \"POST\"\npath = \"/a\"\ncleanup = \"b\"\n[operations.b]\nmethod = \"DELETE\"\npath = \"/a/{other}\"\n[operations.c]\nmethod = \"GET\"\npath = \"/\"\nextract = { other = \"/x\" }").unwrap_err();
        assert!(err.contains("does not extract"), "{err}");
    }
}
