//! Directories: a target of kind `ldap` (where it is, who binds, where users go) and the shape of
//! the entries its journeys write (`[directory]`: object classes, attributes from the template
//! vocabulary, the run's marker in the RDN, how disable and enable are written, where roles and
//! groups live); LDAP read settings shared by the LDAP probe and the bind-login check.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::template::{Escape, Template, Vars};
use crate::http::Secret;
use crate::ldap::Endpoint;

/// `[directory]`, on disk.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DirectoryWire {
    /// The naming attribute of a user entry (default `uid`).
    #[serde(default)]
    pub rdn: Option<String>,
    /// Its value: carries `{run_id}` and `{seq}` (default `{run_id}-{seq}`).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub object_classes: Option<Vec<String>>,
    /// Attribute = value template (or a list of them).
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, toml::Value>>,
    /// What `modify_user` replaces (default `{ title = "Title {seq}" }`).
    #[serde(default)]
    pub modify: Option<BTreeMap<String, String>>,
    /// `ppolicy` (default: `pwdAccountLockedTime`), `389ds` (`nsAccountLock`),
    /// `active-directory` (`userAccountControl`), or `custom` with `disable` and `enable`.
    #[serde(default)]
    pub lock: Option<String>,
    /// `lock = "custom"`: attribute = value (replace), or `[]` (delete the attribute).
    #[serde(default)]
    pub disable: Option<BTreeMap<String, toml::Value>>,
    #[serde(default)]
    pub enable: Option<BTreeMap<String, toml::Value>>,
    /// Where roles live: an attribute of the user (default `employeeType`), or `groups`
    /// (existing groups named `cn=ROLE` under the groups' base).
    #[serde(default)]
    pub roles: Option<String>,
    #[serde(default)]
    pub groups: Option<GroupsWire>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupsWire {
    #[serde(default)]
    pub base_dn: Option<String>,
    #[serde(default)]
    pub object_class: Option<String>,
    #[serde(default)]
    pub member_attribute: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A change disable or enable writes: the attribute's new values; none deletes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub attribute: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LdapRoles {
    /// Values of this attribute of the user entry.
    Attribute(String),
    /// Membership of the existing group `cn=ROLE,<groups base>`.
    Groups,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupShape {
    pub base_dn: String,
    pub object_class: String,
    /// `member` (groupOfNames) or `uniqueMember` (groupOfUniqueNames): values are DNs.
    pub member_attribute: String,
    /// The `cn` of a created group: carries `{run_id}`.
    pub name: Template,
}

/// A target of kind `ldap`.
#[derive(Debug, Clone, PartialEq)]
pub struct LdapTarget {
    pub endpoint: Endpoint,
    /// Where user entries are created.
    pub base_dn: String,
    pub connections: usize,
    pub rdn: String,
    pub name: Template,
    pub object_classes: Vec<String>,
    pub attributes: Vec<(String, Vec<Template>)>,
    pub modify: Vec<(String, Template)>,
    pub disable: Vec<Change>,
    pub enable: Vec<Change>,
    pub roles: LdapRoles,
    pub groups: GroupShape,
}

/// Renders a compiled text template as it is.
pub fn text(t: &Template, vars: &Vars) -> String {
    let mut out = String::new();
    let _ = t.render_with(vars, &|_| None, Escape::Raw, &mut out);
    out
}

fn template(s: &str, vars: &BTreeMap<String, String>, key: &str) -> Result<Template, String> {
    Template::compile_text(s, vars, &|_| false).map_err(|m| format!("{key}: {m}"))
}

/// An attribute name as LDAP allows it (RFC 4512 descr or a numeric OID).
fn attribute_name(a: &str, key: &str) -> Result<(), String> {
    let ok = !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b';');
    if ok {
        Ok(())
    } else {
        Err(format!("{key}: `{a}` is not an LDAP attribute name"))
    }
}

