//! When an observation's next look goes. Each look is due at a random instant of its window (a
//! random phase, then a jittered gap), so that a change is equally likely anywhere in the bracket
//! around it. Within that window the look is put on a grid shared by every observation of the
//! run: looks due within one step of each other then wake the process once, and go out together
//! (a batched source reads them in one query), instead of one timer and one wake-up each. The
//! window is the same as without the grid, so a bracket is never wider: a window narrower than a
//! step, which may hold no grid point, keeps its instant off the grid.

use std::time::Duration;

use tokio::time::Instant;

/// The grid's step: a tenth of the default first gap's window would be finer than the timer's
/// resolution (1 ms) needs; half of it lets the looks of a busy run share most wake-ups.
pub const STEP: Duration = Duration::from_millis(5);

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

    /// The instant at `share` (uniform in [0, 1)) of the window `[earliest, latest]`: a grid
    /// point in it (each equally likely), or, when it holds none, the instant at `share` of it.
    pub fn within(&self, earliest: Instant, latest: Instant, share: f64) -> Instant {
        let exact = earliest + latest.saturating_duration_since(earliest).mul_f64(share);
        let step = STEP.as_nanos();
        let (Some(from), Some(to)) = (
            earliest.checked_duration_since(self.origin),
            latest.checked_duration_since(self.origin),
        ) else {
            return exact;
        };
        let first = from.as_nanos().div_ceil(step);
        let last = to.as_nanos() / step;
        if last < first {
            return exact;
        }
        let points = last - first + 1;
        let k = first + ((share * points as f64) as u128).min(points - 1);
        u64::try_from(k * step).map_or(exact, |n| self.origin + Duration::from_nanos(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every look lies in its window; where the window holds a grid point it is on the grid.
    #[tokio::test(start_paused = true)]
    async fn a_look_stays_in_its_window_on_the_grid_where_it_can() {
        let origin = Instant::now();
        let grid = Grid::new(origin);
        for (from_ms, width_ms) in [(0u64, 20u64), (3, 10), (7, 5), (12, 2), (1_001, 250), (33, 0)] {
            let earliest = origin + Duration::from_millis(from_ms);
            let latest = earliest + Duration::from_millis(width_ms);
            for i in 0..50 {
                let at = grid.within(earliest, latest, f64::from(i) / 50.0);
                assert!(earliest <= at && at <= latest, "{at:?} outside its window");
                let on_grid = (at - origin).as_nanos().is_multiple_of(STEP.as_nanos());
                let holds_a_point = from_ms.div_ceil(5) * 5 <= from_ms + width_ms;
                if holds_a_point {
                    assert!(on_grid, "window {from_ms}+{width_ms} ms holds a grid point: {at:?}");
                }
            }
        }
    }

    /// Looks of many observations due in the same few ms share their instants (one wake-up
    /// each), and every grid point of a window is used.
    #[tokio::test(start_paused = true)]
    async fn looks_due_together_share_their_instants() {
        let grid = Grid::new(Instant::now());
        let now = Instant::now() + Duration::from_millis(100);
        let gap = Duration::from_millis(40);
        let looks: std::collections::BTreeSet<Instant> = (0..200)
            .map(|_| {
                // Each observation's window: its own gap, jittered by ±25 %.
                let start = now + Duration::from_micros(rand::random::<u64>() % 3_000);
                grid.within(start + gap.mul_f64(0.75), start + gap.mul_f64(1.25), rand::random())
            })
            .collect();
        assert!(looks.len() <= 5, "200 looks on {} instants", looks.len());
        assert!(looks.len() >= 4, "a window's grid points are all used: {looks:?}");
    }
}
