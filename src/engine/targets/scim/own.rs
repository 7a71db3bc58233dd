//! The journeys' ownership gate (invariant 4 for what a SCIM journey creates; cleanup's is
//! `requests::owned`): a user or group a journey created is changed or deleted only once a
//! GET of the id its create answered shows the marked identity it was created with (its
//! `userName`, its `displayName`, judged by `requests::shows_identity_of`). A create that answered
//! somebody else's id beside the run's name would otherwise have the journey's PATCHes, its
//! DELETE, or a membership that grants a role, sent to that resource.
//!
//! Every step that changes the journey's user or group (or makes the user a member of a group)
//! takes the id from here, and nowhere else. One read per created user or group: a `get_user`
//! step before the first change is that read (its answer judged the same way, [`read_proves`]);
//! otherwise the first change makes it, recorded under `api_latency{op=get_user}` (`get_group`)
//! and not in the change's own latency.

use reqwest::Method;
use tokio::time::Instant;

use super::Cx;
use super::wire::{Identified, member, parse, send};
use crate::engine::state::{AdminState, CurrentUser, JourneyState, StepEnd, payload, user, user_id};
use crate::engine::targets::requests::shows_identity_of;
use crate::vocab::{MetricKey, metric, tag};

/// The id of the journey's user, for a step that changes it (or makes it a member): a user the
/// journey did not create is refused, and one it created is read first, once.
pub(super) async fn user_for_change(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
) -> Result<String, StepEnd> {
    let u = user(ctx, admin, state)?;
    let id = user_id(u)?;
    if !u.owned {
        return Err(payload(format!(
            "user {id} was not created by this journey: a journey changes only users it created"
        )));
    }
    if !u.proven {
        prove(ctx, "Users", &id, "userName", &u.user_name, "get_user").await?;
        u.proven = true;
    }
    Ok(id)
}

/// The id of the group this journey created, for a step that changes or deletes it: read
/// first, once.
pub(super) async fn group_for_change(ctx: &Cx<'_>, state: &mut JourneyState) -> Result<String, StepEnd> {
    let Some(group) = state.group.as_mut().filter(|g| g.owned) else {
        return Err(payload("no group created in this journey to change"));
    };
    if !group.proven {
        prove(
            ctx,
            "Groups",
            &group.id,
            "displayName",
            &group.display_name,
            "get_group",
        )
        .await?;
        group.proven = true;
    }
    Ok(group.id.clone())
}

/// Before a custom step: the user and the group this journey created are proven first when the
/// step, or the cleanup it leaves for later (rendered now, sent at cleanup with no read of its
/// own), names them (`{id}`, `{group_id}`) in a request that may change something (any method
/// but GET, HEAD and OPTIONS). Those names always mean the journey's own user and group: no
/// extracted value may take them (`workload::operations`). Users it did not create (pooled,
/// fed) are the workload's to name, as its validation allows.
pub(super) async fn before_custom_step(
    ctx: &Cx<'_>,
    admin: &mut AdminState,
    state: &mut JourneyState,
    index: usize,
) -> Result<(), StepEnd> {
    let user_unproven = state.user.as_ref().is_some_and(|u| u.owned && !u.proven);
    let group_unproven = state.group.as_ref().is_some_and(|g| g.owned && !g.proven);
    if !(user_unproven || group_unproven) {
        // Once proven, a custom step costs no look at its names.
        return Ok(());
    }
    let op = &ctx.workload.operations[index];
    let undo = op.cleanup.map(|i| &ctx.workload.operations[i]);
    let names: Vec<&str> = std::iter::once(op)
        .chain(undo)
        .filter(|o| o.changes())
        .flat_map(|o| o.runtime_names())
        .collect();
    if user_unproven && names.contains(&"id") {
        user_for_change(ctx, admin, state).await?;
    }
    if group_unproven && names.contains(&"group_id") {
        group_for_change(ctx, state).await?;
    }
    Ok(())
}

/// A `get_user` step's answer about the journey's user `u`: for a user the journey created and
/// has not yet proven, the answer must show its id and its `userName`, and then proves it.
pub(super) fn read_proves(u: &mut CurrentUser, body: &[u8]) -> Result<(), StepEnd> {
    if u.owned && !u.proven {
        judge(
            body,
            "Users",
            u.id.as_deref().unwrap_or_default(),
            "userName",
            &u.user_name,
        )?;
        u.proven = true;
    }
    Ok(())
}

