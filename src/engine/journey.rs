//! Running one journey: its steps in order against the journey's current user and group, each
//! timed from its start (the first step of an open-model arrival from its intended start when it
//! started late), checked for the essential payload, and recorded under `api_latency{op}`.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand::rngs::SmallRng;
use reqwest::Method;
use serde::Deserialize;
use tokio::time::Instant;

use super::context::{Created, Ctx, PooledUser};
use crate::metrics::SeriesId;
use crate::probes::Write;
use crate::probes::condition::{Expect, Field, SeenIn, Supersession};
use crate::scim::client::encode_query;
use crate::scim::{CallError, Reply};
use crate::workload::probes::JobSource;
use crate::workload::template::Vars;
use crate::workload::{Journey, Step, ThinkTime};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One virtual admin's own state, kept across its journeys (no sharing, no locks).
pub struct AdminState {
    pub index: usize,
    pub rng: SmallRng,
    /// Reused for every rendered body.
    body: String,
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
struct CurrentUser {
    id: Option<String>,
    user_name: String,
    seq: u64,
    /// Created by this journey (so it may be changed and must be cleaned up).
    owned: bool,
    deleted: bool,
    /// Shared with pending observations of this user's writes: set when it is deleted.
    deleted_flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Drawn once per user: when sampled, every write to it is observed (so a delete's
    /// observation knows where the user was seen).
    probed: Option<SeenIn>,
    /// Drawn once per user: the checks follow it (login, permissions, effects, revocation).
    checked: bool,
    /// Its password, for the login checks (never logged or written).
    password: Option<String>,
    revocation_started: bool,
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
        _ => {}
    }
}

/// Whether a user that just became current is in the probes' sample.
fn draw_probed(ctx: &Ctx, admin: &mut AdminState) -> Option<SeenIn> {
    let hub = ctx.probes.as_ref()?;
    hub.sampled(admin.rng.random::<f64>()).then(|| hub.new_seen())
}

#[derive(Default)]
struct JourneyState {
    user: Option<CurrentUser>,
    group: Option<(String, bool)>,
    /// The last write to hand to the probes (sampled), with its job reference.
    observe: Option<(Expect, Option<String>, Option<u64>)>,
}

/// How a step ended.
enum StepEnd {
    Done,
    Failed(CallError),
    /// A 429 the admin did not (or could no longer) wait out: counted apart from errors.
    RateLimited,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "userName")]
    user_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ListResponse<'a> {
    #[serde(default, rename = "totalResults")]
    total_results: Option<u64>,
    #[serde(borrow, default, rename = "Resources")]
    resources: Vec<Resource<'a>>,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, CallError> {
    serde_json::from_slice(body).map_err(|e| CallError::payload(format!("answer is not the expected JSON: {e}")))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
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
    let mut counter = &ctx.journeys_done;
    for (i, step) in journey.steps.iter().enumerate() {
        if i > 0 {
            if ctx.stop.is_cancelled() {
                counter = &ctx.journeys_stopped;
                break;
            }
            think(ctx, admin).await;
        }
        let t0 = if i == 0 { started } else { Instant::now() };
        let series = ctx.series(step.op());
        let end = execute(ctx, admin, step, &mut state, series).await;
        let micros = t0.elapsed().as_micros() as u64;
        match end {
            StepEnd::Done => {
                ctx.registry.record(series, micros);
                follow_with_checks(ctx, step, &mut state, t0 + Duration::from_micros(micros));
                if let (Some(hub), Some((expect, job, version))) = (&ctx.probes, state.observe.take()) {
                    let user = state.user.as_ref();
                    let later = Supersession {
                        version,
                        deleted_later: user.map(|u| u.deleted_flag.clone()).unwrap_or_default(),
                    };
                    hub.observe(Write {
                        op: step.op(),
                        user_id: user.and_then(|u| u.id.clone()).unwrap_or_default(),
                        user_name: user.map(|u| u.user_name.clone()).unwrap_or_default(),
                        acked: t0 + Duration::from_micros(micros),
                        job,
                        expect,
                        later,
                        seen: user.and_then(|u| u.probed.clone()).unwrap_or_else(|| hub.new_seen()),
                    });
                }
            }
            StepEnd::Failed(e) => {
                tracing::debug!(op = step.op(), error = %e, "step failed");
                ctx.registry.record_error(series, e.kind, micros);
                counter = &ctx.journeys_failed;
                break;
            }
            StepEnd::RateLimited => {
                ctx.registry.record_rate_limited(series);
                counter = &ctx.journeys_failed;
                break;
            }
        }
    }
    counter[index].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    if let Some((id, true)) = state.group {
        left.push(Created::Group { id });
    }
    if !left.is_empty() {
        ctx.leftovers.lock().extend(left);
    }
}

