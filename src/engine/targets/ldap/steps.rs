//! The built-in journey steps against a target of kind `ldap`: each step one LDAP operation (add,
//! search, modify, delete) on the directory's pooled connections, timed like every other step;
//! writes handed to the probes and checks as SCIM writes are. What each step writes comes from
//! `[directory]` (see [`crate::workload::directory`]).

use std::collections::HashSet;

use super::entry::{EntryShape, Rendered};
use crate::engine::state::{
    AdminState, JourneyGroup, JourneyState, Run, StepEnd, created, current_id, payload, role_observed, user, user_id,
    want_observation_of,
};
use crate::http::CallError;
use crate::ldap::{Directory, Mod, Removed, Scope, ldap_escape};
use crate::probes::condition::{Expect, Field};
use crate::workload::Step;
use crate::workload::directory::{Change, LdapRoles, LdapTarget, text};
use crate::workload::template::Vars;

/// The operation a step sends, for failure samples.
pub fn request_line(t: &LdapTarget, step: &Step) -> &'static str {
    match step {
        Step::CreateUser | Step::CreateGroup => "LDAP add",
        Step::GetUser => "LDAP search (base)",
        Step::FindUser => "LDAP search (naming attribute)",
        Step::ListUsers => "LDAP search (one level, 10 entries)",
        Step::AssignRole(_) | Step::RemoveRole(_) if t.roles == LdapRoles::Groups => "LDAP modify (role group)",
        Step::AddToGroup | Step::RemoveFromGroup => "LDAP modify (group)",
        Step::DeleteUser | Step::DeleteGroup => "LDAP delete",
        _ => "LDAP modify",
    }
}

/// Runs `step` against the journey's state.
pub async fn execute(
    ctx: &Run,
    dir: &Directory,
    (t, entry): (&LdapTarget, &EntryShape),
    admin: &mut AdminState,
    step: &Step,
    state: &mut JourneyState,
) -> Result<(), StepEnd> {
    match step {
        Step::CreateUser => create_user(ctx, dir, (t, entry), admin, state).await,
        Step::GetUser => {
            let dn = current_id(ctx, admin, state)?;
            let found = call(ctx, dir.search(&dn, Scope::Base, "(objectClass=*)", &["1.1"], None)).await?;
            match found.first() {
                Some(e) if e.dn.eq_ignore_ascii_case(&dn) => Ok(()),
                _ => Err(payload(format!("no entry {dn}"))),
            }
        }
        Step::FindUser => {
            let u = user(ctx, admin, state)?;
            let filter = format!("({}={})", t.rdn, ldap_escape(u.user_name.as_str()));
            let found = call(ctx, dir.search(&t.base_dn, Scope::Subtree, &filter, &["1.1"], None)).await?;
            let Some(entry) = found.first() else {
                return Err(payload(format!("filter {filter} found no entry under {}", t.base_dn)));
            };
            if u.id.is_none() {
                u.id = Some(entry.dn.clone());
            }
            Ok(())
        }
        Step::ListUsers => {
            let filter = format!("(objectClass={})", ldap_escape(t.object_classes[0].as_str()));
            call(
                ctx,
                dir.search(&t.base_dn, Scope::OneLevel, &filter, &["1.1"], Some(10)),
            )
            .await?;
            Ok(())
        }
        Step::ModifyUser => modify_user(ctx, dir, t, admin, state).await,
        Step::ReplaceUser => {
            let u = user(ctx, admin, state)?;
            let dn = user_id(u)?;
            let vars = vars(ctx, admin, u.seq);
            // The password is not among the attributes: a replace leaves it as it is.
            let mods = t
                .attributes
                .iter()
                .map(|(a, values)| Mod::Replace(a.clone(), values.iter().map(|v| text(v, &vars)).collect()))
                .collect();
            call(ctx, dir.modify(&dn, mods)).await
        }
        Step::AssignRole(role) => role_change(ctx, dir, t, admin, state, role, true).await,
        Step::RemoveRole(role) => role_change(ctx, dir, t, admin, state, role, false).await,
        Step::DisableUser => set_active(ctx, dir, &t.disable, admin, state, false).await,
        Step::EnableUser => set_active(ctx, dir, &t.enable, admin, state, true).await,
        Step::DeleteUser => {
            let u = user(ctx, admin, state)?;
            let dn = user_id(u)?;
            if call(ctx, dir.delete(&dn)).await? == Removed::AlreadyGone {
                return Err(payload(format!("{dn} was already gone (noSuchObject)")));
            }
            u.mark_deleted();
            want_observation_of(ctx, state, step, || Expect::Absent);
            Ok(())
        }
        Step::CreateGroup => create_group(ctx, dir, t, admin, state).await,
        Step::AddToGroup | Step::RemoveFromGroup => {
            let Some(group) = state.group.as_ref().map(|g| g.id.clone()) else {
                return Err(payload("no group to use: add create_group first"));
            };
            let dn = current_id(ctx, admin, state)?;
            membership(ctx, dir, t, &group, &dn, matches!(step, Step::AddToGroup)).await
        }
        Step::DeleteGroup => {
            let Some(group) = state.group.as_mut().filter(|g| g.owned) else {
                return Err(payload("no group created in this journey to delete"));
            };
            call(ctx, dir.delete(&group.id)).await?;
            group.owned = false;
            Ok(())
        }
        Step::Custom { .. } => Err(payload("custom operations do not run against an ldap target")),
    }
}

/// An LDAP request, cut short by Ctrl-C or SIGTERM.
async fn call<T>(ctx: &Run, request: impl std::future::Future<Output = Result<T, CallError>>) -> Result<T, StepEnd> {
    tokio::select! {
        r = request => r.map_err(StepEnd::Failed),
        _ = ctx.interrupt.cancelled() => Err(StepEnd::Interrupted),
    }
}

