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
//! - On request ([`Format`], `--report-format`), for CI systems: [`gitlab`]:
//!   `gitlab-load-performance.json` (the k6 summary keys GitLab's load-performance widget reads);
//!   [`openmetrics`]: `metrics.txt` (GitLab metrics reports); [`bmf`]: `bmf.json` (Bencher).
//! - [`mod@rebuild`]: metrics, verdicts and outcome judged again from a folder's files (a killed run).
//! - [`compare`]: baseline comparisons. [`merge`]: the shards of a run as one.
//! - [`markup`]: text made inert for HTML and Markdown; [`charts`]: inline SVG charts (each
//!   drawn by [`plot`]);
//!   [`timeline`]: what report.html charts, over time and by percentile.

pub mod bmf;
pub mod charts;
pub mod compare;
pub mod console;
pub mod details;
pub mod failures;
pub mod gitlab;
pub mod headline;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod markup;
pub mod merge;
pub mod openmetrics;
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

/// A report written only on request (`--report-format`), for a CI system that reads its own
/// format. Every one is rendered from the summary (and, for [`Format::GitlabLoadPerformance`],
/// the run's `histograms.hlog`), so `provbench report --report-format ...` writes it for any run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `gitlab-load-performance.json`: GitLab's load-performance report (k6 `--summary-export`).
    GitlabLoadPerformance,
    /// `metrics.txt`: OpenMetrics text, as GitLab's metrics reports read it.
    OpenMetrics,
    /// `bmf.json`: Bencher Metric Format.
    Bmf,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::GitlabLoadPerformance, Format::OpenMetrics, Format::Bmf];

    /// The name `--report-format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::GitlabLoadPerformance => "gitlab-load-performance",
            Format::OpenMetrics => "openmetrics",
            Format::Bmf => "bmf",
        }
    }

    /// The file it is written to, in the results folder.
    pub fn file(self) -> &'static str {
        match self {
            Format::GitlabLoadPerformance => "gitlab-load-performance.json",
            Format::OpenMetrics => "metrics.txt",
            Format::Bmf => "bmf.json",
        }
    }

    /// The file's text, redacted: JSON through [`crate::redact::json`] (still JSON), text through
    /// [`crate::redact::output`].
    fn render(self, s: &Summary, dir: &Path) -> String {
        match self {
            Format::GitlabLoadPerformance => crate::redact::json(&gitlab::render(s, gitlab::api_latency(dir).as_ref())),
            Format::OpenMetrics => crate::redact::output(&openmetrics::render(s)),
            Format::Bmf => crate::redact::json(&bmf::render(s)),
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Format, String> {
        Format::ALL.into_iter().find(|f| f.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown report format `{text}`: one of {}", names.join(", "))
        })
    }
}

/// Writes every report derived from the summary into `dir` (summary.json is the caller's), and
/// each requested [`Format`]. Every file goes through [`crate::redact::output`] (JSON through
/// [`crate::redact::json`]): no secret, no raw control character.
pub fn write_all(s: &Summary, dir: &Path, formats: &[Format]) -> anyhow::Result<()> {
    let write =
        |name: &str, text: String| std::fs::write(dir.join(name), text).with_context(|| format!("cannot write {name}"));
    write("junit.xml", crate::redact::output(&junit::render(s)))?;
    write("summary.md", crate::redact::output(&markdown::render(s)))?;
    let workload = std::fs::read_to_string(dir.join("workload.toml")).unwrap_or_default();
    write("report.html", html::render_rows(s, &timeline::read(dir), &workload))?;
    let mut done = Vec::new();
    for f in formats {
        if !done.contains(f) {
            done.push(*f);
            write(f.file(), f.render(s, dir))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod html_tests;
#[cfg(test)]
mod tests;
