//! An answer read for some of its members: the members the probes' readers start at, each read
//! whole, the rest read through and dropped, judged exactly as a read of the whole answer
//! (`serde_json::Value`) is. The one place a partial reading is made: `Reading::keeping`
//! (condition), a write's answer read for its version (`engine::state`), a job's status for its
//! start (`observe::start_members`).

use serde_json::Value;

/// The members of a JSON object named by the first segment of each of `pointers`, each read
/// whole, the others read through and dropped: what `Value::pointer` finds for each of those
/// pointers in the result is what it finds in the whole document, without a tree built of
/// everything else (a user's names, emails and schemas, for its `/meta/version`). A body that a
/// whole read would not read (not JSON, or past serde_json's limits anywhere in it) is `None`;
/// one that is JSON but no object (a list, a string) is read whole, as there is nothing to leave
/// out. A member given twice keeps its last value, as a whole `serde_json::Value` does.
pub fn members_for(body: &[u8], pointers: &[&str]) -> Option<Value> {
    members_named(body, &first_members(pointers.iter().copied()))
}

/// The member names the first segments of `pointers` name (`/meta/version` → `meta`), for
/// [`members_named`]; a pointer to the whole document (`""`) keeps every member.
pub fn first_members<'a>(pointers: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    pointers
        .into_iter()
        .map(|p| match p.strip_prefix('/') {
            Some(p) => unescape(p.split('/').next().unwrap_or_default()),
            None => WHOLE.to_string(),
        })
        .collect()
}

/// A pointer segment's name: `~1` is `/` and `~0` is `~` (RFC 6901), as `Value::pointer` reads
/// it. Most segments have no `~`, and the two `str::replace`s (2–4 K instructions a read) are
/// then left out.
fn unescape(segment: &str) -> String {
    match segment.contains('~') {
        true => segment.replace("~1", "/").replace("~0", "~"),
        false => segment.to_string(),
    }
}

/// In [`first_members`]'s list: every member is kept. (A key spelled so is kept as well: it is
/// kept either way.)
const WHOLE: &str = "\u{0}whole";

/// [`members_for`] with the member names already taken from the pointers.
pub fn members_named(body: &[u8], names: &[String]) -> Option<Value> {
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !object || names.iter().any(|n| n == WHOLE) {
        return serde_json::from_slice::<Value>(body).ok();
    }
    // What the partial read refuses is read as a whole read reads it: a body both refuse is
    // none, and one only the whole read takes (serde_json's raw-value object, below) is read
    // whole. A broken answer costs a second parse; an answer that reads judges as it would whole.
    kept_members(body, names).or_else(|| serde_json::from_slice::<Value>(body).ok())
}

/// The partial read of [`members_named`]: `None` when it refuses the body.
fn kept_members(body: &[u8], names: &[String]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let kept = serde::de::Deserializer::deserialize_map(&mut de, Kept(names)).ok()?;
    de.end().ok()?;
    Some(Value::Object(kept))
}

/// The first key by which serde_json's `raw_value` feature (on in this build: axum asks for
/// it) reads an object as JSON text to parse again: the object must hold that one string, and
/// becomes what the string holds. A whole `Value` read does so; the partial read refuses any
/// object that starts with it, so that [`members_named`] reads that body whole.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

/// Refused by the partial read: an object whose first key is [`RAW_VALUE`].
fn raw_value<E: serde::de::Error>() -> E {
    E::custom("an object read as raw JSON text")
}

/// The visitor of [`members_for`].
struct Kept<'a>(&'a [String]);

impl<'de> serde::de::Visitor<'de> for Kept<'_> {
    type Value = serde_json::Map<String, Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = serde_json::Map::new();
        let mut first = true;
        while let Some(Name(key)) = map.next_key::<Name<'de>>()? {
            if std::mem::take(&mut first) && key == RAW_VALUE {
                return Err(raw_value());
            }
            if self.0.iter().any(|k| *k == key) {
                kept.insert(key.into_owned(), map.next_value()?);
            } else {
                map.next_value::<Checked>()?;
            }
        }
        Ok(kept)
    }
}

