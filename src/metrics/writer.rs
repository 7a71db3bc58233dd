//! The interval writer: once a second it merges the registry's shards, appends each series'
//! interval histogram to `histograms.hlog` and a row to `intervals.csv` (both flushed at once, so
//! a killed run keeps its data), folds the interval into the run's cumulative data, and shows
//! live progress (an indicatif line on a terminal, plain lines otherwise).

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::key::MetricKey;
use super::series::SeriesData;
use super::summary::format_micros;
use super::{Registry, series::new_histogram};
use crate::thresholds::ThresholdSpec;

/// The columns of `intervals.csv`.
pub const CSV_HEADER: [&str; 11] = [
    "interval_start_s",
    "timestamp",
    "metric",
    "tags",
    "count",
    "errors",
    "timeouts",
    "rate_limited",
    "p50_us",
    "p99_us",
    "max_us",
];

/// One interval's figures for one series, kept for the reports.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IntervalRow {
    pub start_s: f64,
    pub key: MetricKey,
    pub count: u64,
    pub errors: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
}

pub struct WriterOutput {
    pub keys: Vec<MetricKey>,
    pub cumulative: Vec<SeriesData>,
    pub intervals: Vec<IntervalRow>,
}

/// What the progress line shows beyond the metrics: a total to count towards, and a label.
#[derive(Clone)]
pub struct ProgressSpec {
    pub total: Option<Duration>,
    pub enabled: bool,
}

/// Thresholds with `abort_on_fail`, judged on the cumulative data after every interval; the
/// first one lost (past its delay) stops the load through `stop`.
#[derive(Clone)]
pub struct AbortWatch {
    pub run_log: Option<Arc<crate::report::runlog::RunLog>>,
    specs: Arc<Vec<ThresholdSpec>>,
    stop: tokio_util::sync::CancellationToken,
    fired: Arc<parking_lot::Mutex<Option<(String, Duration)>>>,
}

impl AbortWatch {
    pub fn new(specs: Vec<ThresholdSpec>, stop: tokio_util::sync::CancellationToken) -> Self {
        Self {
            run_log: None,
            specs: Arc::new(specs),
            stop,
            fired: Arc::default(),
        }
    }

    /// The threshold that stopped the run, and when.
    pub fn fired(&self) -> Option<(String, Duration)> {
        self.fired.lock().clone()
    }

    fn judge(&self, keys: &[MetricKey], series: &[SeriesData], elapsed: Duration) {
        if self.specs.is_empty() || self.fired.lock().is_some() {
            return;
        }
        let load = crate::report::summary::LoadInfo::default();
        let data = crate::thresholds::Data {
            keys,
            series,
            load: &load,
            checks: &[],
        };
        for spec in self.specs.iter().filter(|s| elapsed >= s.delay) {
            let v = crate::thresholds::evaluate(spec, &data);
            // No data yet is not a loss: the run may still produce it.
            if v.error.is_none() && !v.passed {
                tracing::warn!(threshold = %spec.expression, observed = %v.observed_text, "threshold lost: stopping the load");
                if let Some(log) = &self.run_log {
                    log.event("threshold_lost", serde_json::json!({"expression": spec.expression, "observed": v.observed_text, "t_s": elapsed.as_secs_f64()}));
                }
                *self.fired.lock() = Some((spec.expression.clone(), elapsed));
                self.stop.cancel();
                return;
            }
        }
    }
}

/// What else the writer feeds each interval.
#[derive(Default, Clone)]
pub struct WriterHooks {
    pub abort: Option<AbortWatch>,
    pub exposition: Option<super::exposition::Exposition>,
    pub run_log: Option<Arc<crate::report::runlog::RunLog>>,
    /// Intervals that start before this are written but left out of the run's totals.
    pub warmup: Duration,
}

pub struct IntervalWriter {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<anyhow::Result<WriterOutput>>,
}

impl IntervalWriter {
    pub fn spawn(
        registry: Arc<Registry>,
        dir: &Path,
        start: Instant,
        start_wall: SystemTime,
        interval: Duration,
        progress: ProgressSpec,
        hooks: WriterHooks,
    ) -> anyhow::Result<IntervalWriter> {
        let hlog = File::create(dir.join("histograms.hlog")).context("cannot create histograms.hlog")?;
        let csv = File::create(dir.join("intervals.csv")).context("cannot create intervals.csv")?;
        let (stop, stopped) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("provbench-intervals".into())
            .spawn(move || {
                run(
                    registry, hlog, csv, start, start_wall, interval, progress, hooks, stopped,
                )
            })?;
        Ok(IntervalWriter { stop, handle })
    }

    /// Writes the last (partial) interval and returns the run's data.
    pub fn finish(self) -> anyhow::Result<WriterOutput> {
        let _ = self.stop.send(());
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the interval writer panicked"))?
    }
}

struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plain_every: u64,
    spec: ProgressSpec,
    all_ops: hdrhistogram::Histogram<u64>,
    ops: u64,
    errors: u64,
}

