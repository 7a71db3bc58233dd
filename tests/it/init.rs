//! `provbench init`'s pipeline on the reference service: the written workload validates, runs
//! clean, and `init --check` agrees with it; `--out` never overwrites unasked; a workload that
//! contradicts the target is named setting by setting.

use assert_cmd::Command;
use provbench::reference::config::ReferenceConfig;

use crate::support::start_reference;

fn provbench() -> Command {
    Command::cargo_bin("provbench").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_written_workload_validates_runs_and_agrees_with_its_target() {
    let r = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.toml");
    let scim = r.scim.clone();
    let token = r.token.clone();
    let o = out.clone();
    let init = tokio::task::spawn_blocking(move || {
        provbench()
            .args(["init", &scim, "--token-env", "IT_TOKEN", "--out"])
            .arg(&o)
            .env("IT_TOKEN", &token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(&r.token), "a secret in the workload:\n{text}");
    assert!(text.contains("token_env = \"IT_TOKEN\""), "{text}");

    // A second init to the same file is refused unless --force.
    let (scim, token, o) = (r.scim.clone(), r.token.clone(), out.clone());
    let again = tokio::task::spawn_blocking(move || {
        provbench()
            .args(["init", &scim, "--token-env", "IT_TOKEN", "--out"])
            .arg(&o)
            .env("IT_TOKEN", &token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // It runs: 0 errors, nothing left.
    let (o, token, d) = (out.clone(), r.token.clone(), dir.path().join("results"));
    let run = tokio::task::spawn_blocking(move || {
        provbench()
            .args(["run", "--duration", "3s", "--no-progress", "--out"])
            .arg(&d)
            .arg(&o)
            .env("IT_TOKEN", &token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results/summary.json")).unwrap()).unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stdout));
    assert_eq!(summary["outcome"], "passed", "{summary}");
    assert_eq!(summary["cleanup"]["failed"], 0, "{summary}");
    assert_eq!(summary["cleanup"]["unverified"], 0, "{summary}");
    // Nothing carrying the run id is left on the server.
    let run_id = summary["run_id"].as_str().unwrap();
    let left = r
        .get_json(&format!("/scim/v2/Users?filter=userName co \"{run_id}\""))
        .await;
    assert_eq!(left["totalResults"], 0, "{left}");

    // `init --check` on what init wrote: the target agrees.
    let (o, token) = (out.clone(), r.token.clone());
    let check = tokio::task::spawn_blocking(move || {
        provbench()
            .args(["init", "--check"])
            .arg(&o)
            .env("IT_TOKEN", &token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    r.stop().await;
}

#[test]
fn init_without_a_url_or_check_is_a_usage_error() {
    let out = provbench().arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let both = provbench()
        .args(["init", "http://127.0.0.1:1/scim", "--check", "w.toml"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn a_target_that_refuses_connections_fails_in_seconds_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let out = provbench()
        .args(["init", &format!("http://127.0.0.1:{port}/scim/v2")])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&port.to_string()), "{err}");
    assert!(out.stdout.is_empty(), "nothing written when nothing was read");
}
