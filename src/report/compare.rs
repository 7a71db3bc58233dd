//! `provbench compare BASELINE CURRENT`: per metric and tag set, per percentile, the change from
//! a baseline run to the current one, computed from the full histograms of both runs
//! (`histograms.hlog`), with regression rules such as `p99=10%`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::metrics::hlog::read_run;
use crate::results::format_micros;

pub const PERCENTILES: &[(&str, f64)] = &[
    ("p50", 0.5),
    ("p90", 0.9),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p999", 0.999),
];

/// `p99=10%`: the current p99 may be at most 10 % above the baseline's.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub percentile: String,
    pub quantile: f64,
    pub max_increase: f64,
}

impl std::str::FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Rule, String> {
        let (p, pct) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected PERCENTILE=PERCENT, e.g. p99=10%"))?;
        let quantile = match p.trim() {
            "max" => 1.0,
            other => PERCENTILES
                .iter()
                .find(|(n, _)| *n == other)
                .map(|(_, q)| *q)
                .ok_or_else(|| format!("`{other}`: use p50, p90, p95, p99, p999 or max"))?,
        };
        let max_increase = pct
            .trim()
            .trim_end_matches('%')
            .parse::<f64>()
            .map_err(|_| format!("`{pct}` is not a percentage"))?
            / 100.0;
        Ok(Rule {
            percentile: p.trim().to_string(),
            quantile,
            max_increase,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub percentile: String,
    pub baseline_us: u64,
    pub current_us: u64,
    /// (current − baseline) / baseline.
    pub change: f64,
    pub regression: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Series in only one of the two runs.
    pub only_in_baseline: Vec<String>,
    pub only_in_current: Vec<String>,
    pub regressions: usize,
}

pub fn compare(baseline: &Path, current: &Path, rules: &[Rule], metric: Option<&str>) -> anyhow::Result<Comparison> {
    let (b, c) = (read_run(baseline)?, read_run(current)?);
    let mut rows = Vec::new();
    let mut only_in_baseline = Vec::new();
    for (key, bd) in b.keys.iter().zip(&b.series) {
        if metric.is_some_and(|m| key.metric != m) {
            continue;
        }
        let Some(i) = c.keys.iter().position(|k| k == key) else {
            only_in_baseline.push(key.to_string());
            continue;
        };
        let (bh, ch) = (bd.histogram(), c.series[i].histogram());
        if bh.is_empty() || ch.is_empty() {
            continue;
        }
        let mut quantiles: Vec<(String, f64)> = PERCENTILES.iter().map(|(n, q)| (n.to_string(), *q)).collect();
        quantiles.push(("max".into(), 1.0));
        for (name, q) in quantiles {
            let (bv, cv) = (bh.value_at_quantile(q), ch.value_at_quantile(q));
            let change = (cv as f64 - bv as f64) / (bv.max(1) as f64);
            let regression = rules.iter().any(|r| r.percentile == name && change > r.max_increase);
            rows.push(Row {
                metric: key.to_string(),
                percentile: name,
                baseline_us: bv,
                current_us: cv,
                change,
                regression,
            });
        }
    }
    let only_in_current = c
        .keys
        .iter()
        .filter(|k| metric.is_none_or(|m| k.metric == m) && !b.keys.contains(k))
        .map(|k| k.to_string())
        .collect();
    let regressions = rows.iter().filter(|r| r.regression).count();
    Ok(Comparison {
        rows,
        only_in_baseline,
        only_in_current,
        regressions,
    })
}

pub fn markdown(c: &Comparison, rules: &[Rule]) -> String {
    let mut out = String::from("| metric | percentile | baseline | current | change |\n|---|---|---:|---:|---:|\n");
    for r in &c.rows {
        let mark = if r.regression { " ❌" } else { "" };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {:+.1}%{mark} |",
            r.metric,
            r.percentile,
            format_micros(Some(r.baseline_us)),
            format_micros(Some(r.current_us)),
            r.change * 100.0
        );
    }
    if !c.only_in_baseline.is_empty() {
        let _ = writeln!(out, "\nOnly in the baseline: {}", c.only_in_baseline.join(", "));
    }
    if !c.only_in_current.is_empty() {
        let _ = writeln!(out, "\nOnly in the current run: {}", c.only_in_current.join(", "));
    }
    let rules: Vec<String> = rules
        .iter()
        .map(|r| format!("{} +{:.0}%", r.percentile, r.max_increase * 100.0))
        .collect();
    let _ = writeln!(
        out,
        "\n{} regression(s){}",
        c.regressions,
        if rules.is_empty() {
            String::new()
        } else {
            format!(" against {}", rules.join(", "))
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        let r: Rule = "p99=10%".parse().unwrap();
        assert_eq!((r.quantile, r.max_increase), (0.99, 0.1));
        assert!("p98=10%".parse::<Rule>().is_err());
        assert!("p99".parse::<Rule>().is_err());
        assert_eq!("max=5".parse::<Rule>().unwrap().quantile, 1.0);
    }
}
