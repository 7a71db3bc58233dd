//! The table printed at the end of a run: readable at a glance. Lays out the
//! [`MetricsTable`] as text columns, with the verdicts, checks and accounts of the run around it;
//! [`brief`] is the same report cut to what `--quiet` keeps. Its last lines name the results
//! folder and `report.html`.

use std::fmt::Write as _;

use super::table::MetricsTable;
use crate::results::{CheckReport, CleanupReport, Summary, Verdict};

pub fn render(s: &Summary, results_dir: &str) -> String {
    let s = &super::one_line(s);
    let mut out = String::new();
    header(&mut out, s);
    table(&mut out, s);
    verdicts(&mut out, s);
    checks(&mut out, s);
    footer(&mut out, s, results_dir);
    crate::redact::output(&out)
}

/// `--quiet`: the verdict line, every threshold and check that did not pass (with what was
/// observed and why), and where the results are.
pub fn brief(s: &Summary, results_dir: &str) -> String {
    let s = &super::one_line(s);
    let mut out = format!("{}\n", verdict_line(s));
    if let Some(line) = unjudged_thresholds(s) {
        out.push_str(&line);
    }
    for v in s.thresholds.iter().filter(|v| !v.passed || v.error.is_some()) {
        out.push_str(&threshold_line(v));
    }
    for c in s.checks.iter().filter(|c| c.is_failure()) {
        out.push_str(&check_line(c));
    }
    locations(&mut out, results_dir);
    crate::redact::output(&out)
}

fn verdict_line(s: &Summary) -> String {
    format!("provbench · {} · run {} · {}", s.workload, s.run_id, s.outcome_label())
}

fn header(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "\n{}", verdict_line(s));
    let _ = writeln!(out, "target   {} {}", s.target.kind, s.target.url);
    let l = &s.load;
    let _ = write!(
        out,
        "load     {}\n         achieved {:.1} journeys/s, {:.1} ops/s over {:.1}s",
        l.description, l.achieved_rate, l.operations_per_second, l.load_duration_s
    );
    if let Some(t) = l.target_rate {
        let _ = write!(out, " (target {t:.1}/s)");
    }
    out.push('\n');
    if l.late_starts > 0 || l.dropped_arrivals > 0 {
        let _ = writeln!(
            out,
            "         {} late starts, {} dropped arrivals (admin pool exhausted: raise max_admins)",
            l.late_starts, l.dropped_arrivals
        );
    }
}

/// The metrics table as text columns, a block per group, each column as wide as its widest
/// cell and the name column shared so the blocks start alike. Emphasis is not drawn: the
/// errors column shows errors, and the verdict lines below name every failed threshold.
fn table(out: &mut String, s: &Summary) {
    let t = MetricsTable::build(s).at_a_glance();
    let name_width = t
        .groups
        .iter()
        .flat_map(|g| std::iter::once(g.title).chain(g.rows.iter().map(|r| r.label.as_str())))
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0);
    for g in &t.groups {
        let widths: Vec<usize> = g
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                g.rows
                    .iter()
                    .map(|r| r.cells[i].chars().count())
                    .fold(c.header.chars().count(), usize::max)
            })
            .collect();
        out.push('\n');
        line(out, g.title, g.columns.iter().map(|c| c.header), name_width, &widths);
        for r in &g.rows {
            line(out, &r.label, r.cells.iter().map(String::as_str), name_width, &widths);
        }
    }
}

/// One line of the table: the name left-aligned, every value right-aligned (all are numbers).
fn line<'a>(out: &mut String, name: &str, cells: impl Iterator<Item = &'a str>, name_width: usize, widths: &[usize]) {
    let _ = write!(out, "{name:<name_width$}");
    for (cell, width) in cells.zip(widths) {
        let _ = write!(out, "  {cell:>width$}");
    }
    out.push('\n');
}

