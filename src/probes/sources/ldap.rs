//! A linked directory read by LDAP search, one search per read within the service's budget: the
//! entry found by the service's filter becomes the document a by-id read of an HTTP service
//! gives (`200` with `userName`, `active`, `title`, `roles`; `404` when the search finds
//! nothing), so every condition reads it the same way.
//!
//! The instant a read stands for is when its answer arrived, not when it was sent: a replica
//! that stalls (a stopped process, a full queue) answers late, and its clients could see the
//! entry only then. A search that does not answer within its bound counts as a failed read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ldap::{Directory, Scope, SearchEntry};
use crate::probes::condition::{Reading, Who};
use crate::probes::source::{Budget, Fetch, Memo, Pending, Source, Subject, after_run, slot};
use crate::workload::directory::LdapRead;

pub struct Ldap {
    dir: Directory,
    read: LdapRead,
    budget: Option<Budget>,
    requests: AtomicU64,
}

impl Ldap {
    /// Connects and binds now: a wrong password or an unreachable directory fails the run's start.
    pub async fn connect(read: &LdapRead, budget: Option<f64>) -> anyhow::Result<Ldap> {
        Ok(Ldap {
            dir: Directory::connect(&read.endpoint, 2).await?,
            read: read.clone(),
            budget: budget.map(Budget::per_second),
            requests: AtomicU64::new(0),
        })
    }

    /// One search once the run is over, outside the budget, counted.
    async fn read_after(&self, user_name: &str) -> Option<Arc<Reading>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match self.search(user_name).await {
            Fetch::Answer { reading, .. } => Some(reading),
            _ => None,
        }
    }

    /// One search within the budget.
    async fn fetch(&self, user_name: &str, stop: &CancellationToken) -> Fetch {
        if !slot(self.budget.as_ref(), stop).await {
            return Fetch::Stopped;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            f = self.search(user_name) => f,
            _ = stop.cancelled() => Fetch::Stopped,
        }
    }

    /// One search for `user_name`.
    async fn search(&self, user_name: &str) -> Fetch {
        let r = &self.read;
        let attrs = [
            r.disabled.attribute(),
            r.title_attribute.as_str(),
            r.roles_attribute.as_str(),
        ];
        let sent = Instant::now();
        let found = self
            .dir
            .search(&r.base_dn, Scope::Subtree, &r.filter_for(user_name), &attrs, Some(2))
            .await;
        let arrived = Instant::now();
        match found {
            Ok(entries) => {
                let (status, doc) = match entries.first() {
                    Some(e) => match view(r, user_name, e) {
                        Ok(doc) => (200, doc),
                        Err(why) => {
                            // Neither enabled nor disabled: a read that failed, with its cause.
                            tracing::debug!(user = user_name, "an LDAP probe read: {why}");
                            return Fetch::Failed(sent);
                        }
                    },
                    None => (404, Value::Null),
                };
                let body = serde_json::to_vec(&doc).unwrap_or_default();
                Fetch::Answer {
                    reading: Arc::new(Reading::new(status, body.into())),
                    sent,
                    arrived,
                }
            }
            Err(_) => Fetch::Failed(sent),
        }
    }
}

impl Source for Ldap {
    fn read<'a>(&'a self, subject: Subject<'a>, _: &'a mut Memo, stop: &'a CancellationToken) -> Pending<'a, Fetch> {
        Box::pin(self.fetch(subject.who.user_name, stop))
    }

    /// One search each, outside the budget and not counted: the run is over.
    fn read_all<'a>(&'a self, users: &'a [Who<'a>]) -> Pending<'a, Vec<Option<Arc<Reading>>>> {
        Box::pin(after_run(users.iter().map(|w| self.read_after(w.user_name))))
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Its base DN must exist: a search under one that does not answers nothing for every user.
    fn preflight(&self) -> Pending<'_, Result<(), String>> {
        Box::pin(async move {
            let (base, at) = (&self.read.base_dn, self.dir.endpoint().display());
            match self.dir.exists(base).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(format!(
                    "its base DN `{base}` (ldap.base_dn) does not exist in {at} (noSuchObject)"
                )),
                Err(e) => Err(format!("a search of its base DN `{base}` in {at} failed: {e}")),
            }
        })
    }
}

