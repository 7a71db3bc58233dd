//! Time-based retention: what the service keeps about past writes (jobs, deleted users'
//! tombstones in linked services) is forgotten once it is older than the configured window, or
//! once more than the count cap are held. Keys are queued in the order they were written, so
//! forgetting costs a look at the queue's front per write (amortised O(1)), never a scan.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause()` and `advance`.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// How long, and how many at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub keep: Duration,
    pub cap: usize,
}

impl Window {
    /// True when something written at `at` is past the window at `now`.
    pub fn expired(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) > self.keep
    }
}

/// A time-ordered queue of keys to forget.
pub struct Expiry<K> {
    queue: Mutex<VecDeque<(Instant, K)>>,
    window: Window,
}

impl<K> Expiry<K> {
    pub fn new(window: Window) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            window,
        }
    }

    /// Records `key` as written at `at`, then hands every key past the window (or beyond the
    /// cap) to `forget`, oldest first.
    pub fn push(&self, at: Instant, key: K, forget: impl FnMut(K)) {
        let mut queue = self.queue.lock();
        queue.push_back((at, key));
        self.drain(&mut queue, at, forget);
    }

    /// Forgets what is past the window at `now` (for quiet periods without writes).
    pub fn sweep(&self, now: Instant, forget: impl FnMut(K)) {
        self.drain(&mut self.queue.lock(), now, forget);
    }

    fn drain(&self, queue: &mut VecDeque<(Instant, K)>, now: Instant, mut forget: impl FnMut(K)) {
        while let Some((at, _)) = queue.front() {
            if queue.len() <= self.window.cap && !self.window.expired(*at, now) {
                break;
            }
            if let Some((_, key)) = queue.pop_front() {
                forget(key);
            }
        }
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn forgets_by_age_and_by_count() {
        let e = Expiry::new(Window {
            keep: Duration::from_secs(10),
            cap: 5,
        });
        let mut gone = Vec::new();
        for k in 0..3 {
            e.push(Instant::now(), k, |k| gone.push(k));
            tokio::time::advance(Duration::from_secs(4)).await;
        }
        // 12 s after the first: 0 is past the window, 1 (8 s) and 2 (4 s) are not.
        e.sweep(Instant::now(), |k| gone.push(k));
        assert_eq!(gone, vec![0]);
        for k in 3..9 {
            e.push(Instant::now(), k, |k| gone.push(k));
        }
        // The cap holds five, whatever their age.
        assert_eq!(e.len(), 5);
        assert_eq!(gone, vec![0, 1, 2, 3]);
    }
}
