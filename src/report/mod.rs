//! What a run leaves for people and pipelines, rendered from the results contract
//! (`results::Summary` plus the run's `histograms.hlog` and `intervals.csv`), and the commands
//! that only read results: `report`, `compare`, `merge`. Imports nothing from the engine,
//! probes, checks or workload: every verdict here is judged from what `summary.json` declares.
//!
//! # Layout
//! - [`table`]: the metrics table, built once from the summary; console, Markdown and HTML lay
//!   it out.
//! - [`console`]: the table printed at the end of a run.
//! - [`junit`]: `junit.xml`. [`markdown`]: `summary.md`. [`html`]: `report.html`, made of
//!   [`headline`], [`failures`], the charts and [`details`]; [`readable`]: names as people
//!   read them (`create_user → crm`).
//! - [`mod@rebuild`]: metrics, verdicts and outcome judged again from a folder's files (a killed run).
//! - [`compare`]: baseline comparisons. [`merge`]: the shards of a run as one.
//! - [`markup`]: text made inert for HTML and Markdown; [`charts`]: inline SVG charts (each
//!   drawn by [`plot`]);
//!   [`timeline`]: what report.html charts, over time and by percentile.

pub mod charts;
pub mod compare;
pub mod console;
pub mod details;
pub mod failures;
pub mod headline;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod markup;
pub mod merge;
pub mod plot;
pub mod readable;
pub mod rebuild;
pub mod table;
pub mod timeline;

use std::path::Path;

use anyhow::Context;

pub use crate::results::Summary;
pub use rebuild::rebuild;

/// `s` with every text in it on one line, as [`crate::redact::line()`] shows it: failure samples,
/// check reasons, notes, errors, names may all hold a target's text, and a CR, LF, ESC or bidi
/// override in one must not start a line of its own (a fake `all thresholds passed`) in any
/// report. Every renderer starts here. A summary that does not survive the round trip (it
/// always should) is kept as it is: the renderers' whole-text [`crate::redact::output`] still
/// escapes everything but newlines.
pub fn one_line(s: &Summary) -> Summary {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(text) if text.chars().any(crate::redact::escape::hidden) => {
                *text = crate::redact::line(text);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(s) else {
        return s.clone();
    };
    walk(&mut value);
    serde_json::from_value(value).unwrap_or_else(|_| s.clone())
}

/// Writes every report derived from the summary into `dir` (summary.json is the caller's).
/// Every file goes through [`crate::redact::output`]: no secret, no raw control character.
pub fn write_all(s: &Summary, dir: &Path) -> anyhow::Result<()> {
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), crate::redact::output(&text)).with_context(|| format!("cannot write {name}"))
    };
    write("junit.xml", junit::render(s))?;
    write("summary.md", markdown::render(s))?;
    let workload = std::fs::read_to_string(dir.join("workload.toml")).unwrap_or_default();
    write("report.html", html::render_rows(s, &timeline::read(dir), &workload))
}

#[cfg(test)]
mod html_tests;
#[cfg(test)]
mod tests;
