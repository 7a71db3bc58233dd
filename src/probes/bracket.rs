//! The bracket around a change: the reads on either side of it, the estimate inside it, and
//! whether a time the service published for the change agrees with it.

use std::time::Duration;

use tokio::time::Instant;

/// The reads around a change: when the last that did not show it went (the write's ack when none
/// missed it) and when the answer of the first that did came back. A service reads its state
/// somewhere between a request and its answer, so the change lies inside, whatever the reads'
/// latency. Visible means a reader gets it: a read that failed or was not answered in time
/// did not show the change either.
pub(super) struct Bracket {
    pub before: Instant,
    pub after: Instant,
    /// When the last read the service answered without the change went. The service applied the
    /// change after that (a failed read says nothing of when it applied it); with none, it may
    /// have applied it before the write's answer reached us, never before the write began.
    pub answered_miss: Option<Instant>,
}

/// Our monotonic instants on the wall clock, fixed once: the same instant and wall time read as
/// close together as the machine allows (the tightest of a few tries), so that a preemption
/// between the two reads cannot shift every published change time.
#[derive(Clone, Copy)]
pub(super) struct WallClock {
    instant: Instant,
    wall: std::time::SystemTime,
}

impl WallClock {
    pub fn now() -> WallClock {
        (0..5)
            .map(|_| {
                let before = Instant::now();
                let wall = std::time::SystemTime::now();
                let after = Instant::now();
                (
                    after - before,
                    WallClock {
                        instant: before + (after - before) / 2,
                        wall,
                    },
                )
            })
            .min_by_key(|(gap, _)| *gap)
            .map(|(_, c)| c)
            .expect("five tries")
    }

    /// `t` on our monotonic clock.
    fn instant(&self, t: std::time::SystemTime) -> Option<Instant> {
        match t.duration_since(self.wall) {
            Ok(after) => Some(self.instant + after),
            Err(before) => self.instant.checked_sub(before.duration()),
        }
    }
}

impl Bracket {
    /// The service's own change time `at`, when it lies inside the bracket (give or take the
    /// declared clock `uncertainty`), with that uncertainty as the resolution. A change applied
    /// before the ack (after the write `began`) is a lag of zero.
    pub fn stamped(
        &self,
        clock: &WallClock,
        (began, acked): (Instant, Instant),
        at: std::time::SystemTime,
        uncertainty: Duration,
    ) -> Option<(Duration, u64)> {
        let at = clock.instant(at)?;
        let earliest = self.answered_miss.unwrap_or(began);
        let inside = at + uncertainty >= earliest && at <= self.after + uncertainty;
        inside.then(|| {
            (
                at.saturating_duration_since(acked),
                uncertainty.as_micros().max(1) as u64,
            )
        })
    }

    /// The estimate inside the bracket: its midpoint (polls start at a random phase, so the change
    /// is equally likely anywhere in it), and the bracket's width as the resolution.
    pub fn since(&self, acked: Instant) -> (Duration, u64) {
        let width = self.after.saturating_duration_since(self.before);
        let mid = self.before + width / 2;
        (mid.saturating_duration_since(acked), width.as_micros() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn clock() -> WallClock {
        WallClock::now()
    }

    /// The wall time of `t` on `clock`.
    fn wall(clock: &WallClock, t: Instant) -> std::time::SystemTime {
        clock.wall + (t - clock.instant)
    }

    /// A read answered without the change `from` ms after `acked`, the first showing it answered
    /// `to` ms after.
    fn answered_between(acked: Instant, from: u32, to: u32) -> Bracket {
        Bracket {
            before: acked + from * MS,
            after: acked + to * MS,
            answered_miss: Some(acked + from * MS),
        }
    }

    #[test]
    fn the_midpoint_is_the_estimate_and_the_width_its_resolution() {
        let acked = Instant::now();
        let b = answered_between(acked, 10, 30);
        assert_eq!(b.since(acked), (20 * MS, 20_000));
    }

    #[test]
    fn a_published_time_inside_the_bracket_is_the_lag_to_its_uncertainty() {
        let c = clock();
        let acked = c.instant + 100 * MS;
        let b = answered_between(acked, 10, 30);
        let at = wall(&c, acked + 25 * MS);
        assert_eq!(b.stamped(&c, (acked - 5 * MS, acked), at, MS), Some((25 * MS, 1000)));
        // The answer's arrival bounds it: a change just before the first answer came back.
        let late = wall(&c, acked + 30 * MS);
        assert_eq!(b.stamped(&c, (acked - 5 * MS, acked), late, MS), Some((30 * MS, 1000)));
    }

    #[test]
    fn a_published_time_outside_the_bracket_is_refused() {
        let c = clock();
        let acked = c.instant + 100 * MS;
        let b = answered_between(acked, 10, 30);
        for t in [acked + 8 * MS, acked + 32 * MS] {
            assert_eq!(b.stamped(&c, (acked - 5 * MS, acked), wall(&c, t), MS), None, "{t:?}");
        }
    }

    #[test]
    fn a_change_applied_before_the_ack_arrived_is_a_lag_of_zero_but_not_before_the_write() {
        let c = clock();
        let acked = c.instant + 100 * MS;
        let began = acked - 20 * MS;
        let b = Bracket {
            before: acked,
            after: acked + 5 * MS,
            answered_miss: None,
        };
        let applied = wall(&c, acked - 10 * MS);
        assert_eq!(b.stamped(&c, (began, acked), applied, MS), Some((Duration::ZERO, 1000)));
        let before_the_write = wall(&c, began - 5 * MS);
        assert_eq!(b.stamped(&c, (began, acked), before_the_write, MS), None);
        // A read that failed says nothing of when the service applied it...
        let failed = Bracket {
            before: acked + 2 * MS,
            ..b
        };
        assert_eq!(
            failed.stamped(&c, (began, acked), applied, MS),
            Some((Duration::ZERO, 1000))
        );
        // ...but once the service answered without it, the change came after that read went.
        let missed = Bracket {
            answered_miss: Some(acked + 2 * MS),
            ..failed
        };
        assert_eq!(missed.stamped(&c, (began, acked), applied, MS), None);
    }
}