/// Reads `collection/id` and judges the answer ([`judge`]). Its latency is recorded under
/// `op`; a read that fails fails the change that needed it, which is then not sent.
async fn prove(
    ctx: &Cx<'_>,
    collection: &str,
    id: &str,
    attribute: &str,
    identity: &str,
    op: &str,
) -> Result<(), StepEnd> {
    let series = ctx
        .registry
        .series(MetricKey::new(metric::API_LATENCY).tag(tag::OP, op));
    let began = Instant::now();
    let reply = match send(ctx, series, Method::GET, &member(collection, id)?, None, &[200]).await {
        Ok(reply) => reply,
        Err(StepEnd::Failed(mut e)) => {
            e.detail = format!(
                "reading {collection}/{id}, which this journey created, before its first change: {}",
                e.detail
            );
            return Err(StepEnd::Failed(e));
        }
        Err(other) => return Err(other),
    };
    ctx.registry.record(series, began.elapsed().as_micros() as u64);
    judge(&reply.body, collection, id, attribute, identity)
}

/// Whether an answer to a GET of `collection/id` proves the resource is the one the journey
/// created: it names `id`, and its `attribute` is `identity`. Somebody else's name is not
/// printed, only that it is not the run's.
fn judge(body: &[u8], collection: &str, id: &str, attribute: &str, identity: &str) -> Result<(), StepEnd> {
    if shows_identity_of(body, id, attribute, identity) {
        return Ok(());
    }
    // Said apart only now: most answers prove, in one pass.
    let r: Identified = parse(body)?;
    if r.id.as_deref() != Some(id) {
        return Err(payload(format!("GET /{collection}/{id} answered id {:?}", r.id)));
    }
    Err(payload(format!(
        "GET /{collection}/{id}, the id its create answered, shows a resource whose {attribute} is not `{identity}`: not the run's, so this journey neither changes nor deletes it"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "pb-0a1b2c3d-7@example.test";

    /// Only an answer about this very id that shows this very name proves a user: another id,
    /// another name, a lookalike, a name given in another attribute or not as a string, or no
    /// JSON object at all, proves nothing.
    #[test]
    fn only_the_recorded_identity_under_the_id_proves_a_resource() {
        let proves = |body: &str| judge(body.as_bytes(), "Users", "7", "userName", NAME).is_ok();
        assert!(proves(&format!(r#"{{"id":"7","userName":"{NAME}"}}"#)));
        assert!(proves(&format!(r#"{{"id":"7","userName":"{}"}}"#, NAME.to_uppercase())));
        for refused in [
            format!(r#"{{"id":"8","userName":"{NAME}"}}"#),
            r#"{"id":"7","userName":"admin"}"#.to_string(),
            format!(r#"{{"id":"7","userName":"{NAME}x"}}"#),
            format!(r#"{{"id":"7","userName":" {NAME}"}}"#),
            format!(r#"{{"id":"7","displayName":"{NAME}"}}"#),
            format!(r#"{{"id":"7","userName":["{NAME}"]}}"#),
            format!(r#"{{"id":"7","emails":[{{"value":"{NAME}"}}]}}"#),
            format!(r#"[{{"id":"7","userName":"{NAME}"}}]"#),
            r#"{"id":"7"}"#.to_string(),
        ] {
            assert!(!proves(&refused), "{refused}");
        }
    }

    /// A `get_user` answer proves the created user once; a pooled user (not created) is never
    /// proven by it, and an answer about somebody else fails the step.
    #[test]
    fn a_get_user_answer_proves_only_a_created_user_it_shows() {
        let mut u = CurrentUser::default();
        (u.id, u.user_name, u.owned) = (Some("7".into()), NAME.into(), true);
        assert!(read_proves(&mut u, br#"{"id":"7","userName":"admin"}"#).is_err());
        assert!(!u.proven);
        assert!(read_proves(&mut u, format!(r#"{{"id":"7","userName":"{NAME}"}}"#).as_bytes()).is_ok());
        assert!(u.proven);
        let mut pooled = CurrentUser::default();
        (pooled.id, pooled.user_name) = (Some("9".into()), "alice@example.test".into());
        assert!(read_proves(&mut pooled, br#"{"id":"9","userName":"bob"}"#).is_ok());
        assert!(!pooled.proven);
    }
}
