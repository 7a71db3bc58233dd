//! Live metrics for alerting systems: the interval writer renders Prometheus text exposition
//! once a second, and a small loopback HTTP server (`--metrics-listen`) serves the latest
//! rendering at `/metrics`. Per metric: a histogram since the start with classic buckets
//! ([`BUCKETS_SECONDS`], one set for every metric, so that scrapes of several generators add up
//! bucket by bucket), a summary over the last [`WINDOW_SECONDS`] seconds, and counters. Every
//! sample carries the run's `run_id` and `shard` labels ([`RunLabels`]), so that several
//! generators' scrapes can be told apart and summed (`sum without (shard)`).
//!
//! Also the one escaping of label names and values and the one spelling of numbers that the
//! OpenMetrics report (`report::openmetrics`) shares.

use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use hdrhistogram::Histogram;

use super::series::{ErrorKind, SeriesData};
use super::writer::{IntervalObserver, IntervalView};
use crate::vocab::MetricKey;

/// Seconds of the sliding window the `_window_seconds` summaries cover.
pub const WINDOW_SECONDS: usize = 10;

/// The histograms' bucket bounds (`le`), in seconds: from half a millisecond (an API call on
/// loopback) to five minutes (a slow synchronisation), the same for every metric and run.
pub const BUCKETS_SECONDS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The labels every sample carries: which run (shared by its shards) and which shard of it
/// (`0` for a run that is not sharded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunLabels {
    pub run_id: String,
    pub shard: u32,
}

impl RunLabels {
    fn text(&self) -> String {
        format!("run_id=\"{}\",shard=\"{}\"", label_value(&self.run_id), self.shard)
    }
}

/// The latest rendering, shared between the writer (an observer) and the server.
#[derive(Clone, Default)]
pub struct Exposition {
    text: Arc<RwLock<String>>,
    run: RunLabels,
}

/// The observer side: renders every interval, keeping the last [`WINDOW_SECONDS`] intervals of
/// each series (at two significant digits, to stay small) for the window summaries.
pub struct ExpositionWriter {
    shared: Exposition,
    window: std::collections::VecDeque<Vec<Option<Histogram<u64>>>>,
    /// The window's union per series, kept between intervals.
    merged: Vec<Histogram<u64>>,
}

impl Exposition {
    /// An exposition whose every sample carries `run`'s labels.
    pub fn new(run: RunLabels) -> Exposition {
        Exposition {
            text: Default::default(),
            run,
        }
    }

    /// The observer that keeps this exposition up to date.
    pub fn writer(&self) -> ExpositionWriter {
        ExpositionWriter {
            shared: self.clone(),
            window: Default::default(),
            merged: Vec::new(),
        }
    }
}

/// The window of a series rendered before its first interval.
static EMPTY_WINDOW: std::sync::LazyLock<Histogram<u64>> = std::sync::LazyLock::new(window_histogram);

fn window_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, super::series::MAX_MICROS, 2).expect("valid histogram bounds")
}

impl IntervalObserver for ExpositionWriter {
    /// Histograms are reused: the second leaving the window lends its histograms to the one
    /// entering it, and the merged window is emptied and refilled, so a steady run allocates
    /// none after its first [`WINDOW_SECONDS`] seconds.
    fn interval(&mut self, view: &IntervalView<'_>) {
        let mut this = if self.window.len() >= WINDOW_SECONDS {
            self.window.pop_front().unwrap_or_default()
        } else {
            Vec::new()
        };
        this.resize_with(view.interval.len(), || None);
        for (slot, d) in this.iter_mut().zip(view.interval) {
            if let Some(h) = slot {
                h.reset();
            }
            let h = d.histogram();
            if !h.is_empty() {
                let _ = slot.get_or_insert_with(window_histogram).add(h);
            }
        }
        self.window.push_back(this);
        self.merged.resize_with(view.keys.len(), window_histogram);
        for m in &mut self.merged {
            m.reset();
        }
        for interval in &self.window {
            for (m, h) in self.merged.iter_mut().zip(interval) {
                if let Some(h) = h.as_ref().filter(|h| !h.is_empty()) {
                    let _ = m.add(h);
                }
            }
        }
        let text = render(view.keys, view.cumulative, &self.merged, &self.shared.run);
        *self.shared.text.write() = text;
    }
}

