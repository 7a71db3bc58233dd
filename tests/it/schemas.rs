//! A target whose `/Schemas` marks user attributes required (the reference with
//! `required_attributes`): a user template without them fails `validate --online` and `run`
//! before any load, naming them; with them, both pass.

use assert_cmd::Command;

fn workload(scim: &str, template: &str) -> String {
    format!(
        "name = \"schemas\"\n[target]\nkind = \"scim\"\nbase_url = \"{scim}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n\
         [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"delete_user\"]\n\
         [users]\ntemplate = {template}\n"
    )
}

async fn provbench(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let (dir, args) = (
        dir.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_attributes_fail_fast_at_validate_online_and_run() {
    let config = provbench::reference::config::ReferenceConfig::from_toml(
        "profile = \"fast\"\nrequired_attributes = [\"emails\", \"active\"]\n",
    )
    .unwrap();
    let reference = crate::support::start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    let lacking = "{ userName = \"{run_id}-{seq}@example.test\", active = true }";
    std::fs::write(dir.path().join("w.toml"), workload(&reference.scim, lacking)).unwrap();

    let (offline, _) = provbench(dir.path(), &["validate", "w.toml"]).await;
    assert_eq!(offline, Some(0), "offline validation cannot know the target's schema");
    let (code, text) = provbench(dir.path(), &["validate", "--online", "w.toml"]).await;
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("marks `emails` required") && !text.contains("`active`"),
        "{text}"
    );
    let (code, text) = provbench(dir.path(), &["run", "w.toml", "--no-progress", "--out", "results"]).await;
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("marks `emails` required"), "{text}");
    let stats = reference.get_json("/stats").await;
    assert_eq!(stats["jobs"]["accepted"], 0, "no write reached the target: {stats}");

    let complete = "{ userName = \"{run_id}-{seq}@example.test\", active = true, emails = [{ value = \"{run_id}-{seq}@example.test\" }] }";
    std::fs::write(dir.path().join("w.toml"), workload(&reference.scim, complete)).unwrap();
    let (code, text) = provbench(dir.path(), &["validate", "--online", "w.toml"]).await;
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = provbench(dir.path(), &["run", "w.toml", "--no-progress", "--out", "results2"]).await;
    assert_eq!(code, Some(0), "{text}");
    let stats = reference.get_json("/stats").await;
    assert!(stats["jobs"]["accepted"].as_u64().unwrap() >= 2, "{stats}");
    reference.stop().await;
}
