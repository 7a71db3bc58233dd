//! The live view (`run --dashboard ADDR`): a page that redraws every second while the run goes
//! and shows the verdict when it ends, fed by the same per-second data as `intervals.csv` (an
//! [`IntervalObserver`]): the run's context (workload, target, run id, load, planned length),
//! throughput and errors, API latency p99 per operation, and the p99 of every asynchronous
//! series by the time of its write. Every series has its one style of the run
//! ([`crate::vocab::series::Styles`], the same as in `report.html`), from the series that
//! recorded something. The page is one self-contained document (`dashboard.html`, inline script, nothing
//! fetched but its own `/intervals.json`); the engine keeps serving it for a few seconds after
//! the run, so an open page gets the final state.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::writer::{IntervalObserver, IntervalView};
use crate::results::Summary;
use crate::vocab::metric;
use crate::vocab::series::{Styles, label};

/// Intervals kept for the page (an hour of seconds); older ones are dropped from the view only.
const KEPT: usize = 3600;

/// How long the page is still served after the run, at least, for an open page to read the
/// verdict (it asks every second).
pub const LINGER: Duration = Duration::from_secs(3);

/// What the page knows of the run.
#[derive(Default)]
struct State {
    context: Map<String, Value>,
    /// Per key (`sync_lag{op=create_user,service=crm}`): its metric, label, colour and dash.
    series: Map<String, Value>,
    rows: Vec<Value>,
    /// Rows dropped from the front (past [`KEPT`]): the page counts rows from the run's first,
    /// so `rows[0]` is row `dropped`.
    dropped: usize,
    /// The asynchronous series by the second of their write, as numbers, kept as the seconds
    /// close: key → second → p99 µs. Drawn as JSON only when the page asks (the lines grow with
    /// the run, up to [`KEPT`] seconds each: redrawing them every second cost more each second).
    by_write_lines: std::collections::BTreeMap<String, std::collections::BTreeMap<u64, u64>>,
    /// The verdict, once the run is over.
    outcome: Option<Value>,
    /// The series that recorded something so far: what `intervals.csv` and
    /// `lags_by_write.csv` hold, and so what report.html styles.
    seen: std::collections::BTreeSet<crate::vocab::MetricKey>,
}

/// Every interval so far, as the page reads them.
#[derive(Clone, Default)]
pub struct Dashboard(Arc<RwLock<State>>);

impl IntervalObserver for Dashboard {
    fn interval(&mut self, view: &IntervalView<'_>) {
        let (mut ops, mut errors) = (0u64, 0u64);
        let mut series = Map::new();
        for (key, d) in view.keys.iter().zip(view.interval) {
            let h = d.histogram();
            if key.metric == metric::API_LATENCY {
                ops += d.count();
                errors += d.errors_total();
            }
            if h.is_empty() {
                continue;
            }
            series.insert(
                key.to_string(),
                json!({"p50_us": h.value_at_quantile(0.5), "p99_us": h.value_at_quantile(0.99), "n": h.len()}),
            );
        }
        let row = json!({
            "t": view.start.as_secs_f64(),
            "ops_per_s": ops as f64 / view.length.as_secs_f64().max(1e-3),
            "errors": errors,
            "series": series,
            "last": view.last,
        });
        let mut state = self.0.write();
        // The styles come from the series that recorded something, as report.html's come from
        // the run's files: the same colours there at the end (a colour may still move in the
        // first seconds, when a series shows its first data).
        for (key, d) in view.keys.iter().zip(view.interval) {
            if !d.is_empty() || key.metric == metric::API_LATENCY {
                state.seen.insert(key.clone());
            }
        }
        if let Some(by_write) = view.by_write {
            let keys: Vec<_> = by_write.rows().filter_map(|r| r.key()).collect();
            state.seen.extend(keys);
        }
        let styles = Styles::of(&state.seen);
        for key in view.keys {
            let label = label(key);
            let style = styles.style(&label);
            state.series.insert(
                key.to_string(),
                json!({"metric": key.metric, "label": label, "colour": style.colour, "dash": style.dash}),
            );
        }
        if let Some(by_write) = view.by_write {
            // The open seconds only are in `by_write`: closed ones stay as they were last drawn,
            // the last KEPT seconds of each line.
            for r in by_write.rows() {
                if let (Some(key), Some(p99)) = (r.key(), r.p99_us) {
                    let line = state.by_write_lines.entry(key.to_string()).or_default();
                    line.insert(r.interval_start_s as u64, p99);
                    while line.len() > KEPT {
                        line.pop_first();
                    }
                }
            }
        }
        state.rows.push(row);
        if state.rows.len() > KEPT {
            let extra = state.rows.len() - KEPT;
            state.rows.drain(..extra);
            state.dropped += extra;
        }
    }
}

