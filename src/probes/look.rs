//! When an observation's next look goes. Each look is due at a random instant of its window (a
//! random phase, then a jittered gap), so that a change is equally likely anywhere in the bracket
//! around it. Within that window the look is put on a grid shared by every observation of the
//! run: looks that land on one instant wake the process once, and go out together (a batched
//! source reads them in one query), instead of one timer and one wake-up each. The grid is the
//! coarsest of a ladder (5 ms, 10 ms, 20 ms … 640 ms from the run's origin) that still has a
//! point in the window: a late look, whose window is wide, lands on a rounder instant than an
//! early one, so the sparse looks at the end of a run (waiting out a deleted user's absence)
//! share their wake-ups as the dense ones of a busy run do. The window is the same as without
//! the grid, so a bracket is never wider; a window narrower than the finest step, which may hold
//! no point of it, keeps its instant off the grid. The grid's instants are the run's, not the
//! target's, so a change is no likelier near one than anywhere else.

use std::time::Duration;

use tokio::time::Instant;

/// The grid's finest step: finer would be below the timer's resolution (1 ms) needs; half of
/// the default first gap lets the looks of a busy run share most wake-ups.
pub const STEP: Duration = Duration::from_millis(5);

/// The coarsest step tried: [`STEP`] doubled this many times (640 ms, below the default
/// longest gap of 1 s, whose window of ±25 % always holds a point of it).
const COARSEST: u32 = 7;

/// The grid every observation of a run puts its looks on.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    origin: Instant,
}

impl Grid {
    /// A grid whose points are `origin` + k × [`STEP`].
    pub fn new(origin: Instant) -> Grid {
        Grid { origin }
    }

    /// The instant at `share` (uniform in [0, 1)) of the window `[earliest, latest]`: a point
    /// in it of the coarsest grid that has one (each of that grid's points in the window equally
    /// likely), or, when even the finest holds none, the instant at `share` of the window.
    pub fn within(&self, earliest: Instant, latest: Instant, share: f64) -> Instant {
        let exact = earliest + latest.saturating_duration_since(earliest).mul_f64(share);
        let (Some(from), Some(to)) = (
            earliest.checked_duration_since(self.origin),
            latest.checked_duration_since(self.origin),
        ) else {
            return exact;
        };
        let (from, to) = (from.as_nanos(), to.as_nanos());
        for doublings in (0..=COARSEST).rev() {
            let step = STEP.as_nanos() << doublings;
            let (first, last) = (from.div_ceil(step), to / step);
            if last < first {
                continue;
            }
            let points = last - first + 1;
            let k = first + ((share * points as f64) as u128).min(points - 1);
            return u64::try_from(k * step).map_or(exact, |n| self.origin + Duration::from_nanos(n));
        }
        exact
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every look lies in its window; where the window holds a point of the finest grid it is
    /// on the coarsest grid that has a point in the window.
    #[tokio::test(start_paused = true)]
    async fn a_look_stays_in_its_window_on_the_coarsest_grid_it_can() {
        let origin = Instant::now();
        let grid = Grid::new(origin);
        for (from_ms, width_ms) in [(0u64, 20u64), (3, 10), (7, 5), (12, 2), (1_001, 250), (33, 0), (95, 30)] {
            let earliest = origin + Duration::from_millis(from_ms);
            let latest = earliest + Duration::from_millis(width_ms);
            // The coarsest step (5 ms doubled) with a multiple in the window.
            let coarsest = (0..=COARSEST)
                .rev()
                .map(|d| 5u64 << d)
                .find(|step| from_ms.div_ceil(*step) * step <= from_ms + width_ms);
            for i in 0..50 {
                let at = grid.within(earliest, latest, f64::from(i) / 50.0);
                assert!(earliest <= at && at <= latest, "{at:?} outside its window");
                let ms = (at - origin).as_nanos();
                match coarsest {
                    Some(step) => assert!(
                        ms.is_multiple_of(u128::from(step) * 1_000_000),
                        "window {from_ms}+{width_ms} ms holds a multiple of {step} ms: {at:?}"
                    ),
                    None => assert_eq!(at, earliest + (latest - earliest).mul_f64(f64::from(i) / 50.0)),
                }
            }
        }
    }

    /// Looks of many observations due in the same few ms share their instants (one wake-up
    /// each), early and late in their observations alike.
    #[tokio::test(start_paused = true)]
    async fn looks_due_together_share_their_instants() {
        let grid = Grid::new(Instant::now());
        for (at_ms, gap_ms) in [(100u64, 40u64), (900, 45), (5_000, 250)] {
            let now = Instant::now() + Duration::from_millis(at_ms);
            let gap = Duration::from_millis(gap_ms);
            let looks: std::collections::BTreeSet<Instant> = (0..200)
                .map(|_| {
                    // Each observation's window: its own gap, jittered by ±25 %.
                    let start = now + Duration::from_micros(rand::random::<u64>() % 3_000);
                    grid.within(start + gap.mul_f64(0.75), start + gap.mul_f64(1.25), rand::random())
                })
                .collect();
            assert!(
                looks.len() <= 2,
                "200 looks due after {at_ms} ms on {} instants",
                looks.len()
            );
        }
    }
}
