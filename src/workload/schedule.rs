//! The open model's arrival schedule: constant or staged arrival rates (linear ramps and holds),
//! and the exact time of the n-th arrival, so that intended start times need no scheduler task.

use std::time::Duration;

/// Parses `200/s`, `12000/m`, `5/min`, `100/h` or a bare number (per second).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, unit)) => {
            let secs = match unit.trim() {
                "s" | "sec" | "second" => 1.0,
                "m" | "min" | "minute" => 60.0,
                "h" | "hour" => 3600.0,
                other => return Err(format!("unknown rate unit `/{other}` in `{text}` (use /s, /m or /h)")),
            };
            (n.trim(), secs)
        }
        None => (t, 1.0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a rate (expected e.g. `200/s`)"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("rate `{text}` must be zero or positive"));
    }
    Ok(n / per)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub from_rate: f64,
    pub to_rate: f64,
    pub duration: Duration,
}

impl Stage {
    fn arrivals(&self) -> f64 {
        (self.from_rate + self.to_rate) / 2.0 * self.duration.as_secs_f64()
    }
}

/// A piecewise-linear arrival rate. Arrival `k` (from 0) happens when the cumulative expected
/// count reaches `k`, so a constant rate r puts arrival k at k/r.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    stages: Vec<Stage>,
    /// Cumulative arrivals at the start of each stage.
    starts: Vec<f64>,
}

impl Schedule {
    pub fn new(stages: Vec<Stage>) -> Result<Schedule, String> {
        if stages.is_empty() {
            return Err("an open-model load needs a rate and a duration, or stages".into());
        }
        let mut starts = Vec::with_capacity(stages.len());
        let mut total = 0.0;
        for s in &stages {
            starts.push(total);
            total += s.arrivals();
        }
        if total < 1.0 {
            return Err("the schedule makes no arrivals: raise the rate or the duration".into());
        }
        Ok(Schedule { stages, starts })
    }

    pub fn constant(rate: f64, duration: Duration) -> Result<Schedule, String> {
        Schedule::new(vec![Stage {
            from_rate: rate,
            to_rate: rate,
            duration,
        }])
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    pub fn total_arrivals(&self) -> u64 {
        let last = self.stages.len() - 1;
        (self.starts[last] + self.stages[last].arrivals()).ceil() as u64
    }

    /// The highest rate the schedule reaches (arrivals per second).
    pub fn peak_rate(&self) -> f64 {
        self.stages
            .iter()
            .flat_map(|s| [s.from_rate, s.to_rate])
            .fold(0.0, f64::max)
    }

    /// Expected arrivals per second averaged over the schedule.
    pub fn mean_rate(&self) -> f64 {
        self.total_arrivals() as f64 / self.duration().as_secs_f64().max(1e-9)
    }

    /// The offset from the start at which arrival `k` is due, or `None` past the end.
    pub fn time_of(&self, k: u64) -> Option<Duration> {
        let k = k as f64;
        let mut elapsed = Duration::ZERO;
        for (stage, start) in self.stages.iter().zip(&self.starts) {
            let x = k - start;
            if x < stage.arrivals() {
                let t = Self::solve(stage, x)?;
                return Some(elapsed + Duration::from_secs_f64(t.min(stage.duration.as_secs_f64())));
            }
            elapsed += stage.duration;
        }
        None
    }

    /// Seconds into `stage` at which `x` arrivals have happened.
    fn solve(stage: &Stage, x: f64) -> Option<f64> {
        let t_len = stage.duration.as_secs_f64();
        let (r0, r1) = (stage.from_rate, stage.to_rate);
        if x <= 0.0 {
            return Some(0.0);
        }
        let a = (r1 - r0) / (2.0 * t_len);
        if a.abs() < 1e-12 {
            return (r0 > 0.0).then(|| x / r0);
        }
        let disc = r0 * r0 + 4.0 * a * x;
        if disc < 0.0 {
            return None;
        }
        let denom = r0 + disc.sqrt();
        (denom > 0.0).then(|| 2.0 * x / denom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Option<Duration>) -> f64 {
        d.unwrap().as_secs_f64()
    }

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(parse_rate("200/s"), Ok(200.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert_eq!(parse_rate("3600/h"), Ok(1.0));
        assert_eq!(parse_rate("5"), Ok(5.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5/week").unwrap_err().contains("/week"));
        assert!(parse_rate("-1/s").is_err());
    }

    #[test]
    fn constant_rate_spacing_and_end() {
        let s = Schedule::constant(100.0, Duration::from_secs(2)).unwrap();
        assert_eq!(s.total_arrivals(), 200);
        assert_eq!(secs(s.time_of(0)), 0.0);
        assert!((secs(s.time_of(1)) - 0.01).abs() < 1e-9);
        assert!((secs(s.time_of(150)) - 1.5).abs() < 1e-9);
        assert!(s.time_of(199).is_some() && s.time_of(200).is_none());
    }

    #[test]
    fn linear_ramp_follows_the_integral() {
        // 0 -> 100/s over 10 s: N(t) = 5 t^2, so arrival k is at sqrt(k / 5).
        let s = Schedule::new(vec![Stage {
            from_rate: 0.0,
            to_rate: 100.0,
            duration: Duration::from_secs(10),
        }])
        .unwrap();
        assert_eq!(s.total_arrivals(), 500);
        for k in [1u64, 20, 125, 499] {
            let expected = (k as f64 / 5.0).sqrt();
            assert!((secs(s.time_of(k)) - expected).abs() < 1e-6, "k={k}");
        }
    }

    #[test]
    fn stages_chain_and_ramps_down() {
        let s = Schedule::new(vec![
            Stage {
                from_rate: 10.0,
                to_rate: 10.0,
                duration: Duration::from_secs(1),
            },
            Stage {
                from_rate: 0.0,
                to_rate: 0.0,
                duration: Duration::from_secs(5),
            },
            Stage {
                from_rate: 20.0,
                to_rate: 0.0,
                duration: Duration::from_secs(2),
            },
        ])
        .unwrap();
        assert_eq!(s.total_arrivals(), 30);
        // Arrival 10 is the first of the third stage, after the 5 s pause.
        assert!((secs(s.time_of(10)) - 6.0).abs() < 1e-9);
        // Ramp down 20 -> 0 over 2 s: N(t) = 20 t - 5 t^2; 15 arrivals at t = 1 s.
        assert!((secs(s.time_of(25)) - 7.0).abs() < 1e-6);
        assert_eq!(s.peak_rate(), 20.0);
    }

    #[test]
    fn empty_schedules_are_rejected() {
        assert!(Schedule::constant(0.0, Duration::from_secs(5)).is_err());
        assert!(Schedule::new(vec![]).is_err());
    }
}
