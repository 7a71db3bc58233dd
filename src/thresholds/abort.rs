//! Abort-on-fail: thresholds with `abort_on_fail`, judged on the cumulative data after every
//! interval (an observer of the interval writer); the first one lost past its delay stops the load.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{Data, ThresholdSpec, evaluate};
use crate::metrics::writer::{IntervalObserver, IntervalView};
use crate::results::{LoadInfo, Verdict};

/// Called once with the lost threshold's verdict and when it was lost.
pub type OnLost = Box<dyn Fn(&Verdict, Duration) + Send>;

/// The threshold that stopped the load, and how far into it.
pub type Fired = Arc<Mutex<Option<(String, Duration)>>>;

pub struct AbortWatch {
    specs: Vec<ThresholdSpec>,
    stop: CancellationToken,
    fired: Fired,
    on_lost: Option<OnLost>,
}

impl AbortWatch {
    /// Watches the `abort_on_fail` thresholds among `specs`; cancels `stop` when one is lost.
    pub fn new(specs: &[ThresholdSpec], stop: CancellationToken, on_lost: Option<OnLost>) -> Self {
        Self {
            specs: specs.iter().filter(|s| s.abort_on_fail).cloned().collect(),
            stop,
            fired: Fired::default(),
            on_lost,
        }
    }

    /// Where the lost threshold will be recorded (read it after the load).
    pub fn fired(&self) -> Fired {
        self.fired.clone()
    }
}

impl IntervalObserver for AbortWatch {
    fn interval(&mut self, view: &IntervalView<'_>) {
        if self.specs.is_empty() || self.fired.lock().is_some() {
            return;
        }
        let elapsed = view.start + view.length;
        let load = LoadInfo::default();
        let data = Data {
            keys: view.keys,
            series: view.cumulative,
            load: &load,
            checks: &[],
        };
        for spec in self.specs.iter().filter(|s| elapsed >= s.delay) {
            let v = evaluate(spec, &data);
            // No data yet is not a loss: the run may still produce it.
            if v.error.is_none() && !v.passed {
                tracing::warn!(threshold = %spec.expression, observed = %v.observed_text, "threshold lost: stopping the load");
                if let Some(f) = &self.on_lost {
                    f(&v, elapsed);
                }
                *self.fired.lock() = Some((spec.expression.clone(), elapsed));
                self.stop.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricKey, SeriesData};

    #[test]
    fn a_lost_threshold_stops_the_load_after_its_delay() {
        let mut spec = ThresholdSpec::parse("p50(api_latency) < 1ms").unwrap();
        spec.abort_on_fail = true;
        spec.delay = Duration::from_secs(2);
        let stop = CancellationToken::new();
        let mut watch = AbortWatch::new(
            &[spec, ThresholdSpec::parse("max(api_latency) < 1us").unwrap()],
            stop.clone(),
            None,
        );
        let fired = watch.fired();
        let keys = [MetricKey::new("api_latency").tag("op", "x")];
        let mut slow = SeriesData::default();
        slow.record(5_000);
        let series = [slow];
        let view = |start: u64| IntervalView {
            keys: &keys,
            interval: &series,
            cumulative: &series,
            start: Duration::from_secs(start),
            length: Duration::from_secs(1),
            last: false,
            by_write: None,
        };
        watch.interval(&view(0));
        assert!(
            !stop.is_cancelled(),
            "within its delay; the other threshold does not abort"
        );
        watch.interval(&view(1));
        assert!(stop.is_cancelled());
        assert_eq!(
            fired.lock().clone(),
            Some(("p50(api_latency) < 1ms".into(), Duration::from_secs(2)))
        );
    }
}
