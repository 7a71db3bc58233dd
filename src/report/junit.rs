//! `junit.xml`: one test case per threshold and per check, failures carrying the observed
//! value, in the JUnit XML that CI systems read. A run that did not finish (killed, interrupted,
//! failed) gets a `provbench.run` case that fails, so the file never reads as a pass for it; a
//! run that declared no threshold and no check gets a skipped case saying so (never `tests="0"`).

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::results::{RunOutcome, StopReason, Summary};

/// Why the run itself is a failing test case, if it is one.
fn unfinished(s: &Summary) -> Option<String> {
    match (&s.outcome, &s.stop_reason) {
        (_, Some(StopReason::Failed { error })) => Some(format!("the run failed: {error}")),
        (RunOutcome::Killed | RunOutcome::Running, _) => {
            Some("the run was killed before it finished: its results are partial".into())
        }
        (RunOutcome::Cleaning, _) => Some("the run was killed during its cleanup: what it left is unknown".into()),
        (RunOutcome::Aborted, _) => Some("the run was interrupted (Ctrl-C or SIGTERM)".into()),
        _ => None,
    }
}

pub fn render(s: &Summary) -> String {
    let s = &super::one_line(s);
    let failures = s.thresholds.iter().filter(|v| !v.passed && v.error.is_none()).count();
    let errors = s.thresholds.iter().filter(|v| v.error.is_some()).count();
    let tests = s.thresholds.len();
    let run_failure = unfinished(s);
    let nothing = s.judged_nothing() as usize;
    let (never, thin) = s
        .probes
        .as_ref()
        .map_or((0, 0), |p| (p.never_observed.len(), p.unjudged.len()));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"provbench {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        escape(&s.workload),
        tests + s.checks.len() + run_failure.is_some() as usize + nothing + never + thin,
        failures + s.checks.iter().filter(|c| c.failed > 0).count() + run_failure.is_some() as usize + never,
        errors
            + thin
            + s.checks
                .iter()
                .filter(|c| c.failed == 0 && c.unjudged().is_some())
                .count(),
    );
    if let Some(why) = &run_failure {
        run_suite(&mut out, s, why);
    }
    thresholds_suite(&mut out, s, tests, failures, errors);
    if !s.checks.is_empty() {
        checks_suite(&mut out, s);
    }
    if let Some(p) = s.probes.as_ref().filter(|p| p.unproven()) {
        probes_suite(&mut out, s, p);
    }
    out.push_str("</testsuites>\n");
    out
}

fn run_suite(out: &mut String, s: &Summary, why: &str) {
    let _ = writeln!(
        out,
        "  <testsuite name=\"provbench.run\" tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">\n    \
<testcase classname=\"provbench.run.{}\" name=\"run finished\" time=\"{:.3}\">\n      \
<failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n  </testsuite>",
        s.load.load_duration_s,
        escape(&s.workload),
        s.load.load_duration_s,
        escape(why),
        s.outcome.label().to_lowercase(),
        escape(why)
    );
}

fn thresholds_suite(out: &mut String, s: &Summary, tests: usize, failures: usize, errors: usize) {
    let nothing = s.judged_nothing() as usize;
    let _ = writeln!(
        out,
        "  <testsuite name=\"provbench.thresholds\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{nothing}\" time=\"{:.3}\" timestamp=\"{}\">",
        tests + nothing,
        s.load.load_duration_s,
        escape(s.started_at.trim_end_matches('Z'))
    );
    let _ = writeln!(
        out,
        "    <properties><property name=\"run_id\" value=\"{}\"/><property name=\"outcome\" value=\"{:?}\"/></properties>",
        escape(&s.run_id),
        s.outcome
    );
    if nothing > 0 {
        // A pipeline that reads only this file must not take an empty suite for a pass.
        let _ = writeln!(
            out,
            "    <testcase classname=\"provbench.thresholds.{}\" name=\"thresholds and checks declared\" time=\"0\">\n      \
<skipped message=\"{}\"/>\n    </testcase>",
            escape(&s.workload),
            escape(Summary::NOTHING_DECLARED)
        );
    }
    for v in &s.thresholds {
        let name = escape(&v.expression);
        let _ = write!(
            out,
            "    <testcase classname=\"provbench.thresholds.{}\" name=\"{name}\" time=\"0\"",
            escape(&s.workload)
        );
        match (&v.error, v.passed) {
            (Some(e), _) => {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{}\" type=\"no-data\">{}</error>\n    </testcase>",
                    escape(e),
                    escape(e)
                );
            }
            (None, false) => {
                let msg = format!("observed {}", v.observed_text);
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"threshold\">{name}: {}</failure>\n    </testcase>",
                    escape(&msg),
                    escape(&msg)
                );
            }
            (None, true) => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>observed {}</system-out>\n    </testcase>",
                    escape(&v.observed_text)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n");
}

