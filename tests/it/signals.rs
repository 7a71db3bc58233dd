//! Ctrl-C and SIGTERM on a real `provbench run` process: the load stops, every result file is
//! written with outcome `aborted`, and the users the run created are deleted.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use provbench::reference::config::ReferenceConfig;
use serde_json::Value;

use crate::engine::marked_users;
use crate::support::start_reference;

const WORKLOAD: &str = r#"
name = "interrupted"
[load]
model = "closed"
admins = 4
duration = "60s"
think_time = "5ms"
[[journey]]
name = "joiner-who-stays"
steps = ["create_user", "get_user"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_ctrl_c_stop_flush_and_clean_up() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), &reference.token).unwrap();
        let text = format!(
            "{WORKLOAD}\n[target]\nkind = \"scim\"\nbase_url = \"{}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n",
            reference.scim
        );
        std::fs::write(dir.path().join("w.toml"), text).unwrap();
        let out = dir.path().join("results");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("provbench"))
            .args(["run", "w.toml", "--no-progress", "--out"])
            .arg(&out)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let the load run, then interrupt it.
        let started = Instant::now();
        while !out.join("intervals.csv").exists() || started.elapsed() < Duration::from_secs(2) {
            assert!(started.elapsed() < Duration::from_secs(20), "the run never started");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < deadline, "SIG{signal} did not stop the run");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(code, Some(1), "SIG{signal}: {stderr}");
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["outcome"], "aborted", "SIG{signal}");
        let creates = summary["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["tags"]["op"] == "create_user")
            .unwrap();
        assert!(creates["count"].as_u64().unwrap() > 0);
        assert!(
            summary["cleanup"]["deleted"].as_u64().unwrap() > 0,
            "SIG{signal}: {}",
            summary["cleanup"]
        );
        assert_eq!(summary["cleanup"]["failed"], 0);
        assert_eq!(
            marked_users(&reference, summary["run_id"].as_str().unwrap()).await,
            0,
            "SIG{signal} left users"
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("ABORTED"));
    }
    reference.stop().await;
}
