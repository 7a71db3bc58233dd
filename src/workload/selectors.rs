//! The `thresholds` list, and its selectors checked against what the workload can record: a
//! misspelled metric, operation, service or tag fails when the workload loads (`validate`,
//! `run`) at the threshold's own line, naming the nearest known word, instead of with exit 2
//! after the whole load.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Source, WorkloadError};
use crate::thresholds::ThresholdSpec;
use crate::thresholds::parse::{Selector, Threshold};
use crate::vocab::{metric, tag};

/// What a workload can record: its operations and the services its probes and checks read.
pub struct Vocabulary {
    pub ops: Vec<String>,
    pub services: Vec<String>,
    /// Why `queue_delay` can never be measured in this workload, when it cannot (no queue
    /// probe, a target whose writes carry no job reference, no observable write).
    pub no_queue: Option<String>,
}

/// `"p99(api_latency) < 300ms"`, or with an abort policy:
/// `{ expr = "rate(errors) < 5%", abort_on_fail = true, delay = "10s" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ThresholdWire {
    Plain(String),
    Full {
        expr: String,
        #[serde(default)]
        abort_on_fail: bool,
        #[serde(default)]
        delay: Option<String>,
    },
}

/// The list as written: each threshold keeps its place.
pub type ThresholdsWire = Spanned<Vec<Spanned<ThresholdWire>>>;

/// Parses each threshold; the spans, in the same order, let [`check`] point at each one.
pub fn from_wire(
    src: &Source,
    list: Option<ThresholdsWire>,
) -> Result<(Vec<ThresholdSpec>, Vec<Range<usize>>), WorkloadError> {
    let Some(list) = list else {
        return Ok(Default::default());
    };
    let mut thresholds = Vec::new();
    let mut spans = Vec::new();
    for t in list.into_inner() {
        let span = t.span();
        let (expr, abort_on_fail, delay) = match t.into_inner() {
            ThresholdWire::Plain(e) => (e, false, None),
            ThresholdWire::Full {
                expr,
                abort_on_fail,
                delay,
            } => (expr, abort_on_fail, delay),
        };
        let mut spec = ThresholdSpec::parse(&expr).map_err(|e| src.error(Some(span.clone()), e.to_string()))?;
        spec.abort_on_fail = abort_on_fail;
        if let Some(d) = delay {
            spec.delay = humantime::parse_duration(d.trim())
                .map_err(|e| src.error(Some(span.clone()), format!("threshold `{expr}`: delay `{d}`: {e}")))?;
        }
        thresholds.push(spec);
        spans.push(span);
    }
    Ok((thresholds, spans))
}

/// Checks each threshold's selector against `vocabulary`, at the threshold's line.
pub fn check(
    src: &Source,
    vocabulary: &Vocabulary,
    thresholds: &[ThresholdSpec],
    spans: &[Range<usize>],
) -> Result<(), WorkloadError> {
    for (t, span) in thresholds.iter().zip(spans) {
        vocabulary.check(t).map_err(|m| src.error(Some(span.clone()), m))?;
    }
    Ok(())
}

/// Tags a check selector takes (`checks{kind=..,category=..,name=..}`).
const CHECK_TAGS: &[&str] = &["kind", "category", "name"];

impl Vocabulary {
    /// `Ok` when every word of `spec`'s selector names something the workload can record.
    pub fn check(&self, spec: &ThresholdSpec) -> Result<(), String> {
        let Threshold::Aggregate { selector, .. } = &spec.threshold else {
            return Ok(());
        };
        self.selector(selector)
            .map_err(|m| format!("threshold `{}`: {m}", spec.expression))
    }

