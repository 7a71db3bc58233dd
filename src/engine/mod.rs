//! A run from start to end: resolve the target, prepare (prepopulated users, shared group),
//! start the interval writer, let goose drive the virtual admins, stop on the schedule's end,
//! the duration, or a signal, then write the summary and clean up what the run created.
//!
//! # Layout
//! - [`target`]: embedded reference service or SCIM target, authenticated client.
//! - [`context`]: what all admins share. [`admins`]: goose set-up and the admin session loop.
//! - [`journey`]: steps and their checks. [`gate`]: the open model's arrival gate.
//! - [`cleanup`]: deleting what a run created, and sweeping by marker.

pub mod admins;
pub mod cleanup;
pub mod context;
pub mod gate;
pub mod journey;
pub mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use parking_lot::Mutex;
use rand::Rng;
use reqwest::Method;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Registry;
use crate::metrics::summary::MetricSummary;
use crate::metrics::writer::{AbortWatch, IntervalWriter, ProgressSpec, WriterHooks};
use crate::report::runlog::RunLog;
use crate::report::summary::{JourneyInfo, LoadInfo, RunOutcome, Summary, TargetInfo};
use crate::workload::template::Vars;
use crate::workload::{Load, Step, Stop, Workload};
use context::{Created, Ctx, PooledUser};
use gate::Gate;

pub struct RunOptions {
    pub workload: Workload,
    /// Results folder; default `results/<UTC time>-<workload>/`.
    pub out: Option<PathBuf>,
    pub progress: bool,
    /// Bound on cleanup at the end.
    pub cleanup_timeout: Duration,
    /// Skip cleanup (leave the users for inspection; `provbench cleanup --run-id` later).
    pub keep_users: bool,
    /// Serve live Prometheus metrics here during the run.
    pub metrics_listen: Option<String>,
    /// POST the final summary JSON to this URL.
    pub notify: Option<String>,
    /// The first part of the load that the totals and verdicts leave out (sweep steps).
    pub warmup: Duration,
    /// A run id shared by every shard (default: a new one).
    pub run_id: Option<String>,
    /// This process's shard (the workload is already cut to its share).
    pub shard: Option<crate::workload::Shard>,
    /// Start the load at this wall-clock instant, so that shards' intervals align.
    pub start_at: Option<SystemTime>,
}

/// Posts the summary to a webhook; a failure is logged, never fatal.
async fn notify(url: &str, summary: &Summary) {
    let sent = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(10))
        .json(summary)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => tracing::info!(%url, "summary posted"),
        Ok(r) => tracing::warn!(%url, status = %r.status(), "the notify webhook refused the summary"),
        Err(e) => tracing::warn!(%url, error = %e, "cannot post the summary"),
    }
}

pub struct RunResult {
    pub summary: Summary,
    pub dir: PathBuf,
}

pub fn new_run_id() -> String {
    format!("pb-{:08x}", rand::rng().random::<u32>())
}

fn default_dir(workload: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "")
        .trim_end_matches('Z')
        .to_string();
    PathBuf::from("results").join(format!("{stamp}Z-{workload}"))
}