/// The journey's user, borrowing one from the pool when it has none.
fn user<'s>(ctx: &Ctx, admin: &mut AdminState, state: &'s mut JourneyState) -> Result<&'s mut CurrentUser, CallError> {
    if state.user.is_none() {
        if ctx.pool.is_empty() {
            return Err(CallError::payload(
                "no current user: the journey needs create_user first",
            ));
        }
        let PooledUser { id, user_name } = ctx.pool[admin.rng.random_range(0..ctx.pool.len())].clone();
        state.user = Some(CurrentUser {
            id,
            user_name,
            probed: draw_probed(ctx, admin),
            ..Default::default()
        });
    }
    Ok(state.user.as_mut().expect("just set"))
}

fn user_id(u: &CurrentUser) -> Result<&str, CallError> {
    u.id.as_deref()
        .ok_or_else(|| CallError::payload("the current user has no id yet (use find_user first)"))
}

async fn send(
    ctx: &Ctx,
    series: SeriesId,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    expected: &[u16],
) -> Result<Reply, StepEnd> {
    let reply = ctx.client.call(method, path, body).await.map_err(StepEnd::Failed)?;
    let final_429 = reply.status.as_u16() == 429;
    // 429s waited out before a later answer still count (the final one is the caller's).
    for _ in 0..reply.rate_limited.saturating_sub(final_429 as u32) {
        ctx.registry.record_rate_limited(series);
    }
    if final_429 {
        return Err(StepEnd::RateLimited);
    }
    reply.expect(expected).map_err(StepEnd::Failed)
}

/// The current user's id (borrowing a pooled user when the journey has none).
fn current_id(ctx: &Ctx, admin: &mut AdminState, state: &mut JourneyState) -> Result<String, StepEnd> {
    let u = user(ctx, admin, state).map_err(StepEnd::Failed)?;
    user_id(u).map(str::to_string).map_err(StepEnd::Failed)
}

/// PATCH `/Users/{id}` with the given operations (a JSON list's items).
async fn patch_user(ctx: &Ctx, series: SeriesId, id: &str, ops: &str) -> Result<Reply, StepEnd> {
    let path = format!("/Users/{id}");
    send(ctx, series, Method::PATCH, &path, Some(patch_body(ops)), &[200, 204]).await
}

