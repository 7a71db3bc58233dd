//! The last phase: the judged summary on disk first (a kill during cleanup keeps the verdicts),
//! then cleanup of everything the ledger holds plus a sweep by marker, every report, the run
//! log's closing events, the notify webhook, and the services stopped.

use std::time::{Duration, SystemTime};

use super::RunOptions;
use super::cleanup;
use super::prepare::Prepared;
use super::shutdown::Shutdown;
use crate::results::Summary;

/// Cleans up and writes every result file; returns the final summary.
pub async fn finish(
    p: &Prepared,
    mut summary: Summary,
    opts: &RunOptions,
    shutdown: &Shutdown,
) -> anyhow::Result<Summary> {
    summary.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    summary.write(&p.dir)?;
    if opts.keep_users {
        summary.notes.push(format!(
            "users kept: `provbench cleanup --run-id {}` removes them",
            p.run_id
        ));
    } else {
        summary.cleanup = Some(clean_up(p, opts.cleanup_timeout, &mut summary.notes).await);
    }
    summary.write(&p.dir)?;
    crate::report::write_all(&summary, &p.dir)?;
    for v in &summary.thresholds {
        p.run_log
            .event("threshold", serde_json::to_value(v).unwrap_or_default());
    }
    p.run_log.event(
        "end",
        serde_json::json!({"outcome": summary.outcome, "stop_reason": summary.stop_reason, "ended_at": summary.ended_at}),
    );
    if let Some(url) = &opts.notify {
        notify(url, &summary).await;
    }
    shutdown.end();
    Ok(summary)
}

/// What journeys left behind, the pool and shared group, then anything else marked.
async fn clean_up(p: &Prepared, limit: Duration, notes: &mut Vec<String>) -> crate::results::CleanupReport {
    let client = p.target.client.clone();
    let mut report = cleanup::delete_created(client.clone(), p.ledger.take(), limit).await;
    let remaining = limit.saturating_sub(Duration::from_millis(report.duration_ms));
    match cleanup::sweep_marked(client, &p.run_id, remaining).await {
        Ok(sweep) => {
            report.duration_ms += sweep.duration_ms;
            report.absorb(sweep);
        }
        Err(e) => notes.push(format!("marker sweep skipped: {e}")),
    }
    tracing::info!(deleted = report.deleted, failed = report.failed, "cleanup done");
    p.run_log
        .event("cleanup", serde_json::to_value(&report).unwrap_or_default());
    report
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
