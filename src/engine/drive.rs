//! The load phase: the metrics registry, the probe and check hubs, the virtual admins on goose
//! (and the open model's arrival gate), the interval writer with its observers (progress, live
//! metrics, run log, abort-on-fail), and the end conditions; then the probes and checks drain
//! up to their bound. Its output is plain data for `judge`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RunOptions;
use super::context::Ctx;
use super::gate::GateCounts;
use super::preflight::Checked;
use super::prepare::Prepared;
use super::runlog::{ErrorEvents, RunLog};
use super::shutdown::Shutdown;
use super::state::{Run, Staged};
use super::targets::BoxFuture;
use super::targets::readback::{self, Presence};
use crate::checks::CheckHub;
use crate::ledger::Created;
use crate::metrics::progress::Progress;
use crate::metrics::writer::{IntervalObserver, IntervalWriter, WriterConfig};
use crate::metrics::{MetricKey, SeriesData};
use crate::probes::ProbeHub;
use crate::results::{CheckReport, JourneyInfo, ProbeReport, StopReason};
use crate::thresholds::abort::AbortWatch;
use crate::vocab::metric;
use crate::workload::schedule::Schedule;
use crate::workload::{Load, Stop, Workload};

/// What the load produced.
pub struct Driven {
    pub keys: Vec<MetricKey>,
    /// The run's data per series, warm-up left out.
    pub cumulative: Vec<SeriesData>,
    /// How long the load ran.
    pub elapsed: Duration,
    /// The open model's arrival schedule and what became of its arrivals.
    pub arrivals: Option<(Schedule, GateCounts)>,
    pub journeys: Vec<JourneyInfo>,
    pub checks: Vec<CheckReport>,
    /// The requests and binds the checks sent, when there are checks.
    pub check_requests: Option<u64>,
    pub probes: Option<ProbeReport>,
    /// Why operations failed, sampled per operation and reason.
    pub failures: Vec<crate::results::FailureSample>,
    pub notes: Vec<String>,
    /// The probes, kept for `finish` to ask downstreams for leftovers after cleanup.
    pub hub: Option<Arc<ProbeHub>>,
}

