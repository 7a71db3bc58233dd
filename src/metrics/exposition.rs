//! Live metrics for alerting systems: the interval writer renders Prometheus text exposition
//! once a second (counters, and quantile summaries per series), and a small loopback HTTP
//! server (`--metrics-listen`) serves the latest rendering at `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use super::series::{ErrorKind, SeriesData};
use super::writer::{IntervalObserver, IntervalView};
use crate::vocab::MetricKey;

/// The latest rendering, shared between the writer (an observer) and the server.
#[derive(Clone, Default)]
pub struct Exposition(Arc<RwLock<String>>);

impl IntervalObserver for Exposition {
    fn interval(&mut self, view: &IntervalView<'_>) {
        *self.0.write() = render(view.keys, view.cumulative);
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

/// Prometheus text format 0.0.4: `provbench_<metric>_seconds` summaries plus counters.
pub fn render(keys: &[MetricKey], series: &[SeriesData]) -> String {
    let mut out = String::new();
    let mut declared = std::collections::HashSet::new();
    for (key, d) in keys.iter().zip(series) {
        let name = format!("provbench_{}", key.metric);
        let l = labels(key);
        if declared.insert(key.metric.clone()) {
            let _ = writeln!(out, "# HELP {name}_seconds {} (provbench, µs precision)", key.metric);
            let _ = writeln!(out, "# TYPE {name}_seconds summary");
            let _ = writeln!(out, "# TYPE {name}_errors_total counter");
            let _ = writeln!(out, "# TYPE {name}_timeouts_total counter");
            let _ = writeln!(out, "# TYPE {name}_rate_limited_total counter");
        }
        let h = d.histogram();
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let v = if h.is_empty() {
                f64::NAN
            } else {
                h.value_at_quantile(q) as f64 / 1e6
            };
            let _ = writeln!(out, "{name}_seconds{} {v}", with(&l, &format!("quantile=\"{q}\"")));
        }
        let sum = if h.is_empty() {
            0.0
        } else {
            h.mean() * h.len() as f64 / 1e6
        };
        let _ = writeln!(out, "{name}_seconds_sum{} {sum}", with(&l, ""));
        let _ = writeln!(out, "{name}_seconds_count{} {}", with(&l, ""), d.count());
        let _ = writeln!(out, "{name}_errors_total{} {}", with(&l, ""), d.errors_total());
        let _ = writeln!(
            out,
            "{name}_timeouts_total{} {}",
            with(&l, ""),
            d.errors[ErrorKind::Timeout as usize]
        );
        let _ = writeln!(out, "{name}_rate_limited_total{} {}", with(&l, ""), d.rate_limited);
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

    #[test]
    fn renders_summaries_and_counters() {
        let mut d = SeriesData::default();
        d.record(1_000);
        d.record(3_000);
        d.record_error(ErrorKind::Status, 1);
        let text = render(&[MetricKey::new("api_latency").tag("op", "create_user")], &[d]);
        assert!(text.contains("# TYPE provbench_api_latency_seconds summary"));
        assert!(
            text.contains("provbench_api_latency_seconds{op=\"create_user\",quantile=\"0.5\"} 0.001"),
            "{text}"
        );
        assert!(
            text.contains("provbench_api_latency_seconds_count{op=\"create_user\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("provbench_api_latency_errors_total{op=\"create_user\"} 1"),
            "{text}"
        );
    }
}
