//! `metrics.txt`: the run's results in OpenMetrics text (1.0), as GitLab's metrics reports read
//! it (each sample's name with its labels is compared with the target branch's, value by value).
//! One family per thing worth tracking from run to run: the outcome, each threshold's verdict
//! and observed value, each check's verdict and judged cases, and per metric (API latency per
//! operation, sync lag per service and operation, queue delay, ...) a summary of its
//! percentiles in seconds with its errors and timeouts, then the rate and the cleanup's leftovers.
//!
//! No label carries the run id or a time: GitLab tells metrics apart by name and labels, so a
//! label that changes from run to run would show every metric as removed and added again.
//! Every text goes through [`super::one_line`] and the one label escaping of the Prometheus
//! exposition ([`crate::metrics::exposition::label_value`]).

use std::fmt::Write as _;

use crate::metrics::exposition::{label_name, label_value, number};
use crate::results::{MetricSummary, RunOutcome, Summary};

/// Reads one figure of a series' summary.
type Field = fn(&MetricSummary) -> Option<u64>;

/// The quantiles each latency summary gives, with the summary field that holds each.
const QUANTILES: [(&str, Field); 5] = [
    ("0.5", |m| m.p50_us),
    ("0.9", |m| m.p90_us),
    ("0.95", |m| m.p95_us),
    ("0.99", |m| m.p99_us),
    ("0.999", |m| m.p999_us),
];

/// One family being written: its metadata once, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, unit: Option<&str>, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if let Some(unit) = unit {
            let _ = writeln!(out, "# UNIT {name} {unit}");
        }
        let help = help.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"");
        let _ = writeln!(out, "# HELP {name} {help}");
        Family {
            out,
            name: name.to_string(),
        }
    }

    /// A sample: the family's name with `suffix`, `labels` (name, value; the names valid
    /// already) and `value`.
    fn sample(&mut self, suffix: &str, labels: &[(String, String)], value: &str) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
            .collect();
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(self.out, "{}{suffix}{braces} {value}", self.name);
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn flag(yes: bool) -> &'static str {
    if yes { "1" } else { "0" }
}

/// The metric names of `s`, in the order the summary first lists each.
fn metric_names(s: &Summary) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for m in &s.metrics {
        if !names.contains(&m.metric.as_str()) {
            names.push(&m.metric);
        }
    }
    names
}