/// Runs the load to its end and drains what observes it.
pub async fn drive(
    p: &Prepared,
    staged: Staged,
    checked: Checked,
    opts: &RunOptions,
    shutdown: &Arc<Shutdown>,
) -> anyhow::Result<Driven> {
    let workload = &p.workload;
    let Checked { registry, probes, .. } = checked;
    let checks = workload
        .checks
        .clone()
        .map(|c| {
            let stop = shutdown.checks.clone();
            CheckHub::new(
                c,
                p.target.http_client(),
                registry.clone(),
                &p.run_id,
                p.ledger.clone(),
                stop,
            )
            .map(Arc::new)
        })
        .transpose()?;
    let failures = Arc::new(super::failures::Failures::default());
    let mut run = Run::new(
        registry.clone(),
        workload.clone(),
        p.run_id.clone(),
        p.ledger.clone(),
        shutdown.load.clone(),
        shutdown.work(),
        probes.clone(),
        checks.clone(),
    );
    run.pool = staged.pool;
    run.shared_group = staged.shared_group;
    run.role_groups = staged.role_groups;
    let ctx = Arc::new(Ctx::new(run, p.target.clone(), failures.clone()));
    let planned = planned_length(workload);
    wait_for_start(opts.start_at, shutdown).await;
    let load_start = Instant::now();
    let observers = observers(p, opts, shutdown, planned);
    let writer = IntervalWriter::spawn(
        registry.clone(),
        &p.dir,
        WriterConfig {
            start: load_start.into_std(),
            start_wall: SystemTime::now(),
            interval: Duration::from_secs(1),
            warmup: opts.warmup,
            by_write_horizon: by_write_horizon(workload),
        },
        observers,
    )?;
    if let Load::Open { schedule, .. } = &workload.load {
        log_stages(p.run_log.clone(), schedule, load_start, shutdown.load.clone());
    }
    let deadline = match &workload.load {
        Load::Closed { .. } => planned.map(|d| load_start + d),
        // A backstop after the schedule: the last journeys may still be running.
        Load::Open { .. } => planned.map(|d| load_start + d + workload.http.timeout + Duration::from_secs(5)),
    };
    let watcher = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { shutdown.watch(deadline).await })
    };
    if let Some(c) = &checks {
        // The run-wide security checks spread their attempts over the planned load.
        tokio::spawn(c.clone().security(planned.unwrap_or(Duration::from_secs(30))));
    }
    let settling = settle(p);
    // However drive returns (an early error included), the reads during the run stop with it.
    let _settling_ends = settling.as_ref().map(|(stop, _)| stop.clone().drop_guard());
    let mut notes = Vec::new();
    // The load's work ends with the last session; goose's own loop would notice up to half a
    // second later (it wakes twice a second), padding every run. Its users have all exited by
    // then, so its future is dropped rather than awaited.
    let attack = super::admins::attack(ctx.clone())?;
    tokio::select! {
        // Goose's own end first when both are ready: its error is a note.
        biased;
        ended = attack.execute() => if let Err(e) = ended {
            notes.push(format!("goose ended with an error: {e}"));
        },
        _ = ctx.sessions_over.cancelled() => {}
    }
    // The admins are done: a stop not recorded yet is the schedule's end.
    shutdown.stop_load(StopReason::ScheduleEnd);
    let _ = watcher.await;
    if let Some((stop, task)) = settling {
        stop.cancel();
        let _ = task.await;
    }
    let elapsed = load_start.elapsed();
    drain(workload, checks.as_deref(), probes.as_deref(), shutdown).await;
    let output = writer.finish()?;
    let operations = output
        .keys
        .iter()
        .zip(&output.cumulative)
        .filter(|(k, _)| k.metric == metric::API_LATENCY)
        .map(|(_, d)| d.count())
        .sum();
    Ok(Driven {
        failures: failures.report(),
        arrivals: ctx.gate.as_ref().map(|g| (g.schedule().clone(), g.counts())),
        journeys: ctx.journey_infos(),
        check_requests: checks.as_ref().map(|c| c.requests()),
        checks: checks.map(|c| c.reports()).unwrap_or_default(),
        probes: probes.as_ref().map(|p| p.report(operations)),
        hub: probes,
        keys: output.keys,
        cumulative: output.cumulative,
        elapsed,
        notes,
    })
}

/// Reads the journeys' deletes back while the load runs ([`readback::settle_while_running`]),
/// on a target that can: a long run then keeps only the claims not shown gone yet, and its
/// cleanup reads back those alone. Not for a ledger that keeps no claims (a run that keeps its
/// users): nothing would use the reads, and they would be requests the load does not make.
/// The token stops it; its task returns what it held.
fn settle(p: &Prepared) -> Option<(CancellationToken, tokio::task::JoinHandle<()>)> {
    if !p.target.reads_back_during_run() || !p.ledger.keeps_claims() {
        return None;
    }
    let (target, ledger, stop) = (p.target.clone(), p.ledger.clone(), CancellationToken::new());
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let read = |c: &Created| -> BoxFuture<'_, Presence> {
                match target.read_back(c) {
                    Some(read) => read,
                    None => Box::pin(async { Presence::Unknown("not readable during the run".into()) }),
                }
            };
            readback::settle_while_running(&ledger, read, &stop).await;
        })
    };
    Some((stop, task))
}

/// The longest from a write's start, as observations file it, to its observation's record: an
/// open-model arrival may start up to `max_lag` after its intended start (later ones are
/// dropped), its request may be tried `max_retries + 1` times with a `Retry-After` wait
/// between, and the probe then waits up to its bound; 5 s more for a slow machine. An
/// observation later still is kept all the same (`metrics::by_write`).
fn by_write_horizon(workload: &Workload) -> Duration {
    let lag = match &workload.load {
        Load::Open { max_lag, .. } => *max_lag,
        Load::Closed { .. } => Duration::ZERO,
    };
    let http = &workload.http;
    let request = (http.timeout + crate::http::client::MAX_RETRY_AFTER) * (http.max_retries + 1);
    lag + request + workload.probes.as_ref().map_or(Duration::ZERO, |p| p.timeout) + Duration::from_secs(5)
}

