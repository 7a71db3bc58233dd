//! Thresholds: expressions over any metric and tag set, judged on the run's merged histograms
//! (percentiles of the union of the matching series, never averaged). A selector that matches
//! no data is an error, not a pass.
//!
//! Imports the metrics (what is judged) and the results types (what a judgement is), nothing
//! from the engine, probes, checks or workload.
//!
//! # Layout
//! - [`parse`]: the grammar, with column-precise errors.
//! - [`abort`]: abort-on-fail, judged after every interval as an observer of the interval writer.

pub mod abort;
pub mod parse;

use parse::{Func, Selector, Value};
pub use parse::{ParseError, Threshold};

use crate::metrics::{ErrorKind, MetricKey, SeriesData, merge_matching};
use crate::results::{CheckReport, DeclaredThreshold, LoadInfo, Verdict, format_micros};
use crate::vocab::{metric, tag};

/// A threshold as declared, with its abort policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdSpec {
    pub expression: String,
    pub threshold: Threshold,
    /// Stop the load as soon as this threshold is lost (after `delay` from the start).
    pub abort_on_fail: bool,
    pub delay: std::time::Duration,
}

impl ThresholdSpec {
    pub fn parse(expression: &str) -> Result<ThresholdSpec, ParseError> {
        Ok(ThresholdSpec {
            expression: expression.trim().to_string(),
            threshold: Threshold::parse(expression.trim())?,
            abort_on_fail: false,
            delay: std::time::Duration::ZERO,
        })
    }

    /// As `summary.json` records it.
    pub fn declared(&self) -> DeclaredThreshold {
        DeclaredThreshold {
            expression: self.expression.clone(),
            abort_on_fail: self.abort_on_fail,
            delay_ms: self.delay.as_millis() as u64,
        }
    }

    /// Back from `summary.json`.
    pub fn from_declared(d: &DeclaredThreshold) -> Result<ThresholdSpec, ParseError> {
        let mut spec = ThresholdSpec::parse(&d.expression)?;
        spec.abort_on_fail = d.abort_on_fail;
        spec.delay = std::time::Duration::from_millis(d.delay_ms);
        Ok(spec)
    }
}

/// What thresholds are judged on: every series of the run, and the load figures.
pub struct Data<'a> {
    pub keys: &'a [MetricKey],
    pub series: &'a [SeriesData],
    pub load: &'a LoadInfo,
    pub checks: &'a [CheckReport],
}

fn matches(selector: &Selector, metric: &str, key: &MetricKey) -> bool {
    key.metric == metric && selector.tags.iter().all(|(k, v)| key.tags.get(k) == Some(v))
}

impl Data<'_> {
    fn matching<'s>(&'s self, selector: &'s Selector, metric: &'s str) -> impl Iterator<Item = &'s SeriesData> + 's {
        self.keys
            .iter()
            .zip(self.series)
            .filter(move |(k, _)| matches(selector, metric, k))
            .map(|(_, d)| d)
    }

    fn known_metrics(&self) -> String {
        let mut names: Vec<&str> = self.keys.iter().map(|k| k.metric.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(", ")
    }
}

fn no_data(spec: &ThresholdSpec, why: String) -> Verdict {
    Verdict {
        expression: spec.expression.clone(),
        observed: None,
        observed_text: "no data".into(),
        passed: false,
        error: Some(why),
    }
}

/// Judges every threshold on the same data.
pub fn judge_all(specs: &[ThresholdSpec], data: &Data) -> Vec<Verdict> {
    specs.iter().map(|t| evaluate(t, data)).collect()
}

/// Judges the thresholds a summary declares (a declaration that no longer parses is an error
/// verdict, never dropped).
pub fn judge_declared(declared: &[DeclaredThreshold], data: &Data) -> Vec<Verdict> {
    declared
        .iter()
        .map(|d| match ThresholdSpec::from_declared(d) {
            Ok(spec) => evaluate(&spec, data),
            Err(e) => Verdict {
                expression: d.expression.clone(),
                observed: None,
                observed_text: "not judged".into(),
                passed: false,
                error: Some(e.to_string()),
            },
        })
        .collect()
}

