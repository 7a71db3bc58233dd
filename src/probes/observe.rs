//! One write observed at one watched thing, whatever its source: polling (adaptive, jittered,
//! within the bound) until the condition holds, giving the bracket around the change; or, for a
//! pushed source, one wait for its event. What counts as the change is the conditions' (sync) or
//! the job's start detection (queue); how a read is made is the source's.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::bracket::Bracket;
use super::condition::{self, Check, Reading, check_or_later};
use super::members;
use super::source::{Fetch, Memo, Source, Subject, Timing};
use super::watch::{ProbeCounters, Seen, Watch, Watched, Write};
use crate::metrics::SeriesId;
use crate::workload::probes::{QueueProbe, StartDetection, SyncProbe};

/// Reads `subject` from `source` until `test` says met: the bracket around the change, or why
/// not. Polls start at a random phase and keep a random jitter, so the change is equally likely
/// anywhere in its bracket; a read waits for its source's budget, and its bracket edge is when
/// the request went.
async fn poll(
    watch: &Watch,
    source: &dyn Source,
    subject: Subject<'_>,
    acked: Instant,
    counters: &ProbeCounters,
    mut test: impl FnMut(&Reading) -> Check,
) -> Result<Bracket, Seen> {
    let deadline = acked + watch.timeout;
    // A random instant of the window `from` + `d` × [1 - spread/2, 1 + spread/2], on the run's
    // grid of looks where the window holds a point of it.
    let jitter = |from: Instant, d: Duration, spread: f64| {
        let (earliest, latest) = (
            from + d.mul_f64(1.0 - spread / 2.0),
            from + d.mul_f64(1.0 + spread / 2.0),
        );
        watch.grid.within(earliest, latest, rand::random::<f64>())
    };
    let mut interval = watch.poll.initial;
    let mut before = acked;
    let mut answered_miss = None;
    // Nothing propagates in no time: the first look comes about one initial interval in.
    tokio::select! {
        _ = tokio::time::sleep_until(jitter(acked, interval, 1.0)) => {}
        _ = watch.stop.cancelled() => return Err(Seen::TimedOut),
    }
    let mut memo = Memo::default();
    loop {
        // When a read that did not show the change went, and whether the service answered it.
        let (sent, answered) = match source.read(subject, &mut memo, &watch.stop).await {
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
                watch.counters.unchanged.fetch_add(1, Ordering::Relaxed);
                (sent, true)
            }
            // Visible means a reader of the service gets it: one that got an error or no
            // answer in time did not.
            Fetch::Failed(sent) => {
                watch.counters.request_errors.fetch_add(1, Ordering::Relaxed);
                (sent, false)
            }
            Fetch::NoJob => {
                watch.counters.missing_job.fetch_add(1, Ordering::Relaxed);
                return Err(Seen::TimedOut);
            }
            Fetch::Stopped => return Err(Seen::TimedOut),
        };
        before = sent;
        if answered {
            answered_miss = Some(sent);
        }
        let next = jitter(Instant::now(), interval, 0.5);
        if next > deadline {
            return Err(Seen::TimedOut);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = watch.stop.cancelled() => return Err(Seen::TimedOut),
        }
        let poll = &watch.poll;
        interval = match poll.precision {
            Some(p) => acked.elapsed().mul_f64(p).clamp(poll.initial, poll.max),
            None => interval.mul_f64(poll.factor).min(poll.max),
        };
    }
}

