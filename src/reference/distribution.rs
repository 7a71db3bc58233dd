//! Delay distributions (fixed, uniform, lognormal) and the seeded sampler that draws from them.
//!
//! A distribution is written as a short string so that the same syntax works in TOML and on the
//! command line: `50ms` or `fixed:50ms`, `uniform:10ms..200ms`, `lognormal:median=200ms,p99=2s`.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution as _, LogNormal};
use serde::{Deserialize, Deserializer};

/// z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874;

/// A delay distribution. Construct through [`FromStr`], which rejects impossible parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    Fixed(Duration),
    Uniform {
        min: Duration,
        max: Duration,
    },
    /// Parameterised by its median and 99th percentile, the two numbers people know about a delay.
    LogNormal {
        median: Duration,
        p99: Duration,
    },
}

impl Distribution {
    pub const ZERO: Distribution = Distribution::Fixed(Duration::ZERO);

    /// Draws one delay using `rng`.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            Distribution::Fixed(d) => d,
            Distribution::Uniform { min, max } => {
                if max <= min {
                    return min;
                }
                let span = (max - min).as_nanos() as u64;
                min + Duration::from_nanos(rng.random_range(0..=span))
            }
            Distribution::LogNormal { median, p99 } => {
                let mu = median.as_secs_f64().ln();
                let sigma = ((p99.as_secs_f64() / median.as_secs_f64()).ln() / Z_P99).max(1e-9);
                match LogNormal::new(mu, sigma) {
                    // Cap at 1000x the p99 so that one absurd draw cannot park a job for days.
                    Ok(d) => Duration::from_secs_f64(d.sample(rng).min(p99.as_secs_f64() * 1000.0)),
                    Err(_) => median,
                }
            }
        }
    }

    /// True when every draw is zero, so callers can skip a sleep entirely.
    pub fn is_zero(&self) -> bool {
        matches!(self, Distribution::Fixed(d) if d.is_zero())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid distribution `{input}`: {reason} (expected `50ms`, `fixed:50ms`, `uniform:10ms..200ms` or `lognormal:median=200ms,p99=2s`)"
)]
pub struct DistributionError {
    input: String,
    reason: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("`{}`: {e}", s.trim()))
}

impl FromStr for Distribution {
    type Err = DistributionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| DistributionError {
            input: input.to_string(),
            reason,
        };
        let (kind, rest) = input.split_once(':').unwrap_or(("fixed", input));
        match kind.trim() {
            "fixed" => Ok(Distribution::Fixed(parse_duration(rest).map_err(fail)?)),
            "uniform" => {
                let (a, b) = rest
                    .split_once("..")
                    .ok_or_else(|| fail("uniform needs `MIN..MAX`".into()))?;
                let (min, max) = (parse_duration(a).map_err(fail)?, parse_duration(b).map_err(fail)?);
                if max < min {
                    return Err(fail("MAX is below MIN".into()));
                }
                Ok(Distribution::Uniform { min, max })
            }
            "lognormal" => {
                let (mut median, mut p99) = (None, None);
                for part in rest.split(',') {
                    match part.split_once('=') {
                        Some((k, v)) if k.trim() == "median" => median = Some(parse_duration(v).map_err(fail)?),
                        Some((k, v)) if k.trim() == "p99" => p99 = Some(parse_duration(v).map_err(fail)?),
                        _ => return Err(fail(format!("unknown parameter `{}`", part.trim()))),
                    }
                }
                let median = median.ok_or_else(|| fail("lognormal needs `median=`".into()))?;
                let p99 = p99.ok_or_else(|| fail("lognormal needs `p99=`".into()))?;
                if median.is_zero() || p99 < median {
                    return Err(fail("needs 0 < median <= p99".into()));
                }
                Ok(Distribution::LogNormal { median, p99 })
            }
            other => Err(fail(format!("unknown kind `{other}`"))),
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Distribution::Fixed(v) => write!(f, "fixed:{}", d(v)),
            Distribution::Uniform { min, max } => write!(f, "uniform:{}..{}", d(min), d(max)),
            Distribution::LogNormal { median, p99 } => {
                write!(f, "lognormal:median={},p99={}", d(median), d(p99))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Distribution {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Deterministic randomness without a shared lock: draw `n` derives a fresh small generator from
/// `seed` and an atomic counter, so a given seed yields the same sequence of draws.
#[derive(Debug)]
pub struct SeededSource {
    seed: u64,
    counter: AtomicU64,
}

impl SeededSource {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    pub fn rng(&self) -> SmallRng {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        SmallRng::seed_from_u64(splitmix64(self.seed ^ splitmix64(n)))
    }

    /// A uniform draw in [0, 1).
    pub fn unit(&self) -> f64 {
        self.rng().random::<f64>()
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    pub fn sample(&self, dist: &Distribution) -> Duration {
        if let Distribution::Fixed(d) = dist {
            return *d;
        }
        dist.sample(&mut self.rng())
    }
}

pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("50ms".parse(), Ok(Distribution::Fixed(Duration::from_millis(50))));
        assert_eq!("fixed:1s".parse(), Ok(Distribution::Fixed(Duration::from_secs(1))));
        assert_eq!(
            "uniform:10ms..20ms".parse(),
            Ok(Distribution::Uniform {
                min: Duration::from_millis(10),
                max: Duration::from_millis(20)
            })
        );
        let d: Distribution = "lognormal:median=200ms,p99=2s".parse().unwrap();
        assert_eq!(d.to_string(), "lognormal:median=200ms,p99=2s");
    }

    #[test]
    fn rejects_impossible_parameters() {
        assert!("uniform:20ms..10ms".parse::<Distribution>().is_err());
        assert!("lognormal:median=2s,p99=1s".parse::<Distribution>().is_err());
        assert!("lognormal:median=2s".parse::<Distribution>().is_err());
        assert!("gamma:1s".parse::<Distribution>().is_err());
        let err = "fixed:soon".parse::<Distribution>().unwrap_err().to_string();
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn lognormal_percentiles_match_parameters() {
        let d: Distribution = "lognormal:median=100ms,p99=1s".parse().unwrap();
        let src = SeededSource::new(7);
        let mut draws: Vec<f64> = (0..20_000).map(|_| src.sample(&d).as_secs_f64()).collect();
        draws.sort_by(f64::total_cmp);
        let p50 = draws[10_000];
        let p99 = draws[19_800];
        assert!((p50 - 0.1).abs() < 0.01, "p50 {p50}");
        assert!((p99 - 1.0).abs() < 0.15, "p99 {p99}");
    }

    #[test]
    fn same_seed_same_draws() {
        let d: Distribution = "uniform:0ms..1s".parse().unwrap();
        let (a, b) = (SeededSource::new(42), SeededSource::new(42));
        let xs: Vec<_> = (0..10).map(|_| a.sample(&d)).collect();
        let ys: Vec<_> = (0..10).map(|_| b.sample(&d)).collect();
        assert_eq!(xs, ys);
        let c = SeededSource::new(43);
        assert_ne!(xs, (0..10).map(|_| c.sample(&d)).collect::<Vec<_>>());
    }
}
