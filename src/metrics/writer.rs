//! The interval writer: once a second it merges the registry's shards, appends each series'
//! interval histogram to `histograms.hlog` and a row to `intervals.csv` (both on disk at once, so
//! a killed run keeps its data), and folds the interval into the run's cumulative data.
//!
//! Everything else that wants the intervals (live progress, the Prometheus endpoint, the run
//! log, abort-on-fail thresholds) plugs in from outside as an [`IntervalObserver`].

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::Registry;
use super::by_write::ByWrite;
use super::deflate::StoredDeflate;
use super::intervals::{IntervalCsv, IntervalRow};
use super::series::SeriesData;
use crate::vocab::{MetricKey, metric};

/// What an observer sees after each interval is on disk.
pub struct IntervalView<'a> {
    pub keys: &'a [MetricKey],
    /// This interval's data per series (indexed like `keys`).
    pub interval: &'a [SeriesData],
    /// The run's data so far, warm-up left out.
    pub cumulative: &'a [SeriesData],
    /// The interval's start and length, from the run's start.
    pub start: Duration,
    pub length: Duration,
    /// The last interval of the run.
    pub last: bool,
    /// The asynchronous series by the second of their write, so far (none in tests that do
    /// not care).
    pub by_write: Option<&'a ByWrite>,
}

