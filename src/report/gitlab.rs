//! `gitlab-load-performance.json`: GitLab's load-performance report. GitLab reads a k6
//! `--summary-export` file and shows, per merge request, RPS (`metrics.http_reqs.rate`), TTFB P90
//! and P95 (`metrics.http_req_waiting["p(90)"]`, `["p(95)"]`) and the checks' pass rate
//! (`metrics.checks.passes / (passes + fails)`). This file holds those keys in k6's shape and
//! units (milliseconds, requests per second), from the run's API latency over every operation
//! (the merged histogram, never an average of percentiles), its operation rate and its checks'
//! judged cases. `http_req_waiting` is the whole answer time provbench measures (its requests'
//! time to the last byte, which is what a provisioning client waits for), given also as
//! `http_req_duration`.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::metrics::hlog::read_run;
use crate::metrics::merge_matching;
use crate::metrics::summary::summarize;
use crate::results::{MetricSummary, Summary};
use crate::vocab::{MetricKey, metric};

/// The run's API latency over every operation, from `dir/histograms.hlog`: `None` when the
/// folder has no readable log (then [`render`] falls back on the summary's per-operation figures).
pub fn api_latency(dir: &Path) -> Option<MetricSummary> {
    let data = read_run(dir).ok()?;
    let merged = merge_matching(&data.keys, &data.series, |k| k.metric == metric::API_LATENCY)?;
    Some(summarize(&MetricKey::new(metric::API_LATENCY), &merged))
}

/// From the summary's operations when no merged histogram is at hand: one operation's figures
/// as they are, several ones' conservatively (the mean weighted by count; each percentile the
/// highest of any operation's, an upper bound of the merged one).
fn from_operations(s: &Summary) -> Option<MetricSummary> {
    let ops: Vec<&MetricSummary> = s.operations().filter(|m| m.p50_us.is_some()).collect();
    let first = (*ops.first()?).clone();
    if ops.len() == 1 {
        return Some(first);
    }
    let most = |f: fn(&MetricSummary) -> Option<u64>| ops.iter().filter_map(|m| f(m)).max();
    let weight: u64 = ops.iter().map(|m| m.count).sum();
    let mean = ops
        .iter()
        .filter_map(|m| m.mean_us.map(|v| v * m.count as f64))
        .sum::<f64>()
        / weight.max(1) as f64;
    Some(MetricSummary {
        tags: Default::default(),
        count: weight,
        min_us: ops.iter().filter_map(|m| m.min_us).min(),
        p50_us: most(|m| m.p50_us),
        p90_us: most(|m| m.p90_us),
        p95_us: most(|m| m.p95_us),
        p99_us: most(|m| m.p99_us),
        max_us: most(|m| m.max_us),
        mean_us: Some(mean),
        ..first
    })
}

fn ms(us: Option<u64>) -> f64 {
    us.map_or(0.0, |v| v as f64 / 1e3)
}

/// A mean in µs as milliseconds, to a tenth of a µs (what the summary keeps): an exact quotient
/// of integers, so it prints without a binary tail (`10.1293`, not `10.129299999999999`).
fn mean_ms(us: Option<f64>) -> f64 {
    us.map_or(0.0, |v| (v * 10.0).round() / 1e4)
}

/// A k6 trend in milliseconds.
fn trend(m: &MetricSummary) -> Value {
    json!({
        "avg": mean_ms(m.mean_us),
        "min": ms(m.min_us),
        "med": ms(m.p50_us),
        "max": ms(m.max_us),
        "p(90)": ms(m.p90_us),
        "p(95)": ms(m.p95_us),
        "p(99)": ms(m.p99_us),
    })
}

