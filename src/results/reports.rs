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
    /// Overtaken: a later write of the same user came first, so the case was not judged. Named
    /// `overtaken` in every output (read as `skipped` from older summaries).
    #[serde(default, rename = "overtaken", alias = "skipped")]
    pub skipped: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// What the check did not attempt, and why (the escalation check where the target has no
    /// privileged group to try): neither a pass nor a failure, shown beside the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Declared but never ran: an error, not a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The judged cases (passed and failed) a pass needs (`[checks] min_evidence`); 0 in
    /// summaries written before the rule.
    #[serde(default)]
    pub min_evidence: u64,
    /// Per kind of change a check follows (revocation: `disable_user`, `delete_user`), its own
    /// cases: each change the journeys made is judged on its own evidence, so deletes that pass
    /// cannot stand for disables that were never judged (every one overtaken by its delete).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_change: std::collections::BTreeMap<String, ChangeCases>,
}

/// One kind of change's cases within a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCases {
    pub passed: u64,
    pub failed: u64,
    pub overtaken: u64,
}

impl CheckReport {
    /// Failed at least once, never ran, or passed on fewer cases than its evidence rule asks.
    pub fn is_failure(&self) -> bool {
        self.failed > 0 || self.unjudged().is_some()
    }

    /// Cases judged either way (overtaken ones are not).
    pub fn judged(&self) -> u64 {
        self.passed + self.failed
    }

    /// Why the check has no verdict, if it has none: it never ran, or it passed on fewer judged
    /// cases than `min_evidence` (invariant 10: a pass needs evidence, counted). A check that
    /// failed has its verdict, however few its cases.
    pub fn unjudged(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        if self.failed > 0 {
            return None;
        }
        if self.judged() < self.min_evidence {
            return Some(format!(
                "not judged: {} case(s) judged ({} overtaken), a pass needs {} ([checks] min_evidence)",
                self.judged(),
                self.skipped,
                self.min_evidence
            ));
        }
        // A change the journeys made is proven by its own cases, not by another change's.
        self.by_change
            .iter()
            .find(|(_, c)| c.passed + c.failed < self.min_evidence)
            .map(|(change, c)| {
                format!(
                    "not judged after {change}: {} case(s) judged ({} overtaken), a pass needs {} ([checks] min_evidence)",
                    c.passed + c.failed,
                    c.overtaken,
                    self.min_evidence
                )
            })
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
    /// Observations whose change a later write of the same user overtook (its state, or the
    /// user gone, showed first): counted apart, never as a timeout or a lag.
    #[serde(default)]
    pub overtaken: u64,
    /// `overtaken` as a share of every observation that ended (observed, timed out, overtaken).
    #[serde(default)]
    pub overtaken_share: f64,
    /// Deletes of users never seen in the service read (gone before any read showed them):
    /// absence alone cannot time them, so they are counted here and not in `sync_lag`.
    #[serde(default)]
    pub unconfirmed: u64,
    pub probe_requests: u64,
    pub probe_request_errors: u64,
    /// Probe reads answered 304 (a conditional GET of a view unchanged since the last read).
    #[serde(default)]
    pub not_modified: u64,
    /// Probe requests as a share of every request the run sent.
    pub share_of_requests: f64,
    /// The share the probes were held to (`probes.max_share`; 0 in older summaries).
    #[serde(default)]
    pub max_share: f64,
    /// Writes of sampled users not observed, because the probes were at `max_share`.
    #[serde(default)]
    pub not_followed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_events: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Series (a service and an operation, or the queue) whose every observation timed out:
    /// they observed nothing, and never pass vacuously.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_observed: Vec<String>,
    /// The judged observations (arrived or timed out) each probe series needs for a pass
    /// (`[probes] min_evidence`); 0 in summaries written before the rule.
    #[serde(default)]
    pub min_evidence: u64,
    /// Probe series (or whole probes) that judged fewer observations than `min_evidence`, every
    /// write of theirs overtaken or unconfirmed: not judged, so never a pass (invariant 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unjudged: Vec<String>,
    /// After cleanup, per polled service: users the run created (of those followed) that are
    /// still there once the bound passed, i.e. deprovisioning did not reach them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub leftovers: std::collections::BTreeMap<String, u64>,
    /// After cleanup, per polled service: followed users whose reads failed (refused, no
    /// answer), so nothing is known of them there: never counted as leftovers, nor as gone.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unread_after_cleanup: std::collections::BTreeMap<String, u64>,
    /// The probes' reads after cleanup (asking whether the followed users are gone), apart from
    /// `probe_requests` (the run's, which `max_share` holds): the probes' traffic is both.
    #[serde(default)]
    pub reads_after_cleanup: u64,
}

/// Above this share of all requests, the probes' or the checks' own traffic is said to distort
/// the load (a note in every output).
pub const WARN_SHARE: f64 = 0.25;

/// What the checks' own requests cost (logins, token, userinfo and audit reads, forbidden
/// writes and their read-backs, binds): they are not the load, and must not become it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckCost {
    pub requests: u64,
    /// The checks' requests as a share of every request the run sent (load, probes, checks).
    pub share_of_requests: f64,
}

