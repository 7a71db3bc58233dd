//! The built-in journey steps as SCIM requests: what each sends, what it accepts as an answer
//! (status and the essential payload), and what it hands to the probes. One function per kind
//! of step.

use std::borrow::Cow;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Deserializer};

use super::Cx;
use crate::engine::state::{
    AdminState, JourneyGroup, JourneyState, StepEnd, created, current_id, no_id, payload, role_observed, user, user_id,
    want_observation,
};
use crate::engine::targets::requests;
use crate::http::client::encode_query;
use crate::http::{CallError, Reply};
use crate::ledger::Created;
use crate::metrics::SeriesId;
use crate::probes::condition::{Expect, Field};
use crate::workload::dialect::{PatchStyle, Roles};
use crate::workload::template::Vars;
use crate::workload::{Step, Workload};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "userName", deserialize_with = "text")]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "displayName", deserialize_with = "text")]
    display_name: Option<Cow<'a, str>>,
}

/// A string of the answer, borrowed from its bytes unless it holds escapes: serde's derive
/// copies every `Option<Cow<str>>` into a new `String` (three per parsed answer).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text<'de>(Cow<'de, str>);
    impl<'de> Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Text<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(s.to_string())))
                }
                fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(s)))
                }
            }
            d.deserialize_str(Visit)
        }
    }
    Option::<Text<'de>>::deserialize(d).map(|t| t.map(|t| t.0))
}

/// An answer whose id is all a step checks (a read, a change): the same `id` rule as
/// [`Resource`]'s (a string, borrowed unless escaped; `null` or absent is none; given twice or
/// anything else refuses the answer), without reading the names a create needs. The rest of the
/// object is still read through, so an answer that is not one JSON object is refused; a JSON
/// list is refused too (serde's derive reads `["1"]` as a struct whose first field is `"1"`).
struct Identified<'a> {
    id: Option<Cow<'a, str>>,
}

/// Whether a key is `id`, as the derive matches a field name: read in place, never copied.
struct IsId;

impl<'de> serde::de::DeserializeSeed<'de> for IsId {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = bool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, s: &str) -> Result<bool, E> {
                Ok(s == "id")
            }
        }
        d.deserialize_identifier(Visit)
    }
}

impl<'de> Deserialize<'de> for Identified<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Identified<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a resource (a JSON object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Identified<'de>, A::Error> {
                /// `text`'s rule, as a seed for the `id`'s value.
                struct Id;
                impl<'de> serde::de::DeserializeSeed<'de> for Id {
                    type Value = Option<Cow<'de, str>>;
                    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                        text(d)
                    }
                }
                let mut id = None;
                while let Some(is_id) = map.next_key_seed(IsId)? {
                    if !is_id {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else if id.is_some() {
                        return Err(serde::de::Error::duplicate_field("id"));
                    } else {
                        id = Some(map.next_value_seed(Id)?);
                    }
                }
                Ok(Identified { id: id.flatten() })
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Deserialize)]
struct ListResponse<'a> {
    #[serde(default, rename = "totalResults")]
    total_results: Option<u64>,
    #[serde(borrow, default, rename = "Resources")]
    resources: Vec<Resource<'a>>,
}

/// Every answer a step reads is a SCIM resource or list, a JSON object (RFC 7644): serde's
/// derive would also read a JSON array as the struct's fields in order, so `["<id>", "<name>"]`
/// passed as a user. Decided here, for every type read.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, StepEnd> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(answered("answer is not a JSON object", body));
    }
    serde_json::from_slice(body).map_err(|e| answered(&format!("answer is not the expected JSON: {e}"), body))
}

/// A payload error that shows what came back: "no id" alone never says why.
fn answered(detail: &str, body: &[u8]) -> StepEnd {
    let shown = crate::redact::sample(&String::from_utf8_lossy(&body[..body.len().min(4096)]), 120);
    StepEnd::Failed(CallError::payload(format!("{detail} (the answer: {shown})")))
}

/// A step's request with the SCIM target's client.
async fn send(
    ctx: &Cx<'_>,
    series: SeriesId,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    expected: &[u16],
) -> Result<Reply, StepEnd> {
    requests::send(ctx.run, ctx.client, series, method, path, body, expected).await
}

