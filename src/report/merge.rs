//! `provbench merge DIR... --out DIR`: the shards of a run as one. Interval histograms and
//! counters are added per series and per aligned one-second interval (absolute time, so shards
//! that started apart or missed an interval still line up), and the summary, verdicts and
//! reports are judged from the merged files exactly as for a single run, on the thresholds the
//! shards' summaries declare. Percentiles are never averaged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::metrics::SeriesData;
use crate::metrics::hlog::read_hlog;
use crate::metrics::intervals::{self, IntervalCsv, IntervalRow};
use crate::results::{CheckReport, CleanupReport, DeclaredThreshold, JourneyInfo, StopReason, Summary};
use crate::vocab::MetricKey;

/// Per (second since the epoch, series): the merged data.
#[derive(Default)]
pub struct Buckets(pub BTreeMap<(u64, MetricKey), SeriesData>);

fn epoch_second(t: SystemTime) -> u64 {
    // Round to the second: shards' interval starts differ by milliseconds.
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        .round() as u64
}

impl Buckets {
    /// Adds one run's files, bucketed by absolute second.
    pub fn add_run(&mut self, dir: &Path) -> anyhow::Result<()> {
        let hlog = read_hlog(&dir.join("histograms.hlog"))?;
        for i in hlog.intervals {
            let second = epoch_second(hlog.base + i.start);
            self.0.entry((second, i.key)).or_default().add_histogram(&i.histogram);
        }
        let (rows, _) = intervals::read(&dir.join("intervals.csv"))?;
        for row in rows {
            let (Some(key), Ok(at)) = (row.key(), humantime::parse_rfc3339(&row.timestamp)) else {
                continue;
            };
            self.0.entry((epoch_second(at), key)).or_default().add(&row.counters());
        }
        Ok(())
    }

    /// Writes the buckets as one run's `histograms.hlog` and `intervals.csv`.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        let first = self.0.keys().map(|(s, _)| *s).min().unwrap_or(0);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(first);
        let mut file = std::fs::File::create(out.join("histograms.hlog"))?;
        let mut serializer = V2DeflateSerializer::new();
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment(
                "provbench histograms merged from shards: values in microseconds; Interval_Max in milliseconds",
            )
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut file, &mut serializer)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut csv = IntervalCsv::create(&out.join("intervals.csv"))?;
        for ((second, key), d) in &self.0 {
            let offset = Duration::from_secs(second - first);
            let h = d.histogram();
            if !h.is_empty() {
                log.write_histogram(h, offset, Duration::from_secs(1), Tag::new(&key.hlog_tag()))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let ts = humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_secs(*second));
            csv.write(&IntervalRow::new(offset.as_secs_f64(), ts.to_string(), key, d))?;
        }
        csv.flush()?;
        Ok(())
    }
}

