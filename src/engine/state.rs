//! What a journey step works on, whatever the protocol: the run-wide [`Run`] every admin shares
//! (workload, run id, sequence numbers, the pool, the probes and checks, the ledger), one admin's
//! own [`AdminState`], and one journey's [`JourneyState`] (its current user and group), with the
//! helpers every target's steps use on them: borrow a pooled user, make the user a create just
//! made, hand an acknowledged write to the probes.
//!
//! The target protocols in [`super::targets`] read and change only these; they never see the
//! scheduler around them (the engine's `context::Ctx`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::Rng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use crate::http::{CallError, Reply};
use crate::ledger::{Ledger, RunId};
use crate::metrics::Registry;
use crate::probes::condition::{Expect, UserTrace, numeric_version};
use crate::probes::members::members_for;
use crate::workload::Step;
use crate::workload::probes::JobSource;
use crate::workload::template::Vars;
use crate::workload::{ThinkTime, Workload};

/// An existing user a lookup journey can use.
#[derive(Debug, Clone)]
pub struct PooledUser {
    pub id: Option<String>,
    pub user_name: String,
}

/// What every step of every admin shares during a run.
pub struct Run {
    pub registry: Arc<Registry>,
    pub workload: Arc<Workload>,
    pub run_id: RunId,
    pub(super) seq: AtomicU64,
    pub pool: Vec<PooledUser>,
    /// A group created at set-up for `add_to_group` in journeys that create none.
    pub shared_group: Option<String>,
    /// `[users] roles = "groups"`: each role's group id.
    pub role_groups: std::collections::HashMap<String, String>,
    /// The end of the load: no new journey or step starts.
    pub stop: CancellationToken,
    /// Ctrl-C or SIGTERM: cancels the requests in flight.
    pub interrupt: CancellationToken,
    /// Everything the run created and has not deleted, for cleanup.
    pub ledger: Ledger,
    /// Observes a sample of acknowledged writes (queue delay, sync lag), when configured.
    pub probes: Option<Arc<crate::probes::ProbeHub>>,
    /// Proves the chain for a sample of users (login, permissions, effects, revocation).
    pub checks: Option<Arc<crate::checks::CheckHub>>,
}

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Arc<Registry>,
        workload: Arc<Workload>,
        run_id: RunId,
        ledger: Ledger,
        stop: CancellationToken,
        interrupt: CancellationToken,
        probes: Option<Arc<crate::probes::ProbeHub>>,
        checks: Option<Arc<crate::checks::CheckHub>>,
    ) -> Run {
        Run {
            registry,
            workload,
            run_id,
            seq: AtomicU64::new(1),
            pool: Vec::new(),
            shared_group: None,
            role_groups: Default::default(),
            stop,
            interrupt,
            ledger,
            probes,
            checks,
        }
    }

    /// The next user sequence number: a shard takes every `count`-th one, so shards sharing a
    /// run id never collide.
    pub fn next_seq(&self) -> u64 {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        match self.workload.shard {
            Some(s) => n * s.count as u64 + s.index as u64,
            None => n,
        }
    }

    /// The template variables of admin `admin` for sequence number `seq`.
    pub fn vars(&self, admin: &AdminState, seq: u64) -> Vars<'_> {
        Vars {
            run_id: self.run_id.as_str(),
            seq,
            admin: admin.index,
        }
    }

    pub fn think_time(&self) -> Option<&ThinkTime> {
        match &self.workload.load {
            crate::workload::Load::Closed { think_time, .. } => think_time.as_ref(),
            crate::workload::Load::Open { .. } => None,
        }
    }
}

/// One virtual admin's own state, kept across its journeys (no sharing, no locks).
pub struct AdminState {
    pub index: usize,
    pub rng: SmallRng,
    /// Reused for every rendered body.
    pub body: String,
}

impl AdminState {
    pub fn new(index: usize, rng: SmallRng) -> Self {
        Self {
            index,
            rng,
            body: String::with_capacity(1024),
        }
    }
}

