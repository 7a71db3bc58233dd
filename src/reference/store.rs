//! The in-memory SCIM store: users and groups in sharded maps (`DashMap`, so requests on
//! different users never contend), a userName index for uniqueness and `userName eq` lookups,
//! versions for weak ETags, and the snapshots the pipeline carries to linked services.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde_json::{Map, Value, json};

use super::distribution::splitmix64;
use super::error::ScimError;
use super::filter::{CORE_GROUP_SCHEMA, CORE_USER_SCHEMA, Filter, get_ci};

/// A password: never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn matches(&self, candidate: &str) -> bool {
        // Constant-time-ish comparison: the reference service should not teach timing leaks.
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A user as stored. The representation is shared (`Arc`): a write builds it once, and the
/// store, the answer and the pipeline's snapshot all point at that one copy.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub seq: u64,
    pub version: u64,
    /// The full representation as returned (id, meta, groups included; never the password).
    pub resource: Arc<Value>,
    pub password: Option<Secret>,
}

impl UserRecord {
    pub fn active(&self) -> bool {
        self.resource.get("active").and_then(Value::as_bool).unwrap_or(true)
    }
    pub fn roles(&self) -> Vec<String> {
        role_values(&self.resource)
    }
}

/// Role names from a SCIM `roles` attribute (`[{"value": "admin"}]`, or plain strings).
pub fn role_values(resource: &Value) -> Vec<String> {
    match get_ci(resource, "roles") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|r| match r {
                Value::String(s) => Some(s.clone()),
                other => get_ci(other, "value").and_then(Value::as_str).map(str::to_string),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub seq: u64,
    pub version: u64,
    pub resource: Arc<Value>,
}

/// What a linked service receives about one user: its state at `version`, or its deletion.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub user_id: String,
    pub version: u64,
    pub user: Option<Arc<UserRecord>>,
}

/// The result of a write: the representation to return (`None` after a delete) and what the
/// pipeline must carry.
pub struct Written {
    pub resource: Option<Arc<Value>>,
    /// The written resource's id.
    pub id: String,
    pub version: u64,
    pub snapshots: Vec<Snapshot>,
}

/// Authorization decided by the caller, given the state before and after the write.
pub type WriteCheck<'a> = &'a dyn Fn(Option<&Value>, Option<&Value>) -> Result<(), ScimError>;

pub struct Store {
    users: DashMap<String, Arc<UserRecord>>,
    user_names: DashMap<String, String>,
    groups: DashMap<String, GroupRecord>,
    seq: AtomicU64,
    id_seed: u64,
    base_url: String,
}

pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

fn check_if_match(if_match: Option<&str>, version: u64) -> Result<(), ScimError> {
    match if_match {
        Some(tag) if tag.trim() != "*" && !tag.split(',').any(|t| t.trim() == etag(version)) => {
            Err(ScimError::precondition_failed(format!(
                "If-Match {tag} does not match the current version {}",
                etag(version)
            )))
        }
        _ => Ok(()),
    }
}

impl Store {
    /// `base_url` is the service root (e.g. `http://127.0.0.1:8080/scim/v2`) for `meta.location`.
    pub fn new(seed: u64, base_url: String) -> Self {
        Self {
            users: DashMap::new(),
            user_names: DashMap::new(),
            groups: DashMap::new(),
            seq: AtomicU64::new(1),
            id_seed: seed,
            base_url,
        }
    }

