//! Capacity planning: `provbench sweep` steps an open-model workload's arrival rate (each step a
//! warm-up and a measured hold, judged by the workload's own thresholds and checks on that step's
//! histograms), stops at the first step that loses a threshold, exceeds the error limit or
//! saturates (achieved rate below target, or arrivals dropped), optionally bisects, and reports
//! the highest sustainable rate, the binding threshold, and the whole curve.
//!
//! # Layout
//! - [`search`]: the stepping and bisection, independent of how a step runs.
//! - [`report`]: `capacity.json`, `capacity.csv`, `capacity.html`.

pub mod report;
pub mod search;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::engine::{self, RunOptions};
use crate::metrics::{MetricKey, SeriesData, merge_matching};
use crate::results::RunOutcome;
use crate::vocab::{metric, tag};
use crate::workload::schedule::{Schedule, Stage};
use crate::workload::{Load, Workload};
use search::{Found, Plan};

pub struct SweepOptions {
    pub workload: Workload,
    pub plan: Plan,
    pub warmup: Duration,
    pub hold: Duration,
    pub out: PathBuf,
    /// A step whose error rate exceeds this fails.
    pub max_error_rate: f64,
    /// A step whose achieved rate falls below this share of its target fails (saturation).
    pub min_achieved: f64,
}

/// One step of the curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub rate: f64,
    pub passed: bool,
    /// Why it failed: lost thresholds, errors, saturation, checks.
    pub reasons: Vec<String>,
    pub achieved_rate: f64,
    pub error_rate: f64,
    pub api_p50_us: Option<u64>,
    pub api_p99_us: Option<u64>,
    pub queue_delay_p99_us: Option<u64>,
    /// p99 sync lag per linked service.
    pub sync_lag_p99_us: BTreeMap<String, u64>,
    pub results: String,
    pub run_id: String,
    /// What cleanup after the sweep could not delete, and the command that removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_behind: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capacity {
    pub workload: String,
    /// The highest rate that met every threshold (journeys per second).
    pub sustainable_rate: Option<f64>,
    /// No step failed: the sustainable rate is only the highest rate tried (`--to`), and the
    /// real capacity lies above it.
    #[serde(default)]
    pub only_the_bound: bool,
    /// What failed at the first failing rate.
    pub binding: Vec<String>,
    pub first_failing_rate: Option<f64>,
    pub steps: Vec<Step>,
}

impl Capacity {
    /// The sweep's conclusion in one line, for the console.
    pub fn verdict(&self) -> String {
        match self.sustainable_rate {
            Some(r) if self.only_the_bound => format!(
                "every step passed up to --to {r:.1}/s: the capacity is at least that (raise --to to find where it ends)"
            ),
            Some(r) => format!(
                "highest sustainable rate: {r:.1} journeys/s{}",
                self.binding
                    .first()
                    .map(|b| format!(" (bound by {b})"))
                    .unwrap_or_default()
            ),
            None => "no rate met the thresholds".into(),
        }
    }
}

/// A quantile of the union of the series `pick` selects: the same merge the thresholds judge
/// (`p99(api_latency)` is the p99 of every operation's samples together).
fn merged_quantile(
    keys: &[MetricKey],
    series: &[SeriesData],
    q: f64,
    pick: impl Fn(&MetricKey) -> bool,
) -> Option<u64> {
    let merged = merge_matching(keys, series, pick)?;
    let h = merged.histogram();
    (!h.is_empty()).then(|| h.value_at_quantile(q))
}

