//! The LDAP write probe (`--write-probe` only): one marked test entry through its whole life, to
//! learn what reading cannot tell. It is added under the base as a run's `create_user` adds one
//! (the `[directory]` shape being written, its RDN value carrying the run id as a whole token),
//! read, modified (the `modify` attribute; a refused one gives way to another), locked by the
//! lock rule — with a bind as it refused while locked, when it has a password — unlocked, then
//! deleted through the run's own cleanup (the ownership gate `owned()`, the marker sweep and the
//! read-back) and read again as `noSuchObject` before init ends. Whatever fails after the add,
//! the entry is still deleted, and init fails naming it.

use std::collections::HashSet;
use std::time::Duration;

use super::Context;
use super::draft::{Draft, Entry, Found};
use crate::engine::targets::ResolvedTarget;
use crate::engine::targets::ldap::entry::Rendered;
use crate::engine::targets::ldap::sweep;
use crate::ldap::{Bind, Directory, Mod, Scope, bind_as};
use crate::ledger::Created;
use crate::workload::directory::{LdapTarget, PasswordWrite, text};
use crate::workload::template::Vars;

/// Other attributes `modify_user` may replace when the first is refused (each allowed by
/// inetOrgPerson and AD's user).
const MODIFY_INSTEAD: [&str; 3] = ["description", "displayName", "title"];

/// How long the probe's cleanup may take.
const CLEANUP: Duration = Duration::from_secs(30);

pub async fn probe(cx: &Context<'_>, draft: &mut Draft) -> anyhow::Result<()> {
    let ResolvedTarget::Ldap(ldap) = cx.target else {
        anyhow::bail!("the LDAP write probe needs a target of kind ldap");
    };
    let (dir, t) = (&ldap.dir, &ldap.config);
    let vars = Vars {
        run_id: cx.run_id.as_str(),
        seq: 1,
        admin: 0,
    };
    let name = text(&t.name, &vars);
    let dn = t.user_dn(&name);
    // The gate first: an entry the run's cleanup would not delete is never written.
    if sweep::owned(&dn, &t.rdn, &t.base_dn, cx.run_id).is_none() {
        anyhow::bail!("the write probe's entry {dn} would not be one the run's cleanup deletes; nothing was written");
    }
    if dir
        .exists(&dn)
        .await
        .map_err(|e| anyhow::anyhow!("reading {dn} failed: {e}"))?
    {
        anyhow::bail!("{dn} exists already (not the probe's); nothing was written");
    }
    // The entry a run's `create_user` adds, from the run's own shape.
    let mut rendered = Rendered::default();
    ldap.entry.render(&vars, &mut rendered);
    let attrs = ldap.entry.attributes(&name, &rendered);
    let password = password(t, &vars);
    super::announce(cx, &dn);
    let added = tokio::select! {
        added = dir.add(&dn, attrs) => added.map_err(|e| e.to_string()),
        () = cx.stop.cancelled() => Err("interrupted".to_string()),
    };
    if let Err(e) = added {
        // A refused add wrote nothing; a broken connection may have: it is read, and deleted.
        if dir.exists(&dn).await.unwrap_or(true) {
            remove(cx, dir, t, &dn, &name).await.map_err(|r| left(cx, &dn, &r))?;
        }
        anyhow::bail!("the write probe's add of {dn} failed: {e}; nothing is left");
    }
    draft.heard(format!("write probe: added {dn}"));
    // Interrupted (Ctrl-C, SIGTERM, SIGHUP): straight to the delete, which is never cut short.
    let lived = tokio::select! {
        lived = life(dir, t, &dn, &vars, password.as_deref(), draft) => lived,
        () = cx.stop.cancelled() => Err(anyhow::anyhow!("interrupted")),
    };
    let removed = remove(cx, dir, t, &dn, &name).await;
    match (lived, removed) {
        (_, Err(r)) => Err(left(cx, &dn, &r)),
        (Err(e), Ok(())) => Err(anyhow::anyhow!(
            "the write probe failed: {e} (its entry {dn} was deleted and read back as gone)"
        )),
        (Ok(()), Ok(())) => {
            draft.heard(format!(
                "write probe: deleted {dn} through the run's cleanup and read it back as gone (noSuchObject)"
            ));
            Ok(())
        }
    }
}

