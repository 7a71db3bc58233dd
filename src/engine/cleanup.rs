//! Cleaning up what a run created: delete the users and groups it recorded, then sweep the target
//! for anything else carrying the run's marker (a create whose answer was lost). Bounded in time,
//! a few requests at once, and never touching a user whose userName lacks the marker.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::ledger::{Created, RunId};
use crate::results::CleanupReport;
use crate::scim::ScimClient;
use crate::scim::client::encode_query;

const CONCURRENCY: usize = 16;

/// Deletes `items` within `limit`.
pub async fn delete_created(client: Arc<ScimClient>, items: Vec<Created>, limit: Duration) -> CleanupReport {
    let started = Instant::now();
    let deadline = started + limit;
    let mut report = CleanupReport::default();
    let mut tasks = JoinSet::new();
    let mut pending = items.into_iter();
    loop {
        while tasks.len() < CONCURRENCY {
            let Some(item) = pending.next() else { break };
            let client = client.clone();
            let path = match item {
                Created::User { id, .. } => format!("/Users/{id}"),
                Created::Group { id, .. } => format!("/Groups/{id}"),
            };
            report.attempted += 1;
            tasks.spawn(async move {
                client
                    .call(Method::DELETE, &path, None)
                    .await
                    .map(|r| r.status.as_u16())
            });
        }
        let next = tokio::time::timeout_at(deadline, tasks.join_next()).await;
        match next {
            Ok(None) => break,
            Ok(Some(Ok(Ok(200 | 204)))) => report.deleted += 1,
            Ok(Some(Ok(Ok(404)))) => report.already_gone += 1,
            Ok(Some(_)) => report.failed += 1,
            Err(_) => {
                report.timed_out = true;
                report.failed += tasks.len() as u64 + pending.len() as u64;
                tasks.abort_all();
                break;
            }
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default, rename = "Resources")]
    resources: Vec<Marked>,
}

#[derive(Deserialize)]
struct Marked {
    id: String,
    #[serde(default, rename = "userName")]
    user_name: Option<String>,
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
}

/// Finds users (and groups) whose name carries `run_id` and deletes them, page by page, within
/// `limit`. Only names that contain the marker are deleted, whatever the filter returned.
pub async fn sweep_marked(client: Arc<ScimClient>, run_id: &RunId, limit: Duration) -> anyhow::Result<CleanupReport> {
    let started = Instant::now();
    let mut report = CleanupReport::default();
    for (kind, attr) in [("Users", "userName"), ("Groups", "displayName")] {
        loop {
            let remaining = limit.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                report.timed_out = true;
                break;
            }
            let filter = format!("{attr} co \"{run_id}\"");
            let path = format!("/{kind}?count=200&filter={}", encode_query(&filter));
            let reply = client
                .call(Method::GET, &path, None)
                .await
                .map_err(|e| anyhow::anyhow!("listing {kind}: {e}"))?;
            if reply.status.as_u16() != 200 {
                // Some servers cannot filter groups (or at all): say so and move on.
                tracing::warn!(
                    status = reply.status.as_u16(),
                    "cannot list {kind} by marker; skipping the sweep"
                );
                break;
            }
            let list: ListResponse = serde_json::from_slice(&reply.body)?;
            let marked: Vec<Created> = list
                .resources
                .into_iter()
                .filter(|r| {
                    r.user_name
                        .as_deref()
                        .or(r.display_name.as_deref())
                        .is_some_and(|n| run_id.marks(n))
                })
                .map(|r| match kind {
                    "Users" => Created::User {
                        id: r.id,
                        user_name: r.user_name.unwrap_or_default(),
                    },
                    _ => Created::Group {
                        id: r.id,
                        display_name: r.display_name.unwrap_or_default(),
                    },
                })
                .collect();
            if marked.is_empty() {
                break;
            }
            let round = delete_created(client.clone(), marked, remaining).await;
            let progress = round.deleted + round.already_gone;
            report.absorb(round);
            if progress == 0 {
                break;
            }
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
