//! The root DSE of a directory as `init` reads it (RFC 4512 §5.1): naming contexts, supported
//! controls, extensions and capabilities, who made it, where its schema is. From it: where users
//! go when no base DN was given (the naming context's `ou=people`, `ou=users` or `cn=Users`) and
//! where groups live. Searches only; what is copied from answers is short and said as found.

use super::draft::{Draft, Entry, Found};
use super::ldap_schema::Schema;
use crate::ldap::{Directory, Scope, SearchEntry};

pub const SYNCREPL: &str = "1.3.6.1.4.1.4203.1.9.1.1";
pub const PSEARCH: &str = "2.16.840.1.113730.3.4.3";
pub const PPOLICY: &str = "1.3.6.1.4.1.42.2.27.8.5.1";
pub const PAGED: &str = "1.2.840.113556.1.4.319";
/// `supportedCapabilities` of Active Directory (and Samba's AD DC).
pub const AD: &str = "1.2.840.113556.1.4.800";
const STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

/// Who made the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    ActiveDirectory,
    OpenLdap,
    Ds389,
    Unknown,
}

/// What the root DSE said.
#[derive(Debug, Clone)]
pub struct RootDse {
    pub naming_contexts: Vec<String>,
    pub default_context: Option<String>,
    pub controls: Vec<String>,
    pub extensions: Vec<String>,
    pub vendor: Vendor,
    pub vendor_name: Option<String>,
    pub subschema: Option<String>,
}

const ATTRIBUTES: [&str; 9] = [
    "namingContexts",
    "defaultNamingContext",
    "supportedControl",
    "supportedExtension",
    "supportedCapabilities",
    "vendorName",
    "vendorVersion",
    "subschemaSubentry",
    "objectClass",
];