/// A label or metric name part as the exposition formats allow it (`[a-zA-Z_][a-zA-Z0-9_]*`):
/// every other character becomes `_`. The names the formats reserve (`le`, `quantile`) and the
/// run's own labels get a `tag_` prefix, so a tag never clashes with them.
pub fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    match out.as_str() {
        "le" | "quantile" | "run_id" | "shard" => format!("tag_{out}"),
        _ => out,
    }
}

/// A label value for Prometheus text and OpenMetrics alike: redacted and on one line
/// ([`crate::redact::line`]), then backslashes, quotes and newlines escaped as both formats read them.
pub fn label_value(value: &str) -> String {
    crate::redact::line(value)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: `NaN`, `+Inf` and `-Inf` as both formats spell them, other numbers in full.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn labels(key: &MetricKey, run: &RunLabels) -> String {
    key.tags
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", label_name(k), label_value(v)))
        .chain(std::iter::once(run.text()))
        .collect::<Vec<_>>()
        .join(",")
}

fn with(labels: &str, extra: &str) -> String {
    match (labels.is_empty(), extra.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!("{{{extra}}}"),
        (false, true) => format!("{{{labels}}}"),
        (false, false) => format!("{{{labels},{extra}}}"),
    }
}

const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

/// A counter family: its name suffix, its help, and how to read it from a series.
type Counter = (&'static str, &'static str, fn(&SeriesData) -> u64);

/// The sum of a histogram's values, in seconds.
fn sum_seconds(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.mean() * h.len() as f64 / 1e6
    }
}

/// A summary's samples for one series: quantiles (NaN when empty), `_sum` and `_count`.
fn summary_samples(out: &mut String, name: &str, l: &str, h: &Histogram<u64>) {
    for q in QUANTILES {
        let v = if h.is_empty() {
            f64::NAN
        } else {
            h.value_at_quantile(q) as f64 / 1e6
        };
        let _ = writeln!(out, "{name}{} {}", with(l, &format!("quantile=\"{q}\"")), number(v));
    }
    let _ = writeln!(out, "{name}_sum{} {}", with(l, ""), number(sum_seconds(h)));
    let _ = writeln!(out, "{name}_count{} {}", with(l, ""), h.len());
}

/// The cumulative count at or below each of [`BUCKETS_SECONDS`], then the total (`+Inf`). A value
/// counts in the first bucket its whole HdrHistogram range (at most 0.1 % wide) fits under, so a
/// bucket never holds more than was recorded at or below its bound.
pub fn cumulative_buckets(h: &Histogram<u64>) -> Vec<u64> {
    let mut counts = vec![0u64; BUCKETS_SECONDS.len()];
    for v in h.iter_recorded() {
        let seconds = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
        if let Some(i) = BUCKETS_SECONDS.iter().position(|le| seconds <= *le) {
            counts[i] += v.count_at_value();
        }
    }
    let mut total = 0;
    for c in counts.iter_mut() {
        total += *c;
        *c = total;
    }
    counts.push(h.len());
    counts
}

/// A histogram's samples for one series: `_bucket` per bound and `+Inf`, `_sum`, `_count`.
fn histogram_samples(out: &mut String, name: &str, l: &str, h: &Histogram<u64>) {
    let counts = cumulative_buckets(h);
    let bounds = BUCKETS_SECONDS
        .iter()
        .map(|b| number(*b))
        .chain(std::iter::once("+Inf".into()));
    for (le, count) in bounds.zip(counts) {
        let _ = writeln!(out, "{name}_bucket{} {count}", with(l, &format!("le=\"{le}\"")));
    }
    let _ = writeln!(out, "{name}_sum{} {}", with(l, ""), number(sum_seconds(h)));
    let _ = writeln!(out, "{name}_count{} {}", with(l, ""), h.len());
}

