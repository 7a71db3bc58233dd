//! `summary.md`: the verdicts and the latency table in Markdown, for pull-request comments and
//! `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;

use super::markup::{cell, code};
use crate::results::{RunOutcome, Summary, format_micros};

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let outcome = match s.outcome {
        RunOutcome::Passed => "✅ passed",
        RunOutcome::Failed => "❌ failed",
        RunOutcome::Aborted => "⚠️ aborted",
        RunOutcome::Running => "⚠️ incomplete",
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
                .error
                .clone()
                .or_else(|| {
                    c.examples
                        .first()
                        .map(|e| format!("{}: {}", e.user.clone().unwrap_or_default(), e.detail))
                })
                .unwrap_or_default();
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
    out.push_str(
        "| metric | count | errors | timeouts | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in &s.metrics {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            code(&m.key().to_string()),
            m.count,
            m.errors,
            m.timeouts,
            format_micros(m.p50_us),
            format_micros(m.p90_us),
            format_micros(m.p99_us),
            format_micros(m.max_us)
        );
    }
    for n in &s.notes {
        let _ = writeln!(out, "\n> {}", cell(n));
    }
    out
}
