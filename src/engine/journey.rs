//! Running one journey: its steps in order against the journey's current user and group, each
//! timed from its start (the first step of an open-model arrival from its intended start when it
//! started late) and recorded under `api_latency{op}`; acknowledged writes of sampled users go to
//! the probes and the checks. What each step sends and accepts is its target's
//! ([`super::targets`]).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::context::Ctx;
use super::state::{AdminState, CurrentUser, Handed, JourneyState, StepEnd};
use crate::ledger::Created;
use crate::probes::condition::{Supersession, Who};
use crate::probes::{ProbeHub, Write};
use crate::workload::{Journey, Step, ThinkTime};

/// Tells the checks a sampled user's delete begins, before it is sent: from then on a refused
/// bind or a dead token may be the delete's doing, and the checks of earlier writes end
/// overtaken. Said only once the delete was acknowledged, a bind sent while the directory was
/// already deleting (AD takes tens of ms to answer a delete) was refused and credited to the
/// disable before it. A delete that then fails leaves them overtaken too: never a pass.
fn delete_begins(ctx: &Ctx, state: &JourneyState, began: Instant) {
    let Some(hub) = &ctx.checks else { return };
    if let Some(id) = state
        .user
        .as_ref()
        .filter(|u| u.checked && u.owned)
        .and_then(|u| u.id.as_ref())
    {
        hub.deleting(id, began);
    }
}

/// A user the checks or the probes are to follow is proven the run's first (one read, timed as
/// `get_user`, after the create's own latency was taken): an id a create answered that is
/// somebody else's is never followed, so no evidence about that account (a login, an audit
/// entry, a downstream record) is credited to the run's writes. The journey's next change then
/// reads it again and fails on it.
async fn prove_followed(ctx: &Ctx, admin: &mut AdminState, state: &mut JourneyState) {
    let followed = |u: &CurrentUser| u.owned && ((u.checked && ctx.checks.is_some()) || u.probed.is_some());
    if !state.user.as_ref().is_some_and(followed) {
        return;
    }
    if !ctx.target.prove_created(&ctx.run, admin, state).await
        && let Some(u) = state.user.as_mut()
    {
        u.checked = false;
        u.probed = None;
        state.observe = None;
    }
}

/// Hands a sampled user's acknowledged write to the probes: to follow, or to count as passed
/// over (past their share when it was acknowledged).
fn hand_to_probes(
    hub: &Arc<ProbeHub>,
    step: &Step,
    state: &mut JourneyState,
    handed: Handed,
    began: Instant,
    acked: Instant,
) {
    let op = step.builtin().expect("only built-in steps are observed");
    let Handed::Follow(expect, job, version) = handed else {
        let user = state.user.as_ref();
        let trace = user.and_then(|u| u.probed.as_ref());
        let who = Who {
            id: user.and_then(|u| u.id.as_deref()).unwrap_or_default(),
            user_name: user.map_or("", |u| u.user_name.as_str()),
        };
        hub.pass_over(op, trace, acked, who);
        return;
    };
    let later = Supersession {
        version,
        deleted_later: state.user.as_mut().map(|u| u.deleted_later()).unwrap_or_default(),
    };
    let user = state.user.as_ref();
    let trace = user.and_then(|u| u.probed.clone()).unwrap_or_else(|| hub.new_trace());
    hub.observe(Write {
        op,
        user_id: user.and_then(|u| u.id.clone()).unwrap_or_default(),
        user_name: user.map(|u| u.user_name.clone()).unwrap_or_default(),
        began,
        acked,
        job,
        expect,
        later,
        index: trace.next_write(),
        trace,
    });
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
        // A delete is a change of its own: what its checks see from its start (`delete_begins`)
        // is its doing, not an earlier disable's (whose check then ends overtaken), so it is
        // judged on its own, on binds with directories and on the user's token otherwise.
        Step::DeleteUser => {
            u.revocation_started = true;
            hub.revoked(user, crate::vocab::Op::DeleteUser, acked);
        }
        Step::DisableUser if !u.revocation_started => {
            u.revocation_started = true;
            hub.revoked(user, crate::vocab::Op::DisableUser, acked);
        }
        // With directories, a later disable or delete revokes again.
        Step::EnableUser if hub.enabled(user, acked) => u.revocation_started = false,
        _ => {}
    }
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
        if matches!(step, Step::DeleteUser) {
            delete_begins(ctx, &state, t0);
        }
        let series = ctx.series(index, i);
        let end = ctx.target.execute(&ctx.run, admin, step, &mut state, series).await;
        let micros = t0.elapsed().as_micros() as u64;
        if let Some(hub) = &ctx.probes {
            hub.count_operation();
        }
        match end {
            StepEnd::Done => {
                ctx.registry.record(series, micros);
                if matches!(step, Step::CreateUser) {
                    prove_followed(ctx, admin, &mut state).await;
                }
                follow_with_checks(ctx, step, &mut state, t0 + Duration::from_micros(micros));
                if let (Some(hub), Some(handed)) = (&ctx.probes, state.observe.take()) {
                    hand_to_probes(hub, step, &mut state, handed, t0, t0 + Duration::from_micros(micros));
                }
            }
            StepEnd::Failed(e) => {
                tracing::debug!(op = %step.name(), error = %e, "step failed");
                ctx.registry.record_error(series, e.kind, micros);
                match ctx.target.request_line(&ctx.workload, step) {
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
    if let Some(u) = state.user {
        super::state::release_user(&ctx.ledger, u);
    }
    if let Some(g) = state.group {
        super::state::release_group(&ctx.ledger, g);
    }
    for (_, u) in state.undo {
        ctx.ledger.record(Created::Undo(u));
    }
    for u in state.undone {
        ctx.ledger.deleted(Created::Undo(u));
    }
}
