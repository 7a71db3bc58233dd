//! The operations a journey is made of, parsed from strings such as `assign_role:employee`.

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
}

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
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (text.trim(), None),
        };
        let role = |arg: Option<&str>| match arg {
            Some(r) if !r.is_empty() => Ok(r.to_string()),
            _ => Err(format!("`{name}` needs a role, e.g. `{name}:employee`")),
        };
        let step = match name {
            "create_user" => Step::CreateUser,
            "get_user" => Step::GetUser,
            "find_user" => Step::FindUser,
            "list_users" => Step::ListUsers,
            "modify_user" => Step::ModifyUser,
            "replace_user" => Step::ReplaceUser,
            "assign_role" => return Ok(Step::AssignRole(role(arg)?)),
            "remove_role" => return Ok(Step::RemoveRole(role(arg)?)),
            "disable_user" => Step::DisableUser,
            "enable_user" => Step::EnableUser,
            "delete_user" => Step::DeleteUser,
            "create_group" => Step::CreateGroup,
            "add_to_group" => Step::AddToGroup,
            "remove_from_group" => Step::RemoveFromGroup,
            "delete_group" => Step::DeleteGroup,
            other => {
                let names: Vec<&str> = STEP_NAMES.iter().map(|s| s.split(':').next().unwrap_or(s)).collect();
                let hint = super::error::did_you_mean(other, &names)
                    .map(|b| format!(": did you mean `{b}`?"))
                    .unwrap_or_else(|| format!(" (known: {})", STEP_NAMES.join(", ")));
                return Err(format!("unknown step `{other}`{hint}"));
            }
        };
        if arg.is_some() {
            return Err(format!("step `{name}` takes no `:argument`"));
        }
        Ok(step)
    }

    /// The `op` tag its latency is recorded under.
    pub fn op(&self) -> &'static str {
        match self {
            Step::CreateUser => "create_user",
            Step::GetUser => "get_user",
            Step::FindUser => "find_user",
            Step::ListUsers => "list_users",
            Step::ModifyUser => "modify_user",
            Step::ReplaceUser => "replace_user",
            Step::AssignRole(_) => "assign_role",
            Step::RemoveRole(_) => "remove_role",
            Step::DisableUser => "disable_user",
            Step::EnableUser => "enable_user",
            Step::DeleteUser => "delete_user",
            Step::CreateGroup => "create_group",
            Step::AddToGroup => "add_to_group",
            Step::RemoveFromGroup => "remove_from_group",
            Step::DeleteGroup => "delete_group",
        }
    }

    fn needs_user(&self) -> bool {
        !matches!(
            self,
            Step::CreateUser | Step::ListUsers | Step::CreateGroup | Step::DeleteGroup
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
            steps[first_need].op()
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
