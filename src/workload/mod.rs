//! Workload files: parsing (`wire`), validation into domain types that cannot be invalid, and
//! command-line overrides (`--set load.rate=500/s`). Errors name the file, line and key.
//!
//! A pure configuration layer: it reads files and never runs anything (the embedded target's
//! settings are resolved by the reference module, once, as the file loads).
//!
//! # Layout
//! - [`wire`]: the serde structs of the TOML format.
//! - [`error`]: located errors and did-you-mean hints. [`limits`]: the bound of every number.
//! - [`overrides`]: command-line changes, and error locations that stay true after them.
//! - [`template`]: payload templates with placeholders. [`dialect`]: what the built-in steps
//!   change and how they PATCH.
//! - [`schedule`]: open-model arrival rates and arrival times.
//! - [`step`]: the operations a journey is made of; [`operations`]: custom ones
//!   (`[operations.NAME]`).
//! - [`probes`], [`checks`]: the `[probes]` and `[checks]` sections ([`login`]: how the login
//!   checks sign in); [`downstream`]: how a
//!   linked service is read (by id or by query, with its own credentials).
//! - [`selectors`]: threshold selectors checked against what the workload can record.
//! - `convert`: wire form to domain types, with located errors.

pub mod checks;
mod convert;
pub mod dialect;
pub mod directory;
pub mod downstream;
pub mod error;
pub mod limits;
pub mod login;
pub mod operations;
pub mod overrides;
pub mod probes;
pub mod schedule;
pub mod selectors;
pub mod step;
pub mod template;
pub mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use error::Source;
pub use error::WorkloadError;
pub use overrides::Overrides;
use schedule::{Schedule, Stage};
pub use step::Step;
use template::Template;
use wire::WorkloadWire;

