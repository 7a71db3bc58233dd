//! `summary.md`: the verdicts and the latency table in Markdown, for pull-request comments and
//! `$GITHUB_STEP_SUMMARY`. Lays out the [`MetricsTable`] as GFM tables.

use std::fmt::Write as _;

use super::markup::{cell, code};
use super::table::{Emphasis, MetricsTable};
use crate::results::{RunOutcome, Summary};

pub fn render(s: &Summary) -> String {
    let s = &super::one_line(s);
    let mut out = String::new();
    let outcome = match s.outcome {
        RunOutcome::Passed if s.judged_nothing() => "⚪ passed (nothing judged)",
        RunOutcome::Passed => "✅ passed",
        RunOutcome::Failed => "❌ failed",
        RunOutcome::Aborted => "⚠️ aborted",
        RunOutcome::Running => "⚠️ incomplete",
        RunOutcome::Cleaning => "⚠️ incomplete (cleaning up)",
        RunOutcome::Killed => "⚠️ killed",
        RunOutcome::Error => "⚠️ error",
    };
    let _ = writeln!(out, "### provbench · {} · {outcome}\n", cell(&s.workload));
    let _ = writeln!(
        out,
        "Run {} against {} {}: {}; {:.1} journeys/s, {:.1} ops/s over {:.1} s.\n",
        code(&s.run_id),
        s.target.kind,
        code(&s.target.url),
        cell(&s.load.description),
        s.load.achieved_rate,
        s.load.operations_per_second,
        s.load.load_duration_s
    );
    if s.judged_nothing() {
        // The constant's own text: Markdown as written (its code span included).
        let _ = writeln!(out, "{}\n", Summary::NOTHING_DECLARED);
    }
    if !s.thresholds.is_empty() {
        out.push_str("| threshold | observed | result |\n|---|---|---|\n");
        for v in &s.thresholds {
            let result = match (&v.error, v.passed) {
                (Some(e), _) => format!("⚠️ {}", cell(e)),
                (None, true) => "✅ pass".into(),
                (None, false) => "❌ fail".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {result} |",
                code(&v.expression),
                cell(&v.observed_text)
            );
        }
        out.push('\n');
    }
    if !s.checks.is_empty() {
        out.push_str("| check | passed | failed | example |\n|---|---:|---:|---|\n");
        for c in &s.checks {
            let example = c
                .unjudged()
                .or_else(|| {
                    c.examples
                        .first()
                        .map(|e| format!("{}: {}", e.user.clone().unwrap_or_default(), e.detail))
                })
                .into_iter()
                .chain(c.notes.iter().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            let mark = if c.is_failure() { "❌" } else { "✅" };
            let _ = writeln!(
                out,
                "| {mark} {} | {} | {} | {} |",
                cell(&c.name),
                c.passed,
                c.failed,
                cell(&example)
            );
        }
        out.push('\n');
    }
    metrics(&mut out, s);
    for n in &s.notes {
        let _ = writeln!(out, "\n> {}", cell(n));
    }
    out
}

/// The metrics table as GFM tables, one per group (each has its own columns), every series by
/// its full key as a threshold names it; a failed threshold's rows are marked ❌, rows with
/// errors ⚠️.
fn metrics(out: &mut String, s: &Summary) {
    for (i, g) in MetricsTable::build(s).groups.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "| {} |", g.title);
        for c in &g.columns {
            let _ = write!(out, " {} |", cell(c.header));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(g.columns.len()));
        out.push('\n');
        for r in &g.rows {
            let mark = match r.emphasis {
                Emphasis::Failed => "❌ ",
                Emphasis::Errors => "⚠️ ",
                Emphasis::None => "",
            };
            let _ = write!(out, "| {mark}{} |", code(&r.key));
            for c in &r.cells {
                let _ = write!(out, " {} |", cell(c));
            }
            out.push('\n');
        }
    }
}
