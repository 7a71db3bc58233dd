//! Probes: the asynchronous half, measured. A sampled share of acknowledged writes is observed
//! in tasks of its own (never inside a virtual admin): the job-status URL for `queue_delay{op}`,
//! each linked service's read view (adaptive polling) or webhook events (push) for
//! `sync_lag{service,op}`, and `end_to_end{op}` once every service shows the change.
//! Observations that never arrive are recorded at their bound and counted as timeouts; writes
//! beyond `max_pending` are shed and counted.
//!
//! # Layout
//! - `bracket`: where a change lies between the reads around it.
//! - [`condition`]: what "visible" means per kind of write. [`read`]: how a service is read
//!   (batched queries, conditional GETs, the request budget). [`push`]: the webhook receiver.

mod bracket;
pub mod condition;
pub mod ldap;
pub mod push;
pub mod read;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http::HttpClient;
use crate::http::HttpSettings;
use crate::metrics::{MetricKey, Registry, SeriesId};
use crate::results::ProbeReport;
use crate::vocab::{Op, metric, tag};
use crate::workload::downstream::ServiceAuth;
use crate::workload::probes::{JobSource, Observe, Probes, StartDetection, SyncProbe};
use bracket::{Bracket, WallClock};
use condition::{Check, Expect, Reading, Who, check_or_later};
use push::PushHub;
use read::{Fetch, ServiceReader, absolute};

/// An acknowledged write to observe.
pub struct Write {
    pub op: Op,
    pub user_id: String,
    pub user_name: String,
    /// When the write's step began (its intended start): nothing it caused shows before.
    pub began: Instant,
    pub acked: Instant,
    /// Job URL or id from the write's answer.
    pub job: Option<String>,
    pub expect: Expect,
    pub later: condition::Supersession,
    /// What the probes know of this user across its writes.
    pub trace: condition::UserTrace,
    /// This write's place among the user's writes (from [`condition::Trace::next_write`]).
    pub index: u64,
}

#[derive(Default)]
struct ProbeCounters {
    observed: AtomicU64,
    timeouts: AtomicU64,
    overtaken: AtomicU64,
    unconfirmed: AtomicU64,
    pointer_missing: AtomicU64,
    /// The slowest change observed there (µs): how long a user may take to show up.
    slowest_us: AtomicU64,
}

/// How one observation ended.
enum Seen {
    /// The change showed: (lag, resolution µs).
    At(Duration, u64),
    /// A later write's state showed first.
    Overtaken,
    /// A delete of a user never seen there: it cannot be timed.
    Unconfirmed,
    /// Nothing by the bound.
    TimedOut,
}

#[derive(Default)]
pub struct Counters {
    /// Change times a service published that fell outside their bracket (the bracket was used).
    pub clock_disagrees: AtomicU64,
    /// Reads that found the view unchanged (304 to a conditional GET).
    pub unchanged: AtomicU64,
    pub request_errors: AtomicU64,
    pub sampled: AtomicU64,
    pub shed: AtomicU64,
    pub abandoned: AtomicU64,
    pub missing_job: AtomicU64,
}

pub struct ProbeHub {
    probes: Probes,
    client: Arc<HttpClient>,
    /// Job-status reads, on the target.
    queue_reader: Arc<ServiceReader>,
    /// Per sync probe: how its reads go, with that service's credentials and budget.
    readers: Vec<Arc<ServiceReader>>,
    registry: Arc<Registry>,
    queue_series: HashMap<Op, SeriesId>,
    sync_series: HashMap<(usize, Op), SeriesId>,
    end_to_end: HashMap<Op, SeriesId>,
    sync_counters: Vec<ProbeCounters>,
    queue_counters: ProbeCounters,
    permits: Arc<Semaphore>,
    pub counters: Counters,
    push: Option<Arc<PushHub>>,
    stop: CancellationToken,
    /// The users the run created that the probes followed (id, userName): at the end, each
    /// polled service is asked whether they are gone.
    followed: parking_lot::Mutex<Vec<(String, String)>>,
    readers_stop: CancellationToken,
    /// Where published change times land on our clock.
    clock: WallClock,
}

impl Drop for ProbeHub {
    fn drop(&mut self) {
        self.readers_stop.cancel();
    }
}

