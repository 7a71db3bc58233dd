//! The words every layer shares, defined once: metric names, tag names, the operations a journey
//! performs, the kinds of checks, and the metric key `(metric, tags)` that every producer records
//! through and every consumer reads through. Imports nothing from the crate.
//!
//! # Layout
//! - [`key`]: [`MetricKey`] and its text forms (hlog tag, CSV tags, display).
//! - [`series`]: a series as people read it (`create_user → crm`) and its one style (colour, dash).

pub mod key;
pub mod series;

use std::fmt;

pub use key::MetricKey;

/// Metric names. A new metric needs no new plumbing, only a name here.
pub mod metric {
    /// Request sent (or, open model, its intended start) to the full response read, per `op`.
    pub const API_LATENCY: &str = "api_latency";
    /// How long an open-model arrival waited for a free virtual admin.
    pub const ADMIN_WAIT: &str = "admin_wait";
    /// Provisioning request accepted to the job started, per `op`.
    pub const QUEUE_DELAY: &str = "queue_delay";
    /// Write acknowledged to the change first observed in a linked service, per `service` and `op`.
    pub const SYNC_LAG: &str = "sync_lag";
    /// Write acknowledged to visible in every linked service, per `op`.
    pub const END_TO_END: &str = "end_to_end";
    /// A created user's password-grant login.
    pub const LOGIN_LATENCY: &str = "login_latency";
    /// Create acknowledged to the first successful login.
    pub const LOGIN_READY_LAG: &str = "login_ready_lag";
    /// Disable/delete acknowledged to access first observed gone, per `service`.
    pub const REVOCATION_LAG: &str = "revocation_lag";
    /// Create acknowledged to its audit entry.
    pub const AUDIT_LAG: &str = "audit_lag";

    /// Threshold pseudo-metrics: counters judged over other series.
    pub const ERRORS: &str = "errors";
    pub const TIMEOUTS: &str = "timeouts";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const CHECKS: &str = "checks";

    /// Every metric a run can record, for validation and hints.
    pub const RECORDED: &[&str] = &[
        API_LATENCY,
        ADMIN_WAIT,
        QUEUE_DELAY,
        SYNC_LAG,
        END_TO_END,
        LOGIN_LATENCY,
        LOGIN_READY_LAG,
        REVOCATION_LAG,
        AUDIT_LAG,
    ];
}

/// Tag names.
pub mod tag {
    pub const OP: &str = "op";
    pub const SERVICE: &str = "service";
    /// In `timeouts{metric=..}` and `rate_limited{metric=..}`: the metric whose counter is meant.
    pub const METRIC: &str = "metric";
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub const NAMES: &'static [&'static str] = &[$($text,)*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// An operation: the `op` tag of `api_latency` and of the asynchronous metrics.
    Op {
        CreateUser = "create_user",
        GetUser = "get_user",
        FindUser = "find_user",
        ListUsers = "list_users",
        ModifyUser = "modify_user",
        ReplaceUser = "replace_user",
        AssignRole = "assign_role",
        RemoveRole = "remove_role",
        DisableUser = "disable_user",
        EnableUser = "enable_user",
        DeleteUser = "delete_user",
        CreateGroup = "create_group",
        AddToGroup = "add_to_group",
        RemoveFromGroup = "remove_from_group",
        DeleteGroup = "delete_group",
    }
}

impl Op {
    /// Writes to a user whose effect probes can observe in a linked service.
    pub fn is_observable_write(self) -> bool {
        matches!(
            self,
            Op::CreateUser
                | Op::ModifyUser
                | Op::AssignRole
                | Op::RemoveRole
                | Op::DisableUser
                | Op::EnableUser
                | Op::DeleteUser
        )
    }
}

named_enum! {
    /// A kind of check that proves the provisioning chain.
    CheckKind {
        Login = "login",
        Permissions = "permissions",
        Audit = "audit",
        Welcome = "welcome",
        Authorization = "authorization",
        Escalation = "escalation",
        Revocation = "revocation",
    }
}

impl CheckKind {
    /// `security`, `access` or `effects`: for `failed(checks{category=security}) == 0`.
    pub fn category(self) -> &'static str {
        match self {
            CheckKind::Authorization | CheckKind::Escalation | CheckKind::Revocation => "security",
            CheckKind::Login | CheckKind::Permissions => "access",
            CheckKind::Audit | CheckKind::Welcome => "effects",
        }
    }

    /// Checks that log in as the created users (and so need `[users] password`).
    pub fn logs_in(self) -> bool {
        matches!(self, CheckKind::Login | CheckKind::Permissions | CheckKind::Revocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::parse(op.as_str()), Some(*op));
        }
        for k in CheckKind::ALL {
            assert_eq!(CheckKind::parse(&k.to_string()), Some(*k));
        }
        assert_eq!(Op::NAMES.len(), Op::ALL.len());
        assert_eq!(Op::parse("create_usr"), None);
        assert_eq!(CheckKind::Revocation.category(), "security");
    }
}
