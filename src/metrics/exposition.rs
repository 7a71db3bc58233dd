//! Live metrics for alerting systems: the interval writer renders Prometheus text exposition
//! once a second (counters, and quantile summaries per series), and a small loopback HTTP
//! server (`--metrics-listen`) serves the latest rendering at `/metrics`.

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

/// The latest rendering, shared between the writer (an observer) and the server.
#[derive(Clone, Default)]
pub struct Exposition(Arc<RwLock<String>>);

/// The observer side: renders every interval, keeping the last [`WINDOW_SECONDS`] intervals of
/// each series (at two significant digits, to stay small) for the window summaries.
#[derive(Default)]
pub struct ExpositionWriter {
    shared: Exposition,
    window: std::collections::VecDeque<Vec<Option<Histogram<u64>>>>,
}

impl Exposition {
    /// The observer that keeps this exposition up to date.
    pub fn writer(&self) -> ExpositionWriter {
        ExpositionWriter {
            shared: self.clone(),
            window: Default::default(),
        }
    }
}

fn window_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, super::series::MAX_MICROS, 2).expect("valid histogram bounds")
}

impl IntervalObserver for ExpositionWriter {
    fn interval(&mut self, view: &IntervalView<'_>) {
        let this: Vec<Option<Histogram<u64>>> = view
            .interval
            .iter()
            .map(|d| {
                let h = d.histogram();
                (!h.is_empty()).then(|| {
                    let mut small = window_histogram();
                    let _ = small.add(h.as_ref());
                    small
                })
            })
            .collect();
        self.window.push_back(this);
        while self.window.len() > WINDOW_SECONDS {
            self.window.pop_front();
        }
        let mut merged: Vec<Histogram<u64>> = (0..view.keys.len()).map(|_| window_histogram()).collect();
        for interval in &self.window {
            for (m, h) in merged.iter_mut().zip(interval) {
                if let Some(h) = h {
                    let _ = m.add(h);
                }
            }
        }
        *self.shared.0.write() = render(view.keys, view.cumulative, &merged);
    }
}

fn labels(key: &MetricKey) -> String {
    key.tags
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")
            )
        })
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

/// A summary's samples for one series: quantiles (NaN when empty), `_sum` and `_count`.
fn summary_samples(out: &mut String, name: &str, l: &str, h: &Histogram<u64>) {
    for q in QUANTILES {
        let v = if h.is_empty() {
            f64::NAN
        } else {
            h.value_at_quantile(q) as f64 / 1e6
        };
        let _ = writeln!(out, "{name}{} {v}", with(l, &format!("quantile=\"{q}\"")));
    }
    let sum = if h.is_empty() {
        0.0
    } else {
        h.mean() * h.len() as f64 / 1e6
    };
    let _ = writeln!(out, "{name}_sum{} {sum}", with(l, ""));
    let _ = writeln!(out, "{name}_count{} {}", with(l, ""), h.len());
}

/// Prometheus text format 0.0.4, one family at a time (HELP, TYPE, then every series of it), so
/// that parsers which read families whole see them whole: per metric, a summary since the start
/// (`provbench_<metric>_seconds`), one over the last [`WINDOW_SECONDS`] seconds
/// (`provbench_<metric>_window_seconds`), and counters of errors, timeouts and 429s.
pub fn render(keys: &[MetricKey], series: &[SeriesData], window: &[Histogram<u64>]) -> String {
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
            .map(|(i, k)| (i, labels(k)))
            .collect();
        let base = format!("provbench_{m}");
        let name = format!("{base}_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} {m} since the run started, in seconds (recorded in microseconds)."
        );
        let _ = writeln!(out, "# TYPE {name} summary");
        for (i, l) in &series_of {
            summary_samples(&mut out, &name, l, &series[*i].histogram());
        }
        let name = format!("{base}_window_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} {m} over the last {WINDOW_SECONDS} seconds, in seconds."
        );
        let _ = writeln!(out, "# TYPE {name} summary");
        for (i, l) in &series_of {
            let empty = window_histogram();
            summary_samples(&mut out, &name, l, window.get(*i).unwrap_or(&empty));
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
            let text = exposition.0.read().clone();
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
        let text = render(&keys, &[a.clone(), b, a], &[]);
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
        assert!(text.contains("provbench_api_latency_window_seconds_count{op=\"delete_user\"} 0"));
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
        insta::assert_snapshot!(render(&keys, &[a.clone(), a], &[window]));
    }

    #[test]
    fn renders_summaries_and_counters() {
        let mut d = SeriesData::default();
        d.record(1_000);
        d.record(3_000);
        d.record_error(ErrorKind::Status, 1);
        let text = render(&[MetricKey::new("api_latency").tag("op", "create_user")], &[d], &[]);
        assert!(text.contains("# TYPE provbench_api_latency_seconds summary"));
        assert!(
            text.contains("provbench_api_latency_seconds{op=\"create_user\",quantile=\"0.5\"} 0.001"),
            "{text}"
        );
        assert!(
            text.contains("provbench_api_latency_seconds_count{op=\"create_user\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("provbench_api_latency_errors_total{op=\"create_user\"} 1"),
            "{text}"
        );
    }
}
