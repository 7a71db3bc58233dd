//! How a run ended, and the one function that decides it. `run`, `report`, `merge`, `sweep` and
//! the exit code all go through [`settle`] and [`RunOutcome::exit_code`], so the same results
//! can never pass under one command and fail under another.

use serde::{Deserialize, Serialize};

use super::reports::{CheckReport, CleanupReport, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Written at the start; a summary still saying this belongs to a run that was killed.
    Running,
    /// Judged, and written so before cleanup; a summary still saying this belongs to a run killed
    /// during cleanup (what it left is unknown: never a pass).
    Cleaning,
    Passed,
    /// A threshold was lost or a check failed (exit 1).
    Failed,
    /// Stopped early by Ctrl-C, SIGTERM or SIGHUP (exit 130, as the shell reports a process
    /// ended by SIGINT: an interrupted run proves nothing, and is no lost threshold either).
    Aborted,
    /// The process died before it finished; rebuilt from its files by `provbench report`.
    Killed,
    /// The run could not be judged (a threshold matched no data, a run phase failed), or it left
    /// users behind on the target (exit 2).
    Error,
}

/// The exit code of a run stopped by a signal: 128 + SIGINT, what a shell reports for a command
/// ended by Ctrl-C, so CI and scripts tell an interrupted run from a lost threshold.
pub const INTERRUPTED_EXIT: u8 = 130;

impl RunOutcome {
    /// 0 passed, 1 failed (thresholds, checks, or a run killed before it finished), 2 not
    /// judgeable, 130 interrupted.
    pub fn exit_code(self) -> u8 {
        match self {
            RunOutcome::Passed => 0,
            RunOutcome::Error => 2,
            RunOutcome::Aborted => INTERRUPTED_EXIT,
            RunOutcome::Running | RunOutcome::Cleaning | RunOutcome::Failed | RunOutcome::Killed => 1,
        }
    }

    /// How the console and the reports name it.
    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Running => "incomplete",
            RunOutcome::Cleaning => "incomplete (cleaning up)",
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

/// Everything an outcome is settled on.
#[derive(Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// Why the load stopped; `None`: the run never finished.
    pub stop: Option<&'a StopReason>,
    pub verdicts: &'a [Verdict],
    pub checks: &'a [CheckReport],
    /// Once cleanup ran: a run that leaves users on the target is never a pass.
    pub cleanup: Option<&'a CleanupReport>,
    /// Operations attempted, and how many of them succeeded.
    pub operations: (u64, u64),
    /// A probe series observed nothing, or judged fewer observations than `[probes]
    /// min_evidence` ([`super::ProbeReport::unproven`]).
    pub probes_unproven: bool,
}

/// The outcome a run earned.
pub fn settle(e: &Evidence) -> RunOutcome {
    let nothing_worked = e.operations.1 == 0;
    match e.stop {
        Some(StopReason::Failed { .. }) => RunOutcome::Error,
        Some(_) if e.cleanup.is_some_and(CleanupReport::incomplete) => RunOutcome::Error,
        None => RunOutcome::Killed,
        Some(StopReason::Signal) => RunOutcome::Aborted,
        Some(_) if e.verdicts.iter().any(|v| v.error.is_some()) => RunOutcome::Error,
        // Nothing was measured: whatever the thresholds say, there is nothing to pass on.
        Some(_) if nothing_worked => RunOutcome::Error,
        Some(StopReason::ThresholdLost { .. }) => RunOutcome::Failed,
        Some(_)
            if e.verdicts.iter().any(|v| !v.passed)
                || e.checks.iter().any(CheckReport::is_failure)
                || e.probes_unproven =>
        {
            RunOutcome::Failed
        }
        Some(_) => RunOutcome::Passed,
    }
}

