//! Cleaning up what a run created in a directory, with the SCIM cleanup's rules: delete what the
//! ledger holds, then search for entries whose name carries the run's marker as a whole token
//! and delete those too. Groups go first, so no group keeps a member that is about to vanish.
//! `busy`, `unavailable`, timeouts and broken connections are retried briefly, then until the
//! deadline once everything else is done ([`crate::engine::targets::retry`]).
//!
//! [`owned`] is the directory's ownership gate, the only way to a delete: an entry is the run's
//! when its DN is `{naming attribute}={value},{base}`, one level under the base the run writes
//! to, with the marker in that RDN value. Another value of the naming attribute, another
//! attribute, an entry elsewhere in the tree (the bind account) never count.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::targets::BoxFuture;
use crate::engine::targets::readback::{self, Presence};
use crate::engine::targets::requests::{self, Round};
use crate::engine::targets::retry::{self, Patience, Try};
use crate::ldap::{Directory, Removed, Scope, dn, ldap_escape};
use crate::ledger::{Claims, Created, RunId};
use crate::metrics::ErrorKind;
use crate::results::CleanupReport;
use crate::workload::directory::LdapTarget;

/// One try of deleting `item`'s DN; `busy` (51), `unavailable` (52) and a broken or slow
/// connection may pass on another.
async fn attempt(dir: &Directory, item: Created, deadline: Instant) -> (Created, Try<Result<Removed, String>>) {
    let end = match tokio::time::timeout_at(deadline, dir.delete(item.id())).await {
        Err(_) => Try::Cut,
        Ok(Ok(removed)) => Try::Ended(Ok(removed)),
        Ok(Err(e)) if e.kind != ErrorKind::Status || e.detail.contains(" 51 ") || e.detail.contains(" 52 ") => {
            Try::Again(e.to_string())
        }
        Ok(Err(e)) => Try::Ended(Err(e.detail)),
    };
    (item, end)
}

/// What names an entry in a set of DNs ([`dn::key`]).
type DnKey = Result<Vec<(String, String)>, String>;

/// The RDN value of `dn` when the entry is the run's: named by `attribute` directly under `base`,
/// the value carrying `run_id` as a whole token.
pub fn owned(dn: &str, attribute: &str, base: &str, run_id: &RunId) -> Option<String> {
    let rdn = crate::ldap::dn::first_rdn(dn)?;
    (rdn.attribute.eq_ignore_ascii_case(attribute)
        && crate::ldap::dn::same(rdn.parent, base)
        && run_id.marks(&rdn.value))
    .then_some(rdn.value)
}

/// Deletes each item the gate lets through, one at a time and in order (groups go before their
/// members), retrying with `patience` ([`retry`]), into `round`: what the directory
/// says is gone is claimed (to be read back), what stays is left, what still fails after brief
/// patience is handed back ([`Round::again`]).
async fn delete_all(
    dir: &Directory,
    items: Vec<Created>,
    gate: impl Fn(&Created) -> bool,
    deadline: Instant,
    patience: Patience,
    round: &mut Round,
) {
    round.report.attempted += items.len() as u64;
    let (jobs, refused): (Vec<Created>, Vec<Created>) = items.into_iter().partition(|c| gate(c));
    round.left.extend(refused.iter().map(|item| {
        readback::left(
            item,
            "not deleted: its DN is not one the run writes (marker in its RDN, under its base)".into(),
        )
    }));
    let out = retry::first(jobs, 1, deadline, patience, |c| attempt(dir, c, deadline)).await;
    take(round, out, patience);
}

/// Tries again, until `deadline`, what the tries before handed back, once everything else had
/// its turn: a few entries the directory will not delete never use up the time the others need.
async fn delete_again(dir: &Directory, deadline: Instant, round: &mut Round) {
    let again = std::mem::take(&mut round.again);
    let out = retry::again(again, 1, deadline, |c| attempt(dir, c, deadline)).await;
    take(round, out, Patience::Deadline);
}

/// Counts what the tries did into `round`.
fn take(round: &mut Round, out: retry::Outcome<Created, Result<Removed, String>>, patience: Patience) {
    round.report.retries += out.retries;
    round.report.timed_out |= out.timed_out;
    for (item, end) in out.ended {
        match end {
            Ok(Removed::Deleted) => {
                round.report.deleted += 1;
                round.claimed.push(item);
            }
            Ok(Removed::AlreadyGone) => {
                round.report.already_gone += 1;
                round.claimed.push(item);
            }
            Err(reason) => round.left.push(readback::left(&item, reason)),
        }
    }
    for (item, why) in out.failing {
        match patience {
            Patience::Deadline => round.left.push(readback::left(&item, why)),
            Patience::Brief | Patience::Until(_) => round.again.push((item, why)),
        }
    }
}