/// Judges one threshold.
pub fn evaluate(spec: &ThresholdSpec, data: &Data) -> Verdict {
    let (observed, limit, cmp, text) = match &spec.threshold {
        Threshold::AchievedRate { cmp, fraction } => {
            let Some(target) = data.load.target_rate.filter(|t| *t > 0.0) else {
                return no_data(spec, "achieved_rate needs an open-model load with a target rate".into());
            };
            let f = data.load.achieved_rate / target;
            (f, *fraction, *cmp, format!("{:.1}% of target", f * 100.0))
        }
        Threshold::Aggregate {
            func,
            selector,
            cmp,
            value,
        } => {
            let limit = match value {
                Value::Micros(v) | Value::Fraction(v) | Value::Number(v) => *v,
            };
            match aggregate(func, selector, data) {
                Ok((observed, text)) => (observed, limit, *cmp, text),
                Err(why) => return no_data(spec, why),
            }
        }
    };
    // Nothing passes vacuously: a series whose every observation timed out observed nothing.
    let never = never_observed(&spec.threshold, data);
    Verdict {
        expression: spec.expression.clone(),
        observed: Some(observed),
        observed_text: match never {
            Some(n) => format!("{text}; never observed: all {n} timed out at the bound"),
            None => text,
        },
        passed: never.is_none() && cmp.holds(observed, limit),
        error: None,
    }
}

/// The number of observations, when the series a threshold selects hold only timeouts.
fn never_observed(threshold: &Threshold, data: &Data) -> Option<u64> {
    let Threshold::Aggregate { selector, .. } = threshold else {
        return None;
    };
    let name = selector.metric.as_str();
    if [metric::ERRORS, metric::TIMEOUTS, metric::RATE_LIMITED, metric::CHECKS].contains(&name) {
        return None;
    }
    let merged = merge_matching(data.keys, data.series, |k| matches(selector, name, k))?;
    let timeouts = merged.errors[ErrorKind::Timeout as usize];
    (timeouts > 0 && timeouts == merged.count()).then_some(timeouts)
}

