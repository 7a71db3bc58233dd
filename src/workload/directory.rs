//! Directories: a target of kind `ldap` (where it is, who binds, where users go) and the shape of
//! the entries its journeys write (`[directory]`: object classes, attributes from the template
//! vocabulary, the run's marker in the RDN, how disable and enable are written, where roles and
//! groups live), how a created user gets its password (`userPassword`, or Active Directory's
//! `unicodePwd` over TLS with the account enabled), each error at the key at fault. Where a
//! directory is and how a linked one is read are in [`ldap_read`](super::ldap_read), re-exported
//! here.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Source, WorkloadError};
use super::fields::span_of;
use super::ldap_read::attribute_name;
pub use super::ldap_read::{EndpointWire, LdapRead, LdapReadWire, endpoint};
use super::template::{Escape, Template, Vars, marker_stands_alone};
use crate::ldap::Endpoint;

/// `[directory]`, on disk. Keys keep their place, for errors at their line.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DirectoryWire {
    /// The naming attribute of a user entry (default `uid`).
    #[serde(default)]
    pub rdn: Option<Spanned<String>>,
    /// Its value: carries `{run_id}` and `{seq}` (default `{run_id}-{seq}`).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub object_classes: Option<Spanned<Vec<String>>>,
    /// Attribute = value template (or a list of them).
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, Spanned<toml::Value>>>,
    /// What `modify_user` replaces (default `{ title = "Title {seq}" }`).
    #[serde(default)]
    pub modify: Option<BTreeMap<String, Spanned<String>>>,
    /// `ppolicy` (default: `pwdAccountLockedTime`), `389ds` (`nsAccountLock`),
    /// `active-directory` (`userAccountControl`), or `custom` with `disable` and `enable`.
    #[serde(default)]
    pub lock: Option<Spanned<String>>,
    /// `lock = "custom"`: attribute = value (replace), or `[]` (delete the attribute).
    #[serde(default)]
    pub disable: Option<Spanned<BTreeMap<String, toml::Value>>>,
    #[serde(default)]
    pub enable: Option<Spanned<BTreeMap<String, toml::Value>>>,
    /// How `[users] password` is written: `userPassword` (default), or `unicodePwd` (Active
    /// Directory; the default of lock = "active-directory").
    #[serde(default)]
    pub password_attribute: Option<Spanned<String>>,
    /// Where roles live: an attribute of the user (default `employeeType`), or `groups`
    /// (existing groups named `cn=ROLE` under the groups' base).
    #[serde(default)]
    pub roles: Option<Spanned<String>>,
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
    pub name: Option<Spanned<String>>,
}

/// How a created user gets its password, for the bind checks to log in with it.
#[derive(Debug, Clone, PartialEq)]
pub enum PasswordWrite {
    /// `[users]` has no password: none is written.
    None,
    /// `userPassword`, as the directory takes it (OpenLDAP and 389 DS, which hash it when
    /// configured to).
    UserPassword(Template),
    /// Active Directory: `unicodePwd` (the password in double quotes, UTF-16LE, a binary value)
    /// in the add, which AD takes only over TLS, with `userAccountControl = 512`
    /// (NORMAL_ACCOUNT: enabled) beside it. No clear-text attribute is written.
    UnicodePwd(Template),
}

/// The `lock` presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Ppolicy,
    Ds389,
    ActiveDirectory,
    Custom,
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
    /// How the created user's password is written (never among `attributes`).
    pub password: PasswordWrite,
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

/// The preset `lock` names (`custom` when only `disable` is given).
fn preset(src: &Source, d: &DirectoryWire) -> Result<Lock, WorkloadError> {
    let preset = d
        .lock
        .as_ref()
        .map(|l| l.get_ref().as_str())
        .unwrap_or(if d.disable.is_some() { "custom" } else { "ppolicy" });
    Ok(match preset {
        "ppolicy" => Lock::Ppolicy,
        "389ds" => Lock::Ds389,
        "active-directory" => Lock::ActiveDirectory,
        "custom" => Lock::Custom,
        other => {
            return Err(src.error(
                span_of(&d.lock),
                format!("directory.lock: `{other}` (known: ppolicy, 389ds, active-directory, custom)"),
            ));
        }
    })
}

