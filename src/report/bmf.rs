//! `bmf.json`: the run in Bencher Metric Format, for continuous-benchmarking services that track
//! a value per benchmark and measure from run to run (`bencher run --adapter json --file
//! bmf.json`). One benchmark per series, named `WORKLOAD/METRIC{TAGS}` as thresholds select it
//! (`quickstart/api_latency{op=create_user}`), with Bencher's built-in `latency` measure in
//! nanoseconds (the mean, bounded by the fastest and the slowest) and its p50, p90 and p99 as
//! measures of their own; one benchmark for the whole run (`WORKLOAD`) with Bencher's built-in
//! `throughput` (operations per second) and the share of failed operations.

use serde_json::{Map, Value, json};

use crate::results::{MetricSummary, Summary};

fn ns(us: u64) -> f64 {
    us as f64 * 1e3
}

/// `api_latency{op=create_user}`: a series as threshold expressions name it.
fn selector(m: &MetricSummary) -> String {
    if m.tags.is_empty() {
        return m.metric.clone();
    }
    let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}{{{}}}", m.metric, tags.join(","))
}

/// The measures of one series; none when it holds no timing.
fn measures(m: &MetricSummary) -> Option<Map<String, Value>> {
    let (Some(mean), Some(min), Some(max)) = (m.mean_us, m.min_us, m.max_us) else {
        return None;
    };
    let mut out = Map::new();
    out.insert(
        "latency".into(),
        json!({"value": (mean * 1e3).round(), "lower_value": ns(min), "upper_value": ns(max)}),
    );
    for (name, value) in [
        ("latency-p50", m.p50_us),
        ("latency-p90", m.p90_us),
        ("latency-p99", m.p99_us),
    ] {
        if let Some(v) = value {
            out.insert(name.into(), json!({"value": ns(v)}));
        }
    }
    Some(out)
}

/// The BMF JSON text.
pub fn render(s: &Summary) -> String {
    let s = &super::one_line(s);
    let mut benchmarks = Map::new();
    let attempted = s.operation_count();
    let failed: u64 = s.operations().map(|m| m.errors).sum();
    let error_share = if attempted == 0 {
        0.0
    } else {
        failed as f64 / attempted as f64
    };
    benchmarks.insert(
        s.workload.clone(),
        json!({
            "throughput": {"value": s.load.operations_per_second},
            "error-rate": {"value": error_share},
        }),
    );
    for m in &s.metrics {
        if let Some(measures) = measures(m) {
            benchmarks.insert(format!("{}/{}", s.workload, selector(m)), Value::Object(measures));
        }
    }
    serde_json::to_string_pretty(&Value::Object(benchmarks)).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_benchmark_per_series_in_nanoseconds() {
        let s = super::super::tests::fixture();
        let v: Value = serde_json::from_str(&render(&s)).unwrap();
        let create = &v["fixture/api_latency{op=create_user}"];
        assert_eq!(create["latency"]["value"], 2_750_000.0);
        assert_eq!(create["latency"]["lower_value"], 1_250_000.0);
        assert_eq!(create["latency"]["upper_value"], 36_000_000.0);
        assert_eq!(create["latency-p99"]["value"], 12_000_000.0);
        assert!(v["fixture/sync_lag{op=create_user,service=directory}"]["latency-p50"].is_object());
        assert_eq!(v["fixture"]["throughput"]["value"], 500.0);
        // Five benchmarks: the run and four series.
        assert_eq!(v.as_object().unwrap().len(), 5, "{v}");
    }

    /// A series without a timing (every attempt failed) has no benchmark, rather than zeros that
    /// would read as the fastest run ever.
    #[test]
    fn a_series_without_timings_is_left_out() {
        let mut s = super::super::tests::fixture();
        s.metrics[1].mean_us = None;
        s.metrics[1].min_us = None;
        s.metrics[1].max_us = None;
        let v: Value = serde_json::from_str(&render(&s)).unwrap();
        assert!(v.get("fixture/api_latency{op=delete_user}").is_none(), "{v}");
    }
}
