//! Cleaning up what a run created in a directory, with the SCIM cleanup's rules: delete what the
//! ledger holds (retrying `busy`, `unavailable`, timeouts and broken connections until the
//! deadline), then search for entries whose naming value carries the run's marker as a whole
//! token and delete those too; an entry whose name does not carry it is never touched. Groups go
//! first, so no group keeps a member that is about to vanish.

use std::time::Duration;

use tokio::time::Instant;

use crate::ldap::{Directory, Removed, Scope, ldap_escape};
use crate::ledger::{Created, RunId};
use crate::metrics::ErrorKind;
use crate::results::{CleanupReport, LeftBehind};
use crate::workload::directory::LdapTarget;

/// Deletes `dn`, retrying what may pass on a second try, until `deadline`.
async fn delete_one(
    dir: &Directory,
    dn: &str,
    deadline: Instant,
    report: &mut CleanupReport,
) -> Result<Removed, String> {
    let mut wait = Duration::from_millis(100);
    loop {
        let why = match tokio::time::timeout_at(deadline, dir.delete(dn)).await {
            Err(_) => return Err("cleanup timed out".into()),
            Ok(Ok(removed)) => return Ok(removed),
            // busy (51), unavailable (52) and a broken or slow connection may pass on a retry.
            Ok(Err(e)) if e.kind != ErrorKind::Status || e.detail.contains(" 51 ") || e.detail.contains(" 52 ") => {
                e.to_string()
            }
            Ok(Err(e)) => return Err(e.detail),
        };
        if Instant::now() + wait >= deadline {
            return Err(why);
        }
        report.retries += 1;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Deletes each item, counting into `report`; what stays is returned.
async fn delete_all(
    dir: &Directory,
    items: &[Created],
    deadline: Instant,
    report: &mut CleanupReport,
) -> Vec<LeftBehind> {
    let mut left = Vec::new();
    for item in items {
        report.attempted += 1;
        match delete_one(dir, item.id(), deadline, report).await {
            Ok(Removed::Deleted) => report.deleted += 1,
            Ok(Removed::AlreadyGone) => report.already_gone += 1,
            Err(reason) => {
                report.timed_out |= reason == "cleanup timed out";
                left.push(LeftBehind {
                    kind: if matches!(item, Created::Group { .. }) {
                        "group"
                    } else {
                        "user"
                    }
                    .into(),
                    id: item.id().to_string(),
                    name: item.name().to_string(),
                    reason,
                });
            }
        }
    }
    left
}

/// The entries under `base` whose `attribute` carries `run_id` as a whole token.
async fn marked(
    dir: &Directory,
    base: &str,
    attribute: &str,
    run_id: &RunId,
    group: bool,
) -> Result<Vec<Created>, String> {
    let filter = format!("({attribute}=*{}*)", ldap_escape(run_id.as_str()));
    let found = dir
        .search(base, Scope::Subtree, &filter, &[attribute], None)
        .await
        .map_err(|e| format!("{base}: {e}"))?;
    Ok(found
        .into_iter()
        .filter_map(|e| {
            let name = e
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
                .and_then(|(_, v)| v.iter().find(|v| run_id.marks(v)).cloned())?;
            Some(if group {
                Created::Group {
                    id: e.dn,
                    display_name: name,
                }
            } else {
                Created::User {
                    id: e.dn,
                    user_name: name,
                }
            })
        })
        .collect())
}

/// The ledger's entries, then the sweep; `command` is how to finish the job by hand.
pub async fn clean_up(
    dir: &Directory,
    t: &LdapTarget,
    items: Vec<Created>,
    run_id: &RunId,
    limit: Duration,
    command: String,
) -> CleanupReport {
    let started = Instant::now();
    let deadline = started + limit;
    let mut report = CleanupReport::default();
    let (groups, users): (Vec<Created>, Vec<Created>) =
        items.into_iter().partition(|c| matches!(c, Created::Group { .. }));
    let mut left = delete_all(dir, &groups, deadline, &mut report).await;
    left.extend(delete_all(dir, &users, deadline, &mut report).await);
    let mut still = Vec::new();
    for (base, attribute, group) in [(&t.groups.base_dn, "cn", true), (&t.base_dn, t.rdn.as_str(), false)] {
        match marked(dir, base, attribute, run_id, group).await {
            Ok(found) => {
                let fresh: Vec<Created> = found
                    .into_iter()
                    .filter(|c| !left.iter().any(|l| l.id == c.id()))
                    .collect();
                still.extend(delete_all(dir, &fresh, deadline, &mut report).await);
            }
            Err(why) => report.unsearchable.push(why),
        }
    }
    // What the ledger could not delete stays listed, as does what the sweep found and could not.
    left.extend(still);
    report.failed = left.len() as u64;
    left.truncate(CleanupReport::LISTED);
    report.left = left;
    report.duration_ms = started.elapsed().as_millis() as u64;
    if report.incomplete() {
        report.command = Some(command);
    }
    report
}
