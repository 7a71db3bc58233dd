//! Percentile summaries of a series, in the shape of `summary.json`'s `metrics` entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::key::MetricKey;
use super::series::{ErrorKind, SeriesData};

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
    /// How precise an observation is (a probe's polling interval); absent for direct timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_us: Option<u64>,
}

impl MetricSummary {
    pub fn new(key: &MetricKey, data: &SeriesData) -> Self {
        let h = data.histogram();
        let q = |p: f64| (!h.is_empty()).then(|| h.value_at_quantile(p));
        let errors_by_reason = ErrorKind::ALL
            .iter()
            .filter(|k| data.errors[**k as usize] > 0)
            .map(|k| (k.name().to_string(), data.errors[*k as usize]))
            .collect();
        MetricSummary {
            metric: key.metric.clone(),
            tags: key.tags.clone(),
            count: data.count(),
            errors: data.errors_total(),
            errors_by_reason,
            rate_limited: data.rate_limited,
            timeouts: data.errors[ErrorKind::Timeout as usize],
            min_us: (!h.is_empty()).then(|| h.min()),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p95_us: q(0.95),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: (!h.is_empty()).then(|| h.max()),
            mean_us: (!h.is_empty()).then(|| (h.mean() * 10.0).round() / 10.0),
            resolution_us: data.resolution_us(),
        }
    }

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
    use super::*;

    #[test]
    fn summary_counts_timeouts_in_the_histogram_and_errors() {
        let mut d = SeriesData::default();
        for v in [100, 200, 300] {
            d.record(v);
        }
        d.record_error(ErrorKind::Timeout, 30_000_000);
        d.record_error(ErrorKind::Status, 1);
        d.rate_limited = 2;
        let s = MetricSummary::new(&MetricKey::new("api_latency").tag("op", "x"), &d);
        assert_eq!((s.count, s.errors, s.timeouts, s.rate_limited), (5, 2, 1, 2));
        assert_eq!(s.errors_by_reason.get("status"), Some(&1));
        assert!(s.max_us.unwrap() >= 29_000_000, "the timeout weighs on the max");
        assert_eq!(format_micros(Some(1500)), "1.50ms");
        assert_eq!(format_micros(None), "-");
    }
}
