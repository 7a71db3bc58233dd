//! `provbench merge DIR... --out DIR`: the shards of a run as one. Interval histograms are added
//! per tag and per aligned one-second interval (absolute time, so shards that started apart or
//! missed an interval still line up), counters are summed, and the summary, verdicts and reports
//! are rebuilt from the merged files exactly as for a single run. Percentiles are never averaged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::summary::{JourneyInfo, RunOutcome, Summary};
use crate::metrics::key::MetricKey;
use crate::metrics::series::new_histogram;

/// Per (key, second since the epoch): the merged histogram and counters.
#[derive(Default)]
pub struct Buckets {
    pub histograms: BTreeMap<(MetricKey, u64), Histogram<u64>>,
    /// (count, errors, timeouts, rate_limited)
    pub counters: BTreeMap<(MetricKey, u64), (u64, u64, u64, u64)>,
}

/// Adds one run's interval log into `b`, bucketed by absolute second.
pub fn add_hlog(b: &mut Buckets, bytes: &[u8], what: &str) -> anyhow::Result<()> {
    let mut base = Duration::ZERO;
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|e| anyhow::anyhow!("{what}: not an interval log: {e:?}"))? {
            LogEntry::BaseTime(t) => base = t,
            LogEntry::StartTime(t) if base.is_zero() => base = t,
            LogEntry::StartTime(_) => {}
            LogEntry::Interval(h) => {
                let Some(key) = h.tag().and_then(|t| MetricKey::from_hlog_tag(t.as_str())) else {
                    continue;
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .with_context(|| format!("{what}: bad base64 in {key}"))?;
                let hist: Histogram<u64> = deserializer
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| anyhow::anyhow!("{what}: bad histogram in {key}: {e:?}"))?;
                // Round to the second: shards' interval starts differ by milliseconds.
                let second = (base + h.start_timestamp()).as_secs_f64().round() as u64;
                b.histograms
                    .entry((key, second))
                    .or_insert_with(new_histogram)
                    .add(&hist)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
        }
    }
    Ok(())
}

/// Adds one run's `intervals.csv` counters into `b`.
pub fn add_csv(b: &mut Buckets, path: &Path) -> anyhow::Result<()> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    for row in reader.records() {
        let row = row?;
        let (Some(ts), Some(metric), Some(tags)) = (row.get(1), row.get(2), row.get(3)) else {
            continue;
        };
        let Ok(at) = humantime::parse_rfc3339(ts) else { continue };
        let second = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            .round() as u64;
        let text = if tags.is_empty() {
            metric.to_string()
        } else {
            format!("{metric}{{{tags}}}")
        };
        let Some(key) = MetricKey::from_hlog_tag(&text) else {
            continue;
        };
        let num = |i: usize| row.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let c = b.counters.entry((key, second)).or_default();
        c.0 += num(4);
        c.1 += num(5);
        c.2 += num(6);
        c.3 += num(7);
    }
    Ok(())
}

