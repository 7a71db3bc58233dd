//! Thresholds as a CI gate: exit codes, the failing threshold named in the console, summary.json
//! and junit.xml, no-data selectors, and abort-on-fail.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

const WORKLOAD: &str = r#"
[target]
profile = "fast"
[load]
model = "closed"
admins = 2
duration = "2s"
[[journey]]
name = "j"
steps = ["create_user", "delete_user"]
"#;

fn run(dir: &Path, extra: &str, args: &[&str]) -> (Option<i32>, String, String) {
    // Top-level keys (thresholds) go before the first table.
    std::fs::write(dir.join("w.toml"), format!("name = \"gate\"\n{extra}{WORKLOAD}")).unwrap();
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir)
        .args(["run", "w.toml", "--no-progress", "--out", "results"])
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results/summary.json")).unwrap()).unwrap()
}

#[test]
fn a_lost_threshold_exits_1_and_is_named_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let lost = "p99(api_latency{op=create_user}) < 1us";
    let (code, stdout, stderr) = run(
        dir.path(),
        &format!("thresholds = [\"{lost}\", \"rate(errors) < 1%\"]\n"),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.contains(&format!("FAIL  {lost}")), "{stdout}");
    let s = summary(dir.path());
    assert_eq!(s["outcome"], "failed");
    assert_eq!(s["thresholds"][0]["expression"], lost);
    assert_eq!(s["thresholds"][0]["passed"], false);
    assert_eq!(s["thresholds"][1]["passed"], true);
    let junit = std::fs::read_to_string(dir.path().join("results/junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("p99(api_latency{op=create_user}) &lt; 1us"),
        "{junit}"
    );
    let md = std::fs::read_to_string(dir.path().join("results/summary.md")).unwrap();
    assert!(md.contains("❌ fail"), "{md}");
}

/// Also a regression: the results kept the file as written, not the workload that ran.
#[test]
fn a_passing_run_exits_0_and_saves_the_workload_as_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(
        dir.path(),
        "",
        &[
            "--threshold",
            "p99(api_latency) < 10s",
            "--threshold",
            "count(errors) == 0",
            "--set",
            "load.admins=3",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let s = summary(dir.path());
    assert_eq!(s["outcome"], "passed");
    assert_eq!(s["stop_reason"]["reason"], "deadline");
    assert_eq!(s["load"]["admins"], 3);
    assert_eq!(s["overrides"][0], "--set load.admins=3");
    assert_eq!(s["declared_thresholds"][1]["expression"], "count(errors) == 0");
    let saved = std::fs::read_to_string(dir.path().join("results/workload.toml")).unwrap();
    let saved: toml::Table = toml::from_str(&saved).unwrap();
    assert_eq!(saved["load"]["admins"].as_integer(), Some(3), "{saved}");
    assert_eq!(saved["thresholds"].as_array().map(Vec::len), Some(2), "{saved}");
}

/// Regression: the same no-data threshold exited 2 under `run` and 1 under `report`.
#[test]
fn a_selector_without_data_is_an_error_under_run_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(dir.path(), "", &["--threshold", "p99(login_latency) < 1s"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("matches no data"), "{stderr}");
    // Every result file is still there.
    assert!(dir.path().join("results/junit.xml").exists());
    assert_eq!(summary(dir.path())["outcome"], "error");
    let report = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        .args(["report", "results"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("matches no data"), "{stderr}");
}

#[test]
fn bad_thresholds_are_usage_errors_pointing_at_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(dir.path(), "", &["--threshold", "p99(api_latency) < 3parsecs"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("column 21") && stderr.contains("unknown unit"),
        "{stderr}"
    );
    let (code, _, stderr) = run(dir.path(), "thresholds = [\"p99(api_latency) <\"]\n", &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("w.toml:2") && stderr.contains("expected a number"),
        "{stderr}"
    );
}

#[test]
fn abort_on_fail_stops_early_and_still_writes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "thresholds = [{ expr = \"p50(api_latency) < 1us\", abort_on_fail = true, delay = \"1s\" }]\n";
    let started = std::time::Instant::now();
    let (code, stdout, _) = run(dir.path(), extra, &["--duration", "30s"]);
    assert_eq!(code, Some(1));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the run was not stopped early"
    );
    assert!(stdout.contains("stopped early"), "{stdout}");
    let s = summary(dir.path());
    assert_eq!(s["outcome"], "failed");
    assert_eq!(s["cleanup"]["failed"], 0);
    for f in ["histograms.hlog", "intervals.csv", "junit.xml", "summary.md"] {
        assert!(dir.path().join("results").join(f).exists(), "{f}");
    }
}

