//! Pre-flight: what the run rests on, asked before anything is written to the target, so that a
//! service that refuses the probes' credentials, a base DN that does not exist or a directory the
//! login check cannot search stops the run at once (exit 2, naming the service or key, where it
//! was read and what it answered), with `summary.json` and `junit.xml` saying so, instead of a
//! whole load of reads that fail silently and a verdict resting on them.
//!
//! In order: the probes' sources opened (sign-in, binds) and each polled service read once
//! ([`ProbeHub::preflight`]); each bind-login directory's base DN; the target's own
//! ([`ResolvedTarget::check_before_load`]: an LDAP target's base DN, a SCIM target's sweep
//! search, whose failure is no stop but a note: cleanup reads the ledger's ids back instead).
//! `validate --online` asks the same ([`check_target`]).

use std::sync::Arc;

use super::prepare::Prepared;
use super::shutdown::Shutdown;
use super::targets::ResolvedTarget;
use crate::ldap::Directory;
use crate::ledger::RunId;
use crate::metrics::Registry;
use crate::probes::ProbeHub;
use crate::workload::Workload;
use crate::workload::login::{BindDirectory, LoginFlow};

/// What the load starts with once the pre-flight passed.
pub struct Checked {
    pub registry: Arc<Registry>,
    /// The probes, their sources open and each service read once.
    pub probes: Option<Arc<ProbeHub>>,
    /// What the pre-flight found that changes the run without stopping it.
    pub notes: Vec<String>,
}

/// Every pre-flight step of a run, before the target is staged; an error names its cause.
pub async fn check(p: &Prepared, shutdown: &Shutdown) -> anyhow::Result<Checked> {
    let workload = &p.workload;
    let registry = Arc::new(Registry::new());
    let probes = match workload.probes.clone() {
        Some(c) => {
            let (ops, stop) = (workload.builtin_operations(), shutdown.probes.clone());
            let client = p.target.http_client();
            let hub = ProbeHub::new(c, client, registry.clone(), &ops, p.push.clone(), stop).await?;
            hub.preflight().await.map_err(preflight)?;
            Some(Arc::new(hub))
        }
        None => None,
    };
    let notes = check_target(workload, &p.target, &p.run_id)
        .await?
        .into_iter()
        .collect();
    Ok(Checked {
        registry,
        probes,
        notes,
    })
}

/// The pre-flight of the target and the login directories (`run` and `validate --online`): an
/// error stops the run; `Some` is a note of what the run does instead.
pub async fn check_target(
    workload: &Workload,
    target: &ResolvedTarget,
    run_id: &RunId,
) -> anyhow::Result<Option<String>> {
    if let Some(LoginFlow::LdapBind(dirs)) = workload.checks.as_ref().map(|c| &c.login_flow) {
        for d in dirs {
            login_directory(d).await.map_err(preflight)?;
        }
    }
    target.check_before_load(run_id).await.map_err(preflight)
}

fn preflight(e: anyhow::Error) -> anyhow::Error {
    e.context("pre-flight")
}

/// A bind-login directory whose DN template names a fixed parent (`uid={userName},ou=people,…`):
/// that parent must exist there, or every login is refused for a reason that is no user's.
async fn login_directory(d: &BindDirectory) -> anyhow::Result<()> {
    let Some(base) = fixed_parent(&d.dn) else {
        return Ok(());
    };
    let at = d.endpoint.display();
    let dir = Directory::connect(&d.endpoint, 1)
        .await
        .map_err(|e| e.context(format!("checks login directory `{}`", d.name)))?;
    match dir.exists(base).await {
        Ok(true) => Ok(()),
        Ok(false) => anyhow::bail!(
            "checks login directory `{}`: the base DN `{base}` of its `dn` does not exist in {at} (noSuchObject)",
            d.name
        ),
        Err(e) => anyhow::bail!(
            "checks login directory `{}`: a search of the base DN `{base}` of its `dn` in {at} failed: {e}",
            d.name
        ),
    }
}

/// The part of a DN template after its first RDN, when only that RDN holds placeholders.
fn fixed_parent(template: &str) -> Option<&str> {
    // The first comma that is not escaped ends the first RDN.
    let bytes = template.as_bytes();
    let comma = (0..bytes.len()).find(|&i| bytes[i] == b',' && (i == 0 || bytes[i - 1] != b'\\'))?;
    let parent = template[comma + 1..].trim();
    (!parent.is_empty() && !parent.contains('{')).then_some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dn_templates_fixed_parent() {
        assert_eq!(
            fixed_parent("uid={userName},ou=people,dc=example,dc=com"),
            Some("ou=people,dc=example,dc=com")
        );
        assert_eq!(
            fixed_parent("{id}"),
            None,
            "the DN the target created: its base is the target's"
        );
        assert_eq!(fixed_parent("cn={userName}\\,x,ou=p"), Some("ou=p"));
        assert_eq!(fixed_parent("uid={userName},ou={tenant}"), None);
    }
}
