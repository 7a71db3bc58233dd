//! The judging phase, pure: from what the load produced (series, counts, reports) and why it
//! stopped, the summary's figures, verdicts and outcome. No sockets, no files, no clock.

use std::time::Duration;

use super::drive::Driven;
use crate::metrics::summary::summarize_all;
use crate::results::{CheckCost, StopReason, Summary, WARN_SHARE};
use crate::thresholds::{Data, ThresholdSpec, judge_all};

/// The checks' requests and their share of all the run sent; a share above a quarter is said.
fn check_cost(summary: &mut Summary, requests: u64) -> CheckCost {
    let operations: u64 = summary.operations().map(|m| m.count).sum();
    let probes = summary.probes.as_ref().map_or(0, |p| p.probe_requests);
    let share = requests as f64 / (requests + operations + probes).max(1) as f64;
    if share > WARN_SHARE {
        summary.notes.push(format!(
            "the checks' own requests were {:.0} % of all requests (above {:.0} %): lower [checks] sample or attempts",
            share * 100.0,
            WARN_SHARE * 100.0
        ));
    }
    CheckCost {
        requests,
        share_of_requests: share,
    }
}

/// Fills `summary` (as written at the start) from `driven`, judged by `thresholds`.
pub fn judge(summary: &mut Summary, driven: Driven, thresholds: &[ThresholdSpec], stop: StopReason) {
    summary.metrics = summarize_all(&driven.keys, &driven.cumulative);
    summary.journeys = driven.journeys;
    summary.notes.extend(driven.notes);
    load_figures(summary, driven.elapsed, driven.arrivals.as_ref(), &stop);
    summary.checks = driven.checks;
    summary.failures = driven.failures;
    for c in &summary.checks {
        if let Some(e) = &c.error {
            summary.notes.push(e.clone());
        }
    }
    summary.probes = driven.probes;
    if let Some(p) = &mut summary.probes {
        summary.notes.extend(p.problems.iter().cloned());
        // Nothing passes on no evidence: a series whose every observation timed out observed
        // nothing, and one with fewer judged observations than the rule asks judged nothing.
        p.never_observed = never_observed(&summary.metrics);
        for series in &p.never_observed {
            summary.notes.push(format!(
                "never observed: {series} (every observation timed out at the bound): not a pass"
            ));
        }
        let thin = thin_series(&summary.metrics, p.min_evidence);
        p.unjudged.extend(thin);
        for series in &p.unjudged {
            summary.notes.push(format!("not judged: {series}: not a pass"));
        }
    }
    summary.check_cost = driven.check_requests.map(|n| check_cost(summary, n));
    let waited: u64 = summary.operations().map(|m| m.rate_limited).sum();
    if waited > 0 {
        summary.notes.push(format!(
            "{waited} answers were 429: with honor_retry_after, the Retry-After waits before a later answer are part of that operation's latency"
        ));
    }
    let data = Data {
        keys: &driven.keys,
        series: &driven.cumulative,
        load: &summary.load,
        checks: &summary.checks,
    };
    summary.thresholds = judge_all(thresholds, &data);
    if let StopReason::ThresholdLost { expression, after_s } = &stop {
        summary.notes.push(format!(
            "stopped early at {after_s:.1}s: threshold `{expression}` was already lost (abort_on_fail)"
        ));
    }
    summary.stop_reason = Some(stop);
    summary.settle();
}

/// The asynchronous series whose every observation timed out.
fn never_observed(metrics: &[crate::results::MetricSummary]) -> Vec<String> {
    use crate::vocab::metric;
    metrics
        .iter()
        .filter(|m| [metric::QUEUE_DELAY, metric::SYNC_LAG].contains(&m.metric.as_str()))
        .filter(|m| m.count > 0 && m.timeouts == m.count)
        .map(|m| format!("{} ({} of {})", m.key(), m.timeouts, m.count))
        .collect()
}

/// The probe series with fewer judged observations (arrived or timed out) than `min_evidence`.
fn thin_series(metrics: &[crate::results::MetricSummary], min_evidence: u64) -> Vec<String> {
    use crate::vocab::metric;
    metrics
        .iter()
        .filter(|m| [metric::QUEUE_DELAY, metric::SYNC_LAG].contains(&m.metric.as_str()))
        .filter(|m| m.count < min_evidence)
        .map(|m| {
            format!(
                "{}: {} observation(s) judged, a pass needs {min_evidence} ([probes] min_evidence)",
                m.key(),
                m.count
            )
        })
        .collect()
}