/// The queue delay of `w`: from its ack until its job started, recorded in `series`. A write
/// whose answer named no job is counted, not recorded.
pub async fn queue(watch: &Watch, queue: &Watched<QueueProbe>, series: SeriesId, w: &Write) {
    let Some(job) = w.job.as_deref() else {
        watch.counters.missing_job.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let subject = Subject {
        who: w.who(),
        job: Some(job),
    };
    let mut exact: Option<Duration> = None;
    let found = poll(watch, &*queue.source, subject, w.acked, &queue.counters, |reading| {
        started(&queue.probe.start, reading, &mut exact)
    })
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
    watch.record(series, &queue.counters, &seen, w.began);
}

/// The members of a job-status answer that [`started`] reads. The job source reads its answers
/// for these only (`Reading::keeping`): the rest of a job (every service's state, its
/// timestamps) was parsed into a whole document for each read, and never looked at.
pub fn start_members(start: &StartDetection) -> Vec<String> {
    match start {
        StartDetection::Timestamps {
            accepted_at,
            started_at,
        } => members::first_members([accepted_at.as_str(), started_at.as_str()]),
        StartDetection::StateChange { pointer, .. } => members::first_members([pointer.as_str()]),
    }
}

/// Whether the job-status answer says the job started. With server timestamps, `exact` is set
/// to the time from acceptance to start.
fn started(start: &StartDetection, reading: &Reading, exact: &mut Option<Duration>) -> Check {
    if !(200..300).contains(&reading.status) {
        return Check::NotYet;
    }
    let Some(v) = reading.json() else {
        return Check::PointerMissing;
    };
    match start {
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
                        *exact = Some(s.duration_since(a).unwrap_or_default());
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
}

/// One service's view of one write (`index`: the service's place, for the user's trace),
/// recorded in `series` and returned for end_to_end.
pub async fn sync(watch: &Watch, index: usize, service: &Watched<SyncProbe>, series: SeriesId, w: &Write) -> Seen {
    let subject = Subject {
        who: w.who(),
        job: w.job.as_deref(),
    };
    let seen = match service.source.timing() {
        Timing::Polled => polled(watch, index, service, subject, w).await,
        Timing::Pushed => pushed(watch, &*service.source, subject, w.acked).await,
    };
    watch.record(series, &service.counters, &seen, w.began);
    seen
}

/// Polls the service until the write's condition holds there; the bracket, or the service's
/// own change time where it publishes one that agrees with the bracket.
async fn polled(watch: &Watch, index: usize, service: &Watched<SyncProbe>, subject: Subject<'_>, w: &Write) -> Seen {
    let (probe, counters) = (&service.probe, &service.counters);
    let who = subject.who;
    let mut stamped = None;
    let found = poll(watch, &*service.source, subject, w.acked, counters, |reading| {
        let there = condition::There {
            seen: &w.trace.seen[index],
            absence_settled: absence_settled(watch, counters, w),
        };
        let check = check_or_later(&w.expect, &probe.find, who, &probe.pointers, &w.later, there, reading);
        match check {
            Check::Met => {
                if let Some(c) = &probe.changed_at {
                    stamped = condition::changed_at(&probe.find, who, reading, &c.pointer);
                }
                Check::Met
            }
            // A later write of this user already showed here: this one never will.
            Check::NotYet | Check::PointerMissing if w.trace.overtaken(index, w.index) => Check::Overtaken,
            other => other,
        }
    })
    .await;
    let bracket = match found {
        Ok(bracket) => bracket,
        Err(miss) => return miss,
    };
    w.trace.mark_observed(index, w.index);
    let own = probe
        .changed_at
        .as_ref()
        .zip(stamped)
        .map(|(c, at)| bracket.stamped(&watch.clock, (w.began, w.acked), at, c.uncertainty));
    let (lag, resolution) = match own {
        Some(Some(exact)) => exact,
        Some(None) => {
            // The service's clock disagrees with the bracket: trust the bracket.
            watch.counters.clock_disagrees.fetch_add(1, Ordering::Relaxed);
            bracket.since(w.acked)
        }
        None => bracket.since(w.acked),
    };
    Seen::At(lag, resolution)
}

/// Waits (until the bound) for the source's event; a pushed event is as precise as the clock
/// that timed its arrival.
async fn pushed(watch: &Watch, source: &dyn Source, subject: Subject<'_>, acked: Instant) -> Seen {
    let deadline = acked + watch.timeout;
    let mut memo = Memo::default();
    match tokio::time::timeout_at(deadline, source.read(subject, &mut memo, &watch.stop)).await {
        Ok(Fetch::Answer { arrived, .. }) => Seen::At(arrived.saturating_duration_since(acked), 1),
        Ok(Fetch::NoJob) => {
            watch.counters.missing_job.fetch_add(1, Ordering::Relaxed);
            Seen::TimedOut
        }
        _ => Seen::TimedOut,
    }
}

/// The journey deleted `w`'s user longer ago than the slowest change this service has shown
/// (at least a second, at most the probes' timeout): a user never seen there by now will
/// not show up any more.
fn absence_settled(watch: &Watch, counters: &ProbeCounters, w: &Write) -> bool {
    if !w.later.deleted_later.load(Ordering::Acquire) {
        return false;
    }
    // A delete the probes were not handed: counted from when it was first noticed.
    w.trace.deleted(Instant::now());
    let slowest = Duration::from_micros(counters.slowest_us.load(Ordering::Relaxed));
    let settle = slowest.max(Duration::from_secs(1)).min(watch.timeout);
    w.trace.since_deleted().is_some_and(|d| d > settle)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::probes::condition::{Reading, Who};
    use crate::probes::source::{Memo, Pending};

    /// A view whose change shows from `at` on; each read takes `read`, and the service reads its
    /// state halfway through.
    struct Flip {
        at: Instant,
        read: Duration,
    }

    impl Source for Flip {
        fn read<'a>(&'a self, _: Subject<'a>, _: &'a mut Memo, _: &'a CancellationToken) -> Pending<'a, Fetch> {
            Box::pin(async move {
                let sent = Instant::now();
                tokio::time::sleep(self.read).await;
                let status = if sent + self.read / 2 >= self.at { 200 } else { 404 };
                let reading = Arc::new(Reading::new(status, bytes::Bytes::new()));
                Fetch::Answer {
                    reading,
                    sent,
                    arrived: Instant::now(),
                }
            })
        }

        fn requests(&self) -> u64 {
            0
        }
    }

    fn watch(precision: f64) -> Watch {
        Watch {
            timeout: Duration::from_secs(30),
            poll: crate::workload::probes::PollPolicy {
                initial: Duration::from_millis(5),
                max: Duration::from_secs(1),
                factor: 2.0,
                precision: Some(precision),
            },
            stop: CancellationToken::new(),
            counters: Default::default(),
            registry: Arc::new(crate::metrics::Registry::new()),
            clock: super::super::bracket::WallClock::now(),
            grid: super::super::look::Grid::new(Instant::now()),
        }
    }

    /// A view whose change shows from `at` on, noting when each read went.
    struct Noted {
        at: Instant,
        sent: parking_lot::Mutex<Vec<Instant>>,
    }

    impl Source for Noted {
        fn read<'a>(&'a self, _: Subject<'a>, _: &'a mut Memo, _: &'a CancellationToken) -> Pending<'a, Fetch> {
            Box::pin(async move {
                let sent = Instant::now();
                self.sent.lock().push(sent);
                tokio::time::sleep(Duration::from_micros(200)).await;
                let status = if sent >= self.at { 200 } else { 404 };
                Fetch::Answer {
                    reading: Arc::new(Reading::new(status, bytes::Bytes::new())),
                    sent,
                    arrived: Instant::now(),
                }
            })
        }

        fn requests(&self) -> u64 {
            0
        }
    }

    /// Observations whose looks fall due within a few ms of each other share their wake-ups:
    /// 100 writes acknowledged within 2 ms, each polled until a change a second later, make
    /// their reads at few instants (each a multiple of the grid's step once the gaps are wide
    /// enough), not at one instant each; and every change is still bracketed.
    #[tokio::test(start_paused = true)]
    async fn looks_due_together_go_together() {
        let w = Arc::new(watch(0.25));
        let start = Instant::now();
        let source = Arc::new(Noted {
            at: start + Duration::from_secs(1),
            sent: Default::default(),
        });
        let polls: Vec<_> = (0..100u64)
            .map(|i| {
                let (w, source) = (w.clone(), source.clone());
                tokio::spawn(async move {
                    let acked = start + Duration::from_micros(i * 20);
                    tokio::time::sleep_until(acked).await;
                    let who = Who {
                        id: "1",
                        user_name: "u",
                    };
                    let counters = ProbeCounters::default();
                    let met = |r: &Reading| if r.status == 200 { Check::Met } else { Check::NotYet };
                    poll(&w, &*source, Subject { who, job: None }, acked, &counters, met).await
                })
            })
            .collect();
        for p in polls {
            let b = p.await.unwrap().unwrap_or_else(|_| panic!("the change was never seen"));
            assert!(b.before <= source.at && source.at <= b.after);
        }
        let sent = source.sent.lock();
        let instants: std::collections::BTreeSet<_> = sent.iter().collect();
        assert!(
            instants.len() * 5 <= sent.len(),
            "{} reads at {} instants: looks due together should share them",
            sent.len(),
            instants.len()
        );
    }

    /// Relative polling on a schedule the test controls (paused time, so a busy machine cannot
    /// make a poll late): every bracket around a change holds it and is at most the precision's
    /// share of its lag, give or take the jitter (up to 1.25 × a gap), the first gap and the reads.
    #[tokio::test(start_paused = true)]
    async fn relative_polling_keeps_each_bracket_within_its_share_of_the_lag() {
        let (precision, read) = (0.04, Duration::from_millis(1));
        let w = watch(precision);
        let who = Who {
            id: "1",
            user_name: "u",
        };
        for lag_ms in [20u64, 150, 600, 1_500, 4_000, 9_000, 20_000] {
            for _ in 0..20 {
                let acked = Instant::now();
                let lag = Duration::from_millis(lag_ms);
                let source = Flip { at: acked + lag, read };
                let subject = Subject { who, job: None };
                let counters = ProbeCounters::default();
                let met = |r: &Reading| match r.status {
                    200 => Check::Met,
                    _ => Check::NotYet,
                };
                let Ok(b) = poll(&w, &source, subject, acked, &counters, met).await else {
                    panic!("a change at {lag_ms} ms was never seen");
                };
                let (before, after) = (b.before - acked, b.after - acked);
                assert!(
                    before <= lag && lag <= after,
                    "{lag_ms} ms outside [{before:?}, {after:?}]"
                );
                let allowed = (lag.mul_f64(precision * 1.25) + read * 2).max(w.poll.initial * 2);
                let bound = allowed.min(w.poll.max.mul_f64(1.25) + read * 2);
                assert!(
                    after - before <= bound,
                    "a change at {lag_ms} ms bracketed by {:?}, more than {bound:?}",
                    after - before
                );
            }
        }
    }

    /// What [`started`] says of a job's answer read whole, and read for [`start_members`] only.
    fn started_whole_and_kept(
        start: &StartDetection,
        status: u16,
        body: impl Into<bytes::Bytes>,
    ) -> [(Check, Option<Duration>); 2] {
        let raw = body.into();
        [
            Reading::new(status, raw.clone()),
            Reading::keeping(status, raw, start_members(start).into()),
        ]
        .map(|reading| {
            let mut exact = None;
            (started(start, &reading, &mut exact), exact)
        })
    }

    /// A job's answer read for [`start_members`] only is judged as the whole answer is, for
    /// either way of telling a start and whatever else the job holds, whatever its shape (a
    /// list, a bare state) and whatever a whole read refuses in it: a member the start is read
    /// from and the kept answer lacked would read as a job that never starts (a queue delay
    /// recorded at its bound).
    #[test]
    fn a_job_read_for_its_start_members_is_judged_as_a_whole_one() {
        use proptest::prelude::*;
        let stamp = prop_oneof![
            Just(serde_json::Value::Null),
            Just(serde_json::json!("2026-12-07T22:19:32.976974Z")),
            Just(serde_json::json!("2026-12-07T22:19:33.5Z")),
            Just(serde_json::json!("not a time")),
            Just(serde_json::json!(42)),
        ];
        let member = prop_oneof![
            Just("accepted_at"),
            Just("started_at"),
            Just("status"),
            Just("services"),
            Just("a/b"),
            Just("x~y"),
            Just("id"),
        ];
        let doc = proptest::collection::vec((member, stamp.clone(), any::<bool>()), 0..8).prop_map(|members| {
            let mut doc = serde_json::Map::new();
            for (name, value, nest) in members {
                // Nested, as a job keeps each service's state or a state under `status`.
                let value = match nest {
                    true => serde_json::json!({ "phase": value, "started_at": value }),
                    false => value,
                };
                doc.insert(name.to_string(), value);
            }
            serde_json::Value::Object(doc).to_string()
        });
        let detections = [
            StartDetection::Timestamps {
                accepted_at: "/accepted_at".into(),
                started_at: "/started_at".into(),
            },
            StartDetection::Timestamps {
                accepted_at: "/services/accepted_at".into(),
                started_at: "/a~1b/started_at".into(),
            },
            StartDetection::StateChange {
                pointer: "/status".into(),
                not_equals: serde_json::Value::Null,
            },
            StartDetection::StateChange {
                pointer: "/x~0y/phase".into(),
                not_equals: serde_json::json!(42),
            },
            StartDetection::StateChange {
                pointer: "".into(),
                not_equals: serde_json::json!({}),
            },
            // A job answered as a list of its records.
            StartDetection::StateChange {
                pointer: "/0/status".into(),
                not_equals: serde_json::Value::Null,
            },
            StartDetection::Timestamps {
                accepted_at: "/0/accepted_at".into(),
                started_at: "/0/started_at".into(),
            },
        ];
        let body = crate::probes::members::hostile::shapes(doc);
        // Many cases: a list answer with a pointer into it is a few in a hundred.
        proptest!(ProptestConfig::with_cases(2048), |(body in body, status in prop_oneof![Just(200u16), Just(202), Just(404)], which in 0..detections.len())| {
            let [(a, exact_whole), (b, exact_kept)] = started_whole_and_kept(&detections[which], status, body);
            prop_assert_eq!(a, b);
            prop_assert_eq!(exact_whole, exact_kept);
        });
    }

    /// A job-status answer that is not a JSON object (a bare state string with the pointer "", an
    /// array of job records with "/0/..." pointers) is judged as the whole answer is: the whole
    /// answer says the job started; the kept one (`Reading::keeping`, which reads only objects)
    /// says the pointer is missing, so the job never starts and its queue delay is recorded at the
    /// bound, with "answers lacked the JSON pointer" in the report.
    #[test]
    fn a_job_answer_that_is_not_an_object_is_judged_as_a_whole_one() {
        let cases: Vec<(StartDetection, &str)> = vec![
            (
                StartDetection::StateChange {
                    pointer: "".into(),
                    not_equals: serde_json::json!("queued"),
                },
                r#""running""#,
            ),
            (
                StartDetection::StateChange {
                    pointer: "/0/state".into(),
                    not_equals: serde_json::json!("queued"),
                },
                r#"[{"state":"running"}]"#,
            ),
            (
                StartDetection::Timestamps {
                    accepted_at: "/0/accepted_at".into(),
                    started_at: "/0/started_at".into(),
                },
                r#"[{"accepted_at":"2026-12-07T22:19:32Z","started_at":"2026-12-07T22:19:33.5Z"}]"#,
            ),
        ];
        let mut wrong = Vec::new();
        for (start, body) in cases {
            let [(a, exact_whole), (b, exact_kept)] = started_whole_and_kept(&start, 200, body);
            assert_eq!(a, Check::Met, "{body}: the whole answer says started");
            if (a, exact_whole) != (b, exact_kept) {
                wrong.push(format!("{body} {start:?}: whole {a:?}, kept {b:?}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// A job-status answer holding serde_json's raw-value token
    /// (`$serde_json::private::RawValue`, which a whole `Value` read parses specially under the
    /// `raw_value` feature) is judged otherwise kept than whole: started vs never started.
    #[test]
    fn a_job_answer_holding_a_raw_value_object_is_judged_as_a_whole_one() {
        let start = StartDetection::StateChange {
            pointer: "/status".into(),
            not_equals: serde_json::json!("queued"),
        };
        let mut wrong = Vec::new();
        for body in [
            // Whole: refused (PointerMissing, the job never starts); kept: started.
            r#"{"status":"running","x":{"$serde_json::private::RawValue":1}}"#,
            r#"{"$serde_json::private::RawValue":"1","status":"running"}"#,
            // Whole: started; kept: the pointer missing.
            r#"{"$serde_json::private::RawValue":"{\"status\":\"running\"}"}"#,
        ] {
            let [(a, _), (b, _)] = started_whole_and_kept(&start, 200, body);
            if a != b {
                wrong.push(format!("{body}: whole {a:?}, kept {b:?}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