/// Thresholds declared but never judged (the run ended before it could judge them).
fn unjudged_thresholds(s: &Summary) -> Option<String> {
    (s.thresholds.is_empty() && !s.declared_thresholds.is_empty()).then(|| {
        format!(
            "not judged (the run ended before it could be): {}\n",
            s.declared_thresholds
                .iter()
                .map(|d| d.expression.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

/// One threshold's verdict, with what was observed (and why it could not be judged).
fn threshold_line(v: &Verdict) -> String {
    let mark = match (&v.error, v.passed) {
        (Some(_), _) => "ERROR",
        (None, true) => "pass ",
        (None, false) => "FAIL ",
    };
    let mut line = format!("{mark} {}  (observed {})", v.expression, v.observed_text);
    if let Some(e) = &v.error {
        let _ = write!(line, ": {e}");
    }
    line.push('\n');
    line
}

/// One check's verdict, with its counts and the first example (or why it was not judged).
fn check_line(c: &CheckReport) -> String {
    let mark = if c.is_failure() { "FAIL " } else { "pass " };
    let mut line = format!("{mark} check {}: {} passed, {} failed", c.name, c.passed, c.failed);
    if c.skipped > 0 {
        let _ = write!(line, ", {} overtaken", c.skipped);
    }
    if c.min_evidence > 0 {
        let _ = write!(line, " ({} judged, {} needed)", c.judged(), c.min_evidence);
    }
    if let Some(e) = &c.unjudged() {
        let _ = write!(line, ": {e}");
    } else if let Some(ex) = c.examples.first() {
        let who = [ex.user.as_deref(), ex.service.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" in ");
        let _ = write!(line, " (e.g. {who}: {})", ex.detail);
    }
    line.push('\n');
    line
}

fn verdicts(out: &mut String, s: &Summary) {
    if s.judged_nothing() {
        let _ = writeln!(out, "\n{}", Summary::NOTHING_DECLARED);
    }
    if let Some(line) = unjudged_thresholds(s) {
        let _ = write!(out, "\n{line}");
    }
    if !s.thresholds.is_empty() {
        out.push('\n');
        s.thresholds.iter().for_each(|v| out.push_str(&threshold_line(v)));
    }
}

fn checks(out: &mut String, s: &Summary) {
    if !s.checks.is_empty() {
        out.push('\n');
        s.checks.iter().for_each(|c| out.push_str(&check_line(c)));
    }
    if let Some(c) = &s.check_cost {
        let _ = writeln!(
            out,
            "  checks sent {} requests of their own, {:.0}% of all requests",
            c.requests,
            c.share_of_requests * 100.0
        );
    }
}

/// Journeys, cleanup, notes and where the results are.
fn footer(out: &mut String, s: &Summary, results_dir: &str) {
    let journeys: Vec<String> = s
        .journeys
        .iter()
        .map(|j| {
            let stopped = if j.stopped > 0 {
                format!(", {} cut short by the end", j.stopped)
            } else {
                String::new()
            };
            format!("{} {} done, {} failed{stopped}", j.name, j.completed, j.failed)
        })
        .collect();
    let _ = writeln!(out, "\njourneys {}", journeys.join("; "));
    for f in &s.failures {
        let _ = writeln!(
            out,
            "failed   {} ({}) ×{}: {}",
            f.op,
            f.reason,
            f.count,
            f.examples.first().map(String::as_str).unwrap_or("")
        );
    }
    if let Some(p) = &s.probes {
        let _ = writeln!(
            out,
            "probes   {} writes observed (sample {}), {} overtaken ({:.0}%){}, {} shed; {} probe requests, {:.0}% of all requests",
            p.writes_observed,
            p.sample,
            p.overtaken,
            p.overtaken_share * 100.0,
            match p.unconfirmed {
                0 => String::new(),
                n => format!(", {n} deletes of users never seen there (not timed)"),
            },
            p.shed,
            p.probe_requests,
            p.share_of_requests * 100.0
        );
        if p.not_followed > 0 {
            let _ = writeln!(
                out,
                "probes   held to {:.0}% of requests: {} writes of sampled users not observed",
                p.max_share * 100.0,
                p.not_followed
            );
        }
    }
    if let Some(c) = &s.cleanup {
        out.push_str(&cleanup_lines(&s.run_id, c));
    }
    for n in &s.notes {
        let _ = writeln!(out, "note     {n}");
    }
    locations(out, results_dir);
}

/// The last lines: the results folder and the page to open.
fn locations(out: &mut String, results_dir: &str) {
    let _ = writeln!(out, "results  {results_dir}");
    let html = std::path::Path::new(results_dir).join("report.html");
    let _ = writeln!(out, "report   {}", html.display());
}

/// What cleanup did, what it left (a few of them, with why) and the command that removes it.
/// What cleanup did, a few lines; ids, names and reasons from the target each kept on one line.
pub fn cleanup_lines(run_id: &str, c: &CleanupReport) -> String {
    let mut out = format!("cleanup  {} in {} ms", c.counts(), c.duration_ms);
    if c.retries > 0 || c.rate_limited > 0 {
        out.push_str(&format!(" ({} retries, {} answered 429)", c.retries, c.rate_limited));
    }
    if c.timed_out {
        out.push_str(" (timed out)");
    }
    out.push('\n');
    for l in c.left.iter().take(5) {
        out.push_str(&format!(
            "         left: {} {} {} ({})\n",
            l.kind,
            crate::redact::line(&l.id),
            crate::redact::line(&l.name),
            crate::redact::line(&l.reason)
        ));
    }
    if c.left.len() > 5 {
        out.push_str(&format!(
            "         … and {} more in summary.json\n",
            (c.failed + c.unverified).saturating_sub(5)
        ));
    }
    for u in &c.unsearchable {
        out.push_str(&format!("         cannot search: {}\n", crate::redact::line(u)));
    }
    match (&c.command, c.gone_with_target) {
        (_, true) if c.failed > 0 => {
            out.push_str("         (the embedded service stopped with the run: nothing of it is left)\n")
        }
        (Some(cmd), false) => out.push_str(&format!("         remove them with: {cmd}\n")),
        _ if c.incomplete() => out.push_str(&format!(
            "         remove them with: provbench cleanup --run-id {run_id} ...\n"
        )),
        _ => {}
    }
    out
}