/// The user a journey works on.
#[derive(Default)]
pub struct CurrentUser {
    /// What the target names it by: a SCIM id, an LDAP DN.
    pub id: Option<String>,
    pub user_name: String,
    pub seq: u64,
    /// Created by this journey (so it may be changed and must be cleaned up).
    pub owned: bool,
    /// A read of its id showed the identity it was created with: a SCIM user this journey
    /// created is changed only once it is (`scim::own`, the journeys' ownership gate).
    pub proven: bool,
    pub deleted: bool,
    /// Shared with pending observations of this user's writes: set when it is deleted. Made
    /// when the first observation asks for it ([`CurrentUser::deleted_later`]): a journey no
    /// probe follows allocates none.
    deleted_flag: Option<Arc<AtomicBool>>,
    /// Drawn once per user: when sampled, every write to it is observed (so a delete's
    /// observation knows where the user was seen).
    pub probed: Option<UserTrace>,
    /// Drawn once per user: the checks follow it (login, permissions, effects, revocation).
    pub checked: bool,
    /// Its password, for the login checks (never logged or written).
    pub password: Option<String>,
    pub revocation_started: bool,
}

impl CurrentUser {
    /// Marks the user deleted (for cleanup and for observations still pending).
    pub fn mark_deleted(&mut self) {
        self.deleted = true;
        if let Some(flag) = &self.deleted_flag {
            flag.store(true, Ordering::Release);
        }
    }

    /// The flag an observation of this user's write watches: set once the user is deleted,
    /// whether that was before the observation asked (it starts set) or after.
    pub fn deleted_later(&mut self) -> Arc<AtomicBool> {
        let deleted = self.deleted;
        self.deleted_flag
            .get_or_insert_with(|| Arc::new(AtomicBool::new(deleted)))
            .clone()
    }
}

/// A sampled user's write, as the journey hands it to the probes.
#[derive(Debug)]
pub enum Handed {
    /// Followed: what its services should come to show, and its job reference and version
    /// from its answer.
    Follow(Expect, Option<String>, Option<u64>),
    /// Past the probes' share of requests when it was acknowledged (`ProbeHub::has_room`):
    /// counted, its answer not read for them.
    PassedOver,
}

/// One journey's state, from its first step to its last.
#[derive(Default)]
pub struct JourneyState {
    pub user: Option<CurrentUser>,
    /// The journey's group, while it has one.
    pub group: Option<JourneyGroup>,
    /// The last write to hand to the probes (sampled).
    pub observe: Option<Handed>,
    /// Values custom steps extracted, in order (a later one shadows an earlier one).
    pub vars: Vec<(String, String)>,
    /// The journey's sequence number when no user gives it one (custom steps' `{seq}`).
    pub seq: Option<u64>,
    /// Cleanup owed for what custom steps created: (cleanup operation, its rendered request).
    pub undo: Vec<(usize, crate::ledger::UndoRequest)>,
    /// Owed cleanups the journey ran itself: claims, handed to the ledger at its end.
    pub undone: Vec<crate::ledger::UndoRequest>,
}

impl JourneyState {
    /// Makes `user` the journey's user: the one it held goes to the ledger first (as at the
    /// journey's end), so a second create never drops the first from cleanup. The one way a
    /// journey's user is replaced.
    pub fn hold_user(&mut self, ledger: &Ledger, user: CurrentUser) {
        if let Some(old) = self.user.replace(user) {
            release_user(ledger, old);
        }
    }

    /// As [`JourneyState::hold_user`], for the journey's group.
    pub fn hold_group(&mut self, ledger: &Ledger, group: JourneyGroup) {
        if let Some(old) = self.group.replace(group) {
            release_group(ledger, old);
        }
    }
}

