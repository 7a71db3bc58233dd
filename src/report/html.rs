//! `report.html`: one self-contained file (inline CSS and SVG charts, no script, nothing fetched)
//! with the run header, thresholds, the latency table, throughput and errors over time, latency
//! percentiles over time, queue delay and sync lag per service, and the configuration used.
//! Every string is escaped: names, tags and notes may come from the target. The latency table
//! lays out the [`MetricsTable`]; the charts are [`timeline`]'s.

use std::fmt::Write as _;

/// Re-exported for the capacity report, which escapes the same way.
pub use super::markup::escape;
use super::table::{Emphasis, GroupKind, MetricsTable};
use super::timeline;
use crate::metrics::intervals::IntervalRow;
use crate::results::{RunOutcome, Summary, format_micros};

/// The whole page: a list of sections.
pub fn render(s: &Summary, intervals: &[IntervalRow], workload_toml: &str) -> String {
    let s = &super::one_line(s);
    let mut out = String::new();
    head(&mut out, s);
    thresholds(&mut out, s);
    metrics_table(&mut out, s);
    out.push_str("<h2>Over time</h2>\n");
    out.push_str(&timeline::render(s, intervals));
    journeys(&mut out, s);
    failures(&mut out, s);
    checks(&mut out, s);
    run_accounts(&mut out, s);
    let _ = writeln!(
        out,
        "<h2>Configuration</h2>\n<pre id=\"configuration\">{}</pre>\n</body></html>",
        escape(workload_toml)
    );
    out
}

fn head(out: &mut String, s: &Summary) {
    let class = match s.outcome {
        RunOutcome::Passed if s.judged_nothing() => "warn",
        RunOutcome::Passed => "ok",
        _ => "bad",
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>provbench · {}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:24px;color:#111;max-width:1000px}}table{{border-collapse:collapse;margin:8px 0 20px}}\
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:right;font-size:13px}}td:first-child,th:first-child{{text-align:left}}\
.ok{{color:#15803d}}.bad{{color:#b91c1c}}.warn{{color:#b45309}}figure{{margin:12px 0}}figcaption{{font-weight:600;font-size:14px}}pre{{background:#f6f6f6;padding:12px;overflow:auto}}\
figure svg{{max-width:100%;height:auto}}ul.legend{{list-style:none;padding:0;margin:4px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}}\
ul.legend span{{display:inline-block;width:12px;height:4px;margin-right:6px;vertical-align:middle}}\
</style></head><body>\n",
        escape(&s.workload)
    );
    let _ = writeln!(
        out,
        "<h1>provbench · {} · <span class=\"{class}\">{}</span></h1>",
        escape(&s.workload),
        s.outcome_label().to_lowercase()
    );
    if let Some(d) = &s.description {
        let _ = writeln!(out, "<p>{}</p>", escape(d));
    }
    let _ = writeln!(
        out,
        "<table id=\"header\"><tr><th>run</th><td>{}</td></tr><tr><th>target</th><td>{} {}</td></tr><tr><th>load</th><td>{}</td></tr>\
<tr><th>started</th><td>{}</td></tr><tr><th>ended</th><td>{}</td></tr><tr><th>achieved</th><td>{:.1} journeys/s, {:.1} ops/s over {:.1} s</td></tr></table>",
        escape(&s.run_id),
        escape(&s.target.kind),
        escape(&s.target.url),
        escape(&s.load.description),
        escape(&s.started_at),
        escape(s.ended_at.as_deref().unwrap_or("-")),
        s.load.achieved_rate,
        s.load.operations_per_second,
        s.load.load_duration_s
    );
}

fn thresholds(out: &mut String, s: &Summary) {
    out.push_str("<h2>Thresholds</h2>\n");
    if s.thresholds.is_empty() {
        if s.judged_nothing() {
            let _ = writeln!(out, "<p class=\"warn\">{}</p>", escape(Summary::NOTHING_DECLARED));
        } else if s.declared_thresholds.is_empty() {
            out.push_str("<p>No thresholds declared.</p>\n");
        } else {
            let list: Vec<String> = s
                .declared_thresholds
                .iter()
                .map(|d| format!("<code>{}</code>", escape(&d.expression)))
                .collect();
            let _ = writeln!(
                out,
                "<p class=\"bad\">Not judged: the run ended before it could be. Declared: {}.</p>",
                list.join(", ")
            );
        }
        return;
    }
    out.push_str("<table id=\"thresholds\"><tr><th>threshold</th><th>observed</th><th>result</th></tr>\n");
    for v in &s.thresholds {
        let (class, text) = match (&v.error, v.passed) {
            (Some(e), _) => ("bad", format!("error: {e}")),
            (None, true) => ("ok", "pass".to_string()),
            (None, false) => ("bad", "FAIL".to_string()),
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            escape(&v.expression),
            escape(&v.observed_text),
            escape(&text)
        );
    }
    out.push_str("</table>\n");
}

