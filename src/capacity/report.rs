//! The capacity report: `capacity.json` (the contract), `capacity.csv` (one row per step) and a
//! self-contained `capacity.html` whose charts mark the knee, for people who plan hardware.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::Capacity;
use crate::report::charts::{self, Series, Unit};
use crate::report::html::escape;
use crate::results::format_micros;

pub fn write(c: &Capacity, dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join("capacity.json"), serde_json::to_string_pretty(c)? + "\n")
        .context("cannot write capacity.json")?;
    let mut csv = csv::Writer::from_path(dir.join("capacity.csv")).context("cannot write capacity.csv")?;
    csv.write_record([
        "rate",
        "passed",
        "achieved_rate",
        "error_rate",
        "api_p50_us",
        "api_p99_us",
        "queue_delay_p99_us",
        "sync_lag_p99_us",
        "reasons",
    ])?;
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for s in &c.steps {
        let sync: Vec<String> = s.sync_lag_p99_us.iter().map(|(k, v)| format!("{k}={v}")).collect();
        csv.write_record([
            format!("{:.2}", s.rate),
            s.passed.to_string(),
            format!("{:.2}", s.achieved_rate),
            format!("{:.5}", s.error_rate),
            opt(s.api_p50_us),
            opt(s.api_p99_us),
            opt(s.queue_delay_p99_us),
            sync.join(";"),
            s.reasons.join("; "),
        ])?;
    }
    csv.flush()?;
    std::fs::write(dir.join("capacity.html"), html(c)).context("cannot write capacity.html")?;
    Ok(())
}

pub fn html(c: &Capacity) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>provbench capacity · {}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:24px;max-width:1000px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:right}}\
td:last-child{{text-align:left}}.ok{{color:#15803d}}.bad{{color:#b91c1c}}figcaption{{font-weight:600}}\
figure svg{{max-width:100%;height:auto}}ul.legend{{list-style:none;padding:0;margin:4px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}}\
ul.legend span{{display:inline-block;width:12px;height:4px;margin-right:6px;vertical-align:middle}}</style></head><body>\n",
        escape(&c.workload)
    );
    let _ = writeln!(out, "<h1>Capacity of {}</h1>", escape(&c.workload));
    match c.sustainable_rate {
        Some(r) if c.only_the_bound => {
            let _ = writeln!(
                out,
                "<p id=\"verdict\"><strong>Every step passed, up to the sweep's highest rate, {r:.1} journeys per second.</strong> \
The capacity is at least that; raise <code>--to</code> to find where it ends.</p>"
            );
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "<p id=\"verdict\"><strong>Highest sustainable rate: {r:.1} journeys per second.</strong> Above it{}: {}</p>",
                c.first_failing_rate
                    .map(|f| format!(", at {f:.1}/s"))
                    .unwrap_or_default(),
                if c.binding.is_empty() {
                    "nothing failed within the sweep's range".to_string()
                } else {
                    escape(&c.binding.join("; "))
                }
            );
        }
        None => {
            let _ = writeln!(
                out,
                "<p id=\"verdict\" class=\"bad\"><strong>No rate in the sweep met the thresholds.</strong> {}</p>",
                escape(&c.binding.join("; "))
            );
        }
    }
    let knee = c.sustainable_rate.map(|r| (r, "sustainable"));
    let curve = |f: &dyn Fn(&super::Step) -> Option<u64>| -> Vec<(f64, f64)> {
        c.steps
            .iter()
            .filter_map(|s| f(s).map(|v| (s.rate, v as f64)))
            .collect()
    };
    let line = |name: String, points: Vec<(f64, f64)>| Series::new(name, points);
    let latency = [
        line("API p50".into(), curve(&|s| s.api_p50_us)),
        line("API p99".into(), curve(&|s| s.api_p99_us)),
    ];
    let x = "journeys per second (target rate)";
    out.push_str(&charts::against(
        "API latency against arrival rate",
        x,
        "latency",
        Unit::Micros,
        &latency,
        knee,
    ));
    let mut asynchronous = vec![line("queue delay p99".into(), curve(&|s| s.queue_delay_p99_us))];
    let services: std::collections::BTreeSet<&String> = c.steps.iter().flat_map(|s| s.sync_lag_p99_us.keys()).collect();
    for svc in services {
        asynchronous.push(line(
            format!("sync lag p99 {svc}"),
            curve(&|s| s.sync_lag_p99_us.get(svc).copied()),
        ));
    }
    out.push_str(&charts::against(
        "The asynchronous half against arrival rate",
        x,
        "p99",
        Unit::Micros,
        &asynchronous,
        knee,
    ));
    let errors = [
        line(
            "error rate %".into(),
            c.steps.iter().map(|s| (s.rate, s.error_rate * 100.0)).collect(),
        ),
        line(
            "achieved / target %".into(),
            c.steps
                .iter()
                .map(|s| (s.rate, s.achieved_rate / s.rate.max(1e-9) * 100.0))
                .collect(),
        ),
    ];
    out.push_str(&charts::against(
        "Errors and achieved rate",
        x,
        "percent",
        Unit::Percent,
        &errors,
        knee,
    ));
    out.push_str("<h2>Steps</h2>\n<table id=\"steps\"><tr><th>rate</th><th>achieved</th><th>errors</th><th>API p99</th><th>queue delay p99</th><th>result</th></tr>\n");
    for s in &c.steps {
        let (class, text) = if s.passed {
            ("ok", "pass".to_string())
        } else {
            ("bad", s.reasons.join("; "))
        };
        let _ = writeln!(
            out,
            "<tr><td>{:.1}/s</td><td>{:.1}/s</td><td>{:.2}%</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            s.rate,
            s.achieved_rate,
            s.error_rate * 100.0,
            format_micros(s.api_p99_us),
            format_micros(s.queue_delay_p99_us),
            escape(&text)
        );
    }
    out.push_str("</table>\n<p>Each step: a warm-up (left out of its figures) and a measured hold at a constant arrival rate; the step passes when every threshold and check of the workload holds on its own histograms, errors stay under the limit, and the achieved rate keeps up with the target.</p>\n</body></html>\n");
    out
}