/// How long the load is planned to run, when that is known before it starts.
fn planned_length(workload: &Workload) -> Option<Duration> {
    match &workload.load {
        Load::Closed {
            ramp,
            stop: Stop::Duration(d),
            ..
        } => Some(*ramp + *d),
        Load::Closed { .. } => None,
        Load::Open { schedule, .. } => Some(schedule.duration()),
    }
}

/// Shards start together (`--start-at`), so that their one-second intervals line up.
async fn wait_for_start(start_at: Option<SystemTime>, shutdown: &Shutdown) {
    if let Some(at) = start_at
        && let Ok(wait) = at.duration_since(SystemTime::now())
    {
        tracing::info!(wait_s = wait.as_secs_f64(), "waiting for --start-at");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.load.cancelled() => {}
        }
    }
}

/// Everything the interval writer feeds each interval.
fn observers(
    p: &Prepared,
    opts: &RunOptions,
    shutdown: &Arc<Shutdown>,
    planned: Option<Duration>,
) -> Vec<Box<dyn IntervalObserver>> {
    let mut out: Vec<Box<dyn IntervalObserver>> = vec![Box::new(ErrorEvents(p.run_log.clone()))];
    if opts.progress {
        out.push(Box::new(Progress::new(planned)));
    }
    if let Some(e) = &p.exposition {
        out.push(Box::new(e.writer()));
    }
    if let Some(d) = &p.dashboard {
        d.planned(planned);
        out.push(Box::new(d.clone()));
    }
    let (log, tree) = (p.run_log.clone(), shutdown.clone());
    let on_lost = Box::new(move |v: &crate::results::Verdict, at: Duration| {
        log.event(
            "threshold_lost",
            serde_json::json!({"expression": v.expression, "observed": v.observed_text, "t_s": at.as_secs_f64()}),
        );
        tree.stop_load(StopReason::ThresholdLost {
            expression: v.expression.clone(),
            after_s: (at.as_secs_f64() * 10.0).round() / 10.0,
        });
    });
    out.push(Box::new(AbortWatch::new(
        &p.workload.thresholds,
        shutdown.load.clone(),
        Some(on_lost),
    )));
    out
}

/// One run.log event as each stage of the arrival schedule begins.
fn log_stages(log: Arc<RunLog>, schedule: &Schedule, start: Instant, stop: CancellationToken) {
    let stages = schedule.stages().to_vec();
    tokio::spawn(async move {
        let mut at = start;
        for (i, st) in stages.iter().enumerate() {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.cancelled() => return,
            }
            log.event(
                "stage",
                serde_json::json!({"index": i, "from_rate": st.from_rate, "to_rate": st.to_rate, "duration_s": st.duration.as_secs_f64()}),
            );
            at += st.duration;
        }
    });
}

/// Observations and checks under way finish up to their bound, or stop at once on an interrupt.
async fn drain(workload: &Workload, checks: Option<&CheckHub>, probes: Option<&ProbeHub>, shutdown: &Shutdown) {
    let slack = Duration::from_secs(5);
    if let (Some(hub), Some(cfg)) = (checks, &workload.checks) {
        tokio::select! {
            _ = hub.drain(cfg.timeout + slack) => {}
            _ = shutdown.checks.cancelled() => {}
        }
    }
    if let (Some(hub), Some(cfg)) = (probes, &workload.probes) {
        tokio::select! {
            _ = hub.drain(cfg.timeout + slack) => {}
            _ = shutdown.probes.cancelled() => {}
        }
    }
    // Whatever is still under way is abandoned (and counted as such by the probes).
    shutdown.checks.cancel();
    shutdown.probes.cancel();
}
