//! Reports for CI systems, written on request (`--report-format`): a short run asks for all three
//! and each file is read as its consumer reads it: `gitlab-load-performance.json` for the k6
//! keys GitLab's widget takes, `metrics.txt` by the OpenMetrics text grammar, `bmf.json` as
//! Bencher's benchmarks and measures. CI also holds them to a real parser and JSON schemas
//! (`.ci/run`, `tests/schemas/`).

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

const WORKLOAD: &str = r#"name = "formats"
thresholds = ["p99(api_latency) < 10s", "rate(errors) < 1%"]
[target]
profile = "fast"
[load]
model = "closed"
admins = 2
duration = "2s"
[[journey]]
name = "j"
steps = ["create_user", "get_user", "delete_user"]
"#;

const FILES: [&str; 3] = ["gitlab-load-performance.json", "metrics.txt", "bmf.json"];

fn provbench(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A metric or label name by the OpenMetrics grammar.
fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `{a="x",b="y\"z"}` read as the grammar reads it: the label names, and the rest of the line.
fn labels(text: &str) -> (Vec<String>, &str) {
    let Some(body) = text.strip_prefix('{') else {
        return (Vec::new(), text);
    };
    let mut names = Vec::new();
    let mut rest = body;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (names, after);
        }
        let eq = rest.find("=\"").unwrap_or_else(|| panic!("no label value in {text}"));
        names.push(rest[..eq].to_string());
        let mut chars = rest[eq + 2..].char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let (_, escaped) = chars.next().unwrap();
                    assert!(matches!(escaped, '\\' | '"' | 'n'), "bad escape in {text}");
                }
                Some((i, '"')) => break eq + 2 + i + 1,
                Some(_) => {}
                None => panic!("unterminated label value in {text}"),
            }
        };
        rest = rest[end..].strip_prefix(',').unwrap_or(&rest[end..]);
    }
}

/// Checks `text` by the OpenMetrics text grammar (metadata, samples of declared families only,
/// each family's lines together, numbers as numbers, `# EOF` last) and returns its families.
fn openmetrics_families(text: &str) -> BTreeSet<String> {
    assert!(text.ends_with("# EOF\n"), "no `# EOF` at the end:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.iter().filter(|l| **l == "# EOF").count(), 1);
    let mut families = BTreeSet::new();
    let mut current = String::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(matches!(kind, "TYPE" | "UNIT" | "HELP"), "{line}");
            assert!(is_name(name), "{line}");
            if kind == "TYPE" {
                assert!(families.insert(name.to_string()), "{name} declared twice");
                current = name.to_string();
            } else {
                assert_eq!(name, current, "metadata outside its family: {line}");
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(name.starts_with(&current), "{name} outside its family {current}");
        let (label_names, rest) = labels(&line[name_end..]);
        assert!(label_names.iter().all(|l| is_name(l)), "{line}");
        let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(
            value.parse::<f64>().is_ok() || matches!(value, "NaN" | "+Inf" | "-Inf"),
            "not a number: {line}"
        );
    }
    families
}

/// The three files are written when asked for (and only then), and each reads as its consumer
/// reads it; `provbench report` writes them for a finished run too.
#[test]
fn each_requested_format_is_written_and_reads_as_its_consumer_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), WORKLOAD).unwrap();
    let plain = provbench(dir.path(), &["run", "w.toml", "--no-progress", "--out", "plain"]);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    for f in FILES {
        assert!(!dir.path().join("plain").join(f).exists(), "{f} written unasked");
    }
    let run = provbench(
        dir.path(),
        &[
            "run",
            "w.toml",
            "--no-progress",
            "--out",
            "results",
            "--report-format",
            "gitlab-load-performance,openmetrics",
            "--report-format",
            "bmf",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let results = dir.path().join("results");
    let summary = json(&results.join("summary.json"));

    let gitlab = json(&results.join("gitlab-load-performance.json"));
    let m = &gitlab["metrics"];
    assert!(m["http_reqs"]["rate"].as_f64().unwrap() > 0.0, "{gitlab}");
    let ops: u64 = summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["metric"] == "api_latency")
        .map(|m| m["count"].as_u64().unwrap())
        .sum();
    assert_eq!(m["http_reqs"]["count"].as_u64(), Some(ops));
    let waiting = &m["http_req_waiting"];
    let (p90, p95) = (waiting["p(90)"].as_f64().unwrap(), waiting["p(95)"].as_f64().unwrap());
    assert!(p90 > 0.0 && p90 <= p95, "{waiting}");
    assert!(waiting["avg"].as_f64().unwrap() > 0.0);
    assert_eq!(gitlab["provbench"]["run_id"], summary["run_id"]);

    let text = std::fs::read_to_string(results.join("metrics.txt")).unwrap();
    let families = openmetrics_families(&text);
    for f in [
        "provbench_run_passed",
        "provbench_threshold_passed",
        "provbench_threshold_observed",
        "provbench_api_latency_seconds",
        "provbench_operations_per_second",
    ] {
        assert!(families.contains(f), "{f} missing: {families:?}");
    }
    assert!(
        text.contains("provbench_run_passed{workload=\"formats\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("provbench_threshold_passed{threshold=\"rate(errors) < 1%\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("provbench_api_latency_seconds_count{op=\"get_user\"} "),
        "{text}"
    );

    let bmf = json(&results.join("bmf.json"));
    let benchmarks = bmf.as_object().unwrap();
    assert!(benchmarks["formats"]["throughput"]["value"].as_f64().unwrap() > 0.0);
    let create = &benchmarks["formats/api_latency{op=create_user}"];
    let latency = &create["latency"];
    let (low, value, high) = (
        latency["lower_value"].as_f64().unwrap(),
        latency["value"].as_f64().unwrap(),
        latency["upper_value"].as_f64().unwrap(),
    );
    assert!(0.0 < low && low <= value && value <= high, "{latency}");
    for measures in benchmarks.values() {
        for (name, measure) in measures.as_object().unwrap() {
            assert!(measure["value"].is_number(), "{name}: {measure}");
        }
    }

    // Rebuilt for any results folder.
    for f in FILES {
        std::fs::remove_file(results.join(f)).unwrap();
    }
    let report = provbench(dir.path(), &["report", "results", "--report-format", "bmf,openmetrics"]);
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert_eq!(json(&results.join("bmf.json")), bmf);
    openmetrics_families(&std::fs::read_to_string(results.join("metrics.txt")).unwrap());
    assert!(!results.join("gitlab-load-performance.json").exists());
}

/// An unknown format is refused before anything runs, naming the ones there are.
#[test]
fn an_unknown_format_is_refused_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), WORKLOAD).unwrap();
    let out = provbench(dir.path(), &["run", "w.toml", "--report-format", "k6"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gitlab-load-performance, openmetrics, bmf"), "{stderr}");
    assert!(!dir.path().join("results").exists());
}