/// The values of `attribute` (attribute names compare case-insensitively).
fn values<'e>(e: &'e SearchEntry, attribute: &str) -> &'e [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .map_or(&[][..], |(_, v)| v.as_slice())
}

/// The entry as the document the probes' conditions read; an error when its disabled state
/// cannot be read (a flag word that is no integer).
fn view(r: &LdapRead, user_name: &str, e: &SearchEntry) -> Result<Value, String> {
    let disabled = r.disabled.disabled(values(e, r.disabled.attribute()))?;
    let roles: Vec<Value> = values(e, &r.roles_attribute)
        .iter()
        .map(|v| json!({ "value": v }))
        .collect();
    Ok(json!({
        "id": e.dn,
        "userName": user_name,
        "active": !disabled,
        "title": values(e, &r.title_attribute).first(),
        "roles": roles,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::workload::ldap_read::DisabledRule;

    fn read(disabled: DisabledRule) -> LdapRead {
        LdapRead {
            endpoint: crate::ldap::Endpoint {
                url: "ldap://127.0.0.1:1".into(),
                starttls: false,
                ca_file: None,
                bind_dn: None,
                password: None,
                timeout: std::time::Duration::from_secs(1),
            },
            base_dn: "ou=people,dc=example,dc=test".into(),
            filter: "(uid={userName})".into(),
            disabled,
            title_attribute: "title".into(),
            roles_attribute: "employeeType".into(),
        }
    }

    fn entry(attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: "uid=u,ou=people,dc=example,dc=test".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect::<HashMap<_, _>>(),
            bin_attrs: HashMap::new(),
        }
    }

    fn present() -> DisabledRule {
        DisabledRule::Present("nsAccountLock".into())
    }

    fn value(v: &str) -> DisabledRule {
        DisabledRule::Value {
            attribute: "nsAccountLock".into(),
            value: v.into(),
        }
    }

    #[test]
    fn an_entry_reads_as_a_scim_like_document() {
        let doc = view(
            &read(present()),
            "u",
            &entry(&[("TITLE", &["Title 7"]), ("employeeType", &["staff"])]),
        )
        .unwrap();
        assert_eq!(doc["active"], true);
        assert_eq!(doc["title"], "Title 7");
        assert_eq!(doc["roles"][0]["value"], "staff");
        let locked = view(&read(present()), "u", &entry(&[("nsaccountlock", &["TRUE"])])).unwrap();
        assert_eq!(locked["active"], false);
        assert_eq!(locked["title"], Value::Null);
    }

    #[test]
    fn a_lock_attribute_with_another_value_is_not_a_lock_when_a_value_is_named() {
        let open = view(&read(value("TRUE")), "u", &entry(&[("nsAccountLock", &["FALSE"])])).unwrap();
        assert_eq!(open["active"], true);
        let locked = view(&read(value("true")), "u", &entry(&[("nsAccountLock", &["TRUE"])])).unwrap();
        assert_eq!(locked["active"], false);
    }

    /// Regression: on Active Directory `userAccountControl` is on every account, and its mere
    /// presence read every user as disabled (an enable was never seen).
    #[test]
    fn an_ad_account_reads_disabled_by_bit_2_of_user_account_control() {
        let ad = read(DisabledRule::Bits {
            attribute: "userAccountControl".into(),
            mask: crate::workload::ldap_lock::AD_ACCOUNTDISABLE,
        });
        let enabled = view(&ad, "u", &entry(&[("userAccountControl", &["512"])])).unwrap();
        assert_eq!(enabled["active"], true);
        let disabled = view(&ad, "u", &entry(&[("useraccountcontrol", &["514"])])).unwrap();
        assert_eq!(disabled["active"], false);
        assert!(view(&ad, "u", &entry(&[("userAccountControl", &["x"])])).is_err());
    }
}
