//! `report.html`: one self-contained file (inline CSS and SVG, no script, nothing fetched),
//! laid out for a release review at 1280 px: the [`headline`] (verdict, thresholds and checks
//! with their evidence, the slowest operation, the worst sync lag per service, errors) above
//! the fold, then [`failures`] (what failed, with examples) before any chart, then the charts
//! ([`timeline`]: one colour per series across every chart, empty charts left out), then the
//! [`details`] and the configuration used. Every string is escaped: names, tags and notes may
//! come from the target.

use std::fmt::Write as _;

/// Re-exported for the capacity report, which escapes the same way.
pub use super::markup::escape;
use super::timeline::{self, Rows};
use super::{details, failures, headline};
use crate::metrics::intervals::IntervalRow;
use crate::results::Summary;

/// The page from `intervals.csv` alone (the asynchronous half then by the time it was observed).
pub fn render(s: &Summary, intervals: &[IntervalRow], workload_toml: &str) -> String {
    let rows = Rows {
        intervals: intervals.to_vec(),
        by_write: Vec::new(),
    };
    render_rows(s, &rows, workload_toml)
}

/// The whole page.
pub fn render_rows(s: &Summary, rows: &Rows, workload_toml: &str) -> String {
    let s = &super::one_line(s);
    let mut out = String::new();
    head(&mut out, s);
    headline::render(&mut out, s);
    failures::render(&mut out, s);
    let charts = timeline::render(s, rows, &timeline::styles(s, rows));
    if !charts.is_empty() {
        let _ = write!(out, "<h2>Over time</h2>\n<section id=\"charts\">\n{charts}</section>\n");
    }
    details::render(&mut out, s);
    let _ = writeln!(
        out,
        "<h2>Configuration</h2>\n<pre id=\"configuration\">{}</pre>\n</body></html>",
        escape(workload_toml)
    );
    out
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:20px auto;padding:0 20px;color:#111;max-width:1200px;font-size:14px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:13px;margin:0 0 6px;color:#555;font-weight:600}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right;font-size:13px;white-space:nowrap}\
td:first-child,th:first-child{text-align:left}\
#thresholds td,#thresholds th,#failed-thresholds td,#failed-thresholds th,#failed-checks td,#failed-checks th,#failures td,#failures th,\
#metrics tbody.observed td:nth-child(2),#metrics tbody.observed th:nth-child(2){text-align:left}td.text{text-align:left;white-space:normal;max-width:640px;overflow-wrap:anywhere}\
table.plain td{border:none;padding:1px 8px 1px 0}\
.ok{color:#15803d}.bad{color:#b91c1c}.warn{color:#b45309}.muted{color:#666}\
p.context{color:#444;margin:0 0 12px}\
#headline{border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:8px 0 16px}\
.verdict{font-size:28px;font-weight:700;text-transform:uppercase}.why{margin:2px 0 10px;font-weight:600}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:12px}\
.card{background:#fafafa;border:1px solid #eee;border-radius:4px;padding:8px 10px}.card p{margin:2px 0}\
.big{font-size:17px;font-weight:600}table.plain{margin:4px 0 0}table.plain th{border:none;padding:1px 8px 1px 0;font-weight:600;color:#555;font-size:12px}\
figure{margin:12px 0 20px}figcaption{font-weight:600;font-size:14px}pre{background:#f6f6f6;padding:12px;overflow:auto}\
figure svg{width:100%;height:auto}ul.legend{list-style:none;padding:0;margin:4px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}\
ul.legend span{display:inline-block;width:16px;height:4px;margin-right:6px;vertical-align:middle}";

fn head(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>provbench · {} · {}</title>\n<style>{STYLE}</style></head><body>",
        escape(&s.workload),
        escape(&s.outcome_label())
    );
    let _ = writeln!(
        out,
        "<h1>provbench · {} · <span class=\"{}\">{}</span></h1>",
        escape(&s.workload),
        headline::verdict_class(s),
        escape(&s.outcome_label().to_lowercase())
    );
    if let Some(d) = &s.description {
        let _ = writeln!(out, "<p>{}</p>", escape(d));
    }
    let _ = writeln!(
        out,
        "<p class=\"context\" id=\"header\">run <b>{}</b> · {} {} · {} · {} to {} · {:.1} journeys/s, {:.1} ops/s over {:.1} s</p>",
        escape(&s.run_id),
        escape(&s.target.kind),
        escape(&s.target.url),
        escape(&s.load.description),
        escape(&s.started_at),
        escape(s.ended_at.as_deref().unwrap_or("-")),
        s.load.achieved_rate,
        s.load.operations_per_second,
        s.load.load_duration_s
    );
}
