//! Redaction in one place. Secrets a run knows (bearer tokens, client secrets, passwords in URLs,
//! the tokens it obtains) are registered as they are read; every sink (console, stderr, logs,
//! result files, reports, the notify body) passes its text through [`output`], which replaces
//! them with `***` and escapes control characters a target may have sent (an escape sequence in
//! an error body must not reach a terminal). URLs lose their userinfo with [`url`].
//! Imports nothing from the crate.

use std::borrow::Cow;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Secrets shorter than this are not registered: replacing them would mangle ordinary text.
const SHORTEST: usize = 6;

/// Remembers `secret` for the life of the process, so no output shows it.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < SHORTEST {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !all.iter().any(|s| s == secret) {
        all.push(secret.to_string());
        // Longest first, so a secret that contains another is replaced whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// An error and its causes on one line, as `{:#}` shows them but each text once (ldap3's I/O
/// error, for one, ends with the text of the rustls error it also gives as its source), redacted.
pub fn error(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if line.ends_with(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    output(&line)
}

/// `text` with every registered secret replaced by `***`.
pub fn secrets(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), "***"));
        }
    }
    out
}

/// Text on its way to a terminal or a file: secrets replaced, control characters other than
/// newline, carriage return and tab shown as `\x1b`-style escapes.
pub fn output(text: &str) -> String {
    let text = secrets(text);
    if !text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `url` without userinfo (`https://***@host/…`); a password in it is registered as a secret.
pub fn url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &url[scheme_end..scheme_end + at];
            if let Some((_, password)) = userinfo.split_once(':') {
                register(password);
            }
            format!("{}***@{}", &url[..scheme_end], &url[scheme_end + at + 1..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
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
    fn control_characters_are_escaped() {
        assert_eq!(output("\u{1b}[2Jred\u{7}\nnext"), "\\x1b[2Jred\\x07\nnext");
        assert_eq!(output("plain"), "plain");
    }
}