/// The report's JSON text. `merged` is the API latency over every operation ([`api_latency`]).
/// Keys without data are left out rather than given as zero: no operation timed means no
/// `http_req_waiting`, no judged check case means no `checks` (GitLab would show 0 of 0 as NaN %).
pub fn render(s: &Summary, merged: Option<&MetricSummary>) -> String {
    let s = &super::one_line(s);
    let mut metrics = Map::new();
    let requests = s.operation_count();
    metrics.insert(
        "http_reqs".into(),
        json!({"count": requests, "rate": s.load.operations_per_second}),
    );
    let latency = merged
        .filter(|m| m.p50_us.is_some())
        .cloned()
        .or_else(|| from_operations(s));
    if let Some(m) = &latency {
        metrics.insert("http_req_waiting".into(), trend(m));
        metrics.insert("http_req_duration".into(), trend(m));
    }
    let errors: u64 = s.operations().map(|m| m.errors).sum();
    if requests > 0 {
        // A k6 rate: `passes` counts the true values (failed requests), `fails` the false ones.
        metrics.insert(
            "http_req_failed".into(),
            json!({"passes": errors, "fails": requests.saturating_sub(errors), "value": errors as f64 / requests as f64}),
        );
    }
    let (passes, fails) = s.checks.iter().fold((0, 0), |(p, f), c| (p + c.passed, f + c.failed));
    if passes + fails > 0 {
        metrics.insert(
            "checks".into(),
            json!({"passes": passes, "fails": fails, "value": passes as f64 / (passes + fails) as f64}),
        );
    }
    let completed: u64 = s.journeys.iter().map(|j| j.completed).sum();
    metrics.insert(
        "iterations".into(),
        json!({"count": completed, "rate": s.load.achieved_rate}),
    );
    let thresholds: Map<String, Value> = s
        .thresholds
        .iter()
        .map(|v| (v.expression.clone(), Value::Bool(!v.passed)))
        .collect();
    let report = json!({
        "metrics": metrics,
        // Not read by GitLab: which run this was, and each threshold as k6 lists them (true:
        // the threshold was crossed).
        "provbench": {
            "run_id": s.run_id,
            "workload": s.workload,
            "outcome": s.outcome_label(),
            "thresholds": thresholds,
        },
    });
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys GitLab's widget reads, in k6's units, from the fixture's two operations and its
    /// revocation check (40 passed, 2 failed; the overtaken case is not counted).
    #[test]
    fn holds_the_keys_gitlab_reads() {
        let s = super::super::tests::fixture();
        let merged = MetricSummary {
            p90_us: Some(7_000),
            p95_us: Some(9_500),
            mean_us: Some(2_500.0),
            ..s.metrics[0].clone()
        };
        let v: Value = serde_json::from_str(&render(&s, Some(&merged))).unwrap();
        let m = &v["metrics"];
        assert_eq!(m["http_reqs"]["rate"], 500.0);
        assert_eq!(m["http_reqs"]["count"], 5990);
        assert_eq!(m["http_req_waiting"]["p(90)"], 7.0);
        assert_eq!(m["http_req_waiting"]["p(95)"], 9.5);
        assert_eq!(m["http_req_waiting"]["avg"], 2.5);
        assert_eq!(m["checks"]["passes"], 40);
        assert_eq!(m["checks"]["fails"], 2);
        assert_eq!(v["provbench"]["thresholds"]["rate(errors) < 1%"], false);
        assert_eq!(
            v["provbench"]["thresholds"]["p99(api_latency{op=create_user}) < 10ms"],
            true
        );
    }

    /// Without a histogram log, several operations' percentiles are bounded from above (the
    /// highest of any), never averaged; with no check case judged there is no `checks` key.
    #[test]
    fn without_a_log_percentiles_are_an_upper_bound() {
        let mut s = super::super::tests::fixture();
        s.checks.clear();
        let v: Value = serde_json::from_str(&render(&s, None)).unwrap();
        let waiting = &v["metrics"]["http_req_waiting"];
        // create_user: p95 = 12ms * 0.9; delete_user: 9ms * 0.9.
        assert_eq!(waiting["p(95)"], 10.8);
        assert_eq!(waiting["min"], 1.0);
        assert!(v["metrics"].get("checks").is_none(), "{v}");
    }
}