/// Merges the shard folders `dirs` into `out` and returns the merged summary.
pub fn merge(dirs: &[PathBuf], out: &Path, formats: &[super::Format]) -> anyhow::Result<Summary> {
    anyhow::ensure!(!dirs.is_empty(), "give the shards' results folders");
    let mut buckets = Buckets::default();
    let mut summaries = Vec::new();
    for d in dirs {
        summaries.push(Summary::read(d)?);
        buckets
            .add_run(d)
            .with_context(|| format!("cannot merge {}", d.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    buckets.write(out)?;
    if let Ok(w) = std::fs::read_to_string(dirs[0].join("workload.toml")) {
        std::fs::write(out.join("workload.toml"), w)?;
    }
    let mut s = combine(&summaries);
    s.notes = vec![format!(
        "merged from {} shards: {}",
        dirs.len(),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    // What a shard that kept its users says of them (and of the command that removes them).
    s.notes.extend(
        summaries
            .iter()
            .flat_map(|x| &x.notes)
            .filter(|n| n.starts_with(crate::results::USERS_KEPT))
            .cloned(),
    );
    // Metrics, verdicts and outcome come from the merged files, as for any run.
    super::rebuild::judge_files(&mut s, out)?;
    s.write(out)?;
    super::write_all(&s, out, formats)?;
    Ok(s)
}

/// The shards' summaries as one: identity, load figures summed, journeys and checks added,
/// every declared threshold once, and the stop reason that says least for the run.
fn combine(summaries: &[Summary]) -> Summary {
    let mut s = summaries[0].clone();
    s.shard = None;
    let ids: std::collections::BTreeSet<&str> = summaries.iter().map(|x| x.run_id.as_str()).collect();
    s.run_id = ids.into_iter().collect::<Vec<_>>().join("+");
    s.started_at = summaries.iter().map(|x| x.started_at.clone()).min().unwrap_or_default();
    s.ended_at = summaries.iter().filter_map(|x| x.ended_at.clone()).max();
    s.stop_reason = combined_stop(summaries);
    s.declared_thresholds = Vec::new();
    for d in summaries.iter().flat_map(|x| &x.declared_thresholds) {
        if !s
            .declared_thresholds
            .iter()
            .any(|e: &DeclaredThreshold| e.expression == d.expression)
        {
            s.declared_thresholds.push(d.clone());
        }
    }
    // Verdicts are judged anew from the declarations (schema-1 shards: shard 0's stand).
    if !s.declared_thresholds.is_empty() {
        s.thresholds.clear();
    }
    // Failures: counts add up per operation and reason, the first few details are kept.
    let mut failures: BTreeMap<(String, String), crate::results::FailureSample> = BTreeMap::new();
    for f in summaries.iter().flat_map(|x| &x.failures) {
        let e = failures
            .entry((f.op.clone(), f.reason.clone()))
            .or_insert_with(|| crate::results::FailureSample {
                count: 0,
                examples: Vec::new(),
                ..f.clone()
            });
        e.count += f.count;
        for x in &f.examples {
            if e.examples.len() < 3 && !e.examples.contains(x) {
                e.examples.push(x.clone());
            }
        }
    }
    s.failures = failures.into_values().collect();
    let l = &mut s.load;
    l.admins = summaries.iter().map(|x| x.load.admins).sum();
    l.achieved_rate = summaries.iter().map(|x| x.load.achieved_rate).sum();
    l.operations_per_second = summaries.iter().map(|x| x.load.operations_per_second).sum();
    l.load_duration_s = summaries.iter().map(|x| x.load.load_duration_s).fold(0.0, f64::max);
    l.started = summaries.iter().map(|x| x.load.started).sum();
    l.late_starts = summaries.iter().map(|x| x.load.late_starts).sum();
    l.dropped_arrivals = summaries.iter().map(|x| x.load.dropped_arrivals).sum();
    l.target_rate = summaries.iter().map(|x| x.load.target_rate).sum();
    l.peak_rate = summaries.iter().map(|x| x.load.peak_rate).sum();
    l.scheduled = summaries.iter().map(|x| x.load.scheduled).sum();
    l.description = format!(
        "{} (merged from {} shards)",
        summaries[0].load.description,
        summaries.len()
    );
    let mut journeys: BTreeMap<String, JourneyInfo> = BTreeMap::new();
    for j in summaries.iter().flat_map(|x| &x.journeys) {
        let e = journeys.entry(j.name.clone()).or_insert_with(|| JourneyInfo {
            completed: 0,
            failed: 0,
            stopped: 0,
            ..j.clone()
        });
        e.completed += j.completed;
        e.failed += j.failed;
        e.stopped += j.stopped;
    }
    s.journeys = journeys.into_values().collect();
    s.checks = combined_checks(summaries);
    s.check_cost = combined_check_cost(summaries);
    s.cleanup = combined_cleanup(summaries);
    s.probes = None;
    s
}

/// Every shard's cleanup, added up: one shard that left users (or never finished cleaning)
/// keeps the merged run from passing.
fn combined_cleanup(summaries: &[Summary]) -> Option<CleanupReport> {
    let reports: Vec<&CleanupReport> = summaries.iter().filter_map(|x| x.cleanup.as_ref()).collect();
    let first = reports.first()?;
    let mut c = CleanupReport {
        gone_with_target: reports.iter().all(|r| r.gone_with_target),
        command: first.command.clone(),
        ..CleanupReport::default()
    };
    for r in &reports {
        c.add_counts(r);
        // Each shard's report is closed: its left counts stand as they are.
        c.failed += r.failed;
        c.unverified += r.unverified;
        c.pending |= r.pending;
        c.duration_ms = c.duration_ms.max(r.duration_ms);
        c.left.extend(r.left.iter().cloned());
        c.unsearchable.extend(r.unsearchable.iter().cloned());
        if r.incomplete() && c.command.is_none() {
            c.command = r.command.clone();
        }
    }
    // A shard that kept its users (`--keep-users`) has no cleanup: the others' counts say
    // nothing of what it left, so the merged cleanup is not complete.
    for x in summaries.iter().filter(|x| x.cleanup.is_none()) {
        c.unsearchable.push(format!(
            "the users of shard {}, which kept them (--keep-users), were not looked for",
            x.run_id
        ));
        if c.command.is_none() {
            c.command = Some(format!("provbench cleanup --run-id {}", x.run_id));
        }
    }
    c.left.truncate(CleanupReport::LISTED);
    Some(c)
}

/// A shard that never finished makes the merge unfinished; otherwise an interrupted, failed or
/// aborted shard speaks for the whole run.
fn combined_stop(summaries: &[Summary]) -> Option<StopReason> {
    let reasons: Vec<Option<&StopReason>> = summaries.iter().map(|x| x.stop_reason.as_ref()).collect();
    if reasons.iter().any(Option::is_none) {
        return None;
    }
    let rank = |r: &StopReason| match r {
        StopReason::Failed { .. } => 0,
        StopReason::Signal => 1,
        StopReason::ThresholdLost { .. } => 2,
        StopReason::Deadline | StopReason::ScheduleEnd => 3,
    };
    reasons.into_iter().flatten().min_by_key(|r| rank(r)).cloned()
}

/// The shards' check requests summed; their share of everything the shards sent (each shard's
/// total read back from its own share).
fn combined_check_cost(summaries: &[Summary]) -> Option<crate::results::CheckCost> {
    let costs: Vec<_> = summaries.iter().filter_map(|s| s.check_cost.as_ref()).collect();
    if costs.is_empty() {
        return None;
    }
    let requests: u64 = costs.iter().map(|c| c.requests).sum();
    let all: f64 = costs
        .iter()
        .filter(|c| c.share_of_requests > 0.0)
        .map(|c| c.requests as f64 / c.share_of_requests)
        .sum();
    Some(crate::results::CheckCost {
        requests,
        share_of_requests: if all > 0.0 { requests as f64 / all } else { 0.0 },
    })
}

fn combined_checks(summaries: &[Summary]) -> Vec<CheckReport> {
    let mut checks: BTreeMap<String, CheckReport> = BTreeMap::new();
    for c in summaries.iter().flat_map(|x| &x.checks) {
        match checks.get_mut(&c.name) {
            None => {
                checks.insert(c.name.clone(), c.clone());
            }
            Some(e) => {
                e.passed += c.passed;
                e.failed += c.failed;
                e.skipped += c.skipped;
                e.examples.extend(c.examples.iter().cloned());
                e.examples.truncate(5);
                for n in &c.notes {
                    if e.notes.len() < 5 && !e.notes.contains(n) {
                        e.notes.push(n.clone());
                    }
                }
                e.error = (e.passed + e.failed == 0).then(|| format!("check `{}` was declared but never ran", c.name));
            }
        }
    }
    checks.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::series::new_histogram;

    fn run_dir(dir: &Path, start: SystemTime, intervals: &[(u64, &[u64])]) {
        std::fs::create_dir_all(dir).unwrap();
        let mut out = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let mut w = IntervalLogWriterBuilder::new()
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut ser)
            .unwrap();
        for (offset, values) in intervals {
            let mut h = new_histogram();
            for v in *values {
                h.record(*v).unwrap();
            }
            w.write_histogram(
                &h,
                Duration::from_secs(*offset),
                Duration::from_secs(1),
                Tag::new("api_latency{op=x}"),
            )
            .unwrap();
        }
        drop(w);
        std::fs::write(dir.join("histograms.hlog"), out).unwrap();
        IntervalCsv::create(&dir.join("intervals.csv")).unwrap();
    }

    #[test]
    fn misaligned_and_missing_intervals_line_up_by_absolute_time() {
        let tmp = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // Shard A starts at t0 with intervals 0, 1, 2; shard B starts 1.2 s later and misses its
        // second interval: its intervals fall on t0+1.2 ≈ second 1 and t0+3.2 ≈ second 3.
        run_dir(&tmp.path().join("a"), t0, &[(0, &[100]), (1, &[200]), (2, &[300])]);
        run_dir(
            &tmp.path().join("b"),
            t0 + Duration::from_millis(1200),
            &[(0, &[1000, 1000]), (2, &[4000])],
        );
        let mut buckets = Buckets::default();
        buckets.add_run(&tmp.path().join("a")).unwrap();
        buckets.add_run(&tmp.path().join("b")).unwrap();
        let key = MetricKey::new("api_latency").tag("op", "x");
        let counts: Vec<(u64, u64)> = (0..4)
            .map(|s| {
                let d = buckets.0.get(&(1_800_000_000 + s, key.clone()));
                (s, d.map_or(0, |d| d.count()))
            })
            .collect();
        assert_eq!(counts, [(0, 1), (1, 3), (2, 1), (3, 1)]);
        // Nothing is lost or double counted overall.
        let total: u64 = buckets.0.values().map(|d| d.count()).sum();
        assert_eq!(total, 6);
    }
}
