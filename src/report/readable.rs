//! Names as a reviewer reads them, shared by the parts of `report.html`: a threshold split into
//! what it measures, over which series (`create_user → crm`, not
//! `sync_lag{op=create_user,service=crm}`) and its limit; a metric's name in words; a check's
//! verdict with its evidence (judged cases against the `min_evidence` a pass needs).
//! A leaf of `report`: plain text, escaped by whoever writes it into markup.

use crate::results::CheckReport;
use crate::thresholds::Threshold;
use crate::vocab::MetricKey;
use crate::vocab::series::label;

/// A threshold in three parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdParts {
    /// `p99 sync lag`, `rate of errors`, `achieved rate`.
    pub what: String,
    /// `create_user → crm`, `all` when the selector names no tag.
    pub series: String,
    /// `< 5s`, `>= 95% of target`.
    pub limit: String,
}

/// `sync_lag` as `sync lag`.
pub fn metric_name(metric: &str) -> String {
    metric.replace('_', " ")
}

/// The parts of a threshold's expression; one the grammar does not read (it always should) is
/// kept whole in `what`.
pub fn threshold(expression: &str) -> ThresholdParts {
    let limit = expression
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .trim()
        .to_string();
    match Threshold::parse(expression) {
        Ok(Threshold::Aggregate { func, selector, .. }) => {
            let func = match func.to_string().as_str() {
                "rate" => "rate of".to_string(),
                "count" => "count of".to_string(),
                "failed" => "failed".to_string(),
                other => other.to_string(),
            };
            let key = MetricKey {
                metric: selector.metric.clone(),
                tags: selector.tags.clone(),
            };
            ThresholdParts {
                what: format!("{func} {}", metric_name(&selector.metric)),
                series: if selector.tags.is_empty() {
                    "all".to_string()
                } else {
                    label(&key)
                },
                limit,
            }
        }
        Ok(Threshold::AchievedRate { .. }) => ThresholdParts {
            what: "achieved rate".into(),
            series: "all".into(),
            limit: expression.trim_start_matches("achieved_rate").trim().to_string(),
        },
        Err(_) => ThresholdParts {
            what: expression.to_string(),
            series: String::new(),
            limit: String::new(),
        },
    }
}

/// How a check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Passed,
    Failed,
    NotJudged,
}

pub fn check_state(c: &CheckReport) -> CheckState {
    if c.failed > 0 {
        CheckState::Failed
    } else if c.unjudged().is_some() {
        CheckState::NotJudged
    } else {
        CheckState::Passed
    }
}

impl CheckState {
    pub fn word(self) -> &'static str {
        match self {
            CheckState::Passed => "passed",
            CheckState::Failed => "FAILED",
            CheckState::NotJudged => "not judged",
        }
    }

    /// The CSS class: green, red, amber.
    pub fn class(self) -> &'static str {
        match self {
            CheckState::Passed => "ok",
            CheckState::Failed => "bad",
            CheckState::NotJudged => "warn",
        }
    }
}

/// `42 judged / 5 needed` (judged cases, the cases a pass needs), with the failed and
/// overtaken ones.
pub fn evidence(c: &CheckReport) -> String {
    let mut text = format!("{} judged / {} needed", c.judged(), c.min_evidence);
    if c.failed > 0 {
        text.push_str(&format!(", {} failed", c.failed));
    }
    if c.skipped > 0 {
        text.push_str(&format!(", {} overtaken", c.skipped));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_in_three_parts() {
        assert_eq!(
            threshold("p99(sync_lag{op=create_user,service=crm}) < 5s"),
            ThresholdParts {
                what: "p99 sync lag".into(),
                series: "create_user → crm".into(),
                limit: "< 5s".into()
            }
        );
        let errors = threshold("rate(errors) < 1%");
        assert_eq!(
            (errors.what.as_str(), errors.series.as_str()),
            ("rate of errors", "all")
        );
        assert_eq!(threshold("achieved_rate >= 95% of target").limit, ">= 95% of target");
        assert_eq!(threshold("nonsense(").what, "nonsense(");
    }
}
