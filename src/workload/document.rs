//! The workload document: its top level on the wire ([`WorkloadWire`]), the [`Workload`] it
//! becomes, and the order sections convert in. Each section converts itself (its own file owns
//! its wire struct, domain type and `from_wire`); this file holds only what no one section
//! can check alone: the name, and the rules that join sections (a journey's steps against the
//! target's kind, the login checks against `[users] password`, thresholds against what the
//! workload records).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::checks::{self, Checks, ChecksWire};
use super::directory::DirectoryWire;
use super::error::{Source, WorkloadError};
use super::journeys::{self, Journey, JourneyWire};
use super::load::{self, Load, LoadWire};
use super::operations::{self, Operation, OperationWire};
use super::overrides::Shard;
use super::probes::{Probes, ProbesWire};
use super::selectors::{self, ThresholdsWire};
use super::target::{self, Target, TargetPeek};
use super::users::{self, Users};
use crate::http::HttpSettings;
use crate::thresholds::ThresholdSpec;
use crate::vocab::Op;

#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub description: Option<String>,
    pub target: Target,
    pub http: HttpSettings,
    pub load: Load,
    pub journeys: Vec<Journey>,
    pub users: Users,
    /// How the asynchronous half is observed; `None` when nothing is probed.
    pub probes: Option<Probes>,
    /// Verdicts that fail the run (exit 1).
    pub thresholds: Vec<ThresholdSpec>,
    /// Proofs of the provisioning chain run during the load.
    pub checks: Option<Checks>,
    /// Custom operations (`[operations.NAME]`), in name order; steps refer to them by index.
    pub operations: Vec<Operation>,
    /// The workload as run: the file itself, or after overrides the merged document with a
    /// header naming them (saved as the results' `workload.toml`).
    pub effective_text: String,
    /// The command-line changes, as given.
    pub overrides: Vec<String>,
    /// This process's part of a sharded run (the load is already cut to it).
    pub shard: Option<Shard>,
    pub path: PathBuf,
}

/// The top level of a workload file. Sections whose shape depends on one of their keys
/// (`[target]` on `kind`) are peeked at here and read in full by their own file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadWire {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target: Option<Spanned<TargetPeek>>,
    pub load: LoadWire,
    #[serde(default, rename = "journey")]
    pub journeys: Vec<JourneyWire>,
    #[serde(default)]
    pub users: Option<users::UsersWire>,
    #[serde(default)]
    pub probes: Option<Spanned<ProbesWire>>,
    #[serde(default)]
    pub thresholds: Option<ThresholdsWire>,
    #[serde(default)]
    pub checks: Option<Spanned<ChecksWire>>,
    /// A target of kind `ldap`: the shape of the entries its journeys write.
    #[serde(default)]
    pub directory: Option<Spanned<DirectoryWire>>,
    /// Custom operations, by name.
    #[serde(default)]
    pub operations: BTreeMap<String, Spanned<OperationWire>>,
}

/// `name`: it names the results folder.
fn name(src: &Source, name: &Spanned<String>) -> Result<String, WorkloadError> {
    let n = name.get_ref().trim().to_string();
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(src.error(
            Some(name.span()),
            "`name` must be letters, digits, `-`, `_` or `.` (it names the results folder)",
        ));
    }
    Ok(n)
}

