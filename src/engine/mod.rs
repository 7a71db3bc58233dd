//! A run, as a list of phases with plain outputs:
//!
//! 1. [`prepare`]: the results folder, the target and services; [`preflight`]: what the run rests
//!    on, read before anything is written; then the users the journeys need before the load;
//! 2. [`drive`]: the load on goose, the interval writer, the probes and checks drained;
//! 3. [`judge`]: figures, verdicts and outcome, pure;
//! 4. [`finish`]: cleanup, every result file, the services stopped.
//!
//! One [`shutdown`] tree stops each part and records why the load stopped.
//!
//! # Layout
//! - [`targets`]: the only place that picks a protocol: one file per kind of target (SCIM and
//!   the embedded service, LDAP, HTTP APIs of custom operations), each with its steps, its
//!   set-up and its cleanup, behind one dispatcher ([`targets::ResolvedTarget`]).
//! - [`state`]: what a step works on (the run, an admin, a journey) and the helpers every
//!   target's steps share.
//! - [`context`]: what the scheduler shares. [`admins`]: goose set-up and the admin session loop.
//! - [`journey`]: a journey's steps in order, timed, handed to the probes and checks.
//! - [`gate`]: the open model's arrival gate. [`failures`]: why operations failed, sampled.
//! - [`runlog`]: `run.log`, JSON lines as the run goes.
//!
//! Imports within the engine point one way: phases → `context`/`journey` → `targets` →
//! `state`; no protocol file knows the scheduler.

pub mod admins;
pub mod context;
pub mod drive;
pub mod failures;
pub mod finish;
pub mod gate;
pub mod journey;
pub mod judge;
pub mod preflight;
pub mod prepare;
pub mod runlog;
pub mod shutdown;
pub mod state;
pub mod targets;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::metrics::{MetricKey, SeriesData};
use crate::results::{self, Summary};
use crate::workload::Workload;
use shutdown::Shutdown;

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
    /// Keep serving them this long after the run, for a last scrape.
    pub metrics_linger: Duration,
    /// Serve the live page here during the run.
    pub dashboard: Option<String>,
    /// POST the final summary JSON to this URL.
    pub notify: Option<String>,
    /// The first part of the load that the totals and verdicts leave out (sweep steps).
    pub warmup: Duration,
    /// A run id shared by every shard (default: a new one).
    pub run_id: Option<crate::ledger::RunId>,
    /// Start the load at this wall-clock instant, so that shards' intervals align.
    pub start_at: Option<SystemTime>,
    /// Warnings (a probe that observed nothing) fail the run.
    pub strict: bool,
    /// A target of a kind defined outside this crate, in place of the workload's `[target]`.
    pub target: Option<Arc<dyn targets::Protocol>>,
    /// Reports for CI systems written beside the usual ones (`--report-format`).
    pub formats: Vec<crate::report::Format>,
}

impl RunOptions {
    /// A run of `workload` with every option at its default: results under `results/`, no
    /// progress line, a minute for cleanup, no live endpoints, no warm-up, a new run id.
    pub fn new(workload: Workload) -> RunOptions {
        RunOptions {
            workload,
            out: None,
            progress: false,
            cleanup_timeout: Duration::from_secs(60),
            keep_users: false,
            metrics_listen: None,
            metrics_linger: Duration::ZERO,
            dashboard: None,
            notify: None,
            warmup: Duration::ZERO,
            run_id: None,
            start_at: None,
            strict: false,
            target: None,
            formats: Vec::new(),
        }
    }
}

pub struct RunResult {
    pub summary: Summary,
    pub dir: PathBuf,
    /// The run's data per series (warm-up left out), for callers that judge further (sweep).
    pub keys: Vec<MetricKey>,
    pub series: Vec<SeriesData>,
}

/// Runs a workload to its end (or until `interrupt` fires) and writes every result file. A run
/// that fails after its results folder exists still writes its summary (outcome `error`) and
/// cleans up; the error is returned after that.
pub async fn run(opts: RunOptions, interrupt: CancellationToken) -> anyhow::Result<RunResult> {
    let shutdown = Arc::new(Shutdown::new(&interrupt));
    let prepared = match prepare::open(&opts, &shutdown).await {
        Ok(p) => p,
        Err(e) => {
            shutdown.end();
            return Err(e);
        }
    };
    // Nothing is written before the pre-flight passed: a refused probe service or a base DN
    // that does not exist ends the run here (exit 2, with summary.json and junit.xml).
    let checked = shutdown
        .unless_interrupted("checking before the load", preflight::check(&prepared, &shutdown))
        .await;
    let mut summary = prepared.summary.clone();
    // Staging reads the target's /Schemas and prepopulates: the first signal cuts it short
    // (what it created is in the ledger, and the sweep finds a create cut off in flight).
    let driven = match checked {
        Ok(checked) => {
            for note in &checked.notes {
                tracing::warn!("{note}");
            }
            summary.notes.extend(checked.notes.iter().cloned());
            let staged = shutdown
                .unless_interrupted(
                    "preparing the target",
                    prepared
                        .target
                        .stage(&prepared.workload, &prepared.run_id, &prepared.ledger, &shutdown.load),
                )
                .await;
            match staged {
                Ok(staged) => drive::drive(&prepared, staged, checked, &opts, &shutdown).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let mut hub = None;
    let (data, error) = match driven {
        Ok(d) => {
            let data = (d.keys.clone(), d.cumulative.clone());
            hub = d.hub.clone();
            judge::judge(&mut summary, d, &prepared.workload.thresholds, shutdown.reason());
            (data, None)
        }
        // Interrupted before the load: not a failure of the run, an abort.
        Err(e) if shutdown.interrupted() => {
            summary.notes.push(format!("stopped before the load: {e:#}"));
            summary.stop_reason = Some(results::StopReason::Signal);
            summary.settle();
            (Default::default(), None)
        }
        Err(e) => {
            judge::failed(&mut summary, &e);
            (Default::default(), Some(e))
        }
    };
    let finished = finish::finish(&prepared, summary, &opts, &shutdown, hub).await;
    prepared.target.stop().await;
    let summary = finished?;
    match error {
        Some(e) => Err(e.context(format!(
            "run {} failed (results in {})",
            prepared.run_id,
            prepared.dir.display()
        ))),
        None => Ok(RunResult {
            summary,
            dir: prepared.dir,
            keys: data.0,
            series: data.1,
        }),
    }
}