impl Progress {
    fn new(spec: ProgressSpec) -> Self {
        let bar = (spec.enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(spec.total.map_or(0, |t| t.as_secs().max(1)));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        Self {
            bar,
            plain_every: 5,
            spec,
            all_ops: new_histogram(),
            ops: 0,
            errors: 0,
        }
    }

    fn update(&mut self, elapsed: Duration, interval_ops: u64, interval_len: Duration) {
        if !self.spec.enabled {
            return;
        }
        let total = self
            .spec
            .total
            .map(|t| format!("/{}s", t.as_secs()))
            .unwrap_or_default();
        let line = format!(
            "{:>4}s{total}  {} ops  {:.1} ops/s  {} errors  p99 {}",
            elapsed.as_secs(),
            self.ops,
            interval_ops as f64 / interval_len.as_secs_f64().max(1e-3),
            self.errors,
            format_micros((!self.all_ops.is_empty()).then(|| self.all_ops.value_at_quantile(0.99)))
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None if elapsed.as_secs().is_multiple_of(self.plain_every) && elapsed.as_secs() > 0 => {
                eprintln!("progress: {line}");
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    registry: Arc<Registry>,
    mut hlog_file: File,
    csv_file: File,
    start: Instant,
    start_wall: SystemTime,
    interval: Duration,
    progress: ProgressSpec,
    hooks: WriterHooks,
    stopped: mpsc::Receiver<()>,
) -> anyhow::Result<WriterOutput> {
    let mut serializer = V2DeflateSerializer::new();
    let mut hlog = IntervalLogWriterBuilder::new()
        .add_comment("provbench histograms: values in microseconds; Interval_Max in milliseconds")
        .with_start_time(start_wall)
        .with_base_time(start_wall)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut hlog_file, &mut serializer)
        .map_err(|e| anyhow::anyhow!("cannot write histograms.hlog: {e}"))?;
    let mut csv = csv::Writer::from_writer(csv_file);
    csv.write_record(CSV_HEADER)?;
    csv.flush()?;
    let mut cumulative: Vec<SeriesData> = Vec::new();
    let mut intervals = Vec::new();
    let mut progress = Progress::new(progress);
    let mut interval_start = Duration::ZERO;
    let mut n = 1u32;
    loop {
        let boundary = start + interval * n;
        let wait = boundary.saturating_duration_since(Instant::now());
        let last = match stopped.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        let now = start.elapsed();
        let data = registry.take_interval();
        let keys = registry.keys();
        let length = now.saturating_sub(interval_start);
        let timestamp = humantime::format_rfc3339_millis(start_wall + interval_start).to_string();
        let mut interval_ops = 0;
        cumulative.resize_with(data.len(), SeriesData::default);
        for (i, d) in data.iter().enumerate() {
            if d.is_empty() {
                continue;
            }
            let key = &keys[i];
            let h = d.histogram();
            if !h.is_empty() {
                let tag = key.hlog_tag();
                hlog.write_histogram(&*h, interval_start, length, Tag::new(&tag))
                    .map_err(|e| anyhow::anyhow!("cannot write histograms.hlog: {e}"))?;
            }
            let q = |p: f64| (!h.is_empty()).then(|| h.value_at_quantile(p));
            let row = IntervalRow {
                start_s: interval_start.as_secs_f64(),
                key: key.clone(),
                count: d.count(),
                errors: d.errors_total(),
                p50_us: q(0.5),
                p99_us: q(0.99),
                max_us: (!h.is_empty()).then(|| h.max()),
            };
            let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
            csv.write_record([
                format!("{:.3}", row.start_s),
                timestamp.clone(),
                key.metric.clone(),
                key.tags_text(),
                row.count.to_string(),
                row.errors.to_string(),
                d.errors[super::series::ErrorKind::Timeout as usize].to_string(),
                d.rate_limited.to_string(),
                opt(row.p50_us),
                opt(row.p99_us),
                opt(row.max_us),
            ])?;
            if key.metric == "api_latency" {
                interval_ops += row.count;
                progress.ops += row.count;
                progress.errors += row.errors;
                if !h.is_empty() {
                    progress.all_ops.add(&*h).ok();
                }
            }
            intervals.push(row);
            if interval_start >= hooks.warmup {
                cumulative[i].add(d);
            }
        }
        // The hlog writes straight to the file (no buffer): every interval is on disk now.
        csv.flush()?;
        if let Some(a) = &hooks.abort {
            a.judge(&keys, &cumulative, now);
        }
        if let Some(e) = &hooks.exposition {
            *e.write() = super::exposition::render(&keys, &cumulative);
        }
        if let Some(log) = &hooks.run_log {
            let mut by_reason = serde_json::Map::new();
            for (i, d) in data.iter().enumerate() {
                for kind in super::series::ErrorKind::ALL {
                    let n = d.errors[kind as usize];
                    if n > 0 && keys[i].metric == "api_latency" {
                        let entry = by_reason
                            .entry(format!("{}:{}", keys[i].get("op").unwrap_or("-"), kind.name()))
                            .or_insert(0.into());
                        *entry = (entry.as_u64().unwrap_or(0) + n).into();
                    }
                }
            }
            if !by_reason.is_empty() {
                log.event(
                    "errors",
                    serde_json::json!({"t_s": interval_start.as_secs_f64(), "by_op_and_reason": by_reason}),
                );
            }
        }
        progress.update(now, interval_ops, length);
        interval_start = now;
        n += 1;
        if last {
            break;
        }
    }
    progress.finish();
    drop(hlog);
    hlog_file.flush()?;
    Ok(WriterOutput {
        keys: registry.keys(),
        cumulative,
        intervals,
    })
}
