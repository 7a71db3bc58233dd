//! What a SCIM step sends and reads: a request with the target's client, the path of one member
//! of a collection (an answered id that cannot be one path segment sends nothing), and the
//! answers read as JSON objects (`Resource`, `Identified`, `ListResponse`), their strings
//! borrowed unless escaped.

use std::borrow::Cow;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Deserializer};

use super::Cx;
use crate::engine::state::{StepEnd, payload};
use crate::engine::targets::requests;
use crate::http::{CallError, Reply};
use crate::metrics::SeriesId;

#[derive(Deserialize)]
pub(super) struct Resource<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "userName", deserialize_with = "text")]
    pub user_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "displayName", deserialize_with = "text")]
    pub display_name: Option<Cow<'a, str>>,
}

/// A string of the answer, borrowed from its bytes unless it holds escapes: serde's derive
/// copies every `Option<Cow<str>>` into a new `String` (three per parsed answer).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text<'de>(Cow<'de, str>);
    impl<'de> Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Text<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(s.to_string())))
                }
                fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(s)))
                }
            }
            d.deserialize_str(Visit)
        }
    }
    Option::<Text<'de>>::deserialize(d).map(|t| t.map(|t| t.0))
}

/// An answer whose id is all a step checks (a read, a change): the same `id` rule as
/// [`Resource`]'s (a string, borrowed unless escaped; `null` or absent is none; given twice or
/// anything else refuses the answer), without reading the names a create needs. The rest of the
/// object is still read through, so an answer that is not one JSON object is refused; a JSON
/// list is refused too (serde's derive reads `["1"]` as a struct whose first field is `"1"`).
pub(super) struct Identified<'a> {
    pub id: Option<Cow<'a, str>>,
}

/// Whether a key is `id`, as the derive matches a field name: read in place, never copied.
struct IsId;

impl<'de> serde::de::DeserializeSeed<'de> for IsId {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = bool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, s: &str) -> Result<bool, E> {
                Ok(s == "id")
            }
        }
        d.deserialize_identifier(Visit)
    }
}

impl<'de> Deserialize<'de> for Identified<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Identified<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a resource (a JSON object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Identified<'de>, A::Error> {
                /// `text`'s rule, as a seed for the `id`'s value.
                struct Id;
                impl<'de> serde::de::DeserializeSeed<'de> for Id {
                    type Value = Option<Cow<'de, str>>;
                    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                        text(d)
                    }
                }
                let mut id = None;
                while let Some(is_id) = map.next_key_seed(IsId)? {
                    if !is_id {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else if id.is_some() {
                        return Err(serde::de::Error::duplicate_field("id"));
                    } else {
                        id = Some(map.next_value_seed(Id)?);
                    }
                }
                Ok(Identified { id: id.flatten() })
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Deserialize)]
pub(super) struct ListResponse<'a> {
    #[serde(default, rename = "totalResults")]
    pub total_results: Option<u64>,
    #[serde(borrow, default, rename = "Resources")]
    pub resources: Vec<Resource<'a>>,
}

/// Every answer a step reads is a SCIM resource or list, a JSON object (RFC 7644): serde's
/// derive would also read a JSON array as the struct's fields in order, so `["<id>", "<name>"]`
/// passed as a user. Decided here, for every type read.
pub(super) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, StepEnd> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(answered("answer is not a JSON object", body));
    }
    serde_json::from_slice(body).map_err(|e| answered(&format!("answer is not the expected JSON: {e}"), body))
}

/// A payload error that shows what came back: "no id" alone never says why.
pub(super) fn answered(detail: &str, body: &[u8]) -> StepEnd {
    let shown = crate::redact::sample(&String::from_utf8_lossy(&body[..body.len().min(4096)]), 120);
    StepEnd::Failed(CallError::payload(format!("{detail} (the answer: {shown})")))
}

