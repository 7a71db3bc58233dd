//! Cleaning up what a run created on a SCIM target: delete what the ledger holds (cleanup hooks
//! first), retrying what fails (5xx, 429, a broken connection, a timeout) with back-off until
//! the deadline, then sweep the target for anything else that carries the run's marker as a
//! whole token (a create whose answer was lost). What cannot be deleted is listed with its last
//! answer and the command that removes it; a target that cannot be searched is said to be so,
//! never reported as clean.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use tokio::time::Instant;

use crate::engine::targets::requests::{self, CleanupRequest};
use crate::http::HttpClient;
use crate::http::client::encode_query;
use crate::ledger::{Created, RunId};
use crate::results::{CleanupReport, LeftBehind};

const PAGE: usize = 200;

/// The path of `id` in `collection`; an id that cannot be one path segment is never deleted
/// (a DELETE of `/Users/../Groups/x` would delete somebody else's group): it stays listed.
fn member(collection: &str, id: &str) -> Result<String, String> {
    crate::http::url::member(collection, id)
        .map_err(|why| format!("not deleted: its id {id:?} cannot name a resource ({why})"))
}

/// How each thing a run created on a SCIM target is deleted.
fn request(item: &Created) -> Result<CleanupRequest, String> {
    Ok(match item {
        Created::User { id, .. } => CleanupRequest::delete(member("Users", id)?),
        Created::Group { id, .. } => CleanupRequest::delete(member("Groups", id)?),
        Created::Undo(u) => CleanupRequest::hook(u)?,
    })
}

