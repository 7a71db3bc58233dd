//! Report formats from a fixed summary fixture: snapshots of the text renderings (insta), and
//! escaping of everything a target could have put into a summary.

use std::collections::BTreeMap;

use super::table::MetricsTable;
use super::{console, html, junit, markdown};
use crate::metrics::intervals::IntervalRow;
use crate::results::{
    CheckReport, Example, JourneyInfo, LoadInfo, MetricSummary, RunOutcome, StopReason, Summary, TargetInfo, Verdict,
};

fn metric(metric: &str, tags: &[(&str, &str)], count: u64, p50: u64, p99: u64) -> MetricSummary {
    MetricSummary {
        metric: metric.into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        count,
        errors: 0,
        errors_by_reason: BTreeMap::new(),
        rate_limited: 0,
        timeouts: 0,
        min_us: Some(p50 / 2),
        p50_us: Some(p50),
        p90_us: Some((p50 + p99) / 2),
        p95_us: Some(p99 * 9 / 10),
        p99_us: Some(p99),
        p999_us: Some(p99 * 2),
        max_us: Some(p99 * 3),
        mean_us: Some(p50 as f64 * 1.1),
        resolution_us: (metric == "sync_lag").then_some(12_000),
        resolution_max_us: (metric == "sync_lag").then_some(40_000),
    }
}

pub fn fixture() -> Summary {
    Summary {
        schema_version: crate::results::SCHEMA_VERSION,
        run_id: "pb-00c0ffee".into(),
        workload: "fixture".into(),
        description: Some("A fixed run for report tests".into()),
        started_at: "2026-11-29T10:00:00.000Z".into(),
        ended_at: Some("2026-11-29T10:00:30.000Z".into()),
        outcome: RunOutcome::Failed,
        stop_reason: Some(StopReason::Deadline),
        target: TargetInfo {
            kind: "embedded".into(),
            url: "http://127.0.0.1:8080/scim/v2".into(),
        },
        load: LoadInfo {
            model: "closed".into(),
            description: "closed model, 20 admins, ramp 2s, 30s".into(),
            admins: 20,
            achieved_rate: 100.0,
            operations_per_second: 500.0,
            load_duration_s: 30.0,
            started: 3000,
            ..Default::default()
        },
        shard: None,
        overrides: vec![],
        strict: false,
        journeys: vec![JourneyInfo {
            name: "joiner".into(),
            weight: 1,
            completed: 2990,
            failed: 10,
            stopped: 0,
        }],
        metrics: vec![
            metric("api_latency", &[("op", "create_user")], 3000, 2_500, 12_000),
            metric("api_latency", &[("op", "delete_user")], 2990, 2_000, 9_000),
            metric("queue_delay", &[("op", "create_user")], 300, 40, 300),
            metric(
                "sync_lag",
                &[("op", "create_user"), ("service", "directory")],
                300,
                60_000,
                220_000,
            ),
        ],
        checks: vec![CheckReport {
            name: "revocation".into(),
            kind: "revocation".into(),
            category: "security".into(),
            passed: 40,
            failed: 2,
            skipped: 1,
            examples: vec![Example {
                user: Some("pb-00c0ffee-7@example.test".into()),
                service: Some("crm".into()),
                detail: "a token issued before the change still works after 10s".into(),
            }],
            notes: vec![],
            min_evidence: 5,
            by_change: Default::default(),
            error: None,
        }],
        declared_thresholds: vec![],
        thresholds: vec![
            Verdict {
                expression: "p99(api_latency{op=create_user}) < 10ms".into(),
                observed: Some(12_000.0),
                observed_text: "12.00ms".into(),
                passed: false,
                error: None,
            },
            Verdict {
                expression: "rate(errors) < 1%".into(),
                observed: Some(0.0),
                observed_text: "0.000%".into(),
                passed: true,
                error: None,
            },
        ],
        check_cost: None,
        probes: None,
        cleanup: None,
        failures: Vec::new(),
        notes: vec!["a note".into()],
    }
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(markdown::render(&fixture()));
}