/// The metrics table as one HTML table, a `<tbody>` per group headed by its own columns;
/// every series by its full key, rows of a failed threshold in red, rows with errors in amber.
fn metrics_table(out: &mut String, s: &Summary) {
    out.push_str("<h2>Latency and the asynchronous half</h2>\n<table id=\"metrics\">\n");
    for g in &MetricsTable::build(s).groups {
        let kind = match g.kind {
            GroupKind::Operations => "operations",
            GroupKind::Observed => "observed",
        };
        let _ = write!(out, "<tbody class=\"{kind}\"><tr><th>{}</th>", g.title);
        for c in &g.columns {
            let _ = write!(out, "<th title=\"{}\">{}</th>", escape(c.about), escape(c.header));
        }
        out.push_str("</tr>\n");
        for r in &g.rows {
            let class = match r.emphasis {
                Emphasis::Failed => " class=\"bad\"",
                Emphasis::Errors => " class=\"warn\"",
                Emphasis::None => "",
            };
            let _ = write!(out, "<tr{class}><td>{}</td>", escape(&r.key));
            for c in &r.cells {
                let _ = write!(out, "<td>{}</td>", escape(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table>\n");
}

fn journeys(out: &mut String, s: &Summary) {
    if s.journeys.is_empty() {
        return;
    }
    out.push_str("<h2>Journeys</h2>\n<table id=\"journeys\"><tr><th>journey</th><th>weight</th><th>done</th><th>failed</th><th>cut short</th></tr>\n");
    for j in &s.journeys {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&j.name),
            j.weight,
            j.completed,
            j.failed,
            j.stopped
        );
    }
    out.push_str("</table>\n");
}

fn checks(out: &mut String, s: &Summary) {
    out.push_str("<h2>Checks</h2>\n");
    if s.checks.is_empty() {
        out.push_str("<p>No checks declared.</p>\n");
        return;
    }
    out.push_str("<table id=\"checks\"><tr><th>check</th><th>category</th><th>passed</th><th>failed</th><th>overtaken</th><th>examples</th></tr>\n");
    for c in &s.checks {
        let class = if c.is_failure() { "bad" } else { "ok" };
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
            "<tr><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&c.name),
            escape(&c.category),
            c.passed,
            c.failed,
            c.skipped,
            examples.join("<br>")
        );
    }
    out.push_str("</table>\n");
}

/// What the probes could not measure: series that never observed anything, problems, and
/// users still downstream after cleanup; and the resolution of every observed series.
fn probe_tables(out: &mut String, s: &Summary, p: &crate::results::ProbeReport) {
    if p.unproven() || !p.problems.is_empty() {
        out.push_str("<table id=\"probe-problems\"><tr><th>never observed, not judged, or a problem</th></tr>\n");
        for n in &p.unjudged {
            let _ = writeln!(out, "<tr><td class=\"bad\">not judged: {}</td></tr>", escape(n));
        }
        for n in &p.never_observed {
            let _ = writeln!(
                out,
                "<tr><td class=\"bad\">{} (every observation timed out)</td></tr>",
                escape(n)
            );
        }
        for n in &p.problems {
            let _ = writeln!(out, "<tr><td>{}</td></tr>", escape(n));
        }
        out.push_str("</table>\n");
    }
    if !p.leftovers.is_empty() {
        out.push_str("<table id=\"leftovers\"><tr><th>service</th><th>users still there after cleanup</th></tr>\n");
        for (service, n) in &p.leftovers {
            let class = if *n > 0 { " class=\"bad\"" } else { "" };
            let _ = writeln!(out, "<tr><td>{}</td><td{class}>{n}</td></tr>", escape(service));
        }
        out.push_str("</table>\n");
    }
    let observed: Vec<_> = s.metrics.iter().filter(|m| m.resolution_us.is_some()).collect();
    if !observed.is_empty() {
        out.push_str("<table id=\"observations\"><tr><th>series</th><th>observed</th><th>timeouts</th><th>resolution median</th><th>resolution worst</th></tr>\n");
        for m in observed {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.key().to_string()),
                m.count - m.timeouts.min(m.count),
                m.timeouts,
                format_micros(m.resolution_us),
                format_micros(m.resolution_max_us)
            );
        }
        out.push_str("</table>\n");
    }
}

/// Why operations failed: per operation and reason, the count and the first answers.
fn failures(out: &mut String, s: &Summary) {
    if s.failures.is_empty() {
        return;
    }
    out.push_str("<h2>Failures</h2>\n<table id=\"failures\"><tr><th>operation</th><th>reason</th><th>count</th><th>first answers</th></tr>\n");
    for f in &s.failures {
        let examples: Vec<String> = f.examples.iter().map(|e| escape(e)).collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&f.op),
            escape(&f.reason),
            f.count,
            examples.join("<br>")
        );
    }
    out.push_str("</table>\n");
}

/// Probes, cleanup and notes.
fn run_accounts(out: &mut String, s: &Summary) {
    if let Some(p) = &s.probes {
        let _ = writeln!(
            out,
            "<h2>Probes</h2>\n<p>Sample {}; {} writes observed, {} overtaken by a later write ({:.1}%), {} deletes of users never seen in the service read (not timed), {} shed, {} abandoned; {} probe requests ({:.1}% of all requests).</p>",
            p.sample,
            p.writes_observed,
            p.overtaken,
            p.overtaken_share * 100.0,
            p.unconfirmed,
            p.shed,
            p.abandoned,
            p.probe_requests,
            p.share_of_requests * 100.0
        );
        probe_tables(out, s, p);
    }
    if let Some(c) = &s.cleanup {
        let _ = writeln!(
            out,
            "<h2>Cleanup</h2>\n<p>{} in {} ms{}.</p>",
            escape(&c.counts()),
            c.duration_ms,
            if c.timed_out { " (timed out)" } else { "" }
        );
    }
    if !s.notes.is_empty() {
        out.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &s.notes {
            let _ = writeln!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>\n");
    }
}
