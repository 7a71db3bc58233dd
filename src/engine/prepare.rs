//! The first phase: the results folder and the workload as run, the summary written at the start,
//! `run.log`, the target resolved ([`super::targets`]: the embedded service started, an HTTP
//! target signed in, a directory bound), the push receiver and the live metrics endpoint. The
//! target then stages what the journeys need before the load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;

use super::RunOptions;
use super::runlog::RunLog;
use super::shutdown::Shutdown;
use super::targets::{self, ResolvedTarget};
use crate::ledger::{Ledger, RunId};
use crate::metrics::dashboard::{self, Dashboard};
use crate::metrics::exposition::{self, Exposition};
use crate::probes::push::PushHub;
use crate::results::{CleanupReport, LoadInfo, RunOutcome, SCHEMA_VERSION, Summary, TargetInfo};
use crate::workload::Workload;

/// A run that is set up: what every later phase reads.
pub struct Prepared {
    pub workload: Arc<Workload>,
    pub run_id: RunId,
    pub dir: PathBuf,
    /// As written at the start (outcome `running`).
    pub summary: Summary,
    pub run_log: Arc<RunLog>,
    pub target: Arc<ResolvedTarget>,
    pub push: Option<Arc<PushHub>>,
    pub exposition: Option<Exposition>,
    /// The live page's data, when `--dashboard` is on.
    pub dashboard: Option<Dashboard>,
    /// Everything the run creates, recorded as it goes, so cleanup finds it whatever fails.
    pub ledger: Ledger,
}

/// `results/<UTC time>-<workload>`, made now and the run's alone: a second run started in the
/// same second gets `…-2` (never the first one's folder, whose files it would overwrite).
fn default_dir(workload: &str) -> anyhow::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "")
        .trim_end_matches('Z')
        .to_string();
    claim(Path::new("results"), &format!("{stamp}Z-{workload}"))
}

/// Creates `parent/name` (or `parent/name-2`, `-3`… when taken) and returns it: `create_dir`
/// fails on a folder that exists, so two runs never share one.
fn claim(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create the results folder {}", parent.display()))?;
    for n in 1..1000 {
        let dir = match n {
            1 => parent.join(name),
            n => parent.join(format!("{name}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create the results folder {}", dir.display())),
        }
    }
    anyhow::bail!(
        "cannot create a results folder {name} in {}: 999 taken",
        parent.display()
    )
}

