//! The built-in journey steps as SCIM requests: what each sends, what it accepts as an answer
//! (status and the essential payload), and what it hands to the probes. One function per kind
//! of step.

use bytes::Bytes;
use reqwest::Method;

use super::wire::{Identified, ListResponse, Resource, answered, json_string, member, parse, send};
use super::{Cx, own};
use crate::engine::state::{
    AdminState, JourneyGroup, JourneyState, StepEnd, created, no_id, payload, role_observed, user, want_observation,
};
use crate::http::Reply;
use crate::http::client::encode_query;
use crate::ledger::Created;
use crate::metrics::SeriesId;
use crate::probes::condition::{Expect, Field};
use crate::workload::dialect::{PatchStyle, Roles};
use crate::workload::template::Vars;
use crate::workload::{Step, Workload};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The request a built-in step sends, as a template (`PATCH /Users/{id}`), for failure samples.
pub(super) fn request_line(workload: &Workload, step: &Step) -> Option<&'static str> {
    Some(match step {
        Step::CreateUser => "POST /Users",
        Step::GetUser => "GET /Users/{id}",
        Step::FindUser => "GET /Users?filter=userName eq …",
        Step::ListUsers => "GET /Users?startIndex=1&count=10",
        Step::ReplaceUser => "PUT /Users/{id}",
        Step::AssignRole(_) | Step::RemoveRole(_) if workload.users.dialect.roles == Roles::Groups => {
            "PATCH /Groups/{id}"
        }
        Step::ModifyUser | Step::AssignRole(_) | Step::RemoveRole(_) | Step::DisableUser | Step::EnableUser => {
            "PATCH /Users/{id}"
        }
        Step::DeleteUser => "DELETE /Users/{id}",
        Step::CreateGroup => "POST /Groups",
        Step::AddToGroup | Step::RemoveFromGroup => "PATCH /Groups/{id}",
        Step::DeleteGroup => "DELETE /Groups/{id}",
        // Custom operations name their request in their own details.
        Step::Custom { .. } => return None,
    })
}

/// Runs `step` against the journey's state.
pub(super) async fn execute(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    step: &Step,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    match step {
        Step::CreateUser => create_user(ctx, admin, state, series).await,
        Step::GetUser => get_user(ctx, admin, state, series).await,
        Step::FindUser => find_user(ctx, admin, state, series).await,
        Step::ListUsers => list_users(ctx, series).await,
        Step::ModifyUser => modify_user(ctx, admin, state, series).await,
        Step::ReplaceUser => replace_user(ctx, admin, state, series).await,
        Step::AssignRole(role) => role_change(ctx, admin, state, series, role, true).await,
        Step::RemoveRole(role) => role_change(ctx, admin, state, series, role, false).await,
        Step::DisableUser => set_active(ctx, admin, state, series, false).await,
        Step::EnableUser => set_active(ctx, admin, state, series, true).await,
        Step::DeleteUser => delete_user(ctx, admin, state, series).await,
        Step::CreateGroup => create_group(ctx, admin, state, series).await,
        Step::AddToGroup => membership(ctx, admin, state, series, true).await,
        Step::RemoveFromGroup => membership(ctx, admin, state, series, false).await,
        Step::DeleteGroup => delete_group(ctx, state, series).await,
        Step::Custom { index, .. } => {
            own::before_custom_step(ctx, admin, state, *index).await?;
            ctx.http.custom(ctx.run, admin, state, series, *index).await
        }
    }
}

/// A PATCH request's body holding `ops` (a JSON list's items): what every built-in change
/// sends, and what `init`'s write probe sends to learn the target's dialect.
pub fn patch_body(ops: &str) -> Bytes {
    let mut body = Patch::new();
    body.0.push_str(ops);
    body.finish()
}

/// One operation replacing attribute `path` with `value` (JSON text), in `style`.
pub fn replace_op(style: PatchStyle, path: &str, value: &str) -> String {
    let mut op = String::new();
    push_replace(&mut op, style, path, value);
    op
}

/// The operation that disables (`active` false) or enables a user, in `style`.
pub fn active_op(style: PatchStyle, active: bool) -> String {
    replace_op(style, "active", style.boolean(active))
}