/// Prometheus text format 0.0.4, one family at a time (HELP, TYPE, then every series of it), so
/// that parsers which read families whole see them whole: per metric, a histogram since the
/// start (`provbench_<metric>_seconds`), a summary over the last [`WINDOW_SECONDS`] seconds
/// (`provbench_<metric>_window_seconds`), and counters of errors, timeouts and 429s; every
/// sample with `run`'s labels.
pub fn render(keys: &[MetricKey], series: &[SeriesData], window: &[Histogram<u64>], run: &RunLabels) -> String {
    let mut out = String::new();
    let mut metrics: Vec<&str> = Vec::new();
    for k in keys {
        if !metrics.contains(&k.metric.as_str()) {
            metrics.push(&k.metric);
        }
    }
    for m in metrics {
        let series_of: Vec<(usize, String)> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.metric == m)
            .map(|(i, k)| (i, labels(k, run)))
            .collect();
        let base = format!("provbench_{}", label_name(m));
        let name = format!("{base}_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} {m} since the run started, in seconds (recorded in microseconds; timeouts at their bound)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, l) in &series_of {
            histogram_samples(&mut out, &name, l, series[*i].histogram());
        }
        let name = format!("{base}_window_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} {m} over the last {WINDOW_SECONDS} seconds, in seconds."
        );
        let _ = writeln!(out, "# TYPE {name} summary");
        for (i, l) in &series_of {
            summary_samples(&mut out, &name, l, window.get(*i).unwrap_or(&EMPTY_WINDOW));
        }
        let counters: [Counter; 3] = [
            ("errors", "failed attempts", SeriesData::errors_total),
            (
                "timeouts",
                "attempts or observations that never arrived (recorded at their bound)",
                |d| d.errors[ErrorKind::Timeout as usize],
            ),
            (
                "rate_limited",
                "429 answers (waited out, counted apart from errors)",
                |d| d.rate_limited,
            ),
        ];
        for (what, help, value) in counters {
            let name = format!("{base}_{what}_total");
            let _ = writeln!(out, "# HELP {name} {m}: {help}, since the run started.");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (i, l) in &series_of {
                let _ = writeln!(out, "{name}{} {}", with(l, ""), value(&series[*i]));
            }
        }
    }
    out
}