/// The path of the member `id` of `collection` (`Users`, `Groups`): an id the target answered
/// that cannot be one path segment fails the step, and nothing is sent for it.
fn member(collection: &str, id: &str) -> Result<String, StepEnd> {
    crate::http::url::member(collection, id)
        .map_err(|why| payload(format!("the target's id {id:?} cannot name a resource: {why}")))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

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
        Step::Custom { index, .. } => ctx.http.custom(ctx.run, admin, state, series, *index).await,
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
    match list.resources.first().and_then(|r| r.id.as_deref()) {
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
    let id = current_id(ctx, admin, state)?;
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
    let u = user(ctx, admin, state)?;
    let id = user_id(u)?;
    let vars = Vars {
        run_id: ctx.run_id.as_str(),
        seq: u.seq,
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
    let id = current_id(ctx, admin, state)?;
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
    let id = current_id(ctx, admin, state)?;
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
    let u = user(ctx, admin, state)?;
    let id = user_id(u)?;
    let reply = send(ctx, series, Method::DELETE, &member("Users", &id)?, None, &[204, 200]).await?;
    deleted(&reply)?;
    u.mark_deleted();
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
    let gid = match (&state.group, &ctx.shared_group) {
        (Some(JourneyGroup { id: g, .. }), _) | (None, Some(g)) => g.clone(),
        (None, None) => return Err(payload("no group to use: add create_group first")),
    };
    let uid = current_id(ctx, admin, state)?;
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
    let Some(group) = state.group.as_mut().filter(|g| g.owned) else {
        return Err(payload("no group created in this journey to delete"));
    };
    let path = member("Groups", &group.id)?;
    let reply = send(ctx, series, Method::DELETE, &path, None, &[204, 200]).await?;
    deleted(&reply)?;
    group.owned = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    /// An answer's id and names are read without a copy unless they hold escapes (serde's derive
    /// copied each of them, three strings per parsed answer); what is not a string stays refused.
    #[test]
    fn answer_strings_are_borrowed_unless_escaped() {
        let body = br#"{"id":"2819c223","userName":"a\u0041@example.test","meta":{"version":"W/\"1\""}}"#;
        let r: Resource = parse(body).unwrap_or_else(|_| panic!("parses"));
        assert!(matches!(r.id, Some(Cow::Borrowed("2819c223"))), "{:?}", r.id);
        assert!(
            matches!(&r.user_name, Some(Cow::Owned(n)) if n == "aA@example.test"),
            "{:?}",
            r.user_name
        );
        assert!(r.display_name.is_none());
        let r: Resource = parse(br#"{"id":null}"#).unwrap_or_else(|_| panic!("parses"));
        assert!(r.id.is_none());
        assert!(parse::<Resource>(br#"{"id":42}"#).is_err(), "a number is no id");
        assert!(parse::<Resource>(br#"{"id":["x"]}"#).is_err(), "a list is no id");
    }

    /// Regression: a create answered `["<id>", "<name>"]` was read as a user with that id and
    /// name (serde's derive reads an array as the fields in order), and so recorded.
    #[test]
    fn only_a_json_object_is_an_answer() {
        for body in [
            &br#"["u1","pb-00000001-1@example.test"]"#[..],
            br#"  [ "u1" ]"#,
            br#""u1""#,
            b"null",
            b"",
        ] {
            assert!(parse::<Resource>(body).is_err(), "{}", String::from_utf8_lossy(body));
            assert!(parse::<Identified>(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        assert!(parse::<Resource>(b" \n{\"id\":\"u1\"}").is_ok());
    }

    /// Reads and changes check the answer's id alone: `Identified` reads it by the very rule
    /// `Resource` does (borrowed unless escaped, `null` or absent as none, anything else
    /// refused), and an answer that is not one JSON object stays refused.
    #[test]
    fn an_answer_read_for_its_id_alone_is_judged_as_before() {
        let body = br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"b@x.test","active":true}"#;
        let r: Identified = parse(body).unwrap_or_else(|_| panic!("parses"));
        assert!(matches!(r.id, Some(Cow::Borrowed("1"))), "{:?}", r.id);
        let r: Identified = parse(br#"{"id":"a\u0041"}"#).unwrap_or_else(|_| panic!("parses"));
        assert!(matches!(&r.id, Some(Cow::Owned(id)) if id == "aA"), "{:?}", r.id);
        for none in [&br#"{"id":null}"#[..], br#"{}"#, br#"{"userName":"x"}"#] {
            let r: Identified = parse(none).unwrap_or_else(|_| panic!("parses"));
            assert!(r.id.is_none());
        }
        for refused in [
            &br#"{"id":42}"#[..],
            br#"{"id":["x"]}"#,
            br#"["x"]"#,
            br#"{"id":"1""#,
            br#"{"id":"1"} trailing"#,
            b"<html>",
            br#"{"id":"1","meta":{"#,
        ] {
            assert!(
                parse::<Identified>(refused).is_err(),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
    }

    /// Keys written with escapes are the keys they spell, for `Identified` as for `Resource`:
    /// `"i\u0064"` is `id` (its value read, and a second `id` refused however it is written),
    /// while an `id` inside a nested object, or a key that only looks like one, is not the
    /// answer's id. An answer about another user stays another user's.
    #[test]
    fn escaped_and_nested_ids_are_read_as_resource_reads_them() {
        for body in [
            &br#"{"i\u0064":"7"}"#[..],
            br#"{"id":"7","i\u0064":"8"}"#,
            br#"{"i\u0064":"8","id":"7"}"#,
            br#"{"meta":{"id":"7"},"id":"8"}"#,
            br#"{"meta":{"id":"7"}}"#,
            br#"{"\u0069d":"7"}"#,
            br#"{"id ":"7"}"#,
            br#"{"ID":"7"}"#,
            br#"{"id":"7\u0000"}"#,
            br#"{"id":"\ud800"}"#,
            br#"{"id":true}"#,
            br#"{"id":{"value":"7"}}"#,
            br#"[{"id":"7"}]"#,
        ] {
            let text = String::from_utf8_lossy(body);
            match (parse::<Resource>(body), parse::<Identified>(body)) {
                (Ok(r), Ok(i)) => assert_eq!(r.id, i.id, "{text}"),
                (Err(_), Err(_)) => {}
                (r, i) => panic!(
                    "{text}: Resource {:?}, Identified {:?}",
                    r.ok().map(|r| r.id),
                    i.ok().map(|i| i.id)
                ),
            }
        }
        let other: Identified = parse(br#"{"i\u0064":"8","meta":{"id":"7"}}"#).unwrap_or_else(|_| panic!("parses"));
        assert_eq!(other.id.as_deref(), Some("8"), "user 8's answer is not user 7's");
    }

    proptest::proptest! {
        /// Over generated answers (ids of any text, names of any JSON value, members in any
        /// order, duplicates among them), whatever `Resource` reads as the id `Identified`
        /// reads too, and an answer `Resource` refuses for its id or its syntax `Identified`
        /// refuses as well. (`Resource` also refuses a name that is not a string; reads never
        /// used those names.)
        #[test]
        fn identified_reads_the_id_resource_reads(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["id", "userName", "displayName", "active", "meta"]),
                    proptest::prop_oneof![
                        proptest::string::string_regex(r#"[a-zA-Z0-9\u{e9}"/\\ -]{0,12}"#).expect("regex")
                            .prop_map(serde_json::Value::String),
                        proptest::strategy::Just(serde_json::Value::Null),
                        (0i64..100).prop_map(serde_json::Value::from),
                        proptest::strategy::Just(serde_json::json!(["x"])),
                        proptest::strategy::Just(serde_json::json!({"id": "inner"})),
                    ],
                ),
                0..5,
            ),
            cut in proptest::option::of(0usize..200),
        ) {
            let mut text = String::from("{");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(k).expect("key"));
                text.push(':');
                text.push_str(&serde_json::to_string(v).expect("value"));
            }
            text.push('}');
            let body = match cut {
                Some(n) if n < text.len() && text.is_char_boundary(n) => &text.as_bytes()[..n],
                _ => text.as_bytes(),
            };
            // What `Resource` alone refuses: a name that is not text, or a name given twice.
            let names = || members.iter().filter(|(k, _)| *k == "userName" || *k == "displayName");
            let names_are_text = names().all(|(_, v)| v.is_string() || v.is_null())
                && names().filter(|(k, _)| *k == "userName").count() <= 1
                && names().filter(|(k, _)| *k == "displayName").count() <= 1;
            match (parse::<Resource>(body), parse::<Identified>(body)) {
                (Ok(r), Ok(i)) => proptest::prop_assert_eq!(r.id, i.id),
                (Ok(_), Err(_)) => proptest::prop_assert!(false, "Identified refused what Resource read: {}", text),
                (Err(_), Ok(_)) => proptest::prop_assert!(!names_are_text, "Identified read what Resource refused: {}", text),
                (Err(_), Err(_)) => {}
            }
        }
    }

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
