//! The metrics table of a run, built once from `results::Summary`: which rows (every series),
//! in what order (operations, then everything observed, each in the summary's order), which
//! columns each group has and what they mean, every cell formatted for people with its unit,
//! and each row's emphasis (errors, or a failed threshold over it). The console, `summary.md`
//! and `report.html` only lay it out, so the three never disagree about what a run measured.
//!
//! Imports the results, the shared vocabulary and the threshold grammar (to tell which rows a
//! failed threshold judged), and no renderer: the renderers import it.

use crate::results::{MetricSummary, Summary, Verdict, format_micros};
use crate::thresholds::Threshold;
use crate::thresholds::parse::Selector;
use crate::vocab::{metric, tag};

/// A column after the name. Every value is a number, its unit in the cell (`2.50ms`, `850µs`)
/// or the header (`ops/s`), so every column is right-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Short, for narrow tables: `429`, `p99.9`.
    pub header: &'static str,
    /// What the header means, for a reader who does not know (a tooltip in HTML).
    pub about: &'static str,
}

const fn col(header: &'static str, about: &'static str) -> Column {
    Column { header, about }
}

const COUNT: Column = col("count", "attempts: successes, failures and timeouts");
const ERRORS: Column = col("errors", "attempts that failed");
const PERCENTILES: [Column; 5] = [
    col("p50", "median duration"),
    col("p90", "90th percentile duration"),
    col("p99", "99th percentile duration"),
    col("p99.9", "99.9th percentile duration"),
    col("max", "longest duration"),
];

/// Operations: what the virtual admins asked for, with their final 429s and their rate.
fn operation_columns() -> Vec<Column> {
    let mut columns = vec![
        COUNT,
        ERRORS,
        col("429", "attempts answered 429 (rate limited) after every retry"),
        col("ops/s", "attempts per second of the load phase"),
    ];
    columns.extend(PERCENTILES);
    columns
}

/// Observations (the asynchronous half, checks, the generator's own wait): timeouts instead of
/// 429s, no rate (they follow the operations), and how precise they are.
fn observed_columns() -> Vec<Column> {
    let mut columns = vec![
        COUNT,
        ERRORS,
        col("timeouts", "observations that never arrived, counted at their bound"),
    ];
    columns.extend(PERCENTILES);
    columns.push(col(
        "resolution p50/max",
        "how precise an observation is: median and widest bracket, or the clock uncertainty",
    ));
    columns
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Operations,
    Observed,
}

/// Rows that share their columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub kind: GroupKind,
    /// The header of the name column: `operation` or `observed`.
    pub title: &'static str,
    /// The columns after the name, in order.
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

/// How a row stands out; a failed threshold outranks errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Emphasis {
    None,
    /// Some attempts failed, or some observations never arrived.
    Errors,
    /// A threshold over this series failed.
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The full key, `sync_lag{op=create_user,service=directory}`: what a threshold names.
    pub key: String,
    /// The name within its group: the operation alone for an operation, else the key.
    pub label: String,
    /// The metric, and the series as people read it (`create_user → crm`, `all` for a metric
    /// without tags).
    pub metric: String,
    pub series: String,
    /// One formatted value per column of the group, in order.
    pub cells: Vec<String>,
    pub emphasis: Emphasis,
    /// Nothing was recorded: the series was registered but saw no attempt.
    pub empty: bool,
}

/// The groups in reading order; a group without rows is left out.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsTable {
    pub groups: Vec<Group>,
}