/// How disable and enable are written.
fn lock(src: &Source, d: &DirectoryWire, lock: Lock) -> Result<(Vec<Change>, Vec<Change>), WorkloadError> {
    let preset = d.lock.as_ref().map_or("ppolicy", |l| l.get_ref().as_str());
    let lock_span = span_of(&d.lock);
    if lock != Lock::Custom
        && let Some(given) = d.disable.as_ref().or(d.enable.as_ref())
    {
        return Err(src.error(
            Some(given.span()),
            format!("directory: `disable` and `enable` go with lock = \"custom\" (lock is \"{preset}\")"),
        ));
    }
    Ok(match lock {
        // OpenLDAP's ppolicy overlay: a lock time of 00000101000000Z locks for good.
        Lock::Ppolicy => (
            vec![change("pwdAccountLockedTime", &["000001010000Z"])],
            vec![change("pwdAccountLockedTime", &[])],
        ),
        Lock::Ds389 => (
            vec![change("nsAccountLock", &["TRUE"])],
            vec![change("nsAccountLock", &[])],
        ),
        // ACCOUNTDISABLE (2) with NORMAL_ACCOUNT (512).
        Lock::ActiveDirectory => (
            vec![change("userAccountControl", &["514"])],
            vec![change("userAccountControl", &["512"])],
        ),
        Lock::Custom => {
            let (Some(dis), Some(en)) = (&d.disable, &d.enable) else {
                let at = span_of(&d.disable).or(span_of(&d.enable)).or(lock_span);
                return Err(src.error(
                    at,
                    "directory: lock = \"custom\" needs both `disable` and `enable` tables",
                ));
            };
            (
                changes(dis.get_ref(), "directory.disable").map_err(|m| src.error(Some(dis.span()), m))?,
                changes(en.get_ref(), "directory.enable").map_err(|m| src.error(Some(en.span()), m))?,
            )
        }
    })
}

/// The default attributes of a user entry named by `rdn` (which provbench sets itself).
fn default_attributes(rdn: &str) -> Vec<(String, toml::Value)> {
    [
        ("cn", "{first} {last}"),
        ("sn", "{last}"),
        ("givenName", "{first}"),
        ("mail", "{run_id}-{seq}@example.test"),
    ]
    .into_iter()
    .filter(|(k, _)| !k.eq_ignore_ascii_case(rdn))
    .map(|(k, v)| (k.to_string(), toml::Value::String(v.into())))
    .collect()
}

/// The naming attribute and the value template of a user entry.
fn naming(
    src: &Source,
    d: &DirectoryWire,
    vars: &BTreeMap<String, String>,
    lock: Lock,
) -> Result<(String, Template), WorkloadError> {
    let ad = lock == Lock::ActiveDirectory;
    let rdn = d
        .rdn
        .as_ref()
        .map(|r| r.get_ref().clone())
        .unwrap_or_else(|| if ad { "cn" } else { "uid" }.into());
    attribute_name(&rdn, "directory.rdn").map_err(|m| src.error(span_of(&d.rdn), m))?;
    if ad && !rdn.eq_ignore_ascii_case("cn") {
        return Err(src.error(
            span_of(&d.rdn),
            format!(
                "directory.rdn = \"{rdn}\": Active Directory names user entries by `cn` (lock = \"active-directory\")"
            ),
        ));
    }
    let name = d
        .name
        .as_ref()
        .map(|n| n.get_ref().clone())
        .unwrap_or_else(|| "{run_id}-{seq}".into());
    let at = span_of(&d.name);
    if !name.contains("{run_id}") || !name.contains("{seq}") || !marker_stands_alone(&name) {
        return Err(src.error(
            at,
            format!(
                "directory.name = \"{name}\": it must carry `{{run_id}}` apart from letters, digits and other placeholders, and `{{seq}}` (e.g. \"{{run_id}}-{{seq}}\"): cleanup finds the run's entries by it"
            ),
        ));
    }
    let name = template(&name, vars, "directory.name").map_err(|m| src.error(at, m))?;
    Ok((rdn, name))
}