/// Runs one step at `rate`; its results go under `out/step-NN-RATE`.
/// The run id of every step that ran is added to `ran` as soon as its run is over, however it
/// ended: its users are kept for the sweep's cleanup, which must find them all.
async fn run_step(
    opts: &SweepOptions,
    index: usize,
    rate: f64,
    shutdown: &CancellationToken,
    ran: &std::sync::Mutex<Vec<String>>,
) -> anyhow::Result<Step> {
    let mut w = opts.workload.clone();
    let Load::Open {
        max_admins,
        max_lag,
        seed,
        ..
    } = w.load.clone()
    else {
        anyhow::bail!("sweep needs an open-model workload (model = \"open\")");
    };
    w.load = Load::Open {
        schedule: Schedule::new(vec![
            Stage {
                from_rate: rate,
                to_rate: rate,
                duration: opts.warmup,
            },
            Stage {
                from_rate: rate,
                to_rate: rate,
                duration: opts.hold,
            },
        ])
        .map_err(anyhow::Error::msg)?,
        max_admins,
        max_lag,
        seed,
    };
    let dir = opts.out.join(format!("step-{index:02}-{rate:.1}"));
    tracing::info!(rate, "sweep step");
    let result = engine::run(
        RunOptions {
            out: Some(dir.clone()),
            // Deleting a step's users would load the target during the next step: the sweep
            // cleans up every step once it is over.
            keep_users: true,
            warmup: opts.warmup,
            ..RunOptions::new(w)
        },
        shutdown.clone(),
    )
    .await?;
    let s = &result.summary;
    ran.lock().expect("ran lock").push(s.run_id.clone());
    match s.outcome {
        RunOutcome::Aborted => anyhow::bail!("the sweep was interrupted"),
        RunOutcome::Error => anyhow::bail!(
            "step at {rate:.1}/s could not be judged: {}",
            s.error_reason().unwrap_or_default()
        ),
        _ => {}
    }
    let (count, errors) = s.operations().fold((0, 0), |(c, e), m| (c + m.count, e + m.errors));
    let error_rate = errors as f64 / count.max(1) as f64;
    let reasons = step_reasons(s, rate, error_rate, opts);
    let (keys, series) = (&result.keys, &result.series);
    let is = |name: &'static str| move |k: &MetricKey| k.metric == name;
    let mut sync = BTreeMap::new();
    for svc in keys
        .iter()
        .filter(|k| k.metric == metric::SYNC_LAG)
        .filter_map(|k| k.get(tag::SERVICE))
    {
        let p99 = merged_quantile(keys, series, 0.99, |k| {
            is(metric::SYNC_LAG)(k) && k.get(tag::SERVICE) == Some(svc)
        });
        if let Some(p) = p99 {
            sync.insert(svc.to_string(), p);
        }
    }
    Ok(Step {
        rate,
        passed: reasons.is_empty(),
        reasons,
        achieved_rate: s.load.achieved_rate,
        error_rate,
        api_p50_us: merged_quantile(keys, series, 0.5, is(metric::API_LATENCY)),
        api_p99_us: merged_quantile(keys, series, 0.99, is(metric::API_LATENCY)),
        queue_delay_p99_us: merged_quantile(keys, series, 0.99, is(metric::QUEUE_DELAY)),
        sync_lag_p99_us: sync,
        results: dir.display().to_string(),
        run_id: s.run_id.clone(),
        left_behind: None,
    })
}

/// Why a step failed: its own outcome (thresholds and checks, judged as for any run), and the
/// sweep's limits on errors, saturation and dropped arrivals.
fn step_reasons(s: &crate::results::Summary, rate: f64, error_rate: f64, opts: &SweepOptions) -> Vec<String> {
    let mut reasons: Vec<String> = s
        .thresholds
        .iter()
        .filter(|v| !v.passed)
        .map(|v| format!("{} (observed {})", v.expression, v.observed_text))
        .collect();
    reasons.extend(
        s.checks
            .iter()
            .filter(|c| c.is_failure())
            .map(|c| format!("check {} failed {} times", c.name, c.failed)),
    );
    if s.outcome != RunOutcome::Passed && reasons.is_empty() {
        reasons.push(format!("the step's outcome is {}", s.outcome.label().to_lowercase()));
    }
    if error_rate > opts.max_error_rate {
        reasons.push(format!(
            "error rate {:.2}% above {:.2}%",
            error_rate * 100.0,
            opts.max_error_rate * 100.0
        ));
    }
    if s.load.achieved_rate < rate * opts.min_achieved {
        reasons.push(format!(
            "saturated: achieved {:.1}/s of {rate:.1}/s",
            s.load.achieved_rate
        ));
    }
    if s.load.dropped_arrivals > 0 {
        reasons.push(format!(
            "{} arrivals dropped (raise max_admins)",
            s.load.dropped_arrivals
        ));
    }
    reasons
}

/// Runs the sweep and writes the capacity report under `opts.out`.
pub async fn sweep(opts: SweepOptions, shutdown: CancellationToken) -> anyhow::Result<Capacity> {
    std::fs::create_dir_all(&opts.out)?;
    let steps = std::sync::Mutex::new(Vec::new());
    let ran = std::sync::Mutex::new(Vec::new());
    let found = search::search(&opts.plan, |rate| {
        let (opts, steps, shutdown, ran) = (&opts, &steps, &shutdown, &ran);
        async move {
            let index = steps.lock().expect("steps lock").len();
            let step = run_step(opts, index, rate, shutdown, ran).await?;
            let passed = step.passed;
            steps.lock().expect("steps lock").push(step);
            anyhow::Ok(passed)
        }
    })
    .await;
    let mut steps = steps.into_inner().expect("steps lock");
    // Every step kept its users for this: they are swept however the steps ended, a step that
    // could not be judged (no `Step` of its own) included.
    let ran = ran.into_inner().expect("ran lock");
    let others: Vec<String> = ran
        .into_iter()
        .filter(|id| !steps.iter().any(|s| s.run_id == *id))
        .collect();
    let cleaned = clean_up(&opts, &mut steps, &others).await;
    let found: Found = match (found, cleaned) {
        (Ok(found), Ok(_)) => found,
        (Ok(_), Err(e)) => return Err(e.context("the sweep's steps kept their users and could not be swept")),
        (Err(e), cleaned) => {
            let left: Vec<String> = match cleaned {
                Ok(left) => steps.iter().filter_map(|s| s.left_behind.clone()).chain(left).collect(),
                Err(c) => vec![format!("the steps could not be swept ({c:#})")],
            };
            return Err(match left.is_empty() {
                true => e,
                false => anyhow::anyhow!("{e:#}; cleanup after the sweep left users behind: {}", left.join("; ")),
            });
        }
    };
    let binding = found
        .first_failing
        .and_then(|f| steps.iter().find(|s| (s.rate - f).abs() < 1e-9))
        .map(|s| s.reasons.clone())
        .unwrap_or_default();
    steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let capacity = Capacity {
        workload: opts.workload.name.clone(),
        only_the_bound: found.sustainable.is_some() && found.first_failing.is_none(),
        sustainable_rate: found.sustainable,
        first_failing_rate: found.first_failing,
        binding,
        steps,
    };
    report::write(&capacity, &opts.out)?;
    Ok(capacity)
}