/// Probe series that observed nothing (failures) or judged too little (errors, as for checks):
/// neither is a pass, with or without `--strict`.
fn probes_suite(out: &mut String, s: &Summary, p: &crate::results::ProbeReport) {
    let (never, thin) = (&p.never_observed, &p.unjudged);
    let _ = writeln!(
        out,
        "  <testsuite name=\"provbench.probes\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{:.3}\">",
        never.len() + thin.len(),
        never.len(),
        thin.len(),
        s.load.load_duration_s
    );
    let cases = never
        .iter()
        .map(|series| {
            let msg = format!("never observed: {series}, every observation timed out at the bound");
            (
                series,
                format!(
                    "<failure message=\"{}\" type=\"never-observed\">{}</failure>",
                    escape(&msg),
                    escape(&msg)
                ),
            )
        })
        .chain(thin.iter().map(|series| {
            let msg = format!("not judged: {series}");
            (
                series,
                format!(
                    "<error message=\"{}\" type=\"not-judged\">{}</error>",
                    escape(&msg),
                    escape(&msg)
                ),
            )
        }));
    for (series, verdict) in cases {
        let _ = writeln!(
            out,
            "    <testcase classname=\"provbench.probes.{}\" name=\"{}\" time=\"0\">\n      {verdict}\n    </testcase>",
            escape(&s.workload),
            escape(series)
        );
    }
    out.push_str("  </testsuite>\n");
}

fn checks_suite(out: &mut String, s: &Summary) {
    let failed = s.checks.iter().filter(|c| c.failed > 0).count();
    let errors = s
        .checks
        .iter()
        .filter(|c| c.failed == 0 && c.unjudged().is_some())
        .count();
    let _ = writeln!(
        out,
        "  <testsuite name=\"provbench.checks\" tests=\"{}\" failures=\"{failed}\" errors=\"{errors}\" skipped=\"0\" time=\"{:.3}\">",
        s.checks.len(),
        s.load.load_duration_s
    );
    for c in &s.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"provbench.checks.{}\" name=\"{}\" time=\"0\"",
            escape(&c.category),
            escape(&c.name)
        );
        let mut summary = format!("{} passed, {} failed", c.passed, c.failed);
        for note in &c.notes {
            summary.push_str("; ");
            summary.push_str(note);
        }
        if let (0, Some(e)) = (c.failed, &c.unjudged()) {
            let _ = writeln!(
                out,
                ">\n      <error message=\"{}\" type=\"not-judged\">{}</error>\n    </testcase>",
                escape(e),
                escape(e)
            );
        } else if c.failed > 0 {
            let detail: Vec<String> = c
                .examples
                .iter()
                .map(|e| format!("{}: {}", e.user.clone().unwrap_or_default(), e.detail))
                .collect();
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"check\">{}</failure>\n    </testcase>",
                escape(&summary),
                escape(detail.join("\n"))
            );
        } else {
            let _ = writeln!(
                out,
                ">\n      <system-out>{}</system-out>\n    </testcase>",
                escape(&summary)
            );
        }
    }
    out.push_str("  </testsuite>\n");
}