pub use crate::http::{Auth, ClientAuth, ClientId, HttpSettings, Secret};
use crate::reference::config::ReferenceConfig;
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
    pub probes: Option<probes::Probes>,
    /// Verdicts that fail the run (exit 1).
    pub thresholds: Vec<crate::thresholds::ThresholdSpec>,
    /// Proofs of the provisioning chain run during the load.
    pub checks: Option<checks::Checks>,
    /// Custom operations (`[operations.NAME]`), in name order; steps refer to them by index.
    pub operations: Vec<operations::Operation>,
    /// The workload as run: the file itself, or after overrides the merged document with a
    /// header naming them (saved as the results' `workload.toml`).
    pub effective_text: String,
    /// The command-line changes, as given.
    pub overrides: Vec<String>,
    /// This process's part of a sharded run (the load is already cut to it).
    pub shard: Option<Shard>,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// The reference service, started in-process with these settings.
    Embedded {
        profile: String,
        reference: Box<ReferenceConfig>,
    },
    /// Any SCIM 2.0 service, or (`scim: false`, kind `http`) any HTTP API driven by custom
    /// operations only.
    Scim {
        base_url: String,
        auth: Auth,
        /// Headers sent with every request to the target (a tenant header, an API key).
        headers: Vec<(String, downstream::HeaderValue)>,
        /// False for kind `http`: no SCIM built-in steps and no marker sweep at cleanup.
        scim: bool,
    },
    /// An LDAP directory: the built-in steps as LDAP operations.
    Ldap(Box<directory::LdapTarget>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ThinkTime {
    Fixed(Duration),
    Uniform(Duration, Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    Duration(Duration),
    /// Journeys per admin.
    Iterations(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    Closed {
        admins: usize,
        ramp: Duration,
        think_time: Option<ThinkTime>,
        stop: Stop,
        seed: u64,
    },
    Open {
        schedule: Schedule,
        max_admins: usize,
        /// An arrival that cannot start within this of its intended time is dropped (counted).
        max_lag: Duration,
        seed: u64,
    },
}

impl Load {
    pub fn model(&self) -> &'static str {
        match self {
            Load::Closed { .. } => "closed",
            Load::Open { .. } => "open",
        }
    }
    pub fn admins(&self) -> usize {
        match self {
            Load::Closed { admins, .. } => *admins,
            Load::Open { max_admins, .. } => *max_admins,
        }
    }
    pub fn seed(&self) -> u64 {
        match self {
            Load::Closed { seed, .. } | Load::Open { seed, .. } => *seed,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Users {
    /// The user body (with `password` when `[users] password` is set).
    pub template: Template,
    /// The `userName` the template renders, to check what the target echoes.
    pub user_name: Template,
    /// The password each created user gets (`[users] password`), for login checks.
    pub password: Option<Template>,
    pub group_template: Template,
    pub prepopulate: usize,
    /// Existing users from the feeder: (userName, optional id).
    pub feeder: Vec<(String, Option<String>)>,
    /// What `modify_user` changes, where roles live, the PATCH style.
    pub dialect: dialect::Dialect,
}

impl Workload {
    /// Reads, parses and validates a workload file with the command line's `overrides`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkloadError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read the workload: {e}"),
        })?;
        Self::parse(path, &text, overrides)
    }

    pub fn parse(path: &Path, text: &str, overrides: &Overrides) -> Result<Workload, WorkloadError> {
        let src = Source {
            file: path,
            text,
            remap: None,
        };
        let mut workload = if overrides.set.is_empty() {
            let wire: WorkloadWire = toml::from_str(text).map_err(|e| src.from_toml(&e))?;
            convert::convert(&src, wire)?
        } else {
            let mut table: toml::Table = toml::from_str(text).map_err(|e| src.from_toml(&e))?;
            for o in &overrides.set {
                overrides::apply(&mut table, &o.assignment)
                    .map_err(|m| src.error(None, format!("{}: {m}", o.given_as)))?;
            }
            let merged = toml::to_string(&table).map_err(|e| src.error(None, e.to_string()))?;
            let remap = overrides::Remap::new(text, &merged, &overrides.set);
            let msrc = Source {
                file: path,
                text: &merged,
                remap: Some(&remap),
            };
            let wire: WorkloadWire = toml::from_str(&merged).map_err(|e| msrc.from_toml(&e))?;
            convert::convert(&msrc, wire)?
        };
        for t in &overrides.thresholds {
            let spec = crate::thresholds::ThresholdSpec::parse(t)
                .map_err(|e| src.error(None, format!("--threshold '{t}': {e}")))?;
            workload
                .vocabulary()
                .check(&spec)
                .map_err(|e| src.error(None, format!("--threshold: {e}")))?;
            workload.thresholds.push(spec);
        }
        if let Some(shard) = overrides.shard {
            workload.apply_shard(shard).map_err(|m| src.error(None, m))?;
        }
        workload.overrides = overrides.describe();
        workload.effective_text = effective_text(text, overrides);
        Ok(workload)
    }
}

/// The workload as run: the file itself, or the document the overrides produced, under a
/// header that names them (its comments are lost in the merge, so the header says so).
fn effective_text(text: &str, overrides: &Overrides) -> String {
    if overrides.is_empty() {
        return text.to_string();
    }
    let mut table: toml::Table = toml::from_str(text).unwrap_or_default();
    for o in &overrides.set {
        let _ = overrides::apply(&mut table, &o.assignment);
    }
    let mut header = String::from(
        "# The workload as run: the file with these command-line changes\n# (the file's comments are not kept).\n",
    );
    for d in overrides.describe() {
        header.push_str(&format!("#   {d}\n"));
    }
    if !overrides.thresholds.is_empty() {
        let list = table
            .entry("thresholds")
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut() {
            list.extend(overrides.thresholds.iter().map(|t| toml::Value::String(t.clone())));
        }
    }
    let body = toml::to_string(&table).unwrap_or_default();
    format!("{header}\n{body}")
}

/// This process's part of a sharded run: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected INDEX/COUNT, e.g. 0/3"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("`{i}` is not a shard index"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("`{n}` is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count (0-based)"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl Workload {
    /// Keeps this shard's share of the load: the arrival rate divided by the count (open), or its
    /// part of the admins (closed).
    fn apply_shard(&mut self, shard: Shard) -> Result<(), String> {
        self.shard = Some(shard);
        let (i, n) = (shard.index as usize, shard.count as usize);
        match &mut self.load {
            Load::Open {
                schedule, max_admins, ..
            } => {
                let stages = schedule
                    .stages()
                    .iter()
                    .map(|s| Stage {
                        from_rate: s.from_rate / n as f64,
                        to_rate: s.to_rate / n as f64,
                        duration: s.duration,
                    })
                    .collect();
                *schedule = Schedule::new(stages).map_err(|e| format!("shard {i}/{n}: {e}"))?;
                *max_admins = (*max_admins).div_ceil(n).max(1);
            }
            Load::Closed { admins, .. } => {
                let part = *admins * (i + 1) / n - *admins * i / n;
                if part == 0 {
                    return Err(format!("shard {i}/{n}: {admins} admins cannot be split {n} ways"));
                }
                *admins = part;
            }
        }
        Ok(())
    }

    /// A short description of the load for headers and logs.
    pub fn load_summary(&self) -> String {
        match &self.load {
            Load::Closed { admins, ramp, stop, .. } => {
                let stop = match stop {
                    Stop::Duration(d) => humantime::format_duration(*d).to_string(),
                    Stop::Iterations(n) => format!("{n} iterations each"),
                };
                format!(
                    "closed model, {admins} admins, ramp {}, {stop}",
                    humantime::format_duration(*ramp)
                )
            }
            Load::Open {
                schedule, max_admins, ..
            } => format!(
                "open model, peak {:.1}/s over {}, up to {max_admins} admins",
                schedule.peak_rate(),
                humantime::format_duration(schedule.duration())
            ),
        }
    }

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
        }
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

#[cfg(test)]
mod tests;