/// The attributes each created entry gets, each value a template (the password is not one of
/// them: see [`PasswordWrite`]).
fn attributes(
    src: &Source,
    d: &DirectoryWire,
    rdn: &str,
    vars: &BTreeMap<String, String>,
    lock: Lock,
) -> Result<Vec<(String, Vec<Template>)>, WorkloadError> {
    let given: Vec<(String, toml::Value, Option<std::ops::Range<usize>>)> = match &d.attributes {
        Some(a) => a
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone(), Some(v.span())))
            .collect(),
        None => default_attributes(rdn).into_iter().map(|(k, v)| (k, v, None)).collect(),
    };
    let mut attributes = Vec::new();
    for (a, v, span) in &given {
        let key = format!("directory.attributes.{a}");
        let at = |m: String| src.error(span.clone(), m);
        attribute_name(a, &key).map_err(at)?;
        if a.eq_ignore_ascii_case(rdn) || a.eq_ignore_ascii_case("objectClass") {
            return Err(at(format!(
                "{key}: set by provbench (`rdn` and `name` give the naming attribute, `object_classes` the classes)"
            )));
        }
        reserved(a, &key, d, lock).map_err(at)?;
        let list = values(v, &key, false).map_err(at)?;
        let templates = list.iter().map(|s| template(s, vars, &key)).collect::<Result<_, _>>();
        attributes.push((a.clone(), templates.map_err(at)?));
    }
    Ok(attributes)
}

/// Attributes a workload's `attributes` and `modify` never write, the one place they are
/// refused: the password (it is `[users] password`, written as the directory takes it and only
/// over TLS for Active Directory), and where provbench writes it, AD's userAccountControl.
fn reserved(a: &str, key: &str, d: &DirectoryWire, lock: Lock) -> Result<(), String> {
    if a.eq_ignore_ascii_case("userPassword") || a.eq_ignore_ascii_case("unicodePwd") {
        return Err(format!(
            "{key}: the password is `[users] password`, written as the directory takes it (userPassword, or unicodePwd with lock = \"active-directory\")"
        ));
    }
    if a.eq_ignore_ascii_case("userAccountControl") && writes_unicode_pwd(d, lock) {
        return Err(format!(
            "{key}: set by provbench for Active Directory (512, enabled, beside the password on create; the disable and enable steps change it)"
        ));
    }
    Ok(())
}

/// Whether the password goes to Active Directory's unicodePwd (as asked, or by the preset).
fn writes_unicode_pwd(d: &DirectoryWire, lock: Lock) -> bool {
    match &d.password_attribute {
        Some(a) => a.get_ref().eq_ignore_ascii_case("unicodePwd"),
        None => lock == Lock::ActiveDirectory,
    }
}

/// How the password is written: `userPassword`, or for Active Directory `unicodePwd`, which it
/// takes only over TLS (refused here for a plain ldap:// target, before anything is sent) and
/// without which an account cannot be enabled (refused too: an enabled AD account with no
/// password would be one anybody could sign in to where the policy allows empty ones).
fn password_write(
    src: &Source,
    d: &DirectoryWire,
    endpoint: &Endpoint,
    vars: &BTreeMap<String, String>,
    lock: Lock,
    password: Option<&str>,
) -> Result<PasswordWrite, WorkloadError> {
    let template = match password {
        Some(p) => Some(template(p, vars, "users.password").map_err(|m| src.error(None, m))?),
        None => None,
    };
    let given = d.password_attribute.as_ref().map(|a| a.get_ref().as_str());
    let at = span_of(&d.password_attribute).or(span_of(&d.lock));
    let unicode = match given {
        None => lock == Lock::ActiveDirectory,
        Some(a) if a.eq_ignore_ascii_case("unicodePwd") => true,
        Some(a) if a.eq_ignore_ascii_case("userPassword") && lock == Lock::ActiveDirectory => {
            return Err(src.error(
                at,
                "directory.password_attribute = \"userPassword\": with lock = \"active-directory\" the password is unicodePwd (AD keeps userPassword as a clear-text attribute anybody allowed to read it can read)",
            ));
        }
        Some(a) if a.eq_ignore_ascii_case("userPassword") => false,
        Some(other) => {
            return Err(src.error(
                at,
                format!("directory.password_attribute: `{other}` (known: userPassword, unicodePwd)"),
            ));
        }
    };
    if !unicode {
        return Ok(template.map_or(PasswordWrite::None, PasswordWrite::UserPassword));
    }
    let Some(template) = template else {
        return Err(src.error(
            at,
            "directory: a unicodePwd password (Active Directory) needs `[users] password`: AD enables an account only once it has one",
        ));
    };
    if !(endpoint.url.starts_with("ldaps://") || endpoint.starttls) {
        return Err(src.error(
            at,
            format!(
                "directory: the password is written as unicodePwd (Active Directory), which is sent only over TLS: target.url = \"{}\" is plain; use ldaps:// or starttls = true",
                endpoint.url
            ),
        ));
    }
    Ok(PasswordWrite::UnicodePwd(template))
}

