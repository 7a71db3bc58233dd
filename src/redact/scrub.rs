//! Secrets found by their place in the text rather than by their value: the userinfo of any URL
//! anywhere in a line (`https://user:password@host/`), and the values of cookies
//! (`Cookie: sid=…`, `Set-Cookie: sid=…`, also as JSON or as a header echoed in a body).

use std::borrow::Cow;

/// Where a URL's authority ends in running text.
fn ends_authority(c: char) -> bool {
    matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | '\\') || c.is_whitespace() || c.is_control()
}

/// `text` with the userinfo of every `scheme://userinfo@host` in it replaced by `***`.
pub fn userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let after = i + 3;
        out.push_str(&rest[..after]);
        let authority_end = rest[after..].find(ends_authority).map_or(rest.len(), |e| after + e);
        match rest[after..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&rest[after + at..authority_end]);
            }
            None => out.push_str(&rest[after..authority_end]),
        }
        rest = &rest[authority_end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Characters that end a cookie's name or value (RFC 6265 cookie-octets exclude them), and
/// the quotes and backslashes that end one inside JSON or a quoted string.
fn ends_cookie(c: char) -> bool {
    matches!(c, '=' | ';' | ',' | '"' | '\'' | '\\') || c.is_whitespace() || c.is_control()
}

/// `text` with the value of every cookie after a `cookie` header name replaced by `***`:
/// `Cookie: sid=abc; theme=dark` → `Cookie: sid=***; theme=***`.
pub fn cookies(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("cookie") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(i) = lower[search..].find("cookie").map(|i| search + i) {
        let mut p = i + "cookie".len();
        // `Cookie: `, `"Cookie": "`, `cookie=`: a few separator characters, one of them : or =.
        let sep_end = text[p..]
            .char_indices()
            .take_while(|&(n, c)| n < 6 && matches!(c, '"' | '\'' | ':' | '=' | ' ' | '\t'))
            .last()
            .map_or(p, |(n, c)| p + n + c.len_utf8());
        if !text[p..sep_end].contains([':', '=']) {
            search = p;
            continue;
        }
        p = sep_end;
        // name=value pairs, separated by `; ` or `, `.
        loop {
            let name_end = text[p..].find(ends_cookie).map_or(text.len(), |e| p + e);
            if name_end == p || !text[name_end..].starts_with('=') {
                break;
            }
            let value_start = name_end + 1;
            let value_end = text[value_start..]
                .find(|c: char| ends_cookie(c) && c != '=')
                .map_or(text.len(), |e| value_start + e);
            if value_end > value_start && &text[value_start..value_end] != "***" {
                out.push_str(&text[done..value_start]);
                out.push_str("***");
                done = value_end;
            }
            p = value_end;
            let gap = text[p..]
                .find(|c: char| !matches!(c, ';' | ',' | ' '))
                .map_or(text.len(), |e| p + e);
            if gap == p {
                break;
            }
            p = gap;
        }
        search = p.max(i + 1);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}
