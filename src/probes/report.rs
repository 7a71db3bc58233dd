//! The probes at the run's end: whether the users the run followed are gone from every polled
//! service ([`leftovers`]), and the report of how the observations went ([`report`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::condition::{self, Who};
use super::source::Timing;
use super::watch::{Counters, ProbeCounters, Watched};
use crate::results::{ProbeReport, WARN_SHARE};
use crate::workload::probes::{QueueProbe, SyncProbe};

/// What [`super::ProbeHub::leftovers`] found after cleanup.
pub struct Leftovers {
    /// Per service, the followed users still there.
    pub still: BTreeMap<String, u64>,
    /// Per service, the followed users whose reads failed.
    pub unread: BTreeMap<String, u64>,
    /// The reads it took.
    pub reads: u64,
}

/// Asks every polled service, until `bound` (or an interrupt), whether each of `users` (id,
/// userName) is gone; returns, per service, how many are still there.
pub async fn leftovers(
    services: &[Watched<SyncProbe>],
    users: &[(String, String)],
    bound: Duration,
    interrupt: &CancellationToken,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let deadline = Instant::now() + bound;
    let mut out = BTreeMap::new();
    let mut unread = BTreeMap::new();
    for service in services {
        // A service observed by push is never read.
        if service.source.timing() != Timing::Polled || users.is_empty() {
            continue;
        }
        let find = &service.probe.find;
        // With whether the last read answered: a user the service would not show is no leftover
        // (a refused read says nothing of what the service holds).
        let mut pending: Vec<(Who, bool)> = users
            .iter()
            .map(|(id, user_name)| (Who { id, user_name }, false))
            .collect();
        let mut wait = Duration::from_millis(100);
        loop {
            let whos: Vec<Who> = pending.iter().map(|(w, _)| *w).collect();
            let readings = service.source.read_all(&whos).await;
            pending = whos
                .into_iter()
                .zip(readings)
                .filter_map(|(who, reading)| match reading {
                    None => Some((who, false)),
                    Some(r) if condition::present(find, who, &r) != Some(false) => Some((who, true)),
                    Some(_) => None,
                })
                .collect();
            if pending.is_empty() || Instant::now() + wait > deadline || interrupt.is_cancelled() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = interrupt.cancelled() => break,
            }
            wait = (wait * 2).min(Duration::from_secs(1));
        }
        let read = pending.iter().filter(|(_, answered)| *answered).count() as u64;
        out.insert(service.probe.service.clone(), read);
        if read < pending.len() as u64 {
            unread.insert(service.probe.service.clone(), pending.len() as u64 - read);
        }
    }
    (out, unread)
}

/// What the hub knows at the end, for [`report`].
pub struct Ended<'a> {
    pub queue: Option<&'a Watched<QueueProbe>>,
    pub services: &'a [Watched<SyncProbe>],
    pub counters: &'a Counters,
    pub sample: f64,
    pub max_share: f64,
    /// `[probes] min_evidence`.
    pub min_evidence: u32,
    /// `[probes]` written in the workload: a probe of its that judged nothing is not judged
    /// (never a pass); an embedded target's default probes only say so.
    pub declared: bool,
    /// Events the push receiver took, when there is one.
    pub push_events: Option<u64>,
}