#[test]
fn github_actions_get_annotations_and_a_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), format!("name = \"gate\"\n{WORKLOAD}")).unwrap();
    let step_summary = dir.path().join("step-summary.md");
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "run",
            "w.toml",
            "--no-progress",
            "--out",
            "results",
            "--threshold",
            "max(api_latency) < 1us",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("::error title=provbench gate::threshold `max(api_latency) < 1us` failed"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(step_summary).unwrap();
    assert!(md.contains("### provbench · gate · ❌ failed"), "{md}");
}

/// Regression: `report` on a killed run left summary.json `running` with no metrics, printed a
/// 0 s duration and an absurd rate, wrote a junit.xml with no tests, and failed on a cut last
/// hlog line.
#[test]
fn report_rebuilds_a_killed_run_and_compare_judges_regressions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            "name = \"gate\"\nthresholds = [\"p99(api_latency) < 10s\"]\n{}",
            WORKLOAD.replace("duration = \"2s\"", "duration = \"60s\"")
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .current_dir(dir.path())
        .args(["run", "w.toml", "--no-progress", "--out", "killed"])
        .args(["--threshold", "max(api_latency) < 1us"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the hlog holds two intervals and 200 operations (however long the start and
    // the load took on a busy machine): a duration to check, and enough samples for the p50s
    // the comparisons below judge.
    let hlog_path = dir.path().join("killed/histograms.hlog");
    let waited = std::time::Instant::now();
    loop {
        // A cut last line is left out by the reader, as for the rebuild below.
        if let Ok(h) = provbench::metrics::hlog::read_hlog(&hlog_path) {
            let starts: std::collections::BTreeSet<_> = h.intervals.iter().map(|i| i.start).collect();
            let ops: u64 = h
                .intervals
                .iter()
                .filter(|i| i.key.metric == "api_latency")
                .map(|i| i.histogram.len())
                .sum();
            if starts.len() >= 2 && ops >= 200 {
                break;
            }
        }
        // A safety bound: only a run that never got going reaches it.
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(50),
            "no two intervals of 200 operations"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL: no chance to write a final summary
    child.wait().unwrap();
    let killed = dir.path().join("killed");
    let read =
        || -> Value { serde_json::from_str(&std::fs::read_to_string(killed.join("summary.json")).unwrap()).unwrap() };
    assert_eq!(read()["outcome"], "running");
    // As if the kill had come in the middle of writing a line.
    let mut hlog = std::fs::OpenOptions::new()
        .append(true)
        .open(killed.join("histograms.hlog"))
        .unwrap();
    std::io::Write::write_all(&mut hlog, b"Tag=api_latency{op=create_user},3.001,1.000,0.5,HISTFAAAA").unwrap();
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .arg("report")
        .arg(&killed)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "an incomplete run does not pass: {stdout}");
    assert!(
        stdout.contains("rebuilt from histograms.hlog") && stdout.contains("create_user") && stdout.contains("KILLED"),
        "{stdout}"
    );
    assert!(stdout.contains("pass  p99(api_latency) < 10s"), "{stdout}");
    assert!(
        stdout.contains("FAIL  max(api_latency) < 1us"),
        "the --threshold is judged too: {stdout}"
    );
    assert!(stdout.contains("cut short"), "{stdout}");
    // summary.json itself is rebuilt: outcome, duration from the intervals, a sane rate.
    let s = read();
    assert_eq!(s["outcome"], "killed");
    let secs = s["load"]["load_duration_s"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&secs), "{secs}");
    let ops: u64 = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["metric"] == "api_latency")
        .map(|m| m["count"].as_u64().unwrap())
        .sum();
    let rate = s["load"]["operations_per_second"].as_f64().unwrap();
    assert!(
        ops > 0 && (rate - ops as f64 / secs).abs() < 1.0,
        "{rate} vs {ops} over {secs}"
    );
    assert_eq!(s["thresholds"].as_array().unwrap().len(), 2);
    let md = std::fs::read_to_string(killed.join("summary.md")).unwrap();
    assert!(md.contains("api_latency{op=create_user}"), "{md}");
    let junit = std::fs::read_to_string(killed.join("junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"run finished\"") && junit.contains("failures=\"2\""),
        "{junit}"
    );

    // The same run against itself: no change, no regression; a rule it cannot meet: exit 1.
    // (p50: a p99 of a few hundred operations is too thin to judge, which is exit 2.)
    let same = Command::cargo_bin("provbench")
        .unwrap()
        .arg("compare")
        .arg(&killed)
        .arg(&killed)
        .args(["--max-regression", "p50=0%"])
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stdout));
    assert!(String::from_utf8_lossy(&same.stdout).contains("0 regression(s) in "));
    assert!(String::from_utf8_lossy(&same.stdout).contains("against p50 +0%"));
    let strict = Command::cargo_bin("provbench")
        .unwrap()
        .arg("compare")
        .arg(&killed)
        .arg(&killed)
        // -100%: no latency can be that much lower, however wide a busy machine spreads the run's
        // latencies (at -50%, a spread over 2x made the same run within the rule).
        .args(["--max-regression", "p50=-100%", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&strict.stdout).unwrap();
    assert!(json["regressions"].as_u64().unwrap() > 0);
}