/// Opens the run: files, target and services. Nothing is created on the target yet.
pub async fn open(opts: &RunOptions, shutdown: &Shutdown) -> anyhow::Result<Prepared> {
    let workload = Arc::new(opts.workload.clone());
    let run_id = opts.run_id.clone().unwrap_or_else(RunId::generate);
    let dir = match &opts.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the results folder {}", dir.display()))?;
            dir.clone()
        }
        None => default_dir(&workload.name)?,
    };
    std::fs::write(
        dir.join("workload.toml"),
        crate::redact::output(&workload.effective_text),
    )
    .context("cannot copy the workload into the results")?;
    let push = match workload
        .probes
        .as_ref()
        .and_then(|p| p.push.as_ref().map(|push| (push, p.max_pending)))
    {
        Some((push, capacity)) => Some(PushHub::start(push, capacity, shutdown.services.clone()).await?),
        None => None,
    };
    let webhook = push.as_ref().map(|p| p.url());
    // Signing in (an OAuth token, an LDAP bind) is cut short by the first signal.
    let target = Arc::new(
        shutdown
            .unless_interrupted(
                "signing in to the target",
                targets::resolve(&workload, shutdown.services.clone(), webhook, opts.target.clone()),
            )
            .await?,
    );
    tracing::info!(run_id = %run_id, target_url = %target.url(), load = %workload.load_summary(), "run starting");
    super::shutdown::set_cleanup_hint(cleanup_command(&run_id, &workload));
    let summary = starting_summary(&workload, &run_id, &target, opts);
    summary.write(&dir)?;
    let run_log = Arc::new(RunLog::open(&dir)?);
    run_log.event(
        "start",
        serde_json::json!({"run_id": run_id.as_str(), "workload": workload.name, "target": target.url(), "load": workload.load_summary()}),
    );
    let exposition = match &opts.metrics_listen {
        Some(listen) => {
            // Every sample names the run and the shard: several generators' scrapes merge.
            let e = Exposition::new(exposition::RunLabels {
                run_id: run_id.to_string(),
                shard: workload.shard.map_or(0, |s| s.index),
            });
            let addr = exposition::serve(listen, e.clone(), shutdown.services.clone()).await?;
            tracing::info!(%addr, "serving live metrics at /metrics");
            Some(e)
        }
        None => None,
    };
    let dashboard = match &opts.dashboard {
        Some(listen) => {
            let d = Dashboard::new(serde_json::json!({
                "workload": workload.name,
                "run_id": run_id.as_str(),
                "target": target.url(),
                "load": workload.load_summary(),
            }));
            let addr = dashboard::serve(listen, d.clone(), shutdown.services.clone()).await?;
            tracing::info!(url = %format!("http://{addr}/"), "live dashboard");
            Some(d)
        }
        None => None,
    };
    Ok(Prepared {
        dashboard,
        workload,
        // Nothing outlives a target that goes away with the run, and a run that keeps its users
        // has no cleanup: their deletes are not kept to be read back, during the run or after
        // it. The users such a run leaves carry its marker; `provbench cleanup --run-id` sweeps
        // them and reads back what it deletes.
        ledger: match target.gone_with_run() || opts.keep_users {
            true => Ledger::new(run_id.clone()).without_claims(),
            false => Ledger::new(run_id.clone()),
        },
        run_id,
        dir,
        summary,
        run_log,
        target,
        push,
        exposition,
    })
}

/// What removes a run's leftovers by hand: the one spelling the hint, the summary and the
/// cleanup report give.
pub fn cleanup_command(run_id: &RunId, workload: &Workload) -> String {
    format!("provbench cleanup --run-id {run_id} {}", workload.path.display())
}

fn starting_summary(workload: &Workload, run_id: &RunId, target: &ResolvedTarget, opts: &RunOptions) -> Summary {
    Summary {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.to_string(),
        workload: workload.name.clone(),
        description: workload.description.clone(),
        started_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        ended_at: None,
        outcome: RunOutcome::Running,
        stop_reason: None,
        target: TargetInfo {
            kind: target.kind().into(),
            url: target.url(),
        },
        load: LoadInfo {
            model: workload.load.model().into(),
            description: workload.load_summary(),
            admins: workload.load.admins(),
            ..Default::default()
        },
        shard: workload.shard.map(|s| format!("{}/{}", s.index, s.count)),
        overrides: workload.overrides.clone(),
        strict: opts.strict,
        journeys: Vec::new(),
        metrics: Vec::new(),
        declared_thresholds: workload.thresholds.iter().map(|t| t.declared()).collect(),
        thresholds: Vec::new(),
        checks: Vec::new(),
        check_cost: None,
        probes: None,
        // Until cleanup ends (or for good, if the run is killed): the command that finishes it.
        cleanup: (!opts.keep_users).then(|| CleanupReport::pending(cleanup_command(run_id, workload))),
        failures: Vec::new(),
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_in_one_second_get_two_folders() {
        let root = tempfile::tempdir().unwrap();
        let parent = root.path().join("results");
        let first = claim(&parent, "2026-12-06T041001Z-quickstart").unwrap();
        let second = claim(&parent, "2026-12-06T041001Z-quickstart").unwrap();
        let third = claim(&parent, "2026-12-06T041001Z-quickstart").unwrap();
        assert_eq!(first, parent.join("2026-12-06T041001Z-quickstart"));
        assert_eq!(second, parent.join("2026-12-06T041001Z-quickstart-2"));
        assert_eq!(third, parent.join("2026-12-06T041001Z-quickstart-3"));
        assert!(second.is_dir() && third.is_dir());
    }
}