/// The probes' report; `operations`: the load's requests, for the probes' share of the traffic.
pub fn report(end: Ended, operations: u64) -> ProbeReport {
    let c = end.counters;
    let requests: u64 = end
        .queue
        .map(|q| q.source.requests())
        .into_iter()
        .chain(end.services.iter().map(|s| s.source.requests()))
        .sum();
    let mut problems = Vec::new();
    let mut unjudged = Vec::new();
    if let Some(q) = end.queue {
        describe("queue probe".into(), &q.counters, &mut problems);
        nothing_judged("queue_delay", &q.counters, &mut unjudged);
    }
    for s in end.services {
        describe(format!("sync probe `{}`", s.probe.service), &s.counters, &mut problems);
        let name = format!("sync_lag{{service={}}}", s.probe.service);
        nothing_judged(&name, &s.counters, &mut unjudged);
    }
    if !end.declared {
        problems.extend(unjudged.drain(..).map(|u| format!("default probes: {u}")));
    }
    let disagrees = c.clock_disagrees.load(Ordering::Relaxed);
    if disagrees > 0 {
        problems.push(format!(
            "{disagrees} change times a service published fell outside their polling bracket (its clock is off by more than clock_uncertainty): the bracket was used"
        ));
    }
    let share = requests as f64 / (requests + operations).max(1) as f64;
    // Said unless the workload raised `max_share` to allow it.
    if share > WARN_SHARE && share > end.max_share {
        problems.push(format!(
            "probe reads were {:.0} % of all requests (above {:.0} %): what they observe is no longer the load alone; lower probes.sample or probes.max_share",
            share * 100.0,
            WARN_SHARE * 100.0
        ));
    }
    let missing = c.missing_job.load(Ordering::Relaxed);
    if missing > 0 {
        problems.push(format!(
            "{missing} observed writes carried no job reference (queue or push probes skipped them)"
        ));
    }
    let all = || {
        end.services
            .iter()
            .map(|s| &s.counters)
            .chain(end.queue.map(|q| &q.counters))
    };
    let sum = |f: fn(&ProbeCounters) -> &AtomicU64| all().map(|p| f(p).load(Ordering::Relaxed)).sum::<u64>();
    let overtaken = sum(|p| &p.overtaken);
    let unconfirmed = sum(|p| &p.unconfirmed);
    let ended = overtaken + sum(|p| &p.observed) + sum(|p| &p.timeouts);
    ProbeReport {
        overtaken,
        unconfirmed,
        overtaken_share: overtaken as f64 / ended.max(1) as f64,
        sample: end.sample,
        writes_observed: c.sampled.load(Ordering::Relaxed),
        shed: c.shed.load(Ordering::Relaxed),
        abandoned: c.abandoned.load(Ordering::Relaxed),
        probe_requests: requests,
        probe_request_errors: c.request_errors.load(Ordering::Relaxed),
        not_modified: c.unchanged.load(Ordering::Relaxed),
        share_of_requests: share,
        max_share: end.max_share,
        not_followed: c.over_share.load(Ordering::Relaxed),
        push_events: end.push_events,
        problems,
        never_observed: Vec::new(),
        min_evidence: u64::from(end.min_evidence),
        unjudged,
        leftovers: Default::default(),
        unread_after_cleanup: Default::default(),
        reads_after_cleanup: 0,
    }
}

/// A probe that judged nothing, which is never a pass, whatever the reason: its observations
/// all ended without a judgement (overtaken by a later write, or deletes of users never seen
/// there), or it was handed no write at all (none sampled, or each beyond `max_share` or
/// `max_pending`).
fn nothing_judged(name: &str, p: &ProbeCounters, unjudged: &mut Vec<String>) {
    let judged = p.observed.load(Ordering::Relaxed) + p.timeouts.load(Ordering::Relaxed);
    if judged > 0 {
        return;
    }
    let (overtaken, unconfirmed) = (
        p.overtaken.load(Ordering::Relaxed),
        p.unconfirmed.load(Ordering::Relaxed),
    );
    unjudged.push(if overtaken + unconfirmed > 0 {
        format!("{name}: nothing judged ({overtaken} overtaken, {unconfirmed} deletes of users never seen there)")
    } else {
        format!(
            "{name}: nothing judged (no write reached it: none sampled, or each beyond probes.max_share or max_pending)"
        )
    });
}

/// The problems one watched thing's counters point to (a misconfigured pointer or URL).
fn describe(name: String, p: &ProbeCounters, problems: &mut Vec<String>) {
    let (observed, timeouts, missing) = (
        p.observed.load(Ordering::Relaxed),
        p.timeouts.load(Ordering::Relaxed),
        p.pointer_missing.load(Ordering::Relaxed),
    );
    if missing > 0 && timeouts > 0 {
        problems.push(format!(
            "{name}: {timeouts} observations timed out and {missing} answers lacked the JSON pointer the probe reads; check its configuration"
        ));
    }
    if observed == 0 && timeouts > 0 {
        problems.push(format!(
            "{name}: never observed a change in {timeouts} tries (all recorded as timeouts at the bound); check its url or condition"
        ));
    }
}
