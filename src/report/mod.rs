//! What a run leaves for people and pipelines: `summary.json` (the contract every other report
//! reads) and the console summary table.
//!
//! # Layout
//! - [`summary`]: the `summary.json` document (schema version 1).
//! - [`console`]: the table printed at the end of a run.
//! - [`junit`]: `junit.xml`. [`markdown`]: `summary.md`. [`html`]: `report.html`.
//! - [`compare`]: baseline comparisons. [`runlog`]: `run.log`, JSON lines as the run goes.

pub mod compare;
pub mod console;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod runlog;
pub mod summary;

/// Writes every report derived from the summary into `dir`.
pub fn write_all(s: &Summary, dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::write(dir.join("junit.xml"), junit::render(s)).context("cannot write junit.xml")?;
    std::fs::write(dir.join("summary.md"), markdown::render(s)).context("cannot write summary.md")?;
    let workload = std::fs::read_to_string(dir.join("workload.toml")).unwrap_or_default();
    let page = html::render(s, &html::read_intervals(dir), &workload);
    std::fs::write(dir.join("report.html"), page).context("cannot write report.html")?;
    Ok(())
}

pub use summary::Summary;

/// Sets `s.metrics` from `dir`'s `histograms.hlog` and `intervals.csv`, and `s.thresholds` from
/// its `workload.toml` judged on them (when the workload still loads).
pub fn from_files(s: &mut Summary, dir: &std::path::Path) -> anyhow::Result<()> {
    let data = crate::metrics::hlog::read_run(dir)?;
    s.metrics = data
        .keys
        .iter()
        .zip(&data.series)
        .map(|(k, d)| crate::metrics::summary::MetricSummary::new(k, d))
        .collect();
    if let Ok(w) = crate::workload::Workload::load(&dir.join("workload.toml"), &[]) {
        let d = crate::thresholds::Data {
            keys: &data.keys,
            series: &data.series,
            load: &s.load,
            checks: &s.checks,
        };
        s.thresholds = crate::thresholds::judge_all(&w.thresholds, &d);
    }
    Ok(())
}

/// Re-reads a results folder: its summary, and when the run did not finish (or the summary has
/// no metrics) the metrics and thresholds rebuilt from `histograms.hlog` and `intervals.csv`.
pub fn rebuild(dir: &std::path::Path) -> anyhow::Result<Summary> {
    let mut s = Summary::read(dir)?;
    if s.outcome != summary::RunOutcome::Running && !s.metrics.is_empty() {
        return Ok(s);
    }
    from_files(&mut s, dir)?;
    s.notes
        .push("rebuilt from histograms.hlog and intervals.csv: the run did not finish".into());
    Ok(s)
}

#[cfg(test)]
mod tests;
