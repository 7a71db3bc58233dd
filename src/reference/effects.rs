//! Downstream effects the pipeline writes: the audit log and the welcome-message outbox, each an
//! append-only, bounded event log indexed by its subject so per-user look-ups stay cheap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;
use serde::Serialize;

/// An event with a sequence number and the key it is indexed by (the user it is about).
pub trait Event: Serialize + Clone {
    fn seq(&self) -> u64;
    fn key(&self) -> &str;
}

pub struct EventLog<T> {
    entries: Mutex<VecDeque<T>>,
    by_key: DashMap<String, Vec<T>>,
    next_seq: AtomicU64,
    capacity: usize,
}

impl<T: Event> EventLog<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            by_key: DashMap::new(),
            next_seq: AtomicU64::new(1),
            capacity: capacity.max(1),
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn push(&self, event: T) {
        self.by_key
            .entry(event.key().to_string())
            .or_default()
            .push(event.clone());
        let mut entries = self.entries.lock();
        // Keep the log ordered by sequence even when two workers race.
        let pos = entries.partition_point(|e| e.seq() < event.seq());
        entries.insert(pos, event);
        if entries.len() > self.capacity
            && let Some(old) = entries.pop_front()
        {
            drop(entries);
            self.by_key.remove_if_mut(old.key(), |_, v| {
                v.retain(|e| e.seq() != old.seq());
                v.is_empty()
            });
        }
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
                let start = entries.partition_point(|e| e.seq() <= since);
                entries.range(start..).take(limit).cloned().collect()
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
        let log = EventLog::new(3);
        for t in ["a", "b", "a", "c"] {
            log.push(entry(&log, t));
        }
        // Capacity 3: the first "a" fell out of both views.
        let all: Vec<u64> = log.query(0, None, 10).iter().map(|e| e.seq).collect();
        assert_eq!(all, vec![2, 3, 4]);
        let a: Vec<u64> = log.query(0, Some("a"), 10).iter().map(|e| e.seq).collect();
        assert_eq!(a, vec![3]);
        assert_eq!(log.query(3, None, 10).len(), 1);
        assert!(log.query(0, Some("zzz"), 10).is_empty());
    }
}
