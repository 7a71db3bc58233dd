//! Just enough HTML for a login page: the first `<form>` (its action and method), its `<input>`
//! fields with their values (hidden ones carry CSRF tokens) and its submit `<button>`s, and the
//! page's visible error text. Tolerant of attribute order, quoting and case; entities in values
//! are decoded. Not a general HTML parser: pages that build their form in script need
//! `[checks] login_flow` pointed at a page that does not.

/// A form as a browser would submit it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Form {
    pub action: Option<String>,
    pub method: String,
    /// `(name, value)` of every named input, in page order.
    pub fields: Vec<(String, String)>,
    /// `(name, value)` of named submit buttons.
    pub buttons: Vec<(String, String)>,
    /// `(name, type)` of each field the page carried (`type` lower-case, `text` when absent):
    /// which one takes the password, which are hidden.
    pub types: Vec<(String, String)>,
}

impl Form {
    /// Sets `name` to `value`, adding the field when the page has none by that name.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// The names of the page's fields of input type `kind` (`password`, `hidden`, `text`…).
    pub fn of_type(&self, kind: &str) -> Vec<&str> {
        self.types
            .iter()
            .filter(|(_, t)| t == kind)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// The tags `<name …>` in `html`, as the text between `<name` and `>`.
fn tags<'a>(html: &'a str, lower: &str, name: &str) -> Vec<(usize, &'a str)> {
    let open = format!("<{name}");
    lower
        .match_indices(open.as_str())
        .filter_map(|(at, _)| {
            let after = at + open.len();
            let next = lower.as_bytes().get(after).copied();
            if !matches!(next, Some(b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/')) {
                return None;
            }
            let end = lower[after..].find('>')? + after;
            Some((at, &html[after..end]))
        })
        .collect()
}

/// The value of attribute `name` in a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' && bytes[i] != b'/' {
            i += 1;
        }
        let key = &tag[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = tag[i + 1..].find(q as char).map_or(tag.len(), |e| e + i + 1);
                    let v = &tag[i + 1..end];
                    i = end + 1;
                    v
                }
                _ => {
                    let s = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    &tag[s..i]
                }
            }
        } else {
            ""
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(decode(value));
        }
        if start == i {
            i += 1;
        }
    }
    None
}

/// Decodes the entities a server puts in attribute values.
fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first form of the page, if it has one.
pub fn first_form(html: &str) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let (at, tag) = tags(html, &lower, "form").into_iter().next()?;
    let end = lower[at..].find("</form").map_or(html.len(), |e| e + at);
    let (inner, inner_lower) = (&html[at..end], &lower[at..end]);
    let mut form = Form {
        action: attr(tag, "action").filter(|a| !a.is_empty()),
        method: attr(tag, "method").unwrap_or_else(|| "get".into()).to_ascii_lowercase(),
        ..Form::default()
    };
    for (_, input) in tags(inner, inner_lower, "input") {
        let kind = attr(input, "type").unwrap_or_default().to_ascii_lowercase();
        let Some(name) = attr(input, "name") else { continue };
        if matches!(kind.as_str(), "submit" | "button" | "image" | "reset") {
            form.buttons.push((name, attr(input, "value").unwrap_or_default()));
        } else if !matches!(kind.as_str(), "checkbox" | "radio") || input.to_ascii_lowercase().contains("checked") {
            let kind = match kind.is_empty() {
                true => "text".to_string(),
                false => kind,
            };
            form.types.push((name.clone(), kind));
            form.fields.push((name, attr(input, "value").unwrap_or_default()));
        }
    }
    for (_, button) in tags(inner, inner_lower, "button") {
        if let Some(name) = attr(button, "name") {
            form.buttons.push((name, attr(button, "value").unwrap_or_default()));
        }
    }
    Some(form)
}

/// The page's text without tags, squeezed, for failure messages (a login page's error).
pub fn text(html: &str, max: usize) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let squeezed: Vec<&str> = out.split_whitespace().collect();
    squeezed.join(" ").chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_login_form_with_its_hidden_token() {
        let page = r#"<html><body><p class=error>Invalid password</p>
            <FORM Method='POST' action="/login?x=1&amp;y=2">
              <input type="hidden" name="csrf_token" value="a&#x2F;b=">
              <input name=username type=text>
              <input type="password" name="password">
              <input type="checkbox" name="remember">
              <input type="checkbox" name="terms" checked>
              <button type="submit" name="decision" value="allow">Allow</button>
              <input type="submit" value="Go">
            </FORM><form action="/other"><input name="q"></form></body></html>"#;
        let mut f = first_form(page).unwrap();
        assert_eq!(f.action.as_deref(), Some("/login?x=1&y=2"));
        assert_eq!(f.method, "post");
        assert_eq!(
            f.fields,
            vec![
                ("csrf_token".into(), "a/b=".into()),
                ("username".into(), "".into()),
                ("password".into(), "".into()),
                ("terms".into(), "".into()),
            ]
        );
        assert_eq!(f.buttons, vec![("decision".to_string(), "allow".to_string())]);
        assert_eq!(f.of_type("password"), ["password"]);
        assert_eq!(f.of_type("hidden"), ["csrf_token"]);
        assert_eq!(f.of_type("text"), ["username"]);
        f.set("username", "ada");
        assert!(f.has("username") && !f.has("q"));
        assert!(text(page, 200).starts_with("Invalid password"));
    }

    #[test]
    fn pages_without_forms_and_odd_markup() {
        assert_eq!(first_form("<p>no form</p>"), None);
        assert_eq!(first_form("<formula>").map(|f| f.fields.len()), None);
        let f = first_form("<form><input name='a' value='x &unknown; &amp'></form>").unwrap();
        assert_eq!(f.fields, vec![("a".into(), "x &unknown; &amp".into())]);
        assert_eq!(f.method, "get");
    }
}