/// Appends the operation of [`replace_op`] to `out`.
fn push_replace(out: &mut String, style: PatchStyle, path: &str, value: &str) {
    out.push_str(r#"{"op":""#);
    out.push_str(style.op("replace"));
    out.push_str(r#"","path":"#);
    if path.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        // Nothing to escape (attribute paths are names): as serde_json writes it, without a copy.
        out.push('"');
        out.push_str(path);
        out.push('"');
    } else {
        out.push_str(&json_string(path));
    }
    out.push_str(r#","value":"#);
    out.push_str(value);
    out.push('}');
}

/// A PATCH body written in one buffer, operation by operation: the body [`patch_body`] makes of
/// the same operations, without a string per operation and per value on the way (a journey's
/// two PATCHes made ten of them).
struct Patch(String);

impl Patch {
    fn new() -> Patch {
        let mut body = String::with_capacity(192);
        body.push_str(r#"{"schemas":[""#);
        body.push_str(PATCH_OP);
        body.push_str(r#""],"Operations":["#);
        Patch(body)
    }

    /// Adds a replace of `path` with `value` (JSON text), in `style`.
    fn replace(&mut self, style: PatchStyle, path: &str, value: &str) {
        if !self.0.ends_with('[') {
            self.0.push(',');
        }
        push_replace(&mut self.0, style, path, value);
    }

    fn finish(mut self) -> Bytes {
        self.0.push_str("]}");
        Bytes::from(self.0)
    }
}

/// PATCH `/Users/{id}` with `body`.
async fn patch_user(ctx: &Cx<'_>, series: SeriesId, id: &str, body: Bytes) -> Result<Reply, StepEnd> {
    let path = member("Users", id)?;
    let reply = send(ctx, series, Method::PATCH, &path, Some(body), &[200, 204]).await?;
    changed(&reply, id)?;
    Ok(reply)
}

/// A change answered 200 carries the changed resource (SCIM returns it); 204 carries nothing.
fn changed(reply: &Reply, id: &str) -> Result<(), StepEnd> {
    if reply.status.as_u16() == 204 {
        return Ok(());
    }
    let r: Identified = parse(&reply.body)?;
    match r.id {
        Some(got) if got == id => Ok(()),
        other => Err(payload(format!(
            "the answer is not the changed resource: id {other:?}, expected {id:?}"
        ))),
    }
}

/// A delete is done only when the answer says so (see `Reply::confirms_delete`).
fn deleted(reply: &Reply) -> Result<(), StepEnd> {
    if reply.confirms_delete() {
        return Ok(());
    }
    let body = crate::redact::sample_bytes(&reply.body, true, 80);
    Err(payload(format!(
        "HTTP {} to a DELETE, with a body that does not confirm it: {body}",
        reply.status.as_u16()
    )))
}

async fn create_user(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    let users = &ctx.workload.users;
    let seq = ctx.next_seq();
    let vars = Vars {
        run_id: ctx.run_id.as_str(),
        seq,
        admin: admin.index,
    };
    users.template.render_into(&vars, &mut admin.body);
    let user_name: String = serde_json::from_str(&users.user_name.render(&vars)).unwrap_or_default();
    let body = Some(Bytes::copy_from_slice(admin.body.as_bytes()));
    // Until its user is recorded, a create may have made one the ledger does not hold.
    ctx.ledger.create_sent();
    let reply = send(ctx, series, Method::POST, "/Users", body, &[201, 200]).await?;
    let r: Resource = parse(&reply.body)?;
    let id = r.id.ok_or_else(|| answered("created user has no id", &reply.body))?;
    match r.user_name {
        Some(n) if n.eq_ignore_ascii_case(&user_name) => {}
        other => {
            // Cleanup may delete it only if the answer shows it is this run's (the ledger checks
            // the marker); anything else is somebody else's user, left alone.
            if let Some(n) = &other {
                ctx.ledger.record(Created::User {
                    id: id.to_string(),
                    user_name: n.to_string(),
                });
            }
            return Err(payload(format!(
                "created user echoes userName {other:?}, sent {user_name:?}"
            )));
        }
    }
    if let Err(end) = member("Users", &id) {
        // Ours (the marker is in its name), but no request may name it: listed as left.
        ctx.ledger.record_created(Created::User {
            id: id.into_owned(),
            user_name,
        });
        return Err(end);
    }
    let user = created(ctx, admin, id.into_owned(), user_name, &vars);
    state.hold_user(&ctx.ledger, user);
    ctx.ledger.create_recorded();
    want_observation(ctx, state, &Step::CreateUser, &reply, || Expect::Present);
    Ok(())
}

async fn get_user(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    // The id is borrowed from the journey's user, not copied: the path is the one string a
    // read needs.
    let u = user(ctx, admin, state)?;
    let id = u.id.as_deref().ok_or_else(no_id)?;
    let reply = send(ctx, series, Method::GET, &member("Users", id)?, None, &[200]).await?;
    if u.owned && !u.proven {
        // The gate's read: its answer judged once, for its id and the user's name.
        return own::read_proves(u, &reply.body);
    }
    let r: Identified = parse(&reply.body)?;
    if r.id.as_deref() != Some(id) {
        return Err(payload(format!("GET /Users/{id} answered id {:?}", r.id)));
    }
    Ok(())
}

async fn find_user(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    let u = user(ctx, admin, state)?;
    let filter = format!("userName eq {}", json_string(&u.user_name));
    let path = format!("/Users?filter={}", encode_query(&filter));
    let reply = send(ctx, series, Method::GET, &path, None, &[200]).await?;
    let list: ListResponse = parse(&reply.body)?;
    // The user named so, not whatever the filter answered first: a filter the target does not
    // honour (or answers with somebody else) must not lend the journey another user's id.
    let named = list.resources.iter().find(|r| {
        r.user_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(&u.user_name))
    });
    match named.and_then(|r| r.id.as_deref()) {
        Some(id) if list.total_results.unwrap_or(1) >= 1 => {
            if u.id.is_none() {
                u.id = Some(id.to_string());
            }
            Ok(())
        }
        _ => Err(payload(format!("filter {filter} found no user"))),
    }
}

async fn list_users(ctx: &Cx<'_>, series: SeriesId) -> Result<(), StepEnd> {
    let reply = send(ctx, series, Method::GET, "/Users?startIndex=1&count=10", None, &[200]).await?;
    let list: ListResponse = parse(&reply.body)?;
    if list.total_results.is_none() {
        return Err(answered("list answer has no totalResults", &reply.body));
    }
    Ok(())
}

/// The PATCH `op` word in the workload's style.
fn op_word(ctx: &Cx<'_>, op: &'static str) -> &'static str {
    ctx.workload.users.dialect.patch.op(op)
}

/// PATCH replace of each attribute `[users] modify` names; `{seq}` is fresh for every change, so
/// each modify sets new values (and a probe sees a change, not the value it already had).
async fn modify_user(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    let id = own::user_for_change(ctx, admin, state).await?;
    let dialect = &ctx.workload.users.dialect;
    let vars = Vars {
        run_id: ctx.run_id.as_str(),
        seq: ctx.next_seq(),
        admin: admin.index,
    };
    let mut body = Patch::new();
    for (attr, value) in &dialect.modify {
        // The admin's reused buffer holds each rendered value (JSON text) on its way in.
        value.render_into(&vars, &mut admin.body);
        body.replace(dialect.patch, attr, &admin.body);
    }
    let reply = patch_user(ctx, series, &id, body.finish()).await?;
    if let Some(title) = dialect.observed_title() {
        // Rendered only for a write the probes observe.
        want_observation(ctx, state, &Step::ModifyUser, &reply, || {
            Expect::Equals(
                Field::Title,
                serde_json::from_str(&title.render(&vars)).unwrap_or_default(),
            )
        });
    }
    Ok(())
}

async fn replace_user(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    let id = own::user_for_change(ctx, admin, state).await?;
    let seq = state.user.as_ref().map_or(0, |u| u.seq);
    let vars = Vars {
        run_id: ctx.run_id.as_str(),
        seq,
        admin: admin.index,
    };
    ctx.workload.users.template.render_into(&vars, &mut admin.body);
    let body = Some(Bytes::copy_from_slice(admin.body.as_bytes()));
    let reply = send(ctx, series, Method::PUT, &member("Users", &id)?, body, &[200]).await?;
    changed(&reply, &id)
}

async fn role_change(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
    role: &str,
    assign: bool,
) -> Result<(), StepEnd> {
    let id = own::user_for_change(ctx, admin, state).await?;
    let attribute = match &ctx.workload.users.dialect.roles {
        Roles::Attribute(a) => a,
        Roles::Groups => {
            let Some(gid) = ctx.role_groups.get(role) else {
                return Err(payload(format!("no group for role `{role}` (roles = \"groups\")")));
            };
            return membership_patch(ctx, series, gid, &id, assign).await;
        }
    };
    let ops = if assign {
        format!(
            r#"{{"op":"{}","path":{},"value":[{{"value":{}}}]}}"#,
            op_word(ctx, "add"),
            json_string(attribute),
            json_string(role)
        )
    } else {
        let path = format!("{attribute}[value eq {}]", json_string(role));
        format!(r#"{{"op":"{}","path":{}}}"#, op_word(ctx, "remove"), json_string(&path))
    };
    let reply = patch_user(ctx, series, &id, patch_body(&ops)).await?;
    if !matches!(&ctx.workload.users.dialect.roles, Roles::Attribute(a) if a == "roles") {
        // Linked services show the `roles` attribute; elsewhere there is nothing to observe.
        return Ok(());
    }
    let (step, expect) = role_observed(role, assign);
    want_observation(ctx, state, &step, &reply, || expect);
    Ok(())
}

async fn set_active(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
    active: bool,
) -> Result<(), StepEnd> {
    let id = own::user_for_change(ctx, admin, state).await?;
    let style = ctx.workload.users.dialect.patch;
    let mut body = Patch::new();
    body.replace(style, "active", style.boolean(active));
    let reply = patch_user(ctx, series, &id, body.finish()).await?;
    let step = if active { Step::EnableUser } else { Step::DisableUser };
    want_observation(ctx, state, &step, &reply, || {
        Expect::Equals(Field::Active, serde_json::Value::Bool(active))
    });
    Ok(())
}

async fn delete_user(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    let id = own::user_for_change(ctx, admin, state).await?;
    let reply = send(ctx, series, Method::DELETE, &member("Users", &id)?, None, &[204, 200]).await?;
    deleted(&reply)?;
    if let Some(u) = state.user.as_mut() {
        u.mark_deleted();
    }
    want_observation(ctx, state, &Step::DeleteUser, &reply, || Expect::Absent);
    Ok(())
}

async fn create_group(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
) -> Result<(), StepEnd> {
    let vars = Vars {
        run_id: ctx.run_id.as_str(),
        seq: ctx.next_seq(),
        admin: admin.index,
    };
    ctx.workload.users.group_template.render_into(&vars, &mut admin.body);
    let body = Some(Bytes::copy_from_slice(admin.body.as_bytes()));
    ctx.ledger.create_sent();
    let reply = send(ctx, series, Method::POST, "/Groups", body, &[201, 200]).await?;
    let r: Resource = parse(&reply.body)?;
    let id = r.id.ok_or_else(|| answered("created group has no id", &reply.body))?;
    let display_name = r.display_name.unwrap_or_default().into_owned();
    if let Err(end) = member("Groups", &id) {
        // Recorded (and settled) only when its answered name carries the marker.
        ctx.ledger.record_created(Created::Group {
            id: id.into_owned(),
            display_name,
        });
        return Err(end);
    }
    if !ctx.run_id.marks(&display_name) {
        return Err(payload(format!(
            "created group answers displayName {display_name:?}, without the run's marker"
        )));
    }
    state.hold_group(
        &ctx.ledger,
        JourneyGroup {
            id: id.into_owned(),
            display_name,
            owned: true,
            proven: false,
        },
    );
    // Held by the journey, which records it at its end.
    ctx.ledger.create_recorded();
    Ok(())
}

async fn membership(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    series: SeriesId,
    add: bool,
) -> Result<(), StepEnd> {
    // The shared group was read back when it was staged; the journey's own, here.
    let gid = match (&state.group, &ctx.shared_group) {
        (Some(_), _) => own::group_for_change(ctx, state).await?,
        (None, Some(g)) => g.clone(),
        (None, None) => return Err(payload("no group to use: add create_group first")),
    };
    let uid = own::user_for_change(ctx, admin, state).await?;
    membership_patch(ctx, series, &gid, &uid, add).await
}

/// PATCH a group's `members`: add or remove user `uid`.
async fn membership_patch(ctx: &Cx<'_>, series: SeriesId, gid: &str, uid: &str, add: bool) -> Result<(), StepEnd> {
    let uid = json_string(uid);
    let op = if add {
        format!(
            r#"{{"op":"{}","path":"members","value":[{{"value":{uid}}}]}}"#,
            op_word(ctx, "add")
        )
    } else {
        format!(
            r#"{{"op":"{}","path":{}}}"#,
            op_word(ctx, "remove"),
            json_string(&format!("members[value eq {uid}]"))
        )
    };
    let path = member("Groups", gid)?;
    let reply = send(ctx, series, Method::PATCH, &path, Some(patch_body(&op)), &[200, 204]).await?;
    changed(&reply, gid)
}

async fn delete_group(ctx: &Cx<'_>, state: &mut JourneyState, series: SeriesId) -> Result<(), StepEnd> {
    if !state.group.as_ref().is_some_and(|g| g.owned) {
        return Err(payload("no group created in this journey to delete"));
    }
    let gid = own::group_for_change(ctx, state).await?;
    let reply = send(ctx, series, Method::DELETE, &member("Groups", &gid)?, None, &[204, 200]).await?;
    deleted(&reply)?;
    if let Some(group) = state.group.as_mut() {
        group.owned = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body written operation by operation is the JSON of those operations, and the very
    /// bytes `patch_body` makes of `replace_op`s (what `init`'s probe sends), for attribute
    /// paths that need escaping too.
    #[test]
    fn a_patch_written_in_one_buffer_is_the_patch_of_its_operations() {
        for style in [PatchStyle::Standard, PatchStyle::Entra] {
            for path in [
                "title",
                "name.givenName",
                "odd\"path\\with\nescapes",
                "urn:x:y:1.0:User:title",
            ] {
                let mut one = Patch::new();
                one.replace(style, path, r#""Title 7""#);
                one.replace(style, "active", style.boolean(false));
                let one = one.finish();
                let ops = [replace_op(style, path, r#""Title 7""#), active_op(style, false)];
                assert_eq!(one, patch_body(&ops.join(",")), "{path}");
                let v: serde_json::Value = serde_json::from_slice(&one).expect("JSON");
                assert_eq!(v["schemas"][0], PATCH_OP);
                assert_eq!(v["Operations"][0]["path"], path);
                assert_eq!(v["Operations"][0]["value"], "Title 7");
                assert_eq!(v["Operations"][0]["op"], style.op("replace"));
                assert_eq!(v["Operations"][1]["path"], "active");
                assert_eq!(v["Operations"].as_array().map(Vec::len), Some(2));
            }
        }
        assert_eq!(
            &patch_body("")[..],
            format!(r#"{{"schemas":["{PATCH_OP}"],"Operations":[]}}"#).as_bytes()
        );
    }

    /// A hostile attribute path or value (quotes, backslashes, control characters, U+2028,
    /// U+FFFF, an injected `"},{"op":"replace","path":"active"…`) never adds an operation nor
    /// changes another: the body is, value for value, what serde_json makes of those operations.
    fn hostile() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\u{2028}\u{2029}\u{ffff}\u{7f}".to_string()),
            Just("\"},{\"op\":\"replace\",\"path\":\"active\",\"value\":true},{\"a\":\"".to_string()),
            Just("\\\"password\\\"".to_string()),
            "[\\x00-\\x1f]",
            any::<char>().prop_map(String::from),
            "[a-zA-Z.:\\[\\] ]{0,6}",
        ];
        prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #[test]
        fn a_hostile_path_or_value_stays_one_value(path in hostile(), value in hostile(), entra: bool) {
            let style = if entra { PatchStyle::Entra } else { PatchStyle::Standard };
            // A value arrives as JSON text: a template escapes what it renders into a string.
            let text = serde_json::to_string(&value).expect("JSON");
            let mut body = Patch::new();
            body.replace(style, &path, &text);
            body.replace(style, "active", style.boolean(true));
            let body = body.finish();
            let parsed: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            let want = serde_json::json!({
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": style.op("replace"), "path": path, "value": value},
                    {"op": style.op("replace"), "path": "active",
                     "value": serde_json::from_str::<serde_json::Value>(style.boolean(true)).expect("JSON")},
                ],
            });
            proptest::prop_assert_eq!(&parsed, &want);
            // Byte for byte as serde_json writes the operation (no escape of its own).
            let op = serde_json::to_string(&serde_json::json!({"op": style.op("replace"), "path": path, "value": value}))
                .expect("JSON");
            let mut ours = String::new();
            push_replace(&mut ours, style, &path, &text);
            let (a, b): (serde_json::Value, serde_json::Value) =
                (serde_json::from_str(&ours).expect("JSON"), serde_json::from_str(&op).expect("JSON"));
            proptest::prop_assert_eq!(a, b);
            let path_json = serde_json::to_string(&path).expect("JSON");
            proptest::prop_assert!(ours.contains(&format!(r#""path":{path_json},"#)), "{}", ours);
        }
    }
}