/// The run as OpenMetrics text, ending `# EOF`.
pub fn render(s: &Summary) -> String {
    let s = &super::one_line(s);
    let mut out = String::new();
    Family::new(
        &mut out,
        "provbench_run_passed",
        "gauge",
        None,
        "1 when the run passed (its exit code 0), else 0.",
    )
    .sample(
        "",
        &pairs(&[("workload", &s.workload)]),
        flag(s.outcome == RunOutcome::Passed),
    );
    if !s.thresholds.is_empty() {
        let mut f = Family::new(
            &mut out,
            "provbench_threshold_passed",
            "gauge",
            None,
            "1 when the threshold held, 0 when it was lost or could not be judged.",
        );
        for v in &s.thresholds {
            f.sample("", &pairs(&[("threshold", &v.expression)]), flag(v.passed));
        }
        let mut f = Family::new(
            &mut out,
            "provbench_threshold_observed",
            "gauge",
            None,
            "What the threshold was judged on, in the expression's unit: microseconds for durations, a fraction for rates, a number for counts.",
        );
        for v in &s.thresholds {
            if let Some(observed) = v.observed {
                f.sample("", &pairs(&[("threshold", &v.expression)]), &number(observed));
            }
        }
    }
    if !s.checks.is_empty() {
        let mut f = Family::new(
            &mut out,
            "provbench_check_passed",
            "gauge",
            None,
            "1 when the check passed on enough judged cases, 0 when it failed or was not judged.",
        );
        for c in &s.checks {
            let labels = pairs(&[("check", &c.name), ("kind", &c.kind), ("category", &c.category)]);
            f.sample("", &labels, flag(!c.is_failure()));
        }
        let mut f = Family::new(
            &mut out,
            "provbench_check_cases",
            "counter",
            None,
            "The check's cases by result: passed, failed, or overtaken (a later write came first; not judged).",
        );
        for c in &s.checks {
            for (result, n) in [("passed", c.passed), ("failed", c.failed), ("overtaken", c.skipped)] {
                f.sample(
                    "_total",
                    &pairs(&[("check", &c.name), ("result", result)]),
                    &n.to_string(),
                );
            }
        }
    }
    for name in metric_names(s) {
        let series: Vec<&MetricSummary> = s.metrics.iter().filter(|m| m.metric == name).collect();
        let base = format!("provbench_{}", label_name(name));
        let tags = |m: &MetricSummary| -> Vec<(String, String)> {
            m.tags.iter().map(|(k, v)| (label_name(k), v.clone())).collect()
        };
        let mut f = Family::new(
            &mut out,
            &format!("{base}_seconds"),
            "summary",
            Some("seconds"),
            &format!("{name} over the run, in seconds (timeouts counted at their bound)."),
        );
        for m in &series {
            // The histogram holds successes and timeouts (at their bound); other failures have no time.
            let observed = m.count.saturating_sub(m.errors) + m.timeouts;
            if m.p50_us.is_some() {
                for (q, value) in QUANTILES {
                    let mut labels = tags(m);
                    labels.push(("quantile".into(), q.into()));
                    f.sample("", &labels, &number(value(m).unwrap_or_default() as f64 / 1e6));
                }
            }
            // To the µs: an exact quotient prints without a binary tail.
            let sum = (m.mean_us.unwrap_or_default() * observed as f64).round() / 1e6;
            f.sample("_sum", &tags(m), &number(sum));
            f.sample("_count", &tags(m), &observed.to_string());
        }
        for (what, help, value) in [
            (
                "errors",
                "failed attempts or observations",
                (|m| m.errors) as fn(&MetricSummary) -> u64,
            ),
            ("timeouts", "attempts or observations that never arrived", |m| {
                m.timeouts
            }),
        ] {
            let mut f = Family::new(
                &mut out,
                &format!("{base}_{what}"),
                "counter",
                None,
                &format!("{name}: {help}."),
            );
            for m in &series {
                f.sample("_total", &tags(m), &value(m).to_string());
            }
        }
    }
    Family::new(
        &mut out,
        "provbench_operations_per_second",
        "gauge",
        None,
        "Operations per second over the load phase.",
    )
    .sample("", &[], &number(s.load.operations_per_second));
    if let Some(c) = s.cleanup.as_ref().filter(|c| !c.pending) {
        Family::new(
            &mut out,
            "provbench_cleanup_left",
            "gauge",
            None,
            "What the run created and cleanup could not delete or read back as gone.",
        )
        .sample("", &[], &(c.failed + c.unverified).to_string());
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_txt_snapshot() {
        insta::assert_snapshot!(render(&super::super::tests::fixture()));
    }

    /// A target's text or a hostile name cannot end a line, close a label or fake a sample: CR,
    /// LF and quotes in a check name and a tag stay inside their label value.
    #[test]
    fn labels_cannot_start_a_line_of_their_own() {
        let mut s = super::super::tests::fixture();
        s.checks[0].name = "x\"} 1\nprovbench_run_passed 1\r\n# EOF".into();
        s.metrics[0].tags.insert("op".into(), "a\\\"\nb".into());
        let text = render(&s);
        // The quote escaped, the line breaks shown as escapes: the value ends where it began.
        assert!(
            text.contains(
                "provbench_check_passed{check=\"x\\\"} 1\\\\nprovbench_run_passed 1\\\\r\\\\n# EOF\",kind=\"revocation\""
            ),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.starts_with("# EOF")).count(), 1, "{text}");
        assert_eq!(lines.last(), Some(&"# EOF"));
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("provbench_run_passed")).count(),
            1,
            "{text}"
        );
        for line in &lines {
            assert!(
                line.starts_with("# ") || line.starts_with("provbench_"),
                "a line of its own: {line:?}"
            );
        }
    }
}
