//! The `[load]` section: the closed model (admins, ramp, think time, a duration or iterations)
//! or the open model (an arrival rate and duration, or stages), each key checked where it is
//! written. Owns [`Load`] and its parts.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Source, WorkloadError};
use super::fields::{duration, duration_or, positive, rate};
use super::limits;
use super::schedule::{Schedule, Stage, parse_rate};

#[derive(Debug, Clone, PartialEq)]
pub enum ThinkTime {
    Fixed(Duration),
    Uniform(Duration, Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    Duration(Duration),
    /// Journeys per admin.
    Iterations(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    Closed {
        admins: usize,
        ramp: Duration,
        think_time: Option<ThinkTime>,
        stop: Stop,
        seed: u64,
    },
    Open {
        schedule: Schedule,
        max_admins: usize,
        /// An arrival that cannot start within this of its intended time is dropped (counted).
        max_lag: Duration,
        seed: u64,
    },
}

impl Load {
    pub fn model(&self) -> &'static str {
        match self {
            Load::Closed { .. } => "closed",
            Load::Open { .. } => "open",
        }
    }
    pub fn admins(&self) -> usize {
        match self {
            Load::Closed { admins, .. } => *admins,
            Load::Open { max_admins, .. } => *max_admins,
        }
    }
    pub fn seed(&self) -> u64 {
        match self {
            Load::Closed { seed, .. } | Load::Open { seed, .. } => *seed,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadWire {
    pub model: Spanned<String>,
    // Closed model.
    #[serde(default)]
    pub admins: Option<Spanned<usize>>,
    #[serde(default)]
    pub ramp: Option<Spanned<String>>,
    #[serde(default)]
    pub think_time: Option<Spanned<String>>,
    #[serde(default)]
    pub iterations: Option<Spanned<usize>>,
    // Both.
    #[serde(default)]
    pub duration: Option<Spanned<String>>,
    // Open model.
    #[serde(default)]
    pub rate: Option<Spanned<String>>,
    #[serde(default)]
    pub stages: Option<Spanned<Vec<StageWire>>>,
    #[serde(default)]
    pub max_admins: Option<Spanned<usize>>,
    #[serde(default)]
    pub max_lag: Option<Spanned<String>>,
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageWire {
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub over: Option<String>,
    #[serde(default)]
    pub hold: Option<String>,
}

pub fn from_wire(src: &Source, l: LoadWire) -> Result<Load, WorkloadError> {
    let seed = l.seed.unwrap_or(1);
    match l.model.get_ref().as_str() {
        "closed" => closed(src, &l, seed),
        "open" => open(src, &l, seed),
        other => Err(src.error(
            Some(l.model.span()),
            format!("unknown load model `{other}` (known: closed, open)"),
        )),
    }
}

/// A key of the other model, where it is written.
fn misplaced<T>(src: &Source, field: &Option<Spanned<T>>, message: &str) -> Result<(), WorkloadError> {
    match field {
        Some(f) => Err(src.error(Some(f.span()), message)),
        None => Ok(()),
    }
}

fn closed(src: &Source, l: &LoadWire, seed: u64) -> Result<Load, WorkloadError> {
    misplaced(src, &l.rate, "`rate` applies to the open model only")?;
    misplaced(src, &l.max_lag, "`max_lag` applies to the open model only")?;
    misplaced(src, &l.stages, "`stages` applies to the open model only")?;
    misplaced(
        src,
        &l.max_admins,
        "`max_admins` applies to the open model; the closed model uses `admins`",
    )?;
    let admins = positive(src, &l.admins, "admins", limits::ADMINS)?.unwrap_or(10);
    let ramp = duration_or(src, &l.ramp, "ramp", limits::RUN, Duration::ZERO)?;
    let think_time = l.think_time.as_ref().map(|t| think_time(src, t)).transpose()?;
    let stop = match (
        &l.duration,
        positive(src, &l.iterations, "iterations", limits::ITERATIONS)?,
    ) {
        (Some(d), None) => Stop::Duration(duration(src, d, "duration", limits::RUN)?),
        (None, Some(n)) => Stop::Iterations(n),
        (Some(d), Some(_)) => {
            return Err(src.error(Some(d.span()), "give `duration` or `iterations`, not both"));
        }
        (None, None) => {
            return Err(src.error(
                Some(l.model.span()),
                "a closed-model load needs `duration` or `iterations`",
            ));
        }
    };
    if matches!(stop, Stop::Duration(d) if d.is_zero()) {
        return Err(src.error(l.duration.as_ref().map(|d| d.span()), "`duration` must be positive"));
    }
    Ok(Load::Closed {
        admins,
        ramp,
        think_time,
        stop,
        seed,
    })
}

/// `"2s"` or `"1s..3s"` (uniform between the two).
fn think_time(src: &Source, t: &Spanned<String>) -> Result<ThinkTime, WorkloadError> {
    let Some((a, b)) = t.get_ref().split_once("..") else {
        return Ok(ThinkTime::Fixed(duration(src, t, "think_time", limits::WAIT)?));
    };
    let p = |s: &str| {
        humantime::parse_duration(s.trim())
            .map_err(|e| format!("`think_time`: {e}"))
            .and_then(|d| limits::duration("think_time", d, limits::WAIT))
            .map_err(|m| src.error(Some(t.span()), m))
    };
    let (a, b) = (p(a)?, p(b)?);
    if b < a {
        return Err(src.error(Some(t.span()), "`think_time`: MAX is below MIN"));
    }
    Ok(ThinkTime::Uniform(a, b))
}

fn open(src: &Source, l: &LoadWire, seed: u64) -> Result<Load, WorkloadError> {
    misplaced(src, &l.ramp, "`ramp` applies to the closed model only")?;
    misplaced(src, &l.think_time, "`think_time` applies to the closed model only")?;
    misplaced(
        src,
        &l.admins,
        "`admins` applies to the closed model; the open model uses `max_admins`",
    )?;
    misplaced(src, &l.iterations, "`iterations` applies to the closed model only")?;
    let start_rate = l
        .rate
        .as_ref()
        .map(|r| rate(src, r.get_ref(), r.span(), "rate"))
        .transpose()?;
    let schedule = match (&l.stages, &l.duration) {
        (Some(stages), None) => staged(src, stages, start_rate.unwrap_or(0.0))?,
        (None, Some(d)) => {
            let Some(rate) = start_rate else {
                return Err(src.error(
                    Some(l.model.span()),
                    "an open-model load needs `rate` (e.g. \"200/s\") with `duration`, or `stages`",
                ));
            };
            Schedule::constant(rate, duration(src, d, "duration", limits::RUN)?)
                .map_err(|m| src.error(Some(d.span()), m))?
        }
        (Some(s), Some(_)) => {
            return Err(src.error(
                Some(s.span()),
                "give `duration` or `stages`, not both (stages set their own durations)",
            ));
        }
        (None, None) => {
            return Err(src.error(Some(l.model.span()), "an open-model load needs `duration` or `stages`"));
        }
    };
    let max_admins = positive(src, &l.max_admins, "max_admins", limits::ADMINS)?.unwrap_or(100);
    let max_lag = duration_or(src, &l.max_lag, "max_lag", limits::WAIT, Duration::from_secs(10))?;
    Ok(Load::Open {
        schedule,
        max_admins,
        max_lag,
        seed,
    })
}

/// `stages = [{ to = "500/s", over = "2m" }, { hold = "5m" }]`, from `start` arrivals a second.
fn staged(src: &Source, stages: &Spanned<Vec<StageWire>>, start: f64) -> Result<Schedule, WorkloadError> {
    let bad = |m: String| src.error(Some(stages.span()), m);
    let parse_d = |s: &str| {
        humantime::parse_duration(s.trim())
            .map_err(|e| format!("stage duration `{s}`: {e}"))
            .and_then(|d| limits::duration("a stage", d, limits::RUN))
            .map_err(bad)
    };
    let mut current = start;
    let mut out = Vec::new();
    for s in stages.get_ref() {
        match (&s.to, &s.over, &s.hold) {
            (Some(to), Some(over), None) => {
                let to = parse_rate(to)
                    .and_then(|r| limits::rate("a stage's `to`", r))
                    .map_err(bad)?;
                out.push(Stage {
                    from_rate: current,
                    to_rate: to,
                    duration: parse_d(over)?,
                });
                current = to;
            }
            (None, None, Some(hold)) => out.push(Stage {
                from_rate: current,
                to_rate: current,
                duration: parse_d(hold)?,
            }),
            _ => {
                return Err(bad(
                    "each stage is either { to = \"500/s\", over = \"2m\" } or { hold = \"5m\" }".into(),
                ));
            }
        }
    }
    let total: Duration = out.iter().map(|s| s.duration).sum();
    limits::duration("the stages together", total, limits::RUN).map_err(bad)?;
    Schedule::new(out).map_err(bad)
}
