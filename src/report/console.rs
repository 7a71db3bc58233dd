//! The table printed at the end of a run: readable at a glance. Lays out the
//! [`MetricsTable`] as text columns, with the verdicts, checks and accounts of the run around it;
//! [`brief`] is the same report cut to what `--quiet` keeps. Its last lines name the results
//! folder and `report.html`.

use std::fmt::Write as _;

use super::readable;
use super::table::{Group, GroupKind, MetricsTable, Row};
use crate::results::{CheckReport, CleanupReport, Summary, Verdict};

pub fn render(s: &Summary, results_dir: &str) -> String {
    let s = &super::one_line(s);
    let mut out = String::new();
    header(&mut out, s);
    table(&mut out, s);
    verdicts(&mut out, s);
    checks(&mut out, s);
    footer(&mut out, s, results_dir);
    crate::redact::output(&fit(&out))
}

/// Every line within [`WIDTH`]: a longer one (a probe account, a note, a target's error text) is
/// broken between words, its continuation indented under the text after the line's first word.
fn fit(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        if body.chars().count() <= WIDTH {
            out.push_str(line);
            continue;
        }
        let indent = if body.len() > 9 && body.is_char_boundary(9) && body[..9].ends_with(' ') {
            9
        } else {
            2
        };
        let mut width = 0;
        for (i, word) in body.split(' ').enumerate() {
            let n = word.chars().count();
            if i > 0 && width + 1 + n > WIDTH && width > indent {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                width = indent;
            } else if i > 0 {
                out.push(' ');
                width += 1;
            }
            out.push_str(word);
            width += n;
        }
        out.push('\n');
    }
    out
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
    crate::redact::output(&fit(&out))
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

/// The widest line the console writes: a terminal's 100 columns.
pub const WIDTH: usize = 100;

/// Columns the console leaves to the other reports, to fit [`WIDTH`]: p99.9 (`summary.md`,
/// `report.html` and `summary.json` have it).
const LEFT_OUT: [&str; 1] = ["p99.9"];

/// Counts of what went wrong, shown in a block only where one of its rows has some.
const WHEN_NONZERO: [&str; 3] = ["errors", "429", "timeouts"];

/// The console's header of a column: a resolution shows its median only.
fn console_header(header: &str) -> &str {
    match header.starts_with("resolution") {
        true => "resolution",
        false => header,
    }
}

/// The metrics table as text columns: the operations, then a block per observed metric whose
/// rows are its series as people read them (`create_user → crm`), each column as wide as its
/// widest cell and the name column shared so the blocks start alike. A resolution shows its
/// median (the widest bracket is in the other reports). Emphasis is not drawn: the errors
/// column shows errors, and the verdict lines below name every failed threshold.
fn table(out: &mut String, s: &Summary) {
    let t = MetricsTable::build(s).at_a_glance();
    let mut blocks: Vec<(String, &Group, Vec<&Row>)> = Vec::new();
    for g in &t.groups {
        match g.kind {
            GroupKind::Operations => blocks.push((g.title.to_string(), g, g.rows.iter().collect())),
            GroupKind::Observed => {
                for r in &g.rows {
                    let title = readable::metric_name(&r.metric);
                    match blocks.last_mut().filter(|(t, ..)| *t == title) {
                        Some((.., rows)) => rows.push(r),
                        None => blocks.push((title, g, vec![r])),
                    }
                }
            }
        }
    }
    let name = |g: &Group, r: &Row| match g.kind {
        GroupKind::Operations => r.label.clone(),
        GroupKind::Observed => r.series.clone(),
    };
    let name_width = blocks
        .iter()
        .flat_map(|(title, g, rows)| std::iter::once(title.clone()).chain(rows.iter().map(|r| name(g, r))))
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0);
    for (title, g, rows) in &blocks {
        let header = |i: usize| console_header(g.columns[i].header).to_string();
        let cell = |r: &Row, i: usize| match g.columns[i].header.starts_with("resolution") {
            true => r.cells[i].split('/').next().unwrap_or_default().to_string(),
            false => r.cells[i].clone(),
        };
        let kept: Vec<usize> = (0..g.columns.len())
            .filter(|&i| !LEFT_OUT.contains(&g.columns[i].header))
            .filter(|&i| !WHEN_NONZERO.contains(&g.columns[i].header) || rows.iter().any(|r| r.cells[i] != "0"))
            .collect();
        let widths: Vec<usize> = kept
            .iter()
            .map(|&i| {
                rows.iter()
                    .map(|r| cell(r, i).chars().count())
                    .fold(header(i).chars().count(), usize::max)
            })
            .collect();
        out.push('\n');
        line(out, title, kept.iter().map(|&i| header(i)), name_width, &widths);
        for r in rows {
            line(out, &name(g, r), kept.iter().map(|&i| cell(r, i)), name_width, &widths);
        }
    }
}

/// One line of the table: the name left-aligned, every value right-aligned (all are numbers).
fn line(out: &mut String, name: &str, cells: impl Iterator<Item = String>, name_width: usize, widths: &[usize]) {
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

/// One check's verdict, with its counts and the first example (or why it was not judged), and
/// what it did not attempt.
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
    for note in &c.notes {
        let _ = write!(line, "; {note}");
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
