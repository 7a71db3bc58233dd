//! The top of `report.html`, what a release review reads first and all it reads when the run
//! passed: the verdict, the thresholds (how many passed) and every check with its evidence
//! (judged cases against the cases a pass needs), the slowest operation by p99, the worst sync
//! lag per service, and the errors. Every figure carries a `data-` attribute, so CI finds it in
//! the rendered DOM. Every string is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::markup::escape;
use super::readable;
use crate::results::{MetricSummary, RunOutcome, Summary, format_micros};
use crate::vocab::{metric, tag};

/// The headline section.
pub fn render(out: &mut String, s: &Summary) {
    let class = verdict_class(s);
    let _ = writeln!(
        out,
        "<section id=\"headline\" data-verdict=\"{}\">\n<div class=\"verdict {class}\" id=\"verdict\">{}</div>",
        escape(s.outcome.label()),
        escape(&s.outcome_label())
    );
    if let Some(why) = why(s) {
        let _ = writeln!(out, "<p class=\"why {class}\">{}</p>", escape(&why));
    }
    out.push_str("<div class=\"cards\">\n");
    judged(out, s);
    slowest(out, s);
    lags(out, s);
    errors(out, s);
    out.push_str("</div>\n</section>\n");
}

/// Green for a pass on something judged, amber for a pass on nothing, red otherwise.
pub fn verdict_class(s: &Summary) -> &'static str {
    match s.outcome {
        RunOutcome::Passed if s.judged_nothing() => "warn",
        RunOutcome::Passed => "ok",
        _ => "bad",
    }
}

/// One line on why the verdict is not a plain pass.
fn why(s: &Summary) -> Option<String> {
    if s.judged_nothing() {
        return Some(Summary::NOTHING_DECLARED.to_string());
    }
    let failed_thresholds = s.thresholds.iter().filter(|v| !v.passed).count();
    let failed_checks = s.checks.iter().filter(|c| c.failed > 0).count();
    let unjudged = s.checks.iter().filter(|c| c.unjudged().is_some()).count();
    let mut parts = Vec::new();
    if failed_thresholds > 0 {
        parts.push(format!("{failed_thresholds} threshold(s) failed"));
    }
    if failed_checks > 0 {
        parts.push(format!("{failed_checks} check(s) failed"));
    }
    if unjudged > 0 {
        parts.push(format!("{unjudged} check(s) not judged"));
    }
    if s.outcome == RunOutcome::Error
        && let Some(reason) = s.error_reason()
    {
        parts.push(reason);
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn card(out: &mut String, id: &str, title: &str, body: &str) {
    let _ = writeln!(
        out,
        "<div class=\"card\" id=\"{id}\"><h3>{}</h3>{body}</div>",
        escape(title)
    );
}

/// Thresholds passed of those judged, and each check with its evidence.
fn judged(out: &mut String, s: &Summary) {
    let passed = s.thresholds.iter().filter(|v| v.passed).count();
    let total = s.thresholds.len().max(s.declared_thresholds.len());
    let class = if passed == total { "ok" } else { "bad" };
    let mut body = format!(
        "<p class=\"big {class}\" data-thresholds-passed=\"{passed}\" data-thresholds-total=\"{total}\">{passed}/{total} thresholds passed</p>"
    );
    if !s.checks.is_empty() {
        body.push_str("<table class=\"plain checks\"><tr><th>check</th><th>result</th><th title=\"judged cases / the cases a pass needs ([checks] min_evidence)\">judged/needed</th></tr>");
        for c in &s.checks {
            let state = readable::check_state(c);
            let _ = write!(
                body,
                "<tr data-check=\"{0}\" data-judged=\"{1}\" data-needed=\"{2}\" data-state=\"{3}\"><td>{0}</td><td class=\"{4}\">{3}</td><td>{1}/{2}</td></tr>",
                escape(&c.name),
                c.judged(),
                c.min_evidence,
                state.word(),
                state.class(),
            );
        }
        body.push_str("</table>");
    }
    card(out, "judged", "Thresholds and checks", &body);
}

/// The operation with the highest p99.
fn slowest(out: &mut String, s: &Summary) {
    let Some(m) = s.operations().filter(|m| m.p99_us.is_some()).max_by_key(|m| m.p99_us) else {
        return;
    };
    let op = m.tags.get(tag::OP).map_or("all", String::as_str);
    let body = format!(
        "<p class=\"big\" data-slowest=\"{0}\">{0}</p><p>p99 {1} · p50 {2} · {3} calls</p>",
        escape(op),
        format_micros(m.p99_us),
        format_micros(m.p50_us),
        m.count
    );
    card(out, "slowest", "Slowest operation (p99)", &body);
}

/// Per service, its sync-lag series with the highest p99.
fn lags(out: &mut String, s: &Summary) {
    let mut worst: BTreeMap<&str, &MetricSummary> = BTreeMap::new();
    for m in s
        .metrics
        .iter()
        .filter(|m| m.metric == metric::SYNC_LAG && m.p99_us.is_some())
    {
        let service = m.tags.get(tag::SERVICE).map_or("all", String::as_str);
        let e = worst.entry(service).or_insert(m);
        if m.p99_us > e.p99_us {
            *e = m;
        }
    }
    if worst.is_empty() {
        return;
    }
    let mut body = String::from("<table class=\"plain\">");
    for (service, m) in worst {
        let class = if m.timeouts > 0 { " class=\"bad\"" } else { "" };
        let _ = write!(
            body,
            "<tr data-lag-service=\"{0}\"><td>{0}</td><td{class}>{1}</td><td class=\"muted\">{2}{3}</td></tr>",
            escape(service),
            format_micros(m.p99_us),
            escape(m.tags.get(tag::OP).map_or("", String::as_str)),
            if m.timeouts > 0 {
                format!(", {} timed out", m.timeouts)
            } else {
                String::new()
            }
        );
    }
    body.push_str("</table>");
    card(out, "worst-lag", "Worst sync lag (p99) per service", &body);
}

/// Operations that failed, and observations that never arrived.
fn errors(out: &mut String, s: &Summary) {
    let ops = s.operation_count();
    let failed: u64 = s.operations().map(|m| m.errors).sum();
    let limited: u64 = s.operations().map(|m| m.rate_limited).sum();
    let timeouts: u64 = s
        .metrics
        .iter()
        .filter(|m| m.metric != metric::API_LATENCY)
        .map(|m| m.timeouts)
        .sum();
    let share = if ops > 0 {
        failed as f64 / ops as f64 * 100.0
    } else {
        0.0
    };
    let class = if failed > 0 { "bad" } else { "ok" };
    let mut body = format!(
        "<p class=\"big {class}\" data-errors=\"{failed}\">{failed} of {ops} operations failed</p><p>{share:.2}%"
    );
    if limited > 0 {
        let _ = write!(body, " · {limited} rate limited (429)");
    }
    if timeouts > 0 {
        let _ = write!(
            body,
            " · <span class=\"bad\">{timeouts} observation(s) timed out</span>"
        );
    }
    body.push_str("</p>");
    card(out, "errors", "Errors", &body);
}
