//! The rate search, independent of how a step is run: geometric or linear steps up to the first
//! failing rate, optionally refined by bisection between the last passing and the first failing
//! rate. Tested on simulated response curves.

use std::future::Future;

#[derive(Debug, Clone, PartialEq)]
pub enum Stepping {
    /// rate × factor each step.
    Geometric(f64),
    /// rate + increment each step.
    Linear(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub from: f64,
    pub to: f64,
    pub stepping: Stepping,
    /// Bisection rounds after the bracket is found (0: none).
    pub bisect: u32,
}

/// What the search learned: every rate tried in order, and the highest passing one.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub tried: Vec<(f64, bool)>,
    pub sustainable: Option<f64>,
    pub first_failing: Option<f64>,
}

/// Runs `step(rate) -> passed` along the plan.
pub async fn search<F, Fut>(plan: &Plan, mut step: F) -> anyhow::Result<Found>
where
    F: FnMut(f64) -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let mut tried = Vec::new();
    let mut best: Option<f64> = None;
    let mut failing: Option<f64> = None;
    let mut rate = plan.from;
    while rate <= plan.to * (1.0 + 1e-9) {
        let passed = step(rate).await?;
        tried.push((rate, passed));
        if !passed {
            failing = Some(rate);
            break;
        }
        best = Some(rate);
        rate = match plan.stepping {
            Stepping::Geometric(f) => rate * f,
            Stepping::Linear(d) => rate + d,
        };
    }
    if let (Some(mut lo), Some(mut hi)) = (best, failing) {
        for _ in 0..plan.bisect {
            let mid = (lo + hi) / 2.0;
            let passed = step(mid).await?;
            tried.push((mid, passed));
            if passed {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        best = Some(lo);
        failing = Some(hi);
    }
    Ok(Found {
        tried,
        sustainable: best,
        first_failing: failing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn simulate(plan: Plan, capacity: f64) -> Found {
        search(&plan, |rate| async move { Ok(rate <= capacity) }).await.unwrap()
    }

    #[tokio::test]
    async fn geometric_bracket_then_bisect_converges() {
        let plan = Plan {
            from: 10.0,
            to: 1000.0,
            stepping: Stepping::Geometric(2.0),
            bisect: 6,
        };
        let found = simulate(plan, 73.0).await;
        // Bracket 40 (pass) .. 80 (fail), then six halvings: within 40/64 of the truth.
        let s = found.sustainable.unwrap();
        assert!(s <= 73.0 && 73.0 - s < 1.0, "{found:?}");
        assert_eq!(
            &found.tried[..4],
            &[(10.0, true), (20.0, true), (40.0, true), (80.0, false)]
        );
    }

    #[tokio::test]
    async fn linear_steps_and_edges() {
        let plan = Plan {
            from: 10.0,
            to: 50.0,
            stepping: Stepping::Linear(10.0),
            bisect: 0,
        };
        let found = simulate(plan.clone(), 35.0).await;
        assert_eq!((found.sustainable, found.first_failing), (Some(30.0), Some(40.0)));
        // Everything passes: the highest rate tried is sustainable, nothing failed.
        let found = simulate(plan.clone(), 1e9).await;
        assert_eq!((found.sustainable, found.first_failing), (Some(50.0), None));
        // Nothing passes.
        let found = simulate(plan, 1.0).await;
        assert_eq!((found.sustainable, found.first_failing), (None, Some(10.0)));
    }
}
