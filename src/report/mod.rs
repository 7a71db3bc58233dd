//! What a run leaves for people and pipelines: `summary.json` (the contract every other report
//! reads) and the console summary table.
//!
//! # Layout
//! - [`summary`]: the `summary.json` document (schema version 1).
//! - [`console`]: the table printed at the end of a run.
//! - [`junit`]: `junit.xml`. [`markdown`]: `summary.md`.

pub mod console;
pub mod junit;
pub mod markdown;
pub mod summary;

/// Writes every report derived from the summary into `dir`.
pub fn write_all(s: &Summary, dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::write(dir.join("junit.xml"), junit::render(s)).context("cannot write junit.xml")?;
    std::fs::write(dir.join("summary.md"), markdown::render(s)).context("cannot write summary.md")?;
    Ok(())
}

pub use summary::Summary;
