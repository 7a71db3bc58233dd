//! `provbench compare BASELINE CURRENT`: per metric and tag set, per percentile, the change from
//! a baseline run to the current one, computed from the full histograms of both runs
//! (`histograms.hlog`), with regression rules such as `p99=10%`.
//!
//! Noise-aware: each percentile of each run gets a 95 % confidence interval from the order
//! statistics of its histogram (the ranks n·q ± 1.96·√(n·q·(1−q)), widened by half the metric's
//! resolution where it has one), and a rule is judged only when both runs hold enough samples
//! beyond the percentile (at least [`MIN_TAIL`]) and only on the part of the change beyond both
//! intervals: a regression is a current lower bound above the baseline's upper bound by more
//! than the rule allows. `max` is one sample: shown, never judged.
//!
//! A comparison that judged nothing (no rule, or every rule's percentile short of data) is no
//! pass: [`Comparison::unjudged`] says why, and `compare` exits 2 on it.

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

/// Samples a run needs beyond a percentile for it to be judged (p99: 500 samples).
pub const MIN_TAIL: f64 = 5.0;

/// How a percentile's change was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judged {
    /// No rule names this percentile.
    NoRule,
    /// Within the rule, beyond the noise or not.
    Ok,
    /// Above the rule even against the far ends of both confidence intervals.
    Regression,
    /// A run has too few samples beyond this percentile to say.
    NotEnoughData,
    /// `max`: a single sample, never judged.
    NotJudged,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub percentile: String,
    pub baseline_us: u64,
    pub current_us: u64,
    /// 95 % confidence intervals (µs) of the percentile in each run.
    pub baseline_ci_us: (u64, u64),
    pub current_ci_us: (u64, u64),
    /// (current − baseline) / baseline.
    pub change: f64,
    pub judged: Judged,
    pub regression: bool,
}

/// The 95 % confidence interval of the `q` quantile of `h` (µs), widened by `slack` each side,
/// and whether the histogram has enough samples beyond it to judge.
fn interval(h: &hdrhistogram::Histogram<u64>, q: f64, slack: u64) -> ((u64, u64), bool) {
    let n = h.len() as f64;
    let spread = 1.96 * (n * q * (1.0 - q)).sqrt();
    let at = |rank: f64| h.value_at_quantile((rank / n).clamp(0.0, 1.0));
    let (lo, hi) = (at((n * q - spread).floor()), at((n * q + spread).ceil()));
    let enough = n * (1.0 - q) >= MIN_TAIL;
    ((lo.saturating_sub(slack), hi + slack), enough)
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Series in only one of the two runs.
    pub only_in_baseline: Vec<String>,
    pub only_in_current: Vec<String>,
    pub regressions: usize,
    /// Rows a rule judged (`ok` or `regression`): none, and the comparison proves nothing.
    pub judged: usize,
}

impl Comparison {
    /// Why this comparison judged nothing, if it did (and so must not read as a pass).
    pub fn unjudged(&self, rules: &[Rule]) -> Option<String> {
        if self.judged > 0 {
            return None;
        }
        if rules.is_empty() {
            return Some(
                "nothing was judged: no --max-regression rule was given (e.g. --max-regression p99=10%)".into(),
            );
        }
        let named: Vec<&str> = rules.iter().map(|r| r.percentile.as_str()).collect();
        Some(format!(
            "nothing was judged: of the percentiles the rules name ({}), every one was `not enough data` (a run with fewer than {MIN_TAIL} samples beyond it) or `max` (one sample, never judged)",
            named.join(", ")
        ))
    }
}