/// A member's name, borrowed from the body unless it has escapes. (serde's `Cow<str>` always
/// copies: an allocation for every key of every object read.)
struct Name<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name<'de>, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> serde::de::Visitor<'de> for NameVisitor {
    type Value = Name<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member's name")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(std::borrow::Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Name<'de>, E> {
        Ok(Name(std::borrow::Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Name<'de>, E> {
        Ok(Name(std::borrow::Cow::Owned(s)))
    }
}

/// A value read through and dropped, checked as a whole read checks it: its strings' UTF-8 and
/// escapes, its numbers' range, its depth. (`IgnoredAny` skips without those checks, so an
/// answer a whole read refuses, a lone surrogate or `1e999` in a member nobody reads, was read,
/// and its empty list counted a user gone.) Nothing is built: a string is borrowed to be checked.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut first = true;
        while let Some(Name(key)) = map.next_key::<Name<'de>>()? {
            if std::mem::take(&mut first) && key == RAW_VALUE {
                return Err(raw_value());
            }
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// Test support: answers as broken or hostile services send them, for the tests that hold a
/// reading of some members to the whole reading.
#[cfg(test)]
pub mod hostile {
    use proptest::prelude::*;

    /// Each of `docs` (a JSON object's text) as it comes, as the one item of a list, as the text
    /// of serde_json's raw-value object, or a bare string; and with or without a member no
    /// reader reads holding what a whole read refuses (a lone surrogate, a number out of range,
    /// bytes that are not UTF-8, nesting past serde_json's depth, a raw-value object that holds
    /// no JSON text).
    pub fn shapes(docs: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes();
        let junk = prop_oneof![
            3 => Just(Vec::new()),
            1 => Just(br#""\ud800""#.to_vec()),
            1 => Just(b"1e999".to_vec()),
            1 => Just(b"\"\xff\xfe\"".to_vec()),
            1 => Just(deep),
            1 => Just(br#"{"$serde_json::private::RawValue":"}"}"#.to_vec()),
            1 => Just(br#"[{"$serde_json::private::RawVal\u0075e":1}]"#.to_vec()),
        ];
        (docs, 0..4u8, junk).prop_map(|(doc, shape, junk)| {
            let mut body = doc.into_bytes();
            if !junk.is_empty() && body.len() > 2 {
                body.pop();
                body.extend_from_slice(br#","zz":"#);
                body.extend(junk);
                body.push(b'}');
            }
            match shape {
                0 => body,
                // The document as JSON text serde_json's raw-value object holds.
                1 => serde_json::json!({ "$serde_json::private::RawValue": String::from_utf8_lossy(&body) })
                    .to_string()
                    .into_bytes(),
                2 => [&b"["[..], &body, b"]"].concat(),
                _ => br#""running""#.to_vec(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For each pointer asked for, the pruned document answers what the whole one does; a body
    /// that is JSON but no object is read whole, and one that is not JSON is none.
    #[test]
    fn a_pruned_document_answers_its_pointers_as_the_whole_one() {
        let body = br#"{"schemas":["x"],"id":"7","meta":{"version":"W/\"3\"","created":"t"},"a~b":{"c/d":1},"emails":[{"value":"a@b"}],"id":"8"}"#;
        let whole: Value = serde_json::from_slice(body).unwrap();
        let pointers = ["/meta/version", "/id", "/a~0b/c~1d", "/missing", "/emails/0/value"];
        let pruned = members_for(body, &pointers).unwrap();
        for p in pointers {
            assert_eq!(pruned.pointer(p), whole.pointer(p), "{p}");
        }
        assert!(pruned.get("schemas").is_none());
        for refused in [&b"{"[..], b"{} x", b"", b"[1] x"] {
            assert!(
                members_for(refused, &pointers).is_none(),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
        for other in [&b"[1]"[..], b"\"s\"", b" [{\"id\":\"7\"}]", b"null"] {
            let whole: Value = serde_json::from_slice(other).unwrap();
            assert_eq!(members_for(other, &["/0/id"]), Some(whole));
        }
    }

    /// Where `members_for` and a whole `serde_json::Value` read of `body` disagree, if anywhere.
    fn against_whole(body: &[u8], pointers: &[&str]) -> Option<String> {
        let whole = serde_json::from_slice::<Value>(body).ok();
        let kept = members_for(body, pointers);
        let shown = String::from_utf8_lossy(body);
        let shown: String = shown.chars().take(90).collect();
        if whole.is_some() != kept.is_some() {
            return Some(format!("{shown}: whole {}, kept {}", whole.is_some(), kept.is_some()));
        }
        if let (Some(w), Some(k)) = (&whole, &kept) {
            for p in pointers {
                if w.pointer(p) != k.pointer(p) {
                    return Some(format!(
                        "{shown} {p}: whole {:?}, kept {:?}",
                        w.pointer(p),
                        k.pointer(p)
                    ));
                }
            }
        }
        None
    }

    /// serde_json's `raw_value` feature (on in this build: `cargo tree -e features -i serde_json`)
    /// makes a whole `Value` read treat an object whose FIRST key is
    /// `$serde_json::private::RawValue` as "the JSON text in this string": it must hold a string,
    /// that string is parsed again as JSON, and the object must have no other member. `Checked`
    /// (skipped members) and `Kept` (the top level) read it as an ordinary object.
    #[test]
    fn a_raw_value_object_is_read_as_a_whole_read_reads_it() {
        let q = ["/Resources", "/totalResults", "/itemsPerPage"];
        let id = ["/id", "/userName", "/meta/version"];
        let cases: Vec<(&[u8], &[&str])> = vec![
            // Skipped member: whole refuses (string not JSON), kept reads an empty list.
            (br#"{"Resources":[],"totalResults":0,"x":{"$serde_json::private::RawValue":"}"}}"#, &q),
            // Skipped member: whole refuses (not a string), kept reads.
            (br#"{"Resources":[],"totalResults":0,"x":{"$serde_json::private::RawValue":1}}"#, &q),
            // Skipped member: whole refuses (a second member after the token).
            (br#"{"Resources":[],"totalResults":0,"x":{"$serde_json::private::RawValue":"1","y":2}}"#, &q),
            // Escaped spelling of the token: same.
            (br#"{"Resources":[],"totalResults":0,"x":[{"$serde_json::private::RawVal\u0075e":"{"}]}"#, &q),
            // Top level, other members after it: whole refuses, kept reads an empty list.
            (br#"{"$serde_json::private::RawValue":"1","Resources":[],"totalResults":0}"#, &q),
            // Top level alone: whole is the inner document (user listed / found), kept is {}.
            (br#"{"$serde_json::private::RawValue":"{\"Resources\":[{\"userName\":\"pb-1@example.test\"}],\"totalResults\":1}"}"#, &q),
            (br#"{"$serde_json::private::RawValue":"{\"id\":\"u1\",\"meta\":{\"version\":\"W/\\\"9\\\"\"}}"}"#, &id),
        ];
        let wrong: Vec<String> = cases.iter().filter_map(|(b, p)| against_whole(b, p)).collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// What held: numbers, strings, keys, whitespace, depth, trailing bytes.
    #[test]
    fn numbers_strings_keys_framing_and_depth_judge_as_whole() {
        let q = ["/Resources", "/totalResults"];
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for junk in [
            "-0",
            "-0.0",
            "1e308",
            "1.8e308",
            "-1e309",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1.0e-400",
            "1e-99999999999999999999",
            "0e99999999999999999999",
            "1e99999999999999999999",
            "01",
            "1.",
            ".1",
            "+1",
            "-",
            "1e",
            "NaN",
            "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"",
            "\"\\ude00\"",
            "\"\\ud83d\\u0041\"",
            "\"\\u00\"",
            "\"\\x\"",
            "\"\t\"",
            "\"\u{7f}\"",
            "{\"a\\u0000\":1}",
            "{\"\\ud800\":1}",
            "{1:2}",
            "[1,]",
            "{\"a\":1,}",
            "true",
            "nul",
            "\"\\/\"",
        ] {
            bodies.push(format!(r#"{{"Resources":[],"totalResults":0,"x":{junk}}}"#).into_bytes());
            bodies.push(format!(r#"{{"Resources":[{junk}],"totalResults":0}}"#).into_bytes());
        }
        for raw in [
            &b""[..],
            b" ",
            b"\n\t\r ",
            b"\x0c{}",
            b"\xef\xbb\xbf{}",
            b"{} ",
            b"{}\x00",
            b"{}{}",
            b"{},",
            b" \r\n{\"Resources\":[]}\n",
            b"{\"Resources\":[]} x",
            b"\x0b{}",
            b"{\"Resources\":[]}\xff",
            b"{\"Resources\":[],\"\xff\":1}",
            b"{\"Resources\":[],\"x\":\"\xed\xa0\x80\"}",
            b"{\"Res\\u006furces\":[1],\"Resources\":[]}",
            b"{\"Resources\":[],\"Res\\u006furces\":[1]}",
        ] {
            bodies.push(raw.to_vec());
        }
        // Depth: the skipped member, the kept member, and both, around serde_json's 128.
        for n in 124..=130usize {
            let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
            let deepo = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
            bodies.push(format!(r#"{{"Resources":[],"x":{deep}}}"#).into_bytes());
            bodies.push(format!(r#"{{"Resources":{deep}}}"#).into_bytes());
            bodies.push(format!(r#"{{"Resources":[],"x":{deepo}}}"#).into_bytes());
            bodies.push(format!(r#"{{"Resources":{deepo}}}"#).into_bytes());
            bodies.push(deep.clone().into_bytes());
        }
        let mut wrong = Vec::new();
        for b in &bodies {
            for p in [&q[..], &["/x"], &["", "/Resources"], &["/0"], &["x"]] {
                wrong.extend(against_whole(b, p));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Bodies that probe where a partial read could part from a whole one: the raw-value token
    /// spelled with escapes, nested, second, inside kept members; the empty key and the whole
    /// marker; escaped and repeated names; surrogate pairs; serde_json's private number key.
    #[test]
    fn hand_picked_bodies_judge_as_whole() {
        let cases: Vec<(&str, &[&str])> = vec![
            (r#"{"\u0024serde_json::private::RawValue":"{\"id\":\"u\"}"}"#, &["/id"]),
            (
                r#" {"$serde_json::private::RawVal\u0075e" : "{\"id\":\"u\"}" } "#,
                &["/id"],
            ),
            (
                r#"{"meta":{"$serde_json::private::RawVal\u0075e":"{\"version\":\"W/\\\"9\\\"\"}"}}"#,
                &["/meta/version"],
            ),
            (r#"{"meta":{"$serde_json::private::RawValue":" 7 "}}"#, &["/meta"]),
            (r#"{"meta":{"$serde_json::private::RawValue":"7","x":1}}"#, &["/meta"]),
            (r#"{"meta":[{"$serde_json::private::RawValue":"}"}]}"#, &["/meta"]),
            (
                r#"{"meta":{"$serde_json::private::RawValue":"{\"$serde_json::private::RawValue\":\"{\\\"version\\\":3}\"}"}}"#,
                &["/meta/version"],
            ),
            (
                r#"{"id":"a","$serde_json::private::RawValue":"}"}"#,
                &["/id", "/$serde_json::private::RawValue"],
            ),
            (r#"{"":1,"\u0000whole":2,"id":3}"#, &["/", "/\u{0}whole"]),
            (r#"{"":1,"\u0000whole":2,"id":3}"#, &["/"]),
            (
                r#"{"\u0000whole":{"$serde_json::private::RawValue":"}"},"id":3}"#,
                &["/id"],
            ),
            (r#"{"a\/b":1,"a/b":2,"a~b":3}"#, &["/a~1b", "/a~0b"]),
            (r#"{"id":1,"i\u0064":2}"#, &["/id"]),
            (
                r#"{"i\u0064":1,"id":{"$serde_json::private::RawValue":"[2]"}}"#,
                &["/id/0"],
            ),
            (r#"{"x":{"$serde_json::private::Number":"abc"},"id":1}"#, &["/id"]),
            (r#"{"x":"\ud800\udc00","id":1}"#, &["/id"]),
            (r#"{"\ud800":1,"id":1}"#, &["/id"]),
            (r#"{"id":1}"#, &["id", ""]),
        ];
        let mut wrong = Vec::new();
        for (b, p) in &cases {
            wrong.extend(against_whole(b.as_bytes(), p));
        }
        // Depth across a raw value inside a kept member: the inner text is parsed afresh.
        let inner = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let deep = format!(
            r#"{{"meta":{}{{"$serde_json::private::RawValue":{}}}{}}}"#,
            "[".repeat(120),
            serde_json::to_string(&inner).unwrap(),
            "]".repeat(120)
        );
        wrong.extend(against_whole(deep.as_bytes(), &["/meta"]));
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    proptest::proptest! {
        /// A pointer segment reads as `serde_json::Value::pointer` reads it (its two replaces,
        /// `~1` first), whatever its tildes.
        #[test]
        fn a_segment_unescapes_as_value_pointer_does(segment in "[~01/a]{0,12}") {
            let by_pointer = segment.replace("~1", "/").replace("~0", "~");
            proptest::prop_assert_eq!(unescape(&segment), by_pointer);
        }
    }
}

#[cfg(test)]
#[path = "members_rev38.rs"]
mod rev38;
