//! How a run ended, and the one function that decides it. `run`, `report`, `merge`, `sweep` and
//! the exit code all go through [`settle`] and [`RunOutcome::exit_code`], so the same results
//! can never pass under one command and fail under another.

use serde::{Deserialize, Serialize};

use super::reports::{CheckReport, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Written at the start; a summary still saying this belongs to a run that was killed.
    Running,
    Passed,
    /// A threshold was lost or a check failed (exit 1).
    Failed,
    /// Stopped early by Ctrl-C or SIGTERM (exit 1: an interrupted run proves nothing).
    Aborted,
    /// The process died before it finished; rebuilt from its files by `provbench report`.
    Killed,
    /// The run could not be judged: a threshold matched no data, or a run phase failed (exit 2).
    Error,
}

impl RunOutcome {
    /// 0 passed, 1 failed (thresholds, checks, or a run that did not finish), 2 not judgeable.
    pub fn exit_code(self) -> u8 {
        match self {
            RunOutcome::Passed => 0,
            RunOutcome::Error => 2,
            RunOutcome::Running | RunOutcome::Failed | RunOutcome::Aborted | RunOutcome::Killed => 1,
        }
    }

    /// How the console and the reports name it.
    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Running => "incomplete",
            RunOutcome::Passed => "passed",
            RunOutcome::Failed => "FAILED",
            RunOutcome::Aborted => "ABORTED",
            RunOutcome::Killed => "KILLED",
            RunOutcome::Error => "ERROR",
        }
    }
}

/// Why the load stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    /// Every scheduled arrival (open model) or every iteration (closed model) was run.
    ScheduleEnd,
    /// The planned duration elapsed.
    Deadline,
    /// Ctrl-C or SIGTERM.
    Signal,
    /// An `abort_on_fail` threshold was lost this far into the load.
    ThresholdLost { expression: String, after_s: f64 },
    /// A run phase failed (the target could not be prepared, a result file could not be written).
    Failed { error: String },
}

/// The outcome earned by a run that stopped for `stop` (`None`: it never finished), judged by
/// `verdicts` and `checks`.
pub fn settle(stop: Option<&StopReason>, verdicts: &[Verdict], checks: &[CheckReport]) -> RunOutcome {
    match stop {
        Some(StopReason::Failed { .. }) => RunOutcome::Error,
        None => RunOutcome::Killed,
        Some(StopReason::Signal) => RunOutcome::Aborted,
        Some(_) if verdicts.iter().any(|v| v.error.is_some()) => RunOutcome::Error,
        Some(StopReason::ThresholdLost { .. }) => RunOutcome::Failed,
        Some(_) if verdicts.iter().any(|v| !v.passed) || checks.iter().any(CheckReport::is_failure) => {
            RunOutcome::Failed
        }
        Some(_) => RunOutcome::Passed,
    }
}

/// Why a run is an [`RunOutcome::Error`], for the message on stderr.
pub fn error_reason(stop: Option<&StopReason>, verdicts: &[Verdict]) -> Option<String> {
    if let Some(StopReason::Failed { error }) = stop {
        return Some(error.clone());
    }
    verdicts.iter().find_map(|v| {
        v.error
            .as_ref()
            .map(|e| format!("threshold `{}` could not be judged: {e}", v.expression))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(passed: bool, error: Option<&str>) -> Verdict {
        Verdict {
            expression: "p99(api_latency) < 1s".into(),
            observed: None,
            observed_text: String::new(),
            passed,
            error: error.map(String::from),
        }
    }

    fn check(failed: u64, error: Option<&str>) -> CheckReport {
        CheckReport {
            name: "login".into(),
            kind: "login".into(),
            category: "access".into(),
            passed: 1,
            failed,
            skipped: 0,
            examples: vec![],
            error: error.map(String::from),
        }
    }

    #[test]
    fn every_way_a_run_ends() {
        let end = Some(&StopReason::Deadline);
        assert_eq!(
            settle(end, &[verdict(true, None)], &[check(0, None)]),
            RunOutcome::Passed
        );
        assert_eq!(settle(end, &[verdict(false, None)], &[]), RunOutcome::Failed);
        assert_eq!(settle(end, &[], &[check(1, None)]), RunOutcome::Failed);
        assert_eq!(settle(end, &[], &[check(0, Some("never ran"))]), RunOutcome::Failed);
        // No data is an error whatever else failed.
        let no_data = [verdict(false, Some("no data")), verdict(false, None)];
        assert_eq!(settle(end, &no_data, &[]), RunOutcome::Error);
        assert_eq!(settle(end, &no_data, &[]).exit_code(), 2);
        // A run that did not finish never passes, whatever its verdicts.
        assert_eq!(settle(None, &[verdict(true, None)], &[]), RunOutcome::Killed);
        assert_eq!(
            settle(Some(&StopReason::Signal), &[verdict(true, None)], &[]),
            RunOutcome::Aborted
        );
        let lost = StopReason::ThresholdLost {
            expression: "x".into(),
            after_s: 1.0,
        };
        assert_eq!(settle(Some(&lost), &[verdict(true, None)], &[]), RunOutcome::Failed);
        let failed = StopReason::Failed { error: "boom".into() };
        assert_eq!(settle(Some(&failed), &[], &[]), RunOutcome::Error);
        assert_eq!(error_reason(Some(&failed), &[]).as_deref(), Some("boom"));
        assert!(
            error_reason(end, &no_data)
                .unwrap()
                .contains("could not be judged: no data")
        );
    }

    #[test]
    fn exit_codes() {
        let codes: Vec<u8> = [
            RunOutcome::Passed,
            RunOutcome::Failed,
            RunOutcome::Aborted,
            RunOutcome::Killed,
            RunOutcome::Running,
            RunOutcome::Error,
        ]
        .iter()
        .map(|o| o.exit_code())
        .collect();
        assert_eq!(codes, [0, 1, 1, 1, 1, 2]);
    }
}
