//! The redactor's examples, and its properties over generated secrets and texts.

use base64::Engine;
use proptest::prelude::*;

use super::*;

#[test]
fn an_error_shows_each_cause_once() {
    let io = std::io::Error::other("invalid peer certificate: UnknownIssuer");
    #[derive(Debug)]
    struct Wrapping(std::io::Error);
    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "I/O error: {}", self.0)
        }
    }
    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let e = anyhow::Error::new(Wrapping(io)).context("cannot connect to ldaps://127.0.0.1:636");
    assert_eq!(
        error(&e),
        "cannot connect to ldaps://127.0.0.1:636: I/O error: invalid peer certificate: UnknownIssuer"
    );
    let plain = anyhow::anyhow!("no file x.pem").context("ca_file");
    assert_eq!(error(&plain), "ca_file: no file x.pem");
    let lying = anyhow::anyhow!("HTTP 500: oops\r\nall thresholds passed");
    assert_eq!(error(&lying), "HTTP 500: oops\\r\\nall thresholds passed");
}

#[test]
fn userinfo_and_registered_secrets_never_show() {
    assert_eq!(
        url("http://admin:hunter2-pass@idp.test:8443/scim/v2"),
        "http://***@idp.test:8443/scim/v2"
    );
    assert_eq!(url("https://idp.test/scim?x=a@b"), "https://idp.test/scim?x=a@b");
    assert_eq!(output("the password was hunter2-pass"), "the password was ***");
    register("client-secret-123");
    assert_eq!(
        output("400 invalid_client: client_secret=client-secret-123&grant_type=x"),
        "400 invalid_client: client_secret=***&grant_type=x"
    );
    register("abc");
    assert_eq!(output("abc"), "abc", "too short to be a secret worth mangling text for");
}

