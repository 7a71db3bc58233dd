//! Redaction in one place. Secrets a run knows (bearer tokens, client secrets, passwords in URLs,
//! the tokens it obtains) are registered as they are read; every sink (console, stderr, logs,
//! result files, reports, the notify body) passes its text through [`output`] (a multi-line
//! text) or [`line()`] (one line, a field), which replace them with `***` in every form they take
//! ([`forms`]: raw, percent- or form-encoded, JSON-, Markdown- or HTML-escaped, base64 at any
//! alignment, so `Basic base64(id:secret)` too), together with the userinfo of any URL and the
//! values of cookies ([`scrub`]), and escape the control and bidi characters a target may have
//! sent ([`escape`]): a target's text cannot move the cursor or print a line of its own.
//! [`print()`] and [`eprint()`] write to stdout and stderr through [`output`], and a closed pipe
//! (`provbench run … | head -1`) is not an error there: what a reader stopped reading must not
//! stop the result files. Imports nothing from the crate.
//!
//! # Layout
//! - [`forms`]: the forms of a secret, and finding them in text.
//! - [`scrub`]: URL userinfo and cookie values, found by their place.
//! - [`escape`]: control and bidi characters made visible.

pub mod escape;
pub mod forms;
pub mod scrub;

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

/// What is known to be secret, longest first (a secret that contains another is replaced whole).
#[derive(Default)]
struct Known {
    /// Found raw or with any byte escaped ([`forms::find`]).
    secrets: Vec<String>,
    /// Found as they are: the base64 of every spelling of every secret.
    exact: Vec<String>,
}

static KNOWN: RwLock<Known> = RwLock::new(Known {
    secrets: Vec::new(),
    exact: Vec::new(),
});

/// Secrets shorter than this are not registered: replacing them would mangle ordinary text.
const SHORTEST: usize = 6;

fn insert(all: &mut Vec<String>, s: String) {
    if !all.contains(&s) {
        all.push(s);
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

impl Known {
    fn register(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() < SHORTEST || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        insert(&mut self.secrets, secret.to_string());
        for spelling in forms::spellings(secret) {
            for core in forms::base64_cores(spelling.as_bytes()) {
                insert(&mut self.exact, core);
            }
        }
    }

    /// How many characters the cut-off start of a secret's longest form may take in a sample:
    /// a byte escaped takes at most 6 characters (`&#x2F;`, `\u002f`), 8 to be safe; a base64
    /// form is matched as it is.
    fn margin(&self) -> usize {
        let escaped = self
            .secrets
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .saturating_mul(8);
        escaped.max(self.exact.iter().map(String::len).max().unwrap_or(0))
    }

    /// `text` with every form of every secret replaced by `***`.
    fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        // Until nothing is found: a replacement could join the halves of another form. Each one
        // shortens the text (every form is longer than `***`), so this ends.
        loop {
            let mut changed = false;
            for s in &self.secrets {
                if let Some(masked) = mask(&out, s.as_bytes()) {
                    out = Cow::Owned(masked);
                    changed = true;
                }
            }
            for s in &self.exact {
                if out.contains(s.as_str()) {
                    out = Cow::Owned(out.replace(s.as_str(), "***"));
                    changed = true;
                }
            }
            if !changed {
                return out;
            }
        }
    }
}

/// Remembers `secret` for the life of the process, so no output shows it in any form.
pub fn register(secret: &str) {
    KNOWN.write().unwrap_or_else(|e| e.into_inner()).register(secret);
}

/// An error and its causes on one line, as `{:#}` shows them but each text once (ldap3's I/O
/// error, for one, ends with the text of the rustls error it also gives as its source), redacted
/// and escaped as [`line()`].
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
    self::line(&line)
}

/// `text` with every registered secret, in every form, the userinfo of every URL and every
/// cookie value replaced by `***`.
pub fn secrets(text: &str) -> Cow<'_, str> {
    let mut out = KNOWN.read().unwrap_or_else(|e| e.into_inner()).mask(text);
    if let Cow::Owned(o) = scrub::userinfo(&out) {
        out = Cow::Owned(o);
    }
    if let Cow::Owned(o) = scrub::cookies(&out) {
        out = Cow::Owned(o);
    }
    out
}

/// `text` with every form of `secret` replaced by `***`, or `None` where it holds none.
fn mask(text: &str, secret: &[u8]) -> Option<String> {
    let (mut start, mut end) = forms::find(text, secret, 0)?;
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    loop {
        out.push_str(&text[done..start]);
        out.push_str("***");
        done = end;
        match forms::find(text, secret, end) {
            Some((s, e)) => (start, end) = (s, e),
            None => break,
        }
    }
    out.push_str(&text[done..]);
    Some(out)
}

/// A multi-line text on its way to a terminal or a file: [`secrets`] replaced, control and bidi
/// characters other than newline and tab escaped (`\r`, `\u{1b}`).
pub fn output(text: &str) -> String {
    escape::escape(&secrets(text), &['\n', '\t']).into_owned()
}

