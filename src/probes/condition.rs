//! What "the change is visible" means for each kind of write, checked against a downstream
//! read: present, absent, a pointer equal to what was written, a role present or gone.

use serde_json::Value;

use super::members::{first_members, members_named};

use crate::workload::downstream::Find;
pub use crate::workload::probes::Pointers;

/// Whose view is read: the user's id and userName.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub id: &'a str,
    pub user_name: &'a str,
}

/// What one answer of a downstream says about the user.
enum View<'a> {
    /// The user's document there.
    Found(&'a Value),
    /// Not there: 404 or 410 by id, an empty or non-matching list by query.
    Gone { status: u16 },
    /// The answer says nothing either way (an error status, or a document that is not the user).
    Unknown,
    /// A 2xx answer whose shape the probe cannot read (a missing list or identity pointer).
    Unreadable,
}

fn same_name(v: Option<&Value>, user_name: &str) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
}

/// Reads `body` the way `find` says the service keeps its users. Presence is decided by
/// content: a 2xx alone proves nothing.
fn read_view<'a>(find: &Find, who: Who, body: &'a Reading) -> View<'a> {
    let status = body.status;
    let ok = (200..300).contains(&status);
    match find {
        Find::ById(_) if status == 404 || status == 410 => View::Gone { status },
        Find::ById(_) if ok => match body.json() {
            Some(doc) if doc.is_object() => {
                let (id, name) = (doc.get("id"), doc.pointer("/userName"));
                if id.and_then(Value::as_str) == Some(who.id) || same_name(name, who.user_name) {
                    View::Found(doc)
                } else if id.is_none() && name.is_none() {
                    View::Unreadable
                } else {
                    View::Unknown
                }
            }
            _ => View::Unreadable,
        },
        Find::Query { list, identity, .. } if ok => match body.json().and_then(|d| d.pointer(list)) {
            Some(Value::Array(items)) => items
                .iter()
                .find(|item| same_name(item.pointer(identity), who.user_name))
                .map_or(View::Gone { status }, View::Found),
            Some(Value::Null) => View::Gone { status },
            _ => View::Unreadable,
        },
        _ => View::Unknown,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// The user's document is there (found by id or in the query's list).
    Present,
    /// The user is gone there (410, or 404 / no longer listed where it was seen).
    Absent,
    /// The user's document there has the field equal to the value.
    Equals(Field, Value),
    /// The user's document there holds this role.
    RoleHeld(String),
    /// The user's document there no longer holds this role.
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

/// What the probes know of one user across all its writes, per probed service (shared by every
/// observation of the user).
#[derive(Debug, Default)]
pub struct Trace {
    /// The user was seen there: a 404 or an empty list proves a deletion only then.
    pub seen: Vec<std::sync::atomic::AtomicBool>,
    /// 1 + the index of the latest of the user's writes observed there (0: none yet).
    observed: Vec<std::sync::atomic::AtomicU64>,
    /// Writes of this user handed to the probes so far.
    writes: std::sync::atomic::AtomicU64,
    /// When the journey's delete of this user was acknowledged.
    deleted_at: std::sync::OnceLock<tokio::time::Instant>,
}

pub type UserTrace = std::sync::Arc<Trace>;

impl Trace {
    pub fn new(services: usize) -> UserTrace {
        std::sync::Arc::new(Trace {
            seen: (0..services).map(|_| Default::default()).collect(),
            observed: (0..services).map(|_| Default::default()).collect(),
            writes: Default::default(),
            deleted_at: Default::default(),
        })
    }

    /// The journey's delete of this user was acknowledged at `at`.
    pub fn deleted(&self, at: tokio::time::Instant) {
        let _ = self.deleted_at.set(at);
    }

    /// How long ago the journey deleted this user, if it did.
    pub fn since_deleted(&self) -> Option<std::time::Duration> {
        self.deleted_at.get().map(|t| t.elapsed())
    }

    /// The index the next write of this user gets (in the order the journey wrote them).
    pub fn next_write(&self) -> u64 {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// A later write than `index` has been observed in `service`: the view already shows a
    /// later state, and write `index` can no longer be observed for itself.
    pub fn overtaken(&self, service: usize, index: u64) -> bool {
        self.observed[service].load(std::sync::atomic::Ordering::Acquire) > index + 1
    }

    pub fn mark_observed(&self, service: usize, index: u64) {
        self.observed[service].fetch_max(index + 1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Every member of a service's answer the probes read for `probe`: the identity a view is
/// judged by (`id`, `userName`, or a query's list), the version that tells a later write's state
/// (`meta`), the attributes the conditions compare, and the service's change time. One place,
/// beside the readers (`read_view`, [`check_or_later`], [`changed_at`]): a pointer they follow that is
/// missing here would read as absent.
pub fn read_members(probe: &crate::workload::probes::SyncProbe) -> Vec<String> {
    members_read(
        &probe.find,
        &probe.pointers,
        probe.changed_at.as_ref().map(|c| c.pointer.as_str()),
    )
}

/// [`read_members`] of a service found by `find`, its attributes at `pointers`, its change
/// time at `changed_at`.
fn members_read(find: &Find, pointers: &Pointers, changed_at: Option<&str>) -> Vec<String> {
    let list = match find {
        Find::ById(_) => "/id",
        Find::Query { list, .. } => list.as_str(),
    };
    let p = pointers;
    let read = ["/id", "/userName", "/meta/version", list, &p.active, &p.roles, &p.title];
    first_members(read.into_iter().chain(changed_at))
}

/// `W/"7"`, `"7"` or `7` → 7.
pub fn numeric_version(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim_start_matches("W/").trim_matches('"').parse().ok(),
        _ => None,
    }
}

/// What is known of the user in the service being read.
#[derive(Clone, Copy)]
pub struct There<'a> {
    /// The user was seen there (shared by the user's observations in that service).
    pub seen: &'a std::sync::atomic::AtomicBool,
    /// The journey deleted the user longer ago than the slowest change the service has shown:
    /// a user never seen there will not show up any more, so its absence is final.
    pub absence_settled: bool,
}

/// The check, widened by what supersedes the write: a view at a later version, or gone after
/// the journey deleted the user.
pub fn check_or_later(
    expect: &Expect,
    find: &Find,
    who: Who,
    pointers: &Pointers,
    later: &Supersession,
    there: There,
    reading: &Reading,
) -> Check {
    use std::sync::atomic::Ordering;
    let seen = there.seen;
    let view = read_view(find, who, reading);
    if matches!(view, View::Found(_)) {
        seen.store(true, Ordering::Release);
    }
    let direct = match (&view, expect) {
        // 410 is a deletion the service applied; a 404 or an empty list only counts where the
        // user was once seen (a slow service that never got the user answers the same).
        (View::Gone { status: 410 }, Expect::Absent) => Check::Met,
        (View::Gone { .. }, Expect::Absent) if seen.load(Ordering::Acquire) => Check::Met,
        // Never seen there, and it will not show up any more: the deletion cannot be timed.
        (View::Gone { .. }, Expect::Absent) if there.absence_settled => Check::Unconfirmed,
        (View::Gone { .. } | View::Unknown, _) => Check::NotYet,
        (View::Unreadable, _) => Check::PointerMissing,
        (View::Found(doc), _) => check_found(expect, pointers, doc),
    };
    if matches!(direct, Check::Met | Check::Unconfirmed) {
        return direct;
    }
    // A later state is showing: this write was overtaken (counted apart, never as a timeout
    // and never as an observation of this change).
    // A user never seen there counts once its absence is final (it may have come and gone
    // between two reads, or never arrived before the delete).
    if matches!(view, View::Gone { .. })
        && (seen.load(Ordering::Acquire) || there.absence_settled)
        && later.deleted_later.load(Ordering::Acquire)
    {
        return Check::Overtaken;
    }
    if let Some(mine) = later.version
        && let View::Found(v) = view
        && let Some(theirs) = v.pointer("/meta/version").and_then(numeric_version)
        && theirs > mine
    {
        return Check::Overtaken;
    }
    direct
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Met,
    NotYet,
    /// The view shows a later write's state (or the user gone after the journey deleted it).
    Overtaken,
    /// A 2xx answer without the pointer the condition reads: the probe may be misconfigured.
    PointerMissing,
    /// A delete of a user never seen there: its absence proves nothing about when.
    Unconfirmed,
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

/// One answer of a downstream, parsed at most once however many observations read it (the
/// answer to a batched query is read by every user in it).
pub struct Reading {
    pub status: u16,
    raw: bytes::Bytes,
    parsed: std::sync::OnceLock<Option<Value>>,
    /// The only members its readers look at (see [`Reading::keeping`]).
    keep: Option<std::sync::Arc<[String]>>,
}

impl Reading {
    pub fn new(status: u16, raw: bytes::Bytes) -> Self {
        Self {
            status,
            raw,
            parsed: std::sync::OnceLock::new(),
            keep: None,
        }
    }

    /// A reading whose document is a JSON object of which only the members `keep` names are
    /// read ([`members_named`]): every pointer its readers follow starts at one of them.
    pub fn keeping(status: u16, raw: bytes::Bytes, keep: std::sync::Arc<[String]>) -> Self {
        Self {
            keep: Some(keep),
            ..Self::new(status, raw)
        }
    }

    /// The answer's JSON document, when it is one.
    pub fn json(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| match &self.keep {
                Some(names) => members_named(&self.raw, names),
                None => serde_json::from_slice(&self.raw).ok(),
            })
            .as_ref()
    }
}

/// Whether an answer shows the user there: `Some(true)` found, `Some(false)` gone (whether or
/// not it was ever seen there), `None` when the answer says neither.
pub fn present(find: &Find, who: Who, reading: &Reading) -> Option<bool> {
    match read_view(find, who, reading) {
        View::Found(_) => Some(true),
        View::Gone { .. } => Some(false),
        View::Unknown | View::Unreadable => None,
    }
}

/// The service's own change time in the user's document (at `pointer`), from an answer.
pub fn changed_at(find: &Find, who: Who, reading: &Reading, pointer: &str) -> Option<std::time::SystemTime> {
    match read_view(find, who, reading) {
        View::Found(doc) => doc
            .pointer(pointer)
            .and_then(Value::as_str)
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok()),
        _ => None,
    }
}

/// Whether the user's document there shows the expected state.
fn check_found(expect: &Expect, pointers: &Pointers, doc: &Value) -> Check {
    match expect {
        Expect::Present => Check::Met,
        Expect::Absent => Check::NotYet,
        Expect::Equals(field, want) => {
            let pointer = match field {
                Field::Active => &pointers.active,
                Field::Title => &pointers.title,
            };
            match doc.pointer(pointer) {
                None => Check::PointerMissing,
                Some(got) if got == want => Check::Met,
                // "False" for false, as some directories answer.
                Some(Value::String(s)) if want.is_boolean() && s.eq_ignore_ascii_case(&want.to_string()) => Check::Met,
                Some(_) => Check::NotYet,
            }
        }
        Expect::RoleHeld(role) | Expect::RoleGone(role) => match (holds_role(doc, &pointers.roles, role), expect) {
            (None, _) => Check::PointerMissing,
            (Some(true), Expect::RoleHeld(_)) | (Some(false), Expect::RoleGone(_)) => Check::Met,
            _ => Check::NotYet,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::workload::downstream::UrlTemplate;
    use serde_json::json;

    static P: std::sync::LazyLock<Pointers> = std::sync::LazyLock::new(Pointers::default);
    const WHO: Who = Who {
        id: "u1",
        user_name: "pb-1a2b3c4d-1@example.test",
    };

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn by_id() -> Find {
        Find::ById(UrlTemplate::parse("/d/{id}").unwrap())
    }

    fn by_query() -> Find {
        Find::Query {
            url: UrlTemplate::parse("/d?filter=userName eq \"{userName}\"").unwrap(),
            list: "/Resources".into(),
            identity: "/userName".into(),
        }
    }

    /// One answer, judged with nothing later written and the user seen before; judged the
    /// same whether the whole answer is read or only the members the probes read
    /// (`read_members`), so every test of a condition checks that list as well.
    fn check(find: &Find, expect: &Expect, pointers: &Pointers, status: u16, body: &[u8]) -> Check {
        let judge = |reading: &Reading| {
            let seen = std::sync::atomic::AtomicBool::new(true);
            check_or_later(
                expect,
                find,
                WHO,
                pointers,
                &Supersession::default(),
                There {
                    seen: &seen,
                    absence_settled: false,
                },
                reading,
            )
        };
        let whole = judge(&Reading::new(status, bytes::Bytes::copy_from_slice(body)));
        let keep = members_read(find, pointers, Some("/meta/lastModified"));
        let pruned = judge(&Reading::keeping(
            status,
            bytes::Bytes::copy_from_slice(body),
            keep.into(),
        ));
        assert_eq!(whole, pruned, "{}", String::from_utf8_lossy(body));
        whole
    }

    /// An answer read as the probes read it: only the members they read with the default
    /// pointers, by id or by query (`read_members`), so the tests judge that list too.
    fn reading(status: u16, body: &[u8]) -> Reading {
        let mut keep = members_read(&by_id(), &P, None);
        keep.extend(members_read(&by_query(), &P, None));
        Reading::keeping(status, bytes::Bytes::copy_from_slice(body), keep.into())
    }

    fn user(extra: Value) -> Value {
        let mut doc = json!({"id": "u1", "userName": "pb-1a2b3c4d-1@example.test"});
        doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        doc
    }

    #[test]
    fn later_states_count() {
        let later = Supersession {
            version: Some(3),
            deleted_later: Default::default(),
        };
        let title = Expect::Equals(Field::Title, json!("A"));
        let v = |n: u64| body(user(json!({"title": "B", "meta": {"version": format!("W/\"{n}\"")}})));
        let seen = std::sync::atomic::AtomicBool::new(false);
        let there = There {
            seen: &seen,
            absence_settled: false,
        };
        let c = |e: &Expect, status: u16, b: &[u8]| {
            check_or_later(e, &by_id(), WHO, &P, &later, there, &reading(status, b))
        };
        assert_eq!(c(&Expect::Absent, 404, b""), Check::NotYet, "never seen there");
        assert_eq!(c(&Expect::Absent, 410, b""), Check::Met);
        assert_eq!(c(&title, 200, &v(2)), Check::NotYet);
        assert_eq!(c(&Expect::Absent, 404, b""), Check::Met, "seen, now gone");
        assert_eq!(
            c(&title, 200, &v(3)),
            Check::NotYet,
            "this write's version, not its title"
        );
        assert_eq!(c(&title, 200, &v(4)), Check::Overtaken, "a later version shows");
        assert_eq!(c(&Expect::Present, 410, b""), Check::NotYet);
        later.deleted_later.store(true, std::sync::atomic::Ordering::Release);
        assert_eq!(
            c(&Expect::Present, 410, b""),
            Check::Overtaken,
            "gone after the journey deleted it"
        );
        assert_eq!(c(&title, 404, b""), Check::Overtaken);
    }

    /// A user never seen in a filter-only view and deleted by the journey: its earlier writes
    /// wait while it may still show up, and count as overtaken once its absence is final.
    #[test]
    fn an_absence_never_seen_is_trusted_only_once_settled() {
        let later = Supersession::default();
        later.deleted_later.store(true, std::sync::atomic::Ordering::Release);
        let seen = std::sync::atomic::AtomicBool::new(false);
        let empty = body(json!({"totalResults": 0, "Resources": []}));
        let c = |absence_settled: bool| {
            let there = There {
                seen: &seen,
                absence_settled,
            };
            check_or_later(
                &Expect::Present,
                &by_query(),
                WHO,
                &P,
                &later,
                there,
                &reading(200, &empty),
            )
        };
        assert_eq!(c(false), Check::NotYet, "it may not have arrived yet");
        assert_eq!(c(true), Check::Overtaken);
    }

    /// Regression: a 2xx alone counted as "present" (a downstream's empty list, an error page).
    #[test]
    fn presence_is_decided_by_content() {
        assert_eq!(
            check(&by_id(), &Expect::Present, &P, 200, &body(user(json!({})))),
            Check::Met
        );
        assert_eq!(check(&by_id(), &Expect::Present, &P, 200, b"{}"), Check::PointerMissing);
        assert_eq!(
            check(&by_id(), &Expect::Present, &P, 200, b"<html>ok</html>"),
            Check::PointerMissing
        );
        let someone_else = body(json!({"id": "u2", "userName": "other@example.test"}));
        assert_eq!(check(&by_id(), &Expect::Present, &P, 200, &someone_else), Check::NotYet);
        let list = |items: Value| body(json!({"totalResults": 1, "Resources": items}));
        let q = by_query();
        assert_eq!(check(&q, &Expect::Present, &P, 200, &list(json!([]))), Check::NotYet);
        assert_eq!(
            check(
                &q,
                &Expect::Present,
                &P,
                200,
                &list(json!([{"userName": "other@example.test"}]))
            ),
            Check::NotYet
        );
        assert_eq!(
            check(
                &q,
                &Expect::Present,
                &P,
                200,
                &list(json!([{"userName": "PB-1A2B3C4D-1@example.test"}]))
            ),
            Check::Met
        );
        assert_eq!(
            check(&q, &Expect::Present, &P, 200, &body(json!({"ok": true}))),
            Check::PointerMissing
        );
    }

    /// Regression: deletes by a filter-only view were never recognised (only 404/410 were).
    #[test]
    fn absence_by_query_is_an_empty_or_non_matching_list_where_the_user_was_seen() {
        let q = by_query();
        let empty = body(json!({"totalResults": 0, "Resources": []}));
        let seen = std::sync::atomic::AtomicBool::new(false);
        let none_later = Supersession::default();
        let judge = |e: &Expect, b: &[u8], absence_settled: bool| {
            let there = There {
                seen: &seen,
                absence_settled,
            };
            check_or_later(e, &q, WHO, &P, &none_later, there, &reading(200, b))
        };
        let c = |e: &Expect, b: &[u8]| judge(e, b, false);
        assert_eq!(c(&Expect::Absent, &empty), Check::NotYet, "never seen there");
        assert_eq!(
            judge(&Expect::Absent, &empty, true),
            Check::Unconfirmed,
            "never seen there, and it will not show up any more"
        );
        let deleted = Supersession::default();
        deleted.deleted_later.store(true, std::sync::atomic::Ordering::Release);
        let there = There {
            seen: &seen,
            absence_settled: true,
        };
        assert_eq!(
            check_or_later(&Expect::Absent, &q, WHO, &P, &deleted, there, &reading(200, &empty)),
            Check::Unconfirmed,
            "a delete is never overtaken by itself"
        );
        let there = body(json!({"Resources": [user(json!({}))]}));
        assert_eq!(c(&Expect::Present, &there), Check::Met);
        assert_eq!(c(&Expect::Absent, &there), Check::NotYet);
        assert_eq!(c(&Expect::Absent, &empty), Check::Met);
        assert_eq!(c(&Expect::Absent, &body(json!({"Resources": null}))), Check::Met);
    }

    #[test]
    fn each_expectation() {
        let f = by_id();
        let c = |e: &Expect, status: u16, b: &[u8]| check(&f, e, &P, status, b);
        assert_eq!(c(&Expect::Present, 404, b""), Check::NotYet);
        assert_eq!(c(&Expect::Absent, 404, b""), Check::Met);
        assert_eq!(c(&Expect::Absent, 200, &body(user(json!({})))), Check::NotYet);
        let inactive = Expect::Equals(Field::Active, json!(false));
        assert_eq!(c(&inactive, 200, &body(user(json!({"active": false})))), Check::Met);
        assert_eq!(c(&inactive, 200, &body(user(json!({"active": "False"})))), Check::Met);
        assert_eq!(c(&inactive, 200, &body(user(json!({"active": true})))), Check::NotYet);
        assert_eq!(
            c(&inactive, 200, &body(user(json!({"enabled": false})))),
            Check::PointerMissing
        );
        assert_eq!(c(&inactive, 404, b""), Check::NotYet);
        assert_eq!(c(&inactive, 500, b"oops"), Check::NotYet);
        let held = Expect::RoleHeld("admin".into());
        assert_eq!(
            c(&held, 200, &body(user(json!({"roles": [{"value": "admin"}]})))),
            Check::Met
        );
        assert_eq!(c(&held, 200, &body(user(json!({"roles": ["admin"]})))), Check::Met);
        assert_eq!(c(&held, 200, &body(user(json!({})))), Check::NotYet);
        assert_eq!(
            c(&Expect::RoleGone("admin".into()), 200, &body(user(json!({})))),
            Check::Met
        );
        assert_eq!(
            c(&held, 200, &body(user(json!({"roles": "admin"})))),
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
        let disabled = body(user(json!({"enabled": false})));
        assert_eq!(check(&by_id(), &inactive, &custom, 200, &disabled), Check::Met);
        assert_eq!(check(&by_id(), &inactive, &P, 200, &disabled), Check::PointerMissing);
        let held = Expect::RoleHeld("ops".into());
        assert_eq!(
            check(&by_id(), &held, &custom, 200, &body(user(json!({"groups": ["ops"]})))),
            Check::Met
        );
    }
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    #[test]
    fn a_later_write_observed_overtakes_the_earlier() {
        let t = Trace::new(2);
        let (disable, enable) = (t.next_write(), t.next_write());
        assert!(!t.overtaken(0, disable));
        t.mark_observed(0, enable);
        assert!(t.overtaken(0, disable), "enable seen in service 0 before disable was");
        assert!(!t.overtaken(1, disable), "per service");
        assert!(!t.overtaken(0, enable));
    }
}