/// Why a run is an [`RunOutcome::Error`], for the message on stderr: every reason that holds.
pub fn error_reason(e: &Evidence) -> Option<String> {
    if let Some(StopReason::Failed { error }) = e.stop {
        return Some(error.clone());
    }
    let mut reasons: Vec<String> = e
        .verdicts
        .iter()
        .filter_map(|v| {
            v.error
                .as_ref()
                .map(|err| format!("threshold `{}` could not be judged: {err}", v.expression))
        })
        .collect();
    match e.operations {
        (0, _) => reasons.push("no operation ran: nothing was measured".into()),
        (n, 0) => reasons.push(format!(
            "every one of the {n} operations failed: no latency was measured (see the errors by reason)"
        )),
        _ => {}
    }
    if let Some(c) = e.cleanup.filter(|c| c.incomplete()) {
        let mut what = Vec::new();
        if c.pending {
            what.push("cleanup never ended (the run was killed during it): what it left is unknown".to_string());
        }
        if c.failed > 0 {
            what.push(format!("cleanup left {} resource(s) on the target", c.failed));
        }
        if c.unverified > 0 {
            what.push(format!(
                "{} delete(s) answered as done were not read back as gone",
                c.unverified
            ));
        }
        if !c.unsearchable.is_empty() {
            what.push(format!(
                "cleanup could not search the target ({})",
                c.unsearchable.join("; ")
            ));
        }
        if what.is_empty() {
            what.push("cleanup ran out of time".into());
        }
        let what = what.join(", ");
        let command = c
            .command
            .as_deref()
            .map(|cmd| format!(": run `{cmd}`"))
            .unwrap_or_default();
        reasons.push(format!("{what}{command}"));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence<'a>(
        stop: Option<&'a StopReason>,
        verdicts: &'a [Verdict],
        checks: &'a [CheckReport],
        cleanup: Option<&'a CleanupReport>,
    ) -> Evidence<'a> {
        Evidence {
            stop,
            verdicts,
            checks,
            cleanup,
            operations: (10, 10),
            probes_unproven: false,
        }
    }

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
            notes: vec![],
            error: error.map(String::from),
            min_evidence: 1,
            by_change: Default::default(),
        }
    }

    #[test]
    fn a_check_passes_only_on_enough_judged_cases() {
        let end = Some(&StopReason::Deadline);
        let with = |passed: u64, failed: u64, skipped: u64, min: u64| CheckReport {
            passed,
            failed,
            skipped,
            min_evidence: min,
            by_change: Default::default(),
            ..check(0, None)
        };
        let settle = |c: CheckReport| super::settle(&evidence(end, &[], &[c], None));
        assert_eq!(settle(with(5, 0, 0, 5)), RunOutcome::Passed);
        // One user's pass (the rest overtaken) is no verdict.
        assert_eq!(settle(with(1, 0, 287, 5)), RunOutcome::Failed);
        let why = with(1, 0, 287, 5).unjudged().unwrap();
        assert!(
            why.contains("1 case(s) judged (287 overtaken), a pass needs 5"),
            "{why}"
        );
        // A failure is a verdict on any number of cases.
        assert_eq!(settle(with(0, 1, 0, 5)), RunOutcome::Failed);
        assert!(with(0, 1, 0, 5).unjudged().is_none());
        // Summaries written before the rule (min 0) keep their verdicts.
        assert_eq!(settle(with(1, 0, 0, 0)), RunOutcome::Passed);
    }

    /// Each change a check follows carries the evidence rule on its own: deletes that passed do
    /// not prove revocation after disables that were all overtaken.
    #[test]
    fn every_change_needs_its_own_evidence() {
        let case = |passed, failed, overtaken| crate::results::ChangeCases {
            passed,
            failed,
            overtaken,
        };
        let mut c = CheckReport {
            passed: 20,
            min_evidence: 5,
            ..check(0, None)
        };
        c.by_change.insert("delete_user".into(), case(20, 0, 0));
        assert_eq!(c.unjudged(), None);
        c.by_change.insert("disable_user".into(), case(0, 0, 20));
        let why = c.unjudged().unwrap();
        assert!(
            why.contains("after disable_user") && why.contains("0 case(s) judged"),
            "{why}"
        );
        assert!(c.is_failure());
        c.by_change.insert("disable_user".into(), case(5, 0, 15));
        assert_eq!(c.unjudged(), None);
        // A failure is a verdict, however few the other change's cases.
        c.failed = 1;
        c.by_change.insert("disable_user".into(), case(0, 1, 15));
        assert_eq!(c.unjudged(), None);
    }

    #[test]
    fn overtaken_cases_have_one_name_in_every_output() {
        let c = CheckReport {
            skipped: 3,
            ..check(0, None)
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["overtaken"], 3);
        assert!(json.get("skipped").is_none());
        // Older summaries still read.
        let mut old = json;
        old.as_object_mut().unwrap().remove("overtaken");
        old["skipped"] = 2.into();
        assert_eq!(serde_json::from_value::<CheckReport>(old).unwrap().skipped, 2);
    }

    #[test]
    fn every_way_a_run_ends() {
        let end = Some(&StopReason::Deadline);
        let settle =
            |stop: Option<&StopReason>, v: &[Verdict], c: &[CheckReport]| super::settle(&evidence(stop, v, c, None));
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
        assert_eq!(
            error_reason(&evidence(Some(&failed), &[], &[], None)).as_deref(),
            Some("boom")
        );
        assert!(
            error_reason(&evidence(end, &no_data, &[], None))
                .unwrap()
                .contains("could not be judged: no data")
        );
    }

    /// Regression: a target that answered everything with `{"ok":true}` passed with 100 % errors.
    #[test]
    fn a_run_that_measured_nothing_never_passes() {
        let end = Some(&StopReason::Deadline);
        let ok = [verdict(true, None)];
        for ops in [(0, 0), (120, 0)] {
            let e = Evidence {
                operations: ops,
                ..evidence(end, &ok, &[], None)
            };
            assert_eq!(settle(&e), RunOutcome::Error, "{ops:?}");
            assert!(error_reason(&e).is_some());
        }
    }

    /// A run that leaves users behind is never a silent pass.
    #[test]
    fn leftovers_make_an_error() {
        let end = Some(&StopReason::Deadline);
        let clean = CleanupReport::default();
        let left = CleanupReport {
            failed: 2,
            command: Some("provbench cleanup --run-id pb-1a2b3c4d w.toml".into()),
            ..Default::default()
        };
        let ok = [verdict(true, None)];
        assert_eq!(settle(&evidence(end, &ok, &[], Some(&clean))), RunOutcome::Passed);
        assert_eq!(settle(&evidence(end, &ok, &[], Some(&left))), RunOutcome::Error);
        let why = error_reason(&evidence(end, &[], &[], Some(&left))).unwrap();
        assert!(
            why.contains("left 2") && why.contains("provbench cleanup --run-id pb-1a2b3c4d"),
            "{why}"
        );
        let blind = CleanupReport {
            unsearchable: vec!["Users: HTTP 500".into()],
            ..Default::default()
        };
        assert_eq!(settle(&evidence(end, &[], &[], Some(&blind))), RunOutcome::Error);
        // The embedded service takes what it held with it.
        let gone = CleanupReport {
            gone_with_target: true,
            ..left
        };
        assert_eq!(settle(&evidence(end, &[], &[], Some(&gone))), RunOutcome::Passed);
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
        assert_eq!(codes, [0, 1, 130, 1, 1, 2]);
    }

    /// A probe series that observed nothing or judged too little is no pass, strict or not.
    #[test]
    fn a_probe_series_without_evidence_is_no_pass() {
        let stop = StopReason::ScheduleEnd;
        let mut e = evidence(Some(&stop), &[], &[], None);
        assert_eq!(settle(&e), RunOutcome::Passed);
        e.probes_unproven = true;
        assert_eq!(settle(&e), RunOutcome::Failed);
    }
}