    fn next_id(&self) -> (u64, String) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (
            splitmix64(self.id_seed ^ seq),
            splitmix64(seq.rotate_left(17) ^ !self.id_seed),
        );
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        );
        (seq, id)
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn get_user(&self, id: &str) -> Option<Arc<UserRecord>> {
        self.users.get(id).map(|r| r.clone())
    }

    /// Calls `f` with a resource and its version under the map's read guard (no copy).
    pub fn with_resource<R>(&self, groups: bool, id: &str, f: impl FnOnce(&Value, u64) -> R) -> Option<R> {
        if groups {
            self.groups.get(id).map(|r| f(&r.resource, r.version))
        } else {
            self.users.get(id).map(|r| f(&r.resource, r.version))
        }
    }

    pub fn get_group(&self, id: &str) -> Option<GroupRecord> {
        self.groups.get(id).map(|r| r.clone())
    }

    pub fn user_id_by_name(&self, user_name: &str) -> Option<String> {
        self.user_names.get(&user_name.to_lowercase()).map(|r| r.clone())
    }

    fn prepare_user(
        &self,
        body: Value,
        id: &str,
        version: u64,
        created: &str,
        groups: Option<&Value>,
    ) -> Result<(Value, Option<Secret>), ScimError> {
        let Value::Object(mut obj) = body else {
            return Err(ScimError::bad_request("invalidSyntax", "a User must be a JSON object"));
        };
        obj.retain(|k, _| !["id", "meta", "groups"].iter().any(|r| k.eq_ignore_ascii_case(r)));
        let password = match obj.keys().find(|k| k.eq_ignore_ascii_case("password")).cloned() {
            Some(k) => match obj.remove(&k) {
                Some(Value::String(p)) => Some(Secret::new(p)),
                Some(Value::Null) | None => None,
                Some(_) => return Err(ScimError::invalid_value("password must be a string")),
            },
            None => None,
        };
        match obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("userName"))
            .map(|(_, v)| v)
        {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => {
                return Err(ScimError::invalid_value(
                    "userName is required and must be a non-empty string",
                ));
            }
        }
        // A user without `active` is active; the attribute stays absent as the client left it.
        let active_key = obj.keys().find(|k| k.eq_ignore_ascii_case("active")).cloned();
        let active = match active_key.as_ref().and_then(|k| obj.remove(k)) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            // Entra ID sends "True"/"False".
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
            Some(_) => return Err(ScimError::invalid_value("active must be a boolean")),
        };
        if let Some(active) = active {
            obj.insert("active".into(), Value::Bool(active));
        }
        self.finish(&mut obj, CORE_USER_SCHEMA, "User", id, version, created);
        if let Some(g) = groups.filter(|g| g.as_array().is_some_and(|a| !a.is_empty())) {
            obj.insert("groups".into(), g.clone());
        }
        Ok((Value::Object(obj), password))
    }

    /// Sets `schemas`, `id` and `meta`.
    fn finish(&self, obj: &mut Map<String, Value>, core: &str, kind: &str, id: &str, version: u64, created: &str) {
        // Extension objects left empty by a PATCH disappear, and so do their schema URNs.
        obj.retain(|k, v| !(k.to_ascii_lowercase().starts_with("urn:") && v.as_object().is_some_and(|o| o.is_empty())));
        let mut schemas = vec![Value::String(core.into())];
        for (k, v) in obj.iter() {
            if k.to_ascii_lowercase().starts_with("urn:") && v.is_object() {
                schemas.push(Value::String(k.clone()));
            }
        }
        obj.insert("schemas".into(), Value::Array(schemas));
        obj.insert("id".into(), Value::String(id.into()));
        obj.insert(
            "meta".into(),
            json!({
                "resourceType": kind,
                "created": created,
                "lastModified": now_rfc3339(),
                "location": format!("{}/{kind}s/{id}", self.base_url),
                "version": etag(version),
            }),
        );
    }

    pub fn create_user(&self, body: Value, check: WriteCheck) -> Result<Written, ScimError> {
        let (seq, id) = self.next_id();
        let (resource, password) = self.prepare_user(body, &id, 1, &now_rfc3339(), None)?;
        check(None, Some(&resource))?;
        let name = resource["userName"].as_str().unwrap_or_default().to_lowercase();
        match self.user_names.entry(name) {
            Entry::Occupied(e) => {
                return Err(ScimError::uniqueness(format!("userName {} is already taken", e.key())));
            }
            Entry::Vacant(e) => {
                e.insert(id.clone());
            }
        }
        let resource = Arc::new(resource);
        let record = Arc::new(UserRecord {
            seq,
            version: 1,
            resource: resource.clone(),
            password,
        });
        let snapshot = Snapshot {
            user_id: id.clone(),
            version: 1,
            user: Some(record.clone()),
        };
        self.users.insert(id.clone(), record);
        Ok(Written {
            resource: Some(resource),
            id,
            version: 1,
            snapshots: vec![snapshot],
        })
    }

    /// PUT or PATCH: `change` turns the current representation into the wanted one.
    pub fn update_user(
        &self,
        id: &str,
        if_match: Option<&str>,
        change: &dyn Fn(&Value) -> Result<Value, ScimError>,
        check: WriteCheck,
    ) -> Result<Written, ScimError> {
        let mut entry = self.users.get_mut(id).ok_or_else(|| ScimError::not_found("User", id))?;
        check_if_match(if_match, entry.version)?;
        // A new representation without a password keeps the current one (see below).
        let mut wanted = change(&entry.resource)?;
        let created = entry.resource["meta"]["created"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let groups = entry.resource.get("groups").cloned();
        let version = entry.version + 1;
        if let Some(obj) = wanted.as_object_mut() {
            obj.remove("groups");
        }
        let (resource, password) = self.prepare_user(wanted, id, version, &created, groups.as_ref())?;
        check(Some(&entry.resource), Some(&resource))?;
        let old_name = entry.resource["userName"].as_str().unwrap_or_default().to_lowercase();
        let new_name = resource["userName"].as_str().unwrap_or_default().to_lowercase();
        if old_name != new_name {
            match self.user_names.entry(new_name) {
                Entry::Occupied(e) => {
                    return Err(ScimError::uniqueness(format!("userName {} is already taken", e.key())));
                }
                Entry::Vacant(e) => {
                    e.insert(id.to_string());
                }
            }
            self.user_names.remove(&old_name);
        }
        let resource = Arc::new(resource);
        let record = Arc::new(UserRecord {
            seq: entry.seq,
            version,
            resource: resource.clone(),
            password: password.or_else(|| entry.password.clone()),
        });
        *entry = record.clone();
        Ok(Written {
            resource: Some(resource),
            id: id.to_string(),
            version,
            snapshots: vec![Snapshot {
                user_id: id.into(),
                version,
                user: Some(record),
            }],
        })
    }

    pub fn delete_user(&self, id: &str, if_match: Option<&str>, check: WriteCheck) -> Result<Written, ScimError> {
        let (version, name) = {
            let entry = self.users.get(id).ok_or_else(|| ScimError::not_found("User", id))?;
            check_if_match(if_match, entry.version)?;
            check(Some(&entry.resource), None)?;
            (
                entry.version + 1,
                entry.resource["userName"].as_str().unwrap_or_default().to_lowercase(),
            )
        };
        self.users.remove(id).ok_or_else(|| ScimError::not_found("User", id))?;
        self.user_names.remove_if(&name, |_, v| v == id);
        // Drop the user from every group it belonged to (copying only those groups).
        let is_member = |m: &Value| get_ci(m, "value").and_then(Value::as_str) == Some(id);
        for mut g in self.groups.iter_mut() {
            if !Self::member_list(&g.resource).is_some_and(|m| m.iter().any(is_member)) {
                continue;
            }
            g.version += 1;
            let v = g.version;
            let resource = Arc::make_mut(&mut g.resource);
            if let Some(Value::Array(members)) = resource.get_mut("members") {
                members.retain(|m| !is_member(m));
            }
            resource["meta"]["version"] = Value::String(etag(v));
        }
        Ok(Written {
            resource: None,
            id: id.to_string(),
            version,
            snapshots: vec![Snapshot {
                user_id: id.into(),
                version,
                user: None,
            }],
        })
    }

    /// Matching resources in creation order, paged (`start` is 1-based). The page shares the
    /// stored representations; nothing outside it is copied.
    pub fn list(&self, groups: bool, filter: Option<&Filter>, start: usize, count: usize) -> (usize, Vec<Arc<Value>>) {
        let matches = |r: &Value| filter.is_none_or(|f| f.matches(r));
        let mut hits: Vec<(u64, Arc<Value>)> =
            if let Some(name) = filter.and_then(|f| f.as_eq_on("userName")).filter(|_| !groups) {
                self.user_id_by_name(name)
                    .and_then(|id| self.users.get(&id).map(|r| (r.seq, r.resource.clone())))
                    .into_iter()
                    .collect()
            } else if groups {
                self.groups
                    .iter()
                    .filter(|r| matches(&r.resource))
                    .map(|r| (r.seq, r.resource.clone()))
                    .collect()
            } else {
                self.users
                    .iter()
                    .filter(|r| matches(&r.resource))
                    .map(|r| (r.seq, r.resource.clone()))
                    .collect()
            };
        let total = hits.len();
        let skip = start.saturating_sub(1);
        // Only the page needs its order: select it, then sort just those.
        let end = skip.saturating_add(count).min(total);
        if skip >= total {
            return (total, Vec::new());
        }
        if end < total {
            hits.select_nth_unstable_by_key(end, |(seq, _)| *seq);
            hits.truncate(end);
        }
        hits.sort_unstable_by_key(|(seq, _)| *seq);
        (total, hits.into_iter().skip(skip).map(|(_, v)| v).collect())
    }

    fn prepare_group(&self, body: Value, id: &str, version: u64, created: &str) -> Result<Value, ScimError> {
        let Value::Object(mut obj) = body else {
            return Err(ScimError::bad_request("invalidSyntax", "a Group must be a JSON object"));
        };
        obj.remove("id");
        obj.remove("meta");
        match obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("displayName"))
            .map(|(_, v)| v)
        {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => {
                return Err(ScimError::invalid_value(
                    "displayName is required and must be a non-empty string",
                ));
            }
        }
        if let Some(k) = obj.keys().find(|k| k.eq_ignore_ascii_case("members")).cloned() {
            match obj.get_mut(&k) {
                Some(Value::Array(members)) => {
                    for m in members.iter_mut() {
                        let Some(uid) = get_ci(m, "value").and_then(Value::as_str).map(str::to_string) else {
                            return Err(ScimError::invalid_value(
                                "every member needs a `value` (the member's id)",
                            ));
                        };
                        if let (Some(user), Some(o)) = (self.users.get(&uid), m.as_object_mut()) {
                            o.entry("$ref")
                                .or_insert_with(|| format!("{}/Users/{uid}", self.base_url).into());
                            o.entry("type").or_insert_with(|| "User".into());
                            if let Some(name) = user.resource.get("displayName").or(user.resource.get("userName")) {
                                o.entry("display").or_insert_with(|| name.clone());
                            }
                        }
                    }
                }
                Some(Value::Null) => {
                    obj.remove(&k);
                }
                _ => return Err(ScimError::invalid_value("members must be a list")),
            }
        }
        self.finish(&mut obj, CORE_GROUP_SCHEMA, "Group", id, version, created);
        Ok(Value::Object(obj))
    }

    fn member_list(group: &Value) -> Option<&Vec<Value>> {
        get_ci(group, "members").and_then(Value::as_array)
    }

    fn member_ids(group: Option<&Value>) -> Vec<String> {
        group
            .and_then(Self::member_list)
            .into_iter()
            .flatten()
            .filter_map(|m| get_ci(m, "value").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    /// Refreshes the `groups` attribute of users whose membership changed; returns their snapshots.
    fn sync_membership(&self, group_id: &str, before: Option<&Value>, after: Option<&Value>) -> Vec<Snapshot> {
        let old = Self::member_ids(before);
        let new = Self::member_ids(after);
        let display = after
            .or(before)
            .and_then(|g| get_ci(g, "displayName"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut affected: Vec<&String> = old.iter().filter(|u| !new.contains(u)).collect();
        affected.extend(new.iter().filter(|u| !old.contains(u)));
        let mut snaps = Vec::new();
        for uid in affected {
            let Some(mut entry) = self.users.get_mut(uid) else {
                continue;
            };
            let member = new.contains(uid);
            // The record may be shared with a snapshot in flight: change a copy.
            let user = Arc::make_mut(&mut entry);
            let resource = Arc::make_mut(&mut user.resource);
            let obj = resource.as_object_mut().expect("object");
            let groups = obj.entry("groups").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = groups {
                list.retain(|g| g.get("value").and_then(Value::as_str) != Some(group_id));
                if member {
                    list.push(json!({"value": group_id, "display": display,
                        "$ref": format!("{}/Groups/{group_id}", self.base_url), "type": "direct"}));
                }
                if list.is_empty() {
                    obj.remove("groups");
                }
            }
            user.version += 1;
            let v = user.version;
            resource["meta"]["version"] = Value::String(etag(v));
            snaps.push(Snapshot {
                user_id: uid.clone(),
                version: v,
                user: Some(entry.clone()),
            });
        }
        snaps
    }

    pub fn create_group(&self, body: Value, check: WriteCheck) -> Result<Written, ScimError> {
        let (seq, id) = self.next_id();
        let resource = Arc::new(self.prepare_group(body, &id, 1, &now_rfc3339())?);
        check(None, Some(&resource))?;
        self.groups.insert(
            id.clone(),
            GroupRecord {
                seq,
                version: 1,
                resource: resource.clone(),
            },
        );
        let snapshots = self.sync_membership(&id, None, Some(&resource));
        Ok(Written {
            resource: Some(resource),
            id,
            version: 1,
            snapshots,
        })
    }

    pub fn update_group(
        &self,
        id: &str,
        if_match: Option<&str>,
        change: &dyn Fn(&Value) -> Result<Value, ScimError>,
        check: WriteCheck,
    ) -> Result<Written, ScimError> {
        let (before, resource, version) = {
            let mut entry = self
                .groups
                .get_mut(id)
                .ok_or_else(|| ScimError::not_found("Group", id))?;
            check_if_match(if_match, entry.version)?;
            let wanted = change(&entry.resource)?;
            let created = entry.resource["meta"]["created"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let resource = Arc::new(self.prepare_group(wanted, id, entry.version + 1, &created)?);
            check(Some(&entry.resource), Some(&resource))?;
            let before = std::mem::replace(&mut entry.resource, resource.clone());
            entry.version += 1;
            (before, resource, entry.version)
        };
        let snapshots = self.sync_membership(id, Some(&before), Some(&resource));
        Ok(Written {
            resource: Some(resource),
            id: id.to_string(),
            version,
            snapshots,
        })
    }

    pub fn delete_group(&self, id: &str, if_match: Option<&str>, check: WriteCheck) -> Result<Written, ScimError> {
        {
            let entry = self.groups.get(id).ok_or_else(|| ScimError::not_found("Group", id))?;
            check_if_match(if_match, entry.version)?;
            check(Some(&entry.resource), None)?;
        }
        let (_, record) = self
            .groups
            .remove(id)
            .ok_or_else(|| ScimError::not_found("Group", id))?;
        let snapshots = self.sync_membership(id, Some(&record.resource), None);
        Ok(Written {
            resource: None,
            id: id.to_string(),
            version: record.version + 1,
            snapshots,
        })
    }
}
