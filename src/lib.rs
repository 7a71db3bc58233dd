//! provbench: load and performance benchmarking for user-provisioning systems.
//!
//! # Layout
//! - [`cli`]: the command line (clap derive) and what each subcommand does.
//! - [`workload`]: workload files: wire structs, validation, templates, schedules, probes and
//!   checks configuration, `--set` overrides.
//! - [`engine`]: a run: target, goose virtual admins, journeys, the open model's arrival gate,
//!   stop conditions, cleanup.
//! - [`scim`]: the shared SCIM client (hyper for plain HTTP, reqwest for TLS) and authentication.
//! - [`metrics`]: `(metric, tags)` series, per-thread µs HdrHistograms, the interval writer
//!   (hlog, CSV, progress, Prometheus text), reading runs back.
//! - [`probes`]: queue delay, sync lag and end-to-end, by polling or push.
//! - [`checks`]: login, permissions, audit, welcome, authorization, escalation, revocation.
//! - [`thresholds`]: the threshold grammar and its judgement on merged histograms.
//! - [`report`]: summary.json, console, junit.xml, summary.md, report.html, run.log, compare,
//!   merge.
//! - [`capacity`]: `sweep`: the highest sustainable rate and the capacity report.
//! - [`reference`]: the embedded reference provisioning service (SCIM API, OAuth2, async
//!   provisioning pipeline, linked services, faults, flaws, ground-truth stats).
//! - [`logging`]: tracing set-up, human-readable or JSON lines.
//!
//! `src/main.rs` only parses arguments and maps the outcome to an exit code: 0 passed,
//! 1 thresholds or checks failed, 2 usage, input or runtime error.

pub mod capacity;
pub mod checks;
pub mod cli;
pub mod engine;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod probes;
pub mod reference;
pub mod report;
pub mod results;
pub mod scim;
pub mod thresholds;
pub mod vocab;
pub mod workload;

/// How a command ended, mapped to the process exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Passed,
    /// Exit 1: a threshold or check failed.
    Failed,
}