/// A step's request with the SCIM target's client.
pub(super) async fn send(
    ctx: &Cx<'_>,
    series: SeriesId,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    expected: &[u16],
) -> Result<Reply, StepEnd> {
    requests::send(ctx.run, ctx.client, series, method, path, body, expected).await
}

/// The path of the member `id` of `collection` (`Users`, `Groups`): an id the target answered
/// that cannot be one path segment fails the step, and nothing is sent for it.
pub(super) fn member(collection: &str, id: &str) -> Result<String, StepEnd> {
    crate::http::url::member(collection, id)
        .map_err(|why| payload(format!("the target's id {id:?} cannot name a resource: {why}")))
}

pub(super) fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    /// An answer's id and names are read without a copy unless they hold escapes (serde's derive
    /// copied each of them, three strings per parsed answer); what is not a string stays refused.
    #[test]
    fn answer_strings_are_borrowed_unless_escaped() {
        let body = br#"{"id":"2819c223","userName":"a\u0041@example.test","meta":{"version":"W/\"1\""}}"#;
        let r: Resource = parse(body).unwrap_or_else(|_| panic!("parses"));
        assert!(matches!(r.id, Some(Cow::Borrowed("2819c223"))), "{:?}", r.id);
        assert!(
            matches!(&r.user_name, Some(Cow::Owned(n)) if n == "aA@example.test"),
            "{:?}",
            r.user_name
        );
        assert!(r.display_name.is_none());
        let r: Resource = parse(br#"{"id":null}"#).unwrap_or_else(|_| panic!("parses"));
        assert!(r.id.is_none());
        assert!(parse::<Resource>(br#"{"id":42}"#).is_err(), "a number is no id");
        assert!(parse::<Resource>(br#"{"id":["x"]}"#).is_err(), "a list is no id");
    }

    /// Regression: a create answered `["<id>", "<name>"]` was read as a user with that id and
    /// name (serde's derive reads an array as the fields in order), and so recorded.
    #[test]
    fn only_a_json_object_is_an_answer() {
        for body in [
            &br#"["u1","pb-00000001-1@example.test"]"#[..],
            br#"  [ "u1" ]"#,
            br#""u1""#,
            b"null",
            b"",
        ] {
            assert!(parse::<Resource>(body).is_err(), "{}", String::from_utf8_lossy(body));
            assert!(parse::<Identified>(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        assert!(parse::<Resource>(b" \n{\"id\":\"u1\"}").is_ok());
    }

    /// Reads and changes check the answer's id alone: `Identified` reads it by the very rule
    /// `Resource` does (borrowed unless escaped, `null` or absent as none, anything else
    /// refused), and an answer that is not one JSON object stays refused.
    #[test]
    fn an_answer_read_for_its_id_alone_is_judged_as_before() {
        let body = br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"b@x.test","active":true}"#;
        let r: Identified = parse(body).unwrap_or_else(|_| panic!("parses"));
        assert!(matches!(r.id, Some(Cow::Borrowed("1"))), "{:?}", r.id);
        let r: Identified = parse(br#"{"id":"a\u0041"}"#).unwrap_or_else(|_| panic!("parses"));
        assert!(matches!(&r.id, Some(Cow::Owned(id)) if id == "aA"), "{:?}", r.id);
        for none in [&br#"{"id":null}"#[..], br#"{}"#, br#"{"userName":"x"}"#] {
            let r: Identified = parse(none).unwrap_or_else(|_| panic!("parses"));
            assert!(r.id.is_none());
        }
        for refused in [
            &br#"{"id":42}"#[..],
            br#"{"id":["x"]}"#,
            br#"["x"]"#,
            br#"{"id":"1""#,
            br#"{"id":"1"} trailing"#,
            b"<html>",
            br#"{"id":"1","meta":{"#,
        ] {
            assert!(
                parse::<Identified>(refused).is_err(),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
    }

    /// Keys written with escapes are the keys they spell, for `Identified` as for `Resource`:
    /// `"i\u0064"` is `id` (its value read, and a second `id` refused however it is written),
    /// while an `id` inside a nested object, or a key that only looks like one, is not the
    /// answer's id. An answer about another user stays another user's.
    #[test]
    fn escaped_and_nested_ids_are_read_as_resource_reads_them() {
        for body in [
            &br#"{"i\u0064":"7"}"#[..],
            br#"{"id":"7","i\u0064":"8"}"#,
            br#"{"i\u0064":"8","id":"7"}"#,
            br#"{"meta":{"id":"7"},"id":"8"}"#,
            br#"{"meta":{"id":"7"}}"#,
            br#"{"\u0069d":"7"}"#,
            br#"{"id ":"7"}"#,
            br#"{"ID":"7"}"#,
            br#"{"id":"7\u0000"}"#,
            br#"{"id":"\ud800"}"#,
            br#"{"id":true}"#,
            br#"{"id":{"value":"7"}}"#,
            br#"[{"id":"7"}]"#,
        ] {
            let text = String::from_utf8_lossy(body);
            match (parse::<Resource>(body), parse::<Identified>(body)) {
                (Ok(r), Ok(i)) => assert_eq!(r.id, i.id, "{text}"),
                (Err(_), Err(_)) => {}
                (r, i) => panic!(
                    "{text}: Resource {:?}, Identified {:?}",
                    r.ok().map(|r| r.id),
                    i.ok().map(|i| i.id)
                ),
            }
        }
        let other: Identified = parse(br#"{"i\u0064":"8","meta":{"id":"7"}}"#).unwrap_or_else(|_| panic!("parses"));
        assert_eq!(other.id.as_deref(), Some("8"), "user 8's answer is not user 7's");
    }

    proptest::proptest! {
        /// Over generated answers (ids of any text, names of any JSON value, members in any
        /// order, duplicates among them), whatever `Resource` reads as the id `Identified`
        /// reads too, and an answer `Resource` refuses for its id or its syntax `Identified`
        /// refuses as well. (`Resource` also refuses a name that is not a string; reads never
        /// used those names.)
        #[test]
        fn identified_reads_the_id_resource_reads(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["id", "userName", "displayName", "active", "meta"]),
                    proptest::prop_oneof![
                        proptest::string::string_regex(r#"[a-zA-Z0-9\u{e9}"/\\ -]{0,12}"#).expect("regex")
                            .prop_map(serde_json::Value::String),
                        proptest::strategy::Just(serde_json::Value::Null),
                        (0i64..100).prop_map(serde_json::Value::from),
                        proptest::strategy::Just(serde_json::json!(["x"])),
                        proptest::strategy::Just(serde_json::json!({"id": "inner"})),
                    ],
                ),
                0..5,
            ),
            cut in proptest::option::of(0usize..200),
        ) {
            let mut text = String::from("{");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(k).expect("key"));
                text.push(':');
                text.push_str(&serde_json::to_string(v).expect("value"));
            }
            text.push('}');
            let body = match cut {
                Some(n) if n < text.len() && text.is_char_boundary(n) => &text.as_bytes()[..n],
                _ => text.as_bytes(),
            };
            // What `Resource` alone refuses: a name that is not text, or a name given twice.
            let names = || members.iter().filter(|(k, _)| *k == "userName" || *k == "displayName");
            let names_are_text = names().all(|(_, v)| v.is_string() || v.is_null())
                && names().filter(|(k, _)| *k == "userName").count() <= 1
                && names().filter(|(k, _)| *k == "displayName").count() <= 1;
            match (parse::<Resource>(body), parse::<Identified>(body)) {
                (Ok(r), Ok(i)) => proptest::prop_assert_eq!(r.id, i.id),
                (Ok(_), Err(_)) => proptest::prop_assert!(false, "Identified refused what Resource read: {}", text),
                (Err(_), Ok(_)) => proptest::prop_assert!(!names_are_text, "Identified read what Resource refused: {}", text),
                (Err(_), Err(_)) => {}
            }
        }
    }
}
