//! `run.log`: one JSON object per line for each notable thing in a run (start, stage change,
//! errors by reason in an interval, a threshold lost, verdicts, cleanup, end), flushed as
//! written so a killed run keeps its log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde_json::{Value, json};

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
        let _ = writeln!(f, "{line}");
        let _ = f.flush();
    }
}
