//! Workload files: parsing, validation into domain types that cannot be invalid, and
//! command-line overrides (`--set load.rate=500/s`). Errors name the file, line and key.
//!
//! A pure configuration layer: it reads files and never runs anything (the embedded target's
//! settings are resolved by the reference module, once, as the file loads).
//!
//! # One convention
//! Each section's file owns its wire struct (serde, `deny_unknown_fields`, `Spanned` where a
//! position matters), its domain type, and `from_wire(&Source, wire)` returning a
//! [`WorkloadError`] at the key at fault. A table whose shape depends on one of its keys (a
//! target's `kind`, a probed service's `ldap`, a credentials table's `kind`) is read once to
//! learn it, then again as that shape ([`error::Source::reread`]).
//!
//! # Layout
//! - `document`: the top level ([`Workload`]) and the rules that join sections.
//! - Sections: [`target`], [`load`], [`journeys`], [`users`], [`probes`], [`checks`] ([`login`]:
//!   how the login checks sign in), [`directory`], [`operations`] (custom steps,
//!   `[operations.NAME]`), [`selectors`] (the `thresholds` list).
//! - Helpers, which import no section: [`error`] (located errors, did-you-mean hints, reading
//!   a table again), `fields` (located durations, counts, pointers), [`limits`] (the bound of
//!   every number), [`auth`] (the one shape of each kind of credentials), [`downstream`] (how a
//!   linked service is read), [`template`], [`dialect`], [`schedule`], [`step`].
//! - [`overrides`]: command-line changes, and error locations that stay true after them.

pub mod auth;
pub mod checks;
pub mod dialect;
pub mod directory;
mod document;
pub mod downstream;
pub mod error;
mod fields;
pub mod http_target;
pub mod journeys;
pub mod ldap_lock;
pub mod ldap_read;
pub mod limits;
pub mod load;
pub mod login;
pub mod operations;
pub mod overrides;
pub mod probes;
pub mod schedule;
pub mod selectors;
pub mod step;
pub mod sync;
pub mod target;
pub mod template;
pub mod users;

use std::path::Path;

pub use document::Workload;
use document::WorkloadWire;
use error::Source;
pub use error::WorkloadError;
pub use journeys::Journey;
pub use load::{Load, Stop, ThinkTime};
pub use overrides::{Overrides, Shard};
use schedule::{Schedule, Stage};
pub use step::Step;
pub use target::Target;
pub use users::Users;

pub use crate::http::{Auth, ClientAuth, ClientId, HttpSettings, Secret};

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
            document::from_wire(&src, wire)?
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
            document::from_wire(&msrc, wire)?
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
}

#[cfg(test)]
mod tests;