/// The console fits a terminal's 100 columns, whatever a note or a target's text holds.
#[test]
fn the_console_fits_100_columns() {
    let mut s = fixture();
    s.notes.push(format!("a note {}", "of many words ".repeat(30)));
    s.notes.push("x".repeat(150));
    let full = console::render(&s, "results/fixture");
    for text in [&full, &console::brief(&s, "results/fixture")] {
        for line in text.lines().filter(|l| !l.contains("xxxxxxxx")) {
            assert!(
                line.chars().count() <= console::WIDTH,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
    assert!(
        full.contains(&"x".repeat(150)),
        "a word longer than a line is kept whole"
    );
}

#[test]
fn console_snapshot() {
    insta::assert_snapshot!(console::render(&fixture(), "results/fixture"));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!(junit::render(&fixture()));
}

/// What a check did not attempt (the escalation check where the target has no privileged
/// group) is said beside its verdict in every report that names checks, and changes no count.
#[test]
fn a_checks_notes_are_said_beside_its_verdict() {
    let mut s = fixture();
    let note = "\"join a privileged group\" not attempted: the target has no group with displayName \"admins\"";
    s.checks[0].failed = 0;
    s.checks[0].examples.clear();
    s.checks[0].notes.push(note.into());
    let console = console::render(&s, "r").replace("\n  ", " ");
    assert!(console.contains(note), "{console}");
    let md = markdown::render(&s);
    assert!(md.contains(note), "{md}");
    let junit = junit::render(&s);
    assert!(junit.contains("not attempted: the target has no group"), "{junit}");
    let page = html::render(&s, &[], "");
    assert!(
        page.contains("id=\"check-notes\"") && page.contains("not attempted: the target has no group"),
        "{page}"
    );
    assert!(!s.checks[0].is_failure(), "a note is no failure");
}

#[test]
fn html_has_every_section_and_charts() {
    let intervals: Vec<IntervalRow> = (0..10)
        .map(|i| IntervalRow {
            interval_start_s: i as f64,
            timestamp: String::new(),
            metric: "api_latency".into(),
            tags: "op=create_user".into(),
            count: 100,
            errors: 0,
            timeouts: 0,
            rate_limited: 0,
            p50_us: Some(2_000),
            p99_us: Some(10_000),
            max_us: Some(10_000),
        })
        .collect();
    let page = html::render(&fixture(), &intervals, "name = \"fixture\"\n");
    for needle in [
        "id=\"header\"",
        "id=\"thresholds\"",
        "id=\"metrics\"",
        "Throughput and errors",
        "Sync lag percentile distribution",
        "id=\"configuration\"",
        "<path data-series=\"create_user\"",
    ] {
        assert!(page.contains(needle), "{needle} missing");
    }
    assert!(!page.contains("<script"), "the report needs no script");
    assert!(
        !page.contains("http://") || !page.contains("src=\"http"),
        "nothing fetched"
    );
}

/// The metrics table in HTML: a `<tbody>` per group under its own header row, the rows of a
/// failed threshold in red and rows with errors in amber, every series by its readable label
/// (its full key on hover).
#[test]
fn html_metrics_table_has_a_body_per_group_and_marks_rows() {
    let mut s = fixture();
    s.metrics[1].errors = 4;
    let page = html::render(&s, &[], "");
    let table = &page[page.find("<table id=\"metrics\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tbody").count(), 2, "{table}");
    assert!(
        table.contains("<tbody class=\"operations\"><tr><th>operation</th>"),
        "{table}"
    );
    assert!(
        table.contains("<tbody class=\"observed\"><tr><th>observed</th>"),
        "{table}"
    );
    assert!(
        table.contains("<tr class=\"bad\" title=\"api_latency{op=create_user}\"><td>create_user</td>"),
        "{table}"
    );
    assert!(
        table.contains("<tr class=\"warn\" title=\"api_latency{op=delete_user}\"><td>delete_user</td>"),
        "{table}"
    );
    assert!(
        table.contains("<td>sync lag</td><td>create_user → directory</td>")
            && table.contains("<td>12.00ms/40.00ms</td>"),
        "{table}"
    );
}

/// Strings a hostile target can plant (user names, error bodies, URLs) never become markup.
#[test]
fn html_escapes_everything_from_the_target() {
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'";
    let mut s = fixture();
    s.description = Some(evil.into());
    s.target.url = format!("http://127.0.0.1/{evil}");
    s.notes = vec![format!("the run failed: HTTP 500: {evil}")];
    s.metrics[0].tags.insert("op".into(), evil.into());
    s.thresholds[0].error = Some(evil.into());
    s.journeys[0].name = evil.into();
    let intervals = vec![IntervalRow {
        interval_start_s: 0.0,
        timestamp: String::new(),
        metric: "api_latency".into(),
        tags: format!("op={evil}"),
        count: 1,
        errors: 1,
        timeouts: 0,
        rate_limited: 0,
        p50_us: Some(1),
        p99_us: Some(1),
        max_us: Some(1),
    }];
    let page = html::render(&s, &intervals, evil);
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Markdown as a CommonMark renderer with GFM tables (pulldown-cmark) shows it: no tag gets
    // through, in text or code.
    let md = commonmark_html(&markdown::render(&s));
    assert!(!md.contains("<script") && !md.contains("<img"), "{md}");
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
    let xml = junit::render(&s);
    assert!(!xml.contains("<script") && !xml.contains("<img"), "{xml}");
}

/// Regression: a run that failed before the load said "No thresholds declared" though it had.
#[test]
fn declared_but_unjudged_thresholds_are_named() {
    let mut s = fixture();
    s.thresholds.clear();
    s.declared_thresholds = vec![crate::results::DeclaredThreshold {
        expression: "p99(api_latency) < 1s".into(),
        abort_on_fail: false,
        delay_ms: 0,
    }];
    let page = html::render(&s, &[], "");
    assert!(!page.contains("No thresholds declared"), "{page}");
    assert!(page.contains("Not judged") && page.contains("p99(api_latency) &lt; 1s"));
    assert!(console::render(&s, "r").contains("not judged (the run ended before it could be): p99(api_latency) < 1s"));
}

/// Regression: a run with no threshold and no check said a bare "passed", and its junit.xml had
/// `tests="0"`. Every report says that nothing was judged; the exit stays 0 (it measured).
#[test]
fn a_pass_on_nothing_declared_says_nothing_was_judged() {
    let mut s = fixture();
    s.thresholds.clear();
    s.declared_thresholds.clear();
    s.checks.clear();
    s.settle();
    assert_eq!(s.outcome, RunOutcome::Passed);
    assert_eq!(s.outcome.exit_code(), 0);
    let text = console::render(&s, "r");
    assert!(text.contains("· passed (nothing judged)\n"), "{text}");
    assert!(text.contains(Summary::NOTHING_DECLARED), "{text}");
    let brief = console::brief(&s, "r");
    assert!(
        brief.starts_with("provbench · fixture · run pb-00c0ffee · passed (nothing judged)\n"),
        "{brief}"
    );
    let junit = junit::render(&s);
    assert!(!junit.contains("tests=\"0\""), "{junit}");
    assert!(
        junit.contains("name=\"thresholds and checks declared\"")
            && junit.contains("<skipped message=\"nothing judged"),
        "{junit}"
    );
    let md = markdown::render(&s);
    assert!(
        md.contains("passed (nothing judged)") && md.contains("no thresholds or checks declared"),
        "{md}"
    );
    assert!(html::render(&s, &[], "").contains("passed (nothing judged)"));
    // A judged pass stays a plain one.
    let mut judged = fixture();
    judged.thresholds.retain(|v| v.passed);
    judged.checks.clear();
    judged.settle();
    assert_eq!(judged.outcome, RunOutcome::Passed);
    assert!(console::render(&judged, "r").contains("· passed\n"));
    assert!(!junit::render(&judged).contains("<skipped"));
}

/// Regression: `--quiet` printed `FAILED` and nothing of what failed. Its brief report names
/// every threshold and check that did not pass, with what was observed, and the report's path.
#[test]
fn the_brief_report_names_what_failed() {
    let s = fixture();
    let brief = console::brief(&s, "results/fixture");
    let lines: Vec<&str> = brief.lines().collect();
    assert!(lines[0].ends_with("· FAILED"), "{brief}");
    let failed: Vec<&Verdict> = s.thresholds.iter().filter(|v| !v.passed).collect();
    assert!(!failed.is_empty());
    for v in failed {
        assert!(
            brief.contains(&format!("FAIL  {}  (observed {})", v.expression, v.observed_text)),
            "{brief}"
        );
    }
    for c in s.checks.iter().filter(|c| c.is_failure()) {
        assert!(brief.contains(&format!("FAIL  check {}: ", c.name)), "{brief}");
    }
    assert!(!brief.contains("pass "), "only what failed: {brief}");
    assert_eq!(
        &lines[lines.len() - 2..],
        ["results  results/fixture", "report   results/fixture/report.html"]
    );
}

/// `text` rendered as GitHub does: CommonMark with GFM tables.
fn commonmark_html(text: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(text, pulldown_cmark::Options::ENABLE_TABLES);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    html
}

/// Regression: thresholds showed as `p99(...) &lt; 1s` (an entity inside a code span is shown
/// literally). Rendered, each expression, metric key and odd character reads as written.
#[test]
fn markdown_renders_as_written_in_commonmark() {
    let mut s = fixture();
    s.thresholds[0].expression = "p99(api_latency{op=create_user}) < 10ms".into();
    s.notes = vec!["a *note* with <b>tags</b> & `ticks` | pipes".into()];
    let html = commonmark_html(&markdown::render(&s));
    assert!(
        html.contains("<td><code>p99(api_latency{op=create_user}) &lt; 10ms</code></td>"),
        "{html}"
    );
    assert!(
        html.contains("<code>sync_lag{op=create_user,service=directory}</code>"),
        "{html}"
    );
    assert!(
        html.contains("a *note* with &lt;b&gt;tags&lt;/b&gt; &amp; `ticks` | pipes"),
        "{html}"
    );
    let rows = html.matches("<tr>").count();
    // A header row per table: thresholds, checks, and one per group of the metrics table.
    let groups = MetricsTable::build(&s).groups.len();
    let expected = 1 + s.thresholds.len() + 1 + s.checks.len() + groups + s.metrics.len();
    assert_eq!(rows, expected, "every table row is a row: {html}");
}

/// The probes' accounts are tables in the report: what never arrived, what is still downstream
/// after cleanup, and every observed series' resolution.
#[test]
fn html_tabulates_what_the_probes_could_not_measure() {
    let mut s = fixture();
    s.probes = Some(crate::results::ProbeReport {
        never_observed: vec!["sync_lag{op=create_user,service=crm}".into()],
        leftovers: [("crm".to_string(), 3u64)].into_iter().collect(),
        ..Default::default()
    });
    let page = html::render(&s, &[], "");
    assert!(
        page.contains("sync_lag{op=create_user,service=crm} (every observation timed out)"),
        "{page}"
    );
    assert!(page.contains("<tr><td>crm</td><td class=\"bad\">3</td></tr>"), "{page}");
    let observations = &page[page.find("<table id=\"observations\">").expect("the table")..];
    assert!(
        observations.contains("<td>sync lag</td><td>create_user → directory</td>"),
        "{page}"
    );
}

/// A target's text with CR, LF, ESC and a bidi override, anywhere in a summary (a rebuilt one
/// too, whose failure samples were never escaped), stays on its line in every report: no line of
/// any of them is the target's fake verdict, and none holds a raw control character.
#[test]
fn a_targets_text_cannot_print_a_line_of_its_own() {
    let fake = "boom\r\nall thresholds passed\u{1b}[2K\u{202e}";
    let mut s = fixture();
    s.failures = vec![crate::results::FailureSample {
        op: "create_user".into(),
        reason: "status".into(),
        count: 1,
        examples: vec![format!("HTTP 500: {fake}")],
    }];
    s.notes = vec![format!("the run failed: {fake}")];
    s.thresholds[0].error = Some(fake.into());
    s.journeys[0].name = fake.into();
    let page = html::render(&s, &[], "");
    for (name, text) in [
        ("console", console::render(&s, "results/x")),
        ("summary.md", markdown::render(&s)),
        ("junit.xml", junit::render(&s)),
        ("report.html", page),
    ] {
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("all thresholds passed")),
            "{name}: {text}"
        );
        assert!(
            !text
                .chars()
                .any(|c| crate::redact::escape::hidden(c) && c != '\n' && c != '\t'),
            "{name}: {text:?}"
        );
    }
}

/// The reports for CI systems are written through the same redaction and escaping as the others:
/// a secret the process knows, put into every name a label or a benchmark key carries (the
/// workload, an operation, a check, a threshold), never reaches a file in any form, and a
/// target's CR/LF/ESC/bidi text neither starts a line nor stays raw; the JSON stays JSON.
#[test]
fn ci_formats_hold_no_secret_and_no_raw_control_character() {
    use base64::Engine;
    let secret = "formats-Secret-7f3a9c1e5b";
    crate::redact::register(secret);
    let fake = "\r\nprovbench_run_passed 1\u{1b}[2K\u{202e}";
    let hostile = format!("{secret}{fake}");
    let mut s = fixture();
    // Plain (no control character to escape) and with one.
    s.workload = format!("w-{secret}");
    s.metrics[0].tags.insert("op".into(), hostile.clone());
    s.checks[0].name = hostile.clone();
    s.thresholds[0].expression = format!("p99(api_latency{{op={hostile}}}) < 1ms");
    let dir = tempfile::tempdir().unwrap();
    super::write_all(&s, dir.path(), &super::Format::ALL).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
    for f in super::Format::ALL {
        let text = std::fs::read_to_string(dir.path().join(f.file())).unwrap();
        assert!(
            !text.contains(secret) && !text.contains(&encoded),
            "{}: {text}",
            f.file()
        );
        assert!(
            !text.chars().any(|c| crate::redact::escape::hidden(c) && c != '\n'),
            "{}: {text:?}",
            f.file()
        );
        if f.file().ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text).unwrap();
        } else {
            assert_eq!(
                text.lines().filter(|l| l.starts_with("provbench_run_passed")).count(),
                1,
                "{text}"
            );
        }
    }
}