/// One line (a field, an error, a sample of an answer) on its way to any output: [`secrets`]
/// replaced and every control and bidi character escaped, newlines too, so that it stays one line.
pub fn line(text: &str) -> String {
    escape::escape(&secrets(text), &[]).into_owned()
}

/// The first `max` characters of a target's text, as [`line()`] shows it: redacted before it is
/// cut, so that a secret across the cut does not leave its first half behind.
pub fn sample(text: &str, max: usize) -> String {
    let shown = line(text);
    match shown.char_indices().nth(max) {
        Some((cut, _)) => shown[..cut].to_string(),
        None => shown,
    }
}

/// The first `max` characters of a target's answer (a body, of which `body` may be only the
/// first bytes: `complete` says whether it is all), as [`sample`] shows them. A secret cut by
/// the end of the bytes read is no longer recognisable, so what is shown never reaches the last
/// margin characters (eight times the longest registered secret) of an incomplete text: the bytes read grow (doubling, to all of
/// `body` at most) until the redacted text is long enough, and what is still too short loses
/// that margin. Every quote of an answer body goes through here.
pub fn sample_bytes(body: &[u8], complete: bool, max: usize) -> String {
    let margin = KNOWN.read().unwrap_or_else(|e| e.into_inner()).margin();
    let mut window = 4096;
    loop {
        let end = window.min(body.len());
        let shown = line(&String::from_utf8_lossy(&body[..end]));
        let whole = end == body.len() && complete;
        let count = shown.chars().count();
        if whole || count >= max + margin || end == body.len() {
            let keep = if whole {
                max
            } else {
                max.min(count.saturating_sub(margin))
            };
            return match shown.char_indices().nth(keep) {
                Some((cut, _)) => shown[..cut].to_string(),
                None => shown,
            };
        }
        window = window.saturating_mul(2);
    }
}

/// JSON text (a JSON log line, `compare --format json`) on its way to an output: [`secrets`]
/// replaced, and what JSON leaves raw escaped as JSON escapes ([`escape::json`]), so it stays
/// valid JSON.
pub fn json(text: &str) -> String {
    escape::json(&secrets(text)).into_owned()
}

/// Writes `bytes` and flushes, ignoring every error: a closed pipe or a full disk on a standard
/// stream must not stop the run (or panic, as `print!` does).
fn write_ignoring(mut to: impl Write, bytes: &[u8]) {
    let _ = to.write_all(bytes);
    let _ = to.flush();
}

/// `text` on stdout, through [`output`]; a closed stdout is ignored.
pub fn print(text: &str) {
    write_ignoring(std::io::stdout().lock(), output(text).as_bytes());
}

/// Whether stderr carries JSON lines (`--log-format json`): then [`eprint`] writes each of its
/// lines as a JSON object too, so a reader of the log never meets a line of plain text.
static STDERR_JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once by the logging set-up.
pub fn set_stderr_json(json: bool) {
    STDERR_JSON.store(json, std::sync::atomic::Ordering::Relaxed);
}

/// Whether stderr carries JSON lines (a progress line is then a structured event).
pub fn stderr_is_json() -> bool {
    STDERR_JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// `text` on stderr, through [`output`]; a closed stderr is ignored. With JSON logs each line is
/// an object as a log event is (`timestamp`, `level`, `message`, `target`): `ERROR` for a line
/// that starts `error: `, `WARN` for the others (what provbench says outside its log: a stop on
/// a signal, a deferred verdict).
pub fn eprint(text: &str) {
    let shown = output(text);
    if !stderr_is_json() {
        return write_ignoring(std::io::stderr().lock(), shown.as_bytes());
    }
    let timestamp = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let mut lines = String::new();
    for line in shown.lines().filter(|l| !l.trim().is_empty()) {
        let (level, message) = match line.strip_prefix("error: ") {
            Some(rest) => ("ERROR", rest),
            None => ("WARN", line),
        };
        let event = serde_json::json!({
            "timestamp": timestamp,
            "level": level,
            "message": message.trim(),
            "target": "provbench",
        });
        lines.push_str(&format!("{event}\n"));
    }
    write_ignoring(std::io::stderr().lock(), lines.as_bytes());
}

/// `text`, redacted and escaped already, on stdout; a closed stdout is ignored.
pub fn print_shown(text: &str) {
    write_ignoring(std::io::stdout().lock(), text.as_bytes());
}

/// `text`, redacted and escaped already, on stderr; a closed stderr is ignored.
pub fn eprint_shown(text: &str) {
    write_ignoring(std::io::stderr().lock(), text.as_bytes());
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
                // As the URL spells it, and decoded (as it is sent).
                if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8() {
                    register(&decoded);
                }
            }
            format!("{}***@{}", &url[..scheme_end], &url[scheme_end + at + 1..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
