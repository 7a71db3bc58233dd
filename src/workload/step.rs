//! The operations a journey is made of, parsed from strings such as `assign_role:employee`.

use crate::vocab::Op;

/// One step of a journey. Steps act on the journey's current user (the one it created, or one
/// taken from the prepopulated pool or the feeder) and current group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateUser,
    /// GET by id.
    GetUser,
    /// GET with `filter=userName eq "…"`.
    FindUser,
    /// GET a page of users (`count=10`).
    ListUsers,
    /// PATCH replace of a few attributes.
    ModifyUser,
    /// PUT of the whole user.
    ReplaceUser,
    AssignRole(String),
    RemoveRole(String),
    DisableUser,
    EnableUser,
    DeleteUser,
    CreateGroup,
    AddToGroup,
    RemoveFromGroup,
    DeleteGroup,
    /// A custom operation (`[operations.NAME]`): its name and index in `Workload::operations`.
    Custom {
        name: String,
        index: usize,
    },
}

/// How steps are written in a journey (those that take a role name it).
pub const STEP_NAMES: &[&str] = &[
    "create_user",
    "get_user",
    "find_user",
    "list_users",
    "modify_user",
    "replace_user",
    "assign_role:ROLE",
    "remove_role:ROLE",
    "disable_user",
    "enable_user",
    "delete_user",
    "create_group",
    "add_to_group",
    "remove_from_group",
    "delete_group",
];

impl Step {
    pub fn parse(text: &str) -> Result<Step, String> {
        Self::parse_with(text, &[])
    }

    /// Parses a step, a custom operation's name among `custom` (in `Workload::operations` order).
    pub fn parse_with(text: &str, custom: &[&str]) -> Result<Step, String> {
        if let Some(index) = custom.iter().position(|c| *c == text.trim()) {
            return Ok(Step::Custom {
                name: custom[index].to_string(),
                index,
            });
        }
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (text.trim(), None),
        };
        let Some(op) = Op::parse(name) else {
            let known: Vec<&str> = Op::NAMES.iter().chain(custom).copied().collect();
            let listed: Vec<&str> = STEP_NAMES.iter().chain(custom).copied().collect();
            let hint = super::error::did_you_mean(name, &known)
                .map(|b| format!(": did you mean `{b}`?"))
                .unwrap_or_else(|| format!(" (known: {})", listed.join(", ")));
            return Err(format!("unknown step `{name}`{hint}"));
        };
        let role = || match arg {
            Some(r) if !r.is_empty() => Ok(r.to_string()),
            _ => Err(format!("`{name}` needs a role, e.g. `{name}:employee`")),
        };
        let step = match op {
            Op::AssignRole => return Ok(Step::AssignRole(role()?)),
            Op::RemoveRole => return Ok(Step::RemoveRole(role()?)),
            Op::CreateUser => Step::CreateUser,
            Op::GetUser => Step::GetUser,
            Op::FindUser => Step::FindUser,
            Op::ListUsers => Step::ListUsers,
            Op::ModifyUser => Step::ModifyUser,
            Op::ReplaceUser => Step::ReplaceUser,
            Op::DisableUser => Step::DisableUser,
            Op::EnableUser => Step::EnableUser,
            Op::DeleteUser => Step::DeleteUser,
            Op::CreateGroup => Step::CreateGroup,
            Op::AddToGroup => Step::AddToGroup,
            Op::RemoveFromGroup => Step::RemoveFromGroup,
            Op::DeleteGroup => Step::DeleteGroup,
        };
        if arg.is_some() {
            return Err(format!("step `{name}` takes no `:argument`"));
        }
        Ok(step)
    }

    /// The `op` tag its latency is recorded under.
    pub fn name(&self) -> &str {
        match self {
            Step::Custom { name, .. } => name,
            builtin => builtin.builtin().map_or("", Op::as_str),
        }
    }

    /// The built-in operation it is, if it is one.
    pub fn builtin(&self) -> Option<Op> {
        Some(match self {
            Step::Custom { .. } => return None,
            Step::CreateUser => Op::CreateUser,
            Step::GetUser => Op::GetUser,
            Step::FindUser => Op::FindUser,
            Step::ListUsers => Op::ListUsers,
            Step::ModifyUser => Op::ModifyUser,
            Step::ReplaceUser => Op::ReplaceUser,
            Step::AssignRole(_) => Op::AssignRole,
            Step::RemoveRole(_) => Op::RemoveRole,
            Step::DisableUser => Op::DisableUser,
            Step::EnableUser => Op::EnableUser,
            Step::DeleteUser => Op::DeleteUser,
            Step::CreateGroup => Op::CreateGroup,
            Step::AddToGroup => Op::AddToGroup,
            Step::RemoveFromGroup => Op::RemoveFromGroup,
            Step::DeleteGroup => Op::DeleteGroup,
        })
    }

    fn needs_user(&self) -> bool {
        !matches!(
            self,
            Step::CreateUser | Step::ListUsers | Step::CreateGroup | Step::DeleteGroup | Step::Custom { .. }
        )
    }

    /// True for steps that change a user a journey did not create (forbidden on borrowed users).
    pub fn mutates_user(&self) -> bool {
        matches!(
            self,
            Step::ModifyUser
                | Step::ReplaceUser
                | Step::AssignRole(_)
                | Step::RemoveRole(_)
                | Step::DisableUser
                | Step::EnableUser
                | Step::DeleteUser
                | Step::AddToGroup
                | Step::RemoveFromGroup
        )
    }
}

/// Why a journey needs users that exist before the run, if it does.
pub fn needs_existing_user(steps: &[Step]) -> Option<String> {
    let first_create = steps.iter().position(|s| *s == Step::CreateUser);
    let first_need = steps.iter().position(Step::needs_user)?;
    match first_create {
        Some(c) if c < first_need => None,
        _ => Some(format!(
            "starts with `{}` before any `create_user`",
            steps[first_need].name()
        )),
    }
}

/// The first step that would change a user the journey did not create (a pooled or fed user).
pub fn mutates_borrowed_user(steps: &[Step]) -> Option<&Step> {
    let first_create = steps.iter().position(|s| *s == Step::CreateUser).unwrap_or(steps.len());
    steps[..first_create].iter().find(|s| s.mutates_user())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_steps_with_and_without_arguments() {
        assert_eq!(Step::parse("create_user"), Ok(Step::CreateUser));
        assert_eq!(
            Step::parse("assign_role:employee"),
            Ok(Step::AssignRole("employee".into()))
        );
        assert!(Step::parse("assign_role").unwrap_err().contains("needs a role"));
        assert!(Step::parse("delete_user:x").unwrap_err().contains("takes no"));
        assert!(
            Step::parse("create_usr")
                .unwrap_err()
                .contains("did you mean `create_user`")
        );
    }

    #[test]
    fn journeys_that_borrow_users_are_detected() {
        assert!(needs_existing_user(&[Step::CreateUser, Step::FindUser]).is_none());
        assert!(needs_existing_user(&[Step::FindUser]).is_some());
        assert!(needs_existing_user(&[Step::ListUsers]).is_none());
    }
}