/// What `modify_user` replaces.
fn modify(
    src: &Source,
    d: &DirectoryWire,
    vars: &BTreeMap<String, String>,
    lock: Lock,
) -> Result<Vec<(String, Template)>, WorkloadError> {
    let given: Vec<(String, String, Option<std::ops::Range<usize>>)> = match &d.modify {
        Some(m) => m
            .iter()
            .map(|(a, v)| (a.clone(), v.get_ref().clone(), Some(v.span())))
            .collect(),
        None => vec![("title".into(), "Title {seq}".into(), None)],
    };
    given
        .into_iter()
        .map(|(a, v, span)| {
            attribute_name(&a, "directory.modify").map_err(|m| src.error(span.clone(), m))?;
            reserved(&a, &format!("directory.modify.{a}"), d, lock).map_err(|m| src.error(span.clone(), m))?;
            let t = template(&v, vars, &format!("directory.modify.{a}")).map_err(|m| src.error(span, m))?;
            Ok((a, t))
        })
        .collect()
}

/// Where created groups go and how they are named; `base_dn` is the users'.
fn groups(
    src: &Source,
    g: Option<GroupsWire>,
    base_dn: &str,
    vars: &BTreeMap<String, String>,
    lock: Lock,
) -> Result<GroupShape, WorkloadError> {
    let g = g.unwrap_or_default();
    let at = span_of(&g.name);
    let group_name = g
        .name
        .map(Spanned::into_inner)
        .unwrap_or_else(|| "{run_id}-group-{seq}".into());
    if !group_name.contains("{run_id}") || !marker_stands_alone(&group_name) {
        return Err(src.error(
            at,
            format!(
                "directory.groups.name = \"{group_name}\": it must carry `{{run_id}}` apart from letters and digits"
            ),
        ));
    }
    let parent = base_dn.split_once(',').map(|(_, p)| p.to_string()).unwrap_or_default();
    Ok(GroupShape {
        base_dn: g.base_dn.unwrap_or_else(|| format!("ou=groups,{parent}")),
        object_class: g.object_class.unwrap_or_else(|| {
            if lock == Lock::ActiveDirectory {
                "group"
            } else {
                "groupOfNames"
            }
            .into()
        }),
        member_attribute: g.member_attribute.unwrap_or_else(|| "member".into()),
        name: template(&group_name, vars, "directory.groups.name").map_err(|m| src.error(at, m))?,
    })
}

impl LdapTarget {
    /// `[directory]` around an endpoint; `password` (`[users] password`) becomes `userPassword`,
    /// or `unicodePwd` with lock = "active-directory" (whose defaults are Active Directory's:
    /// named by `cn`, class `user`, groups of class `group`). Errors point at the key at fault.
    pub fn from_wire(
        src: &Source,
        endpoint: Endpoint,
        base_dn: String,
        connections: usize,
        d: Option<Spanned<DirectoryWire>>,
        vars: &BTreeMap<String, String>,
        password: Option<&str>,
    ) -> Result<LdapTarget, WorkloadError> {
        let d = d.map(Spanned::into_inner).unwrap_or_default();
        let preset = preset(src, &d)?;
        let (rdn, name) = naming(src, &d, vars, preset)?;
        let object_classes = match &d.object_classes {
            Some(o) if o.get_ref().is_empty() => {
                return Err(src.error(
                    Some(o.span()),
                    "directory.object_classes: give at least one object class",
                ));
            }
            Some(o) => o.get_ref().clone(),
            // AD fills in the classes above `user` (top, person, organizationalPerson).
            None if preset == Lock::ActiveDirectory => vec!["user".into()],
            None => vec!["inetOrgPerson".into()],
        };
        let attributes = attributes(src, &d, &rdn, vars, preset)?;
        let password = password_write(src, &d, &endpoint, vars, preset, password)?;
        let modify = modify(src, &d, vars, preset)?;
        let (disable, enable) = lock(src, &d, preset)?;
        let roles = match d.roles.as_ref().map(|r| r.get_ref().as_str()) {
            None => LdapRoles::Attribute("employeeType".into()),
            Some("groups") => LdapRoles::Groups,
            Some(a) => {
                attribute_name(a, "directory.roles").map_err(|m| src.error(span_of(&d.roles), m))?;
                LdapRoles::Attribute(a.into())
            }
        };
        let groups = groups(src, d.groups, &base_dn, vars, preset)?;
        Ok(LdapTarget {
            endpoint,
            base_dn,
            connections,
            rdn,
            name,
            object_classes,
            attributes,
            password,
            modify,
            disable,
            enable,
            roles,
            groups,
        })
    }