    fn selector(&self, s: &Selector) -> Result<(), String> {
        let pseudo = [metric::ERRORS, metric::TIMEOUTS, metric::RATE_LIMITED, metric::CHECKS];
        let known: Vec<&str> = metric::RECORDED.iter().chain(&pseudo).copied().collect();
        if !known.contains(&s.metric.as_str()) {
            return Err(unknown("metric", &s.metric, &known));
        }
        if s.metric == metric::QUEUE_DELAY
            && let Some(why) = &self.no_queue
        {
            return Err(format!("`{}` can never be measured: {why}", metric::QUEUE_DELAY));
        }
        if s.metric == metric::CHECKS {
            return match s.tags.keys().find(|k| !CHECK_TAGS.contains(&k.as_str())) {
                Some(k) => Err(unknown("tag for checks", k, CHECK_TAGS)),
                None => Ok(()),
            };
        }
        for (key, value) in &s.tags {
            match key.as_str() {
                tag::OP => {
                    let ops: Vec<&str> = self.ops.iter().map(String::as_str).collect();
                    if !ops.contains(&value.as_str()) {
                        return Err(unknown_of("operation", value, &ops, "this workload performs"));
                    }
                }
                tag::SERVICE => {
                    let services: Vec<&str> = self.services.iter().map(String::as_str).collect();
                    if services.is_empty() {
                        return Err(format!(
                            "`service={value}`: this workload reads no linked service (no [probes] sync or [checks] services)"
                        ));
                    }
                    if !services.contains(&value.as_str()) {
                        return Err(unknown_of("service", value, &services, "this workload reads"));
                    }
                }
                tag::METRIC if [metric::TIMEOUTS, metric::RATE_LIMITED].contains(&s.metric.as_str()) => {
                    if !metric::RECORDED.contains(&value.as_str()) {
                        return Err(unknown("metric", value, metric::RECORDED));
                    }
                }
                other => return Err(unknown("tag", other, &[tag::OP, tag::SERVICE, tag::METRIC])),
            }
        }
        Ok(())
    }
}

/// "unknown KIND `word` (did you mean `near`? known: a, b, c)".
fn unknown(kind: &str, word: &str, known: &[&str]) -> String {
    unknown_of(kind, word, known, "known")
}

/// As [`unknown`], with the list introduced by `listed` ("this workload performs").
fn unknown_of(kind: &str, word: &str, known: &[&str], listed: &str) -> String {
    let hint = super::error::did_you_mean(word, known)
        .map(|k| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    format!("unknown {kind} `{word}` ({hint}{listed}: {})", known.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            no_queue: None,
            ops: vec!["create_user".into(), "delete_user".into()],
            services: vec!["directory".into()],
        }
    }

    fn check(expr: &str) -> Result<(), String> {
        vocabulary().check(&ThresholdSpec::parse(expr).unwrap())
    }

    /// Regression: `p99(api_latncy)` and `op=create_usr` passed `validate` and failed with exit
    /// 2 after the whole load.
    #[test]
    fn misspellings_are_named_with_the_nearest_word() {
        let e = check("p99(api_latncy) < 1s").unwrap_err();
        assert!(
            e.contains("unknown metric `api_latncy` (did you mean `api_latency`?"),
            "{e}"
        );
        let e = check("p99(api_latency{op=create_usr}) < 1s").unwrap_err();
        assert!(e.contains("did you mean `create_user`?"), "{e}");
        let e = check("p99(api_latency{op=modify_user}) < 1s").unwrap_err();
        assert!(
            e.contains("this workload performs: create_user, delete_user"),
            "not performed here: {e}"
        );
        let e = check("p99(sync_lag{service=dirctory}) < 1s").unwrap_err();
        assert!(e.contains("did you mean `directory`?"), "{e}");
        let e = check("count(timeouts{metric=sync_lga}) == 0").unwrap_err();
        assert!(e.contains("did you mean `sync_lag`?"), "{e}");
        let e = check("p99(api_latency{opp=create_user}) < 1s").unwrap_err();
        assert!(e.contains("unknown tag `opp`"), "{e}");
    }

    #[test]
    fn what_the_workload_records_passes() {
        for ok in [
            "p99(api_latency{op=create_user}) < 1s",
            "rate(errors{op=delete_user}) < 1%",
            "p99(sync_lag{service=directory,op=create_user}) < 5s",
            "count(timeouts{metric=sync_lag}) == 0",
            "failed(checks{kind=login}) == 0",
            "achieved_rate >= 95% of target",
        ] {
            check(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let none = Vocabulary {
            ops: vec!["create_user".into()],
            services: vec![],
            no_queue: Some("no queue probe".into()),
        };
        let e = none
            .check(&ThresholdSpec::parse("p95(queue_delay) < 1s").unwrap())
            .unwrap_err();
        assert!(e.contains("can never be measured: no queue probe"), "{e}");
        let e = none
            .check(&ThresholdSpec::parse("p99(sync_lag{service=crm}) < 1s").unwrap())
            .unwrap_err();
        assert!(e.contains("reads no linked service"), "{e}");
    }
}
