//! What a run leaves for people and pipelines: `summary.json` (the contract every other report
//! reads) and the console summary table.
//!
//! # Layout
//! - [`summary`]: the `summary.json` document (schema version 1).
//! - [`console`]: the table printed at the end of a run.

pub mod console;
pub mod summary;

pub use summary::Summary;