/// Half the metric's median resolution per series, from a run's `summary.json` (none without one).
fn half_resolutions(dir: &Path) -> std::collections::HashMap<String, u64> {
    crate::results::Summary::read(dir)
        .map(|s| {
            s.metrics
                .iter()
                .filter_map(|m| m.resolution_us.map(|r| (m.key().to_string(), r / 2)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn compare(baseline: &Path, current: &Path, rules: &[Rule], metric: Option<&str>) -> anyhow::Result<Comparison> {
    let (b, c) = (read_run(baseline)?, read_run(current)?);
    let (b_res, c_res) = (half_resolutions(baseline), half_resolutions(current));
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
        let name_of = key.to_string();
        let slack = |m: &std::collections::HashMap<String, u64>| m.get(&name_of).copied().unwrap_or(0);
        for (name, q) in quantiles {
            let (bv, cv) = (bh.value_at_quantile(q), ch.value_at_quantile(q));
            let change = (cv as f64 - bv as f64) / (bv.max(1) as f64);
            let (b_ci, b_enough) = interval(bh, q, slack(&b_res));
            let (c_ci, c_enough) = interval(ch, q, slack(&c_res));
            let rule = rules.iter().find(|r| r.percentile == name);
            let judged = match rule {
                None => Judged::NoRule,
                Some(_) if q >= 1.0 => Judged::NotJudged,
                Some(_) if !(b_enough && c_enough) => Judged::NotEnoughData,
                // Beyond the noise: even the current run's lowest plausible value exceeds the
                // baseline's highest by more than the rule allows.
                Some(r) if c_ci.0 as f64 > b_ci.1 as f64 * (1.0 + r.max_increase) => Judged::Regression,
                Some(_) => Judged::Ok,
            };
            rows.push(Row {
                metric: name_of.clone(),
                percentile: name,
                baseline_us: bv,
                current_us: cv,
                baseline_ci_us: b_ci,
                current_ci_us: c_ci,
                change,
                regression: judged == Judged::Regression,
                judged,
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
    let judged = rows
        .iter()
        .filter(|r| matches!(r.judged, Judged::Ok | Judged::Regression))
        .count();
    Ok(Comparison {
        rows,
        only_in_baseline,
        only_in_current,
        regressions,
        judged,
    })
}

pub fn markdown(c: &Comparison, rules: &[Rule]) -> String {
    let mut out = String::from(
        "| metric | percentile | baseline (95% CI) | current (95% CI) | change | judged |\n|---|---|---:|---:|---:|---|\n",
    );
    let ci = |(lo, hi): (u64, u64)| format!("{}–{}", format_micros(Some(lo)), format_micros(Some(hi)));
    for r in &c.rows {
        let judged = match r.judged {
            Judged::NoRule => "",
            Judged::Ok => "ok",
            Judged::Regression => "❌ regression",
            Judged::NotEnoughData => "not enough data",
            Judged::NotJudged => "not judged (one sample)",
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} ({}) | {} ({}) | {:+.1}% | {judged} |",
            r.metric,
            r.percentile,
            format_micros(Some(r.baseline_us)),
            ci(r.baseline_ci_us),
            format_micros(Some(r.current_us)),
            ci(r.current_ci_us),
            r.change * 100.0
        );
    }
    if !c.only_in_baseline.is_empty() {
        let _ = writeln!(out, "\nOnly in the baseline: {}", c.only_in_baseline.join(", "));
    }
    if !c.only_in_current.is_empty() {
        let _ = writeln!(out, "\nOnly in the current run: {}", c.only_in_current.join(", "));
    }
    let limits: Vec<String> = rules
        .iter()
        .map(|r| format!("{} +{:.0}%", r.percentile, r.max_increase * 100.0))
        .collect();
    let _ = match c.unjudged(rules) {
        Some(why) => writeln!(out, "\n**Not judged**: {why}"),
        None => writeln!(
            out,
            "\n{} regression(s) in {} judged percentile(s) against {}",
            c.regressions,
            c.judged,
            limits.join(", ")
        ),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: impl IntoIterator<Item = u64>) -> hdrhistogram::Histogram<u64> {
        let mut h = crate::metrics::series::new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    /// The interval holds the percentile and narrows with more samples; a tail too thin to
    /// judge says so.
    #[test]
    fn confidence_intervals_come_from_the_order_statistics() {
        let small = histogram(1..=100);
        let ((lo, hi), enough) = interval(&small, 0.5, 0);
        assert!(lo < 50 && hi > 50 && enough, "{lo}..{hi}");
        let (_, enough) = interval(&small, 0.99, 0);
        assert!(!enough, "one sample beyond p99 of 100");
        let big = histogram((1..=10_000).map(|v| v / 100 + 1));
        let ((blo, bhi), _) = interval(&big, 0.5, 0);
        assert!(bhi - blo < hi - lo, "more samples, a narrower interval: {blo}..{bhi}");
        let ((slo, shi), _) = interval(&small, 0.5, 10);
        assert_eq!((slo, shi), (lo - 10, hi + 10), "widened by the resolution");
    }

    /// The comparison as a pull-request comment shows it.
    #[test]
    fn markdown_snapshot() {
        let row = |metric: &str, percentile: &str, b: u64, c: u64, judged: Judged| Row {
            metric: metric.into(),
            percentile: percentile.into(),
            baseline_us: b,
            current_us: c,
            baseline_ci_us: (b - b / 20, b + b / 20),
            current_ci_us: (c - c / 20, c + c / 20),
            change: (c as f64 - b as f64) / b as f64,
            regression: judged == Judged::Regression,
            judged,
        };
        let c = Comparison {
            rows: vec![
                row("api_latency{op=create_user}", "p50", 20_000, 40_000, Judged::Regression),
                row("api_latency{op=create_user}", "p99", 30_000, 31_000, Judged::Ok),
                row("sync_lag{service=crm}", "p99", 200_000, 260_000, Judged::NotEnoughData),
                row("sync_lag{service=crm}", "max", 300_000, 320_000, Judged::NotJudged),
            ],
            only_in_baseline: vec!["queue_delay{op=delete_user}".into()],
            only_in_current: vec![],
            regressions: 1,
            judged: 2,
        };
        let rules: Vec<Rule> = vec!["p50=5%".parse().unwrap(), "p99=10%".parse().unwrap()];
        insta::assert_snapshot!(markdown(&c, &rules));
    }

    #[test]
    fn rules_parse() {
        let r: Rule = "p99=10%".parse().unwrap();
        assert_eq!((r.quantile, r.max_increase), (0.99, 0.1));
        assert!("p98=10%".parse::<Rule>().is_err());
        assert!("p99".parse::<Rule>().is_err());
        assert_eq!("max=5".parse::<Rule>().unwrap().quantile, 1.0);
    }
}