/// Hands what the journey held of `u` to the ledger: a user it created and did not delete is
/// recorded; one whose delete was answered as done is a claim cleanup reads back.
pub fn release_user(ledger: &Ledger, u: CurrentUser) {
    if let (true, Some(id)) = (u.owned, u.id) {
        let user = crate::ledger::Created::User {
            id,
            user_name: u.user_name,
        };
        match u.deleted {
            true => ledger.deleted(user),
            false => {
                ledger.record(user);
            }
        }
    }
}

/// Hands a group the journey created and still owns to the ledger.
pub fn release_group(ledger: &Ledger, g: JourneyGroup) {
    if g.owned {
        ledger.record(crate::ledger::Created::Group {
            id: g.id,
            display_name: g.display_name,
        });
    }
}

/// A group the journey created (and still owns, until it deletes it).
pub struct JourneyGroup {
    pub id: String,
    /// As the target answered it: it carries the run's marker.
    pub display_name: String,
    pub owned: bool,
    /// As [`CurrentUser::proven`]: an LDAP group's DN is the run's by construction.
    pub proven: bool,
}

/// How a step ended.
pub enum StepEnd {
    Done,
    Failed(CallError),
    /// A 429 the admin did not (or could no longer) wait out: counted apart from errors.
    RateLimited,
    /// Ctrl-C or SIGTERM cancelled the request in flight: not recorded, the journey cut short.
    Interrupted,
}

/// A step that failed on what the target answered (or on what the journey lacks).
pub fn payload(detail: impl Into<String>) -> StepEnd {
    StepEnd::Failed(CallError::payload(detail))
}

/// The journey's user, borrowing one from the pool when it has none.
pub fn user<'s>(
    run: &Run,
    admin: &mut AdminState,
    state: &'s mut JourneyState,
) -> Result<&'s mut CurrentUser, StepEnd> {
    if state.user.is_none() {
        if run.pool.is_empty() {
            return Err(payload("no current user: the journey needs create_user first"));
        }
        let PooledUser { id, user_name } = run.pool[admin.rng.random_range(0..run.pool.len())].clone();
        state.user = Some(CurrentUser {
            id,
            user_name,
            probed: draw_probed(run, admin),
            ..Default::default()
        });
    }
    Ok(state.user.as_mut().expect("just set"))
}

pub fn user_id(u: &CurrentUser) -> Result<String, StepEnd> {
    u.id.clone().ok_or_else(no_id)
}

/// The failure of a step that needs the user's id when the journey has none yet.
pub fn no_id() -> StepEnd {
    payload("the current user has no id yet (use find_user first)")
}

/// The current user's id (borrowing a pooled user when the journey has none).
pub fn current_id(run: &Run, admin: &mut AdminState, state: &mut JourneyState) -> Result<String, StepEnd> {
    user_id(user(run, admin, state)?)
}

/// The user a journey just created (`vars` rendered its body): owned, drawn for the probes'
/// and the checks' samples, with its password for the login checks.
pub fn created(run: &Run, admin: &mut AdminState, id: String, user_name: String, vars: &Vars) -> CurrentUser {
    CurrentUser {
        id: Some(id),
        user_name,
        seq: vars.seq,
        owned: true,
        probed: draw_probed(run, admin),
        checked: run
            .checks
            .as_ref()
            .is_some_and(|c| c.sampled(admin.rng.random::<f64>())),
        password: run
            .workload
            .users
            .password
            .as_ref()
            .and_then(|p| serde_json::from_str(&p.render(vars)).ok()),
        ..Default::default()
    }
}

/// Whether a user that just became current is in the probes' sample.
pub fn draw_probed(run: &Run, admin: &mut AdminState) -> Option<UserTrace> {
    let hub = run.probes.as_ref()?;
    hub.sampled(admin.rng.random::<f64>()).then(|| hub.new_trace())
}

/// The step a role change is observed as, and what a linked service then shows.
pub fn role_observed(role: &str, assign: bool) -> (Step, Expect) {
    let role = role.to_string();
    if assign {
        (Step::AssignRole(role.clone()), Expect::RoleHeld(role))
    } else {
        (Step::RemoveRole(role.clone()), Expect::RoleGone(role))
    }
}

