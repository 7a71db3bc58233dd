//! The reference part of `report.html`, under the charts: every threshold (in readable parts),
//! the metrics table, journeys, every check with its evidence, the probes' account, cleanup and
//! notes. What failed is also above, in [`failures`](super::failures); here it is in context.
//! Every string is escaped.

use std::fmt::Write as _;

use super::markup::{escape, threshold_row};
use super::readable;
use super::table::{Emphasis, GroupKind, MetricsTable};
use crate::results::{Summary, format_micros};
use crate::vocab::series::label;

/// Every section, in order.
pub fn render(out: &mut String, s: &Summary) {
    thresholds(out, s);
    metrics_table(out, s);
    journeys(out, s);
    checks(out, s);
    run_accounts(out, s);
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
    out.push_str("<table id=\"thresholds\"><tr><th>threshold</th><th>series</th><th>limit</th><th>observed</th><th>result</th></tr>\n");
    for v in &s.thresholds {
        let (class, text) = match (&v.error, v.passed) {
            (Some(e), _) => ("bad", format!("error: {e}")),
            (None, true) => ("ok", "pass".to_string()),
            (None, false) => ("bad", "FAIL".to_string()),
        };
        out.push_str(&threshold_row(&v.expression, &v.observed_text, class, &text));
        out.push('\n');
    }
    out.push_str("</table>\n");
}

/// The metrics table as one HTML table, a `<tbody>` per group headed by its own columns; every
/// series by its readable label (its full key on hover), rows of a failed threshold in red,
/// rows with errors in amber.
fn metrics_table(out: &mut String, s: &Summary) {
    out.push_str("<h2>Latency and the asynchronous half</h2>\n<table id=\"metrics\">\n");
    for g in &MetricsTable::build(s).groups {
        let kind = match g.kind {
            GroupKind::Operations => "operations",
            GroupKind::Observed => "observed",
        };
        let _ = write!(out, "<tbody class=\"{kind}\"><tr><th>{}</th>", g.title);
        if g.kind == GroupKind::Observed {
            out.push_str("<th>series</th>");
        }
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
            let _ = write!(out, "<tr{class} title=\"{}\">", escape(&r.key));
            match g.kind {
                GroupKind::Operations => {
                    let _ = write!(out, "<td>{}</td>", escape(&r.label));
                }
                GroupKind::Observed => {
                    let _ = write!(
                        out,
                        "<td>{}</td><td>{}</td>",
                        escape(&readable::metric_name(&r.metric)),
                        escape(&r.series)
                    );
                }
            }
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
    out.push_str("<table id=\"checks\"><tr><th>check</th><th>category</th><th>result</th><th>judged/needed</th><th>passed</th><th>failed</th><th>overtaken</th></tr>\n");
    for c in &s.checks {
        let state = readable::check_state(c);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            escape(&c.category),
            state.class(),
            state.word(),
            c.judged(),
            c.min_evidence,
            c.passed,
            c.failed,
            c.skipped
        );
    }
    out.push_str("</table>\n");
    // What a check did not attempt, and why: beside the verdicts, in a table of its own.
    let notes: Vec<(&str, &String)> = s
        .checks
        .iter()
        .flat_map(|c| c.notes.iter().map(move |n| (c.name.as_str(), n)))
        .collect();
    if !notes.is_empty() {
        out.push_str("<table id=\"check-notes\"><tr><th>check</th><th>not attempted, and why</th></tr>\n");
        for (name, note) in notes {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"text\">{}</td></tr>",
                escape(name),
                escape(note)
            );
        }
        out.push_str("</table>\n");
    }
}

/// What the probes could not measure (problems, users still downstream after cleanup) and the
/// resolution of every observed series.
fn probe_tables(out: &mut String, s: &Summary, p: &crate::results::ProbeReport) {
    if !p.problems.is_empty() || !p.unjudged.is_empty() {
        out.push_str("<table id=\"probe-problems\"><tr><th>not judged, or a problem of the probes</th></tr>\n");
        for n in &p.unjudged {
            let _ = writeln!(out, "<tr><td class=\"bad\">not judged: {}</td></tr>", escape(n));
        }
        for n in &p.problems {
            let _ = writeln!(out, "<tr><td class=\"text\">{}</td></tr>", escape(n));
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
        out.push_str("<table id=\"observations\"><tr><th>observed</th><th>series</th><th>observed</th><th>timeouts</th><th>resolution median</th><th>resolution worst</th></tr>\n");
        for m in observed {
            let _ = writeln!(
                out,
                "<tr title=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.key().to_string()),
                escape(&readable::metric_name(&m.metric)),
                escape(&label(&m.key())),
                m.count - m.timeouts.min(m.count),
                m.timeouts,
                format_micros(m.resolution_us),
                format_micros(m.resolution_max_us)
            );
        }
        out.push_str("</table>\n");
    }
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
