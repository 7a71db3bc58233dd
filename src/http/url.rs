//! The one way a value taken from an answer (an id, an extracted value) becomes part of a
//! request URL: exactly one path segment, percent-encoded, or refused. Threat-model invariant 1:
//! a target may answer an id of `../Groups/x`, `?filter=…`, `%2e%2e` or `a%2Fb`, and many servers
//! and proxies decode `%2F` and resolve dot segments before routing, so what decodes to a
//! separator, a dot segment or a control character is refused in every spelling, raw or encoded.

use std::fmt;

use percent_encoding::percent_decode_str;

/// A value that is safe as one path segment, percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment(String);

impl Segment {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a value cannot name a resource in a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("it is empty")]
    Empty,
    #[error("it is a dot segment (`.` or `..`), which names a parent or the collection")]
    DotSegment,
    #[error("it holds {0:?}, which would end the path segment")]
    Delimiter(char),
    #[error("it holds a control character")]
    Control,
    #[error("it is longer than {MAX_LEN} bytes")]
    TooLong,
}

/// The longest value accepted (ids are short; a megabyte id is an attack on the log, not an id).
pub const MAX_LEN: usize = 1024;

/// How many rounds of percent-decoding are checked: a proxy and a server may each decode once.
const DECODE_ROUNDS: usize = 3;

/// `raw` as one path segment, or why it cannot be one.
pub fn segment(raw: &str) -> Result<Segment, Refused> {
    allowed(raw)?;
    let mut out = String::with_capacity(raw.len());
    encode_into(raw, &mut out);
    Ok(Segment(out))
}

/// Whether `raw` may be one segment, in every spelling a decoder along the way may see.
fn allowed(raw: &str) -> Result<(), Refused> {
    if raw.len() > MAX_LEN {
        return Err(Refused::TooLong);
    }
    // The common id (a UUID, a number) has nothing to decode: no second pass.
    if !raw.is_empty() && raw != "." && raw != ".." && raw.bytes().all(unreserved) {
        return Ok(());
    }
    let mut spelling = std::borrow::Cow::Borrowed(raw);
    for _ in 0..=DECODE_ROUNDS {
        check(&spelling)?;
        let decoded = percent_decode_str(&spelling).decode_utf8_lossy().into_owned();
        if decoded == *spelling {
            break;
        }
        spelling = std::borrow::Cow::Owned(decoded);
    }
    Ok(())
}

/// One spelling of the value: no delimiter, no control, not a dot segment, not empty.
fn check(s: &str) -> Result<(), Refused> {
    if s.is_empty() {
        return Err(Refused::Empty);
    }
    if s == "." || s == ".." {
        return Err(Refused::DotSegment);
    }
    for c in s.chars() {
        match c {
            '/' | '\\' | '?' | '#' => return Err(Refused::Delimiter(c)),
            c if c.is_control() || is_invisible(c) => return Err(Refused::Control),
            _ => {}
        }
    }
    Ok(())
}

/// Bidirectional and zero-width formatting characters: invisible, and able to make a logged URL
/// read as another.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Every byte but RFC 3986's unreserved characters percent-encoded (`%` too, so the server's
/// one decoding gives the value back as the target wrote it).
fn encode_into(raw: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in raw.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.extend(['%', HEX[(b >> 4) as usize] as char, HEX[(b & 15) as usize] as char]);
        }
    }
}

fn unreserved(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~')
}

/// `/{collection}/{id}`: the path of one member of a collection, `id` as one segment.
/// One allocation: the id is checked in place and encoded straight into the path.
pub fn member(collection: &str, id: &str) -> Result<String, Refused> {
    allowed(id)?;
    let mut path = String::with_capacity(collection.len() + id.len() + 2);
    path.push('/');
    path.push_str(collection);
    path.push('/');
    encode_into(id, &mut path);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ordinary_ids_pass_as_they_are() {
        for id in ["2819c223-7f76-453a-919d-413861904646", "42", "u_1.x~y", "a..b"] {
            assert_eq!(segment(id).unwrap().as_str(), id);
        }
        assert_eq!(segment("a b@c").unwrap().as_str(), "a%20b%40c");
    }

    #[test]
    fn the_attacks_seen_are_refused() {
        for id in [
            "../Groups/victim-g",
            "..",
            ".",
            "",
            "?filter=userName co \"\"",
            "%2e%2e",
            "%2E.",
            "a%2Fb",
            "a%252Fb",
            "x#y",
            "a\\b",
            "a\r\nb",
            "a\u{202E}b",
        ] {
            assert!(segment(id).is_err(), "{id:?} passed");
        }
    }

    /// Values built from the pieces attacks are made of.
    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(".".to_string()),
            Just("..".to_string()),
            Just("/".to_string()),
            Just("%2F".to_string()),
            Just("%2f".to_string()),
            Just("%252F".to_string()),
            Just("%2e".to_string()),
            Just("%".to_string()),
            Just("?".to_string()),
            Just("#".to_string()),
            Just("\\".to_string()),
            Just("%5C".to_string()),
            Just("\n".to_string()),
            Just("http://attacker.test".to_string()),
            "[a-zA-Z0-9_~-]{1,4}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
    }

    proptest! {
        /// Whatever a target answers, the URL built from it names one resource directly under
        /// the collection it was meant for, and the server's decoding gives the value back.
        #[test]
        fn a_segment_stays_one_segment_under_its_collection(raw in hostile()) {
            let Ok(seg) = segment(&raw) else { return Ok(()) };
            let base = reqwest::Url::parse("https://idp.example.test/scim/v2/Users/").unwrap();
            let url = base.join(seg.as_str()).unwrap();
            prop_assert_eq!(url.origin(), base.origin());
            let path = url.path();
            let rest = path.strip_prefix("/scim/v2/Users/").expect("under the collection");
            prop_assert!(!rest.is_empty() && !rest.contains('/'), "{} from {:?}", path, raw);
            prop_assert_eq!(url.query(), None);
            prop_assert_eq!(url.fragment(), None);
            prop_assert_eq!(percent_decode_str(rest).decode_utf8_lossy(), raw.as_str());
            // A second decoding (a proxy's) still finds no separator or dot segment.
            let twice = percent_decode_str(&percent_decode_str(rest).decode_utf8_lossy()).decode_utf8_lossy().into_owned();
            prop_assert!(!twice.contains('/') && twice != "." && twice != "..");
        }
    }
}