pub fn from_wire(src: &Source, w: WorkloadWire) -> Result<Workload, WorkloadError> {
    let name = name(src, &w.name)?;
    let users_wire = w.users.unwrap_or_default();
    let (target, http) = target::from_wire(src, w.target, w.directory, &users_wire)?;
    let load = load::from_wire(src, w.load)?;
    let builtin = |n: &str| crate::vocab::Op::parse(n).is_some();
    let operations = operations::from_wire(src, w.operations, &users_wire.vars, &builtin)?;
    let journeys = journeys::from_wire(src, w.journeys, &operations)?;
    let users = users::from_wire(src, users_wire)?;
    journeys::check_users(src, &journeys, &users)?;
    journeys::check_custom_steps(src, &journeys, &operations, &users)?;
    match &target {
        Target::Scim { scim: false, .. } => {
            journeys::check_http_target(src, &journeys, &users, w.probes.is_some() || w.checks.is_some())?
        }
        Target::Ldap(_) => journeys::check_ldap_target(src, &journeys, &users)?,
        Target::Scim { .. } | Target::Embedded { .. } => {}
    }
    let embedded = match &target {
        Target::Embedded { reference, .. } => Some(reference.as_ref()),
        Target::Scim { .. } | Target::Ldap(_) => None,
    };
    let embedded_services: Option<Vec<String>> = embedded.map(|c| c.services.iter().map(|s| s.name.clone()).collect());
    let checks = Checks::from_wire(
        src,
        w.checks,
        embedded.map(|c| (embedded_services.clone().unwrap_or_default(), c.roles.clone())),
    )?;
    let probes = Probes::from_wire(src, w.probes, embedded_services.as_deref())?;
    let (thresholds, threshold_spans) = selectors::from_wire(src, w.thresholds)?;
    if let Some(c) = &checks {
        checks::check_password(src, c, users.password.is_some())?;
    }
    let workload = Workload {
        checks,
        operations,
        thresholds,
        probes,
        name,
        description: w.description,
        target,
        http,
        load,
        journeys,
        users,
        effective_text: String::new(),
        overrides: Vec::new(),
        shard: None,
        path: src.file.to_path_buf(),
    };
    selectors::check(src, &workload.vocabulary(), &workload.thresholds, &threshold_spans)?;
    // A probe or check that can measure nothing is refused here, not found empty after a run.
    if workload.probes.as_ref().is_some_and(|p| p.queue.is_some())
        && matches!(workload.target, Target::Ldap(_))
        && let Some(why) = workload.unmeasurable_queue()
    {
        return Err(src.error(None, format!("probes.queue can never measure a queue delay: {why}")));
    }
    if let Some(why) = workload.revocation_checks_nothing() {
        return Err(src.error(None, why));
    }
    Ok(workload)
}

impl Workload {
    /// What this workload can record, for checking threshold selectors.
    pub fn vocabulary(&self) -> selectors::Vocabulary {
        let mut services: Vec<String> = Vec::new();
        let probed = self
            .probes
            .iter()
            .flat_map(|p| p.sync.iter().map(|s| s.service.clone()));
        let checked = self.checks.iter().flat_map(|c| c.services.iter().cloned());
        for s in probed.chain(checked) {
            if !services.contains(&s) {
                services.push(s);
            }
        }
        selectors::Vocabulary {
            ops: self.operation_names(),
            services,
            no_queue: self.unmeasurable_queue(),
        }
    }

    /// Why the queue probe (and `queue_delay`) can measure nothing here, when it cannot: the
    /// probe reads the job a write's answer names (`job_header` or `job_pointer`), so it needs
    /// such a probe, a target whose writes can answer with a job (not a directory), and a
    /// journey that writes.
    pub fn unmeasurable_queue(&self) -> Option<String> {
        if matches!(self.target, Target::Ldap(_)) {
            return Some(
                "an LDAP target's writes carry no job reference (the queue probe reads the job a write's answer names)"
                    .into(),
            );
        }
        if self.probes.as_ref().is_none_or(|p| p.queue.is_none()) {
            return Some("no queue probe: `[probes] queue = { job_header = \"…\" }` (or `job_pointer`) says where a write's answer carries its job, for a target whose writes are processed asynchronously".into());
        }
        if !self.builtin_operations().iter().any(|op| op.is_observable_write()) {
            return Some("no journey writes a user (create, modify, role, disable, enable or delete): no write carries a job to time".into());
        }
        None
    }

    /// Why the revocation check would judge nothing, when it would: it replays a user's token (or
    /// binds) after the journey disables or deletes that user, so a journey must do one.
    pub fn revocation_checks_nothing(&self) -> Option<String> {
        let declared = self
            .checks
            .as_ref()
            .is_some_and(|c| c.kinds.contains(&crate::vocab::CheckKind::Revocation));
        let revokes = self
            .builtin_operations()
            .iter()
            .any(|op| matches!(op, Op::DisableUser | Op::DeleteUser));
        (declared && !revokes).then(|| {
            "checks: the revocation check judges a user's access after the journey disables or deletes that user, and no journey does either: it would check nothing (add `disable_user` or `delete_user` to a journey, or drop `revocation` from kinds)".into()
        })
    }

    /// The distinct built-in operations the journeys use, in first-use order.
    pub fn builtin_operations(&self) -> Vec<Op> {
        let mut ops: Vec<Op> = Vec::new();
        for s in self.journeys.iter().flat_map(|j| &j.steps) {
            if let Some(op) = s.builtin()
                && !ops.contains(&op)
            {
                ops.push(op);
            }
        }
        ops
    }

    /// The `op` tag of every step the journeys use, built-in or custom, in first-use order.
    pub fn operation_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for s in self.journeys.iter().flat_map(|j| &j.steps) {
            if !names.iter().any(|n| n == s.name()) {
                names.push(s.name().to_string());
            }
        }
        names
    }
}
