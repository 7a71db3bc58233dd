//! Scale-out: three shard processes against one reference service, then `provbench merge`.
//! The merge's counts are the sum of the shards', its percentiles those of the union of their
//! histograms, and its thresholds are judged on the merge.

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use provbench::metrics::hlog::read_run;
use provbench::metrics::series::new_histogram;
use provbench::reference::config::ReferenceConfig;
use serde_json::Value;

use crate::support::start_reference;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_merge_into_one_run() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "sharded"
thresholds = ["p99(api_latency) < 5s", "rate(errors) < 1%"]
[target]
kind = "scim"
base_url = "{}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "open"
rate = "90/s"
duration = "3s"
max_admins = 30
[[journey]]
name = "joiner-leaver"
steps = ["create_user", "delete_user"]
"#,
            reference.scim
        ),
    )
    .unwrap();
    let start_at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(3)).to_string();
    let children: Vec<_> = (0..3)
        .map(|i| {
            tokio::process::Command::new(assert_cmd::cargo::cargo_bin("provbench"))
                .current_dir(dir.path())
                .args([
                    "run",
                    "w.toml",
                    "--no-progress",
                    "--run-id",
                    "pb-sharded01",
                    "--start-at",
                    &start_at,
                ])
                .args(["--shard", &format!("{i}/3"), "--out", &format!("shard-{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let merged = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        .args(["merge", "shard-0", "shard-1", "shard-2", "--out", "merged"])
        .output()
        .unwrap();
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let read = |d: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(d).join("summary.json")).unwrap()).unwrap()
    };
    let count = |s: &Value, op: &str| -> u64 {
        s["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["tags"]["op"] == op)
            .unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    let shards: Vec<Value> = (0..3).map(|i| read(&format!("shard-{i}"))).collect();
    let m = read("merged");
    for s in &shards {
        assert_eq!(s["shard"].as_str().map(|x| x.ends_with("/3")), Some(true));
        // Each shard took a third of the rate.
        assert!(
            (s["load"]["target_rate"].as_f64().unwrap() - 30.0).abs() < 1.0,
            "{}",
            s["load"]
        );
    }
    for op in ["create_user", "delete_user"] {
        let sum: u64 = shards.iter().map(|s| count(s, op)).sum();
        assert_eq!(count(&m, op), sum, "{op}");
    }
    assert_eq!(count(&m, "create_user"), 270, "90/s for 3 s across the shards");
    // Percentiles of the merge are those of the union of the shards' histograms.
    let mut union = new_histogram();
    for i in 0..3 {
        let run = read_run(&dir.path().join(format!("shard-{i}"))).unwrap();
        for (k, d) in run.keys.iter().zip(&run.series) {
            if k.metric == "api_latency" && k.get("op") == Some("create_user") {
                union.add(d.histogram()).unwrap();
            }
        }
    }
    let merged_create = m["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tags"]["op"] == "create_user")
        .unwrap();
    assert_eq!(merged_create["p99_us"].as_u64().unwrap(), union.value_at_quantile(0.99));
    assert_eq!(merged_create["p50_us"].as_u64().unwrap(), union.value_at_quantile(0.5));
    // Verdicts are judged on the merge, and every report is there.
    assert_eq!(m["thresholds"].as_array().unwrap().len(), 2);
    assert!(
        m["thresholds"].as_array().unwrap().iter().all(|v| v["passed"] == true),
        "{}",
        m["thresholds"]
    );
    assert_eq!(m["run_id"], "pb-sharded01");
    for f in [
        "histograms.hlog",
        "intervals.csv",
        "junit.xml",
        "report.html",
        "summary.md",
    ] {
        assert!(dir.path().join("merged").join(f).exists(), "{f}");
    }
    reference.stop().await;
}

/// Regression: `merge` dropped thresholds given with `--threshold`, and when the workload could
/// not be reloaded from a shard's folder it kept shard 0's own verdicts as the merged ones.
#[test]
fn merge_judges_every_declared_threshold_without_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        r#"name = "sharded"
thresholds = ["rate(errors) < 1%"]
[target]
profile = "fast"
[load]
model = "closed"
admins = 2
duration = "1s"
[[journey]]
name = "j"
steps = ["create_user", "delete_user"]
"#,
    )
    .unwrap();
    for i in 0..2 {
        // Shard 1 leaves the verdict to the merge.
        let defer: &[&str] = if i == 1 { &["--defer-verdict"] } else { &[] };
        let out = Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(dir.path())
            .args(["run", "w.toml", "--no-progress", "--shard", &format!("{i}/2")])
            .args(["--out", &format!("shard-{i}"), "--threshold", "p99(api_latency) < 1us"])
            .args(defer)
            .output()
            .unwrap();
        // Each shard loses the threshold on its own; a deferring one exits 0 and says so.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(if i == 1 { 0 } else { 1 }), "{stderr}");
        let own: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("shard-{i}/summary.json"))).unwrap())
                .unwrap();
        assert_eq!(own["outcome"], "failed", "the shard's own summary keeps its verdict");
        if i == 1 {
            assert!(stderr.contains("verdict deferred"), "{stderr}");
        }
        // The workload cannot be reloaded from the results (as with a relative feeder path).
        std::fs::write(dir.path().join(format!("shard-{i}/workload.toml")), "not = [valid").unwrap();
    }
    let merged = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        .args(["merge", "shard-0", "shard-1", "--out", "merged"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&merged.stdout);
    assert_eq!(
        merged.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert!(stdout.contains("FAIL  p99(api_latency) < 1us"), "{stdout}");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("merged/summary.json")).unwrap()).unwrap();
    let verdicts = m["thresholds"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert_eq!(m["outcome"], "failed");
    // Judged on the merge: the observed p99 is the union's, not shard 0's.
    let union = {
        let mut h = new_histogram();
        for i in 0..2 {
            let run = read_run(&dir.path().join(format!("shard-{i}"))).unwrap();
            for (k, d) in run.keys.iter().zip(&run.series) {
                if k.metric == "api_latency" {
                    h.add(d.histogram()).unwrap();
                }
            }
        }
        h.value_at_quantile(0.99)
    };
    let p99 = verdicts
        .iter()
        .find(|v| v["expression"] == "p99(api_latency) < 1us")
        .unwrap();
    assert_eq!(p99["observed"].as_f64(), Some(union as f64), "{p99}");
}

/// Regression: a `--start-at` already past was silently ignored (and the shipped manifest had a
/// past date), so shards started whenever their pods did.
#[test]
fn a_start_instant_already_past_is_an_error() {
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .args([
            "run",
            "workloads/quickstart.toml",
            "--no-progress",
            "--start-at",
            "2026-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--start-at 2026-01-01T00:00:00Z passed") && stderr.contains("future instant"),
        "{stderr}"
    );
}
