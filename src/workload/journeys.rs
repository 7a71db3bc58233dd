//! The `[[journey]]` sections: named, weighted sequences of steps, and what a journey may do
//! with the users and values it has (a step may act only on a user the journey created or the
//! pool provides, a custom step may use only values an earlier step gave it, each kind of
//! target runs only the steps it speaks). Owns [`Journey`].

use serde::Deserialize;
use toml::Spanned;

use super::error::{Source, WorkloadError};
use super::fields::count;
use super::limits;
use super::operations::{Operation, RUNTIME};
use super::step::{self, Step};
use super::users::Users;

#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyWire {
    pub name: Spanned<String>,
    #[serde(default)]
    pub weight: Option<Spanned<u32>>,
    pub steps: Spanned<Vec<Spanned<String>>>,
}

pub fn from_wire(src: &Source, wires: Vec<JourneyWire>, custom: &[Operation]) -> Result<Vec<Journey>, WorkloadError> {
    let custom: Vec<&str> = custom.iter().map(|o| o.name.as_str()).collect();
    if wires.is_empty() {
        return Err(src.error(
            None,
            "the workload has no [[journey]]: add at least one, e.g. steps = [\"create_user\", \"delete_user\"]",
        ));
    }
    let mut journeys = Vec::new();
    let mut names = std::collections::HashSet::new();
    for j in wires {
        if !names.insert(j.name.get_ref().clone()) {
            return Err(src.error(
                Some(j.name.span()),
                format!("journey `{}` is defined twice", j.name.get_ref()),
            ));
        }
        let weight = match &j.weight {
            Some(w) => count(src, w, "weight", 1, limits::WEIGHT)?,
            None => 1,
        };
        if j.steps.get_ref().is_empty() {
            return Err(src.error(Some(j.steps.span()), "`steps` is empty"));
        }
        let steps = j
            .steps
            .get_ref()
            .iter()
            .map(|s| Step::parse_with(s.get_ref(), &custom).map_err(|m| src.error(Some(s.span()), m)))
            .collect::<Result<Vec<_>, _>>()?;
        journeys.push(Journey {
            name: j.name.get_ref().clone(),
            weight,
            steps,
        });
    }
    Ok(journeys)
}

/// A journey may change only users it created, and may look up others only when there are some.
pub fn check_users(src: &Source, journeys: &[Journey], users: &Users) -> Result<(), WorkloadError> {
    for j in journeys {
        if let Some(step) = step::mutates_borrowed_user(&j.steps) {
            return Err(src.error(
                None,
                format!("journey `{}` would `{}` a user it did not create: put `create_user` first (only get_user, find_user and list_users may act on existing users)", j.name, step.name()),
            ));
        }
        if let Some(msg) = step::needs_existing_user(&j.steps)
            && users.prepopulate == 0
            && users.feeder.is_empty()
        {
            return Err(src.error(
                None,
                format!(
                    "journey `{}` {msg}: create a user first, or set [users] prepopulate = N or feeder = \"users.csv\"",
                    j.name
                ),
            ));
        }
    }
    Ok(())
}

/// A custom step may use a runtime value only once the journey can have it: a value an earlier
/// step extracts, or the current user's (`id`, `user_name`) and group's (`group_id`) once an
/// earlier step (or the pool) provides them.
pub fn check_custom_steps(
    src: &Source,
    journeys: &[Journey],
    ops: &[Operation],
    users: &Users,
) -> Result<(), WorkloadError> {
    let pooled = users.prepopulate > 0 || !users.feeder.is_empty();
    for j in journeys {
        let mut known: Vec<&str> = Vec::new();
        for step in &j.steps {
            match step {
                Step::Custom { index, name } => {
                    let op = &ops[*index];
                    // A user the journey did not create (pooled, fed) is only read: a step, or
                    // the cleanup it leaves, that may change what names that user is refused,
                    // as the built-in changes are (`check_users`).
                    let changes_borrowed = !known.contains(&"user")
                        && std::iter::once(op)
                            .chain(op.cleanup.map(|i| &ops[i]))
                            .filter(|o| o.changes())
                            .any(|o| o.runtime_names().iter().any(|n| matches!(*n, "id" | "user_name")));
                    if changes_borrowed {
                        return Err(src.error(
                            None,
                            format!("journey `{}`: step `{name}` (or its cleanup) is not a GET and names `{{id}}` or `{{user_name}}` before the journey creates a user: a journey changes only users it created (pooled and fed users are for reads); put `create_user` first", j.name),
                        ));
                    }
                    for n in op.runtime_names() {
                        let user_ok = matches!(n, "id" | "user_name") && (pooled || known.contains(&"user"));
                        let group_ok = n == "group_id" && known.contains(&"group");
                        if !(known.contains(&n) || user_ok || group_ok) {
                            return Err(src.error(
                                None,
                                format!("journey `{}`: step `{name}` uses `{{{n}}}` before any step provides it (extract it in an earlier custom step{})", j.name,
                                    if RUNTIME.contains(&n) { ", or create the user or group first" } else { "" }),
                            ));
                        }
                    }
                    known.extend(op.extract.iter().map(|(v, _)| v.as_str()));
                }
                Step::CreateUser => known.push("user"),
                Step::CreateGroup => known.push("group"),
                _ => {}
            }
        }
    }
    Ok(())
}

/// A target of kind `http` speaks no SCIM: only custom steps, nothing that reads SCIM.
pub fn check_http_target(
    src: &Source,
    journeys: &[Journey],
    users: &Users,
    observed: bool,
) -> Result<(), WorkloadError> {
    for j in journeys {
        if let Some(s) = j.steps.iter().find(|s| s.builtin().is_some()) {
            return Err(src.error(
                None,
                format!("journey `{}`: `{}` is a SCIM step, and a target of kind \"http\" runs custom operations only ([operations.NAME]); use kind = \"scim\" for a SCIM service", j.name, s.name()),
            ));
        }
    }
    if users.prepopulate > 0 || !users.feeder.is_empty() {
        return Err(src.error(
            None,
            "[users] prepopulate and feeder create or look up SCIM users: not for a target of kind \"http\"",
        ));
    }
    if observed {
        return Err(src.error(
            None,
            "[probes] and [checks] read SCIM users: not yet for a target of kind \"http\"",
        ));
    }
    Ok(())
}

/// A target of kind `ldap` runs the built-in steps as LDAP operations; custom operations,
/// prepopulated users and a feeder are SCIM-only so far.
pub fn check_ldap_target(src: &Source, journeys: &[Journey], users: &Users) -> Result<(), WorkloadError> {
    for j in journeys {
        if let Some(s) = j.steps.iter().find(|s| s.builtin().is_none()) {
            return Err(src.error(
                None,
                format!("journey `{}`: `{}` is a custom HTTP operation; a target of kind \"ldap\" runs the built-in steps (create_user, modify_user, disable_user, …) as LDAP operations", j.name, s.name()),
            ));
        }
    }
    if users.prepopulate > 0 || !users.feeder.is_empty() {
        return Err(src.error(
            None,
            "[users] prepopulate and feeder are not yet supported for a target of kind \"ldap\": journeys create the entries they use",
        ));
    }
    Ok(())
}