impl ProbeHub {
    /// Registers a series for every (probe, op) the workload's `ops` can produce, and signs each
    /// service's reader in (an OAuth2 service's token is fetched now and refreshed until `stop`).
    pub async fn new(
        probes: Probes,
        client: Arc<HttpClient>,
        registry: Arc<Registry>,
        ops: &[Op],
        push: Option<Arc<PushHub>>,
        stop: CancellationToken,
    ) -> anyhow::Result<ProbeHub> {
        // The batching tasks end with the hub (see `Drop`) or the run's stop.
        let readers_stop = stop.child_token();
        let mut readers = Vec::with_capacity(probes.sync.len());
        for p in &probes.sync {
            let batch = p.batch.map(|max| (p.find.url().clone(), max));
            if let Some(read) = &p.ldap {
                let view = ldap::LdapView::connect(read)
                    .await
                    .map_err(|e| e.context(format!("probes.sync `{}`: the directory", p.service)))?;
                readers.push(ServiceReader::ldap(client.clone(), p.budget, view));
                continue;
            }
            let client = reader(p, &client, &readers_stop).await?;
            readers.push(ServiceReader::new(client, true, p.budget, batch, &readers_stop));
        }
        let queue_reader = ServiceReader::new(client.clone(), false, None, None, &readers_stop);
        let mut queue_series = HashMap::new();
        let mut sync_series = HashMap::new();
        let mut end_to_end = HashMap::new();
        for &op in ops.iter().filter(|o| o.is_observable_write()) {
            let key = |m: &str| MetricKey::new(m).tag(tag::OP, op.as_str());
            if probes.queue.is_some() {
                queue_series.insert(op, registry.series(key(metric::QUEUE_DELAY)));
            }
            for (i, s) in probes.sync.iter().enumerate() {
                if s.ops.contains(&op) {
                    sync_series.insert(
                        (i, op),
                        registry.series(key(metric::SYNC_LAG).tag(tag::SERVICE, &s.service)),
                    );
                }
            }
            if !probes.sync.is_empty() {
                end_to_end.insert(op, registry.series(key(metric::END_TO_END)));
            }
        }
        Ok(ProbeHub {
            readers,
            queue_reader,
            readers_stop,
            clock: WallClock::now(),
            permits: Arc::new(Semaphore::new(probes.max_pending)),
            sync_counters: probes.sync.iter().map(|_| ProbeCounters::default()).collect(),
            queue_counters: ProbeCounters::default(),
            probes,
            client,
            registry,
            queue_series,
            sync_series,
            end_to_end,
            counters: Counters::default(),
            push,
            stop,
            followed: Default::default(),
        })
    }

    /// True when writes of `op` are observed at all.
    pub fn wants(&self, op: Op) -> bool {
        self.queue_series.contains_key(&op) || self.end_to_end.contains_key(&op)
    }

    /// True for a uniform `draw` in [0, 1) that falls in the sample.
    pub fn sampled(&self, draw: f64) -> bool {
        draw < self.probes.sample
    }

    /// A fresh trace for a user, one slot per sync probe.
    pub fn new_trace(&self) -> condition::UserTrace {
        condition::Trace::new(self.probes.sync.len())
    }

    pub fn job_source(&self) -> Option<&JobSource> {
        self.probes.queue.as_ref().map(|q| &q.source)
    }

