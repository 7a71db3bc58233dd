//! The one way a value taken from an answer (an id, an extracted value) becomes part of a
//! request URL: exactly one path segment, percent-encoded, or refused. Threat-model invariant 1:
//! a target may answer an id of `../Groups/x`, `?filter=…`, `%2e%2e` or `a%2Fb`, and many servers
//! and proxies decode `%2F` and resolve dot segments before routing, so what decodes to a
//! separator, a dot segment or a control character is refused in every spelling, raw or encoded.

use std::fmt;

use percent_encoding::percent_decode_str;
use unicode_normalization::UnicodeNormalization;

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
    #[error("it holds {0:?}, which servers that normalise Unicode read as a separator or a dot")]
    Lookalike(char),
    #[error("it holds an encoding decoders disagree on (`%u`, overlong or invalid UTF-8)")]
    Encoding,
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

/// Whether `raw` may be one segment, in every spelling a decoder along the way may see: each
/// round of percent-decoding, each with and without Unicode compatibility normalisation (NFKC),
/// as servers, proxies and filesystems that normalise read `．．` as `..` and `／` as `/`.
fn allowed(raw: &str) -> Result<(), Refused> {
    if raw.len() > MAX_LEN {
        return Err(Refused::TooLong);
    }
    // The common id (a UUID, a number) has nothing to decode or normalise: no second pass.
    if !raw.is_empty() && raw != "." && raw != ".." && raw.bytes().all(unreserved) {
        return Ok(());
    }
    // Each round decodes every spelling of the last one, as it is and as normalised: a decoder
    // may normalise before or after it decodes. At most 2^(rounds+1) short strings.
    let mut spellings = vec![raw.to_string()];
    for _ in 0..=DECODE_ROUNDS {
        let mut next: Vec<String> = Vec::new();
        for s in &spellings {
            check(s)?;
            let normal: String = s.nfkc().collect();
            if normal != *s {
                check(&normal).map_err(|e| lookalike(s).unwrap_or(e))?;
            }
            for form in [s, &normal] {
                let decoded = percent_decode_str(form).collect::<Vec<u8>>();
                // Invalid UTF-8 after decoding (`%c0%ae`, an overlong `.`) is read by some
                // decoders as the character it overlongs, by others as replacement characters.
                let decoded = String::from_utf8(decoded).map_err(|_| Refused::Encoding)?;
                if decoded != *form && !next.contains(&decoded) && !spellings.contains(&decoded) {
                    next.push(decoded);
                }
            }
        }
        if next.is_empty() {
            return Ok(());
        }
        spellings = next;
    }
    // Still decoding after every round: a value encoded deeper than any decoder goes is no id.
    spellings.iter().try_for_each(|s| {
        check(s)?;
        check(&s.nfkc().collect::<String>()).map_err(|e| lookalike(s).unwrap_or(e))
    })
}

/// The first character of `s` that normalises to something else, named as the reason.
fn lookalike(s: &str) -> Option<Refused> {
    s.chars()
        .find(|c| !c.is_ascii() && c.to_string().nfkc().ne(std::iter::once(*c)))
        .map(Refused::Lookalike)
}

/// One spelling of the value: no delimiter, no control, not a dot segment, not empty.
fn check(s: &str) -> Result<(), Refused> {
    if s.is_empty() {
        return Err(Refused::Empty);
    }
    // Tomcat (and a proxy in front of it that decodes `%3B`) reads `..;x` as `..`: a segment's
    // parameters do not make a dot segment a name, here as in `within`.
    let name = s.split(';').next().unwrap_or(s);
    if name == "." || name == ".." {
        return Err(Refused::DotSegment);
    }
    for c in s.chars() {
        match c {
            '/' | '\\' | '?' | '#' => return Err(Refused::Delimiter(c)),
            c if c.is_control() || is_invisible(c) => return Err(Refused::Control),
            c if is_separator_lookalike(c) => return Err(Refused::Lookalike(c)),
            _ => {}
        }
    }
    if u_encoded(s) {
        return Err(Refused::Encoding);
    }
    Ok(())
}

/// IIS reads `%u002e` as `.`: a `%u` with four hex digits is an encoding, never a name.
fn u_encoded(s: &str) -> bool {
    s.match_indices(['%']).any(|(i, _)| {
        let rest = &s.as_bytes()[i + 1..];
        rest.len() >= 5 && matches!(rest[0], b'u' | b'U') && rest[1..5].iter().all(u8::is_ascii_hexdigit)
    })
}

/// Bidirectional and zero-width formatting characters: invisible, and able to make a logged URL
/// read as another. U+2028 and U+2029 end a line where a log reader or a header parser sees one.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2064}')
}