/// run.log events, live Prometheus metrics during the run, and the summary posted to a webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_log_live_metrics_and_notify() {
    let (hook_url, mut rx) = crate::support::webhook_receiver().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            "name = \"gate\"\n{}",
            WORKLOAD.replace("duration = \"2s\"", "duration = \"4s\"")
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .current_dir(dir.path())
        .args(["run", "w.toml", "--no-progress", "--out", "results", "--metrics-listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--notify", &hook_url])
        // A shard of a run: its samples say which run and which shard, so that several
        // generators' scrapes can be told apart and summed.
        .args(["--run-id", "pb-scrape01", "--shard", "1/2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Scrape while the load runs.
    let mut scraped = String::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            scraped = r.text().await.unwrap_or_default();
            if scraped.contains("provbench_api_latency_seconds_count") {
                break;
            }
        }
    }
    // A histogram with classic buckets since the start, and every sample with the run's labels.
    assert!(
        scraped.contains("# TYPE provbench_api_latency_seconds histogram"),
        "{scraped}"
    );
    assert!(
        scraped.contains(
            "provbench_api_latency_seconds_bucket{op=\"create_user\",run_id=\"pb-scrape01\",shard=\"1\",le=\"+Inf\"}"
        ),
        "{scraped}"
    );
    assert!(
        scraped
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.contains("run_id=\"pb-scrape01\",shard=\"1\"")),
        "{scraped}"
    );
    assert!(child.wait().await.unwrap().success());
    let posted = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(posted["schema_version"], provbench::results::SCHEMA_VERSION);
    assert_eq!(posted["outcome"], "passed");
    let log = std::fs::read_to_string(dir.path().join("results/run.log")).unwrap();
    let events: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(events.first().map(String::as_str), Some("start"));
    assert_eq!(events.last().map(String::as_str), Some("end"));
    assert!(events.iter().any(|e| e == "cleanup"), "{events:?}");
}

/// Regression: a misspelled metric or operation passed `validate` and failed after the whole
/// load with exit 2; now the load never starts.
#[test]
fn a_misspelled_selector_fails_before_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(dir.path(), "", &["--threshold", "p99(api_latency{op=create_usr}) < 1s"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("did you mean `create_user`?"), "{stderr}");
    assert!(!dir.path().join("results").exists(), "no run was started");
}

/// Writes a synthetic run into `dir/out`: a `histograms.hlog` as the interval writer writes it
/// (one interval a second per series), with `seconds` intervals of `per_second` samples drawn
/// from `seed` for each series, times `slowdown`: `api_latency{op=get_user}` is 20 ms plus an
/// exponential jitter of mean 10 ms, `api_latency{op=create_user}` 30 ms plus 15 ms, and
/// `sync_lag{service=directory}` a thin series of one sample a second. The test chooses every
/// sample, so no machine's speed enters the comparison.
fn synthetic_run(dir: &Path, out: &str, seed: u64, slowdown: f64) {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let run = dir.join(out);
    std::fs::create_dir_all(&run).unwrap();
    // xorshift64*: the same samples for the same seed on every machine.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let mut bytes = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(&mut bytes, &mut serializer)
        .unwrap();
    let series: [(&str, f64, u32); 3] = [
        ("api_latency{op=get_user}", 20_000.0, 600),
        ("api_latency{op=create_user}", 30_000.0, 600),
        ("sync_lag{service=directory}", 200_000.0, 1),
    ];
    for second in 0..5u64 {
        for (tag, base, per_second) in series {
            let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
            for _ in 0..per_second {
                let jitter = -(1.0 - uniform()).ln() * base / 2.0;
                h.record(((base + jitter) * slowdown) as u64).unwrap();
            }
            let at = std::time::Duration::from_secs(second);
            log.write_histogram(&h, at, std::time::Duration::from_secs(1), Tag::new(tag))
                .unwrap();
        }
    }
    drop(log);
    std::fs::write(run.join("histograms.hlog"), bytes).unwrap();
}

