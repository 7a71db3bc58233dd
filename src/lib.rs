//! provbench: load and performance benchmarking for user-provisioning systems.
//!
//! # Layout
//! Data flows one way: workload → engine → metrics → thresholds → results → report. Imports
//! point down the layers below and never up:
//!
//! ```text
//! cli
//! init                        reads a target and writes a workload; resolves targets as a run does
//! capacity · report           report renders results; never imports engine, probes, checks, workload
//! engine                      prepare -> preflight -> drive -> judge -> finish; one shutdown tree
//! probes · checks             observe the run; record into metrics, report through results
//! workload                    files -> domain types; never runs anything
//! http · ldap · metrics · thresholds · reference
//! results · ledger            the summary.json contract; what a run created
//! vocab · redact              shared words and the metric key; secrets kept out of every output
//! ```
//!
//! - [`vocab`]: the shared words, and the `(metric, tags)` key.
//! - [`results`]: `summary.json` and its parts, and the one function that settles an outcome.
//! - [`ledger`]: the run's marker, and everything a run created and has not deleted.
//! - [`redact`]: secrets and control characters kept out of every output.
//! - [`metrics`]: per-thread µs HdrHistograms, the interval writer (hlog, CSV) with its observer
//!   seam, live progress and Prometheus text, reading a run's files back.
//! - [`thresholds`]: the threshold grammar, its judgement on merged histograms, abort-on-fail.
//! - [`http`]: the one HTTP transport every part uses (hyper for plain HTTP, reqwest for TLS), its
//!   settings and authentication. Knows no protocol spoken over it.
//! - [`ldap`]: the shared LDAP client (ldap3): endpoints, bound connections, binds as a user,
//!   LDAP result codes classified as errors.
//! - [`reference`](mod@reference): the embedded reference provisioning service (SCIM API, OAuth2, async
//!   provisioning pipeline, linked services, faults, flaws, ground-truth stats). A leaf.
//! - [`workload`]: workload files: wire structs, validation, templates, schedules, probes and
//!   checks configuration, command-line overrides.
//! - [`probes`]: queue delay, sync lag and end-to-end, by polling or push.
//! - [`checks`]: login, permissions, audit, welcome, authorization, escalation, revocation.
//! - [`engine`]: a run: goose virtual admins, journeys, the open model's arrival gate, the
//!   shutdown tree, run.log; `engine::targets`, the only place that picks a protocol (SCIM and
//!   the embedded service, LDAP, HTTP APIs of custom operations), each with its steps and cleanup.
//! - [`report`]: console, junit.xml, summary.md, report.html; `report`, `compare`, `merge`.
//! - [`init`](mod@init): `init`: discovery of a target (read-only unless allowed to write one
//!   marked user) and the commented workload it writes; `init --check`.
//! - [`capacity`]: `sweep`: the highest sustainable rate and the capacity report.
//! - [`cli`]: the command line (clap derive) and what each subcommand does.
//! - [`logging`]: tracing set-up, human-readable or JSON lines.
//!
//! `src/main.rs` only parses arguments and maps the outcome to an exit code: 0 passed,
//! 1 thresholds or checks failed (or the run was killed before it finished), 2 usage, input,
//! runtime error or nothing that could be judged, 130 interrupted (Ctrl-C, SIGTERM, SIGHUP)
//! ([`results::RunOutcome::exit_code`] decides for a run).

pub mod capacity;
pub mod checks;
pub mod cli;
pub mod engine;
pub mod http;
pub mod init;
pub mod ldap;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod probes;
pub mod redact;
pub mod reference;
pub mod report;
pub mod results;
pub mod thresholds;
pub mod vocab;
pub mod workload;

/// How a command ended, mapped to the process exit code by `main` (an error is exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Passed,
    /// Exit 1: a threshold or check failed.
    Failed,
    /// Exit 130: stopped by Ctrl-C, SIGTERM or SIGHUP ([`results::outcome::INTERRUPTED_EXIT`]).
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Failed => 1,
            Outcome::Interrupted => results::outcome::INTERRUPTED_EXIT,
        }
    }
}
