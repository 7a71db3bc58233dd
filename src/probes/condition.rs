//! What "the change is visible" means for each kind of write, checked against a downstream
//! read: present, absent, a pointer equal to what was written, a role present or gone.

use serde_json::Value;

pub use crate::workload::probes::Pointers;

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A 2xx answer (the user exists there).
    Present,
    /// 404 or 410 (the user is gone there).
    Absent,
    /// A 2xx answer whose field equals the value.
    Equals(Field, Value),
    /// A 2xx answer whose roles hold this role.
    RoleHeld(String),
    /// A 2xx answer whose roles no longer hold this role.
    RoleGone(String),
}

/// The attributes a condition reads, found in the downstream's answer through [`Pointers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Active,
    Title,
}

/// What else counts as "the change (or a later one) is visible": the journey may change or delete
/// the user again before a slow service catches up, and the downstream then never shows this
/// write's exact state. Without this, the slowest syncs would be the ones never observed.
#[derive(Debug, Clone, Default)]
pub struct Supersession {
    /// The write's version (`W/"7"` → 7), when the target reports numeric versions.
    pub version: Option<u64>,
    /// Set once the journey's later delete of this user was acknowledged.
    pub deleted_later: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Whether each probed service has been seen holding the user (per user, shared by all its
/// observations): a 404 proves a deletion only where the user was once present.
pub type SeenIn = std::sync::Arc<Vec<std::sync::atomic::AtomicBool>>;

/// `W/"7"`, `"7"` or `7` → 7.
pub fn numeric_version(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim_start_matches("W/").trim_matches('"').parse().ok(),
        _ => None,
    }
}

/// The check, widened by what supersedes the write: a view at a later version, or gone after
/// the journey deleted the user.
pub fn check_or_later(
    expect: &Expect,
    pointers: &Pointers,
    later: &Supersession,
    seen: &std::sync::atomic::AtomicBool,
    status: u16,
    body: &[u8],
) -> Check {
    use std::sync::atomic::Ordering;
    if (200..300).contains(&status) {
        seen.store(true, Ordering::Release);
    }
    let parsed = OnceBody::new(body);
    let direct = match (expect, status) {
        // 410 is a deletion the service applied; 404 only counts where the user was once seen
        // (a slow service that never got the user answers 404 too).
        (Expect::Absent, 404) if !seen.load(Ordering::Acquire) => Check::NotYet,
        _ => check_parsed(expect, pointers, status, &parsed),
    };
    if direct == Check::Met {
        return Check::Met;
    }
    if status == 410 && later.deleted_later.load(Ordering::Acquire) {
        return Check::Met;
    }
    if let Some(mine) = later.version
        && (200..300).contains(&status)
        && let Some(v) = parsed.get()
        && let Some(theirs) = v.pointer("/meta/version").and_then(numeric_version)
        && theirs >= mine
    {
        return Check::Met;
    }
    direct
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Met,
    NotYet,
    /// A 2xx answer without the pointer the condition reads: the probe may be misconfigured.
    PointerMissing,
}

fn holds_role(body: &Value, pointer: &str, role: &str) -> Option<bool> {
    match body.pointer(pointer) {
        None | Some(Value::Null) => Some(false),
        Some(Value::Array(items)) => Some(items.iter().any(|r| match r {
            Value::String(s) => s == role,
            other => other.get("value").and_then(Value::as_str) == Some(role),
        })),
        Some(_) => None,
    }
}

/// Whether an answer (`status`, `body`) shows the expected state.
pub fn check(expect: &Expect, pointers: &Pointers, status: u16, body: &[u8]) -> Check {
    let parsed = OnceBody::new(body);
    check_parsed(expect, pointers, status, &parsed)
}

/// A body parsed at most once, on first need.
struct OnceBody<'a> {
    raw: &'a [u8],
    value: std::cell::OnceCell<Option<Value>>,
}

impl<'a> OnceBody<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Self {
            raw,
            value: std::cell::OnceCell::new(),
        }
    }
    fn get(&self) -> Option<&Value> {
        self.value
            .get_or_init(|| serde_json::from_slice(self.raw).ok())
            .as_ref()
    }
}

