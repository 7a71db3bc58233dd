//! Live progress while a run goes: an indicatif line on a terminal, a plain line every few
//! seconds otherwise, and with JSON logs (`--log-format json`) an `info` event every few seconds
//! with the figures as fields (never a bar nor plain text among JSON lines). An
//! [`IntervalObserver`] of the interval writer.

use std::io::IsTerminal;
use std::time::Duration;

use super::series::new_histogram;
use super::writer::{IntervalObserver, IntervalView};
use crate::results::format_micros;
use crate::vocab::metric;

pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// Seconds between plain lines (no terminal).
    plain_every: u64,
    /// The planned length, when known.
    total: Option<Duration>,
    all_ops: hdrhistogram::Histogram<u64>,
    ops: u64,
    errors: u64,
    /// The second last reported (the last interval may end on the same second as the one
    /// before it: reported once).
    reported: u64,
}

impl Progress {
    pub fn new(total: Option<Duration>) -> Self {
        let json = crate::redact::stderr_is_json();
        let bar = (std::io::stderr().is_terminal() && !json).then(|| {
            let bar = indicatif::ProgressBar::new(total.map_or(0, |t| t.as_secs().max(1)));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        Self {
            bar,
            plain_every: 5,
            total,
            all_ops: new_histogram(),
            ops: 0,
            errors: 0,
            reported: 0,
        }
    }
}

impl IntervalObserver for Progress {
    fn interval(&mut self, view: &IntervalView<'_>) {
        let mut interval_ops = 0;
        for (k, d) in view.keys.iter().zip(view.interval) {
            if k.metric == metric::API_LATENCY {
                interval_ops += d.count();
                self.ops += d.count();
                self.errors += d.errors_total();
                self.all_ops.add(d.histogram()).ok();
            }
        }
        let elapsed = view.start + view.length;
        let ops_per_s = interval_ops as f64 / view.length.as_secs_f64().max(1e-3);
        let p99 = (!self.all_ops.is_empty()).then(|| self.all_ops.value_at_quantile(0.99));
        let due = elapsed.as_secs().is_multiple_of(self.plain_every) && elapsed.as_secs() > self.reported;
        if due {
            self.reported = elapsed.as_secs();
        }
        if self.bar.is_none() && crate::redact::stderr_is_json() {
            if due {
                tracing::info!(
                    elapsed_s = elapsed.as_secs(),
                    planned_s = self.total.map(|t| t.as_secs()),
                    ops = self.ops,
                    ops_per_s,
                    errors = self.errors,
                    p99_us = p99,
                    "progress"
                );
            }
            return;
        }
        let total = self.total.map(|t| format!("/{}s", t.as_secs())).unwrap_or_default();
        let line = format!(
            "{:>4}s{total}  {} ops  {:.1} ops/s  {} errors  p99 {}",
            elapsed.as_secs(),
            self.ops,
            ops_per_s,
            self.errors,
            format_micros(p99)
        );
        match &self.bar {
            Some(bar) if view.last => bar.finish_and_clear(),
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None if due => {
                crate::redact::eprint(&format!("progress: {line}\n"));
            }
            None => {}
        }
    }
}
