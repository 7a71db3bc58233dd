//! The results contract: `summary.json` and the types it is made of. `report`, `compare`,
//! `merge` and `sweep` read a run through these types (plus `histograms.hlog`) and nothing else,
//! so a report can be rebuilt from any run, a killed one or a merge of shards included.
//!
//! Depends on serde and the shared vocabulary only: every runtime module may use it, it uses none.
//!
//! # Layout
//! - [`outcome`]: how a run ended ([`RunOutcome`], [`StopReason`]) and the one function that
//!   settles it from verdicts, checks, the stop reason and errors.
//! - [`metric`]: one series' percentile summary, and how durations are shown to people.
//! - [`reports`]: threshold verdicts, check, probe and cleanup reports.

pub mod metric;
pub mod outcome;
pub mod reports;

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use metric::{MetricSummary, format_micros};
pub use outcome::{Evidence, RunOutcome, StopReason, settle};
pub use reports::{
    ChangeCases, CheckCost, CheckReport, CleanupReport, Example, LeftBehind, ProbeReport, Verdict, WARN_SHARE,
};

use crate::vocab::metric as name;

/// 2: declared thresholds, the stop reason, overrides, outcomes `killed` and `error`.
pub const SCHEMA_VERSION: u32 = 2;

/// How the note of a run that kept its users (`--keep-users`) begins: the run writes it, and
/// `provbench merge` carries each shard's into the merged summary by it.
pub const USERS_KEPT: &str = "users kept";
/// The oldest version this build still reads (v1 has no declared thresholds: its verdicts stay).
pub const OLDEST_READABLE: u32 = 1;

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

/// A threshold as declared (in the workload file or with `--threshold`): the part of the
/// contract that lets `report` and `merge` judge again without the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclaredThreshold {
    pub expression: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
    /// Abort-on-fail waits this long after the start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
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
    /// Why the load stopped (absent while running, and in a killed run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    pub target: TargetInfo,
    pub load: LoadInfo,
    /// `INDEX/COUNT` when this run was one shard of several (see `provbench merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Command-line changes to the workload file (`--set`, `--duration`, `--target-url`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// `--strict`: warnings (a probe that observed nothing) fail the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
    pub journeys: Vec<JourneyInfo>,
    pub metrics: Vec<MetricSummary>,
    /// Every threshold the run was held to, file and command line alike.
    #[serde(default)]
    pub declared_thresholds: Vec<DeclaredThreshold>,
    #[serde(default)]
    pub thresholds: Vec<Verdict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_cost: Option<CheckCost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<ProbeReport>,
    #[serde(default)]
    pub cleanup: Option<CleanupReport>,
    /// Why operations failed: per operation and reason, the count and the first few answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailureSample>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Failures of one operation for one reason (`status`, `timeout`, `connection`, `payload`): how
/// many, and the first few details (status and the first bytes of the answer, secrets redacted),
/// so that nobody needs `-v` to learn why a create failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureSample {
    pub op: String,
    pub reason: String,
    pub count: u64,
    pub examples: Vec<String>,
}

impl Summary {
    pub fn metric(&self, metric: &str, tag: Option<(&str, &str)>) -> Option<&MetricSummary> {
        self.metrics
            .iter()
            .find(|m| m.metric == metric && tag.is_none_or(|(k, v)| m.tags.get(k).map(String::as_str) == Some(v)))
    }

    /// No threshold was declared and no check ran: the run measured, but nothing was judged. Such
    /// a run still exits 0 (it did what it was asked), yet no report calls it a bare "passed".
    pub fn judged_nothing(&self) -> bool {
        self.declared_thresholds.is_empty() && self.thresholds.is_empty() && self.checks.is_empty()
    }

    /// How every report names the outcome: [`RunOutcome::label`], and a pass on nothing judged
    /// said as such.
    pub fn outcome_label(&self) -> String {
        match self.outcome {
            RunOutcome::Passed if self.judged_nothing() => format!("{} (nothing judged)", self.outcome.label()),
            other => other.label().to_string(),
        }
    }

    /// What the console, `junit.xml` and `summary.md` say of a run that declared nothing to judge.
    pub const NOTHING_DECLARED: &'static str =
        "nothing judged: no thresholds or checks declared (add `thresholds = [...]` or --threshold)";

    /// What the outcome is settled on.
    pub fn evidence(&self) -> Evidence<'_> {
        // `count` holds successes and failures; a final 429 is counted apart.
        let attempted = self.operations().map(|m| m.count + m.rate_limited).sum();
        let succeeded = self.operations().map(|m| m.count.saturating_sub(m.errors)).sum();
        Evidence {
            stop: self.stop_reason.as_ref(),
            verdicts: &self.thresholds,
            checks: &self.checks,
            cleanup: self.cleanup.as_ref(),
            operations: (attempted, succeeded),
            probes_unproven: self.probes.as_ref().is_some_and(ProbeReport::unproven),
        }
    }

    /// Sets `outcome` from what the summary holds (see [`settle`]).
    pub fn settle(&mut self) {
        self.outcome = settle(&self.evidence());
    }

    /// Why the outcome is `error`, for the message on stderr.
    pub fn error_reason(&self) -> Option<String> {
        outcome::error_reason(&self.evidence())
    }

    /// The `api_latency` summaries, one per operation.
    pub fn operations(&self) -> impl Iterator<Item = &MetricSummary> {
        self.metrics.iter().filter(|m| m.metric == name::API_LATENCY)
    }

    /// Operations attempted in all.
    pub fn operation_count(&self) -> u64 {
        self.operations().map(|m| m.count).sum()
    }

    /// Puts `metrics` in reading order: operations first, then the generator's own wait, then
    /// the asynchronous half and the checks, each kept in
    /// registration order.
    pub fn sort_metrics(&mut self) {
        Self::sort_metric_list(&mut self.metrics);
    }

    /// The reading order of [`Summary::sort_metrics`], for any list of summaries.
    pub fn sort_metric_list(metrics: &mut [MetricSummary]) {
        // Stable: within a rank, the order the series were registered in (operations in the
        // order the journeys first use them).
        metrics.sort_by_key(|m| match m.metric.as_str() {
            name::API_LATENCY => 0,
            name::ADMIN_WAIT => 1,
            _ => 2,
        });
    }

    /// Writes atomically (temp file, then rename) so a reader never sees half a summary.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(".summary.json.tmp");
        let text = crate::redact::json(&serde_json::to_string_pretty(self)?);
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
            (OLDEST_READABLE..=SCHEMA_VERSION).contains(&s.schema_version),
            "{} has schema_version {}, this provbench reads {OLDEST_READABLE} to {SCHEMA_VERSION}",
            path.display(),
            s.schema_version
        );
        Ok(s)
    }
}