fn left(cx: &Context<'_>, dn: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the write probe's entry {dn} may be left in the directory ({why}): delete it with `provbench cleanup --run-id {} WORKLOAD` (a workload of this target), or by hand",
        cx.run_id
    )
}

/// The password the entry binds with, as the run's `create_user` renders it.
fn password(t: &LdapTarget, vars: &Vars) -> Option<String> {
    match &t.password {
        PasswordWrite::None => None,
        PasswordWrite::UserPassword(p) | PasswordWrite::UnicodePwd(p) => Some(text(p, vars)),
    }
}

/// The values of `attribute` of `dn` (a base search).
async fn read(dir: &Directory, dn: &str, attribute: &str) -> anyhow::Result<Vec<String>> {
    let found = dir
        .search(dn, Scope::Base, "(objectClass=*)", &[attribute], Some(1))
        .await
        .map_err(|e| anyhow::anyhow!("reading {dn} failed: {e}"))?;
    let Some(e) = found.first() else {
        anyhow::bail!("a base search of {dn} found nothing right after its add");
    };
    Ok(super::ldap_dse::values(e, attribute))
}

/// Read, modify, lock (and bind), unlock: what each step taught, in `draft`.
async fn life(
    dir: &Directory,
    t: &LdapTarget,
    dn: &str,
    vars: &Vars<'_>,
    password: Option<&str>,
    draft: &mut Draft,
) -> anyhow::Result<()> {
    let named = read(dir, dn, &t.rdn).await?;
    anyhow::ensure!(!named.is_empty(), "{dn} was read back without its {}", t.rdn);
    draft.heard(format!("write probe: read {dn} back"));
    modify(dir, t, dn, vars, draft).await?;
    if !draft.supports("disable_user") {
        return Ok(());
    }
    let endpoint = dir.endpoint();
    // A bind before the lock: only a refusal after an acceptance says the lock refused it.
    let mut password = password;
    if let Some(pw) = password {
        match bind_as(endpoint, dn, pw).await {
            Ok(Bind::Accepted) => {
                draft.heard("write probe: a bind as the new entry was accepted");
            }
            Ok(Bind::Refused(why)) => {
                draft.heard(format!(
                    "write probe: a bind as the new entry was refused before any lock ({why}): whether the lock refuses binds is unknown"
                ));
                password = None;
            }
            Err(e) => anyhow::bail!("a bind as the new entry failed: {e}"),
        }
    }
    let changes = |c: &[crate::workload::directory::Change]| -> Vec<Mod<String>> {
        c.iter()
            .map(|c| Mod::Replace(c.attribute.clone(), c.values.iter().cloned().collect()))
            .collect()
    };
    if let Err(e) = dir.modify(dn, changes(&t.disable)).await {
        let why = format!("the lock rule's write was refused ({e})");
        draft.heard(format!("write probe: {why}; disable_user and enable_user cannot run"));
        draft.unsupported("disable_user", why.as_str());
        draft.unsupported("enable_user", why.as_str());
        return Ok(());
    }
    let attribute = t
        .disable
        .first()
        .map_or("pwdAccountLockedTime", |c| c.attribute.as_str());
    let shown = read(dir, dn, attribute).await?;
    draft.heard(format!(
        "write probe: locked {dn} ({attribute} now {})",
        crate::redact::sample(&shown.join(", "), 40)
    ));
    if let Some(pw) = password {
        let lock_works = match bind_as(endpoint, dn, pw).await {
            Ok(Bind::Refused(why)) => {
                draft.heard(format!(
                    "write probe: a bind as the locked entry was refused ({why}): the lock rule works"
                ));
                true
            }
            Ok(Bind::Accepted) => {
                draft.heard(
                    "write probe: a bind as the locked entry was ACCEPTED: the lock is written but not enforced",
                );
                false
            }
            Err(e) => anyhow::bail!("a bind as the locked entry failed: {e}"),
        };
        if let Some(e) = draft.entry("directory", &["lock"]).cloned() {
            let why = match lock_works {
                true => "; the write probe's bind while locked was refused",
                false => "; the write probe's bind while locked was ACCEPTED: the lock is not enforced here",
            };
            draft.set(
                "directory",
                Entry {
                    why: Some(format!("{}{why}", e.why.unwrap_or_default())),
                    ..e
                },
            );
        }
    }
    dir.modify(dn, changes(&t.enable))
        .await
        .map_err(|e| anyhow::anyhow!("unlocking {dn} was refused: {e}"))?;
    if let Some(pw) = password
        && let Ok(Bind::Refused(why)) = bind_as(endpoint, dn, pw).await
    {
        draft.heard(format!(
            "write probe: a bind after the unlock was still refused ({why})"
        ));
    } else {
        draft.heard(format!("write probe: unlocked {dn}"));
    }
    Ok(())
}