/// Regression: the README's gate flagged "regressions" between two runs of the same code, mostly
/// thin probe series whose p99 is a handful of samples. Proves that two runs drawn from the same
/// distributions (different samples: the noise of two runs of the same code) pass the gate,
/// with thin tails judged "not enough data", and that a real 2x slowdown is flagged. The runs
/// are written by the test, not timed on this machine: a busy machine slows one real run more
/// than another, and the gate rightly flags that.
#[test]
fn compare_passes_the_same_code_and_flags_a_real_slowdown() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_run(dir.path(), "base", 1, 1.0);
    synthetic_run(dir.path(), "same", 2, 1.0);
    synthetic_run(dir.path(), "slow", 3, 2.0);
    let gate = |current: &str| {
        let out = Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(dir.path())
            .args([
                "compare",
                "base",
                current,
                "--max-regression",
                "p99=10%",
                "--max-regression",
                "p50=5%",
            ])
            .args(["--format", "json"])
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        (out.status.code(), json)
    };
    let (code, same) = gate("same");
    let flagged: Vec<&Value> = same["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["regression"] == true)
        .collect();
    assert_eq!(code, Some(0), "the same code flagged: {flagged:?}");
    let rows = same["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["judged"] == "not_enough_data"),
        "thin probe tails are not judged"
    );
    assert!(
        rows.iter()
            .any(|r| r["judged"] == "ok" && r["metric"].as_str().unwrap().starts_with("api_latency")),
        "the API latency is judged"
    );
    let (code, slow) = gate("slow");
    assert_eq!(code, Some(1), "a 2x slowdown passed: {slow}");
    let p50 = slow["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "api_latency{op=get_user}" && r["percentile"] == "p50")
        .unwrap();
    assert_eq!(p50["judged"], "regression", "{p50}");
}

/// `--metrics-listen` on every interface warns as `--dashboard` does: anyone who reaches it
/// sees the run.
#[test]
fn metrics_beyond_loopback_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(dir.path(), "", &["--metrics-listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("--metrics-listen listens beyond loopback"), "{stderr}");
    let (_, _, stderr) = run(dir.path(), "", &["--metrics-listen", "127.0.0.1:0"]);
    assert!(!stderr.contains("beyond loopback"), "{stderr}");
}

/// Regression: `compare` with no rule, or with rules on percentiles too thin to judge, printed
/// `0 regression(s)` and exited 0: a CI gate that gated nothing. It exits 2, saying so.
#[test]
fn compare_that_judges_nothing_is_no_pass() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_run(dir.path(), "base", 1, 1.0);
    synthetic_run(dir.path(), "slow", 3, 2.0);
    let compare = |rules: &[&str], format: &str| {
        let out = Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(dir.path())
            .args(["compare", "base", "slow", "--format", format])
            .args(rules)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = compare(&[], "markdown");
    assert_eq!(code, Some(2), "no rule: {stdout}{stderr}");
    assert!(
        stderr.contains("nothing was judged") && stderr.contains("--max-regression"),
        "{stderr}"
    );
    assert!(!stdout.contains("0 regression(s)"), "{stdout}");
    assert!(stdout.contains("Not judged"), "{stdout}");
    // 3,000 samples a series: p99.9 needs 5,000 (and the one-sample `max` is never judged).
    let (code, stdout, stderr) = compare(&["--max-regression", "p999=10%", "--max-regression", "max=10%"], "json");
    assert_eq!(code, Some(2), "thin tails only: {stdout}{stderr}");
    assert!(
        stderr.contains("nothing was judged") && stderr.contains("not enough data"),
        "{stderr}"
    );
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["judged"], 0, "{json}");
    // One judged percentile is enough for a verdict: the 2x slowdown is a regression.
    let (code, stdout, stderr) = compare(
        &["--max-regression", "p999=10%", "--max-regression", "p50=5%"],
        "markdown",
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("judged percentile(s)"), "{stdout}");
}
