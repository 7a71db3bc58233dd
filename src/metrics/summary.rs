//! Percentile summaries of a series: the `metrics` entries of `summary.json`, from histograms.

use crate::results::MetricSummary;
use crate::vocab::MetricKey;

use super::series::{ErrorKind, SeriesData};

/// The summary of `data`, recorded under `key`.
pub fn summarize(key: &MetricKey, data: &SeriesData) -> MetricSummary {
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
        resolution_us: data.resolution_us().map(|(median, _)| median),
        resolution_max_us: data.resolution_us().map(|(_, worst)| worst),
    }
}

/// Summaries of every series that has data (every operation, even without data), in reading order.
pub fn summarize_all(keys: &[MetricKey], series: &[SeriesData]) -> Vec<MetricSummary> {
    let mut out: Vec<MetricSummary> = keys
        .iter()
        .zip(series)
        .filter(|(k, d)| k.metric == crate::vocab::metric::API_LATENCY || !d.is_empty())
        .map(|(k, d)| summarize(k, d))
        .collect();
    crate::results::Summary::sort_metric_list(&mut out);
    out
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
        let s = summarize(&MetricKey::new("api_latency").tag("op", "x"), &d);
        assert_eq!((s.count, s.errors, s.timeouts, s.rate_limited), (5, 2, 1, 2));
        assert_eq!(s.errors_by_reason.get("status"), Some(&1));
        assert!(s.max_us.unwrap() >= 29_000_000, "the timeout weighs on the max");
        assert_eq!((s.resolution_us, s.resolution_max_us), (None, None), "direct timings");
    }

    /// The resolution reported is the median bracket (one wide bracket does not move it) and the
    /// worst, also after a merge.
    #[test]
    fn resolution_is_the_median_and_the_worst() {
        let (mut a, mut b) = (SeriesData::default(), SeriesData::default());
        for r in [1000, 2000, 3000] {
            a.record_resolution(r);
        }
        b.record_resolution(900_000);
        a.add(&b);
        let s = summarize(&MetricKey::new("sync_lag"), &a);
        let median = s.resolution_us.unwrap();
        assert!((2000..=2020).contains(&median), "two digits: {median}");
        assert!(s.resolution_max_us.unwrap() >= 899_000, "{s:?}");
    }
}
