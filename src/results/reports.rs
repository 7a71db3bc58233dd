//! The parts of `summary.json` that judge and account for a run: threshold verdicts, check
//! reports, what the probes did, and what cleanup deleted.

use serde::{Deserialize, Serialize};

/// One threshold's verdict, as `summary.json` and every report show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub expression: String,
    /// The observed value in the expression's unit (µs for durations, a fraction for rates).
    pub observed: Option<f64>,
    /// The observed value for people: `312.5ms`, `0.42%`, `12`.
    pub observed_text: String,
    pub passed: bool,
    /// Why it could not be judged (no data matched): the run is an error (exit 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub detail: String,
}

/// One check's outcome in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub kind: String,
    /// `security` (authorization, escalation, revocation), `access` (login, permissions) or
    /// `effects` (audit, welcome): for thresholds such as `failed(checks{category=security}) == 0`.
    pub category: String,
    pub passed: u64,
    pub failed: u64,
    /// Could not be judged (e.g. a revocation for a user whose login never succeeded).
    #[serde(default)]
    pub skipped: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// Declared but never ran: an error, not a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CheckReport {
    /// Failed at least once, or never ran.
    pub fn is_failure(&self) -> bool {
        self.failed > 0 || self.error.is_some()
    }
}

/// What `summary.json` says about the probes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub sample: f64,
    pub writes_observed: u64,
    /// Writes not observed because `max_pending` observations were already under way.
    pub shed: u64,
    /// Observations cut short by an interrupted run (not recorded).
    pub abandoned: u64,
    pub probe_requests: u64,
    pub probe_request_errors: u64,
    /// Probe requests as a share of every request the run sent.
    pub share_of_requests: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_events: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub attempted: u64,
    pub deleted: u64,
    /// Already gone (404): someone else deleted it, which is fine.
    pub already_gone: u64,
    pub failed: u64,
    /// The time bound ran out before everything was deleted.
    pub timed_out: bool,
    pub duration_ms: u64,
}

impl CleanupReport {
    /// Adds another round's counts (not its duration).
    pub fn absorb(&mut self, other: CleanupReport) {
        self.attempted += other.attempted;
        self.deleted += other.deleted;
        self.already_gone += other.already_gone;
        self.failed += other.failed;
        self.timed_out |= other.timed_out;
    }
}