#[derive(Deserialize)]
struct ListResponse {
    /// Required by SCIM: an answer without it is not a search result.
    #[serde(rename = "totalResults")]
    total_results: usize,
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

/// One search request, retried with back-off (5xx, 429, connection, timeout) until `deadline`.
async fn search(client: &HttpClient, path: &str, deadline: Instant) -> Result<crate::http::Reply, String> {
    let mut wait = Duration::from_millis(100);
    loop {
        let why = match tokio::time::timeout_at(deadline, client.call(Method::GET, path, None)).await {
            Err(_) => return Err("cleanup timed out while searching".into()),
            Ok(Ok(r)) if r.status.as_u16() == 429 || r.status.is_server_error() => {
                format!("HTTP {}", r.status.as_u16())
            }
            Ok(Ok(r)) => return Ok(r),
            Ok(Err(e)) => e.to_string(),
        };
        if Instant::now() + wait >= deadline {
            return Err(format!("{why} (retried until the deadline)"));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Why a collection could not be searched.
struct Unsearchable {
    why: String,
    /// The first page answered 404: the target has no such collection.
    absent: bool,
}

impl From<String> for Unsearchable {
    fn from(why: String) -> Self {
        Unsearchable { why, absent: false }
    }
}

/// Every resource of `kind` whose name carries the marker, page by page.
async fn list_marked(
    client: &HttpClient,
    kind: &str,
    run_id: &RunId,
    deadline: Instant,
) -> Result<Vec<Created>, Unsearchable> {
    let attr = if kind == "Users" { "userName" } else { "displayName" };
    let filter = encode_query(&format!("{attr} co \"{run_id}\""));
    let mut found = Vec::new();
    let mut start = 1;
    loop {
        let path = format!("/{kind}?filter={filter}&startIndex={start}&count={PAGE}");
        let reply = search(client, &path, deadline)
            .await
            .map_err(|e| format!("{kind}: {e}"))?;
        if reply.status.as_u16() != 200 {
            let body = String::from_utf8_lossy(&reply.body[..reply.body.len().min(120)]).into_owned();
            return Err(Unsearchable {
                why: format!("{kind}: HTTP {} to a filtered search: {body}", reply.status.as_u16()),
                absent: start == 1 && reply.status.as_u16() == 404,
            });
        }
        let page: ListResponse = serde_json::from_slice(&reply.body)
            .map_err(|e| format!("{kind}: the search answer is not a SCIM ListResponse: {e}"))?;
        let n = page.resources.len();
        for r in page.resources {
            // A resource's identity is the attribute the search was on: a user's userName, a
            // group's displayName. A user without userName whose displayName carries the marker
            // is not the run's.
            let name = if kind == "Users" { r.user_name } else { r.display_name }.unwrap_or_default();
            // Whatever the server's filter returned, only whole-token matches are ours.
            if run_id.marks(&name) {
                found.push(match kind {
                    "Users" => Created::User {
                        id: r.id,
                        user_name: name,
                    },
                    _ => Created::Group {
                        id: r.id,
                        display_name: name,
                    },
                });
            }
        }
        start += n;
        if n == 0 || start > page.total_results {
            return Ok(found);
        }
    }
}

/// Finds what carries `run_id` and deletes it, round after round, until `deadline`: what a
/// round could not delete is not tried again, and what the last round still lists is left.
/// `carried` is what an earlier pass could not delete (reported as left when the target cannot
/// be searched). `made_no_group`: the run created no group, so a target without a
/// `/Groups` collection (404) has none of the run's to find; otherwise (the run made groups, or
/// `provbench cleanup`, which cannot know) a 404 there leaves the target unsearched.
pub async fn sweep_marked(
    client: Arc<HttpClient>,
    run_id: &RunId,
    deadline: Instant,
    carried: Vec<LeftBehind>,
    made_no_group: bool,
) -> CleanupReport {
    let started = Instant::now();
    let mut report = CleanupReport::default();
    let mut left_behind = Vec::new();
    for kind in ["Users", "Groups"] {
        let mut tried: HashSet<String> = HashSet::new();
        let mut still: Vec<LeftBehind> = Vec::new();
        loop {
            let found = match list_marked(&client, kind, run_id, deadline).await {
                Ok(found) => found,
                // No Groups collection, and no group of the run's to look for in it.
                Err(Unsearchable { absent: true, .. }) if kind == "Groups" && made_no_group => break,
                Err(Unsearchable { why, .. }) => {
                    report.timed_out |= why.contains("timed out");
                    report.unsearchable.push(why);
                    // What an earlier pass could not delete is all that is known.
                    let noun = if kind == "Users" { "user" } else { "group" };
                    still = carried.iter().filter(|l| l.kind == noun).cloned().collect();
                    break;
                }
            };
            let fresh: Vec<Created> = found.into_iter().filter(|c| !tried.contains(c.id())).collect();
            if fresh.is_empty() {
                break;
            }
            tried.extend(fresh.iter().map(|c| c.id().to_string()));
            let (round, left) = requests::delete_all(client.clone(), fresh, deadline, request).await;
            requests::absorb(&mut report, round);
            still.retain(|l| !left.iter().any(|n| n.id == l.id));
            still.extend(left);
        }
        left_behind.extend(still);
    }
    report.failed = left_behind.len() as u64;
    left_behind.truncate(CleanupReport::LISTED);
    report.left = left_behind;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// Everything a run's cleanup does: the ledger first, then the sweep; the report says what is
/// left and how to remove it (`command` is `provbench cleanup …` for this run's target).
///
/// Cleanup hooks go first (what a custom operation made may hang on a user deleted after).
/// `command` is `None` for a target that cannot be searched for the marker (kind `http`): only
/// the ledger is cleaned, and what is left is listed.
pub async fn clean_up(
    client: Arc<HttpClient>,
    items: Vec<Created>,
    run_id: &RunId,
    limit: Duration,
    command: Option<String>,
) -> CleanupReport {
    let started = Instant::now();
    let deadline = started + limit;
    let items_had_group = items.iter().any(|c| matches!(c, Created::Group { .. }));
    let (undo, items): (Vec<Created>, Vec<Created>) = items.into_iter().partition(|c| matches!(c, Created::Undo(_)));
    let (mut report, mut left) = requests::delete_all(client.clone(), undo, deadline, request).await;
    let (round, more) = requests::delete_all(client.clone(), items, deadline, request).await;
    requests::absorb(&mut report, round);
    left.extend(more);
    let Some(command) = command else {
        return requests::close(report, left, started);
    };
    let undone: Vec<LeftBehind> = left.iter().filter(|l| l.kind == "cleanup hook").cloned().collect();
    let made_no_group = !items_had_group;
    let sweep = sweep_marked(client, run_id, deadline, left, made_no_group).await;
    requests::absorb(&mut report, sweep.clone());
    // The sweep finds users and groups; cleanup hooks that failed stay listed.
    report.failed = sweep.failed + undone.len() as u64;
    report.left = undone
        .into_iter()
        .chain(sweep.left)
        .take(CleanupReport::LISTED)
        .collect();
    report.unsearchable = sweep.unsearchable;
    report.duration_ms = started.elapsed().as_millis() as u64;
    if report.incomplete() {
        report.command = Some(command);
    }
    report
}
