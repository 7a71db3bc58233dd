//! A linked service's copy of the users the pipeline syncs to it: each user as the service last
//! applied it (or a tombstone), deleted users forgotten once past the retention window, and an
//! index by `userName`. Every change goes through `LinkedService::apply` and every forgetting
//! through one private function, which keep the index true; every list goes through
//! [`LinkedService::find`]. A lookup by name (what real downstreams answer, and what the probes'
//! batched `userName eq … or …` reads ask) then costs what it finds, not what the service holds:
//! a scan of every held user for each read made the service the bottleneck of any run that left
//! users behind (a run without think time fell from 6,200 to 760 operations a second).

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde_json::Value;
use tokio::time::Instant;

use super::config::LinkedServiceConfig;
use super::filter::Filter;
use super::retention::{Expiry, Window};
use super::store::{Snapshot, UserRecord};

/// A user as a linked service holds it: the state at `version`, or a tombstone (`user: None`)
/// so that a late, older change cannot resurrect a deleted user.
#[derive(Clone)]
pub struct LinkedUser {
    pub version: u64,
    pub user: Option<Arc<UserRecord>>,
    pub synced_at: Instant,
    pub job: u64,
}

impl LinkedUser {
    /// The keys its name is indexed under: each value `userName eq "…"` can match, as the filter
    /// reads it. A filter names the attribute in any case and reads the key spelled as it is, if
    /// there is one, so every key that is `userName` in some case is indexed (a resource may hold
    /// two). Each item of a list counts; `userName` is not case-exact (RFC 7643 §4.1.1), so it is
    /// lowercased; a boolean counts as the text it matches.
    fn name_keys(&self) -> Vec<String> {
        let Some(fields) = self.user.as_ref().and_then(|r| r.resource.as_object()) else {
            return Vec::new();
        };
        let key = |v: &Value| match v {
            Value::String(s) => Some(s.to_lowercase()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let mut keys: Vec<String> = Vec::new();
        for (_, value) in fields.iter().filter(|(k, _)| k.eq_ignore_ascii_case("userName")) {
            match value {
                Value::Array(items) => keys.extend(items.iter().filter_map(key)),
                other => keys.extend(key(other)),
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

pub struct LinkedService {
    pub config: LinkedServiceConfig,
    users: DashMap<String, LinkedUser>,
    /// Lowercased `userName` → the ids held under it. Usually one; two while a name passes from
    /// a deleted user to a new one and the service applies the new user's create first (each
    /// change comes after its own sync delay).
    names: DashMap<String, Vec<String>>,
    /// The `incomplete-deprovisioning` flaw: this service never applies disables or deletes.
    never_revokes: bool,
    /// Deleted users (id, version of the deletion), forgotten once past the retention window:
    /// the tombstone (or, with the flaw, the stale record) outlives every probe and check that
    /// reads it, then goes, so a long run does not keep every user it ever deleted.
    deleted: Expiry<(String, u64)>,
}

impl LinkedService {
    pub(super) fn new(config: LinkedServiceConfig, never_revokes: bool, window: Window) -> Self {
        Self {
            config,
            users: DashMap::new(),
            names: DashMap::new(),
            never_revokes,
            deleted: Expiry::new(window),
        }
    }

    /// Forgets deleted users past the window at `now`.
    pub(super) fn sweep(&self, now: Instant) {
        self.deleted.sweep(now, |k| self.forget(k));
    }

    /// Applies one synced change: the user's state at the snapshot's version, unless the
    /// service already holds a newer one (or is out of order, and takes whatever comes last).
    pub(super) fn apply(&self, snapshot: &Snapshot, job: u64, now: Instant) {
        if snapshot.user.is_none() {
            self.deleted
                .push(now, (snapshot.user_id.clone(), snapshot.version), |k| self.forget(k));
        }
        let revokes = snapshot.user.as_ref().is_none_or(|u| !u.active());
        if revokes && self.never_revokes {
            return;
        }
        let fresh = LinkedUser {
            version: snapshot.version,
            user: snapshot.user.clone(),
            synced_at: now,
            job,
        };
        let id = &snapshot.user_id;
        // The index changes while the user's entry is locked, the new name before the record and
        // the old one after it, so a read by name never misses a user the service shows (a read
        // locks the index and then the entry, never both at once).
        match self.users.entry(id.clone()) {
            Entry::Occupied(mut held) => {
                if held.get().version < fresh.version || self.config.view.out_of_order {
                    let (old, new) = (held.get().name_keys(), fresh.name_keys());
                    let added = new.iter().filter(|n| !old.contains(n)).cloned().collect();
                    let gone = old.into_iter().filter(|n| !new.contains(n)).collect();
                    self.index(added, id);
                    held.insert(fresh);
                    self.unindex(gone, id);
                }
            }
            Entry::Vacant(slot) => {
                self.index(fresh.name_keys(), id);
                slot.insert(fresh);
            }
        }
    }

    /// Removes a deleted user's entry unless a newer version replaced it since.
    fn forget(&self, (id, version): (String, u64)) {
        if let Entry::Occupied(held) = self.users.entry(id)
            && held.get().version <= version
        {
            self.unindex(held.get().name_keys(), held.key());
            held.remove();
        }
    }

    fn index(&self, names: Vec<String>, id: &str) {
        for name in names {
            let mut ids = self.names.entry(name).or_default();
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
    }

    fn unindex(&self, names: Vec<String>, id: &str) {
        for name in names {
            if let Entry::Occupied(mut ids) = self.names.entry(name) {
                ids.get_mut().retain(|i| i != id);
                if ids.get().is_empty() {
                    ids.remove();
                }
            }
        }
    }

    /// The user's record when this service holds it and it is not deleted.
    pub fn get(&self, id: &str) -> Option<LinkedUser> {
        self.users.get(id).filter(|u| u.user.is_some()).map(|u| u.clone())
    }

    /// What the service holds for `id`: its record, or its tombstone.
    pub fn held(&self, id: &str) -> Option<LinkedUser> {
        self.users.get(id).map(|u| u.clone())
    }

    /// Entries held, tombstones included.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the service holds nothing, not even a tombstone.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The users this service shows (tombstones never) that `filter` matches, every one when
    /// there is none. A filter on `userName` equality alone (`userName eq "a" or userName eq
    /// "b"`) is answered from the index; the filter still judges each user found, so the index
    /// only decides where to look.
    pub fn find(&self, filter: Option<&Filter>) -> Vec<LinkedUser> {
        let shown = |u: &LinkedUser| {
            u.user
                .as_ref()
                .is_some_and(|r| filter.is_none_or(|f| f.matches(&r.resource)))
        };
        let Some(names) = filter.and_then(|f| f.eq_any_on("userName")) else {
            return self
                .users
                .iter()
                .filter(|u| shown(u.value()))
                .map(|u| u.value().clone())
                .collect();
        };
        let mut ids: Vec<String> = Vec::new();
        for name in names {
            if let Some(held) = self.names.get(&name.to_lowercase()) {
                ids.extend(held.iter().cloned());
            }
        }
        // A name asked twice, or two names of one user, show the user once.
        ids.sort_unstable();
        ids.dedup();
        ids.iter().filter_map(|id| self.get(id)).filter(shown).collect()
    }

    /// Index entries (names, ids under them), for the tests that hold the index to the users.
    #[cfg(test)]
    fn index_size(&self) -> (usize, usize) {
        (self.names.len(), self.names.iter().map(|e| e.value().len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::reference::config::LinkedViewConfig;
    use crate::reference::distribution::Distribution;

    fn service(view: LinkedViewConfig, never_revokes: bool, cap: usize) -> LinkedService {
        LinkedService::new(
            LinkedServiceConfig {
                name: "crm".into(),
                sync_delay: Distribution::ZERO,
                failure_probability: 0.0,
                lost_probability: 0.0,
                view,
            },
            never_revokes,
            Window {
                keep: Duration::from_secs(60),
                cap,
            },
        )
    }

    fn snapshot(id: &str, version: u64, resource: Option<Value>) -> Snapshot {
        Snapshot {
            user_id: id.into(),
            version,
            user: resource.map(|r| {
                Arc::new(UserRecord {
                    seq: 1,
                    version,
                    resource: Arc::new(r),
                    password: None,
                })
            }),
        }
    }

    /// By default a late, older change never overwrites a newer one; `out-of-order` services
    /// apply changes as they arrive, as downstreams without versions do.
    #[test]
    fn out_of_order_services_let_a_late_older_change_win() {
        let now = Instant::now();
        for (out_of_order, shown) in [(false, "new"), (true, "old")] {
            let view = LinkedViewConfig {
                out_of_order,
                ..Default::default()
            };
            let svc = service(view, false, 1000);
            svc.apply(&snapshot("u1", 2, Some(json!({"id": "u1", "title": "new"}))), 2, now);
            svc.apply(&snapshot("u1", 1, Some(json!({"id": "u1", "title": "old"}))), 1, now);
            let held = svc.get("u1").unwrap();
            assert_eq!(
                held.user.unwrap().resource["title"],
                shown,
                "out_of_order = {out_of_order}"
            );
        }
    }

    /// What the service would show for `filter` without the index: every held user, judged.
    fn scanned(svc: &LinkedService, filter: &Filter) -> Vec<String> {
        let mut ids: Vec<String> = svc
            .users
            .iter()
            .filter(|u| u.user.as_ref().is_some_and(|r| filter.matches(&r.resource)))
            .map(|u| u.key().clone())
            .collect();
        ids.sort();
        ids
    }

    /// A user's resource as a lying or odd service may hold it: the name under any case of
    /// the attribute, a list of names, a boolean, a number, no name, inactive or not.
    fn resource() -> impl Strategy<Value = Value> {
        let name = prop::sample::select(vec!["ada", "ADA", "bob", "Bob", "cy", "true"]);
        let user_name = prop_oneof![
            name.clone().prop_map(|n| json!(n)),
            prop::collection::vec(name, 0..3).prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(json!(7)),
            Just(Value::Null),
        ];
        let key = prop::sample::select(vec!["userName", "USERNAME", "username", "title"]);
        // Sometimes a second spelling beside the first, with a name of its own.
        let second = prop::option::of((key.clone(), user_name.clone()));
        (key, user_name, second, any::<bool>()).prop_map(|(key, name, second, active)| {
            let mut r = json!({ "active": active });
            r[key] = name;
            if let Some((key, name)) = second {
                r[key] = name;
            }
            r
        })
    }

    /// One synced change: a user's new state, or its deletion, at a version.
    fn change() -> impl Strategy<Value = (String, u64, Option<Value>)> {
        let id = prop::sample::select(vec!["u1", "u2", "u3"]).prop_map(String::from);
        (id, 1u64..6, prop::option::weighted(0.75, resource()))
    }

    proptest! {
        /// Whatever order changes, renames, deletions, forgetting and the flaws bring, a list
        /// by `userName` finds exactly the users a scan of the whole service finds, and the
        /// index holds no name that no shown user has.
        #[test]
        fn a_list_by_name_finds_what_a_scan_finds(
            changes in prop::collection::vec(change(), 1..40),
            out_of_order in any::<bool>(),
            never_revokes in any::<bool>(),
            cap in 1usize..4,
        ) {
            let view = LinkedViewConfig { out_of_order, ..Default::default() };
            let svc = service(view, never_revokes, cap);
            let start = Instant::now();
            for (i, (id, version, resource)) in changes.into_iter().enumerate() {
                let now = start + Duration::from_secs(i as u64 * 7);
                svc.apply(&snapshot(&id, version, resource), i as u64, now);
                svc.sweep(now);
                for text in [
                    r#"userName eq "ada""#,
                    r#"USERNAME eq "Bob""#,
                    r#"username eq "cy" or userName eq "bob""#,
                    r#"userName eq "TRUE""#,
                    r#"userName eq "cy" or userName eq "ADA" or username eq "ada""#,
                    r#"userName eq "nobody""#,
                ] {
                    let filter = Filter::parse(text).unwrap();
                    prop_assert!(filter.eq_any_on("userName").is_some(), "{text} is indexed");
                    let mut found: Vec<String> = svc
                        .find(Some(&filter))
                        .into_iter()
                        .map(|u| u.user.unwrap().resource.to_string())
                        .collect();
                    let mut expected: Vec<String> = scanned(&svc, &filter)
                        .iter()
                        .map(|id| svc.get(id).unwrap().user.unwrap().resource.to_string())
                        .collect();
                    found.sort();
                    expected.sort();
                    prop_assert_eq!(found, expected, "{}", text);
                }
                let shown: Vec<Vec<String>> = svc.users.iter().map(|u| u.name_keys()).collect();
                let mut names: Vec<&String> = shown.iter().flatten().collect();
                let entries = names.len();
                names.sort();
                names.dedup();
                prop_assert_eq!(svc.index_size(), (names.len(), entries));
            }
        }
    }

    /// Lists that are not by name alone are judged by a scan, as before.
    #[test]
    fn other_lists_are_scanned() {
        let svc = service(LinkedViewConfig::default(), false, 100);
        let now = Instant::now();
        for (id, name, active) in [("u1", "ada", true), ("u2", "bob", false)] {
            let r = json!({ "userName": name, "active": active });
            svc.apply(&snapshot(id, 1, Some(r)), 1, now);
        }
        for (text, found) in [
            (r#"active eq true"#, 1),
            (r#"userName eq "ada" and active eq false"#, 0),
            (r#"userName eq "ada" or active eq false"#, 2),
            (r#"userName co "o""#, 1),
        ] {
            let filter = Filter::parse(text).unwrap();
            assert!(filter.eq_any_on("userName").is_none(), "{text}");
            assert_eq!(svc.find(Some(&filter)).len(), found, "{text}");
        }
        assert_eq!(svc.find(None).len(), 2);
    }
}
