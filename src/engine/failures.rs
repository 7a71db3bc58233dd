//! Why operations failed: per operation and reason, a count and the first few details (status
//! and the first bytes of the answer, secrets redacted), for `summary.json`, the console and the
//! report. Only the failure path takes its lock.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::metrics::ErrorKind;
use crate::results::FailureSample;

/// Details kept per (operation, reason).
const EXAMPLES: usize = 3;
/// Characters kept of each detail.
const LONGEST: usize = 300;

/// Per (operation, reason name): the count and the first details.
type Sampled = BTreeMap<(String, &'static str), (u64, Vec<String>)>;

#[derive(Default)]
pub struct Failures(Mutex<Sampled>);

impl Failures {
    pub fn record(&self, op: &str, kind: ErrorKind, detail: &str) {
        let mut all = self.0.lock();
        let (count, examples) = all.entry((op.to_string(), kind.name())).or_default();
        *count += 1;
        if examples.len() < EXAMPLES {
            // One line: an answer's CR, LF or ESC cannot start a line of its own in any report.
            let shown: String = crate::redact::line(detail).chars().take(LONGEST).collect();
            if !examples.contains(&shown) {
                examples.push(shown);
            }
        }
    }

    pub fn report(&self) -> Vec<FailureSample> {
        self.0
            .lock()
            .iter()
            .map(|((op, reason), (count, examples))| FailureSample {
                op: op.clone(),
                reason: reason.to_string(),
                count: *count,
                examples: examples.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_sample_per_operation_and_reason() {
        let f = Failures::default();
        for i in 0..10 {
            f.record(
                "create_user",
                ErrorKind::Status,
                &format!("HTTP 500 (expected [201]): boom {i}"),
            );
        }
        f.record("create_user", ErrorKind::Timeout, "no complete answer within 30s");
        f.record("delete_user", ErrorKind::Status, &"x".repeat(1000));
        let r = f.report();
        assert_eq!(r.len(), 3);
        let create = r
            .iter()
            .find(|s| s.op == "create_user" && s.reason == "status")
            .unwrap();
        assert_eq!((create.count, create.examples.len()), (10, EXAMPLES));
        assert!(create.examples[0].contains("boom 0"));
        let long = r.iter().find(|s| s.op == "delete_user").unwrap();
        assert_eq!(long.examples[0].chars().count(), LONGEST);
    }
}
