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
        assert_eq!(code, Some(130), "SIG{signal}: {stderr}");
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

/// Sends SIGINT to the process group `pgid` (as a terminal's Ctrl-C, or `timeout -s INT`, does).
fn interrupt_group(pgid: u32) {
    // `--` so that the negative process-group id is not read as an option.
    let status = Command::new("kill")
        .args(["-s", "INT", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(status.success());
}

fn spawn_in_own_group(dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .args(args)
        .current_dir(dir)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(child: &mut std::process::Child, what: &str) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(Instant::now() < deadline, "{what}: the run never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `provbench run w.toml` in `dir`, in a process group of its own.
fn start_run(dir: &std::path::Path) -> std::process::Child {
    spawn_in_own_group(dir, &["run", "w.toml", "--no-progress", "--out", "results"])
}

/// Waits for `child` off the runtime; its exit code and stderr.
async fn ended(mut child: std::process::Child, what: &'static str) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let code = wait_for(&mut child, what);
        let output = child.wait_with_output().unwrap();
        (code, String::from_utf8_lossy(&output.stderr).into_owned())
    })
    .await
    .unwrap()
}

fn final_summary(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results/summary.json")).unwrap()).unwrap()
}

fn scim_workload(dir: &std::path::Path, url: &str, token: &str, load: &str, steps: &str, users: &str) {
    std::fs::write(dir.join("token"), token).unwrap();
    std::fs::write(
        dir.join("w.toml"),
        format!(
            "name = \"signals\"\n[target]\nkind = \"scim\"\nbase_url = \"{url}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n[load]\n{load}\n[[journey]]\nname = \"j\"\nsteps = {steps}\n{users}"
        ),
    )
    .unwrap();
}

/// Regression: the second of two SIGINTs (a process group signalled twice) made goose exit on
/// the spot: no cleanup, summary.json left `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_sigint_during_the_load_still_cleans_up() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    scim_workload(
        dir.path(),
        &reference.scim,
        &reference.token,
        "model = \"closed\"\nadmins = 4\nduration = \"60s\"\nthink_time = \"5ms\"",
        "[\"create_user\", \"get_user\"]",
        "",
    );
    let child = start_run(dir.path());
    let out = dir.path().join("results");
    let started = Instant::now();
    while !out.join("intervals.csv").exists() || started.elapsed() < Duration::from_secs(2) {
        assert!(started.elapsed() < Duration::from_secs(20), "the run never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    interrupt_group(child.id());
    // A second signal moments later (two signals at the same instant merge into one).
    tokio::time::sleep(Duration::from_millis(30)).await;
    let _ = Command::new("kill")
        .args(["-s", "INT", "--", &format!("-{}", child.id())])
        .status();
    let (code, stderr) = ended(child, "double SIGINT").await;
    assert_eq!(code, Some(130), "{stderr}");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "aborted");
    assert_eq!(summary["stop_reason"]["reason"], "signal");
    assert!(
        summary["cleanup"]["deleted"].as_u64().unwrap() > 0,
        "{}",
        summary["cleanup"]
    );
    assert_eq!(marked_users(&reference, summary["run_id"].as_str().unwrap()).await, 0);
    reference.stop().await;
}

/// Two admins creating users (every 10 ms, for `duration`) on a target whose deletes take
/// 300 ms: the server, the run's folder and the running process.
async fn creating_against_slow_deletes(
    duration: &str,
) -> (crate::hostile::Hostile, tempfile::TempDir, std::process::Child) {
    let server = crate::hostile::start(crate::hostile::Behaviour::SlowDeletes, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    scim_workload(
        dir.path(),
        &server.url,
        "t",
        &format!("model = \"closed\"\nadmins = 2\nduration = \"{duration}\"\nthink_time = \"10ms\""),
        "[\"create_user\"]",
        "",
    );
    let child = start_run(dir.path());
    (server, dir, child)
}

/// Two SIGINTs while cleanup is under way: it finishes, and summary.json is final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_sigint_during_cleanup_lets_it_finish() {
    let (server, dir, child) = creating_against_slow_deletes("1s").await;
    // Cleanup has begun once the first (slow) delete arrives.
    let started = Instant::now();
    while server.deletes.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "cleanup never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created = server.users.lock().len();
    assert!(created > 16, "enough users that cleanup takes a while: {created}");
    interrupt_group(child.id());
    interrupt_group(child.id());
    let (code, stderr) = ended(child, "SIGINT during cleanup").await;
    assert!(
        server.users.lock().is_empty(),
        "users left: {}\n{stderr}",
        server.users.lock().len()
    );
    let summary = final_summary(dir.path());
    assert_eq!(summary["cleanup"]["failed"], 0, "{}", summary["cleanup"]);
    assert_eq!(summary["cleanup"]["deleted"].as_u64(), Some(created as u64));
    assert_ne!(summary["outcome"], "running");
    assert_eq!(code, Some(0), "the load had ended by its duration: {stderr}");
}

/// Regression: SIGINT during prepopulation was ignored until every user was created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_prepopulation_stops_and_cleans_up() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    scim_workload(
        dir.path(),
        &reference.scim,
        &reference.token,
        "model = \"closed\"\nadmins = 1\nduration = \"5s\"",
        "[\"find_user\"]",
        "[users]\nprepopulate = 200000\n",
    );
    let child = start_run(dir.path());
    let started = Instant::now();
    let count = || async {
        reference.get_json("/scim/v2/Users?count=0").await["totalResults"]
            .as_u64()
            .unwrap_or(0)
    };
    while count().await < 100 {
        assert!(started.elapsed() < Duration::from_secs(30), "prepopulation never began");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    interrupt_group(child.id());
    let (code, stderr) = ended(child, "SIGINT during prepopulation").await;
    assert_eq!(code, Some(130), "{stderr}");
    let summary = final_summary(dir.path());
    assert_eq!(summary["outcome"], "aborted", "{stderr}");
    assert!(
        summary["cleanup"]["deleted"].as_u64().unwrap() >= 100,
        "{}",
        summary["cleanup"]
    );
    assert_eq!(count().await, 0, "prepopulated users left");
    reference.stop().await;
}