fn aggregate(func: &Func, selector: &Selector, data: &Data) -> Result<(f64, String), String> {
    let described = || {
        let tags: Vec<String> = selector.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if tags.is_empty() {
            selector.metric.clone()
        } else {
            format!("{}{{{}}}", selector.metric, tags.join(","))
        }
    };
    let none = || {
        format!(
            "`{}` matches no data (metrics in this run: {})",
            described(),
            data.known_metrics()
        )
    };
    match selector.metric.as_str() {
        // errors{op=..}: failures of the operations the tags select.
        metric::ERRORS => {
            let (mut errors, mut count) = (0u64, 0u64);
            for d in data.matching(selector, metric::API_LATENCY) {
                errors += d.errors_total();
                count += d.count();
            }
            if count == 0 {
                return Err(none());
            }
            Ok(match func {
                Func::Rate => (
                    errors as f64 / count as f64,
                    format!("{:.3}%", errors as f64 * 100.0 / count as f64),
                ),
                Func::Count => (errors as f64, errors.to_string()),
                other => {
                    return Err(format!(
                        "{other}(errors) is not defined: use rate(errors) or count(errors)"
                    ));
                }
            })
        }
        // timeouts{metric=sync_lag,..}: observations that never arrived.
        metric::TIMEOUTS | metric::RATE_LIMITED => {
            let mut inner = selector.clone();
            let wanted = inner.tags.remove(tag::METRIC);
            let mut total = 0u64;
            let mut any = false;
            for (k, d) in data.keys.iter().zip(data.series) {
                let metric_ok = wanted.as_deref().is_none_or(|m| k.metric == m);
                if metric_ok && inner.tags.iter().all(|(tk, tv)| k.tags.get(tk) == Some(tv)) {
                    any = true;
                    total += if selector.metric == metric::TIMEOUTS {
                        d.errors[ErrorKind::Timeout as usize]
                    } else {
                        d.rate_limited
                    };
                }
            }
            if !any {
                return Err(none());
            }
            match func {
                Func::Count => Ok((total as f64, total.to_string())),
                other => Err(format!("{other}({}) is not defined: use count(...)", selector.metric)),
            }
        }
        // checks{kind=..,category=..,name=..}: failed() sums failures, count() passes + failures.
        metric::CHECKS => {
            let picked: Vec<_> = data
                .checks
                .iter()
                .filter(|c| {
                    selector.tags.iter().all(|(k, v)| match k.as_str() {
                        "kind" => &c.kind == v,
                        "category" => &c.category == v,
                        "name" => &c.name == v,
                        _ => false,
                    })
                })
                .collect();
            if picked.is_empty() {
                return Err(format!("`{}` matches no declared check", described()));
            }
            let failed: u64 = picked.iter().map(|c| c.failed).sum();
            let total: u64 = picked.iter().map(|c| c.failed + c.passed).sum();
            match func {
                Func::Failed => Ok((failed as f64, failed.to_string())),
                Func::Count => Ok((total as f64, total.to_string())),
                Func::Rate if total > 0 => Ok((
                    failed as f64 / total as f64,
                    format!("{:.3}%", failed as f64 * 100.0 / total as f64),
                )),
                other => Err(format!(
                    "{other}(checks) is not defined: use failed(...), count(...) or rate(...)"
                )),
            }
        }
        name => {
            let merged = merge_matching(data.keys, data.series, |k| matches(selector, name, k)).unwrap_or_default();
            let (count, errors) = (merged.count(), merged.errors_total());
            if count == 0 {
                return Err(none());
            }
            let merged = merged.histogram();
            let dur = |v: u64| (v as f64, format_micros(Some(v)));
            Ok(match func {
                Func::Count => (count as f64, count.to_string()),
                Func::Rate => (
                    errors as f64 / count as f64,
                    format!("{:.3}%", errors as f64 * 100.0 / count as f64),
                ),
                Func::Failed => return Err(format!("failed() applies to checks, not to `{name}`")),
                _ if merged.is_empty() => return Err(format!("`{}` has no successful observations", described())),
                Func::Percentile(p) => dur(merged.value_at_quantile(p / 100.0)),
                Func::Min => dur(merged.min()),
                Func::Max => dur(merged.max()),
                Func::Mean => (merged.mean(), format_micros(Some(merged.mean() as u64))),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Vec<MetricKey>, Vec<SeriesData>) {
        let mut create = SeriesData::default();
        let mut delete = SeriesData::default();
        for v in 1..=100u64 {
            create.record(v * 1000);
            delete.record(v * 10);
        }
        create.record_error(ErrorKind::Status, 5);
        let mut sync = SeriesData::default();
        sync.record_error(ErrorKind::Timeout, 30_000_000);
        sync.record(100_000);
        (
            vec![
                MetricKey::new("api_latency").tag("op", "create_user"),
                MetricKey::new("api_latency").tag("op", "delete_user"),
                MetricKey::new("sync_lag")
                    .tag("service", "mail")
                    .tag("op", "create_user"),
            ],
            vec![create, delete, sync],
        )
    }

    fn judge(expr: &str) -> Verdict {
        let (keys, series) = data();
        let load = LoadInfo {
            achieved_rate: 95.0,
            target_rate: Some(100.0),
            ..Default::default()
        };
        evaluate(
            &ThresholdSpec::parse(expr).unwrap(),
            &Data {
                keys: &keys,
                series: &series,
                load: &load,
                checks: &[],
            },
        )
    }

    #[test]
    fn percentiles_come_from_the_merged_histograms() {
        assert!(judge("p50(api_latency{op=create_user}) < 51ms").passed);
        assert!(!judge("p50(api_latency{op=create_user}) < 49ms").passed);
        // Merged over both operations, the median falls between them: not an average of medians.
        let v = judge("p50(api_latency) < 1s");
        assert!(v.observed.unwrap() <= 1_000.0, "{v:?}");
        assert!(
            !judge("max(sync_lag{service=mail}) < 1s").passed,
            "the timeout sits at its bound"
        );
    }

    #[test]
    fn counters_rates_and_the_target() {
        let v = judge("rate(errors) < 1%");
        assert!(v.passed && (v.observed.unwrap() - 1.0 / 201.0).abs() < 1e-9, "{v:?}");
        assert!(!judge("count(errors{op=create_user}) == 0").passed);
        assert!(judge("count(timeouts{metric=sync_lag}) == 1").passed);
        assert!(judge("count(timeouts{metric=api_latency}) == 0").passed);
        assert!(judge("achieved_rate >= 95% of target").passed);
        assert!(!judge("achieved_rate >= 96% of target").passed);
    }

    /// Regression: a (service, op) whose every observation timed out passed its thresholds.
    #[test]
    fn a_series_that_never_observed_anything_fails() {
        let mut lost = SeriesData::default();
        for _ in 0..3 {
            lost.record_error(ErrorKind::Timeout, 30_000_000);
        }
        let keys = [MetricKey::new("sync_lag").tag("service", "crm")];
        let load = LoadInfo::default();
        let data = Data {
            keys: &keys,
            series: &[lost],
            load: &load,
            checks: &[],
        };
        for expr in ["count(sync_lag{service=crm}) > 0", "p99(sync_lag) <= 30s"] {
            let v = evaluate(&ThresholdSpec::parse(expr).unwrap(), &data);
            assert!(!v.passed && v.error.is_none(), "{expr}: {v:?}");
            assert!(v.observed_text.contains("never observed: all 3 timed out"), "{v:?}");
        }
    }

    #[test]
    fn selectors_without_data_are_errors_not_passes() {
        for expr in [
            "p99(api_latency{op=nope}) < 1s",
            "max(queue_delay) < 1s",
            "failed(checks{kind=security}) == 0",
        ] {
            let v = judge(expr);
            assert!(!v.passed && v.error.is_some(), "{expr}: {v:?}");
        }
        assert!(
            judge("p99(sync_lg) < 1s")
                .error
                .unwrap()
                .contains("metrics in this run: api_latency, sync_lag")
        );
    }
}