    /// The DN of the user entry named `value`.
    pub fn user_dn(&self, value: &str) -> String {
        // Pushed into one allocation: `format!` cost more than the rest of an add's own work.
        let value = crate::ldap::dn_escape(value);
        let mut dn = String::with_capacity(self.rdn.len() + value.len() + self.base_dn.len() + 2);
        for part in [self.rdn.as_str(), "=", &value, ",", self.base_dn.as_str()] {
            dn.push_str(part);
        }
        dn
    }

    /// The DN of the group named `cn`.
    pub fn group_dn(&self, cn: &str) -> String {
        format!("cn={},{}", crate::ldap::dn_escape(cn), self.groups.base_dn)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    /// `[directory]` written as `text` (its lines start at line 1), around a fixed endpoint.
    fn target(text: &str) -> Result<LdapTarget, WorkloadError> {
        target_at(text, "ldap://127.0.0.1:389", false, Some("pw-{seq}"))
    }

    /// [`target`] at `url` (with StartTLS or not) with `password` as `[users] password`.
    fn target_at(text: &str, url: &str, starttls: bool, password: Option<&str>) -> Result<LdapTarget, WorkloadError> {
        #[derive(Deserialize)]
        struct Doc {
            directory: Option<Spanned<DirectoryWire>>,
        }
        let text = format!("[directory]\n{text}");
        let src = Source {
            file: Path::new("w.toml"),
            text: &text,
            remap: None,
        };
        let doc: Doc = toml::from_str(&text).map_err(|e| src.from_toml(&e))?;
        let ep = endpoint(
            EndpointWire {
                url: Some(url),
                starttls: Some(starttls),
                ca_file: None,
                bind_dn: Some("cn=admin,dc=example,dc=test"),
                password_env: Some("PW"),
                password_file: None,
                timeout: Duration::from_secs(5),
            },
            "target",
            Path::new("."),
        )
        .unwrap();
        LdapTarget::from_wire(
            &src,
            ep,
            "ou=people,dc=example,dc=test".into(),
            2,
            doc.directory,
            &BTreeMap::new(),
            password,
        )
    }

    #[test]
    fn defaults_make_a_ppolicy_inetorgperson_entry() {
        let t = target("").unwrap();
        assert_eq!(t.rdn, "uid");
        assert_eq!(t.disable, vec![change("pwdAccountLockedTime", &["000001010000Z"])]);
        assert_eq!(t.enable[0].values, Vec::<String>::new());
        assert_eq!(t.groups.base_dn, "ou=groups,dc=example,dc=test");
        assert!(matches!(t.password, PasswordWrite::UserPassword(_)));
        assert!(!t.attributes.iter().any(|(a, _)| a == "userPassword"));
        assert_eq!(t.user_dn("pb-1-2"), "uid=pb-1-2,ou=people,dc=example,dc=test");
        assert_eq!(t.user_dn("a,b"), "uid=a\\2cb,ou=people,dc=example,dc=test");
    }

    /// Active Directory's preset: users named by `cn` of class `user`, the password as
    /// unicodePwd (never userPassword), groups of class `group`; over TLS only.
    #[test]
    fn the_active_directory_preset_writes_unicode_pwd_over_tls() {
        for (url, starttls) in [("ldaps://127.0.0.1:636", false), ("ldap://127.0.0.1:389", true)] {
            let t = target_at("lock = \"active-directory\"\n", url, starttls, Some("Pw-{seq}")).unwrap();
            assert_eq!(t.rdn, "cn");
            assert_eq!(t.object_classes, vec!["user".to_string()]);
            assert!(matches!(t.password, PasswordWrite::UnicodePwd(_)), "{:?}", t.password);
            assert!(
                !t.attributes
                    .iter()
                    .any(|(a, _)| a.eq_ignore_ascii_case("userPassword") || a.eq_ignore_ascii_case("cn")),
                "{:?}",
                t.attributes
            );
            assert_eq!(t.disable, vec![change("userAccountControl", &["514"])]);
            assert_eq!(t.enable, vec![change("userAccountControl", &["512"])]);
            assert_eq!(t.groups.object_class, "group");
        }
        // A custom lock on AD (the disable of a test that locks nothing) still sets passwords
        // as AD takes them.
        let custom = target_at(
            "lock = \"custom\"\ndisable = { description = \"x\" }\nenable = { description = [] }\nrdn = \"cn\"\npassword_attribute = \"unicodePwd\"\n",
            "ldaps://127.0.0.1:636",
            false,
            Some("Pw"),
        )
        .unwrap();
        assert!(matches!(custom.password, PasswordWrite::UnicodePwd(_)));
        let ad = |text: &str, url: &str, password: Option<&str>| {
            target_at(&format!("\n{text}"), url, false, password).unwrap_err()
        };
        for (e, line, needle) in [
            (
                ad("lock = \"active-directory\"\n", "ldap://127.0.0.1:389", Some("Pw")),
                3,
                "unicodePwd (Active Directory), which is sent only over TLS",
            ),
            (
                ad("lock = \"active-directory\"\n", "ldaps://127.0.0.1:636", None),
                3,
                "needs `[users] password`",
            ),
            (
                ad(
                    "lock = \"active-directory\"\npassword_attribute = \"userPassword\"\n",
                    "ldaps://127.0.0.1:636",
                    Some("Pw"),
                ),
                4,
                "the password is unicodePwd",
            ),
            (
                ad(
                    "lock = \"active-directory\"\nrdn = \"uid\"\n",
                    "ldaps://127.0.0.1:636",
                    Some("Pw"),
                ),
                4,
                "names user entries by `cn`",
            ),
            (
                ad(
                    "lock = \"active-directory\"\nattributes = { userAccountControl = \"66048\" }\n",
                    "ldaps://127.0.0.1:636",
                    Some("Pw"),
                ),
                4,
                "directory.attributes.userAccountControl",
            ),
            (
                ad(
                    "attributes = { userPassword = \"x\" }\n",
                    "ldap://127.0.0.1:389",
                    Some("Pw"),
                ),
                3,
                "the password is `[users] password`",
            ),
        ] {
            assert!(e.message.contains(needle), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
        }
    }

    /// Each mistake names its key and the line it is written on.
    #[test]
    fn mistakes_are_named_at_their_line() {
        for (text, line, needle) in [
            ("rdn = \"uid\"\nname = \"user-{seq}\"\n", 3, "{run_id}"),
            ("lock = \"custom\"\n\ndisable = {}\n", 4, "both"),
            ("rdn = \"uid\"\nlock = \"novell\"\n", 3, "known: ppolicy"),
            (
                "attributes = { cn = \"x\",\n  \"bad name\" = \"y\" }\n",
                3,
                "not an LDAP attribute name",
            ),
            ("\nmodify = { title = \"{nope}\" }\n", 3, "directory.modify.title"),
            ("groups = { name = \"team-{seq}\" }\n", 2, "directory.groups.name"),
            ("\n\nrdns = \"uid\"\n", 4, "did you mean `rdn`?"),
        ] {
            let e = target(text).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {e}");
            assert_eq!(e.line, Some(line), "{text}: {e}");
        }
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

    /// `modify` is held to what `attributes` is: no password attribute (it would go as text,
    /// over a plain connection too, and never redacted), no userAccountControl where provbench
    /// writes it (an enable or disable hidden in a modify).
    #[test]
    fn modify_writes_no_password_and_no_account_control() {
        for (text, url, needle) in [
            (
                "modify = { userPassword = \"Pw-{seq}\" }\n",
                "ldap://127.0.0.1:389",
                "directory.modify.userPassword",
            ),
            (
                "lock = \"active-directory\"\nmodify = { unicodePwd = \"Pw-{seq}\" }\n",
                "ldaps://127.0.0.1:636",
                "directory.modify.unicodePwd",
            ),
            (
                "lock = \"active-directory\"\nmodify = { userAccountControl = \"514\" }\n",
                "ldaps://127.0.0.1:636",
                "directory.modify.userAccountControl",
            ),
        ] {
            let e = target_at(text, url, false, Some("Pw-{seq}")).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