/// The values of `attribute` (names compared without case, as LDAP does).
pub fn values(e: &SearchEntry, attribute: &str) -> Vec<String> {
    e.attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

impl RootDse {
    pub async fn read(dir: &Directory) -> anyhow::Result<RootDse> {
        let found = dir
            .search("", Scope::Base, "(objectClass=*)", &ATTRIBUTES, Some(1))
            .await
            .map_err(|e| anyhow::anyhow!("reading the root DSE failed: {e}"))?;
        let Some(e) = found.first() else {
            anyhow::bail!("the root DSE answered no entry (is it readable by the bind DN?)");
        };
        Ok(RootDse::from_entry(e))
    }

    pub fn from_entry(e: &SearchEntry) -> RootDse {
        let one = |a: &str| values(e, a).into_iter().next();
        let capabilities = values(e, "supportedCapabilities");
        let vendor_name = one("vendorName");
        let vendor = if capabilities.iter().any(|c| c == AD) {
            Vendor::ActiveDirectory
        } else if values(e, "objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case("OpenLDAProotDSE"))
        {
            Vendor::OpenLdap
        } else if vendor_name
            .as_deref()
            .is_some_and(|v| v.contains("389") || v.contains("Red Hat") || v.contains("Fedora"))
        {
            Vendor::Ds389
        } else {
            Vendor::Unknown
        };
        RootDse {
            naming_contexts: values(e, "namingContexts"),
            default_context: one("defaultNamingContext"),
            controls: values(e, "supportedControl"),
            extensions: values(e, "supportedExtension"),
            vendor,
            vendor_name,
            subschema: one("subschemaSubentry"),
        }
    }

    /// The naming contexts, for messages.
    pub fn contexts(&self) -> String {
        match self.naming_contexts.is_empty() {
            true => "none listed".into(),
            false => self
                .naming_contexts
                .iter()
                .map(|c| crate::redact::sample(c, 80))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// The naming context users go under: AD's default one, else the first that is not the
    /// server's own configuration or schema.
    pub fn users_context(&self) -> Option<String> {
        self.default_context.clone().or_else(|| {
            self.naming_contexts
                .iter()
                .find(|c| {
                    let l = c.to_ascii_lowercase();
                    !(l.starts_with("cn=config")
                        || l.starts_with("cn=schema")
                        || l.starts_with("cn=configuration")
                        || l.is_empty())
                })
                .cloned()
        })
    }

    /// The naming context `dn` is under (the longest that ends it), else `dn` itself.
    pub fn context_of(&self, dn: &str) -> String {
        let l = dn.to_ascii_lowercase().replace(", ", ",");
        self.naming_contexts
            .iter()
            .filter(|c| !c.is_empty() && l.ends_with(&c.to_ascii_lowercase().replace(", ", ",")))
            .max_by_key(|c| c.len())
            .cloned()
            .unwrap_or_else(|| dn.to_string())
    }

    /// What the root DSE said, one line each.
    pub fn report(&self, draft: &mut Draft) {
        let vendor = match self.vendor {
            Vendor::ActiveDirectory => "Active Directory (capability 1.2.840.113556.1.4.800)".to_string(),
            Vendor::OpenLdap => "OpenLDAP (OpenLDAProotDSE)".to_string(),
            Vendor::Ds389 => "389 Directory Server".to_string(),
            Vendor::Unknown => "unknown".to_string(),
        };
        let name = self
            .vendor_name
            .as_ref()
            .map(|n| format!(", vendorName {}", crate::redact::sample(n, 60)))
            .unwrap_or_default();
        draft.heard(format!(
            "root DSE: vendor {vendor}{name}; naming contexts {}",
            self.contexts()
        ));
        let has = |oid: &str| self.controls.iter().any(|c| c == oid);
        let controls: Vec<&str> = [
            (SYNCREPL, "syncrepl"),
            (PSEARCH, "persistent search"),
            (PPOLICY, "password policy"),
            (PAGED, "paged results"),
        ]
        .into_iter()
        .filter(|(oid, _)| has(oid))
        .map(|(_, name)| name)
        .collect();
        draft.heard(format!(
            "root DSE: {} controls ({}), {} extensions{}",
            self.controls.len(),
            match controls.is_empty() {
                true => "none of syncrepl, persistent search, password policy, paged results".to_string(),
                false => controls.join(", "),
            },
            self.extensions.len(),
            match self.extensions.iter().any(|e| e == STARTTLS) {
                true => " (StartTLS among them)",
                false => "",
            }
        ));
    }
}

/// The first RDN's attribute and value of `dn`, lower case.
fn first_rdn(dn: &str) -> Option<(String, String)> {
    let rdn = crate::ldap::dn::first_rdn(dn)?;
    Some((rdn.attribute.to_ascii_lowercase(), rdn.value.to_ascii_lowercase()))
}

/// The first of `names` (`(attribute, value)`, in order of preference) directly under `context`.
async fn container(dir: &Directory, context: &str, names: &[(&str, &str)]) -> anyhow::Result<Option<String>> {
    let filter = format!(
        "(|{})",
        names.iter().map(|(a, v)| format!("({a}={v})")).collect::<String>()
    );
    let found = dir
        .search(context, Scope::OneLevel, &filter, &["1.1"], Some(20))
        .await
        .map_err(|e| anyhow::anyhow!("searching {context} for {filter} failed: {e}"))?;
    Ok(names.iter().find_map(|(a, v)| {
        found
            .iter()
            .find(|e| first_rdn(&e.dn).is_some_and(|(fa, fv)| fa == *a && fv == *v))
            .map(|e| e.dn.clone())
    }))
}

/// Where users go when no base DN was given, and why.
pub async fn suggest(dir: &Directory, dse: &RootDse) -> anyhow::Result<(String, String)> {
    let Some(context) = dse.users_context() else {
        anyhow::bail!("the root DSE lists no naming context to put users under: give --base-dn");
    };
    let names = [("ou", "people"), ("ou", "users"), ("cn", "users")];
    Ok(match container(dir, &context, &names).await? {
        Some(dn) => {
            let why = format!("found under the naming context {context}: users go there");
            (dn, why)
        }
        None => (
            context.clone(),
            "the naming context; it holds no ou=people, ou=users or cn=Users, so users go directly under it"
                .to_string(),
        ),
    })
}

/// Where groups live and of which class; the group steps left out when nowhere.
pub async fn groups(
    dir: &Directory,
    dse: &RootDse,
    schema: &Schema,
    base: &str,
    ad: bool,
    draft: &mut Draft,
) -> anyhow::Result<()> {
    let class = match ad {
        true => Some(("group", "member")),
        false => [("groupOfNames", "member"), ("groupOfUniqueNames", "uniqueMember")]
            .into_iter()
            .find(|(c, _)| schema.has_class(c)),
    };
    let context = dse.context_of(base);
    let mut place = container(dir, &context, &[("ou", "groups"), ("ou", "group"), ("cn", "groups")]).await?;
    let mut why = format!("where groups live (found under {context})");
    if place.is_none() && ad {
        why = "AD keeps groups beside its users (Domain Users is there)".to_string();
        // AD keeps its built-in groups beside its users, in CN=Users (Domain Users among them;
        // a filter that finds one, as AD answers past a size limit its admins are exempt from).
        let held = dir
            .search(
                base,
                Scope::OneLevel,
                "(&(objectClass=group)(cn=Domain Users))",
                &["1.1"],
                None,
            )
            .await
            .map_err(|e| anyhow::anyhow!("searching {base} for groups failed: {e}"))?;
        place = (!held.is_empty()).then(|| base.to_string());
    }
    let (Some((class, member)), Some(place)) = (class, place) else {
        let why = match class {
            None => "the schema defines no groupOfNames or groupOfUniqueNames".to_string(),
            Some(_) => format!("no ou=groups under {context}"),
        };
        draft.heard(format!("groups: {why}; the group steps cannot run"));
        for step in ["create_group", "add_to_group", "remove_from_group", "delete_group"] {
            draft.unsupported(step, why.as_str());
        }
        return Ok(());
    };
    draft.heard(format!(
        "groups: class {class} (member attribute {member}), under {place}"
    ));
    let parent = base.split_once(',').map(|(_, p)| p.trim()).unwrap_or_default();
    draft.set(
        "directory",
        Entry::new("groups.base_dn", place.as_str())
            .why(why)
            .found(Found::equal().implied(format!("ou=groups,{parent}"))),
    );
    let default = if ad { "group" } else { "groupOfNames" };
    draft.set(
        "directory",
        Entry::new("groups.object_class", class).found(Found::equal().implied(default)),
    );
    draft.set(
        "directory",
        Entry::new("groups.member_attribute", member).found(Found::equal().implied("member")),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn dse(attrs: &[(&str, &[&str])]) -> RootDse {
        let attrs: HashMap<String, Vec<String>> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        RootDse::from_entry(&SearchEntry {
            dn: String::new(),
            attrs,
            bin_attrs: HashMap::new(),
        })
    }

    #[test]
    fn the_vendor_is_read_from_capabilities_classes_and_name() {
        let ad = dse(&[
            ("supportedCapabilities", &[AD, "1.2.840.113556.1.4.1670"]),
            (
                "namingContexts",
                &[
                    "DC=pb,DC=test",
                    "CN=Configuration,DC=pb,DC=test",
                    "CN=Schema,CN=Configuration,DC=pb,DC=test",
                ],
            ),
            ("defaultNamingContext", &["DC=pb,DC=test"]),
        ]);
        assert_eq!(ad.vendor, Vendor::ActiveDirectory);
        assert_eq!(ad.users_context().as_deref(), Some("DC=pb,DC=test"));
        assert_eq!(ad.context_of("CN=Users,DC=pb,DC=test"), "DC=pb,DC=test");
        let openldap = dse(&[
            ("objectclass", &["top", "OpenLDAProotDSE"]),
            ("namingContexts", &["cn=config", "dc=example,dc=test"]),
            ("supportedControl", &[SYNCREPL, PPOLICY]),
        ]);
        assert_eq!(openldap.vendor, Vendor::OpenLdap);
        assert_eq!(openldap.users_context().as_deref(), Some("dc=example,dc=test"));
        assert_eq!(openldap.controls.len(), 2);
        assert_eq!(dse(&[("vendorName", &["389 Project"])]).vendor, Vendor::Ds389);
        let none = dse(&[]);
        assert_eq!(none.vendor, Vendor::Unknown);
        assert_eq!(none.users_context(), None);
        assert_eq!(none.context_of("ou=x,o=y"), "ou=x,o=y");
    }
}