/// A third signal exits at once without cleanup, and prints the command that finishes it; that
/// command then removes everything the run created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_sigint_exits_and_names_the_cleanup_command() {
    let (server, dir, child) = creating_against_slow_deletes("60s").await;
    let started = Instant::now();
    while server.users.lock().len() < 20 {
        assert!(started.elapsed() < Duration::from_secs(20), "the load never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        interrupt_group(child.id());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (code, stderr) = ended(child, "three SIGINTs").await;
    assert_eq!(code, Some(2), "{stderr}");
    let command = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("provbench cleanup "))
        .unwrap_or_else(|| panic!("no cleanup command in {stderr}"))
        .to_string();
    assert!(!server.users.lock().is_empty(), "exited before cleaning up");
    let args: Vec<String> = command.split_whitespace().map(String::from).collect();
    let dir_path = dir.path().to_path_buf();
    let cleaned = tokio::task::spawn_blocking(move || {
        Command::new(assert_cmd::cargo::cargo_bin("provbench"))
            .arg("cleanup")
            .args(&args)
            .current_dir(&dir_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(cleaned.status.success(), "{}", String::from_utf8_lossy(&cleaned.stderr));
    assert!(server.users.lock().is_empty(), "{} left", server.users.lock().len());
}

/// Regression: Ctrl-C with requests hanging took 88 s (each waited out its timeout). The
/// requests in flight are cancelled; with a 120 s request timeout the run still ends at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_cancels_hung_requests() {
    let server = crate::hostile::start(crate::hostile::Behaviour::Hang, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    scim_workload(
        dir.path(),
        &server.url,
        "t",
        "model = \"closed\"\nadmins = 4\nduration = \"60s\"",
        "[\"create_user\"]",
        "",
    );
    let text = std::fs::read_to_string(dir.path().join("w.toml")).unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        text.replace("[load]", "timeout = \"120s\"\n[load]"),
    )
    .unwrap();
    let child = start_run(dir.path());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    interrupt_group(child.id());
    let (code, stderr) = ended(child, "SIGINT with hung requests").await;
    assert_eq!(code, Some(130), "{stderr}");
    let summary = final_summary(dir.path());
    assert_eq!(summary["outcome"], "aborted");
    assert_eq!(
        summary["journeys"][0]["stopped"], 4,
        "the hung journeys were cut short, not failed"
    );
}