#[test]
fn userinfo_anywhere_in_a_line() {
    assert_eq!(
        secrets("INFO summary posted url=https://hook:s3cr3t-w@notify.test/x?a=b@c next"),
        "INFO summary posted url=https://***@notify.test/x?a=b@c next"
    );
    assert_eq!(
        secrets(r#"{"a":"ftp://u:p@h","b":"http://plain/x"}"#),
        r#"{"a":"ftp://***@h","b":"http://plain/x"}"#
    );
}

#[test]
fn cookie_values_never_show() {
    assert_eq!(
        secrets("echo: Cookie: sid=abc123; theme=dark\nSet-Cookie: KC_SESSION=zz9==; Path=/; HttpOnly"),
        "echo: Cookie: sid=***; theme=***\nSet-Cookie: KC_SESSION=***; Path=***; HttpOnly"
    );
    assert_eq!(
        secrets(r#"{"headers":{"cookie":"sid=abc123"}}"#),
        r#"{"headers":{"cookie":"sid=***"}}"#
    );
    assert_eq!(
        secrets("no cookies here, cookie monster"),
        "no cookies here, cookie monster"
    );
}

#[test]
fn a_basic_header_and_escaped_forms_never_show() {
    register("Sp ce+/=&%:@x");
    let basic = base64::engine::general_purpose::STANDARD.encode("provbench-client:Sp ce+/=&%:@x");
    let shown = secrets(&format!("echo Authorization: Basic {basic}")).into_owned();
    assert!(!shown.contains(&basic[8..]), "{shown}");
    for form in [
        "Sp+ce%2B%2F%3D%26%25%3A%40x",
        "Sp%20ce%2b%2f%3d%26%25%3a%40x",
        r#"Sp ce+\/=&%:@x"#,
        "Sp ce+/=&amp;%:@x",
        "Sp ce\\u002b/=&#38;%:@x",
    ] {
        assert_eq!(secrets(&format!("a {form} b")), "a *** b", "{form}");
    }
}

#[test]
fn a_sample_is_redacted_before_it_is_cut() {
    register("sample-secret-0042");
    let body = format!("{}sample-secret-0042 and more", "x".repeat(10));
    assert_eq!(sample(&body, 15), "xxxxxxxxxx*** a");
    assert_eq!(sample("a\nb", 10), "a\\nb");
}

/// Regression: answer bodies were cut (80, 120, 200 bytes) before they were redacted, and the
/// over-limit sample kept 120 bytes of the last chunk: a secret across the cut left its start.
/// Every offset around the cut, every form, a body complete or cut short, padded with secrets.
#[test]
fn a_body_sample_leaves_no_part_of_a_secret_cut_anywhere() {
    let secret = "body-sample-secret-7f3a9c";
    register(secret);
    let forms = [
        secret.to_string(),
        percent(secret, false),
        base64::engine::general_purpose::STANDARD.encode(format!("id:{secret}")),
    ];
    for form in &forms {
        for max in [20, 80, 120] {
            for lead in [0usize, 3] {
                for pad in 0..max + 2 * form.len() {
                    let body = format!("{}{}x{form}{form}", secret.repeat(lead), "x".repeat(pad));
                    for end in [body.len(), body.len() - form.len() / 2, 5000.min(body.len())] {
                        for complete in [true, false] {
                            let bytes = &body.as_bytes()[..end];
                            let complete = complete && end == body.len();
                            let shown = sample_bytes(bytes, complete, max);
                            assert!(shown.chars().count() <= max, "{shown}");
                            for i in 0..=secret.len() - 6 {
                                assert!(
                                    !shown.contains(&secret[i..i + 6]),
                                    "{form} at {pad}, cut at {end}: {shown}"
                                );
                            }
                            // The encoded forms' own pieces (past base64's `id:`).
                            for i in 4..=form.len() - 8 {
                                assert!(
                                    !shown.contains(&form[i..i + 8]),
                                    "{form} at {pad}, cut at {end}: {shown}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    // A body without secrets is shown as it is, to `max`.
    assert_eq!(sample_bytes(b"plain answer", true, 5), "plain");
}

#[test]
fn control_and_bidi_characters_are_escaped() {
    assert_eq!(output("\u{1b}[2Jred\u{7}\nnext\r"), "\\u{1b}[2Jred\\u{7}\nnext\\r");
    assert_eq!(line("a\r\nb\tc\u{202e}d\u{85}"), "a\\r\\nb\\tc\\u{202e}d\\u{85}");
    assert_eq!(output("plain"), "plain");
}

/// Printable text of the kind secrets are made of, with the characters encoders escape.
fn secret() -> impl Strategy<Value = String> {
    "[ -~]{6,40}".prop_filter("not blank", |s| s.trim().len() >= SHORTEST && s.trim() == s)
}

fn percent(s: &str, lower: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ if lower => format!("%{b:02x}"),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// No form of a registered secret survives: raw, base64 of it and of `id:secret` (also of
    /// the form-encoded pair, as RFC 6749 Basic sends it), percent-encoded in either hex case,
    /// form-encoded.
    #[test]
    fn no_form_of_a_secret_survives(
        secret in secret(),
        id in "[ -~]{0,20}",
        before in "[a-z ]{0,10}",
        after in "[a-z ]{0,10}",
    ) {
        // A registry of its own: the process-wide one would mask other tests' texts.
        let mut known = Known::default();
        known.register(&secret);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let forms = [
            secret.clone(),
            b64(&secret),
            b64(&format!("{id}:{secret}")),
            b64(&format!("{}:{}", form(&id), form(&secret))),
            percent(&secret, false),
            percent(&secret, true),
            form(&secret),
        ];
        for f in &forms {
            let shown = known.mask(&format!("{before}{f}{after}")).into_owned();
            prop_assert!(!shown.contains(f.as_str()), "{f:?} survived in {shown:?}");
            prop_assert!(!shown.contains(secret.as_str()), "{secret:?} survived in {shown:?}");
        }
    }

    /// Whatever a target sends, a line shows no control or bidi character, and an output
    /// none but newline and tab.
    #[test]
    fn escaped_text_holds_no_hidden_character(text in any::<String>(), tail in "[\\x00-\\x1f\\x7f-\\u{9f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}\\u{200e}\\u{200f}\\u{61c}]{0,8}") {
        let text = format!("{text}{tail}");
        prop_assert!(!line(&text).chars().any(escape::hidden));
        prop_assert!(!output(&text).chars().any(|c| escape::hidden(c) && c != '\n' && c != '\t'));
        // A JSON line stays JSON, and reads back as the text sent.
        let shown = escape::json(&serde_json::to_string(&text).unwrap()).into_owned();
        prop_assert!(!shown.chars().any(escape::hidden));
        prop_assert_eq!(serde_json::from_str::<String>(&shown).unwrap(), text);
    }
}
