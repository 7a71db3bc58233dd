//! The last phase: the judged summary on disk first (a kill during cleanup keeps the verdicts),
//! then cleanup of everything the ledger holds plus a sweep by marker, every report, the run
//! log's closing events, the notify webhook, and the services stopped.

use std::time::{Duration, SystemTime};

use super::RunOptions;
use super::prepare::Prepared;
use super::shutdown::Shutdown;
use crate::results::{CleanupReport, RunOutcome, Summary};

/// Cleans up and writes every result file; returns the final summary.
pub async fn finish(
    p: &Prepared,
    mut summary: Summary,
    opts: &RunOptions,
    shutdown: &Shutdown,
    probes: Option<std::sync::Arc<crate::probes::ProbeHub>>,
) -> anyhow::Result<Summary> {
    summary.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    if opts.keep_users {
        summary.write(&p.dir)?;
        summary.notes.push(kept(p));
    } else {
        // The verdicts are on disk before cleanup (a kill keeps them), but no file says
        // `passed` before cleanup ended and was read back: `provbench report` turns a summary
        // still `cleaning` into a verdict that is not passed, with the cleanup command.
        let judged = summary.outcome;
        summary.outcome = RunOutcome::Cleaning;
        summary.cleanup = Some(CleanupReport::pending(cleanup_command(p)));
        summary.write(&p.dir)?;
        summary.outcome = judged;
        summary.cleanup = Some(clean_up(p, opts.cleanup_timeout).await);
        // A run that leaves users on the target is never a pass.
        summary.settle();
        if let (Some(hub), Some(report), false) = (probes, summary.probes.as_mut(), shutdown.interrupted()) {
            downstream_leftovers(p, &hub, report, &mut summary.notes, shutdown).await;
        }
    }
    summary.write(&p.dir)?;
    crate::report::write_all(&summary, &p.dir, &opts.formats)?;
    for v in &summary.thresholds {
        p.run_log
            .event("threshold", serde_json::to_value(v).unwrap_or_default());
    }
    p.run_log.event(
        "end",
        serde_json::json!({"outcome": summary.outcome, "stop_reason": summary.stop_reason, "ended_at": summary.ended_at}),
    );
    if let Some(url) = &opts.notify {
        // A signal that arrives while the summary is posted cuts the post short; after an
        // earlier one, the post is still made (bounded by its timeout).
        let interrupt = shutdown.work();
        let already = shutdown.interrupted();
        tokio::select! {
            _ = notify(url, &summary) => {}
            _ = interrupt.cancelled(), if !already => tracing::warn!("interrupted: the summary was not posted"),
        }
    }
    // An open dashboard page reads the verdict within a second or two: it is served that
    // long at least, /metrics as long as asked.
    let linger = match &p.dashboard {
        Some(d) => {
            d.finished(&summary);
            opts.metrics_linger.max(crate::metrics::dashboard::LINGER)
        }
        None if p.exposition.is_some() => opts.metrics_linger,
        None => Duration::ZERO,
    };
    if !linger.is_zero() && !shutdown.interrupted() {
        tracing::info!(
            ?linger,
            "run over; still serving /metrics or the dashboard for a last look"
        );
        let interrupt = shutdown.work();
        tokio::select! {
            _ = tokio::time::sleep(linger) => {}
            _ = interrupt.cancelled() => {}
        }
    }
    shutdown.end();
    Ok(summary)
}

/// After cleanup, deprovisioning should reach every downstream: the followed users still there
/// once the bound passed are counted per service (and named in the notes).
async fn downstream_leftovers(
    p: &Prepared,
    hub: &crate::probes::ProbeHub,
    report: &mut crate::results::ProbeReport,
    notes: &mut Vec<String>,
    shutdown: &Shutdown,
) {
    let bound = p
        .workload
        .probes
        .as_ref()
        .map_or(Duration::ZERO, |c| c.timeout)
        .min(Duration::from_secs(10));
    let found = hub.leftovers(bound, &shutdown.work()).await;
    (report.leftovers, report.unread_after_cleanup) = (found.still, found.unread);
    report.reads_after_cleanup = found.reads;
    for (service, n) in &report.unread_after_cleanup {
        notes.push(format!(
            "{n} of the run's users could not be read in {service} after cleanup (its reads failed): whether deprovisioning reached them is unknown"
        ));
    }
    for (service, n) in report.leftovers.iter().filter(|(_, n)| **n > 0) {
        notes.push(format!(
            "{n} of the run's users were still in {service} {}s after cleanup: deprovisioning did not reach them",
            bound.as_secs()
        ));
    }
}

/// What journeys left behind, the pool and shared group, then anything else marked.
async fn clean_up(p: &Prepared, limit: Duration) -> CleanupReport {
    let mut report = p
        .target
        .clean_up(
            p.ledger.take(),
            crate::ledger::Claims {
                unread: p.ledger.take_deleted(),
                proven: p.ledger.proven_during_run(),
            },
            &p.run_id,
            limit,
            cleanup_command(p),
            p.ledger.unsure(),
        )
        .await;
    // The journeys' deletes a read already showed gone while the run went on, but for any
    // cleanup found again and left (cleanup did not count those shown gone again).
    let proven = p.ledger.proven_during_run();
    report.verified += proven
        .len()
        .saturating_sub(super::targets::readback::proven_and_left(&proven, &report.left));
    report.gone_with_target = p.target.gone_with_run();
    if report.failed > 0 {
        tracing::warn!(left = report.failed, command = ?report.command, "cleanup left resources on the target");
    }
    tracing::info!(deleted = report.deleted, left = report.failed, "cleanup done");
    p.run_log
        .event("cleanup", serde_json::to_value(&report).unwrap_or_default());
    report
}

/// What a run that keeps its users kept, and what removes it. A target gone with the run kept
/// nothing. One that cannot be searched for the run's marker (kind `http`) is cleaned only by
/// the cleanup hooks of a run's end, which a run that keeps its users never sends: no command
/// finds later what they would have removed, so none is named.
fn kept(p: &Prepared) -> String {
    if p.target.gone_with_run() {
        return "nothing was kept (--keep-users): the run's users went away with the embedded target".into();
    }
    if !p.target.sweepable() {
        let made = p.ledger.take().len();
        return format!(
            "{}: the cleanup hooks of the {made} resource(s) the run made and did not delete were not sent, and `provbench cleanup` cannot search this target for the run's marker: they stay until removed by other means",
            crate::results::USERS_KEPT
        );
    }
    format!(
        "{}: `provbench cleanup --run-id {}` removes them",
        crate::results::USERS_KEPT,
        p.run_id
    )
}

/// What removes the run's leftovers by hand.
fn cleanup_command(p: &Prepared) -> String {
    super::prepare::cleanup_command(&p.run_id, &p.workload)
}

/// Posts the summary to a webhook; a failure is logged, never fatal.
async fn notify(url: &str, summary: &Summary) {
    let body = crate::redact::json(&serde_json::to_string(summary).unwrap_or_default());
    let sent = crate::http::bare(Duration::from_secs(10))
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => tracing::info!(url = %crate::redact::url(url), "summary posted"),
        Ok(r) => {
            tracing::warn!(url = %crate::redact::url(url), status = %r.status(), "the notify webhook refused the summary")
        }
        Err(e) => tracing::warn!(url = %crate::redact::url(url), error = %e, "cannot post the summary"),
    }
}