/// Marks the write just acknowledged for observation, when probes want it and it is sampled.
fn want_observation(ctx: &Ctx, state: &mut JourneyState, step: &Step, reply: &Reply, expect: impl FnOnce() -> Expect) {
    let Some(hub) = ctx.probes.as_ref() else { return };
    if !hub.wants(step.op()) || state.user.as_ref().is_none_or(|u| u.probed.is_none()) {
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

fn patch_body(ops: &str) -> Bytes {
    Bytes::from(format!(r#"{{"schemas":["{PATCH_OP}"],"Operations":[{ops}]}}"#))
}

async fn execute(
    ctx: &Ctx,
    admin: &mut AdminState,
    step: &Step,
    state: &mut JourneyState,
    series: SeriesId,
) -> StepEnd {
    match execute_inner(ctx, admin, step, state, series).await {
        Ok(()) => StepEnd::Done,
        Err(end) => end,
    }
}

async fn execute_inner(
    ctx: &Ctx,
    admin: &mut AdminState,
    step: &Step,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    let fail = |e: CallError| StepEnd::Failed(e);
    let users = &ctx.workload.users;
    match step {
        Step::CreateUser => {
            let seq = ctx.next_seq();
            let vars = Vars {
                run_id: &ctx.run_id,
                seq,
                admin: admin.index,
            };
            users.template.render_into(&vars, &mut admin.body);
            let user_name: String = serde_json::from_str(&users.user_name.render(&vars)).unwrap_or_default();
            let reply = send(
                ctx,
                series,
                Method::POST,
                "/Users",
                Some(Bytes::copy_from_slice(admin.body.as_bytes())),
                &[201, 200],
            )
            .await?;
            let r: Resource = parse(&reply.body).map_err(fail)?;
            let id = r.id.ok_or_else(|| fail(CallError::payload("created user has no id")))?;
            match r.user_name {
                Some(n) if n.eq_ignore_ascii_case(&user_name) => {}
                other => {
                    // Cleanup must still find it.
                    ctx.leftovers.lock().push(Created::User {
                        id: id.to_string(),
                        user_name: user_name.clone(),
                    });
                    return Err(fail(CallError::payload(format!(
                        "created user echoes userName {other:?}, sent {user_name:?}"
                    ))));
                }
            }
            state.user = Some(CurrentUser {
                id: Some(id.into_owned()),
                user_name,
                seq,
                owned: true,
                deleted: false,
                deleted_flag: Default::default(),
                probed: draw_probed(ctx, admin),
                checked: ctx
                    .checks
                    .as_ref()
                    .is_some_and(|c| c.sampled(admin.rng.random::<f64>())),
                password: users
                    .password
                    .as_ref()
                    .and_then(|p| serde_json::from_str(&p.render(&vars)).ok()),
                revocation_started: false,
            });
            want_observation(ctx, state, step, &reply, || Expect::Present);
        }
        Step::GetUser => {
            let u = user(ctx, admin, state).map_err(fail)?;
            let id = user_id(u).map_err(fail)?.to_string();
            let reply = send(ctx, series, Method::GET, &format!("/Users/{id}"), None, &[200]).await?;
            let r: Resource = parse(&reply.body).map_err(fail)?;
            if r.id.as_deref() != Some(id.as_str()) {
                return Err(fail(CallError::payload(format!(
                    "GET /Users/{id} answered id {:?}",
                    r.id
                ))));
            }
        }
        Step::FindUser => {
            let u = user(ctx, admin, state).map_err(fail)?;
            let filter = format!("userName eq {}", json_string(&u.user_name));
            let path = format!("/Users?filter={}", encode_query(&filter));
            let reply = send(ctx, series, Method::GET, &path, None, &[200]).await?;
            let list: ListResponse = parse(&reply.body).map_err(fail)?;
            match list.resources.first().and_then(|r| r.id.as_deref()) {
                Some(id) if list.total_results.unwrap_or(1) >= 1 => {
                    if u.id.is_none() {
                        u.id = Some(id.to_string());
                    }
                }
                _ => return Err(fail(CallError::payload(format!("filter {filter} found no user")))),
            }
        }
        Step::ListUsers => {
            let reply = send(ctx, series, Method::GET, "/Users?startIndex=1&count=10", None, &[200]).await?;
            let list: ListResponse = parse(&reply.body).map_err(fail)?;
            if list.total_results.is_none() {
                return Err(fail(CallError::payload("list answer has no totalResults")));
            }
        }
        Step::ModifyUser => {
            let id = current_id(ctx, admin, state)?;
            let title = json_string(&format!("Title {}", admin.rng.random_range(0..1000u32)));
            let ops = format!(
                r#"{{"op":"replace","path":"title","value":{title}}},{{"op":"replace","path":"nickName","value":{title}}}"#
            );
            let reply = patch_user(ctx, series, &id, &ops).await?;
            want_observation(ctx, state, step, &reply, || {
                Expect::Equals(Field::Title, serde_json::from_str(&title).unwrap_or_default())
            });
        }
        Step::ReplaceUser => {
            let u = user(ctx, admin, state).map_err(fail)?;
            let id = user_id(u).map_err(fail)?.to_string();
            let vars = Vars {
                run_id: &ctx.run_id,
                seq: u.seq,
                admin: admin.index,
            };
            users.template.render_into(&vars, &mut admin.body);
            send(
                ctx,
                series,
                Method::PUT,
                &format!("/Users/{id}"),
                Some(Bytes::copy_from_slice(admin.body.as_bytes())),
                &[200],
            )
            .await?;
        }
        Step::AssignRole(role) | Step::RemoveRole(role) => {
            let id = current_id(ctx, admin, state)?;
            let ops = if matches!(step, Step::AssignRole(_)) {
                format!(
                    r#"{{"op":"add","path":"roles","value":[{{"value":{}}}]}}"#,
                    json_string(role)
                )
            } else {
                let path = format!("roles[value eq {}]", json_string(role));
                format!(r#"{{"op":"remove","path":{}}}"#, json_string(&path))
            };
            let reply = patch_user(ctx, series, &id, &ops).await?;
            let held = matches!(step, Step::AssignRole(_));
            want_observation(ctx, state, step, &reply, || {
                if held {
                    Expect::RoleHeld(role.clone())
                } else {
                    Expect::RoleGone(role.clone())
                }
            });
        }
        Step::DisableUser | Step::EnableUser => {
            let id = current_id(ctx, admin, state)?;
            let active = matches!(step, Step::EnableUser);
            let ops = format!(r#"{{"op":"replace","path":"active","value":{active}}}"#);
            let reply = patch_user(ctx, series, &id, &ops).await?;
            want_observation(ctx, state, step, &reply, || {
                Expect::Equals(Field::Active, serde_json::Value::Bool(active))
            });
        }
        Step::DeleteUser => {
            let u = user(ctx, admin, state).map_err(fail)?;
            let id = user_id(u).map_err(fail)?.to_string();
            let reply = send(ctx, series, Method::DELETE, &format!("/Users/{id}"), None, &[204, 200]).await?;
            u.deleted = true;
            u.deleted_flag.store(true, std::sync::atomic::Ordering::Release);
            want_observation(ctx, state, step, &reply, || Expect::Absent);
        }
        Step::CreateGroup => {
            let seq = ctx.next_seq();
            users.group_template.render_into(
                &Vars {
                    run_id: &ctx.run_id,
                    seq,
                    admin: admin.index,
                },
                &mut admin.body,
            );
            let reply = send(
                ctx,
                series,
                Method::POST,
                "/Groups",
                Some(Bytes::copy_from_slice(admin.body.as_bytes())),
                &[201, 200],
            )
            .await?;
            let r: Resource = parse(&reply.body).map_err(fail)?;
            let id =
                r.id.ok_or_else(|| fail(CallError::payload("created group has no id")))?;
            state.group = Some((id.into_owned(), true));
        }
        Step::AddToGroup | Step::RemoveFromGroup => {
            let gid = match (&state.group, &ctx.shared_group) {
                (Some((g, _)), _) | (None, Some(g)) => g.clone(),
                (None, None) => return Err(fail(CallError::payload("no group to use: add create_group first"))),
            };
            let u = user(ctx, admin, state).map_err(fail)?;
            let uid = json_string(user_id(u).map_err(fail)?);
            let op = if matches!(step, Step::AddToGroup) {
                format!(r#"{{"op":"add","path":"members","value":[{{"value":{uid}}}]}}"#)
            } else {
                format!(
                    r#"{{"op":"remove","path":{}}}"#,
                    json_string(&format!("members[value eq {uid}]"))
                )
            };
            send(
                ctx,
                series,
                Method::PATCH,
                &format!("/Groups/{gid}"),
                Some(patch_body(&op)),
                &[200, 204],
            )
            .await?;
        }
        Step::DeleteGroup => {
            let Some((gid, true)) = state.group.clone() else {
                return Err(fail(CallError::payload("no group created in this journey to delete")));
            };
            send(
                ctx,
                series,
                Method::DELETE,
                &format!("/Groups/{gid}"),
                None,
                &[204, 200],
            )
            .await?;
            state.group = Some((gid, false));
        }
    }
    Ok(())
}
