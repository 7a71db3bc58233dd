//! provbench: load and performance benchmarking for user-provisioning systems.
//!
//! # Layout
//! - [`cli`]: the command-line surface (clap derive) and what each subcommand does.
//! - [`logging`]: tracing set-up, human-readable or JSON lines.
//! - [`reference`]: the embedded reference provisioning service (SCIM API, OAuth2, async
//!   provisioning pipeline, linked services, faults, flaws, ground-truth stats).
//!
//! `src/main.rs` only parses arguments and maps the outcome to an exit code: 0 passed,
//! 1 thresholds or checks failed, 2 usage, input or runtime error.

pub mod capacity;
pub mod checks;
pub mod cli;
pub mod engine;
pub mod logging;
pub mod metrics;
pub mod probes;
pub mod reference;
pub mod report;
pub mod scim;
pub mod thresholds;
pub mod workload;

/// How a command ended, mapped to the process exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Passed,
    /// Exit 1: a threshold or check failed.
    Failed,
}
