//! Characters a target may send to move a terminal's cursor, start a new line, ring a bell or
//! reorder what a reader sees: C0 and C1 controls (CR, LF, ESC, BEL, …), DEL, the bidi
//! embeddings, overrides, isolates and marks, and the line and paragraph separators. They are
//! shown as Rust escapes (`\r`, `\n`, `\u{1b}`, `\u{202e}`), so a target's text stays on its line
//! and cannot imitate one of ours.

use std::borrow::Cow;

/// A character that must not reach an output as it is.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2028}' | '\u{2029}'
        )
}

/// `text` with every [`hidden`] character escaped, except those in `keep`.
pub fn escape<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !text.chars().any(|c| hidden(c) && !keep.contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if keep.contains(&c) || !hidden(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// JSON text with every [`hidden`] character that JSON lets through raw (DEL, C1, bidi; the
/// serializer escapes C0 already) written as a JSON escape (`\u202e`): inside a string it
/// decodes to the same text, and outside strings a serializer writes none of them.
pub fn json(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| hidden(c) && c != '\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push(c),
            c if hidden(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}
