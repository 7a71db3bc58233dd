//! `run.log`: one JSON object per line for each notable thing in a run (start, stage change,
//! errors by reason in an interval, a threshold lost, verdicts, cleanup, end), flushed as
//! written so a killed run keeps its log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::metrics::ErrorKind;
use crate::metrics::writer::{IntervalObserver, IntervalView};
use crate::vocab::{metric, tag};

pub struct RunLog {
    file: Mutex<BufWriter<File>>,
}

impl RunLog {
    pub fn open(dir: &Path) -> anyhow::Result<RunLog> {
        let file = File::create(dir.join("run.log")).map_err(|e| anyhow::anyhow!("cannot create run.log: {e}"))?;
        Ok(RunLog {
            file: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Appends `{"ts": ..., "event": event, ...fields}`.
    pub fn event(&self, event: &str, fields: Value) {
        let mut line = json!({
            "ts": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            "event": event,
        });
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let mut f = self.file.lock();
        // A failed log write must not fail the run; the results files are the contract.
        // JSON lines stay JSON: what JSON leaves raw (C1, bidi) becomes a `\u202e`-style escape.
        let _ = writeln!(f, "{}", crate::redact::json(&line.to_string()));
        let _ = f.flush();
    }
}

/// Feeds `run.log` an `errors` event for every interval with failed operations, by operation
/// and reason: an observer of the interval writer.
pub struct ErrorEvents(pub std::sync::Arc<RunLog>);

impl IntervalObserver for ErrorEvents {
    fn interval(&mut self, view: &IntervalView<'_>) {
        let mut by_reason = serde_json::Map::new();
        for (key, d) in view.keys.iter().zip(view.interval) {
            if key.metric != metric::API_LATENCY {
                continue;
            }
            for kind in ErrorKind::ALL {
                let n = d.errors[kind as usize];
                if n > 0 {
                    let entry = by_reason
                        .entry(format!("{}:{}", key.get(tag::OP).unwrap_or("-"), kind.name()))
                        .or_insert(0.into());
                    *entry = (entry.as_u64().unwrap_or(0) + n).into();
                }
            }
        }
        if !by_reason.is_empty() {
            self.0.event(
                "errors",
                json!({"t_s": view.start.as_secs_f64(), "by_op_and_reason": by_reason}),
            );
        }
    }
}