/// The probes, when they follow the write `step` of the journey's user. A write they want but
/// that is past their share is marked passed over here, before its answer is read: most sampled
/// writes of a long run are past it, and reading their answers was most of what the probes cost
/// the load.
fn following<'r>(run: &'r Run, state: &mut JourneyState, step: &Step) -> Option<&'r crate::probes::ProbeHub> {
    let hub = run.probes.as_deref()?;
    // The user's draw first: most users are not sampled, and asking the hub is a hash lookup.
    let wanted =
        state.user.as_ref().is_some_and(|u| u.probed.is_some()) && step.builtin().is_some_and(|op| hub.wants(op));
    if !wanted {
        return None;
    }
    if !hub.has_room() {
        state.observe = Some(Handed::PassedOver);
        return None;
    }
    Some(hub)
}

/// Marks the HTTP write just acknowledged for observation, when probes want it and it is
/// sampled; its job reference and version come from the answer.
pub fn want_observation(
    run: &Run,
    state: &mut JourneyState,
    step: &Step,
    reply: &Reply,
    expect: impl FnOnce() -> Expect,
) {
    let Some(hub) = following(run, state, step) else {
        return;
    };
    const VERSION: &str = "/meta/version";
    // The answer is read once, and only the members these pointers start at (a whole user as a
    // `serde_json::Value`, read twice, was most of what an observed write cost the journey).
    let (doc, job) = match hub.job_source() {
        Some(JobSource::Header(_)) => (members_for(&reply.body, &[VERSION]), reply.captured.clone()),
        Some(JobSource::Pointer(p)) => {
            let doc = members_for(&reply.body, &[VERSION, p]);
            let job = doc.as_ref().and_then(|v| match v.pointer(p) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            });
            (doc, job)
        }
        None => (members_for(&reply.body, &[VERSION]), None),
    };
    let version = doc.as_ref().and_then(|v| v.pointer(VERSION)).and_then(numeric_version);
    state.observe = Some(Handed::Follow(expect(), job, version));
}

/// As [`want_observation`] for a write whose answer carries neither a job nor a version (LDAP).
pub fn want_observation_of(run: &Run, state: &mut JourneyState, step: &Step, expect: impl FnOnce() -> Expect) {
    if following(run, state, step).is_some() {
        state.observe = Some(Handed::Follow(expect(), None, None));
    }
}

/// What the journeys need before the load starts, made by the target at set-up.
#[derive(Default)]
pub struct Staged {
    pub pool: Vec<PooledUser>,
    pub shared_group: Option<String>,
    /// `[users] roles = "groups"`: each role's group id, by role.
    pub role_groups: std::collections::HashMap<String, String>,
}

/// Every role the journeys assign or remove, once each.
pub fn assigned_roles(workload: &Workload) -> std::collections::BTreeSet<String> {
    workload
        .journeys
        .iter()
        .flat_map(|j| &j.steps)
        .filter_map(|s| match s {
            Step::AssignRole(r) | Step::RemoveRole(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag an observation watches is made only when one asks for it, and reads the same
    /// as one made with the user: set by a delete after it was handed out, set from the start
    /// when handed out after the delete, one flag for every observation of the user.
    #[test]
    fn a_users_deleted_flag_is_made_on_demand_and_shared() {
        let mut u = CurrentUser::default();
        assert!(u.deleted_flag.is_none(), "a user nobody observes holds no flag");
        u.mark_deleted();
        assert!(u.deleted_flag.is_none());
        assert!(
            u.deleted_later().load(Ordering::Acquire),
            "handed out after the delete: set"
        );

        let mut u = CurrentUser::default();
        let first = u.deleted_later();
        let second = u.deleted_later();
        assert!(Arc::ptr_eq(&first, &second), "one flag per user");
        assert!(!first.load(Ordering::Acquire));
        u.mark_deleted();
        assert!(first.load(Ordering::Acquire) && second.load(Ordering::Acquire));
    }
}
