//! Read-only discovery of an LDAP directory, searches only: the root DSE (naming contexts, the
//! controls and extensions it supports, who made it), where users go (the base DN given, checked
//! to exist; or the naming context's `ou=people`/`ou=users`/`cn=Users`), the schema's object
//! classes ([`super::ldap_schema`]), which lock rule the directory follows, and where groups live.
//!
//! For `init` it runs before the target is resolved ([`before_bind`]): an ldap target cannot be
//! resolved without its base DN, and the write probe then runs on the very `[directory]` shape
//! that is written. It binds as a run would: the endpoint is built by the workload's own rules
//! (`workload::directory::endpoint`) and read through `crate::ldap::Directory`. For
//! `init --check` it runs on the resolved target of the workload ([`discover`]), and a base DN
//! that does not exist is a disagreement, not an error.

use std::path::Path;

use super::draft::{Draft, Entry, Found};
use super::ldap_dse::{RootDse, Vendor};
use super::ldap_schema::Schema;
use super::{Context, Options};
use crate::engine::targets::ResolvedTarget;
use crate::ldap::{Directory, Scope};
use crate::workload::directory::{EndpointWire, endpoint};

/// `init`: the directory read before the target is resolved, its findings in `draft`.
pub async fn before_bind(opts: &Options, draft: &mut Draft) -> anyhow::Result<()> {
    let c = &opts.credentials;
    let ca = c.ca_file.as_ref().map(|p| p.display().to_string());
    let endpoint = endpoint(
        EndpointWire {
            url: Some(&opts.url),
            starttls: Some(c.starttls),
            ca_file: ca.as_deref(),
            bind_dn: c.bind_dn.as_deref(),
            password_env: c.password_env.as_deref(),
            password_file: None,
            timeout: opts.timeout,
        },
        "target",
        Path::new("."),
    )
    .map_err(anyhow::Error::msg)?;
    let dir = Directory::connect(&endpoint, 1).await?;
    let dse = RootDse::read(&dir).await?;
    let base = match &opts.base_dn {
        Some(given) => {
            let given = given.trim();
            if !exists(&dir, given).await? {
                anyhow::bail!(
                    "the base DN `{given}` (--base-dn) does not exist in {} (noSuchObject); its naming contexts: {}",
                    endpoint.display(),
                    dse.contexts()
                );
            }
            (given.to_string(), "as given; a base search found it".to_string())
        }
        None => super::ldap_dse::suggest(&dir, &dse).await?,
    };
    survey(
        &dir,
        &dse,
        &base,
        endpoint.url.starts_with("ldaps://") || c.starttls,
        draft,
    )
    .await
}

/// Discovery on the resolved target: for `init`, what [`before_bind`] found stands; for
/// `init --check`, the same survey of the workload's own target.
pub async fn discover(cx: &Context<'_>, draft: &mut Draft) -> anyhow::Result<()> {
    if draft.get("target", "base_dn").is_some() {
        return Ok(());
    }
    let ResolvedTarget::Ldap(ldap) = cx.target else {
        anyhow::bail!("LDAP discovery needs a target of kind ldap");
    };
    let (dir, config) = (&ldap.dir, &ldap.config);
    let dse = RootDse::read(dir).await?;
    let given = config.base_dn.as_str();
    let base = if exists(dir, given).await? {
        (given.to_string(), "a base search found it".to_string())
    } else {
        let (other, why) = super::ldap_dse::suggest(dir, &dse).await?;
        draft.heard(format!("base DN {given}: no such entry (noSuchObject)"));
        (other, format!("`{given}` does not exist (noSuchObject); {why}"))
    };
    let tls = config.endpoint.url.starts_with("ldaps://") || config.endpoint.starttls;
    survey(dir, &dse, &base, tls, draft).await
}

/// Whether `dn` exists (a base search); a refusal says nothing and is an error.
async fn exists(dir: &Directory, dn: &str) -> anyhow::Result<bool> {
    dir.exists(dn)
        .await
        .map_err(|e| anyhow::anyhow!("a base search of `{dn}` failed: {e}"))
}

/// Everything but the bind: the base DN, the entries' shape, the lock rule, the groups.
async fn survey(
    dir: &Directory,
    dse: &RootDse,
    base: &(String, String),
    tls: bool,
    draft: &mut Draft,
) -> anyhow::Result<()> {
    dse.report(draft);
    let (base, why) = base;
    draft.heard(format!("base DN {base}: {why}"));
    draft.set(
        "target",
        Entry::new("base_dn", base.as_str())
            .why(why.as_str())
            .found(Found::equal()),
    );
    let schema = read_schema(dir, dse, draft).await?;
    let ad = dse.vendor == Vendor::ActiveDirectory;
    if ad {
        active_directory(base, tls, draft)?;
    } else {
        inet_org_person(&schema, base, draft)?;
        lock(dir, dse, &schema, base, draft).await?;
    }
    super::ldap_dse::groups(dir, dse, &schema, base, ad, draft).await
}