/// Sweeps every step's marker (an embedded target took its users with it): what a step left,
/// or why it could not be swept, is its `left_behind`; `others` are steps that ran without a
/// [`Step`] (one that could not be judged), and what they left is returned.
async fn clean_up(opts: &SweepOptions, steps: &mut [Step], others: &[String]) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    if !crate::engine::targets::outlives_the_run(&opts.workload) {
        return Ok(left);
    }
    let stop = CancellationToken::new();
    let target = crate::engine::targets::resolve(&opts.workload, stop.clone(), None, None).await?;
    for s in steps.iter_mut() {
        s.left_behind = sweep_step(&target, &s.run_id, opts).await;
    }
    for id in others {
        left.extend(sweep_step(&target, id, opts).await);
    }
    stop.cancel();
    Ok(left)
}

/// Sweeps one step's marker: what it left (or that it could not be swept), with the command
/// that removes it; `None` only when the sweep deleted and read back everything it found.
async fn sweep_step(target: &crate::engine::targets::ResolvedTarget, id: &str, opts: &SweepOptions) -> Option<String> {
    let Ok(run_id) = crate::ledger::RunId::parse(id) else {
        return Some(format!("run {id}: not a run id, not swept"));
    };
    match target.sweep(&run_id, Duration::from_secs(120)).await {
        // A target that cannot be searched (kind `http`): the step kept its users, so its
        // cleanup hooks never ran, and nothing here can find what they would have removed.
        Err(e) => Some(format!(
            "run {run_id} was not swept, its users are still on the target: {}",
            crate::redact::error(&e)
        )),
        Ok(r) => {
            tracing::info!(run_id = %run_id, deleted = r.deleted, left = r.failed, "sweep step cleaned up");
            r.incomplete().then(|| {
                format!(
                    "{} left{}: provbench cleanup --run-id {run_id} {}",
                    r.failed,
                    r.unsearchable.iter().map(|u| format!("; {u}")).collect::<String>(),
                    opts.workload.path.display()
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::LoadInfo;
    use crate::thresholds::{Data, ThresholdSpec, evaluate};

    /// Regression: the step's "API p99" was the largest per-operation p99 (21.7 ms here) while
    /// `p99(api_latency) < 20ms` judged the merged histogram, and passed.
    #[test]
    fn the_api_p99_is_the_one_the_threshold_judges() {
        let mut fast = SeriesData::default();
        let mut slow = SeriesData::default();
        for _ in 0..990 {
            fast.record(2_000);
        }
        for _ in 0..9 {
            slow.record(3_000);
        }
        slow.record(21_700);
        let keys = [
            MetricKey::new(metric::API_LATENCY).tag(tag::OP, "get_user"),
            MetricKey::new(metric::API_LATENCY).tag(tag::OP, "create_user"),
        ];
        let series = [fast, slow];
        let p99 = merged_quantile(&keys, &series, 0.99, |k| k.metric == metric::API_LATENCY).unwrap();
        let spec = ThresholdSpec::parse("p99(api_latency) < 20ms").unwrap();
        let load = LoadInfo::default();
        let v = evaluate(
            &spec,
            &Data {
                keys: &keys,
                series: &series,
                load: &load,
                checks: &[],
            },
        );
        assert_eq!(v.observed, Some(p99 as f64));
        assert!(v.passed && p99 < 20_000, "{p99}");
    }

    #[test]
    fn a_sweep_that_never_failed_says_its_rate_is_only_the_bound() {
        let mut c = Capacity {
            workload: "w".into(),
            sustainable_rate: Some(1000.0),
            only_the_bound: true,
            binding: vec![],
            first_failing_rate: None,
            steps: vec![],
        };
        assert!(c.verdict().contains("at least") && !c.verdict().contains("highest sustainable"));
        c.only_the_bound = false;
        c.binding = vec!["p99(queue_delay) < 200ms (observed 310ms)".into()];
        assert!(
            c.verdict()
                .starts_with("highest sustainable rate: 1000.0 journeys/s (bound by p99(queue_delay)")
        );
    }
}