impl MetricsTable {
    pub fn build(s: &Summary) -> MetricsTable {
        let failed = failed_selectors(&s.thresholds);
        let secs = s.load.load_duration_s.max(1e-3);
        let (ops, observed): (Vec<&MetricSummary>, Vec<&MetricSummary>) =
            s.metrics.iter().partition(|m| m.metric == metric::API_LATENCY);
        let operations = Group {
            kind: GroupKind::Operations,
            title: "operation",
            columns: operation_columns(),
            rows: ops
                .into_iter()
                .map(|m| {
                    let label = m.tags.get(tag::OP).cloned().unwrap_or_else(|| m.key().to_string());
                    let mut cells = vec![
                        m.count.to_string(),
                        m.errors.to_string(),
                        m.rate_limited.to_string(),
                        format!("{:.1}", m.count as f64 / secs),
                    ];
                    cells.extend(durations(m));
                    row(m, label, cells, &failed)
                })
                .collect(),
        };
        let observed = Group {
            kind: GroupKind::Observed,
            title: "observed",
            columns: observed_columns(),
            rows: observed
                .into_iter()
                .map(|m| {
                    let mut cells = vec![m.count.to_string(), m.errors.to_string(), m.timeouts.to_string()];
                    cells.extend(durations(m));
                    cells.push(resolution(m));
                    row(m, m.key().to_string(), cells, &failed)
                })
                .collect(),
        };
        MetricsTable {
            groups: [operations, observed]
                .into_iter()
                .filter(|g| !g.rows.is_empty())
                .collect(),
        }
    }

    /// The table without the observed series that saw nothing, for a view read at a glance
    /// (the console); the operations stay, since an operation that never ran is news.
    pub fn at_a_glance(mut self) -> MetricsTable {
        for g in self.groups.iter_mut().filter(|g| g.kind == GroupKind::Observed) {
            g.rows.retain(|r| !r.empty);
        }
        self.groups.retain(|g| !g.rows.is_empty());
        self
    }
}

fn row(m: &MetricSummary, label: String, cells: Vec<String>, failed: &[Selector]) -> Row {
    let emphasis = if failed.iter().any(|f| judges(f, m)) {
        Emphasis::Failed
    } else if m.errors > 0 || m.timeouts > 0 {
        Emphasis::Errors
    } else {
        Emphasis::None
    };
    Row {
        key: m.key().to_string(),
        label,
        metric: m.metric.clone(),
        series: if m.tags.is_empty() {
            "all".to_string()
        } else {
            crate::vocab::series::label(&m.key())
        },
        cells,
        emphasis,
        empty: m.count == 0,
    }
}

fn durations(m: &MetricSummary) -> [String; 5] {
    [m.p50_us, m.p90_us, m.p99_us, m.p999_us, m.max_us].map(format_micros)
}

/// `12.00ms/40.00ms`, the median alone when no worst is known, `-` for a direct timing.
fn resolution(m: &MetricSummary) -> String {
    match (m.resolution_us, m.resolution_max_us) {
        (Some(median), Some(worst)) => format!("{}/{}", format_micros(Some(median)), format_micros(Some(worst))),
        (median, _) => format_micros(median),
    }
}

/// The selectors of the thresholds that failed (not those that could not be judged: no row of
/// theirs holds data).
fn failed_selectors(verdicts: &[Verdict]) -> Vec<Selector> {
    verdicts
        .iter()
        .filter(|v| !v.passed && v.error.is_none())
        .filter_map(|v| match Threshold::parse(&v.expression) {
            Ok(Threshold::Aggregate { selector, .. }) => Some(selector),
            _ => None,
        })
        .collect()
}

