//! What went wrong, right under the headline and before any chart: the thresholds that failed
//! or could not be judged, the checks that failed or were not judged (with their evidence and
//! examples), the operations that failed (per reason, with the first answers) and the
//! asynchronous series that never observed anything. Nothing at all when nothing went wrong.
//! Every string is escaped: reasons and answers may hold a target's text.

use std::fmt::Write as _;

use super::markup::{escape, threshold_row};
use super::readable::{self, CheckState};
use crate::results::Summary;

/// The section, or nothing.
pub fn render(out: &mut String, s: &Summary) {
    let mut body = String::new();
    thresholds(&mut body, s);
    checks(&mut body, s);
    operations(&mut body, s);
    never_observed(&mut body, s);
    if !body.is_empty() {
        let _ = write!(
            out,
            "<section id=\"what-failed\">\n<h2>What failed</h2>\n{body}</section>\n"
        );
    }
}

/// Failed thresholds, and those that could not be judged (an error, or declared but never
/// judged because the run ended first).
fn thresholds(out: &mut String, s: &Summary) {
    let failed: Vec<_> = s.thresholds.iter().filter(|v| !v.passed).collect();
    let unjudged: Vec<_> = if s.thresholds.is_empty() {
        s.declared_thresholds.iter().collect()
    } else {
        Vec::new()
    };
    if failed.is_empty() && unjudged.is_empty() {
        return;
    }
    out.push_str(
        "<table id=\"failed-thresholds\"><tr><th>threshold</th><th>series</th><th>limit</th><th>observed</th><th>result</th></tr>\n",
    );
    for v in failed {
        let result = match &v.error {
            Some(e) => format!("error: {e}"),
            None => "FAIL".to_string(),
        };
        out.push_str(&threshold_row(&v.expression, &v.observed_text, "bad", &result));
        out.push('\n');
    }
    for d in unjudged {
        let row = threshold_row(
            &d.expression,
            "-",
            "bad",
            "not judged: the run ended before it could be",
        );
        out.push_str(&row);
        out.push('\n');
    }
    out.push_str("</table>\n");
}

/// Checks that failed or were not judged, each with its evidence and examples.
fn checks(out: &mut String, s: &Summary) {
    let bad: Vec<_> = s
        .checks
        .iter()
        .filter(|c| readable::check_state(c) != CheckState::Passed)
        .collect();
    if bad.is_empty() {
        return;
    }
    out.push_str(
        "<table id=\"failed-checks\"><tr><th>check</th><th>result</th><th>evidence</th><th>examples</th></tr>\n",
    );
    for c in bad {
        let state = readable::check_state(c);
        let examples: Vec<String> = c
            .unjudged()
            .into_iter()
            .chain(c.examples.iter().map(|e| {
                let who = [e.user.as_deref(), e.service.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" in ");
                format!("{who}: {}", e.detail)
            }))
            .map(|e| escape(&e))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{} <span class=\"muted\">({})</span></td><td class=\"{}\">{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
            escape(&c.name),
            escape(&c.category),
            state.class(),
            state.word(),
            escape(&readable::evidence(c)),
            examples.join("<br>")
        );
    }
    out.push_str("</table>\n");
}

/// Why operations failed: per operation and reason, the count and the first answers.
fn operations(out: &mut String, s: &Summary) {
    if s.failures.is_empty() {
        return;
    }
    out.push_str(
        "<table id=\"failures\"><tr><th>operation</th><th>reason</th><th>count</th><th>first answers</th></tr>\n",
    );
    for f in &s.failures {
        let examples: Vec<String> = f.examples.iter().map(|e| escape(e)).collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
            escape(&f.op),
            escape(&f.reason),
            f.count,
            examples.join("<br>")
        );
    }
    out.push_str("</table>\n");
}

/// Series whose every observation timed out.
fn never_observed(out: &mut String, s: &Summary) {
    let Some(p) = s.probes.as_ref().filter(|p| !p.never_observed.is_empty()) else {
        return;
    };
    out.push_str("<ul id=\"never-observed\">\n");
    for n in &p.never_observed {
        let _ = writeln!(
            out,
            "<li class=\"bad\">never observed: {} (every observation timed out)</li>",
            escape(n)
        );
    }
    out.push_str("</ul>\n");
}