/// `modify_user`'s attribute, or another when the directory refuses it (found, with why).
async fn modify(dir: &Directory, t: &LdapTarget, dn: &str, vars: &Vars<'_>, draft: &mut Draft) -> anyhow::Result<()> {
    let mut refused = Vec::new();
    for (a, v) in &t.modify {
        let value = text(v, vars);
        match dir
            .modify(dn, vec![Mod::Replace(a.clone(), HashSet::from([value]))])
            .await
        {
            Ok(()) => {}
            Err(e) => refused.push((a.clone(), e.to_string())),
        }
    }
    if refused.is_empty() {
        let names: Vec<&str> = t.modify.iter().map(|(a, _)| a.as_str()).collect();
        draft.heard(format!("write probe: modified {} of {dn}", names.join(", ")));
        return Ok(());
    }
    let (first, why) = &refused[0];
    for other in MODIFY_INSTEAD
        .iter()
        .filter(|o| !refused.iter().any(|(a, _)| a.eq_ignore_ascii_case(o)))
    {
        let value = format!("Probe {}", vars.seq);
        if dir
            .modify(
                dn,
                vec![Mod::Replace(other.to_string(), HashSet::from([value.clone()]))],
            )
            .await
            .is_ok()
            && read(dir, dn, other).await?.contains(&value)
        {
            for (a, _) in &t.modify {
                draft.remove("directory", &format!("modify.{a}"));
            }
            let said = format!("modify of {first} was refused ({}): modify uses {other}", short(why));
            draft.heard(format!("write probe: {said}"));
            draft.set(
                "directory",
                Entry::new(&format!("modify.{other}"), format!("{other} {{seq}}"))
                    .why(said)
                    .found(Found::present()),
            );
            return Ok(());
        }
    }
    let said = format!(
        "modify of {first} was refused ({}), and of every other tried",
        short(why)
    );
    draft.heard(format!("write probe: {said}"));
    draft.unsupported("modify_user", said);
    Ok(())
}

fn short(s: &str) -> String {
    crate::redact::sample(s, 100)
}

/// The entry deleted by the run's own cleanup (the gate, the sweep, the read-back), then read
/// once more: `Ok` only when a search answers `noSuchObject`.
async fn remove(cx: &Context<'_>, dir: &Directory, t: &LdapTarget, dn: &str, name: &str) -> Result<(), String> {
    let item = Created::User {
        id: dn.to_string(),
        user_name: name.to_string(),
    };
    let command = format!("provbench cleanup --run-id {} WORKLOAD", cx.run_id);
    let report = sweep::clean_up(dir, t, vec![item], Default::default(), cx.run_id, CLEANUP, command).await;
    if report.incomplete() || !report.left.is_empty() || report.deleted + report.already_gone == 0 {
        return Err(format!("cleanup: {}", report.counts()));
    }
    match dir.exists(dn).await {
        Ok(false) => Ok(()),
        Ok(true) => Err("a search still finds it after its delete".into()),
        Err(e) => Err(format!("reading it back failed: {e}")),
    }
}