/// Whether a threshold over `selector` was judged on this series, by the same rules the
/// thresholds match series: `errors{..}` counts the operations the tags select,
/// `timeouts{metric=..,..}` and `rate_limited{..}` any series, `checks{..}` no series at all.
fn judges(selector: &Selector, m: &MetricSummary) -> bool {
    let tags_match = |skip: Option<&str>| {
        selector
            .tags
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != skip)
            .all(|(k, v)| m.tags.get(k) == Some(v))
    };
    match selector.metric.as_str() {
        metric::CHECKS => false,
        metric::ERRORS => m.metric == metric::API_LATENCY && tags_match(None),
        metric::TIMEOUTS | metric::RATE_LIMITED => {
            selector.tags.get(tag::METRIC).is_none_or(|w| *w == m.metric) && tags_match(Some(tag::METRIC))
        }
        name => m.metric == name && tags_match(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::fixture;

    #[test]
    fn operations_then_observations_each_in_summary_order() {
        let t = MetricsTable::build(&fixture());
        let keys: Vec<Vec<&str>> = t
            .groups
            .iter()
            .map(|g| g.rows.iter().map(|r| r.key.as_str()).collect())
            .collect();
        assert_eq!(
            keys,
            [
                vec!["api_latency{op=create_user}", "api_latency{op=delete_user}"],
                vec![
                    "queue_delay{op=create_user}",
                    "sync_lag{op=create_user,service=directory}"
                ],
            ]
        );
        let ops = &t.groups[0];
        assert_eq!(ops.rows[0].label, "create_user");
        assert_eq!(ops.rows[1].cells[3], "99.7", "ops/s over the load phase");
        for g in &t.groups {
            assert!(g.rows.iter().all(|r| r.cells.len() == g.columns.len()));
        }
        let sync = &t.groups[1].rows[1];
        assert_eq!(sync.cells.last().unwrap(), "12.00ms/40.00ms");
        assert_eq!(t.groups[1].rows[0].cells.last().unwrap(), "-", "a direct timing");
    }

    /// At a glance an observed series that saw nothing is left out, an operation never.
    #[test]
    fn at_a_glance_leaves_out_observed_series_without_data() {
        let mut s = fixture();
        s.metrics[1].count = 0;
        s.metrics[2].count = 0;
        let t = MetricsTable::build(&s).at_a_glance();
        assert_eq!(t.groups[0].rows.len(), 2);
        assert_eq!(t.groups[1].rows.len(), 1);
        assert_eq!(
            MetricsTable::build(&s).groups[1].rows.len(),
            2,
            "the full table keeps them"
        );
        s.metrics[3].count = 0;
        assert_eq!(MetricsTable::build(&s).at_a_glance().groups.len(), 1);
    }

    #[test]
    fn a_failed_threshold_outranks_errors() {
        let mut s = fixture();
        s.metrics[1].errors = 3;
        s.metrics[2].timeouts = 1;
        let t = MetricsTable::build(&s);
        let emphasis = |g: usize, r: usize| t.groups[g].rows[r].emphasis;
        // p99(api_latency{op=create_user}) < 10ms failed; rate(errors) < 1% passed.
        assert_eq!(emphasis(0, 0), Emphasis::Failed);
        assert_eq!(emphasis(0, 1), Emphasis::Errors);
        assert_eq!(emphasis(1, 0), Emphasis::Errors);
        assert_eq!(emphasis(1, 1), Emphasis::None);
    }

    /// The pseudo-metrics select rows the way thresholds judge them, and an unjudged threshold
    /// (no data) marks nothing.
    #[test]
    fn pseudo_metric_thresholds_mark_the_series_they_count() {
        let m = |metric: &str, tags: &[(&str, &str)]| MetricSummary {
            metric: metric.into(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..fixture().metrics[0].clone()
        };
        let sel = |e: &str| {
            failed_selectors(&[Verdict {
                expression: e.into(),
                observed: None,
                observed_text: String::new(),
                passed: false,
                error: None,
            }])
            .remove(0)
        };
        let create = m("api_latency", &[("op", "create_user")]);
        let lag = m("sync_lag", &[("op", "create_user"), ("service", "crm")]);
        assert!(judges(&sel("rate(errors{op=create_user}) < 1%"), &create));
        assert!(!judges(&sel("rate(errors) < 1%"), &lag));
        assert!(judges(&sel("count(timeouts{metric=sync_lag,service=crm}) == 0"), &lag));
        assert!(!judges(&sel("count(timeouts{metric=queue_delay}) == 0"), &lag));
        assert!(!judges(&sel("failed(checks) == 0"), &create));
        assert!(judges(&sel("p99(sync_lag) < 1s"), &lag));
        let unjudged = Verdict {
            expression: "p99(sync_lag) < 1s".into(),
            observed: None,
            observed_text: String::new(),
            passed: false,
            error: Some("no data".into()),
        };
        assert!(failed_selectors(&[unjudged]).is_empty());
    }
}