impl ProbeReport {
    /// A declared probe series observed nothing (every observation timed out) or judged fewer
    /// observations than its evidence rule asks: the run is not passed, with or without
    /// `--strict`.
    pub fn unproven(&self) -> bool {
        !self.never_observed.is_empty() || !self.unjudged.is_empty()
    }
}

/// What cleanup could not delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftBehind {
    /// `user` or `group`.
    pub kind: String,
    pub id: String,
    pub name: String,
    /// The last answer: `HTTP 500: …`, `connection: …`, `cleanup timed out`.
    pub reason: String,
    /// Its delete was answered as done, but no read showed it gone (see
    /// [`CleanupReport::unverified`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub attempted: u64,
    pub deleted: u64,
    /// Already gone (404/410): someone else deleted it, which is fine.
    pub already_gone: u64,
    /// Deletes that could not be done: left on the target (listed in `left`, up to
    /// [`CleanupReport::LISTED`]).
    pub failed: u64,
    /// Deletes answered as done (and users the journeys deleted) that a read showed gone: the
    /// evidence behind "0 left".
    #[serde(default)]
    pub verified: u64,
    /// Deletes answered as done that no read showed gone (still found, or not readable): they
    /// may be on the target, listed in `left` with `unverified`, and the run is not passed.
    #[serde(default)]
    pub unverified: u64,
    /// Deletes retried after a failure (5xx, 429, connection, timeout).
    #[serde(default)]
    pub retries: u64,
    /// 429 answers cleanup received.
    #[serde(default)]
    pub rate_limited: u64,
    /// The time bound ran out before everything was deleted.
    pub timed_out: bool,
    pub duration_ms: u64,
    /// What is still there, with why, and the command that removes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<LeftBehind>,
    /// Resource types the marker sweep could not search (`Users: HTTP 500 …`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsearchable: Vec<String>,
    /// `provbench cleanup --run-id …`, when something is left or could not be searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The target stopped with the run (the embedded service): nothing it held outlives it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone_with_target: bool,
    /// Written before cleanup begins, replaced when it ends: a summary that still says so
    /// belongs to a run killed before its cleanup ended (what is left is unknown).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl CleanupReport {
    /// How many left-behind resources `left` lists at most.
    pub const LISTED: usize = 200;

    /// Something may still be on a target that outlives the run.
    pub fn incomplete(&self) -> bool {
        self.pending
            || !self.gone_with_target
                && (self.failed > 0 || self.unverified > 0 || self.timed_out || !self.unsearchable.is_empty())
    }

    /// The counts, as every report says them: "0 left" only beside the reads that prove it.
    pub fn counts(&self) -> String {
        if self.pending {
            return "never ended (the run was killed during it): what is left is unknown".into();
        }
        format!(
            "{} deleted, {} already gone, {} read back as gone, {} unverified, {} left",
            self.deleted, self.already_gone, self.verified, self.unverified, self.failed
        )
    }

    /// Adds another round's (or shard's) counts: what was tried, deleted, read back, retried.
    /// What is left is counted when a report is closed, from its list.
    pub fn add_counts(&mut self, r: &CleanupReport) {
        self.attempted += r.attempted;
        self.deleted += r.deleted;
        self.already_gone += r.already_gone;
        self.retries += r.retries;
        self.verified += r.verified;
        self.rate_limited += r.rate_limited;
        self.timed_out |= r.timed_out;
    }

    /// What a summary holds while cleanup runs (and keeps, if the run is killed then).
    pub fn pending(command: String) -> CleanupReport {
        CleanupReport {
            pending: true,
            command: Some(command),
            ..CleanupReport::default()
        }
    }
}
