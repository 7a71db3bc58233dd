//! Running one journey: its steps in order against the journey's current user and group, each
//! timed from its start (the first step of an open-model arrival from its intended start when it
//! started late) and recorded under `api_latency{op}`; acknowledged writes of sampled users go to
//! the probes and the checks. What each step sends and accepts is in [`super::steps`].

use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::context::Ctx;
use crate::http::{CallError, Reply};
use crate::ledger::Created;
use crate::probes::Write;
use crate::probes::condition::{Expect, Supersession, UserTrace};
use crate::workload::probes::JobSource;
use crate::workload::{Journey, Step, ThinkTime};

/// One virtual admin's own state, kept across its journeys (no sharing, no locks).
pub struct AdminState {
    pub index: usize,
    pub rng: SmallRng,
    /// Reused for every rendered body.
    pub(super) body: String,
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

#[derive(Default)]
pub(super) struct CurrentUser {
    pub id: Option<String>,
    pub user_name: String,
    pub seq: u64,
    /// Created by this journey (so it may be changed and must be cleaned up).
    pub owned: bool,
    pub deleted: bool,
    /// Shared with pending observations of this user's writes: set when it is deleted.
    pub deleted_flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Drawn once per user: when sampled, every write to it is observed (so a delete's
    /// observation knows where the user was seen).
    pub probed: Option<UserTrace>,
    /// Drawn once per user: the checks follow it (login, permissions, effects, revocation).
    pub checked: bool,
    /// Its password, for the login checks (never logged or written).
    pub password: Option<String>,
    pub revocation_started: bool,
}

/// Hands a sampled user's acknowledged write to the checks.
fn follow_with_checks(ctx: &Ctx, step: &Step, state: &mut JourneyState, acked: Instant) {
    let Some(hub) = &ctx.checks else { return };
    let Some(u) = state.user.as_mut().filter(|u| u.checked && u.owned) else {
        return;
    };
    let Some(id) = u.id.clone() else { return };
    let user = crate::checks::CheckedUser {
        id,
        user_name: u.user_name.clone(),
        password: u.password.clone(),
    };
    match step {
        Step::CreateUser => hub.created(user, acked),
        Step::AssignRole(role) => hub.role_assigned(user, role.clone(), acked),
        Step::DisableUser | Step::DeleteUser if !u.revocation_started => {
            u.revocation_started = true;
            hub.revoked(user, acked);
        }
        // With directories, a later disable or delete revokes again.
        Step::EnableUser if hub.enabled(user, acked) => u.revocation_started = false,
        _ => {}
    }
}

/// Whether a user that just became current is in the probes' sample.
pub(super) fn draw_probed(ctx: &Ctx, admin: &mut AdminState) -> Option<UserTrace> {
    let hub = ctx.probes.as_ref()?;
    hub.sampled(admin.rng.random::<f64>()).then(|| hub.new_trace())
}

#[derive(Default)]
pub(super) struct JourneyState {
    pub user: Option<CurrentUser>,
    /// The journey's group, while it has one.
    pub group: Option<JourneyGroup>,
    /// The last write to hand to the probes (sampled), with its job reference.
    pub observe: Option<(Expect, Option<String>, Option<u64>)>,
    /// Values custom steps extracted, in order (a later one shadows an earlier one).
    pub vars: Vec<(String, String)>,
    /// The journey's sequence number when no user gives it one (custom steps' `{seq}`).
    pub seq: Option<u64>,
    /// Cleanup owed for what custom steps created: (cleanup operation, its rendered request).
    pub undo: Vec<(usize, crate::ledger::UndoRequest)>,
}

/// A group the journey created (and still owns, until it deletes it).
pub(super) struct JourneyGroup {
    pub id: String,
    /// As the target answered it: it carries the run's marker.
    pub display_name: String,
    pub owned: bool,
}

/// How a step ended.
pub(super) enum StepEnd {
    Done,
    Failed(CallError),
    /// A 429 the admin did not (or could no longer) wait out: counted apart from errors.
    RateLimited,
    /// Ctrl-C or SIGTERM cancelled the request in flight: not recorded, the journey cut short.
    Interrupted,
}

pub async fn think(ctx: &Ctx, admin: &mut AdminState) {
    let d = match ctx.think_time() {
        None => return,
        Some(ThinkTime::Fixed(d)) => *d,
        Some(ThinkTime::Uniform(a, b)) => {
            let span = (*b - *a).as_micros() as u64;
            *a + Duration::from_micros(admin.rng.random_range(0..=span))
        }
    };
    if !d.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = ctx.stop.cancelled() => {}
        }
    }
}

