//! `report.html` as a reviewer reads it: the headline (a snapshot), failures before any chart,
//! one colour per series across every chart, no empty chart, lags by the time of the write.

use std::collections::{BTreeMap, BTreeSet};

use super::html;
use super::tests::fixture;
use crate::metrics::intervals::IntervalRow;
use crate::results::RunOutcome;

/// The headline, as a reviewer reads it first: the verdict, thresholds passed of those judged,
/// each check with its evidence (judged/needed), the slowest operation, the worst sync lag per
/// service and the errors.
#[test]
fn headline_snapshot() {
    let mut out = String::new();
    super::headline::render(&mut out, &fixture());
    insta::assert_snapshot!(out);
}

/// The headline comes first, then what failed, then the charts: no chart sits above a failure.
#[test]
fn the_headline_and_failures_come_before_any_chart() {
    let page = html::render(&fixture(), &intervals_of(&["op=create_user"]), "");
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle} missing: {page}"));
    let (headline, failed, chart) = (
        at("<section id=\"headline\""),
        at("<section id=\"what-failed\">"),
        at("<figure class=\"chart\""),
    );
    assert!(headline < failed && failed < chart, "{headline} {failed} {chart}");
    for needle in [
        "data-verdict=\"FAILED\"",
        "data-thresholds-passed=\"1\" data-thresholds-total=\"2\"",
        "data-check=\"revocation\" data-judged=\"42\" data-needed=\"5\"",
        "data-slowest=\"create_user\"",
        "data-lag-service=\"directory\"",
        "data-errors=\"0\"",
        "<td>p99 api latency</td><td>create_user</td><td>&lt; 10ms</td><td>12.00ms</td>",
        "a token issued before the change still works",
    ] {
        assert!(page[..chart].contains(needle), "{needle} above the charts: {page}");
    }
    let mut passed = fixture();
    passed.outcome = RunOutcome::Passed;
    passed.thresholds.retain(|v| v.passed);
    passed.checks.clear();
    let page = html::render(&passed, &[], "");
    assert!(
        !page.contains("id=\"what-failed\""),
        "nothing failed, no section: {page}"
    );
}

fn intervals_of(tags: &[&str]) -> Vec<IntervalRow> {
    let row = |i: usize, metric: &str, tags: &str| IntervalRow {
        interval_start_s: i as f64,
        timestamp: String::new(),
        metric: metric.into(),
        tags: tags.into(),
        count: 10,
        errors: 0,
        timeouts: 0,
        rate_limited: 0,
        p50_us: Some(2_000 + i as u64),
        p99_us: Some(9_000 + i as u64),
        max_us: Some(10_000),
    };
    (0..5)
        .flat_map(|i| {
            tags.iter().map(move |t| {
                let metric = if t.contains("service=") {
                    "sync_lag"
                } else {
                    "api_latency"
                };
                row(i, metric, t)
            })
        })
        .collect()
}

/// Every `data-series` of a page with the colour it is drawn in (a path's stroke, a legend
/// entry's data-stroke).
fn colours(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, _) in page.match_indices("data-series=\"") {
        let rest = &page[at + 13..];
        let name = &rest[..rest.find('"').unwrap()];
        let tag = &rest[..rest.find('>').unwrap()];
        for attr in [" stroke=\"", " data-stroke=\""] {
            if let Some(i) = tag.find(attr) {
                let v = &tag[i + attr.len()..];
                out.push((name.to_string(), v[..v.find('"').unwrap()].to_string()));
            }
        }
    }
    out
}

/// One colour per series across every chart (an operation's API p99, its distribution, its
/// queue delay), no two series of the run alike; a chart with no data is left out.
#[test]
fn one_colour_per_series_across_every_chart_and_no_empty_chart() {
    let mut s = fixture();
    s.metrics.push(s.metrics[3].clone());
    s.metrics[4].tags.insert("service".into(), "crm".into());
    let rows = super::timeline::Rows {
        intervals: intervals_of(&[
            "op=create_user",
            "op=delete_user",
            "op=create_user;service=directory",
            "op=create_user;service=crm",
        ]),
        by_write: Vec::new(),
    };
    let page = html::render_rows(&s, &rows, "");
    let seen = colours(&page);
    let mut by_series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, colour) in &seen {
        by_series.entry(name.clone()).or_default().insert(colour.clone());
    }
    for (name, set) in &by_series {
        assert_eq!(set.len(), 1, "{name} drawn in {set:?}");
    }
    let create: usize = seen.iter().filter(|(n, _)| n == "create_user").count();
    assert!(create >= 6, "create_user in several charts, path and legend: {create}");
    assert!(by_series.contains_key("create_user → crm") && by_series.contains_key("create_user → directory"));
    let distinct: BTreeSet<&String> = by_series
        .iter()
        .filter(|(n, _)| !n.ends_with("/s"))
        .map(|(_, c)| c.iter().next().unwrap())
        .collect();
    assert_eq!(distinct.len(), by_series.len() - 2, "{by_series:?}");
    // No intervals of queue delay or end to end: their charts over time are left out, and every
    // figure drawn holds a line.
    assert!(
        !page.contains("Queue delay p99") && !page.contains("End to end p99"),
        "{page}"
    );
    for figure in page.split("<figure").skip(1) {
        assert!(figure.contains("<path data-series="), "an empty chart: {figure}");
    }
    // Lags by the time of the write, when the run has them, are what the chart shows.
    let mut by_write = intervals_of(&["op=create_user;service=crm"]);
    by_write.truncate(2);
    let rows = super::timeline::Rows { by_write, ..rows };
    assert!(html::render_rows(&s, &rows, "").contains("Sync lag p99, by the time of the write"));
}