/// The subschema entry's classes and attribute types.
async fn read_schema(dir: &Directory, dse: &RootDse, draft: &mut Draft) -> anyhow::Result<Schema> {
    let at = dse.subschema.clone().unwrap_or_else(|| "cn=Subschema".into());
    let found = dir
        .search(
            &at,
            Scope::Base,
            "(objectClass=*)",
            &["objectClasses", "attributeTypes"],
            Some(1),
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading the schema ({at}) failed: {e}"))?;
    let Some(entry) = found.first() else {
        anyhow::bail!("the schema entry {at} (subschemaSubentry) answered nothing: is it readable by the bind DN?");
    };
    let schema = Schema::parse(
        &super::ldap_dse::values(entry, "objectClasses"),
        &super::ldap_dse::values(entry, "attributeTypes"),
    );
    let known: Vec<&str> = ["inetOrgPerson", "user", "posixAccount", "groupOfNames", "pwdPolicy"]
        .into_iter()
        .filter(|c| schema.has_class(c))
        .collect();
    draft.heard(format!(
        "schema ({at}): {} object classes, among them {}",
        schema.class_count(),
        match known.is_empty() {
            true => "none of inetOrgPerson, user, posixAccount".to_string(),
            false => known.join(", "),
        }
    ));
    Ok(schema)
}

/// `mail`'s domain from the base DN's `dc` parts (`dc=example,dc=test` → `example.test`).
fn mail_domain(base: &str) -> String {
    let parts: Vec<&str> = base
        .split(',')
        .filter_map(|rdn| rdn.trim().split_once('='))
        .filter(|(a, v)| {
            a.trim().eq_ignore_ascii_case("dc") && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(|(_, v)| v.trim())
        .collect();
    match parts.is_empty() {
        true => "example.test".into(),
        false => parts.join(".").to_ascii_lowercase(),
    }
}

/// Active Directory: the preset, users of class `user` named by `cn`, the password as
/// `unicodePwd` (over TLS only).
fn active_directory(base: &str, tls: bool, draft: &mut Draft) -> anyhow::Result<()> {
    if !tls {
        anyhow::bail!(
            "the directory is Active Directory, which takes passwords (unicodePwd) only over TLS: give an ldaps:// URL or --starttls (with --ca-file for a private CA)"
        );
    }
    draft.heard("lock: Active Directory's userAccountControl (bit 2, ACCOUNTDISABLE)");
    draft.set(
        "directory",
        Entry::new("lock", "active-directory")
            .why("the root DSE lists capability 1.2.840.113556.1.4.800 (Active Directory): a disabled account is bit 2 of userAccountControl")
            .found(Found::equal().implied("ppolicy")),
    );
    draft.set(
        "directory",
        Entry::new("object_classes", vec!["user"])
            .why("Active Directory's user class (AD adds the classes above it)")
            .found(Found::equal().implied(vec!["user"])),
    );
    draft.set("directory", Entry::new("rdn", "cn").why("AD names users by cn"));
    draft.set("directory", Entry::new("name", "{run_id}-{seq}"));
    draft.set("directory", Entry::new("attributes.sn", "{last}"));
    draft.set("directory", Entry::new("attributes.givenName", "{first}"));
    draft.set(
        "directory",
        Entry::new("attributes.mail", format!("{{run_id}}-{{seq}}@{}", mail_domain(base))),
    );
    draft.set("directory", Entry::new("modify.title", "Title {seq}"));
    draft.set(
        "users",
        Entry::new("password", "Pb-{seq}-{run_id}!")
            .why("written as unicodePwd over TLS: AD enables an account only once it has one (its policy: three character classes)"),
    );
    Ok(())
}

/// OpenLDAP, 389 DS and the like: inetOrgPerson named by `uid`, the password as `userPassword`.
fn inet_org_person(schema: &Schema, base: &str, draft: &mut Draft) -> anyhow::Result<()> {
    if !schema.has_class("inetOrgPerson") {
        let posix = match schema.has_class("posixAccount") {
            true => " (posixAccount is there, but it is auxiliary and needs uidNumber, gidNumber and homeDirectory)",
            false => "",
        };
        anyhow::bail!(
            "the schema defines neither inetOrgPerson nor Active Directory's user{posix}: write [directory] object_classes and attributes by hand"
        );
    }
    draft.set(
        "directory",
        Entry::new("object_classes", vec!["inetOrgPerson"])
            .why("the schema defines inetOrgPerson")
            .found(Found::equal().implied(vec!["inetOrgPerson"])),
    );
    draft.set(
        "directory",
        Entry::new("rdn", "uid").why("inetOrgPerson's naming attribute"),
    );
    draft.set("directory", Entry::new("name", "{run_id}-{seq}"));
    let domain = mail_domain(base);
    let wanted = [
        ("cn", "{first} {last}".to_string()),
        ("sn", "{last}".to_string()),
        ("givenName", "{first}".to_string()),
        ("mail", format!("{{run_id}}-{{seq}}@{domain}")),
    ];
    for (a, v) in wanted.into_iter().filter(|(a, _)| schema.allows("inetOrgPerson", a)) {
        draft.set("directory", Entry::new(&format!("attributes.{a}"), v));
    }
    let modify = ["title", "description"]
        .into_iter()
        .find(|a| schema.allows("inetOrgPerson", a))
        .unwrap_or("title");
    let value = if modify == "title" {
        "Title {seq}"
    } else {
        "Description {seq}"
    };
    draft.set(
        "directory",
        Entry::new(&format!("modify.{modify}"), value).why("what modify_user replaces (inetOrgPerson allows it)"),
    );
    draft.set(
        "users",
        Entry::new("password", "Pb-{seq}-{run_id}").why("written as userPassword: the bind checks log in with it"),
    );
    Ok(())
}

/// Which lock rule the directory follows: OpenLDAP's ppolicy, 389 DS's nsAccountLock, or none
/// (the disable and enable steps are then left out).
async fn lock(dir: &Directory, dse: &RootDse, schema: &Schema, base: &str, draft: &mut Draft) -> anyhow::Result<()> {
    let control = dse.controls.iter().any(|c| c == super::ldap_dse::PPOLICY);
    let attribute = schema.has_attribute("pwdAccountLockedTime");
    if control || attribute {
        let context = dse.context_of(base);
        let policies = match schema.has_class("pwdPolicy") {
            true => dir
                .search(&context, Scope::Subtree, "(objectClass=pwdPolicy)", &["1.1"], Some(5))
                .await
                .map(|found| found.into_iter().map(|e| e.dn).collect::<Vec<_>>())
                .unwrap_or_default(),
            false => Vec::new(),
        };
        let evidence = match (control, attribute) {
            (true, true) => "the root DSE lists the ppolicy control and the schema pwdAccountLockedTime",
            (true, false) => "the root DSE lists the ppolicy control",
            (false, _) => "the schema defines pwdAccountLockedTime",
        };
        let policy = match policies.first() {
            Some(p) => format!("; a policy entry: {}", crate::redact::sample(p, 80)),
            None => "; no pwdPolicy entry was readable, so no policy may apply: --write-probe learns whether a lock refuses a bind".into(),
        };
        draft.heard(format!("lock: OpenLDAP's ppolicy overlay ({evidence}{policy})"));
        draft.set(
            "directory",
            Entry::new("lock", "ppolicy")
                .why(format!("{evidence}{policy}: a lock is pwdAccountLockedTime"))
                .found(Found::equal().implied("ppolicy")),
        );
        return Ok(());
    }
    if dse.vendor == Vendor::Ds389 || schema.has_attribute("nsAccountLock") {
        draft.heard("lock: 389 Directory Server's nsAccountLock");
        draft.set(
            "directory",
            Entry::new("lock", "389ds")
                .why("389 Directory Server (vendor or the nsAccountLock attribute): a lock is nsAccountLock = TRUE")
                .found(Found::equal().implied("ppolicy")),
        );
        return Ok(());
    }
    let why = "no lock rule found: no ppolicy overlay (control or pwdAccountLockedTime), no nsAccountLock, not Active Directory";
    draft.heard(format!("lock: {why}; disable_user and enable_user cannot run"));
    draft.unsupported("disable_user", why);
    draft.unsupported("enable_user", why);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_domains_come_from_dc_parts() {
        assert_eq!(mail_domain("ou=people,dc=example,dc=test"), "example.test");
        assert_eq!(mail_domain("CN=Users,DC=pb,DC=test"), "pb.test");
        assert_eq!(mail_domain("o=corp"), "example.test");
        assert_eq!(mail_domain("dc=a b,dc=x\"y"), "example.test");
    }
}