fn check_parsed(expect: &Expect, pointers: &Pointers, status: u16, body: &OnceBody) -> Check {
    let ok = (200..300).contains(&status);
    match expect {
        Expect::Present => {
            if ok {
                Check::Met
            } else {
                Check::NotYet
            }
        }
        Expect::Absent => {
            if status == 404 || status == 410 {
                Check::Met
            } else {
                Check::NotYet
            }
        }
        _ if !ok => Check::NotYet,
        Expect::Equals(field, want) => {
            let Some(v) = body.get() else {
                return Check::PointerMissing;
            };
            let pointer = match field {
                Field::Active => &pointers.active,
                Field::Title => &pointers.title,
            };
            match v.pointer(pointer) {
                None => Check::PointerMissing,
                Some(got) if got == want => Check::Met,
                // "False" for false, as some directories answer.
                Some(Value::String(s)) if want.is_boolean() && s.eq_ignore_ascii_case(&want.to_string()) => Check::Met,
                Some(_) => Check::NotYet,
            }
        }
        Expect::RoleHeld(role) | Expect::RoleGone(role) => {
            let Some(v) = body.get() else {
                return Check::PointerMissing;
            };
            match (holds_role(v, &pointers.roles, role), expect) {
                (None, _) => Check::PointerMissing,
                (Some(true), Expect::RoleHeld(_)) | (Some(false), Expect::RoleGone(_)) => Check::Met,
                _ => Check::NotYet,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static P: std::sync::LazyLock<Pointers> = std::sync::LazyLock::new(Pointers::default);

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn later_states_count() {
        let later = Supersession {
            version: Some(3),
            deleted_later: Default::default(),
        };
        let title = Expect::Equals(Field::Title, json!("A"));
        let v = |n: u64| body(json!({"title": "B", "meta": {"version": format!("W/\"{n}\"")}}));
        let seen = std::sync::atomic::AtomicBool::new(false);
        assert_eq!(
            check_or_later(&Expect::Absent, &P, &later, &seen, 404, b""),
            Check::NotYet,
            "never seen there"
        );
        assert_eq!(check_or_later(&Expect::Absent, &P, &later, &seen, 410, b""), Check::Met);
        assert_eq!(
            check_or_later(&title, &Pointers::default(), &later, &seen, 200, &v(2)),
            Check::NotYet
        );
        assert_eq!(
            check_or_later(&Expect::Absent, &P, &later, &seen, 404, b""),
            Check::Met,
            "seen, now gone"
        );
        assert_eq!(
            check_or_later(&title, &Pointers::default(), &later, &seen, 200, &v(4)),
            Check::Met
        );
        assert_eq!(
            check_or_later(&Expect::Present, &P, &later, &seen, 410, b""),
            Check::NotYet
        );
        later.deleted_later.store(true, std::sync::atomic::Ordering::Release);
        assert_eq!(
            check_or_later(&Expect::Present, &P, &later, &seen, 410, b""),
            Check::Met
        );
    }

    #[test]
    fn each_expectation() {
        assert_eq!(check(&Expect::Present, &P, 200, b"{}"), Check::Met);
        assert_eq!(check(&Expect::Present, &P, 404, b""), Check::NotYet);
        assert_eq!(check(&Expect::Absent, &P, 404, b""), Check::Met);
        assert_eq!(check(&Expect::Absent, &P, 200, b"{}"), Check::NotYet);
        let inactive = Expect::Equals(Field::Active, json!(false));
        assert_eq!(check(&inactive, &P, 200, &body(json!({"active": false}))), Check::Met);
        assert_eq!(check(&inactive, &P, 200, &body(json!({"active": "False"}))), Check::Met);
        assert_eq!(check(&inactive, &P, 200, &body(json!({"active": true}))), Check::NotYet);
        assert_eq!(
            check(&inactive, &P, 200, &body(json!({"enabled": false}))),
            Check::PointerMissing
        );
        assert_eq!(check(&inactive, &P, 404, b""), Check::NotYet);
        let held = Expect::RoleHeld("admin".into());
        assert_eq!(
            check(&held, &P, 200, &body(json!({"roles": [{"value": "admin"}]}))),
            Check::Met
        );
        assert_eq!(check(&held, &P, 200, &body(json!({"roles": ["admin"]}))), Check::Met);
        assert_eq!(check(&held, &P, 200, &body(json!({}))), Check::NotYet);
        assert_eq!(
            check(&Expect::RoleGone("admin".into()), &P, 200, &body(json!({}))),
            Check::Met
        );
        assert_eq!(
            check(&held, &P, 200, &body(json!({"roles": "admin"}))),
            Check::PointerMissing
        );
    }

    #[test]
    fn pointers_follow_the_downstream_names() {
        let custom = Pointers {
            active: "/enabled".into(),
            roles: "/groups".into(),
            ..Pointers::default()
        };
        let inactive = Expect::Equals(Field::Active, json!(false));
        assert_eq!(
            check(&inactive, &custom, 200, &body(json!({"enabled": false}))),
            Check::Met
        );
        assert_eq!(
            check(&inactive, &P, 200, &body(json!({"enabled": false}))),
            Check::PointerMissing
        );
        let held = Expect::RoleHeld("ops".into());
        assert_eq!(
            check(&held, &custom, 200, &body(json!({"groups": ["ops"]}))),
            Check::Met
        );
    }
}