/// A run whose load could not run (or be set up): the reason is the outcome.
pub fn failed(summary: &mut Summary, error: &anyhow::Error) {
    let stop = StopReason::Failed {
        error: format!("{error:#}"),
    };
    summary.notes.push(format!("the run failed: {error:#}"));
    summary.stop_reason = Some(stop);
    summary.settle();
}

/// Rates over the load: journeys and operations per second, and the open model's arrivals.
fn load_figures(
    summary: &mut Summary,
    elapsed: Duration,
    arrivals: Option<&(crate::workload::schedule::Schedule, super::gate::GateCounts)>,
    stop: &StopReason,
) {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let ops = summary.operation_count();
    let journeys: u64 = summary
        .journeys
        .iter()
        .map(|j| j.completed + j.failed + j.stopped)
        .sum();
    let l = &mut summary.load;
    l.load_duration_s = (secs * 1000.0).round() / 1000.0;
    l.operations_per_second = ops as f64 / secs;
    l.achieved_rate = journeys as f64 / secs;
    l.started = journeys;
    if let Some((schedule, c)) = arrivals {
        l.target_rate = Some(schedule.mean_rate());
        l.peak_rate = Some(schedule.peak_rate());
        l.scheduled = Some(c.scheduled);
        l.started = c.started;
        l.late_starts = c.late;
        l.dropped_arrivals = c.dropped;
        // Over the schedule's length (draining the last journeys does not count), or less if stopped early.
        l.achieved_rate = c.started as f64 / secs.min(schedule.duration().as_secs_f64()).max(1e-3);
        let cut_short = matches!(stop, StopReason::Signal | StopReason::ThresholdLost { .. });
        if cut_short && c.started + c.dropped >= c.scheduled && c.late == 0 {
            // Arrivals the stop cut off are not a shortage of admins.
            summary.notes.push(format!(
                "stopped early: {} of {} scheduled arrivals never started",
                c.dropped, c.scheduled
            ));
        } else if c.late > 0 || c.dropped > 0 {
            summary.notes.push(format!(
                "the admin pool was exhausted: {} late starts, {} dropped arrivals; latency counts from the intended start",
                c.late, c.dropped
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ErrorKind, MetricKey, SeriesData};
    use crate::results::{CheckReport, JourneyInfo, LoadInfo, RunOutcome, TargetInfo};
    use crate::workload::schedule::Schedule;

    fn summary() -> Summary {
        Summary {
            schema_version: crate::results::SCHEMA_VERSION,
            run_id: "pb-00000001".into(),
            workload: "w".into(),
            description: None,
            started_at: "2026-12-02T00:00:00.000Z".into(),
            ended_at: None,
            outcome: RunOutcome::Running,
            stop_reason: None,
            target: TargetInfo {
                kind: "scim".into(),
                url: "http://127.0.0.1:1".into(),
            },
            load: LoadInfo::default(),
            shard: None,
            overrides: vec![],
            strict: false,
            journeys: vec![],
            metrics: vec![],
            declared_thresholds: vec![],
            thresholds: vec![],
            checks: vec![],
            check_cost: None,
            probes: None,
            cleanup: None,
            failures: vec![],
            notes: vec![],
        }
    }

    fn driven(latencies: &[u64], errors: u64) -> Driven {
        let mut create = SeriesData::default();
        for v in latencies {
            create.record(*v);
        }
        for _ in 0..errors {
            create.record_error(ErrorKind::Status, 10);
        }
        Driven {
            keys: vec![
                MetricKey::new("api_latency").tag("op", "create_user"),
                MetricKey::new("api_latency").tag("op", "delete_user"),
                MetricKey::new("queue_delay").tag("op", "create_user"),
            ],
            cumulative: vec![create, SeriesData::default(), SeriesData::default()],
            elapsed: Duration::from_secs(10),
            failures: Vec::new(),
            arrivals: None,
            journeys: vec![JourneyInfo {
                name: "j".into(),
                weight: 1,
                completed: 40,
                failed: 0,
                stopped: 0,
            }],
            checks: vec![],
            check_requests: None,
            probes: None,
            notes: vec![],
            hub: None,
        }
    }

    fn specs(exprs: &[&str]) -> Vec<ThresholdSpec> {
        exprs.iter().map(|e| ThresholdSpec::parse(e).unwrap()).collect()
    }

    #[test]
    fn figures_verdicts_and_outcome() {
        let mut s = summary();
        let lat: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        judge(
            &mut s,
            driven(&lat, 0),
            &specs(&["p99(api_latency) < 1s", "count(errors) == 0"]),
            StopReason::Deadline,
        );
        assert_eq!(s.outcome, RunOutcome::Passed);
        assert_eq!(s.stop_reason, Some(StopReason::Deadline));
        assert_eq!(
            (
                s.load.load_duration_s,
                s.load.operations_per_second,
                s.load.achieved_rate
            ),
            (10.0, 10.0, 4.0)
        );
        // Every operation is listed, even one without data; empty asynchronous series are not.
        let listed: Vec<String> = s.metrics.iter().map(|m| m.key().to_string()).collect();
        assert_eq!(listed, ["api_latency{op=create_user}", "api_latency{op=delete_user}"]);
        assert!(s.thresholds.iter().all(|v| v.passed));
    }

    #[test]
    fn what_fails_a_run() {
        let lat = [5_000u64; 10];
        let mut s = summary();
        judge(
            &mut s,
            driven(&lat, 1),
            &specs(&["count(errors) == 0"]),
            StopReason::Deadline,
        );
        assert_eq!(s.outcome, RunOutcome::Failed);
        let mut s = summary();
        judge(
            &mut s,
            driven(&lat, 0),
            &specs(&["p99(queue_delay) < 1s"]),
            StopReason::Deadline,
        );
        assert_eq!(
            s.outcome,
            RunOutcome::Error,
            "a threshold with no data is not judgeable"
        );
        assert_eq!(s.outcome.exit_code(), 2);
        let mut s = summary();
        judge(&mut s, driven(&lat, 0), &[], StopReason::Signal);
        assert_eq!(s.outcome, RunOutcome::Aborted);
        let mut s = summary();
        let mut d = driven(&lat, 0);
        d.checks = vec![CheckReport {
            name: "login".into(),
            kind: "login".into(),
            category: "access".into(),
            passed: 0,
            failed: 0,
            skipped: 0,
            examples: vec![],
            notes: vec![],
            error: Some("check `login` was declared but never ran".into()),
            min_evidence: 5,
            by_change: Default::default(),
        }];
        judge(&mut s, d, &[], StopReason::ScheduleEnd);
        assert_eq!(s.outcome, RunOutcome::Failed);
        assert!(s.notes.iter().any(|n| n.contains("never ran")));
        let mut s = summary();
        let lost = StopReason::ThresholdLost {
            expression: "p50(api_latency) < 1us".into(),
            after_s: 2.0,
        };
        judge(&mut s, driven(&lat, 0), &[], lost);
        assert_eq!(s.outcome, RunOutcome::Failed);
        assert!(s.notes.iter().any(|n| n.contains("stopped early at 2.0s")));
    }

    #[test]
    fn open_model_rates_count_over_the_schedule() {
        let mut s = summary();
        let mut d = driven(&[1000; 10], 0);
        d.arrivals = Some((
            Schedule::constant(10.0, Duration::from_secs(5)).unwrap(),
            super::super::gate::GateCounts {
                scheduled: 50,
                started: 45,
                late: 3,
                dropped: 5,
            },
        ));
        judge(
            &mut s,
            d,
            &specs(&["achieved_rate >= 95% of target"]),
            StopReason::ScheduleEnd,
        );
        assert_eq!(
            s.load.achieved_rate, 9.0,
            "45 started over the 5 s schedule, not the 10 s load"
        );
        assert_eq!(s.outcome, RunOutcome::Failed);
        assert!(s.notes.iter().any(|n| n.contains("3 late starts, 5 dropped")));
    }

    /// Regression: an interrupted open-model run blamed the arrivals it never started on an
    /// exhausted admin pool.
    #[test]
    fn an_interrupted_open_model_run_says_it_stopped_early() {
        let mut s = summary();
        let mut d = driven(&[1000; 10], 0);
        d.arrivals = Some((
            Schedule::constant(10.0, Duration::from_secs(5)).unwrap(),
            super::super::gate::GateCounts {
                scheduled: 50,
                started: 20,
                late: 0,
                dropped: 30,
            },
        ));
        judge(&mut s, d, &[], StopReason::Signal);
        assert!(
            s.notes.iter().any(|n| n.contains("stopped early: 30 of 50")),
            "{:?}",
            s.notes
        );
        assert!(!s.notes.iter().any(|n| n.contains("exhausted")), "{:?}", s.notes);
    }

    #[test]
    fn a_failed_run_is_an_error() {
        let mut s = summary();
        failed(&mut s, &anyhow::anyhow!("prepopulating users: HTTP 500"));
        assert_eq!(s.outcome, RunOutcome::Error);
        assert!(matches!(s.stop_reason, Some(StopReason::Failed { .. })));
    }
}
