//! The live view (`run --dashboard ADDR`): a page that redraws every second while the run goes,
//! fed by the same per-second data as `intervals.csv` (an [`IntervalObserver`]): throughput and
//! errors, API latency p50/p99 per operation, and the p99 of every asynchronous series. The page
//! is one self-contained document (inline script, nothing fetched but its own `/intervals.json`).

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::writer::{IntervalObserver, IntervalView};
use crate::vocab::metric;

/// Intervals kept for the page (an hour of seconds); older ones are dropped from the view only.
const KEPT: usize = 3600;

/// Every interval so far, as the page reads them.
#[derive(Clone, Default)]
pub struct Dashboard(Arc<RwLock<Vec<Value>>>);

impl IntervalObserver for Dashboard {
    fn interval(&mut self, view: &IntervalView<'_>) {
        let (mut ops, mut errors) = (0u64, 0u64);
        let mut series = serde_json::Map::new();
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
        let mut rows = self.0.write();
        rows.push(row);
        if rows.len() > KEPT {
            let extra = rows.len() - KEPT;
            rows.drain(..extra);
        }
    }
}

impl Dashboard {
    /// The intervals from the `since`-th on (the page asks only for what it has not drawn).
    fn since(&self, since: usize) -> Value {
        let rows = self.0.read();
        json!({"next": rows.len(), "rows": rows.get(since..).unwrap_or_default()})
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

/// The page: polls `/intervals.json` every second and redraws three SVG charts (no library, no
/// network beyond its own origin).
const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>provbench · live</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#111;max-width:1000px}
figure{margin:16px 0}figcaption{font-weight:600}svg{width:100%;height:240px;background:#fff;border:1px solid #eee}
ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}span.sw{display:inline-block;width:12px;height:4px;margin-right:6px;vertical-align:middle}
#status{color:#555}</style></head><body>
<h1>provbench · live</h1><p id="status">waiting for the first second…</p>
<figure><figcaption>Throughput (operations/s) and errors per second</figcaption><svg id="throughput" viewBox="0 0 1000 240" preserveAspectRatio="none"></svg><ul id="throughput-legend"></ul></figure>
<figure><figcaption>API latency p99 per operation (ms)</figcaption><svg id="api" viewBox="0 0 1000 240" preserveAspectRatio="none"></svg><ul id="api-legend"></ul></figure>
<figure><figcaption>Queue delay, sync lag and end to end: p99 per series (ms)</figcaption><svg id="async" viewBox="0 0 1000 240" preserveAspectRatio="none"></svg><ul id="async-legend"></ul></figure>
<script>
const COLORS = ["#2563eb","#dc2626","#16a34a","#9333ea","#ea580c","#0891b2","#ca8a04","#db2777","#4b5563","#65a30d"];
const rows = [];
let next = 0, done = false;
function nice(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}
function esc(s) { return s.replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c])); }
function draw(id, lines) {
  const svg = document.getElementById(id), legend = document.getElementById(id + "-legend");
  const xs = rows.map(r => r.t), xmax = Math.max(1, ...xs);
  let top = 0; for (const l of lines) for (const p of l.points) if (p[1] != null) top = Math.max(top, p[1]);
  // Round ticks: a step of 1, 2 or 5 times a power of ten, four or five of them.
  const step = nice(top > 0 ? top / 4 : 0.25), ticks = Math.max(1, Math.ceil(top / step));
  const ymax = step * ticks;
  let out = "";
  for (let i = 0; i <= ticks; i++) {
    const y = 230 - i / ticks * 220, v = step * i;
    out += `<line x1="50" x2="1000" y1="${y}" y2="${y}" stroke="#eee"/><text x="46" y="${y + 4}" font-size="11" text-anchor="end">${+v.toPrecision(3)}</text>`;
  }
  const xstep = nice(xmax / 8);
  for (let x = 0; x <= xmax; x += xstep) {
    out += `<text x="${(50 + x / xmax * 940).toFixed(1)}" y="240" font-size="10" text-anchor="middle">${+x.toPrecision(3)} s</text>`;
  }
  lines.forEach((l, i) => {
    let d = "", pen = false;
    for (const [x, y] of l.points) {
      if (y == null) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${(50 + x / xmax * 940).toFixed(1)},${(228 - y / ymax * 218).toFixed(1)} `; pen = true;
    }
    out += `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`;
  });
  svg.innerHTML = out;
  legend.innerHTML = lines.map((l, i) => `<li><span class="sw" style="background:${COLORS[i % COLORS.length]}"></span>${esc(l.name)}</li>`).join("");
}
function series(filter) {
  const names = [...new Set(rows.flatMap(r => Object.keys(r.series)))].filter(filter).sort();
  return names.map(n => ({name: n, points: rows.map(r => [r.t, r.series[n] ? r.series[n].p99_us / 1000 : null])}));
}
async function tick() {
  try {
    const r = await fetch(`/intervals.json?since=${next}`);
    const data = await r.json();
    rows.push(...data.rows); next = data.next;
    done = rows.length > 0 && rows[rows.length - 1].last;
    const last = rows[rows.length - 1];
    document.getElementById("status").textContent = last
      ? `${last.t.toFixed(0)} s: ${last.ops_per_s.toFixed(0)} operations/s, ${last.errors} errors in the last second${done ? " · run over" : ""}`
      : "waiting for the first second…";
    draw("throughput", [
      {name: "operations/s", points: rows.map(r => [r.t, r.ops_per_s])},
      {name: "errors/s", points: rows.map(r => [r.t, r.errors])},
    ]);
    draw("api", series(n => n.startsWith("api_latency")));
    draw("async", series(n => /^(queue_delay|sync_lag|end_to_end)/.test(n)));
  } catch (e) {
    document.getElementById("status").textContent = "the run is over (no more data)";
    done = true;
  }
  if (!done) setTimeout(tick, 1000);
}
tick();
</script></body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SeriesData;
    use crate::vocab::MetricKey;
    use std::time::Duration;

    /// Each interval becomes a row with throughput and each series' percentiles; the page asks
    /// only for rows it has not drawn.
    #[test]
    fn intervals_become_rows_read_incrementally() {
        let mut dashboard = Dashboard::default();
        let keys = [
            MetricKey::new("api_latency").tag("op", "create_user"),
            MetricKey::new("sync_lag").tag("service", "crm"),
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
            });
        }
        let all = dashboard.since(0);
        assert_eq!(all["next"], 3);
        let row = &all["rows"][0];
        assert_eq!(row["ops_per_s"], 2.0);
        assert!(row["series"]["api_latency{op=create_user}"]["p99_us"].as_u64().unwrap() >= 4_000);
        assert!(
            row["series"].get("sync_lag{service=crm}").is_none(),
            "empty series are left out"
        );
        let rest = dashboard.since(2);
        assert_eq!(rest["rows"].as_array().unwrap().len(), 1);
        assert_eq!(rest["rows"][0]["last"], true);
        assert_eq!(dashboard.since(9)["rows"].as_array().unwrap().len(), 0);
    }
}