/// `"value"` or `["v1", "v2"]`; `[]` when `empty_ok`.
fn values(v: &toml::Value, key: &str, empty_ok: bool) -> Result<Vec<String>, String> {
    let list = match v {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(a) => a
            .iter()
            .map(|x| match x {
                toml::Value::String(s) => Ok(s.clone()),
                other => Err(format!("{key}: values are strings, got {other}")),
            })
            .collect::<Result<_, _>>()?,
        toml::Value::Integer(i) => vec![i.to_string()],
        other => return Err(format!("{key}: a string or a list of strings, got {other}")),
    };
    if list.is_empty() && !empty_ok {
        return Err(format!("{key}: give at least one value"));
    }
    Ok(list)
}

fn changes(table: &BTreeMap<String, toml::Value>, key: &str) -> Result<Vec<Change>, String> {
    table
        .iter()
        .map(|(a, v)| {
            attribute_name(a, key)?;
            Ok(Change {
                attribute: a.clone(),
                values: values(v, &format!("{key}.{a}"), true)?,
            })
        })
        .collect()
}

fn change(attribute: &str, values: &[&str]) -> Change {
    Change {
        attribute: attribute.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

/// How disable and enable are written.
fn lock(d: &DirectoryWire) -> Result<(Vec<Change>, Vec<Change>), String> {
    let preset = d
        .lock
        .as_deref()
        .unwrap_or(if d.disable.is_some() { "custom" } else { "ppolicy" });
    let custom = d.disable.is_some() || d.enable.is_some();
    if custom && preset != "custom" {
        return Err(format!(
            "directory: `disable` and `enable` go with lock = \"custom\" (lock is \"{preset}\")"
        ));
    }
    Ok(match preset {
        // OpenLDAP's ppolicy overlay: a lock time of 00000101000000Z locks for good.
        "ppolicy" => (
            vec![change("pwdAccountLockedTime", &["000001010000Z"])],
            vec![change("pwdAccountLockedTime", &[])],
        ),
        "389ds" => (
            vec![change("nsAccountLock", &["TRUE"])],
            vec![change("nsAccountLock", &[])],
        ),
        // ACCOUNTDISABLE (2) with NORMAL_ACCOUNT (512).
        "active-directory" => (
            vec![change("userAccountControl", &["514"])],
            vec![change("userAccountControl", &["512"])],
        ),
        "custom" => {
            let (Some(dis), Some(en)) = (&d.disable, &d.enable) else {
                return Err("directory: lock = \"custom\" needs both `disable` and `enable` tables".into());
            };
            (changes(dis, "directory.disable")?, changes(en, "directory.enable")?)
        }
        other => {
            return Err(format!(
                "directory.lock: `{other}` (known: ppolicy, 389ds, active-directory, custom)"
            ));
        }
    })
}

impl LdapTarget {
    /// `[directory]` around an endpoint; `password` (`[users] password`) becomes `userPassword`.
    pub fn from_wire(
        endpoint: Endpoint,
        base_dn: String,
        connections: usize,
        d: DirectoryWire,
        vars: &BTreeMap<String, String>,
        password: Option<&str>,
        marker_ok: &dyn Fn(&str) -> bool,
    ) -> Result<LdapTarget, String> {
        let rdn = d.rdn.clone().unwrap_or_else(|| "uid".into());
        attribute_name(&rdn, "directory.rdn")?;
        let name = d.name.clone().unwrap_or_else(|| "{run_id}-{seq}".into());
        if !name.contains("{run_id}") || !name.contains("{seq}") || !marker_ok(&name) {
            return Err(format!(
                "directory.name = \"{name}\": it must carry `{{run_id}}` apart from letters, digits and other placeholders, and `{{seq}}` (e.g. \"{{run_id}}-{{seq}}\"): cleanup finds the run's entries by it"
            ));
        }
        let object_classes = d.object_classes.clone().unwrap_or_else(|| vec!["inetOrgPerson".into()]);
        if object_classes.is_empty() {
            return Err("directory.object_classes: give at least one object class".into());
        }
        let given = d.attributes.clone().unwrap_or_else(|| {
            [
                ("cn", "{first} {last}"),
                ("sn", "{last}"),
                ("givenName", "{first}"),
                ("mail", "{run_id}-{seq}@example.test"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), toml::Value::String(v.into())))
            .collect()
        });
        let mut attributes = Vec::new();
        for (a, v) in &given {
            let key = format!("directory.attributes.{a}");
            attribute_name(a, &key)?;
            if a.eq_ignore_ascii_case(&rdn) || a.eq_ignore_ascii_case("objectClass") {
                return Err(format!(
                    "{key}: set by provbench (`rdn` and `name` give the naming attribute, `object_classes` the classes)"
                ));
            }
            let list = values(v, &key, false)?;
            attributes.push((
                a.clone(),
                list.iter().map(|s| template(s, vars, &key)).collect::<Result<_, _>>()?,
            ));
        }
        if let Some(p) = password {
            attributes.push(("userPassword".into(), vec![template(p, vars, "users.password")?]));
        }
        let modify = d
            .modify
            .clone()
            .unwrap_or_else(|| BTreeMap::from([("title".to_string(), "Title {seq}".to_string())]))
            .iter()
            .map(|(a, v)| {
                attribute_name(a, "directory.modify")?;
                Ok((a.clone(), template(v, vars, &format!("directory.modify.{a}"))?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let (disable, enable) = lock(&d)?;
        let roles = match d.roles.as_deref() {
            None => LdapRoles::Attribute("employeeType".into()),
            Some("groups") => LdapRoles::Groups,
            Some(a) => {
                attribute_name(a, "directory.roles")?;
                LdapRoles::Attribute(a.into())
            }
        };
        let g = d.groups.unwrap_or_default();
        let group_name = g.name.unwrap_or_else(|| "{run_id}-group-{seq}".into());
        if !group_name.contains("{run_id}") || !marker_ok(&group_name) {
            return Err(format!(
                "directory.groups.name = \"{group_name}\": it must carry `{{run_id}}` apart from letters and digits"
            ));
        }
        let parent = base_dn.split_once(',').map(|(_, p)| p.to_string()).unwrap_or_default();
        let groups = GroupShape {
            base_dn: g.base_dn.unwrap_or_else(|| format!("ou=groups,{parent}")),
            object_class: g.object_class.unwrap_or_else(|| "groupOfNames".into()),
            member_attribute: g.member_attribute.unwrap_or_else(|| "member".into()),
            name: template(&group_name, vars, "directory.groups.name")?,
        };
        Ok(LdapTarget {
            endpoint,
            base_dn,
            connections,
            rdn,
            name: template(&name, vars, "directory.name")?,
            object_classes,
            attributes,
            modify,
            disable,
            enable,
            roles,
            groups,
        })
    }

    /// The DN of the user entry named `value`.
    pub fn user_dn(&self, value: &str) -> String {
        format!("{}={},{}", self.rdn, crate::ldap::dn_escape(value), self.base_dn)
    }

    /// The DN of the group named `cn`.
    pub fn group_dn(&self, cn: &str) -> String {
        format!("cn={},{}", crate::ldap::dn_escape(cn), self.groups.base_dn)
    }
}

/// `[[probes.sync]] ldap = { … }`: a linked directory read by LDAP search.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapReadWire {
    pub url: Option<String>,
    #[serde(default)]
    pub starttls: Option<bool>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    pub base_dn: Option<String>,
    /// Finds the user: `{userName}` is the naming value, escaped (default `(uid={userName})`).
    #[serde(default)]
    pub filter: Option<String>,
    /// The attribute whose presence (or `disabled_value`) shows the account disabled
    /// (default `pwdAccountLockedTime`).
    #[serde(default)]
    pub disabled_attribute: Option<String>,
    #[serde(default)]
    pub disabled_value: Option<String>,
    /// Where the title and the roles show (defaults `title`, `employeeType`).
    #[serde(default)]
    pub title_attribute: Option<String>,
    #[serde(default)]
    pub roles_attribute: Option<String>,
    /// The bound of each search (default 1s): a replica that does not answer within it is not
    /// showing anything to its clients either.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// A linked directory the probes read by LDAP search. Its answer is turned into the document a
/// by-id read gives (`/userName`, `/active`, `/title`, `/roles`), so the probes' conditions read
/// it like any other service's.
#[derive(Debug, Clone, PartialEq)]
pub struct LdapRead {
    pub endpoint: Endpoint,
    pub base_dn: String,
    pub filter: String,
    pub disabled_attribute: String,
    pub disabled_value: Option<String>,
    pub title_attribute: String,
    pub roles_attribute: String,
}

impl LdapRead {
    pub fn from_wire(w: LdapReadWire, key: &str, base: &Path) -> Result<LdapRead, String> {
        let timeout = match &w.timeout {
            Some(t) => {
                let d = humantime::parse_duration(t.trim()).map_err(|e| format!("{key}.timeout: `{t}`: {e}"))?;
                super::limits::duration(&format!("{key}.timeout"), d, super::limits::WAIT)?
            }
            None => Duration::from_secs(1),
        };
        let endpoint = endpoint(
            EndpointWire {
                url: w.url.as_deref(),
                starttls: w.starttls,
                ca_file: w.ca_file.as_deref(),
                bind_dn: w.bind_dn.as_deref(),
                password_env: w.password_env.as_deref(),
                password_file: w.password_file.as_deref(),
                timeout,
            },
            key,
            base,
        )?;
        let Some(base_dn) = w.base_dn else {
            return Err(format!("{key} needs `base_dn`: where to search for the user"));
        };
        let filter = w.filter.unwrap_or_else(|| "(uid={userName})".into());
        if !filter.contains("{userName}") || !filter.starts_with('(') {
            return Err(format!(
                "{key}.filter = \"{filter}\": an LDAP filter in parentheses with `{{userName}}`, e.g. \"(uid={{userName}})\""
            ));
        }
        let attr = |v: Option<String>, default: &str, k: &str| -> Result<String, String> {
            let a = v.unwrap_or_else(|| default.into());
            attribute_name(&a, &format!("{key}.{k}"))?;
            Ok(a)
        };
        Ok(LdapRead {
            endpoint,
            base_dn,
            filter,
            disabled_attribute: attr(w.disabled_attribute, "pwdAccountLockedTime", "disabled_attribute")?,
            disabled_value: w.disabled_value,
            title_attribute: attr(w.title_attribute, "title", "title_attribute")?,
            roles_attribute: attr(w.roles_attribute, "employeeType", "roles_attribute")?,
        })
    }

    /// The filter for one user, its value escaped.
    pub fn filter_for(&self, user_name: &str) -> String {
        self.filter.replace("{userName}", &crate::ldap::ldap_escape(user_name))
    }
}

/// Where a directory is, as workload files say it (target, LDAP probes, bind checks).
pub struct EndpointWire<'a> {
    pub url: Option<&'a str>,
    pub starttls: Option<bool>,
    pub ca_file: Option<&'a str>,
    pub bind_dn: Option<&'a str>,
    pub password_env: Option<&'a str>,
    pub password_file: Option<&'a str>,
    pub timeout: Duration,
}

/// Checks an LDAP endpoint: `key` prefixes errors, files are relative to `base`.
pub fn endpoint(w: EndpointWire, key: &str, base: &Path) -> Result<Endpoint, String> {
    let Some(url) = w.url else {
        return Err(format!("{key} needs `url` (ldap://host:port or ldaps://host:port)"));
    };
    let url = url.trim_end_matches('/').to_string();
    let ldaps = url.starts_with("ldaps://");
    if !(ldaps || url.starts_with("ldap://")) {
        return Err(format!("{key}.url must start with ldap:// or ldaps://, got `{url}`"));
    }
    let starttls = w.starttls.unwrap_or(false);
    if starttls && ldaps {
        return Err(format!(
            "{key}: starttls upgrades an ldap:// connection; an ldaps:// one is TLS already"
        ));
    }
    let ca_file = match w.ca_file {
        Some(f) => {
            let path = base.join(f);
            if !path.is_file() {
                return Err(format!("{key}.ca_file: no file {}", path.display()));
            }
            if !(ldaps || starttls) {
                return Err(format!("{key}.ca_file needs ldaps:// or starttls = true"));
            }
            Some(path)
        }
        None => None,
    };
    let password = match (w.password_env, w.password_file) {
        (Some(e), None) => Some(Secret::Env(e.into())),
        (None, Some(f)) => Some(Secret::File(base.join(f))),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(format!("{key}: give `password_env` or `password_file`, not both")),
    };
    if password.is_some() && w.bind_dn.is_none() {
        return Err(format!("{key}: a password goes with `bind_dn`"));
    }
    if w.bind_dn.is_some() && password.is_none() {
        return Err(format!(
            "{key}: `bind_dn` needs `password_env` or `password_file` (never the password itself)"
        ));
    }
    Ok(Endpoint {
        url,
        starttls,
        ca_file,
        bind_dn: w.bind_dn.map(str::to_string),
        password,
        timeout: w.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(d: DirectoryWire) -> Result<LdapTarget, String> {
        let ep = endpoint(
            EndpointWire {
                url: Some("ldap://127.0.0.1:389"),
                starttls: None,
                ca_file: None,
                bind_dn: Some("cn=admin,dc=example,dc=test"),
                password_env: Some("PW"),
                password_file: None,
                timeout: Duration::from_secs(5),
            },
            "target",
            Path::new("."),
        )?;
        LdapTarget::from_wire(
            ep,
            "ou=people,dc=example,dc=test".into(),
            2,
            d,
            &BTreeMap::new(),
            Some("pw-{seq}"),
            &|_| true,
        )
    }

    #[test]
    fn defaults_make_a_ppolicy_inetorgperson_entry() {
        let t = target(DirectoryWire::default()).unwrap();
        assert_eq!(t.rdn, "uid");
        assert_eq!(t.disable, vec![change("pwdAccountLockedTime", &["000001010000Z"])]);
        assert_eq!(t.enable[0].values, Vec::<String>::new());
        assert_eq!(t.groups.base_dn, "ou=groups,dc=example,dc=test");
        assert!(t.attributes.iter().any(|(a, _)| a == "userPassword"));
        assert_eq!(t.user_dn("pb-1-2"), "uid=pb-1-2,ou=people,dc=example,dc=test");
        assert_eq!(t.user_dn("a,b"), "uid=a\\2cb,ou=people,dc=example,dc=test");
    }

    #[test]
    fn mistakes_are_named() {
        let no_marker = DirectoryWire {
            name: Some("user-{seq}".into()),
            ..Default::default()
        };
        assert!(target(no_marker).unwrap_err().contains("{run_id}"));
        let half_custom = DirectoryWire {
            lock: Some("custom".into()),
            disable: Some(BTreeMap::new()),
            ..Default::default()
        };
        assert!(target(half_custom).unwrap_err().contains("both"));
        let unknown = DirectoryWire {
            lock: Some("novell".into()),
            ..Default::default()
        };
        assert!(target(unknown).unwrap_err().contains("known: ppolicy"));
        let e = endpoint(
            EndpointWire {
                url: Some("http://x"),
                starttls: None,
                ca_file: None,
                bind_dn: None,
                password_env: None,
                password_file: None,
                timeout: Duration::from_secs(1),
            },
            "target",
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.contains("ldap://"), "{e}");
    }
}
