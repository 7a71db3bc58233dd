//! Judging a results folder again from its files: the metrics from `histograms.hlog` and
//! `intervals.csv`, the verdicts from the thresholds `summary.json` declares, the outcome from
//! the one settling function. `provbench report` uses it for a run that never finished, and
//! `merge` for the merged files.

use std::path::Path;
use std::time::Duration;

use crate::metrics::hlog::{RunData, read_run};
use crate::metrics::summary::summarize_all;
use crate::results::{RunOutcome, Summary};
use crate::thresholds::{Data, judge_declared};

/// Sets `s.metrics`, `s.thresholds` and `s.outcome` from `dir`'s files and `s`'s declared
/// thresholds; returns the data they were judged on.
pub fn judge_files(s: &mut Summary, dir: &Path) -> anyhow::Result<RunData> {
    let data = read_run(dir)?;
    s.metrics = summarize_all(&data.keys, &data.series);
    // A schema-1 summary declared nothing: its verdicts are all there is to go on.
    if !s.declared_thresholds.is_empty() || s.thresholds.is_empty() {
        let judged = Data {
            keys: &data.keys,
            series: &data.series,
            load: &s.load,
            checks: &s.checks,
        };
        s.thresholds = judge_declared(&s.declared_thresholds, &judged);
    }
    s.settle();
    Ok(data)
}

/// Re-reads a results folder. A finished run's summary stands as written; one that never
/// finished (still `running`) is rebuilt from its files, its outcome `killed`, and written back.
pub fn rebuild(dir: &Path) -> anyhow::Result<Summary> {
    let mut s = Summary::read(dir)?;
    match s.outcome {
        RunOutcome::Running => {}
        RunOutcome::Cleaning => return killed_in_cleanup(s, dir),
        _ => return Ok(s),
    }
    s.stop_reason = None;
    let data = judge_files(&mut s, dir)?;
    let secs = data.duration.max(Duration::from_millis(1)).as_secs_f64();
    s.load.load_duration_s = (secs * 1000.0).round() / 1000.0;
    s.load.operations_per_second = s.operation_count() as f64 / secs;
    // Journeys are counted at the end of a run; a killed one never got there.
    s.load.achieved_rate = 0.0;
    let command = cleanup_command(&s);
    s.notes.push(format!(
        "rebuilt from histograms.hlog and intervals.csv: the run was killed after {secs:.1}s, before it finished; journey counts, checks and cleanup are unknown (`{command}` removes its users)"
    ));
    if data.cut_short {
        s.notes
            .push("the last line of histograms.hlog or intervals.csv was cut short by the kill and left out".into());
    }
    s.write(dir)?;
    Ok(s)
}

/// What removes a run's users: as the run wrote it, else by run id alone.
fn cleanup_command(s: &Summary) -> String {
    s.cleanup
        .as_ref()
        .and_then(|c| c.command.clone())
        .unwrap_or_else(|| format!("provbench cleanup --run-id {}", s.run_id))
}

/// A run killed during its cleanup: its verdicts were judged, but what it left is unknown, so it
/// is not passed whatever they say (the settling function sees the cleanup still pending).
fn killed_in_cleanup(mut s: Summary, dir: &Path) -> anyhow::Result<Summary> {
    let command = cleanup_command(&s);
    s.settle();
    s.notes.push(format!(
        "the run was killed during its cleanup: what it deleted and left is unknown; `{command}` removes its users"
    ));
    s.write(dir)?;
    Ok(s)
}