/// Runs one journey. `started` is when its first step counts from.
pub async fn run(ctx: &Ctx, admin: &mut AdminState, index: usize, journey: &Journey, started: Instant) {
    let mut state = JourneyState::default();
    let counts = &ctx.journeys[index];
    let mut counter = &counts.done;
    for (i, step) in journey.steps.iter().enumerate() {
        if i > 0 {
            if ctx.stop.is_cancelled() {
                counter = &counts.stopped;
                break;
            }
            think(ctx, admin).await;
        }
        let t0 = if i == 0 { started } else { Instant::now() };
        let series = ctx.series(index, i);
        let end = super::steps::execute(ctx, admin, step, &mut state, series).await;
        let micros = t0.elapsed().as_micros() as u64;
        match end {
            StepEnd::Done => {
                ctx.registry.record(series, micros);
                follow_with_checks(ctx, step, &mut state, t0 + Duration::from_micros(micros));
                if let (Some(hub), Some((expect, job, version))) = (&ctx.probes, state.observe.take()) {
                    let user = state.user.as_ref();
                    let trace = user.and_then(|u| u.probed.clone()).unwrap_or_else(|| hub.new_trace());
                    let later = Supersession {
                        version,
                        deleted_later: user.map(|u| u.deleted_flag.clone()).unwrap_or_default(),
                    };
                    hub.observe(Write {
                        op: step.builtin().expect("only built-in steps are observed"),
                        user_id: user.and_then(|u| u.id.clone()).unwrap_or_default(),
                        user_name: user.map(|u| u.user_name.clone()).unwrap_or_default(),
                        began: t0,
                        acked: t0 + Duration::from_micros(micros),
                        job,
                        expect,
                        later,
                        index: trace.next_write(),
                        trace,
                    });
                }
            }
            StepEnd::Failed(e) => {
                tracing::debug!(op = %step.name(), error = %e, "step failed");
                ctx.registry.record_error(series, e.kind, micros);
                match super::steps::request_line(ctx, step) {
                    Some(line) => ctx
                        .failures
                        .record(step.name(), e.kind, &format!("{line}: {}", e.detail)),
                    None => ctx.failures.record(step.name(), e.kind, &e.detail),
                }
                counter = &counts.failed;
                break;
            }
            StepEnd::RateLimited => {
                ctx.registry.record_rate_limited(series);
                counter = &counts.failed;
                break;
            }
            StepEnd::Interrupted => {
                counter = &counts.stopped;
                break;
            }
        }
    }
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    leave_behind(ctx, state);
}

/// Records what the journey created and did not delete, for cleanup.
fn leave_behind(ctx: &Ctx, state: JourneyState) {
    let mut left = Vec::new();
    if let Some(u) = state.user
        && u.owned
        && !u.deleted
        && let Some(id) = u.id
    {
        left.push(Created::User {
            id,
            user_name: u.user_name,
        });
    }
    if let Some(JourneyGroup {
        id,
        display_name,
        owned: true,
    }) = state.group
    {
        left.push(Created::Group { id, display_name });
    }
    left.extend(state.undo.into_iter().map(|(_, u)| Created::Undo(u)));
    for item in left {
        ctx.ledger.record(item);
    }
}

/// Marks the write just acknowledged for observation, when probes want it and it is sampled.
pub(super) fn want_observation(
    ctx: &Ctx,
    state: &mut JourneyState,
    step: &Step,
    reply: &Reply,
    expect: impl FnOnce() -> Expect,
) {
    let Some(hub) = ctx.probes.as_ref() else { return };
    if step.builtin().is_none_or(|op| !hub.wants(op)) || state.user.as_ref().is_none_or(|u| u.probed.is_none()) {
        return;
    }
    let job = match hub.job_source() {
        Some(JobSource::Header(_)) => reply.captured.clone(),
        Some(JobSource::Pointer(p)) => serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| match v.pointer(p) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }),
        None => None,
    };
    let version = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| {
            v.pointer("/meta/version")
                .and_then(crate::probes::condition::numeric_version)
        });
    state.observe = Some((expect(), job, version));
}

/// As [`want_observation`] for a write whose answer carries neither a job nor a version (LDAP).
pub(super) fn want_observation_of(ctx: &Ctx, state: &mut JourneyState, step: &Step, expect: impl FnOnce() -> Expect) {
    let Some(hub) = ctx.probes.as_ref() else { return };
    if step.builtin().is_none_or(|op| !hub.wants(op)) || state.user.as_ref().is_none_or(|u| u.probed.is_none()) {
        return;
    }
    state.observe = Some((expect(), None, None));
}