/// Slashes and full stops with no compatibility decomposition (NFKC keeps them), which
/// best-fit code-page mappings (Windows, some proxies) and confusable folding still read as
/// `/`, `\` or `.`. Symbols only: letters that look alike (katakana ノ) stay valid ids.
fn is_separator_lookalike(c: char) -> bool {
    matches!(
        c,
        '\u{2044}' // fraction slash
            | '\u{2215}' // division slash
            | '\u{2216}' // set minus
            | '\u{2571}' // box drawings light diagonal upper right to lower left
            | '\u{2572}' // box drawings light diagonal upper left to lower right
            | '\u{29F5}' // reverse solidus operator
            | '\u{29F8}' // big solidus
            | '\u{29F9}' // big reverse solidus
            | '\u{3002}' // ideographic full stop (U+FF61 normalises to it)
            | '\u{2E31}' // word separator middle dot
    )
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

/// Whether `url` lies on `base`'s origin and under its path, as every server and proxy along the
/// way may route it: the one decision of whether a request may carry the client's credentials.
/// The origin is compared parsed (scheme and host case-insensitively, a default port as none);
/// a URL with userinfo is never the client's (a credential of its own, and a way to disguise a
/// host). The path must be under the base by whole segments (`/scim/v2x` is not under
/// `/scim/v2`) in every reading: as written, and after each percent-decoding with or without
/// NFKC, with `\` read as `/` and dot segments (also `..;` as Tomcat reads it) resolved.
pub fn within(base: &reqwest::Url, url: &reqwest::Url) -> bool {
    if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    // The base is configured, not answered: read as written.
    let base_path = resolve(base.path());
    match readings(url.path()) {
        Some(all) => all.iter().all(|r| {
            let path = resolve(r);
            path.len() >= base_path.len() && path[..base_path.len()] == base_path[..]
        }),
        None => false,
    }
}

/// `path` as written, then after each round of percent-decoding, each with and without NFKC;
/// `None` when a round gives invalid UTF-8 or a `%u` encoding (readers disagree on those).
fn readings(path: &str) -> Option<Vec<String>> {
    // Unreserved characters and `/` read one way only: there is nothing to decode (no `%`),
    // ASCII is its own NFKC form and no `%u`. Every probe read of a linked service asks this.
    if path.bytes().all(|b| unreserved(b) || b == b'/') {
        return Some(vec![path.to_string()]);
    }
    every_reading(path)
}

/// [`readings`] without its shortcut.
fn every_reading(path: &str) -> Option<Vec<String>> {
    let mut all = vec![path.to_string()];
    let mut last = all.clone();
    for _ in 0..DECODE_ROUNDS {
        let mut next = Vec::new();
        for r in &last {
            let normal: String = r.nfkc().collect();
            for form in [r, &normal] {
                if u_encoded(form) {
                    return None;
                }
                let decoded = String::from_utf8(percent_decode_str(form).collect()).ok()?;
                for candidate in [form.clone(), decoded] {
                    if !all.contains(&candidate) {
                        all.push(candidate.clone());
                        next.push(candidate);
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        last = next;
    }
    Some(all)
}

/// The segments a path names once `\` is a separator, empty segments are collapsed and dot
/// segments are resolved (a `..` at the root stays at the root, as servers do).
fn resolve(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split(['/', '\\']) {
        // Tomcat and others read `..;x` as `..`: a segment's parameters do not make it a name.
        let name = seg.split(';').next().unwrap_or(seg);
        match name {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(seg),
        }
    }
    out
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

    /// Regression: `..;` passed as a name, which Tomcat (behind a proxy that decodes `%3B`)
    /// reads as `..`, as `within` already did for the credentials' path.
    #[test]
    fn dot_segments_with_parameters_are_refused() {
        for id in [
            "..;",
            ".;",
            "..;jsessionid=1",
            "%2e%2e;x",
            "..%3b",
            "..%3Bx",
            "%2E%3B",
            "..%253B",
        ] {
            assert!(segment(id).is_err(), "{id:?} passed");
            assert!(member("Users", id).is_err(), "{id:?} passed");
        }
        for id in ["a;b", "...;", ";", "x..;"] {
            assert!(segment(id).is_ok(), "{id:?} refused");
        }
    }

    #[test]
    fn lookalikes_and_odd_encodings_are_refused() {
        for id in [
            "\u{FF0E}\u{FF0E}", // fullwidth `..`
            "\u{2025}",         // two dot leader: NFKC `..`
            "\u{2024}\u{2024}", // one dot leader twice
            "\u{FE52}",         // small full stop
            "a\u{FF0F}b",       // fullwidth solidus
            "a\u{FF3C}b",       // fullwidth reverse solidus
            "a\u{FE68}b",       // small reverse solidus
            "a\u{2215}b",       // division slash
            "a\u{2044}b",       // fraction slash
            "a\u{29F8}b",       // big solidus
            "a\u{3002}b",       // ideographic full stop
            "a\u{FF1F}b",       // fullwidth question mark
            "a\u{FF03}b",       // fullwidth number sign
            "a\u{2028}b",       // line separator
            "a\u{2029}b",       // paragraph separator
            "%EF%BC%8F",        // fullwidth solidus, encoded
            "%uFF0E%uFF0E",     // IIS %u encoding
            "%u002e%u002e",
            "a%u002fb",
            "%c0%ae%c0%ae",               // overlong `.`
            "a%c0%afb",                   // overlong `/`
            "a%ffb",                      // no UTF-8 at all
            "\u{FF05}2F",                 // fullwidth percent, then `2F`
            "a\u{FF05}\u{FF12}\u{FF26}b", // all fullwidth `%2F`
        ] {
            assert!(segment(id).is_err(), "{id:?} passed");
        }
        // Letters that merely resemble a slash, and ordinary non-ASCII ids, stay valid.
        for id in ["\u{30CE}", "café", "Zoë", "%C3%A9t%C3%A9", "100%", "a%ub"] {
            assert!(segment(id).is_ok(), "{id:?} refused");
        }
    }

    /// Characters that a normalising or best-fit decoder reads as `.`, `/`, `\\`, `?` or `#`.
    const LOOKALIKES: &[char] = &[
        '\u{FF0E}', '\u{FF0F}', '\u{FF3C}', '\u{2215}', '\u{2044}', '\u{FE52}', '\u{2024}', '\u{2025}', '\u{3002}',
        '\u{FF61}', '\u{29F8}', '\u{FE68}', '\u{FF1F}', '\u{FE56}', '\u{FF03}', '\u{FE5F}', '\u{2028}', '\u{2029}',
        '\u{FF05}',
    ];

    fn encode(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    /// Every way a decoder along the way may read `s`: up to three percent-decodings, each with
    /// or without NFKC.
    fn readings(s: &str) -> Vec<String> {
        let mut all = vec![s.to_string()];
        let mut last = all.clone();
        for _ in 0..3 {
            let mut next = Vec::new();
            for r in &last {
                let normal: String = r.nfkc().collect();
                next.push(normal.clone());
                for form in [r, &normal] {
                    next.push(percent_decode_str(form).decode_utf8_lossy().into_owned());
                }
            }
            all.extend(next.iter().cloned());
            last = next;
        }
        all
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
            Just(";".to_string()),
            Just("%3B".to_string()),
            Just("\\".to_string()),
            Just("%5C".to_string()),
            Just("\n".to_string()),
            Just("http://attacker.test".to_string()),
            // Lookalikes that normalise (NFKC) or fold to a refused character.
            prop::sample::select(LOOKALIKES).prop_map(String::from),
            prop::sample::select(LOOKALIKES).prop_map(|c| encode(&c.to_string())),
            Just("%u002e".to_string()),
            Just("%U002F".to_string()),
            Just("%c0%ae".to_string()),
            Just("%c0%af".to_string()),
            Just("%e0%80%ae".to_string()),
            "[a-zA-Z0-9_~-]{1,4}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
    }

    proptest! {
        /// The shortcut of `readings` gives what decoding every way gives, for every path it
        /// takes (so `within` decides as before), and the paths it takes include dot segments.
        #[test]
        fn plain_paths_have_one_reading(path in "[A-Za-z0-9._~/-]{0,40}") {
            prop_assert_eq!(super::readings(&path), every_reading(&path));
            prop_assert_eq!(super::readings(&path), Some(vec![path.clone()]));
        }
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
            // A second decoding (a proxy's) still finds no separator or dot segment, whether or
            // not either decoder normalises Unicode first.
            let once = percent_decode_str(rest).decode_utf8_lossy().into_owned();
            for reading in readings(&once) {
                prop_assert!(
                    !reading.contains(['/', '\\', '?', '#', '\u{2028}', '\u{2029}'])
                        && !reading.contains(char::is_control)
                        && !reading.contains(is_separator_lookalike)
                        && !matches!(reading.split(';').next(), Some("." | ".."))
                        && (raw.contains('\u{FFFD}') || !reading.contains('\u{FFFD}')),
                    "{:?} reads as {:?}", raw, reading
                );
            }
        }
    }

    #[test]
    fn within_the_base_by_whole_segments_in_every_reading() {
        let base = reqwest::Url::parse("http://t/scim/v2").unwrap();
        for (url, inside) in [
            ("http://t/scim/v2", true),
            ("http://t/scim/v2/Users/1?x=1", true),
            ("HTTP://T:80/scim/v2/Users", true),
            ("http://t/scim/v2/Users/../Groups", true),
            ("http://t/scim/v2x", false),
            ("http://t/scim/v2x/Users", false),
            ("http://t/admin/realms/x", false),
            ("http://t/scim/v2/../../admin", false),
            ("http://t/scim/v2/%2e%2e/%2e%2e/admin", false),
            ("http://t/scim/v2/..%2f..%2fadmin", false),
            ("http://t/scim/v2/..%252f..%252fadmin", false),
            ("http://t/scim/v2/..\\..\\admin", false),
            ("http://t/scim/v2/..;/..;/admin", false),
            ("http://t/scim/v2/%EF%BC%8E%EF%BC%8E/%EF%BC%8E%EF%BC%8E/admin", false),
            ("http://t/scim/v2/%u002e%u002e/x", false),
            ("http://t/scim/v2/%c0%ae%c0%ae/x", false),
            ("http://u:p@t/scim/v2/Users", false),
            ("http://t:8080/scim/v2/Users", false),
            ("https://t/scim/v2/Users", false),
            ("http://t.attacker/scim/v2/Users", false),
        ] {
            let u = reqwest::Url::parse(url).unwrap();
            assert_eq!(within(&base, &u), inside, "{url}");
        }
    }

    /// A path piece of a generated absolute URL.
    fn path_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("scim".to_string()),
            Just("v2".to_string()),
            Just("v2x".to_string()),
            Just("SCIM".to_string()),
            Just("admin".to_string()),
            Just("Users".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%2e%2e".to_string()),
            Just("%2E".to_string()),
            Just("".to_string()),
            Just("%2F".to_string()),
            Just("%252F".to_string()),
            Just("%5C".to_string()),
            Just("\\".to_string()),
            Just("\u{FF0E}\u{FF0E}".to_string()),
            Just("%EF%BC%8F".to_string()),
            "[a-z0-9]{1,3}",
        ]
    }

    /// The oracle: the path as each of up to three decoders (each normalising or not) reads it,
    /// its dot segments resolved by the URL parser itself, all under `/scim/v2` by segments.
    fn under_scim_v2(path: &str) -> bool {
        let mut last = vec![path.to_string()];
        let mut all = last.clone();
        for _ in 0..3 {
            let mut next = Vec::new();
            for r in &last {
                let normal: String = r.nfkc().collect();
                for form in [r.clone(), normal] {
                    next.push(percent_decode_str(&form).decode_utf8_lossy().into_owned());
                    next.push(form);
                }
            }
            all.extend(next.iter().cloned());
            last = next;
        }
        all.iter().all(|r| {
            let slashed = r.replace('\\', "/").replace('?', "%3F").replace('#', "%23");
            let mut collapsed = String::new();
            for seg in slashed.split('/').filter(|s| !s.is_empty()) {
                collapsed.push('/');
                collapsed.push_str(seg);
            }
            let root = reqwest::Url::parse("http://x/").unwrap();
            let Ok(joined) = root.join(&collapsed) else {
                return false;
            };
            let p = joined.path();
            p == "/scim/v2" || p.starts_with("/scim/v2/")
        })
    }

    proptest! {
        /// Credentials go with an absolute URL exactly when it names the base's origin (in any
        /// case or port spelling), carries no userinfo, and every reading of its path is under
        /// the base path by whole segments.
        #[test]
        fn credentials_go_exactly_under_the_base(
            scheme in prop::sample::select(&["http", "HTTP", "Http", "https"][..]),
            host in prop::sample::select(&["t", "T", "t.", "t.attacker", "attacker"][..]),
            port in prop::sample::select(&["", ":80", ":8080", ":443"][..]),
            userinfo in prop::sample::select(&["", "u:p@", "u@", ":p@"][..]),
            start in prop::sample::select(&["", "scim/v2/", "scim/v2/", "scim/v2x/", "scim/", "SCIM/v2/"][..]),
            pieces in prop::collection::vec(path_piece(), 0..7),
        ) {
            let base = reqwest::Url::parse("http://t/scim/v2").unwrap();
            let raw = format!("{scheme}://{userinfo}{host}{port}/{start}{}", pieces.join("/"));
            let Ok(url) = reqwest::Url::parse(&raw) else { return Ok(()) };
            let origin = !scheme.eq_ignore_ascii_case("https") && matches!(host, "t" | "T") && matches!(port, "" | ":80");
            let expected = origin && userinfo.is_empty() && under_scim_v2(url.path());
            prop_assert_eq!(within(&base, &url), expected, "{} (parsed {})", raw, url);
        }
    }
}