    /// Starts observing `write`, or sheds it when `max_pending` observations are under way.
    pub fn observe(self: &Arc<Self>, write: Write) {
        if write.op == Op::DeleteUser {
            write.trace.deleted(write.acked);
        }
        if write.op == Op::CreateUser {
            self.followed
                .lock()
                .push((write.user_id.clone(), write.user_name.clone()));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.counters.shed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.counters.sampled.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(self.clone().run(write, permit));
    }

    /// Waits (up to `limit`) for the observations under way to finish.
    pub async fn drain(&self, limit: Duration) {
        let all = self.probes.max_pending as u32;
        if tokio::time::timeout(limit, self.permits.acquire_many(all))
            .await
            .is_err()
        {
            self.abort();
        }
    }

    /// Stops every observation now; those under way are counted as abandoned.
    pub fn abort(&self) {
        self.stop.cancel();
    }

    fn url(&self, template: &str, w: &Write) -> String {
        let filled = template
            .replace("{id}", &w.user_id)
            .replace("{userName}", &crate::http::client::encode_query(&w.user_name));
        absolute(&self.client, filled)
    }

    async fn run(self: Arc<Self>, write: Write, _permit: OwnedSemaphorePermit) {
        let write = Arc::new(write);
        let mut queue = JoinSet::new();
        if self.queue_series.contains_key(&write.op) {
            let (me, w) = (self.clone(), write.clone());
            queue.spawn(async move { me.queue(&w).await });
        }
        let mut syncs = JoinSet::new();
        for (i, probe) in self.probes.sync.iter().enumerate() {
            if let Some(series) = self.sync_series.get(&(i, write.op)).copied() {
                let (me, w, probe) = (self.clone(), write.clone(), probe.clone());
                syncs.spawn(async move { me.sync(i, &probe, series, &w).await });
            }
        }
        // end_to_end: the last service to show the change; a timeout anywhere is a timeout, and
        // a change overtaken anywhere has no end-to-end time.
        let mut latest = Duration::ZERO;
        let (mut resolution, mut any, mut timed_out, mut overtaken) = (0, false, false, false);
        while let Some(r) = syncs.join_next().await {
            any = true;
            match r {
                Ok(Seen::At(lag, res)) => {
                    latest = latest.max(lag);
                    resolution = resolution.max(res);
                }
                Ok(Seen::TimedOut) => timed_out = true,
                Ok(Seen::Overtaken | Seen::Unconfirmed) => overtaken = true,
                Err(_) => return,
            }
        }
        while queue.join_next().await.is_some() {}
        if self.stop.is_cancelled() || overtaken {
            return;
        }
        if let (true, Some(series)) = (any, self.end_to_end.get(&write.op)) {
            let (micros, resolution) = match timed_out {
                false => (latest.as_micros() as u64, resolution),
                true => (
                    self.probes.timeout.as_micros() as u64,
                    self.probes.poll.max.as_micros() as u64,
                ),
            };
            self.registry.record_observation(*series, micros, resolution, timed_out);
        }
    }

    /// Reads `who` through `reader` (at `url` when it is not batched) until `test` says met: the
    /// bracket around the change, or why not. Polls start at a random phase and keep a random
    /// jitter, so the change is equally likely anywhere in its bracket; a read waits for its
    /// service's budget, and its bracket edge is when the request went.
    async fn poll(
        &self,
        reader: &ServiceReader,
        url: &str,
        who: Who<'_>,
        acked: Instant,
        counters: &ProbeCounters,
        mut test: impl FnMut(&Reading) -> Check,
    ) -> Result<Bracket, Seen> {
        let deadline = acked + self.probes.timeout;
        let jitter = |d: Duration, spread: f64| d.mul_f64(1.0 - spread / 2.0 + spread * rand::random::<f64>());
        let mut interval = self.probes.poll.initial;
        let mut before = acked;
        let mut answered_miss = None;
        // Nothing propagates in no time: the first look comes about one initial interval in.
        tokio::select! {
            _ = tokio::time::sleep_until(acked + jitter(interval, 1.0)) => {}
            _ = self.stop.cancelled() => return Err(Seen::TimedOut),
        }
        let mut tag = None;
        loop {
            // When a read that did not show the change went, and whether the service answered it.
            let (sent, answered) = match reader.fetch(url, who, &mut tag, &self.stop).await {
                Fetch::Answer { reading, sent, arrived } => match test(&reading) {
                    Check::Met => {
                        return Ok(Bracket {
                            before,
                            after: arrived,
                            answered_miss,
                        });
                    }
                    Check::Overtaken => return Err(Seen::Overtaken),
                    Check::Unconfirmed => return Err(Seen::Unconfirmed),
                    Check::PointerMissing => {
                        counters.pointer_missing.fetch_add(1, Ordering::Relaxed);
                        (sent, true)
                    }
                    Check::NotYet => (sent, true),
                },
                // As at the last read, which did not show the change.
                Fetch::Unchanged(sent) => {
                    self.counters.unchanged.fetch_add(1, Ordering::Relaxed);
                    (sent, true)
                }
                // Visible means a reader of the service gets it: one that got an error or no
                // answer in time did not.
                Fetch::Failed(sent) => {
                    self.counters.request_errors.fetch_add(1, Ordering::Relaxed);
                    (sent, false)
                }
                Fetch::Stopped => return Err(Seen::TimedOut),
            };
            before = sent;
            if answered {
                answered_miss = Some(sent);
            }
            let next = Instant::now() + jitter(interval, 0.5);
            if next > deadline {
                return Err(Seen::TimedOut);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = self.stop.cancelled() => return Err(Seen::TimedOut),
            }
            let poll = &self.probes.poll;
            interval = match poll.precision {
                Some(p) => acked.elapsed().mul_f64(p).clamp(poll.initial, poll.max),
                None => interval.mul_f64(poll.factor).min(poll.max),
            };
        }
    }

    fn record(&self, series: SeriesId, counters: &ProbeCounters, seen: &Seen) {
        if self.stop.is_cancelled() {
            self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match seen {
            Seen::At(lag, resolution) => {
                counters.observed.fetch_add(1, Ordering::Relaxed);
                counters.slowest_us.fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
                self.registry
                    .record_observation(series, lag.as_micros() as u64, *resolution, false);
            }
            Seen::Overtaken => {
                counters.overtaken.fetch_add(1, Ordering::Relaxed);
            }
            Seen::Unconfirmed => {
                counters.unconfirmed.fetch_add(1, Ordering::Relaxed);
            }
            Seen::TimedOut => {
                counters.timeouts.fetch_add(1, Ordering::Relaxed);
                let bound = self.probes.timeout.as_micros() as u64;
                let resolution = self.probes.poll.max.as_micros() as u64;
                self.registry.record_observation(series, bound, resolution, true);
            }
        }
    }

    async fn queue(&self, w: &Write) {
        let Some(q) = &self.probes.queue else { return };
        let series = self.queue_series[&w.op];
        let Some(job) = &w.job else {
            self.counters.missing_job.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let url = match &q.url_template {
            Some(t) => self.url(&t.replace("{job}", job), w),
            None => self.url(job, w),
        };
        let mut exact: Option<Duration> = None;
        let who = Who {
            id: &w.user_id,
            user_name: &w.user_name,
        };
        let found = self
            .poll(
                &self.queue_reader,
                &url,
                who,
                w.acked,
                &self.queue_counters,
                |reading| {
                    if !(200..300).contains(&reading.status) {
                        return Check::NotYet;
                    }
                    let Some(v) = reading.json() else {
                        return Check::PointerMissing;
                    };
                    match &q.start {
                        StartDetection::Timestamps {
                            accepted_at,
                            started_at,
                        } => {
                            let stamp = |p: &str| {
                                v.pointer(p)
                                    .and_then(|s| s.as_str())
                                    .and_then(|s| humantime::parse_rfc3339(s).ok())
                            };
                            match (v.pointer(accepted_at), v.pointer(started_at)) {
                                (None, _) | (_, None) => Check::PointerMissing,
                                (_, Some(serde_json::Value::Null)) => Check::NotYet,
                                _ => match (stamp(accepted_at), stamp(started_at)) {
                                    (Some(a), Some(s)) => {
                                        exact = Some(s.duration_since(a).unwrap_or_default());
                                        Check::Met
                                    }
                                    _ => Check::PointerMissing,
                                },
                            }
                        }
                        StartDetection::StateChange { pointer, not_equals } => match v.pointer(pointer) {
                            None => Check::PointerMissing,
                            Some(x) if x == not_equals => Check::NotYet,
                            Some(_) => Check::Met,
                        },
                    }
                },
            )
            .await;
        let seen = match (found, exact) {
            // Server timestamps: exact to their microsecond.
            (Ok(_), Some(d)) => Seen::At(d, 1),
            (Ok(bracket), None) => {
                let (lag, resolution) = bracket.since(w.acked);
                Seen::At(lag, resolution)
            }
            (Err(miss), _) => miss,
        };
        self.record(series, &self.queue_counters, &seen);
    }

    /// One service's view of one write (for end_to_end too).
    async fn sync(&self, index: usize, probe: &SyncProbe, series: SeriesId, w: &Write) -> Seen {
        let counters = &self.sync_counters[index];
        let seen = match probe.observe {
            Observe::Poll => {
                let reader = &self.readers[index];
                let url = absolute(&reader.client, probe.find.url().render(&w.user_id, &w.user_name));
                let who = Who {
                    id: &w.user_id,
                    user_name: &w.user_name,
                };
                let mut stamped = None;
                let found = self
                    .poll(reader, &url, who, w.acked, counters, |reading| {
                        let there = condition::There {
                            seen: &w.trace.seen[index],
                            absence_settled: self.absence_settled(counters, w),
                        };
                        let check =
                            check_or_later(&w.expect, &probe.find, who, &probe.pointers, &w.later, there, reading);
                        match check {
                            Check::Met => {
                                if let Some(c) = &probe.changed_at {
                                    stamped = condition::changed_at(&probe.find, who, reading, &c.pointer);
                                }
                                Check::Met
                            }
                            // A later write of this user already showed here: this one never will.
                            Check::NotYet | Check::PointerMissing if w.trace.overtaken(index, w.index) => {
                                Check::Overtaken
                            }
                            other => other,
                        }
                    })
                    .await;
                match found {
                    Ok(bracket) => {
                        w.trace.mark_observed(index, w.index);
                        let own = probe
                            .changed_at
                            .as_ref()
                            .zip(stamped)
                            .map(|(c, at)| bracket.stamped(&self.clock, (w.began, w.acked), at, c.uncertainty));
                        let (lag, resolution) = match own {
                            Some(Some(exact)) => exact,
                            Some(None) => {
                                // The service's clock disagrees with the bracket: trust the bracket.
                                self.counters.clock_disagrees.fetch_add(1, Ordering::Relaxed);
                                bracket.since(w.acked)
                            }
                            None => bracket.since(w.acked),
                        };
                        Seen::At(lag, resolution)
                    }
                    Err(miss) => miss,
                }
            }
            Observe::Push => match self.pushed(&probe.service, w).await {
                Some((lag, resolution)) => Seen::At(lag, resolution),
                None => Seen::TimedOut,
            },
        };
        self.record(series, counters, &seen);
        seen
    }

    /// The journey deleted `w`'s user longer ago than the slowest change this service has shown
    /// (at least a second, at most the probes' timeout): a user never seen there by now will
    /// not show up any more.
    fn absence_settled(&self, counters: &ProbeCounters, w: &Write) -> bool {
        if !w.later.deleted_later.load(Ordering::Acquire) {
            return false;
        }
        // A delete the probes were not handed: counted from when it was first noticed.
        w.trace.deleted(Instant::now());
        let slowest = Duration::from_micros(counters.slowest_us.load(Ordering::Relaxed));
        let settle = slowest.max(Duration::from_secs(1)).min(self.probes.timeout);
        w.trace.since_deleted().is_some_and(|d| d > settle)
    }

    async fn pushed(&self, service: &str, w: &Write) -> Option<(Duration, u64)> {
        let (Some(push), Some(job)) = (&self.push, &w.job) else {
            self.counters.missing_job.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        // The job id is the last segment of a job URL, or the value itself.
        let id = job.rsplit('/').next().unwrap_or(job);
        let at = match push.register(id, service) {
            Ok(at) => at,
            Err(rx) => {
                let deadline = w.acked + self.probes.timeout;
                let got = tokio::select! {
                    r = tokio::time::timeout_at(deadline, rx) => r.ok().and_then(Result::ok),
                    _ = self.stop.cancelled() => None,
                };
                match got {
                    Some(at) => at,
                    None => {
                        push.forget(id, service);
                        return None;
                    }
                }
            }
        };
        // A pushed event is as precise as the clock that timed its arrival.
        Some((at.saturating_duration_since(w.acked), 1))
    }

    /// After cleanup: every followed user should be gone from every polled service once
    /// deprovisioning has run. Asks until `bound` (or an interrupt); returns, per service, how
    /// many are still there. provbench never deletes from a downstream itself.
    pub async fn leftovers(
        &self,
        bound: Duration,
        interrupt: &CancellationToken,
    ) -> std::collections::BTreeMap<String, u64> {
        let users = self.followed.lock().clone();
        let deadline = Instant::now() + bound;
        let mut out = std::collections::BTreeMap::new();
        for (i, probe) in self.probes.sync.iter().enumerate() {
            if probe.observe != Observe::Poll || users.is_empty() {
                continue;
            }
            let mut pending: Vec<Who> = users.iter().map(|(id, user_name)| Who { id, user_name }).collect();
            let mut wait = Duration::from_millis(100);
            loop {
                let reader = &self.readers[i];
                let readings = reader
                    .read_all(&pending, |who| probe.find.url().render(who.id, who.user_name))
                    .await;
                pending = pending
                    .into_iter()
                    .zip(readings)
                    .filter(|(who, reading)| {
                        reading
                            .as_ref()
                            .is_none_or(|r| condition::present(&probe.find, *who, r) != Some(false))
                    })
                    .map(|(who, _)| who)
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
            out.insert(probe.service.clone(), pending.len() as u64);
        }
        out
    }

    pub fn report(&self, operations: u64) -> ProbeReport {
        let c = &self.counters;
        let requests: u64 = std::iter::once(&self.queue_reader)
            .chain(&self.readers)
            .map(|r| r.requests.load(Ordering::Relaxed))
            .sum();
        let mut problems = Vec::new();
        let describe = |name: String, p: &ProbeCounters, problems: &mut Vec<String>| {
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
        };
        if self.probes.queue.is_some() {
            describe("queue probe".into(), &self.queue_counters, &mut problems);
        }
        for (p, counters) in self.probes.sync.iter().zip(&self.sync_counters) {
            describe(format!("sync probe `{}`", p.service), counters, &mut problems);
        }
        let disagrees = c.clock_disagrees.load(Ordering::Relaxed);
        if disagrees > 0 {
            problems.push(format!(
                "{disagrees} change times a service published fell outside their polling bracket (its clock is off by more than clock_uncertainty): the bracket was used"
            ));
        }
        let missing = c.missing_job.load(Ordering::Relaxed);
        if missing > 0 {
            problems.push(format!(
                "{missing} observed writes carried no job reference (queue or push probes skipped them)"
            ));
        }
        let all = || self.sync_counters.iter().chain(std::iter::once(&self.queue_counters));
        let sum = |f: fn(&ProbeCounters) -> &AtomicU64| all().map(|p| f(p).load(Ordering::Relaxed)).sum::<u64>();
        let overtaken = sum(|p| &p.overtaken);
        let unconfirmed = sum(|p| &p.unconfirmed);
        let ended = overtaken + sum(|p| &p.observed) + sum(|p| &p.timeouts);
        ProbeReport {
            overtaken,
            unconfirmed,
            overtaken_share: overtaken as f64 / ended.max(1) as f64,
            sample: self.probes.sample,
            writes_observed: c.sampled.load(Ordering::Relaxed),
            shed: c.shed.load(Ordering::Relaxed),
            abandoned: c.abandoned.load(Ordering::Relaxed),
            probe_requests: requests,
            probe_request_errors: c.request_errors.load(Ordering::Relaxed),
            not_modified: c.unchanged.load(Ordering::Relaxed),
            share_of_requests: requests as f64 / (requests + operations).max(1) as f64,
            push_events: self.push.as_ref().map(|p| p.events.load(Ordering::Relaxed)),
            problems,
            never_observed: Vec::new(),
            leftovers: Default::default(),
        }
    }
}

/// The client a service's reads go through. The target's credentials go only to the target's
/// origin, or where a service asks for them (`auth = "target"`); every other service has its
/// own (or none) and its own headers.
async fn reader(
    probe: &SyncProbe,
    target: &Arc<HttpClient>,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<HttpClient>> {
    let what = format!("probes.sync `{}`", probe.service);
    let headers = crate::workload::downstream::header_map(&probe.access.headers, &what)?;
    let origin = probe.find.url().origin().unwrap_or_else(|| target.origin().to_string());
    // A client of its own even on the target's origin: it keeps each answer's ETag for
    // conditional reads.
    let settings = HttpSettings {
        tls: probe.access.tls.clone(),
        ..HttpSettings::defaults()
    };
    let client = HttpClient::new(&origin, settings)?
        .with_headers(headers)
        .capturing("etag")?;
    let client = match &probe.access.auth {
        ServiceAuth::OAuth2(auth) => {
            let client = Arc::new(client);
            crate::http::auth::authenticate(client.clone(), auth, &origin, &format!("{what} auth"), stop.clone())
                .await
                .map_err(|e| e.context(format!("{what}: signing in")))?;
            return Ok(client);
        }
        ServiceAuth::Target => client.sharing_auth(target),
        ServiceAuth::None => client,
        ServiceAuth::Bearer(secret) => {
            client.set_bearer(&crate::http::auth::read_secret(
                secret,
                &format!("{what} bearer token"),
            )?)?;
            client
        }
        ServiceAuth::Basic { username, password } => {
            client.set_basic(
                username,
                &crate::http::auth::read_secret(password, &format!("{what} password"))?,
            )?;
            client
        }
    };
    Ok(Arc::new(client))
}