/// Runs a workload to its end (or until `shutdown` fires) and writes every result file.
pub async fn run(opts: RunOptions, shutdown: CancellationToken) -> anyhow::Result<RunResult> {
    let workload = Arc::new(opts.workload);
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let dir = opts.out.clone().unwrap_or_else(|| default_dir(&workload.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the results folder {}", dir.display()))?;
    std::fs::write(dir.join("workload.toml"), &workload.source_text)
        .context("cannot copy the workload into the results")?;

    // Everything the run starts (reference service, token refresh) stops with `service_stop`,
    // after cleanup; the load stops earlier with `load_stop`.
    let service_stop = CancellationToken::new();
    let push = match workload
        .probes
        .as_ref()
        .and_then(|p| p.push.as_ref().map(|push| (push, p.max_pending)))
    {
        Some((push, capacity)) => {
            Some(crate::probes::push::PushHub::start(push, capacity, service_stop.clone()).await?)
        }
        None => None,
    };
    let target = target::resolve(&workload, service_stop.clone(), push.as_ref().map(|p| p.url())).await?;
    tracing::info!(run_id = %run_id, target = %target.url, load = %workload.load_summary(), "run starting");

    let started_wall = SystemTime::now();
    let mut summary = Summary {
        schema_version: crate::report::summary::SCHEMA_VERSION,
        run_id: run_id.clone(),
        workload: workload.name.clone(),
        description: workload.description.clone(),
        started_at: humantime::format_rfc3339_millis(started_wall).to_string(),
        ended_at: None,
        outcome: RunOutcome::Running,
        target: TargetInfo {
            kind: target.kind.into(),
            url: target.url.clone(),
        },
        load: LoadInfo {
            model: workload.load.model().into(),
            description: workload.load_summary(),
            admins: workload.load.admins(),
            ..Default::default()
        },
        shard: opts.shard.map(|s| format!("{}/{}", s.index, s.count)),
        journeys: Vec::new(),
        metrics: Vec::new(),
        thresholds: Vec::new(),
        checks: Vec::new(),
        probes: None,
        cleanup: None,
        notes: Vec::new(),
    };
    summary.write(&dir)?;

    let run_log = Arc::new(RunLog::open(&dir)?);
    run_log.event(
        "start",
        serde_json::json!({"run_id": run_id, "workload": workload.name, "target": target.url, "load": workload.load_summary()}),
    );
    let exposition = match &opts.metrics_listen {
        Some(listen) => {
            let e: crate::metrics::exposition::Exposition = Arc::default();
            let addr = crate::metrics::exposition::serve(listen, e.clone(), service_stop.clone()).await?;
            tracing::info!(%addr, "serving live metrics at /metrics");
            Some(e)
        }
        None => None,
    };

    // Everything the run creates is recorded here as it goes, so cleanup finds it even when a
    // later phase fails.
    let created: Arc<Mutex<Vec<Created>>> = Arc::default();
    let client = target.client.clone();
    let phase = Phase {
        workload: workload.clone(),
        client: client.clone(),
        run_id: run_id.clone(),
        dir: dir.clone(),
        progress: opts.progress,
        created: created.clone(),
        push,
        run_log: run_log.clone(),
        exposition,
        warmup: opts.warmup,
        shard: opts.shard,
        start_at: opts.start_at,
    };
    let load_error = match phase.load(&mut summary, shutdown).await {
        Ok(()) => None,
        Err(e) => {
            summary.outcome = RunOutcome::Failed;
            summary.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
            summary.notes.push(format!("the run failed: {e:#}"));
            summary.write(&dir)?;
            Some(e)
        }
    };

    // Cleanup: what journeys left behind, the pool and shared group, then anything marked.
    let created: Vec<Created> = std::mem::take(&mut *created.lock());
    if opts.keep_users {
        summary.notes.push(format!(
            "users kept: `provbench cleanup --run-id {run_id}` removes them"
        ));
    } else {
        let mut report = cleanup::delete_created(client.clone(), created, opts.cleanup_timeout).await;
        let remaining = opts
            .cleanup_timeout
            .saturating_sub(Duration::from_millis(report.duration_ms));
        match cleanup::sweep_marked(client.clone(), &run_id, remaining).await {
            Ok(sweep) => {
                report.duration_ms += sweep.duration_ms;
                report.absorb(sweep);
            }
            Err(e) => summary.notes.push(format!("marker sweep skipped: {e}")),
        }
        tracing::info!(deleted = report.deleted, failed = report.failed, "cleanup done");
        run_log.event("cleanup", serde_json::to_value(&report).unwrap_or_default());
        summary.cleanup = Some(report);
    }
    summary.write(&dir)?;
    crate::report::write_all(&summary, &dir)?;
    for v in &summary.thresholds {
        run_log.event("threshold", serde_json::to_value(v).unwrap_or_default());
    }
    run_log.event(
        "end",
        serde_json::json!({"outcome": summary.outcome, "ended_at": summary.ended_at}),
    );
    if let Some(url) = &opts.notify {
        notify(url, &summary).await;
    }
    service_stop.cancel();
    if let Some(r) = target.embedded {
        r.stop().await;
    }
    match load_error {
        Some(e) => Err(e.context(format!("run {run_id} failed (results in {})", dir.display()))),
        None => Ok(RunResult { summary, dir }),
    }
}

/// The load phase's inputs.
struct Phase {
    workload: Arc<Workload>,
    client: Arc<crate::scim::ScimClient>,
    run_id: String,
    dir: PathBuf,
    progress: bool,
    created: Arc<Mutex<Vec<Created>>>,
    push: Option<Arc<crate::probes::push::PushHub>>,
    run_log: Arc<RunLog>,
    exposition: Option<crate::metrics::exposition::Exposition>,
    warmup: Duration,
    shard: Option<crate::workload::Shard>,
    start_at: Option<SystemTime>,
}

impl Phase {
    /// Prepares, runs the load and writes its results into `summary`.
    async fn load(&self, summary: &mut Summary, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (workload, client, run_id, dir) = (&self.workload, &self.client, &self.run_id, &self.dir);
        let pool = prepare_pool(workload, client, run_id, &self.created).await?;
        let shared_group = prepare_group(workload, client, run_id, &self.created).await?;

        let registry = Arc::new(Registry::new());
        let checks = workload.checks.clone().map(|c| {
            Arc::new(crate::checks::CheckHub::new(
                c,
                client.clone(),
                registry.clone(),
                run_id,
                self.created.clone(),
            ))
        });
        let probes = workload.probes.clone().map(|p| {
            Arc::new(crate::probes::ProbeHub::new(
                p,
                client.clone(),
                registry.clone(),
                &workload.operations(),
                self.push.clone(),
            ))
        });
        let load_stop = CancellationToken::new();
        let gate = match &workload.load {
            Load::Open { schedule, max_lag, .. } => Some(Gate::new(schedule.clone(), *max_lag)),
            Load::Closed { .. } => None,
        };
        let mut ctx = Ctx::new(
            client.clone(),
            registry.clone(),
            workload.clone(),
            run_id.clone(),
            pool,
            shared_group,
            gate,
            load_stop.clone(),
            self.created.clone(),
            probes.clone(),
            checks.clone(),
        );
        ctx.shard = self.shard;
        let ctx = Arc::new(ctx);
        let planned = match &workload.load {
            Load::Closed {
                ramp,
                stop: Stop::Duration(d),
                ..
            } => Some(*ramp + *d),
            Load::Closed { .. } => None,
            Load::Open { schedule, .. } => Some(schedule.duration()),
        };
        if let Some(at) = self.start_at
            && let Ok(wait) = at.duration_since(SystemTime::now())
        {
            // Shards start together, so their one-second intervals line up for the merge.
            tracing::info!(wait_s = wait.as_secs_f64(), "waiting for --start-at");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        let load_start = Instant::now();
        let mut abort = AbortWatch::new(
            workload
                .thresholds
                .iter()
                .filter(|t| t.abort_on_fail)
                .cloned()
                .collect(),
            load_stop.clone(),
        );
        abort.run_log = Some(self.run_log.clone());
        if let Load::Open { schedule, .. } = &workload.load {
            // One run.log event as each stage of the arrival schedule begins.
            let (log, stop) = (self.run_log.clone(), load_stop.clone());
            let stages: Vec<_> = schedule.stages().to_vec();
            tokio::spawn(async move {
                let mut at = load_start;
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
        let writer = IntervalWriter::spawn(
            registry.clone(),
            dir,
            load_start.into_std(),
            SystemTime::now(),
            Duration::from_secs(1),
            ProgressSpec {
                total: planned,
                enabled: self.progress,
            },
            WriterHooks {
                abort: Some(abort.clone()),
                exposition: self.exposition.clone(),
                run_log: Some(self.run_log.clone()),
                warmup: self.warmup,
            },
        )?;

        // Stop conditions: the planned duration (closed), a backstop after the schedule (open),
        // Ctrl-C/SIGTERM, and goose's own Ctrl-C handler.
        let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (load_stop, shutdown, interrupted) = (load_stop.clone(), shutdown.clone(), interrupted.clone());
            let deadline = match &workload.load {
                Load::Closed { .. } => planned.map(|p| load_start + p),
                Load::Open { .. } => planned.map(|p| load_start + p + workload.http.timeout + Duration::from_secs(5)),
            };
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => { interrupted.store(true, Ordering::Relaxed); break; }
                        _ = load_stop.cancelled() => break,
                        _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
                        _ = tick.tick() => if goose::is_killswitch_triggered() { interrupted.store(true, Ordering::Relaxed); break; },
                    }
                }
                load_stop.cancel();
            })
        };

        if let Some(c) = &checks {
            // The run-wide security checks spread their attempts over the planned load.
            tokio::spawn(c.clone().security(planned.unwrap_or(Duration::from_secs(30))));
        }
        let attack = admins::attack(ctx.clone())?;
        let goose_result = attack.execute().await;
        load_stop.cancel();
        let _ = watcher.await;
        let load_elapsed = load_start.elapsed();
        if let Err(e) = goose_result {
            summary.notes.push(format!("goose ended with an error: {e}"));
        }
        if let Some(c) = &checks {
            if interrupted.load(Ordering::Relaxed) {
                c.abort();
            } else {
                let bound = workload.checks.as_ref().map_or(Duration::ZERO, |c| c.timeout);
                c.drain(bound + Duration::from_secs(5)).await;
            }
        }
        // Observations under way finish up to their bound (or stop at once on an interrupt).
        if let Some(p) = &probes {
            if interrupted.load(Ordering::Relaxed) {
                p.abort();
            } else {
                let bound = workload.probes.as_ref().map_or(Duration::ZERO, |p| p.timeout);
                p.drain(bound + Duration::from_secs(5)).await;
            }
        }
        let output = writer.finish()?;

        let interrupted = interrupted.load(Ordering::Relaxed);
        summary.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
        summary.outcome = if interrupted {
            RunOutcome::Aborted
        } else {
            RunOutcome::Passed
        };
        fill_results(summary, &ctx, &output, load_elapsed);
        if let Some(c) = &checks {
            summary.checks = c.reports();
            for r in &summary.checks {
                if let Some(e) = &r.error {
                    summary.notes.push(e.clone());
                }
            }
            if summary.outcome == RunOutcome::Passed && summary.checks.iter().any(|r| r.failed > 0 || r.error.is_some())
            {
                summary.outcome = RunOutcome::Failed;
            }
        }
        let data = crate::thresholds::Data {
            keys: &output.keys,
            series: &output.cumulative,
            load: &summary.load,
            checks: &summary.checks,
        };
        summary.thresholds = crate::thresholds::judge_all(&workload.thresholds, &data);
        if let Some((expr, at)) = abort.fired() {
            summary.notes.push(format!(
                "stopped early at {:.1}s: threshold `{expr}` was already lost (abort_on_fail)",
                at.as_secs_f64()
            ));
            summary.outcome = RunOutcome::Failed;
        }
        if summary.outcome == RunOutcome::Passed && summary.thresholds.iter().any(|v| !v.passed) {
            summary.outcome = RunOutcome::Failed;
        }
        if let Some(p) = &probes {
            let ops = summary
                .metrics
                .iter()
                .filter(|m| m.metric == "api_latency")
                .map(|m| m.count)
                .sum();
            let report = p.report(ops);
            summary.notes.extend(report.problems.iter().cloned());
            summary.probes = Some(report);
        }
        summary.write(dir)?;

        Ok(())
    }
}

fn fill_results(summary: &mut Summary, ctx: &Ctx, output: &crate::metrics::writer::WriterOutput, elapsed: Duration) {
    summary.metrics = output
        .keys
        .iter()
        .zip(&output.cumulative)
        .filter(|(k, d)| k.metric == "api_latency" || !d.is_empty())
        .map(|(k, d)| MetricSummary::new(k, d))
        .collect();
    // Operations first, then the generator's own wait, then the asynchronous half and checks.
    summary.metrics.sort_by_key(|m| match m.metric.as_str() {
        "api_latency" => 0,
        "admin_wait" => 1,
        _ => 2,
    });
    let secs = elapsed.as_secs_f64().max(1e-3);
    let ops: u64 = summary
        .metrics
        .iter()
        .filter(|m| m.metric == "api_latency")
        .map(|m| m.count)
        .sum();
    summary.journeys = ctx
        .workload
        .journeys
        .iter()
        .enumerate()
        .map(|(i, j)| JourneyInfo {
            name: j.name.clone(),
            weight: j.weight,
            completed: ctx.journeys_done[i].load(Ordering::Relaxed),
            failed: ctx.journeys_failed[i].load(Ordering::Relaxed),
            stopped: ctx.journeys_stopped[i].load(Ordering::Relaxed),
        })
        .collect();
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
    if let Some(gate) = &ctx.gate {
        let c = gate.counts();
        l.target_rate = Some(gate.schedule().mean_rate());
        l.peak_rate = Some(gate.schedule().peak_rate());
        l.scheduled = Some(c.scheduled);
        l.started = c.started;
        l.late_starts = c.late;
        l.dropped_arrivals = c.dropped;
        // Over the schedule's length (draining the last journeys does not count), or less if stopped early.
        l.achieved_rate = c.started as f64 / secs.min(gate.schedule().duration().as_secs_f64()).max(1e-3);
        if c.late > 0 || c.dropped > 0 {
            summary.notes.push(format!(
                "the admin pool was exhausted: {} late starts, {} dropped arrivals; latency counts from the intended start",
                c.late, c.dropped
            ));
        }
    }
}

/// Creates `[users] prepopulate` users (marked, cleaned up) and adds the feeder's users.
async fn prepare_pool(
    workload: &Workload,
    client: &Arc<crate::scim::ScimClient>,
    run_id: &str,
    created: &Mutex<Vec<Created>>,
) -> anyhow::Result<Vec<PooledUser>> {
    let mut pool: Vec<PooledUser> = workload
        .users
        .feeder
        .iter()
        .map(|(name, id)| PooledUser {
            id: id.clone(),
            user_name: name.clone(),
        })
        .collect();
    for i in 0..workload.users.prepopulate {
        // Sequence numbers from the top of the range keep them apart from the journeys' users.
        let seq = u64::MAX / 2 + i as u64;
        let vars = Vars { run_id, seq, admin: 0 };
        let body = workload.users.template.render(&vars);
        let name: String = serde_json::from_str(&workload.users.user_name.render(&vars)).unwrap_or_default();
        let reply = client
            .call(Method::POST, "/Users", Some(body.into()))
            .await
            .map_err(|e| anyhow::anyhow!("prepopulating users: {e}"))?
            .expect(&[200, 201])
            .map_err(|e| anyhow::anyhow!("prepopulating users: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&reply.body).context("prepopulating users: answer is not JSON")?;
        let id = v["id"]
            .as_str()
            .context("prepopulating users: created user has no id")?
            .to_string();
        created.lock().push(Created::User {
            id: id.clone(),
            user_name: name.clone(),
        });
        pool.push(PooledUser {
            id: Some(id),
            user_name: name,
        });
    }
    Ok(pool)
}

/// A group for journeys that add members without creating a group of their own.
async fn prepare_group(
    workload: &Workload,
    client: &Arc<crate::scim::ScimClient>,
    run_id: &str,
    created: &Mutex<Vec<Created>>,
) -> anyhow::Result<Option<String>> {
    let needs = workload.journeys.iter().any(|j| {
        let first_group = j
            .steps
            .iter()
            .position(|s| *s == Step::CreateGroup)
            .unwrap_or(usize::MAX);
        j.steps
            .iter()
            .position(|s| matches!(s, Step::AddToGroup | Step::RemoveFromGroup))
            .is_some_and(|p| p < first_group)
    });
    if !needs {
        return Ok(None);
    }
    let body = workload.users.group_template.render(&Vars {
        run_id,
        seq: u64::MAX / 4,
        admin: 0,
    });
    let reply = client
        .call(Method::POST, "/Groups", Some(body.into()))
        .await
        .map_err(|e| anyhow::anyhow!("creating the shared group: {e}"))?
        .expect(&[200, 201])
        .map_err(|e| anyhow::anyhow!("creating the shared group: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&reply.body)?;
    let id = v["id"].as_str().context("the created group has no id")?.to_string();
    created.lock().push(Created::Group { id: id.clone() });
    Ok(Some(id))
}
