//! An LDAP directory as the target (kind `ldap`): the built-in steps as LDAP operations on the
//! directory's pooled bound connections ([`steps`]), and cleanup with its marker sweep by LDAP
//! search ([`sweep`]). What each step writes comes from `[directory]`
//! ([`crate::workload::directory`]).

pub mod entry;
pub mod steps;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use crate::engine::state::{AdminState, JourneyState, Run, Staged, StepEnd, assigned_roles};
use crate::ldap::Directory;
use crate::ledger::{Claims, Created, RunId};
use crate::results::CleanupReport;
use crate::workload::directory::{LdapRoles, LdapTarget};
use crate::workload::{Step, Workload};

/// A bound directory and the shape of what the run writes there.
pub struct Ldap {
    pub dir: Arc<Directory>,
    pub config: Box<LdapTarget>,
    /// What `create_user` adds, shaped once from `config` (init's write probe adds the same).
    pub entry: entry::EntryShape,
}

impl Ldap {
    /// Connects and binds (`connections` pooled, shared by all admins).
    pub async fn connect(config: &LdapTarget) -> anyhow::Result<Ldap> {
        let dir = Directory::connect(&config.endpoint, config.connections).await?;
        Ok(Ldap {
            dir: Arc::new(dir),
            config: Box::new(config.clone()),
            entry: entry::EntryShape::new(config),
        })
    }

    pub fn url(&self) -> String {
        self.config.endpoint.display()
    }

    pub fn request_line(&self, step: &Step) -> Option<&'static str> {
        Some(steps::request_line(&self.config, step))
    }

    pub async fn execute(
        &self,
        run: &Run,
        admin: &mut AdminState,
        step: &Step,
        state: &mut JourneyState,
    ) -> Result<(), StepEnd> {
        steps::execute(run, &self.dir, (&self.config, &self.entry), admin, step, state).await
    }

    /// Before the load: the users' base DN must exist (every create under one that does not
    /// fails, and every search under it finds nothing).
    pub async fn check_before_load(&self) -> anyhow::Result<()> {
        let (base, at) = (&self.config.base_dn, self.url());
        match self.dir.exists(base).await {
            Ok(true) => Ok(()),
            Ok(false) => anyhow::bail!(
                "the target's base DN `{base}` ([target] base_dn) does not exist in {at} (noSuchObject); nothing was written"
            ),
            Err(e) => anyhow::bail!("a search of the target's base DN `{base}` ([target] base_dn) in {at} failed: {e}"),
        }
    }

    /// With `roles = "groups"`, the DN of the existing group of each role the journeys assign
    /// (a role without its group fails the run before any load).
    pub async fn stage(&self, workload: &Workload) -> anyhow::Result<Staged> {
        let mut staged = Staged::default();
        if self.config.roles != LdapRoles::Groups {
            return Ok(staged);
        }
        for role in assigned_roles(workload) {
            let dn = self.config.group_dn(&role);
            let found = self
                .dir
                .search(&dn, crate::ldap::Scope::Base, "(objectClass=*)", &["1.1"], None)
                .await
                .map_err(|e| anyhow::anyhow!("looking up the group of role `{role}` ({dn}): {e}"))?;
            anyhow::ensure!(
                !found.is_empty(),
                "role `{role}`: no group {dn} (roles = \"groups\" uses existing groups, named cn=ROLE under the groups' base_dn; provbench never creates or deletes them)"
            );
            staged.role_groups.insert(role, dn);
        }
        Ok(staged)
    }

    /// The ledger, then the marker sweep; `command` finishes the job by hand.
    pub async fn clean_up(
        &self,
        items: Vec<Created>,
        deleted: Claims,
        run_id: &RunId,
        limit: Duration,
        command: String,
    ) -> CleanupReport {
        sweep::clean_up(&self.dir, &self.config, items, deleted, run_id, limit, command).await
    }

    /// One read of a deleted entry, as cleanup reads it back.
    pub fn read_back(&self, item: &Created) -> super::BoxFuture<'_, super::readback::Presence> {
        sweep::read(&self.dir, item)
    }

    /// What a sweep would delete, deleting nothing.
    pub async fn marked(&self, run_id: &RunId) -> Result<Vec<Created>, String> {
        sweep::list(&self.dir, &self.config, run_id).await
    }

    /// Everything that carries `run_id`, found by search and deleted (`provbench cleanup`).
    pub async fn sweep(&self, run_id: &RunId, limit: Duration) -> CleanupReport {
        let command = format!("provbench cleanup --run-id {run_id} (again)");
        self.clean_up(Vec::new(), Claims::default(), run_id, limit, command)
            .await
    }
}
