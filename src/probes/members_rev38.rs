//! A hostile review's differential tests (of e28434e): `members_for` against a whole
//! `serde_json::Value` read over generated keys (escapes, tildes, the raw-value token, duplicates,
//! huge names) and pointers, and `unescape` against `Value::pointer`'s own replaces.
use super::*;
use proptest::prelude::*;

/// JSON text of a key: pieces that are raw, escaped, tildes, slashes, the raw-value token.
fn key_text() -> impl Strategy<Value = (String, String)> {
    // (json spelling, decoded)
    let piece = prop_oneof![
        Just(("a".to_string(), "a".to_string())),
        Just(("~".to_string(), "~".to_string())),
        Just(("\\u007e".to_string(), "~".to_string())),
        Just(("/".to_string(), "/".to_string())),
        Just(("\\/".to_string(), "/".to_string())),
        Just(("0".to_string(), "0".to_string())),
        Just(("1".to_string(), "1".to_string())),
        Just(("\\u0030".to_string(), "0".to_string())),
        Just(("\\u0000".to_string(), "\u{0}".to_string())),
        Just(("\\\"".to_string(), "\"".to_string())),
        Just(("é".to_string(), "é".to_string())),
        Just(("\\ud83d\\ude00".to_string(), "😀".to_string())),
        Just((
            "$serde_json::private::RawVal\\u0075e".to_string(),
            "$serde_json::private::RawValue".to_string()
        )),
        Just(("whole".to_string(), "whole".to_string())),
    ];
    proptest::collection::vec(piece, 0..5).prop_map(|ps| {
        let j: String = ps.iter().map(|p| p.0.as_str()).collect();
        let d: String = ps.iter().map(|p| p.1.as_str()).collect();
        (j, d)
    })
}

fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1".to_string()),
        Just("\"v\"".to_string()),
        Just("{\"version\":\"W/\\\"3\\\"\",\"a/b\":2,\"a~b\":3}".to_string()),
        Just("[1,{\"x\":2}]".to_string()),
        Just("null".to_string()),
        Just("{\"$serde_json::private::RawValue\":\"{\\\"version\\\":4}\"}".to_string()),
        Just("{\"$serde_json::private::RawValue\":\"}\"}".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("1e999".to_string()),
    ]
}

fn escape_ptr(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, .. ProptestConfig::default() })]
    #[test]
    fn rev38_members_for_judges_as_whole(
        members in proptest::collection::vec((key_text(), value_text()), 0..6),
        extra in proptest::collection::vec("[~01/a]{0,6}", 0..3),
        tail in proptest::collection::vec("[~01/a]{0,4}", 0..3),
        raw_escape in any::<bool>(),
    ) {
        let body = format!(
            "{{{}}}",
            members.iter().map(|((k, _), v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",")
        );
        let mut pointers: Vec<String> = Vec::new();
        for ((_, d), _) in &members {
            let seg = if raw_escape { escape_ptr(d) } else { d.clone() };
            pointers.push(format!("/{seg}"));
            for t in &tail { pointers.push(format!("/{seg}/{t}")); }
            pointers.push(format!("/{seg}/version"));
        }
        for e in &extra { pointers.push(format!("/{e}")); }
        let ps: Vec<&str> = pointers.iter().map(String::as_str).collect();
        let whole = serde_json::from_slice::<Value>(body.as_bytes()).ok();
        let kept = members_for(body.as_bytes(), &ps);
        prop_assert_eq!(whole.is_some(), kept.is_some(), "{}", body);
        if let (Some(w), Some(k)) = (&whole, &kept) {
            for p in &ps {
                prop_assert_eq!(w.pointer(p), k.pointer(p), "{} {}", body, p);
            }
        }
        // first_members as it was (two replaces) names the same members.
        let old: Vec<String> = ps.iter().map(|p| match p.strip_prefix('/') {
            Some(p) => p.split('/').next().unwrap_or_default().replace("~1", "/").replace("~0", "~"),
            None => WHOLE.to_string(),
        }).collect();
        prop_assert_eq!(first_members(ps.iter().copied()), old);
    }

    /// unescape over any string (not only [~01/a]): multibyte chars next to tildes.
    #[test]
    fn rev38_unescape_any_string(s in "(~|0|1|/|é|😀|a|~~|\u{0})*") {
        prop_assert_eq!(unescape(&s), s.replace("~1", "/").replace("~0", "~"));
    }
}

/// Keys read through an io::Read deserializer (visit_str, not visit_borrowed_str), and through
/// a Value as deserializer (visit_string / visit_borrowed_str): Name takes them all.
#[test]
fn rev38_name_takes_every_visit() {
    use serde::Deserialize;
    let body = br#"{"a\/b":1,"plain":2}"#;
    let mut de = serde_json::Deserializer::from_reader(&body[..]);
    let names = vec!["a/b".to_string(), "plain".to_string()];
    let kept = serde::de::Deserializer::deserialize_map(&mut de, Kept(&names)).unwrap();
    assert_eq!(kept.len(), 2);
    let v: Value = serde_json::from_slice(body).unwrap();
    let kept = serde::de::Deserializer::deserialize_map(v.clone(), Kept(&names)).unwrap();
    assert_eq!(kept.len(), 2);
    let kept = serde::de::Deserializer::deserialize_map(&v, Kept(&names)).unwrap();
    assert_eq!(kept.len(), 2);
    let _ = Checked::deserialize(&v).unwrap();
}

/// A huge key (1 MiB, escaped and not) judged as whole.
#[test]
fn rev38_huge_keys() {
    let big = "k".repeat(1 << 20);
    for key in [big.clone(), format!("{big}\\u007e1"), format!("\\u0041{big}")] {
        let body = format!(r#"{{"{key}":1,"id":2}}"#);
        let decoded: String = serde_json::from_str(&format!("\"{key}\"")).unwrap();
        let p = format!("/{}", escape_ptr(&decoded));
        let whole: Value = serde_json::from_slice(body.as_bytes()).unwrap();
        let kept = members_for(body.as_bytes(), &[&p, "/id"]).unwrap();
        assert_eq!(whole.pointer(&p), kept.pointer(&p));
        assert_eq!(whole.pointer("/id"), kept.pointer("/id"));
    }
}
