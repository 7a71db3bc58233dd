//! One series' percentile summary, in the shape of `summary.json`'s `metrics` entries, and how a
//! duration in µs is shown to people. Built from the histograms by `metrics::summarize`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vocab::MetricKey;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub metric: String,
    pub tags: BTreeMap<String, String>,
    /// Attempts (successes, failures and timeouts).
    pub count: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_reason: BTreeMap<String, u64>,
    #[serde(default)]
    pub rate_limited: u64,
    /// Observations that never arrived, recorded in the histogram at their bound.
    #[serde(default)]
    pub timeouts: u64,
    pub min_us: Option<u64>,
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p95_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p999_us: Option<u64>,
    pub max_us: Option<u64>,
    pub mean_us: Option<f64>,
    /// How precise an observation is: the median bracket width (or declared clock uncertainty)
    /// of a probe's observations; absent for direct timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_us: Option<u64>,
    /// The coarsest resolution among them (the widest bracket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_max_us: Option<u64>,
}

impl MetricSummary {
    pub fn key(&self) -> MetricKey {
        MetricKey {
            metric: self.metric.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// `1.23ms`, `850µs`, `2.5s`: for people.
pub fn format_micros(us: Option<u64>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1_000 => format!("{us}µs"),
        Some(us) if us < 1_000_000 => format!("{:.2}ms", us as f64 / 1e3),
        Some(us) => format!("{:.2}s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_for_people() {
        assert_eq!(super::format_micros(Some(850)), "850µs");
        assert_eq!(super::format_micros(Some(1500)), "1.50ms");
        assert_eq!(super::format_micros(Some(2_500_000)), "2.50s");
        assert_eq!(super::format_micros(None), "-");
    }
}