/// Something fed every interval by the writer's thread. It must return quickly.
pub trait IntervalObserver: Send {
    fn interval(&mut self, view: &IntervalView<'_>);
}

/// The run's data at the end.
pub struct WriterOutput {
    pub keys: Vec<MetricKey>,
    pub cumulative: Vec<SeriesData>,
}

pub struct WriterConfig {
    /// The run's start: interval starts count from it.
    pub start: Instant,
    pub start_wall: SystemTime,
    pub interval: Duration,
    /// Intervals that start before this are written but left out of the run's totals.
    pub warmup: Duration,
    /// The longest an asynchronous observation can take from its write to its record: seconds
    /// of writes older than this are closed ([`ByWrite`]).
    pub by_write_horizon: Duration,
}

pub struct IntervalWriter {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<anyhow::Result<WriterOutput>>,
}

impl IntervalWriter {
    pub fn spawn(
        registry: Arc<Registry>,
        dir: &Path,
        config: WriterConfig,
        observers: Vec<Box<dyn IntervalObserver>>,
    ) -> anyhow::Result<IntervalWriter> {
        let hlog = File::create(dir.join("histograms.hlog")).context("cannot create histograms.hlog")?;
        let csv = IntervalCsv::create(&dir.join("intervals.csv"))?;
        let dir = dir.to_path_buf();
        let (stop, stopped) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("provbench-intervals".into())
            .spawn(move || run(registry, &dir, hlog, csv, config, observers, stopped))?;
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

/// The hlog's bytes not yet written to its file (the writer's thread alone uses it).
#[derive(Clone, Default)]
struct Pending(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Pending {
    fn write_to(&self, file: &mut File) -> anyhow::Result<()> {
        let mut bytes = self.0.borrow_mut();
        if !bytes.is_empty() {
            file.write_all(&bytes).context("cannot write histograms.hlog")?;
            bytes.clear();
        }
        Ok(())
    }
}

fn run(
    registry: Arc<Registry>,
    dir: &Path,
    mut hlog_file: File,
    mut csv: IntervalCsv,
    config: WriterConfig,
    mut observers: Vec<Box<dyn IntervalObserver>>,
    stopped: mpsc::Receiver<()>,
) -> anyhow::Result<WriterOutput> {
    let mut serializer = StoredDeflate::new();
    // The log writes each field of a line as a write of its own: they gather here, and each
    // interval's lines go to the file in one write.
    let pending = Pending::default();
    let mut sink = pending.clone();
    let mut hlog = IntervalLogWriterBuilder::new()
        .add_comment("provbench histograms: values in microseconds; Interval_Max in milliseconds")
        .with_start_time(config.start_wall)
        .with_base_time(config.start_wall)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut sink, &mut serializer)
        .map_err(|e| anyhow::anyhow!("cannot write histograms.hlog: {e}"))?;
    let mut cumulative: Vec<SeriesData> = Vec::new();
    let mut interval_start = Duration::ZERO;
    let mut by_write = ByWrite::new(config.start, config.start_wall, config.by_write_horizon);
    // Kept from one interval to the next: their histograms are reused, not made each second.
    let mut data: Vec<SeriesData> = Vec::new();
    let mut keys: Vec<MetricKey> = Vec::new();
    for n in 1u32.. {
        let boundary = config.start + config.interval * n;
        let wait = boundary.saturating_duration_since(Instant::now());
        let last = !matches!(stopped.recv_timeout(wait), Err(mpsc::RecvTimeoutError::Timeout));
        let now = config.start.elapsed();
        registry.take_interval_into(&mut data);
        if keys.len() != data.len() {
            keys = registry.keys();
        }
        let length = now.saturating_sub(interval_start);
        let timestamp = humantime::format_rfc3339_millis(config.start_wall + interval_start).to_string();
        cumulative.resize_with(data.len(), SeriesData::default);
        // Operations get a row every interval, even an empty one: a stall shows as zeros, not as
        // a gap a chart would bridge with a straight line.
        let wanted = |i: usize, d: &SeriesData| !d.is_empty() || keys[i].metric == metric::API_LATENCY;
        for (i, d) in data.iter().enumerate().filter(|(i, d)| wanted(*i, d)) {
            let h = d.histogram();
            if !h.is_empty() {
                hlog.write_histogram(h, interval_start, length, Tag::new(&keys[i].hlog_tag()))
                    .map_err(|e| anyhow::anyhow!("cannot write histograms.hlog: {e}"))?;
            }
            csv.write(&IntervalRow::new(
                interval_start.as_secs_f64(),
                timestamp.clone(),
                &keys[i],
                d,
            ))?;
            if interval_start >= config.warmup {
                cumulative[i].add(d);
            }
        }
        // Every interval is on disk before the next begins.
        pending.write_to(&mut hlog_file)?;
        csv.flush()?;
        by_write.add(&keys, registry.take_written());
        by_write.close(Instant::now(), last);
        if let Err(e) = by_write.write(dir) {
            // The charts then fall back to the time of observation; the run goes on.
            tracing::warn!("{e:#}");
        }
        let view = IntervalView {
            keys: &keys,
            interval: &data,
            cumulative: &cumulative,
            start: interval_start,
            length,
            last,
            by_write: Some(&by_write),
        };
        for o in &mut observers {
            o.interval(&view);
        }
        interval_start = now;
        if last {
            break;
        }
    }
    drop(hlog);
    pending.write_to(&mut hlog_file)?;
    hlog_file.flush()?;
    Ok(WriterOutput {
        keys: registry.keys(),
        cumulative,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: seconds without completions were missing from intervals.csv, so a stall was
    /// drawn as a straight line between its two sides.
    #[test]
    fn operations_get_a_row_every_interval_even_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::new());
        let op = registry.series(MetricKey::new(metric::API_LATENCY).tag("op", "create_user"));
        let probe = registry.series(MetricKey::new(metric::SYNC_LAG).tag("op", "create_user"));
        registry.record(op, 1000);
        registry.record(probe, 1000);
        let config = WriterConfig {
            start: Instant::now(),
            start_wall: SystemTime::now(),
            interval: Duration::from_millis(20),
            warmup: Duration::ZERO,
            by_write_horizon: Duration::from_secs(60),
        };
        let writer = IntervalWriter::spawn(registry, dir.path(), config, vec![]).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        writer.finish().unwrap();
        let (rows, _) = crate::metrics::intervals::read(&dir.path().join("intervals.csv")).unwrap();
        let ops: Vec<u64> = rows
            .iter()
            .filter(|r| r.metric == metric::API_LATENCY)
            .map(|r| r.count)
            .collect();
        assert!(
            ops.len() >= 3 && ops[0] == 1 && ops[1..].iter().all(|c| *c == 0),
            "{ops:?}"
        );
        let probes = rows.iter().filter(|r| r.metric == metric::SYNC_LAG).count();
        assert_eq!(probes, 1, "other series keep only the intervals with data");
    }
}
