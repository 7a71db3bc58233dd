//! Cleaning up what a run created: delete what the ledger holds, retrying what fails (5xx, 429,
//! a broken connection, a timeout) with back-off until the deadline, then sweep the target for
//! anything else that carries the run's marker as a whole token (a create whose answer was lost).
//! What cannot be deleted is listed with its last answer and the command that removes it; a
//! target that cannot be searched is said to be so, never reported as clean.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::client::Extras;
use crate::http::client::encode_query;
use crate::http::{CallError, HttpClient};
use crate::ledger::{Created, RunId, UndoRequest};
use crate::results::{CleanupReport, LeftBehind};

const CONCURRENCY: usize = 16;
const PAGE: usize = 200;

/// How one delete ended.
enum Deleted {
    Done,
    AlreadyGone,
    Left(String),
}

/// Deletes `item`, retrying what may pass on a second try, until `deadline`.
async fn delete_one(client: &HttpClient, item: &Created, deadline: Instant, report: &mut CleanupReport) -> Deleted {
    let (method, path, body, extras, expect) = match item {
        Created::User { id, .. } => (Method::DELETE, format!("/Users/{id}"), None, Extras::default(), &[][..]),
        Created::Group { id, .. } => (
            Method::DELETE,
            format!("/Groups/{id}"),
            None,
            Extras::default(),
            &[][..],
        ),
        Created::Undo(u) => match undo_request(u) {
            Ok((method, extras)) => (
                method,
                u.path.clone(),
                u.body.clone().map(Bytes::from),
                extras,
                &u.expect[..],
            ),
            Err(why) => return Deleted::Left(why),
        },
    };
    let undo = matches!(item, Created::Undo(_));
    let mut wait = Duration::from_millis(100);
    loop {
        let sent =
            tokio::time::timeout_at(deadline, client.call_with(method.clone(), &path, body.clone(), &extras)).await;
        let why = match sent {
            Err(_) => return Deleted::Left("cleanup timed out".into()),
            Ok(Ok(r)) => {
                report.rate_limited += u64::from(r.rate_limited) + u64::from(r.status.as_u16() == 429);
                let status = r.status.as_u16();
                match status {
                    // A cleanup hook's own statuses (or any 2xx) say it is done.
                    _ if undo && (expect.contains(&status) || (expect.is_empty() && r.status.is_success())) => {
                        return Deleted::Done;
                    }
                    _ if !undo && r.confirms_delete() => return Deleted::Done,
                    s @ 200..=299 => {
                        let body = String::from_utf8_lossy(&r.body[..r.body.len().min(80)]).into_owned();
                        return Deleted::Left(format!("HTTP {s} whose body does not confirm a delete: {body}"));
                    }
                    404 | 410 => return Deleted::AlreadyGone,
                    s @ (429 | 500..=599) => format!("HTTP {s}"),
                    // 4xx other than 404/429 will not change on a retry.
                    s => return Deleted::Left(format!("HTTP {s}")),
                }
            }
            Ok(Err(CallError { kind, detail })) => format!("{}: {detail}", kind.name()),
        };
        if Instant::now() + wait >= deadline {
            return Deleted::Left(why);
        }
        report.retries += 1;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// The method and headers of a cleanup hook's request.
fn undo_request(u: &UndoRequest) -> Result<(Method, Extras), String> {
    let method = Method::from_bytes(u.method.as_bytes()).map_err(|e| format!("{}: {e}", u.op))?;
    let mut extras = Extras::default();
    for (k, v) in &u.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("{}: header {k}: {e}", u.op))?;
        let value = HeaderValue::from_str(v).map_err(|e| format!("{}: header {k}: {e}", u.op))?;
        extras.headers.insert(name, value);
    }
    Ok((method, extras))
}

fn left(item: &Created, reason: String) -> LeftBehind {
    LeftBehind {
        kind: match item {
            Created::User { .. } => "user",
            Created::Group { .. } => "group",
            Created::Undo(_) => "cleanup hook",
        }
        .into(),
        id: item.id().to_string(),
        name: item.name().to_string(),
        reason,
    }
}

/// Deletes `items` until `deadline`, a few at a time.
pub async fn delete_all(
    client: Arc<HttpClient>,
    items: Vec<Created>,
    deadline: Instant,
) -> (CleanupReport, Vec<LeftBehind>) {
    let started = Instant::now();
    let mut report = CleanupReport::default();
    let mut leftovers = Vec::new();
    let mut tasks = JoinSet::new();
    let mut pending = items.into_iter();
    loop {
        while tasks.len() < CONCURRENCY {
            let Some(item) = pending.next() else { break };
            report.attempted += 1;
            let client = client.clone();
            tasks.spawn(async move {
                let mut counts = CleanupReport::default();
                let end = delete_one(&client, &item, deadline, &mut counts).await;
                (item, end, counts)
            });
        }
        let Some(joined) = tasks.join_next().await else { break };
        let Ok((item, end, counts)) = joined else { continue };
        report.retries += counts.retries;
        report.rate_limited += counts.rate_limited;
        match end {
            Deleted::Done => report.deleted += 1,
            Deleted::AlreadyGone => report.already_gone += 1,
            Deleted::Left(why) => {
                report.timed_out |= why == "cleanup timed out";
                leftovers.push(left(&item, why));
            }
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    (report, leftovers)
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

/// Every resource of `kind` whose name carries the marker, page by page.
async fn list_marked(
    client: &HttpClient,
    kind: &str,
    run_id: &RunId,
    deadline: Instant,
) -> Result<Vec<Created>, String> {
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
            return Err(format!(
                "{kind}: HTTP {} to a filtered search: {body}",
                reply.status.as_u16()
            ));
        }
        let page: ListResponse = serde_json::from_slice(&reply.body)
            .map_err(|e| format!("{kind}: the search answer is not a SCIM ListResponse: {e}"))?;
        let n = page.resources.len();
        for r in page.resources {
            let name = r.user_name.or(r.display_name).unwrap_or_default();
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
/// be searched).
pub async fn sweep_marked(
    client: Arc<HttpClient>,
    run_id: &RunId,
    deadline: Instant,
    carried: Vec<LeftBehind>,
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
                Err(why) => {
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
            let (round, left) = delete_all(client.clone(), fresh, deadline).await;
            absorb(&mut report, round);
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

/// Adds a round's counts (not its duration or list).
pub fn absorb(into: &mut CleanupReport, round: CleanupReport) {
    into.attempted += round.attempted;
    into.deleted += round.deleted;
    into.already_gone += round.already_gone;
    into.retries += round.retries;
    into.rate_limited += round.rate_limited;
    into.timed_out |= round.timed_out;
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
    let (undo, items): (Vec<Created>, Vec<Created>) = items.into_iter().partition(|c| matches!(c, Created::Undo(_)));
    let (mut report, mut left) = delete_all(client.clone(), undo, deadline).await;
    let (round, more) = delete_all(client.clone(), items, deadline).await;
    absorb(&mut report, round);
    left.extend(more);
    let Some(command) = command else {
        report.failed = left.len() as u64;
        left.truncate(CleanupReport::LISTED);
        report.left = left;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return report;
    };
    let undone: Vec<LeftBehind> = left.iter().filter(|l| l.kind == "cleanup hook").cloned().collect();
    let sweep = sweep_marked(client, run_id, deadline, left).await;
    absorb(&mut report, sweep.clone());
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