/// Serves `/metrics` on `listen` until `stop` fires; returns the bound address.
pub async fn serve(
    listen: &str,
    exposition: Exposition,
    stop: CancellationToken,
) -> anyhow::Result<std::net::SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    // As for the dashboard: the metrics name the run's operations, rates and errors.
    if let Some(warning) = super::beyond_loopback("--metrics-listen", addr) {
        tracing::warn!("{warning}");
    }
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let text = exposition.text.read().clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunLabels {
        RunLabels {
            run_id: "pb-test1234".into(),
            shard: 2,
        }
    }

    /// Every sample carries the run's labels: several generators' scrapes are told apart by
    /// `shard` and belong together by `run_id`.
    #[test]
    fn every_sample_carries_the_run_labels() {
        let mut a = SeriesData::default();
        a.record(1_500);
        a.record_error(ErrorKind::Status, 1);
        let keys = [
            MetricKey::new("api_latency").tag("op", "create_user"),
            MetricKey::new("queue_delay"),
        ];
        let text = render(&keys, &[a.clone(), a], &[], &run());
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(samples.len() > 40, "{text}");
        for s in samples {
            assert!(s.contains("run_id=\"pb-test1234\",shard=\"2\""), "{s}");
        }
    }

    proptest::proptest! {
        /// Scrapes of several generators add up: two shards' buckets, summed bucket by bucket,
        /// are the buckets of their merged histogram; and a bucket never holds a value above its
        /// bound, nor misses one more than 0.1 % (the histogram's precision) below it.
        #[test]
        fn shards_buckets_add_up_and_hold_what_lies_below_the_bound(
            a in proptest::collection::vec(1u64..400_000_000, 0..200),
            b in proptest::collection::vec(1u64..400_000_000, 0..200),
        ) {
            let histogram = |values: &[u64]| {
                let mut h = crate::metrics::series::new_histogram();
                values.iter().for_each(|v| h.record(*v).unwrap());
                h
            };
            let (ha, hb) = (histogram(&a), histogram(&b));
            let mut merged = ha.clone();
            merged.add(&hb).unwrap();
            let both = cumulative_buckets(&merged);
            let summed: Vec<u64> = cumulative_buckets(&ha).iter().zip(cumulative_buckets(&hb)).map(|(x, y)| x + y).collect();
            proptest::prop_assert_eq!(&summed, &both);
            let all: Vec<u64> = a.iter().chain(&b).copied().collect();
            for (le, count) in BUCKETS_SECONDS.iter().zip(&both) {
                let bound = (le * 1e6).round() as u64;
                let at_or_below = all.iter().filter(|v| **v <= bound).count() as u64;
                let well_below = all.iter().filter(|v| **v as f64 * 1.001 <= bound as f64).count() as u64;
                proptest::prop_assert!(well_below <= *count && *count <= at_or_below, "le {}: {} of {:?}", le, count, all);
            }
            proptest::prop_assert_eq!(both.last().copied(), Some(all.len() as u64));
        }
    }

    /// Buckets are cumulative and end at the total; a value on a bound counts in that bound's
    /// bucket, one just above it in the next; a tag named like a reserved label cannot clash.
    #[test]
    fn buckets_are_cumulative_from_the_histogram() {
        let mut h = crate::metrics::series::new_histogram();
        for v in [400, 500, 501, 1_000, 40_000_000, 3_000_000_000] {
            h.record(v).unwrap();
        }
        let counts = cumulative_buckets(&h);
        assert_eq!(counts.len(), BUCKETS_SECONDS.len() + 1);
        assert_eq!(&counts[..3], &[2, 4, 4], "{counts:?}");
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        // 40 s under 60 s; 50 minutes only in +Inf.
        assert_eq!(counts[BUCKETS_SECONDS.len() - 3], 5);
        assert_eq!(counts[BUCKETS_SECONDS.len() - 1], 5);
        assert_eq!(counts[BUCKETS_SECONDS.len()], 6);
        assert_eq!(label_name("le"), "tag_le");
        assert_eq!(label_name("9 lives"), "_9_lives");
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\\\nd");
    }

    /// Regression: families were interleaved (a TYPE line per metric, then every family's samples
    /// series by series), which parsers that read a family whole got wrong. Each family is now
    /// HELP, TYPE, then all its samples, and no family's name appears again after another's.
    #[test]
    fn families_are_written_whole() {
        let mut a = SeriesData::default();
        a.record(1_000);
        let mut b = SeriesData::default();
        b.record(2_000);
        let keys = [
            MetricKey::new("api_latency").tag("op", "create_user"),
            MetricKey::new("sync_lag").tag("service", "crm"),
            MetricKey::new("api_latency").tag("op", "delete_user"),
        ];
        let text = render(&keys, &[a.clone(), b, a], &[], &run());
        let mut seen: Vec<String> = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let family = rest.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&family), "{family} twice:\n{text}");
                seen.push(family.clone());
                current = family;
            } else if !line.starts_with('#') {
                assert!(
                    line.starts_with(&current),
                    "`{line}` outside its family {current}:\n{text}"
                );
            }
        }
        assert_eq!(seen.len(), 2 * 5, "five families per metric: {seen:?}");
        assert!(text.contains(
            "provbench_api_latency_window_seconds_count{op=\"delete_user\",run_id=\"pb-test1234\",shard=\"2\"} 0"
        ));
    }

    /// The whole exposition of a small run, as scrapers read it.
    #[test]
    fn exposition_snapshot() {
        let mut a = SeriesData::default();
        for v in [1_000, 2_000, 3_000] {
            a.record(v);
        }
        a.record_error(ErrorKind::Timeout, 30_000_000);
        let keys = [
            MetricKey::new("api_latency").tag("op", "create_user"),
            MetricKey::new("sync_lag")
                .tag("op", "create_user")
                .tag("service", "crm"),
        ];
        let mut window = window_histogram();
        window.record(2_000).unwrap();
        insta::assert_snapshot!(render(&keys, &[a.clone(), a], &[window], &run()));
    }

    #[test]
    fn renders_summaries_and_counters() {
        let mut d = SeriesData::default();
        d.record(1_000);
        d.record(3_000);
        d.record_error(ErrorKind::Status, 1);
        let mut w = window_histogram();
        w.record(1_000).unwrap();
        let text = render(
            &[MetricKey::new("api_latency").tag("op", "create_user")],
            &[d],
            &[w],
            &RunLabels::default(),
        );
        assert!(text.contains("# TYPE provbench_api_latency_seconds histogram"));
        assert!(text.contains("# TYPE provbench_api_latency_window_seconds summary"));
        let l = "op=\"create_user\",run_id=\"\",shard=\"0\"";
        for line in [
            // Two significant digits in the window: 1 ms reads back as its range's top.
            format!("provbench_api_latency_window_seconds{{{l},quantile=\"0.5\"}} 0.001003"),
            format!("provbench_api_latency_seconds_bucket{{{l},le=\"0.001\"}} 1"),
            format!("provbench_api_latency_seconds_bucket{{{l},le=\"0.0025\"}} 1"),
            format!("provbench_api_latency_seconds_bucket{{{l},le=\"0.005\"}} 2"),
            format!("provbench_api_latency_seconds_bucket{{{l},le=\"+Inf\"}} 2"),
            format!("provbench_api_latency_seconds_count{{{l}}} 2"),
            format!("provbench_api_latency_errors_total{{{l}}} 1"),
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} missing:\n{text}");
        }
    }
}