/// How a deleted entry is read back: a base search of its DN, which finds nothing once it is gone.
pub(super) fn read<'a>(dir: &'a Directory, item: &Created) -> BoxFuture<'a, Presence> {
    let dn = item.id().to_string();
    Box::pin(async move {
        match dir.search(&dn, Scope::Base, "(objectClass=*)", &["1.1"], Some(1)).await {
            Ok(found) if found.is_empty() => Presence::Gone,
            Ok(_) => Presence::Present("a search still finds the entry".into()),
            Err(e) => Presence::Unknown(format!("a search failed: {e}")),
        }
    })
}

/// The entries one search reads; a sweep that finds more deletes them and searches again.
const PAGE: i32 = crate::ldap::MAX_ENTRIES as i32;
/// The searches one sweep of a base makes at most (with [`PAGE`], a million entries).
const MAX_SEARCHES: usize = 100;

/// The entries directly under `base` that the gate says are the run's (the search narrows, the
/// DN decides), at most [`PAGE`] of them, and whether the directory holds more.
async fn marked(
    dir: &Directory,
    base: &str,
    attribute: &str,
    run_id: &RunId,
    group: bool,
) -> Result<(Vec<Created>, bool), String> {
    let filter = format!("({attribute}=*{}*)", ldap_escape(run_id.as_str()));
    let (found, more) = dir
        .search_some(base, Scope::OneLevel, &filter, &["1.1"], PAGE)
        .await
        .map_err(|e| format!("{base}: {e}"))?;
    let owned = found
        .into_iter()
        .filter_map(|e| {
            let name = owned(&e.dn, attribute, base, run_id)?;
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
        .collect();
    Ok((owned, more))
}

/// Searches `base` for the run's entries and deletes them, search after search while the
/// directory says it holds more, within [`MAX_SEARCHES`] and `deadline`, into `round`; what is
/// `known` (the ledger tried it) is not tried again. A search that failed, or a list that did
/// not end, is `unsearchable`.
async fn sweep_base(
    dir: &Directory,
    (base, attribute, group): (&str, &str, bool),
    run_id: &RunId,
    known: &HashSet<DnKey>,
    deadline: Instant,
    round: &mut Round,
) {
    let mut tried = known.clone();
    for searches in 1..=MAX_SEARCHES {
        let (found, more) = match tokio::time::timeout_at(deadline, marked(dir, base, attribute, run_id, group)).await {
            Err(_) => {
                round.report.timed_out = true;
                round
                    .report
                    .unsearchable
                    .push(format!("{base}: cleanup timed out while searching"));
                break;
            }
            Ok(Err(why)) => {
                round.report.unsearchable.push(why);
                break;
            }
            Ok(Ok(listed)) => listed,
        };
        // By what a DN names, not its spelling: a directory answers in its own case (`ou=People`
        // for the `ou=people` the run wrote), and an entry the ledger tried is not swept again.
        let fresh: Vec<Created> = found.into_iter().filter(|c| tried.insert(dn::key(c.id()))).collect();
        let progress = !fresh.is_empty();
        let gate = |c: &Created| owned(c.id(), attribute, base, run_id).is_some();
        delete_all(dir, fresh, gate, deadline, Patience::Brief, round).await;
        if !more {
            break;
        }
        // More than a search reads: what it found is deleted, so the next search shows the
        // rest; a search that finds nothing new, or the last one allowed, ends the sweep.
        if !progress || searches == MAX_SEARCHES {
            round.report.unsearchable.push(format!(
                "{base}: the directory holds more than {PAGE} entries matching the marker, and the sweep stopped after {searches} searches"
            ));
            break;
        }
    }
}

/// What a sweep would delete (`provbench cleanup --force` without `--yes`): the entries the
/// gate lets through under the groups' base and the users' base.
pub async fn list(dir: &Directory, t: &LdapTarget, run_id: &RunId) -> Result<Vec<Created>, String> {
    let mut all = marked(dir, &t.groups.base_dn, "cn", run_id, true).await?.0;
    all.extend(marked(dir, &t.base_dn, &t.rdn, run_id, false).await?.0);
    Ok(all)
}

/// The ledger's entries, then the sweep; `command` is how to finish the job by hand.
pub async fn clean_up(
    dir: &Directory,
    t: &LdapTarget,
    items: Vec<Created>,
    deleted: Claims,
    run_id: &RunId,
    limit: Duration,
    command: String,
) -> CleanupReport {
    let started = Instant::now();
    let deadline = started + limit;
    let mut round = Round::default();
    let (groups, users): (Vec<Created>, Vec<Created>) =
        items.into_iter().partition(|c| matches!(c, Created::Group { .. }));
    let group_gate = |c: &Created| owned(c.id(), "cn", &t.groups.base_dn, run_id).is_some();
    let user_gate = |c: &Created| owned(c.id(), &t.rdn, &t.base_dn, run_id).is_some();
    // Groups go before their members: they keep half the time for their retries before the
    // users go (what still fails is retried last).
    let groups_first = Patience::Until(started + limit / 2);
    delete_all(dir, groups, group_gate, deadline, groups_first, &mut round).await;
    delete_all(dir, users, user_gate, deadline, Patience::Brief, &mut round).await;
    // What the ledger deleted is read back, and what it could not delete stays listed (or is
    // retried last): the sweep looks for the rest. (A replica that still lists a deleted entry,
    // in its own spelling, would otherwise get it deleted and counted twice.)
    let known: HashSet<DnKey> = round
        .left
        .iter()
        .map(|l| dn::key(&l.id))
        .chain(round.again.iter().map(|(c, _)| dn::key(c.id())))
        .chain(round.claimed.iter().map(|c| dn::key(c.id())))
        .collect();
    for base in [
        (t.groups.base_dn.as_str(), "cn", true),
        (t.base_dn.as_str(), t.rdn.as_str(), false),
    ] {
        sweep_base(dir, base, run_id, &known, deadline, &mut round).await;
    }
    delete_again(dir, deadline, &mut round).await;
    // Every delete the directory confirmed is read back, with the entries the journeys deleted.
    let Round {
        mut report,
        mut left,
        mut claimed,
        ..
    } = round;
    claimed.extend(deleted.unread);
    let (verified, unverified) = readback::confirm_after(claimed, &deleted.proven, deadline, |c| read(dir, c)).await;
    report.verified += verified;
    left.extend(unverified);
    let mut report = requests::close(report, left, started);
    if report.incomplete() {
        report.command = Some(command);
    }
    report
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::owned;
    use crate::ldap::dn_escape;
    use crate::ledger::RunId;

    const BASE: &str = "ou=people,dc=example,dc=test";

    #[test]
    fn the_entries_seen_deleted_are_not_the_runs() {
        let run = RunId::parse("pb-ldaptest1").unwrap();
        // The bind account, outside the base; a second uid value; a lookalike; another level.
        assert_eq!(owned("cn=admin,dc=example,dc=test", "uid", BASE, &run), None);
        assert_eq!(owned("uid=alice,ou=people,dc=example,dc=test", "uid", BASE, &run), None);
        assert_eq!(
            owned("uid=pb-ldaptest10-1,ou=people,dc=example,dc=test", "uid", BASE, &run),
            None
        );
        assert_eq!(
            owned(
                "uid=pb-ldaptest1-1,ou=x,ou=people,dc=example,dc=test",
                "uid",
                BASE,
                &run
            ),
            None
        );
        assert_eq!(
            owned("cn=pb-ldaptest1-1,ou=people,dc=example,dc=test", "uid", BASE, &run),
            None
        );
        assert_eq!(
            owned(
                "uid=pb-ldaptest1-1+cn=x,ou=people,dc=example,dc=test",
                "uid",
                BASE,
                &run
            ),
            None
        );
        assert_eq!(
            owned("UID=pb-ldaptest1-5,OU=People, dc=example,dc=test", "uid", BASE, &run).as_deref(),
            Some("pb-ldaptest1-5")
        );
    }

    proptest! {
        /// Whatever DN a directory lists, it is the run's exactly when it was built as the run
        /// builds its entries: the naming attribute, a value with the marker, directly under
        /// the base.
        #[test]
        fn only_an_rdn_with_the_marker_directly_under_the_base_is_owned(
            attribute in prop_oneof![Just("uid"), Just("UID"), Just("cn"), Just("mail")],
            prefix in prop_oneof![Just(""), Just("x"), Just("a,b "), Just("+"), Just("="), Just("\\")],
            marker in prop_oneof![Just("pb-ldaptest1"), Just("pb-ldaptest10"), Just("xpb-ldaptest1"), Just("")],
            suffix in prop_oneof![Just(""), Just("-7"), Just("5"), Just(",ou=x"), Just(" ")],
            parent in prop_oneof![
                Just(BASE.to_string()),
                Just("OU=People,DC=example,DC=test".to_string()),
                Just("ou=x,ou=people,dc=example,dc=test".to_string()),
                Just("dc=example,dc=test".to_string()),
                Just("ou=people,dc=example,dc=test,dc=evil".to_string()),
            ],
        ) {
            let run = RunId::parse("pb-ldaptest1").unwrap();
            let value = format!("{prefix}{marker}{suffix}");
            let dn = format!("{attribute}={},{parent}", dn_escape(value.as_str()));
            let expected = attribute.eq_ignore_ascii_case("uid")
                && parent.eq_ignore_ascii_case(BASE)
                && run.marks(&value);
            let got = owned(&dn, "uid", BASE, &run);
            prop_assert_eq!(got.is_some(), expected, "{}", dn);
            if let Some(v) = got {
                prop_assert_eq!(v, value);
            }
        }
    }
}
