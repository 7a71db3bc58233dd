//! Downstream effects the pipeline writes: the audit log and the welcome-message outbox, each an
//! append-only event log indexed by its subject so per-user look-ups stay cheap, and bounded by
//! the retention window (entries older than it are dropped from the front, oldest first).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use super::retention::Window;

/// An event with a sequence number and the key it is indexed by (the user it is about).
pub trait Event: Serialize + Clone {
    fn seq(&self) -> u64;
    fn key(&self) -> &str;
}

pub struct EventLog<T> {
    /// In sequence order, each with when it was written (sequence and time order agree but for
    /// two workers racing, which the window does not need to tell apart).
    entries: Mutex<VecDeque<(Instant, T)>>,
    by_key: DashMap<String, Vec<T>>,
    next_seq: AtomicU64,
    window: Window,
}

impl<T: Event> EventLog<T> {
    pub fn new(window: Window) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            by_key: DashMap::new(),
            next_seq: AtomicU64::new(1),
            window: Window {
                keep: window.keep,
                cap: window.cap.max(1),
            },
        }
    }

    /// How many entries are held, and about how many subjects.
    pub fn len(&self) -> (usize, usize) {
        (self.entries.lock().len(), self.by_key.len())
    }

    /// Drops what is past the window at `now` (for quiet periods without writes).
    pub fn sweep(&self, now: Instant) {
        self.expire(self.entries.lock(), now);
    }

    fn expire(&self, mut entries: parking_lot::MutexGuard<'_, VecDeque<(Instant, T)>>, now: Instant) {
        let mut old = Vec::new();
        while let Some((at, _)) = entries.front() {
            if entries.len() <= self.window.cap && !self.window.expired(*at, now) {
                break;
            }
            old.extend(entries.pop_front().map(|(_, e)| e));
        }
        // The index is a separate map: update it without holding the log.
        drop(entries);
        for old in old {
            self.by_key.remove_if_mut(old.key(), |_, v| {
                v.retain(|e| e.seq() != old.seq());
                v.is_empty()
            });
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends `event`, written at `at`, and drops what the window no longer holds.
    pub fn push(&self, event: T, at: Instant) {
        self.by_key
            .entry(event.key().to_string())
            .or_default()
            .push(event.clone());
        let mut entries = self.entries.lock();
        // Keep the log ordered by sequence even when two workers race.
        let pos = entries.partition_point(|(_, e)| e.seq() < event.seq());
        entries.insert(pos, (at, event));
        self.expire(entries, at);
    }

    /// Events after `since` (a sequence number), optionally only those about `key`.
    pub fn query(&self, since: u64, key: Option<&str>, limit: usize) -> Vec<T> {
        match key {
            Some(k) => self
                .by_key
                .get(k)
                .map(|v| v.iter().filter(|e| e.seq() > since).take(limit).cloned().collect())
                .unwrap_or_default(),
            None => {
                let entries = self.entries.lock();
                let start = entries.partition_point(|(_, e)| e.seq() <= since);
                entries.range(start..).take(limit).map(|(_, e)| e.clone()).collect()
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub timestamp: String,
    /// Who asked for the change: `client:ID`, `user:ID` or `token:NAME`.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub job_id: u64,
}

impl Event for AuditEntry {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn key(&self) -> &str {
        &self.target
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub seq: u64,
    pub user_id: String,
    pub to: String,
    pub subject: String,
    pub created_at: String,
}

impl Event for Message {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn key(&self) -> &str {
        &self.user_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(log: &EventLog<AuditEntry>, target: &str) -> AuditEntry {
        AuditEntry {
            seq: log.next_seq(),
            timestamp: String::new(),
            actor: "client:x".into(),
            action: "create_user".into(),
            target: target.into(),
            job_id: 1,
        }
    }

    #[test]
    fn query_by_key_and_since_and_capacity() {
        let log = EventLog::new(Window {
            keep: std::time::Duration::from_secs(60),
            cap: 3,
        });
        for t in ["a", "b", "a", "c"] {
            log.push(entry(&log, t), Instant::now());
        }
        // Capacity 3: the first "a" fell out of both views.
        let all: Vec<u64> = log.query(0, None, 10).iter().map(|e| e.seq).collect();
        assert_eq!(all, vec![2, 3, 4]);
        let a: Vec<u64> = log.query(0, Some("a"), 10).iter().map(|e| e.seq).collect();
        assert_eq!(a, vec![3]);
        assert_eq!(log.query(3, None, 10).len(), 1);
        assert!(log.query(0, Some("zzz"), 10).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_past_the_window_leave_both_views() {
        use std::time::Duration;
        let log = EventLog::new(Window {
            keep: Duration::from_secs(30),
            cap: 1000,
        });
        log.push(entry(&log, "old"), Instant::now());
        tokio::time::advance(Duration::from_secs(20)).await;
        log.push(entry(&log, "mid"), Instant::now());
        tokio::time::advance(Duration::from_secs(15)).await;
        // 35 s after "old": the write of "new" drops it.
        log.push(entry(&log, "new"), Instant::now());
        let all: Vec<u64> = log.query(0, None, 10).iter().map(|e| e.seq).collect();
        assert_eq!(all, vec![2, 3]);
        assert!(log.query(0, Some("old"), 10).is_empty());
        assert_eq!(log.len(), (2, 2));
        // Without writes the sweep drops "mid" (35 s old) and keeps "new" (20 s), still readable.
        tokio::time::advance(Duration::from_secs(20)).await;
        log.sweep(Instant::now());
        assert_eq!(log.len(), (1, 1));
        assert_eq!(log.query(0, Some("new"), 10).len(), 1);
    }
}