impl Dashboard {
    /// A dashboard for the run named by `context` (workload, target, run id, load).
    pub fn new(context: Value) -> Dashboard {
        let state = State {
            context: context.as_object().cloned().unwrap_or_default(),
            ..State::default()
        };
        Dashboard(Arc::new(RwLock::new(state)))
    }

    /// How long the load is planned to run (unknown for a run of iterations).
    pub fn planned(&self, planned: Option<Duration>) {
        self.0
            .write()
            .context
            .insert("planned_s".into(), json!(planned.map(|d| d.as_secs_f64())));
    }

    /// The run is over: its verdict, thresholds and checks, as the page shows them.
    pub fn finished(&self, s: &Summary) {
        // A target's text (a check's name, an observed value) stays one inert line; the page
        // also inserts every text as text.
        let line = |t: &str| crate::redact::line(t);
        let thresholds: Vec<Value> = s
            .thresholds
            .iter()
            .map(|v| json!({"expression": line(&v.expression), "observed": line(&v.observed_text), "passed": v.passed && v.error.is_none()}))
            .collect();
        let checks: Vec<Value> = s
            .checks
            .iter()
            .map(|c| {
                let state = if c.failed > 0 {
                    "failed"
                } else if c.unjudged().is_some() {
                    "not judged"
                } else {
                    "passed"
                };
                json!({"name": line(&c.name), "state": state, "judged": c.judged(), "needed": c.min_evidence})
            })
            .collect();
        self.0.write().outcome = Some(json!({
            "verdict": line(&s.outcome_label()),
            "passed": s.outcome == crate::results::RunOutcome::Passed,
            "thresholds": thresholds,
            "checks": checks,
        }));
    }

    /// The intervals from the `since`-th on (the page asks only for what it has not drawn),
    /// with everything else whole.
    fn since(&self, since: usize) -> Value {
        let state = self.0.read();
        json!({
            "next": state.dropped + state.rows.len(),
            "rows": state.rows.get(since.saturating_sub(state.dropped)..).unwrap_or_default(),
            "context": state.context,
            "series": state.series,
            "by_write": state
                .by_write_lines
                .iter()
                .map(|(k, v)| (k.clone(), Value::Array(v.iter().map(|(s, p)| json!([s, p])).collect())))
                .collect::<Map<String, Value>>(),
            "outcome": state.outcome,
        })
    }
}

