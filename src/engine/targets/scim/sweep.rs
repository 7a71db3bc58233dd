//! Cleaning up what a run created on a SCIM target: delete what the ledger holds (cleanup hooks
//! first), then sweep the target for anything else that carries the run's marker as a whole
//! token (a create whose answer was lost); what fails in a way a retry may change (5xx, 429, a
//! broken connection, a timeout) is retried briefly, then again until the deadline once the
//! ledger and the sweep are done ([`crate::engine::targets::retry`]). What cannot be deleted is listed with its last
//! answer and the command that removes it; a target that cannot be searched is said to be so,
//! never reported as clean.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use tokio::time::Instant;

use crate::engine::targets::BoxFuture;
use crate::engine::targets::readback::{self, Presence};
use crate::engine::targets::requests::{self, CleanupRequest};
use crate::engine::targets::retry::Patience;
use crate::http::HttpClient;
use crate::http::client::encode_query;
use crate::ledger::{Claims, Created, Proven, RunId};
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
        // Each only while its id still shows the marked identity it was recorded with.
        Created::User { id, user_name } => {
            CleanupRequest::delete_owned(member("Users", id)?, id, "userName", user_name)
        }
        Created::Group { id, display_name } => {
            CleanupRequest::delete_owned(member("Groups", id)?, id, "displayName", display_name)
        }
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
            // An answer past the body limit, or one that is no answer, comes again the same.
            Ok(Err(e)) if e.kind == crate::metrics::ErrorKind::Payload => return Err(e.to_string()),
            Ok(Err(e)) => e.to_string(),
        };
        if Instant::now() + wait >= deadline {
            return Err(format!("{why} (retried until the deadline)"));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// The sweep's first search of users, asked once before the load (no retry): `Err` says why it
/// cannot be used (its status and the answer's start, or the error).
pub async fn search_once(client: &HttpClient, run_id: &RunId) -> Result<(), String> {
    let filter = encode_query(&format!("userName co \"{run_id}\""));
    let path = format!("/Users?filter={filter}&startIndex=1&count={PAGE}");
    match client.call(Method::GET, &path, None).await {
        Ok(r) if r.status.as_u16() == 200 => match serde_json::from_slice::<ListResponse>(&r.body) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("GET {path}: the answer is not a SCIM ListResponse: {e}")),
        },
        Ok(r) => Err(format!(
            "GET {path} answered HTTP {}: {}",
            r.status.as_u16(),
            crate::redact::sample_bytes(&r.body, true, 120)
        )),
        Err(e) => Err(format!("GET {path}: {e}")),
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

/// The most pages one listing walks: a server that answers `totalResults: 10^12`, or ignores
/// `startIndex` and answers the same page forever, ends the walk here, said as incomplete.
pub const MAX_PAGES: usize = 1_000;
/// The most marked resources one listing keeps (a page may hold more than asked for).
pub const MAX_LISTED: usize = PAGE * MAX_PAGES;
/// The most resources of one kind a sweep tries to delete; beyond, `cleanup` is run again.
pub const MAX_SWEPT: usize = 1_000_000;

/// What one listing found: the marked resources (each id once), and why the walk stopped short
/// of the list's end, when it did.
struct Listing {
    found: Vec<Created>,
    cut: Option<String>,
}

/// Every resource of `kind` whose name carries the marker, page by page, within
/// [`MAX_PAGES`] and [`MAX_LISTED`].
async fn list_marked(
    client: &HttpClient,
    kind: &str,
    run_id: &RunId,
    deadline: Instant,
) -> Result<Listing, Unsearchable> {
    let attr = if kind == "Users" { "userName" } else { "displayName" };
    let filter = encode_query(&format!("{attr} co \"{run_id}\""));
    let mut found = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut start: usize = 1;
    let mut pages = 0;
    loop {
        pages += 1;
        let path = format!("/{kind}?filter={filter}&startIndex={start}&count={PAGE}");
        let reply = search(client, &path, deadline)
            .await
            .map_err(|e| format!("{kind}: {e}"))?;
        if reply.status.as_u16() != 200 {
            let body = crate::redact::sample_bytes(&reply.body, true, 120);
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
            // Whatever the server's filter returned, only whole-token matches are ours; a
            // resource listed again (a server that ignores `startIndex`) is kept once.
            if run_id.marks(&name) && !seen.contains(&r.id) {
                seen.insert(r.id.clone());
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
        start = start.saturating_add(n);
        if n == 0 || start > page.total_results {
            return Ok(Listing { found, cut: None });
        }
        if pages >= MAX_PAGES || found.len() >= MAX_LISTED {
            let cut = format!(
                "{kind}: the listing did not end within {pages} pages ({} marked resources; the target said totalResults {}): the sweep stopped there",
                found.len(),
                page.total_results
            );
            return Ok(Listing { found, cut: Some(cut) });
        }
    }
}

/// How a resource deleted from a SCIM target is read back: a GET of its member path (a hook's
/// own path when it is a DELETE).
pub(super) fn read(client: &Arc<HttpClient>, item: &Created) -> BoxFuture<'static, Presence> {
    let path = match item {
        Created::User { id, .. } => member("Users", id),
        Created::Group { id, .. } => member("Groups", id),
        Created::Undo(u) => return requests::read_back_hook(client, u),
    };
    requests::read_back(client, path)
}

/// Finds what carries `run_id` and deletes it, round after round, until `deadline`: what a
/// round could not delete is not tried again, and what the last round still lists is left.
/// The deletes are claims: [`settle`] reads them back. `made_no_group`: the run created no
/// group, so a target without a `/Groups` collection (404) has none of the run's to find;
/// otherwise (the run made groups, or `provbench cleanup`, which cannot know) a 404 there leaves
/// the target unsearched.
async fn sweep_marked(
    client: &Arc<HttpClient>,
    run_id: &RunId,
    deadline: Instant,
    made_no_group: bool,
) -> requests::Round {
    let mut report = CleanupReport::default();
    let mut left_behind = Vec::new();
    let mut claimed = Vec::new();
    let mut later = Vec::new();
    for kind in ["Users", "Groups"] {
        let mut tried: HashSet<String> = HashSet::new();
        let mut still: Vec<LeftBehind> = Vec::new();
        let mut cut: Option<String> = None;
        loop {
            let found = match list_marked(client, kind, run_id, deadline).await {
                Ok(listing) => {
                    cut = listing.cut;
                    listing.found
                }
                // No Groups collection, and no group of the run's to look for in it.
                Err(Unsearchable { absent: true, .. }) if kind == "Groups" && made_no_group => break,
                Err(Unsearchable { why, .. }) => {
                    cut = None;
                    report.timed_out |= why.contains("timed out");
                    report.unsearchable.push(why);
                    break;
                }
            };
            let fresh: Vec<Created> = found.into_iter().filter(|c| !tried.contains(c.id())).collect();
            if fresh.is_empty() {
                break;
            }
            if tried.len() + fresh.len() > MAX_SWEPT {
                cut = Some(format!(
                    "{kind}: more than {MAX_SWEPT} resources carry the marker: the sweep stopped there"
                ));
                break;
            }
            tried.extend(fresh.iter().map(|c| c.id().to_string()));
            let round = requests::delete_all(client.clone(), fresh, deadline, request, Patience::Brief).await;
            report.add_counts(&round.report);
            let listed = readback::Among::left(&round.left);
            still.retain(|l| !listed.has(l));
            still.extend(round.left);
            claimed.extend(round.claimed);
            later.extend(round.again);
        }
        // A list that did not end (or a sweep that stopped) is not a list of what is left.
        if let Some(why) = cut {
            report.unsearchable.push(why);
        }
        left_behind.extend(still);
    }
    requests::Round {
        report,
        left: left_behind,
        claimed,
        again: later,
    }
}

/// The last of a cleanup's deletes: what the ledger's tries (`ledger`) and the sweep's handed
/// back still failing, tried again until the deadline now that everything else had its turn
/// (a few resources a target will not delete never use up the time the others need). One the
/// sweep has decided since (deleted, left for a reason no retry changes, handed back itself) is
/// not tried again for the ledger. What this deletes and leaves joins the sweep's.
async fn retry_last(
    client: &Arc<HttpClient>,
    ledger: Vec<(Created, String)>,
    sweep: &mut requests::Round,
    deadline: Instant,
) {
    let ledger: Vec<(Created, String)> = {
        let decided = readback::Among::created(sweep.claimed.iter().chain(sweep.again.iter().map(|(c, _)| c)));
        let listed = readback::Among::left(&sweep.left);
        ledger
            .into_iter()
            .filter(|(c, _)| !decided.has_created(c) && !listed.has(&readback::left(c, String::new())))
            .collect()
    };
    let mut again = std::mem::take(&mut sweep.again);
    again.extend(ledger);
    let last = requests::delete_again(client.clone(), again, deadline, request).await;
    sweep.absorb(last);
}

/// Ends a cleanup: what earlier deletes could not remove stays left unless a read shows it gone
/// (a search that no longer lists it proves nothing: a filter may be ignored); every delete
/// answered as done is read back ([`readback::confirm`]); the rest is counted and listed.
async fn settle(
    client: &Arc<HttpClient>,
    mut report: CleanupReport,
    carried: Vec<LeftBehind>,
    sweep: requests::Round,
    (mut claimed, proven): (Vec<Created>, &Proven),
    deadline: Instant,
    started: Instant,
) -> CleanupReport {
    report.add_counts(&sweep.report);
    report.unsearchable = sweep.report.unsearchable;
    let mut left = sweep.left;
    claimed.extend(sweep.claimed);
    // What the ledger could not delete, and the sweep neither deleted nor listed as left.
    let unknown: Vec<LeftBehind> = {
        let (deleted, listed) = (readback::Among::created(&claimed), readback::Among::left(&left));
        carried
            .into_iter()
            .filter(|l| !deleted.has(l) && !listed.has(l))
            .collect()
    };
    let (hooks, resources): (Vec<LeftBehind>, Vec<LeftBehind>) =
        unknown.into_iter().partition(|l| l.kind == readback::HOOK);
    left.extend(hooks);
    let as_created = |l: &LeftBehind| match l.kind.as_str() {
        "group" => Created::Group {
            id: l.id.clone(),
            display_name: l.name.clone(),
        },
        _ => Created::User {
            id: l.id.clone(),
            user_name: l.name.clone(),
        },
    };
    let there = readback::still_there(resources.iter().map(as_created).collect(), deadline, |c| {
        read(client, c)
    })
    .await;
    let found = readback::Among::created(there.iter().map(|(c, _)| c));
    let found: Vec<LeftBehind> = resources.into_iter().filter(|l| found.has(l)).collect();
    left.extend(found);
    let (verified, unverified) = readback::confirm_after(claimed, proven, deadline, |c| read(client, c)).await;
    report.verified += verified;
    left.extend(unverified);
    requests::close(report, left, started)
}

/// What a sweep would delete, deleting nothing (`provbench cleanup --force` without `--yes`).
pub async fn list(client: &HttpClient, run_id: &RunId, deadline: Instant) -> Result<Vec<Created>, String> {
    let mut all = Vec::new();
    for kind in ["Users", "Groups"] {
        let listing = list_marked(client, kind, run_id, deadline).await.map_err(|u| u.why)?;
        // A list that did not end is no list of what would go.
        if let Some(why) = listing.cut {
            return Err(why);
        }
        all.extend(listing.found);
    }
    Ok(all)
}

/// Everything that carries `run_id`, found by search, deleted and read back (`provbench cleanup`).
pub async fn sweep(client: Arc<HttpClient>, run_id: &RunId, deadline: Instant) -> CleanupReport {
    let started = Instant::now();
    // Whether that run made groups is not known here: a 404 on /Groups stays unsearched.
    let mut round = sweep_marked(&client, run_id, deadline, false).await;
    retry_last(&client, vec![], &mut round, deadline).await;
    settle(
        &client,
        CleanupReport::default(),
        vec![],
        round,
        (vec![], &Proven::default()),
        deadline,
        started,
    )
    .await
}

/// Everything a run's cleanup does: the ledger first, then the sweep, then the read-back of every
/// delete and of the users the journeys deleted (`deleted`); the report says what is left and
/// how to remove it (`command` is `provbench cleanup …` for this run's target).
///
/// Cleanup hooks go first (what a custom operation made may hang on a user deleted after).
/// `command` is `None` for a target that cannot be searched for the marker (kind `http`): only
/// the ledger is cleaned (and read back), and what is left is listed.
pub async fn clean_up(
    client: Arc<HttpClient>,
    items: Vec<Created>,
    deleted: Claims,
    run_id: &RunId,
    limit: Duration,
    command: Option<String>,
) -> CleanupReport {
    let started = Instant::now();
    let deadline = started + limit;
    let items_had_group = items.iter().any(|c| matches!(c, Created::Group { .. }));
    let (undo, items): (Vec<Created>, Vec<Created>) = items.into_iter().partition(|c| matches!(c, Created::Undo(_)));
    // What a custom operation made may hang on a user: its hooks keep half the time for their
    // retries before the users go (what still fails is retried last).
    let hooks = Patience::Until(started + limit / 2);
    let mut first = requests::delete_all(client.clone(), undo, deadline, request, hooks).await;
    first.absorb(requests::delete_all(client.clone(), items, deadline, request, Patience::Brief).await);
    let mut claimed = first.claimed;
    claimed.extend(deleted.unread);
    let mut sweep = match &command {
        Some(_) => sweep_marked(&client, run_id, deadline, !items_had_group).await,
        None => requests::Round::default(),
    };
    retry_last(&client, first.again, &mut sweep, deadline).await;
    let mut report = settle(
        &client,
        first.report,
        first.left,
        sweep,
        (claimed, &deleted.proven),
        deadline,
        started,
    )
    .await;
    if report.incomplete() {
        report.command = command;
    }
    report
}
