//! `summary.json`, versioned: run identity and timing, outcome, target, load (target and achieved
//! rates, late and dropped arrivals), journeys, every metric's percentiles, and cleanup.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::engine::cleanup::CleanupReport;
use crate::metrics::summary::MetricSummary;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Written at the start; a summary still saying this belongs to a run that was killed.
    Running,
    Passed,
    Failed,
    /// Stopped early by Ctrl-C or SIGTERM.
    Aborted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub kind: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LoadInfo {
    pub model: String,
    pub description: String,
    /// Virtual admins (closed) or the most the pool may use (open).
    pub admins: usize,
    /// Scheduled journeys per second, averaged (open model).
    pub target_rate: Option<f64>,
    pub peak_rate: Option<f64>,
    /// Journeys started per second over the load phase.
    pub achieved_rate: f64,
    pub operations_per_second: f64,
    pub load_duration_s: f64,
    pub scheduled: Option<u64>,
    pub started: u64,
    /// Arrivals that found no free admin and started after their intended time.
    pub late_starts: u64,
    /// Arrivals never started (further behind than max_lag, or cut off by a stop).
    pub dropped_arrivals: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JourneyInfo {
    pub name: String,
    pub weight: u32,
    pub completed: u64,
    pub failed: u64,
    /// Cut short by the end of the run between two steps.
    #[serde(default)]
    pub stopped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub run_id: String,
    pub workload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    pub outcome: RunOutcome,
    pub target: TargetInfo,
    pub load: LoadInfo,
    /// `INDEX/COUNT` when this run was one shard of several (see `provbench merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub journeys: Vec<JourneyInfo>,
    pub metrics: Vec<MetricSummary>,
    #[serde(default)]
    pub thresholds: Vec<crate::thresholds::Verdict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::checks::CheckReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<crate::probes::ProbeReport>,
    #[serde(default)]
    pub cleanup: Option<CleanupReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Summary {
    pub fn metric(&self, metric: &str, tag: Option<(&str, &str)>) -> Option<&MetricSummary> {
        self.metrics
            .iter()
            .find(|m| m.metric == metric && tag.is_none_or(|(k, v)| m.tags.get(k).map(String::as_str) == Some(v)))
    }

    /// Writes atomically (temp file, then rename) so a reader never sees half a summary.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(".summary.json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("summary.json")).context("cannot move summary.json into place")?;
        Ok(())
    }

    pub fn read(dir: &Path) -> anyhow::Result<Summary> {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let s: Summary =
            serde_json::from_str(&text).with_context(|| format!("{} is not a provbench summary", path.display()))?;
        anyhow::ensure!(
            s.schema_version == SCHEMA_VERSION,
            "{} has schema_version {}, this provbench reads {SCHEMA_VERSION}",
            path.display(),
            s.schema_version
        );
        Ok(s)
    }
}
