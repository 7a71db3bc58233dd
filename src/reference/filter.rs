//! SCIM filter expressions (RFC 7644 §3.4.2.2): a parser into [`Filter`] and its evaluation
//! against a JSON resource. Also parses the attribute paths that PATCH uses.
//!
//! Supported: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (...)`, grouping, value paths
//! (`emails[type eq "work"]`), sub-attributes (`name.givenName`, `emails.value`) and schema-URN
//! prefixed attributes. Attribute names match case-insensitively, as do string values except for
//! the case-exact attributes `id` and `externalId`.

use serde_json::Value;

use super::error::ScimError;

/// `urn:...:attr.sub`: the schema prefix is kept only for extension schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CmpOp, Value),
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`.
    ValuePath(AttrPath, Box<Filter>),
}

pub const CORE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

impl AttrPath {
    /// Parses `attr`, `attr.sub` or `urn:...:attr[.sub]`.
    pub fn parse(text: &str) -> Result<AttrPath, String> {
        let (schema, rest) = if text.to_ascii_lowercase().starts_with("urn:") {
            // The attribute follows the last ':' of the URN.
            match text.rfind(':') {
                Some(i) => (Some(&text[..i]), &text[i + 1..]),
                None => return Err(format!("bad attribute path `{text}`")),
            }
        } else {
            (None, text)
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
        };
        if !valid(attr) || sub.is_some_and(|s| !valid(s)) {
            return Err(format!("bad attribute path `{text}`"));
        }
        let schema = schema
            .filter(|s| !s.eq_ignore_ascii_case(CORE_USER_SCHEMA) && !s.eq_ignore_ascii_case(CORE_GROUP_SCHEMA))
            .map(str::to_string);
        Ok(AttrPath {
            schema,
            attr: attr.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The top-level object that holds `attr` (the resource, or its extension-schema object).
    pub fn container<'a>(&self, resource: &'a Value) -> Option<&'a Value> {
        match &self.schema {
            None => Some(resource),
            Some(urn) => get_ci(resource, urn),
        }
    }

    fn case_exact(&self) -> bool {
        self.sub.is_none() && (self.attr == "id" || self.attr.eq_ignore_ascii_case("externalId"))
    }

    /// Every leaf value the path reaches in `resource` (multi-valued attributes flattened).
    fn values<'a>(&self, resource: &'a Value, out: &mut Vec<&'a Value>) {
        let Some(v) = self.container(resource).and_then(|c| get_ci(c, &self.attr)) else {
            return;
        };
        let mut push = |v: &'a Value| match &self.sub {
            None => out.push(v),
            Some(sub) => {
                if let Some(s) = get_ci(v, sub) {
                    out.push(s)
                }
            }
        };
        match v {
            Value::Array(items) => items.iter().for_each(&mut push),
            other => push(other),
        }
    }
}

/// Looks a key up in an object, ignoring ASCII case (SCIM attribute names are case-insensitive).
pub fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// The key as spelled in the object, if present under any case.
pub fn key_ci(v: &Value, key: &str) -> Option<String> {
    let obj = v.as_object()?;
    if obj.contains_key(key) {
        return Some(key.to_string());
    }
    obj.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        let tokens = tokenize(text).map_err(ScimError::invalid_filter)?;
        let mut p = Parser { tokens, pos: 0 };
        let f = p.or_expr().map_err(ScimError::invalid_filter)?;
        if p.pos != p.tokens.len() {
            return Err(ScimError::invalid_filter(format!(
                "unexpected `{}` in filter `{text}`",
                p.tokens[p.pos].text()
            )));
        }
        Ok(f)
    }

    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::Not(f) => !f.matches(resource),
            Filter::Present(path) => {
                let mut vals = Vec::new();
                path.values(resource, &mut vals);
                vals.iter().any(|v| match v {
                    Value::Null => false,
                    Value::String(s) => !s.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                    _ => true,
                })
            }
            Filter::Compare(path, op, expected) => {
                let mut vals = Vec::new();
                path.values(resource, &mut vals);
                if vals.is_empty() {
                    // `attr ne x` holds for a resource without attr; every other operator fails.
                    return *op == CmpOp::Ne && !expected.is_null();
                }
                let exact = path.case_exact();
                match op {
                    CmpOp::Ne => vals.iter().all(|v| !compare(v, CmpOp::Eq, expected, exact)),
                    _ => vals.iter().any(|v| compare(v, *op, expected, exact)),
                }
            }
            Filter::ValuePath(path, inner) => {
                let Some(v) = path.container(resource).and_then(|c| get_ci(c, &path.attr)) else {
                    return false;
                };
                match v {
                    Value::Array(items) => items.iter().any(|item| inner.matches(item)),
                    other => inner.matches(other),
                }
            }
        }
    }

    /// The values when the filter is only `attr eq "value"` terms on the given top-level
    /// attribute joined by `or` (one term included), so that an index can say where to look.
    pub fn eq_any_on(&self, attr: &str) -> Option<Vec<&str>> {
        let mut values = Vec::new();
        self.push_eq_on(attr, &mut values).then_some(values)
    }

    fn push_eq_on<'a>(&'a self, attr: &str, values: &mut Vec<&'a str>) -> bool {
        match self {
            Filter::Or(a, b) => a.push_eq_on(attr, values) && b.push_eq_on(attr, values),
            f => f.as_eq_on(attr).map(|v| values.push(v)).is_some(),
        }
    }

    /// `Some(value)` when the filter is exactly `attr eq "value"` on the given top-level attribute,
    /// so the store can answer it from an index.
    pub fn as_eq_on(&self, attr: &str) -> Option<&str> {
        match self {
            Filter::Compare(p, CmpOp::Eq, Value::String(s))
                if p.schema.is_none() && p.sub.is_none() && p.attr.eq_ignore_ascii_case(attr) =>
            {
                Some(s)
            }
            _ => None,
        }
    }
}

fn compare(actual: &Value, op: CmpOp, expected: &Value, case_exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (actual, expected) {
        (Value::String(a), Value::String(b)) => {
            if case_exact {
                Some(a.as_str().cmp(b.as_str()))
            } else {
                Some(a.to_lowercase().cmp(&b.to_lowercase()))
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        // Booleans sent as strings ("True"), as some clients do.
        (Value::Bool(a), Value::String(b)) => b.to_lowercase().parse::<bool>().ok().map(|b| a.cmp(&b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    let text = |f: fn(&str, &str) -> bool| match (actual, expected) {
        (Value::String(a), Value::String(b)) if case_exact => f(a, b),
        (Value::String(a), Value::String(b)) => f(&a.to_lowercase(), &b.to_lowercase()),
        _ => false,
    };
    match op {
        CmpOp::Eq => ordering == Some(Ordering::Equal),
        CmpOp::Ne => ordering != Some(Ordering::Equal),
        CmpOp::Gt => ordering == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::Lt => ordering == Some(Ordering::Less),
        CmpOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Co => text(|a, b| a.contains(b)),
        CmpOp::Sw => text(|a, b| a.starts_with(b)),
        CmpOp::Ew => text(|a, b| a.ends_with(b)),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Word(w) => w.clone(),
            Token::Str(s) => format!("\"{s}\""),
            Token::LParen => "(".into(),
            Token::RParen => ")".into(),
            Token::LBracket => "[".into(),
            Token::RBracket => "]".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' => {
                out.push(match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '[' => Token::LBracket,
                    _ => Token::RBracket,
                });
                i += 1;
            }
            '"' => {
                // A JSON string literal, escapes included.
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(format!("unterminated string in filter `{text}`"));
                }
                let lit: String = chars[start..=i].iter().collect();
                let s: String = serde_json::from_str(&lit).map_err(|e| format!("bad string {lit}: {e}"))?;
                out.push(Token::Str(s));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()[]\"".contains(chars[i]) {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, t: Token) -> Result<(), String> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            Some(got) => Err(format!("expected `{}`, found `{}`", t.text(), got.text())),
            None => Err(format!("expected `{}` at the end of the filter", t.text())),
        }
    }

    fn or_expr(&mut self) -> Result<Filter, String> {
        let mut left = self.and_expr()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, String> {
        let mut left = self.factor()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Filter, String> {
        if self.peek_word("not") {
            self.pos += 1;
            self.expect(Token::LParen)?;
            let f = self.or_expr()?;
            self.expect(Token::RParen)?;
            return Ok(Filter::Not(Box::new(f)));
        }
        match self.next() {
            Some(Token::LParen) => {
                let f = self.or_expr()?;
                self.expect(Token::RParen)?;
                Ok(f)
            }
            Some(Token::Word(attr)) => {
                let path = AttrPath::parse(&attr)?;
                if self.tokens.get(self.pos) == Some(&Token::LBracket) {
                    self.pos += 1;
                    let inner = self.or_expr()?;
                    self.expect(Token::RBracket)?;
                    return Ok(Filter::ValuePath(path, Box::new(inner)));
                }
                let op = match self.next() {
                    Some(Token::Word(op)) => op.to_ascii_lowercase(),
                    Some(t) => return Err(format!("expected an operator after `{attr}`, found `{}`", t.text())),
                    None => return Err(format!("expected an operator after `{attr}`")),
                };
                let op = match op.as_str() {
                    "pr" => return Ok(Filter::Present(path)),
                    "eq" => CmpOp::Eq,
                    "ne" => CmpOp::Ne,
                    "co" => CmpOp::Co,
                    "sw" => CmpOp::Sw,
                    "ew" => CmpOp::Ew,
                    "gt" => CmpOp::Gt,
                    "ge" => CmpOp::Ge,
                    "lt" => CmpOp::Lt,
                    "le" => CmpOp::Le,
                    other => return Err(format!("unknown operator `{other}`")),
                };
                let value = match self.next() {
                    Some(Token::Str(s)) => Value::String(s),
                    Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        "null" => Value::Null,
                        _ => serde_json::from_str::<serde_json::Number>(&w)
                            .map(Value::Number)
                            .map_err(|_| format!("bad comparison value `{w}` (strings need quotes)"))?,
                    },
                    Some(t) => return Err(format!("expected a value, found `{}`", t.text())),
                    None => return Err(format!("expected a value after `{attr}`")),
                };
                Ok(Filter::Compare(path, op, value))
            }
            Some(t) => Err(format!("unexpected `{}`", t.text())),
            None => Err("empty filter".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "Abc", "userName": "Alice@Example.test", "externalId": "EXT-1", "active": true,
            "name": {"givenName": "Alice"},
            "emails": [{"value": "alice@work.test", "type": "work"}, {"value": "a@home.test", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"},
            "meta": {"lastModified": "2026-01-02T00:00:00Z"}
        })
    }

    fn m(f: &str) -> bool {
        Filter::parse(f).unwrap().matches(&user())
    }

    #[test]
    fn comparisons() {
        assert!(m(r#"userName eq "alice@example.test""#));
        assert!(m(r#"USERNAME Eq "ALICE@example.TEST""#));
        assert!(!m(r#"externalId eq "ext-1""#), "externalId is case-exact");
        assert!(m(r#"externalId eq "EXT-1""#));
        assert!(m("active eq true") && !m("active eq false"));
        assert!(m(r#"emails.value eq "a@home.test""#));
        assert!(m(r#"name.givenName sw "Al" and userName ew ".test""#));
        assert!(m(r#"userName co "example""#));
        assert!(m(r#"meta.lastModified gt "2025-12-31T00:00:00Z""#));
        assert!(m("title ne \"x\"") && !m("title pr") && m("emails pr"));
    }

    #[test]
    fn logic_grouping_and_value_paths() {
        assert!(m(r#"userName eq "nobody" or active eq true"#));
        assert!(!m(r#"userName eq "nobody" or (active eq true and externalId eq "no")"#));
        assert!(m(r#"not (active eq false)"#));
        assert!(m(r#"emails[type eq "work" and value co "work"]"#));
        assert!(!m(r#"emails[type eq "other"]"#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "ops""#
        ));
        assert!(m(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName pr"#));
    }

    #[test]
    fn as_eq_on_detects_the_indexable_shape() {
        let f = Filter::parse(r#"userName eq "bob""#).unwrap();
        assert_eq!(f.as_eq_on("username"), Some("bob"));
        assert_eq!(Filter::parse("userName pr").unwrap().as_eq_on("userName"), None);
    }

    #[test]
    fn errors_are_invalid_filter() {
        for bad in [
            "",
            "userName",
            "userName eq",
            "userName xx \"a\"",
            "userName eq bob",
            "(userName eq \"a\"",
            "userName eq \"a\" extra",
            "emails[type eq \"work\"",
            "userName eq \"unterminated",
        ] {
            let e = Filter::parse(bad).unwrap_err();
            assert_eq!(e.scim_type, Some("invalidFilter"), "{bad}");
        }
    }
}
