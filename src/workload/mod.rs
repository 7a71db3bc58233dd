//! Workload files: parsing (`wire`), validation into domain types that cannot be invalid, and
//! command-line overrides (`--set load.rate=500/s`). Errors name the file, line and key.
//!
//! # Layout
//! - [`wire`]: the serde structs of the TOML format.
//! - [`error`]: located errors and did-you-mean hints.
//! - [`template`]: payload templates with placeholders.
//! - [`schedule`]: open-model arrival rates and arrival times.
//! - [`step`]: the operations a journey is made of.
//! - `convert`: wire form to domain types, with located errors.

pub mod checks;
mod convert;
pub mod error;
pub mod probes;
pub mod schedule;
pub mod step;
pub mod template;
pub mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use error::Source;
pub use error::WorkloadError;
use schedule::{Schedule, Stage};
pub use step::Step;
use template::Template;
use wire::WorkloadWire;

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
    /// The workload file as given, for reports ("the configuration used").
    pub source_text: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The reference service, started in-process.
    Embedded {
        profile: String,
        config: Option<PathBuf>,
        flaws: Vec<String>,
    },
    /// Any SCIM 2.0 service.
    Scim { base_url: String, auth: Auth },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer {
        source: Secret,
    },
    ClientCredentials {
        token_url: String,
        client_id: ClientId,
        client_secret_env: Option<String>,
        scope: Option<String>,
    },
}

/// Where a secret comes from: never the workload file itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientId {
    Literal(String),
    Env(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub honor_retry_after: bool,
    pub max_retries: u32,
    pub max_connections: Option<usize>,
    /// Reuse connections (off for servers that close every connection, e.g. HTTP/1.0 ones).
    pub keep_alive: bool,
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
}

impl Workload {
    /// Reads, parses and validates a workload file, applying `--set` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkloadError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read the workload: {e}"),
        })?;
        Self::parse(path, &text, overrides)
    }

    pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<Workload, WorkloadError> {
        let src = Source { file: path, text };
        let wire: WorkloadWire = if overrides.is_empty() {
            toml::from_str(text).map_err(|e| src.from_toml(&e))?
        } else {
            let mut table: toml::Table = toml::from_str(text).map_err(|e| src.from_toml(&e))?;
            for o in overrides {
                apply_override(&mut table, o).map_err(|m| src.error(None, format!("--set {o}: {m}")))?;
            }
            let merged = toml::to_string(&table).map_err(|e| src.error(None, e.to_string()))?;
            let msrc = Source {
                file: path,
                text: &merged,
            };
            toml::from_str(&merged).map_err(|e| {
                let mut err = msrc.from_toml(&e);
                err.message.push_str(" (after --set overrides)");
                err.line = None;
                err.column = None;
                err
            })?
        };
        convert::convert(&src, wire, text)
    }
}

/// `load.rate=500/s`: the value is read as TOML when it parses as such, else as a string.
pub fn apply_override(table: &mut toml::Table, text: &str) -> Result<(), String> {
    let (key, raw) = text.split_once('=').ok_or("expected KEY=VALUE, e.g. load.rate=500/s")?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, parents) = parts.split_last().ok_or("empty key")?;
    let mut cur = table;
    for p in parents {
        cur = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a table"))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
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
    pub fn apply_shard(&mut self, shard: Shard) -> Result<(), String> {
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

    /// The distinct operations the journeys use, in first-use order.
    pub fn operations(&self) -> Vec<&'static str> {
        let mut ops: Vec<&'static str> = Vec::new();
        for j in &self.journeys {
            for s in &j.steps {
                if !ops.contains(&s.op()) {
                    ops.push(s.op());
                }
            }
        }
        ops
    }
}

#[cfg(test)]
mod tests;