/// Serves the page at `/` and its data at `/intervals.json` on `listen` until `stop` fires;
/// returns the bound address.
pub async fn serve(
    listen: &str,
    dashboard: Dashboard,
    stop: CancellationToken,
) -> anyhow::Result<std::net::SocketAddr> {
    use axum::extract::Query;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("--dashboard {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    if let Some(warning) = super::beyond_loopback("--dashboard", addr) {
        tracing::warn!("{warning}");
    }
    let app = axum::Router::new()
        .route("/", get(|| async { axum::response::Html(PAGE) }))
        .route(
            "/intervals.json",
            get(move |Query(q): Query<std::collections::HashMap<String, String>>| {
                let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
                let body = dashboard.since(since);
                async move { axum::Json(body) }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok(addr)
}

/// The page: polls `/intervals.json` every second and redraws its SVG charts (no library, no
/// network beyond its own origin).
const PAGE: &str = include_str!("dashboard.html");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SeriesData;
    use crate::vocab::MetricKey;
    use std::time::Duration;

    /// Each interval becomes a row with throughput and each series' percentiles; the page asks
    /// only for rows it has not drawn, and every registered series has its style of the run.
    #[test]
    fn intervals_become_rows_read_incrementally() {
        let mut dashboard = Dashboard::new(json!({"workload": "w"}));
        let keys = [
            MetricKey::new("api_latency").tag("op", "create_user"),
            MetricKey::new("sync_lag")
                .tag("op", "create_user")
                .tag("service", "crm"),
        ];
        let mut api = SeriesData::default();
        api.record(2_000);
        api.record(4_000);
        let data = [api, SeriesData::default()];
        for i in 0..3 {
            dashboard.interval(&IntervalView {
                keys: &keys,
                interval: &data,
                cumulative: &data,
                start: Duration::from_secs(i),
                length: Duration::from_secs(1),
                last: i == 2,
                by_write: None,
            });
        }
        let all = dashboard.since(0);
        assert_eq!(all["next"], 3);
        assert_eq!(all["context"]["workload"], "w");
        let row = &all["rows"][0];
        assert_eq!(row["ops_per_s"], 2.0);
        assert!(row["series"]["api_latency{op=create_user}"]["p99_us"].as_u64().unwrap() >= 4_000);
        assert!(
            row["series"].get("sync_lag{op=create_user,service=crm}").is_none(),
            "empty series are left out"
        );
        // Styled as report.html styles the run's files: by the series that recorded something.
        let styles = Styles::of(&keys[..1]);
        let create = &all["series"]["api_latency{op=create_user}"];
        assert_eq!(create["colour"], styles.style("create_user").colour);
        let lag = &all["series"]["sync_lag{op=create_user,service=crm}"];
        assert_eq!(lag["label"], "create_user → crm");
        assert_eq!(
            lag["colour"],
            styles.style("create_user → crm").colour,
            "no data: not a run colour"
        );
        let rest = dashboard.since(2);
        assert_eq!(rest["rows"].as_array().unwrap().len(), 1);
        assert_eq!(rest["rows"][0]["last"], true);
        assert_eq!(dashboard.since(9)["rows"].as_array().unwrap().len(), 0);
        assert!(all["outcome"].is_null(), "no verdict while the run goes");
    }

    /// Regression: past an hour of rows (`KEPT`), the oldest are dropped, and `next` stayed at
    /// `KEPT`: a page asking for the rows after it got none again, and stopped drawing.
    #[test]
    fn a_page_keeps_drawing_past_the_rows_kept() {
        let dashboard = Dashboard::new(json!({}));
        let keys = [MetricKey::new("api_latency").tag("op", "get_user")];
        let data = [SeriesData::default()];
        let tick = |i: u64| {
            dashboard.clone().interval(&IntervalView {
                keys: &keys,
                interval: &data,
                cumulative: &data,
                start: Duration::from_secs(i),
                length: Duration::from_secs(1),
                last: false,
                by_write: None,
            })
        };
        for i in 0..KEPT as u64 + 5 {
            tick(i);
        }
        let next = dashboard.since(0)["next"].as_u64().unwrap();
        assert_eq!(next, KEPT as u64 + 5, "rows are counted from the run's first");
        tick(next);
        let rest = dashboard.since(next as usize);
        assert_eq!(rest["rows"].as_array().unwrap().len(), 1, "the new row is drawn");
        assert_eq!(rest["rows"][0]["t"], next as f64);
        assert_eq!(dashboard.since(0)["rows"].as_array().unwrap().len(), KEPT);
    }
}