fn vars<'a>(ctx: &'a Run, admin: &AdminState, seq: u64) -> Vars<'a> {
    ctx.vars(admin, seq)
}

async fn create_user(
    ctx: &Run,
    dir: &Directory,
    (t, entry): (&LdapTarget, &EntryShape),
    admin: &mut AdminState,
    state: &mut JourneyState,
) -> Result<(), StepEnd> {
    let seq = ctx.next_seq();
    let vars = vars(ctx, admin, seq);
    let name = text(&t.name, &vars);
    let dn = t.user_dn(&name);
    let mut rendered = Rendered::default();
    entry.render(&vars, &mut rendered);
    let attrs = entry.attributes(&name, &rendered);
    // The entry is named by what was sent, and that carries the marker: what the journey leaves
    // goes to the ledger at its end, as for SCIM.
    call(ctx, dir.add(&dn, attrs)).await?;
    let user = created(ctx, admin, dn, name, &vars);
    state.hold_user(&ctx.ledger, user);
    want_observation_of(ctx, state, &Step::CreateUser, || Expect::Present);
    Ok(())
}

async fn modify_user(
    ctx: &Run,
    dir: &Directory,
    t: &LdapTarget,
    admin: &mut AdminState,
    state: &mut JourneyState,
) -> Result<(), StepEnd> {
    let dn = current_id(ctx, admin, state)?;
    // `{seq}` is fresh for every change: each modify sets new values a probe can tell apart.
    let vars = vars(ctx, admin, ctx.next_seq());
    let mut title = None;
    let mods = t
        .modify
        .iter()
        .map(|(a, v)| {
            let value = text(v, &vars);
            if a.eq_ignore_ascii_case("title") {
                title = Some(value.clone());
            }
            Mod::Replace(a.clone(), HashSet::from([value]))
        })
        .collect();
    call(ctx, dir.modify(&dn, mods)).await?;
    if let Some(title) = title {
        want_observation_of(ctx, state, &Step::ModifyUser, || {
            Expect::Equals(Field::Title, serde_json::Value::String(title))
        });
    }
    Ok(())
}

async fn role_change(
    ctx: &Run,
    dir: &Directory,
    t: &LdapTarget,
    admin: &mut AdminState,
    state: &mut JourneyState,
    role: &str,
    assign: bool,
) -> Result<(), StepEnd> {
    let dn = current_id(ctx, admin, state)?;
    match &t.roles {
        LdapRoles::Groups => {
            let Some(group) = ctx.role_groups.get(role) else {
                return Err(payload(format!("no group for role `{role}` (roles = \"groups\")")));
            };
            return membership(ctx, dir, t, group, &dn, assign).await;
        }
        LdapRoles::Attribute(a) => {
            let value = HashSet::from([role.to_string()]);
            let m = if assign {
                Mod::Add(a.clone(), value)
            } else {
                Mod::Delete(a.clone(), value)
            };
            call(ctx, dir.modify(&dn, vec![m])).await?;
        }
    }
    let (step, expect) = role_observed(role, assign);
    want_observation_of(ctx, state, &step, || expect);
    Ok(())
}

/// Disable or enable: the configured changes (no values: the attribute removed, whether or not
/// it was there, as a replace with no values does).
async fn set_active(
    ctx: &Run,
    dir: &Directory,
    changes: &[Change],
    admin: &mut AdminState,
    state: &mut JourneyState,
    active: bool,
) -> Result<(), StepEnd> {
    let dn = current_id(ctx, admin, state)?;
    let mods = changes
        .iter()
        .map(|c| Mod::Replace(c.attribute.clone(), c.values.iter().cloned().collect()))
        .collect();
    call(ctx, dir.modify(&dn, mods)).await?;
    let step = if active { Step::EnableUser } else { Step::DisableUser };
    want_observation_of(ctx, state, &step, || {
        Expect::Equals(Field::Active, serde_json::Value::Bool(active))
    });
    Ok(())
}

async fn create_group(
    ctx: &Run,
    dir: &Directory,
    t: &LdapTarget,
    admin: &mut AdminState,
    state: &mut JourneyState,
) -> Result<(), StepEnd> {
    let vars = vars(ctx, admin, ctx.next_seq());
    let cn = text(&t.groups.name, &vars);
    let dn = t.group_dn(&cn);
    let mut attrs = vec![
        (
            "objectClass".to_string(),
            HashSet::from([t.groups.object_class.clone()]),
        ),
        ("cn".to_string(), HashSet::from([cn.clone()])),
    ];
    // groupOfNames and groupOfUniqueNames must have a member: the account that binds is the
    // first one, as directory tools commonly do.
    if let Some(bind_dn) = &dir.endpoint().bind_dn {
        attrs.push((t.groups.member_attribute.clone(), HashSet::from([bind_dn.clone()])));
    }
    call(ctx, dir.add(&dn, attrs)).await?;
    state.hold_group(
        &ctx.ledger,
        JourneyGroup {
            id: dn,
            display_name: cn,
            owned: true,
            proven: true,
        },
    );
    Ok(())
}

async fn membership(
    ctx: &Run,
    dir: &Directory,
    t: &LdapTarget,
    group: &str,
    member: &str,
    add: bool,
) -> Result<(), StepEnd> {
    let value = HashSet::from([member.to_string()]);
    let attribute = t.groups.member_attribute.clone();
    let m = if add {
        Mod::Add(attribute, value)
    } else {
        Mod::Delete(attribute, value)
    };
    call(ctx, dir.modify(group, vec![m])).await
}