/// Writes the merged buckets as one run's `histograms.hlog` and `intervals.csv`.
pub fn write_buckets(b: &Buckets, out: &Path) -> anyhow::Result<()> {
    let seconds: Vec<u64> = b
        .histograms
        .keys()
        .map(|(_, s)| *s)
        .chain(b.counters.keys().map(|(_, s)| *s))
        .collect();
    let first = seconds.iter().copied().min().unwrap_or(0);
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(first);
    let mut file = std::fs::File::create(out.join("histograms.hlog"))?;
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("provbench histograms merged from shards: values in microseconds; Interval_Max in milliseconds")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut file, &mut serializer)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut by_second: BTreeMap<u64, Vec<&MetricKey>> = BTreeMap::new();
    for (key, s) in b.histograms.keys() {
        by_second.entry(*s).or_default().push(key);
    }
    for (s, keys) in &by_second {
        for key in keys {
            let h = &b.histograms[&((*key).clone(), *s)];
            let tag = key.hlog_tag();
            log.write_histogram(
                h,
                Duration::from_secs(s - first),
                Duration::from_secs(1),
                Tag::new(&tag),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    drop(log);
    let mut csv = csv::Writer::from_path(out.join("intervals.csv"))?;
    csv.write_record(crate::metrics::writer::CSV_HEADER)?;
    let mut rows: BTreeMap<(u64, MetricKey), (u64, u64, u64, u64)> = BTreeMap::new();
    for ((key, s), c) in &b.counters {
        rows.insert((*s, key.clone()), *c);
    }
    for (key, s) in b.histograms.keys() {
        rows.entry((*s, key.clone()))
            .or_insert_with(|| (b.histograms[&(key.clone(), *s)].len(), 0, 0, 0));
    }
    for ((s, key), (count, errors, timeouts, limited)) in rows {
        let h = b.histograms.get(&(key.clone(), s));
        let q = |p: f64| {
            h.filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(p).to_string())
                .unwrap_or_default()
        };
        let ts = humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_secs(s)).to_string();
        csv.write_record([
            format!("{:.3}", (s - first) as f64),
            ts,
            key.metric.clone(),
            key.tags_text(),
            count.to_string(),
            errors.to_string(),
            timeouts.to_string(),
            limited.to_string(),
            q(0.5),
            q(0.99),
            h.filter(|h| !h.is_empty())
                .map(|h| h.max().to_string())
                .unwrap_or_default(),
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// Merges the shard folders `dirs` into `out` and returns the merged summary.
pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<Summary> {
    anyhow::ensure!(!dirs.is_empty(), "give the shards' results folders");
    std::fs::create_dir_all(out)?;
    let mut buckets = Buckets::default();
    let mut summaries = Vec::new();
    for d in dirs {
        let path = d.join("histograms.hlog");
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        add_hlog(&mut buckets, &bytes, &path.display().to_string())?;
        add_csv(&mut buckets, &d.join("intervals.csv"))?;
        summaries.push(Summary::read(d)?);
    }
    write_buckets(&buckets, out)?;
    if let Ok(w) = std::fs::read_to_string(dirs[0].join("workload.toml")) {
        std::fs::write(out.join("workload.toml"), w)?;
    }
    let mut s = summaries[0].clone();
    s.shard = None;
    let ids: std::collections::BTreeSet<&str> = summaries.iter().map(|x| x.run_id.as_str()).collect();
    s.run_id = ids.into_iter().collect::<Vec<_>>().join("+");
    s.started_at = summaries.iter().map(|x| x.started_at.clone()).min().unwrap_or_default();
    s.ended_at = summaries.iter().filter_map(|x| x.ended_at.clone()).max();
    s.outcome = summaries
        .iter()
        .map(|x| x.outcome)
        .fold(RunOutcome::Passed, |a, b| match (a, b) {
            (RunOutcome::Aborted, _) | (_, RunOutcome::Aborted) => RunOutcome::Aborted,
            (RunOutcome::Running, _) | (_, RunOutcome::Running) => RunOutcome::Running,
            (RunOutcome::Failed, _) | (_, RunOutcome::Failed) => RunOutcome::Failed,
            _ => RunOutcome::Passed,
        });
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
    let mut checks: BTreeMap<String, crate::checks::CheckReport> = BTreeMap::new();
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
                e.error = (e.passed + e.failed == 0).then(|| format!("check `{}` was declared but never ran", c.name));
            }
        }
    }
    s.checks = checks.into_values().collect();
    s.cleanup = None;
    s.probes = None;
    s.notes = vec![format!(
        "merged from {} shards: {}",
        dirs.len(),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    // Metrics and verdicts come from the merged files, as for any run.
    super::from_files(&mut s, out)?;
    if s.outcome == RunOutcome::Passed && s.thresholds.iter().any(|v| !v.passed) {
        s.outcome = RunOutcome::Failed;
    }
    s.write(out)?;
    super::write_all(&s, out)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(start: SystemTime, intervals: &[(u64, &[u64])]) -> Vec<u8> {
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
        out
    }

    #[test]
    fn misaligned_and_missing_intervals_line_up_by_absolute_time() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // Shard A starts at t0 with intervals 0, 1, 2; shard B starts 1.2 s later and misses its
        // second interval: its intervals fall on t0+1.2 ≈ second 1 and t0+3.2 ≈ second 3.
        let a = log(t0, &[(0, &[100]), (1, &[200]), (2, &[300])]);
        let b = log(t0 + Duration::from_millis(1200), &[(0, &[1000, 1000]), (2, &[4000])]);
        let mut buckets = Buckets::default();
        add_hlog(&mut buckets, &a, "a").unwrap();
        add_hlog(&mut buckets, &b, "b").unwrap();
        let key = MetricKey::new("api_latency").tag("op", "x");
        let second = |s: u64| 1_800_000_000 + s;
        let counts: Vec<(u64, u64)> = (0..4)
            .map(|s| {
                (
                    s,
                    buckets.histograms.get(&(key.clone(), second(s))).map_or(0, |h| h.len()),
                )
            })
            .collect();
        assert_eq!(counts, [(0, 1), (1, 3), (2, 1), (3, 1)]);
        // Nothing is lost or double counted overall.
        let total: u64 = buckets.histograms.values().map(|h| h.len()).sum();
        assert_eq!(total, 6);
    }
}
