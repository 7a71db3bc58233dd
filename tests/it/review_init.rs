//! Hostile review of `provbench init` (issue 24): inputs the init tests did not try. Each test
//! names the invariant it defends; each failed on main at d932a0d.

use std::path::Path;

use provbench::engine::targets::scim::schemas::attributes;
use provbench::init::check::disagreements;
use provbench::init::draft::Draft;
use provbench::init::scim_users;
use provbench::reference::config::ReferenceConfig;
use provbench::workload::Workload;
use provbench::workload::overrides::Overrides;
use serde_json::json;

use crate::support::start_reference;

/// Invariant 4 (a TOML key built from an answer): attribute names from a hostile `/Schemas`
/// become keys of `[users] template`; each must read back as exactly that key, and nothing else
/// may appear in the file.
#[test]
fn hostile_schema_attribute_names_stay_one_key_each() {
    let names = [
        "a]\n[checks]\nurl = 'http://evil.test'",
        "x\ny",
        "'''",
        "\"\"\"",
        "q\"'",
        "b\u{7f}",
        "c\u{1b}[2J",
        "d\u{2028}e",
        "e\r",
        "f\t",
    ];
    for name in names {
        let schema = json!({"attributes": [
            {"name": "userName", "type": "string", "required": true},
            {"name": name, "type": "string", "required": true}]});
        let mut d = Draft::new();
        scim_users::write(Some(&attributes(&schema)), false, &mut d);
        let text = d.render();
        let t: toml::Table = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{name:?}: init would refuse its own workload ({e}):\n{text}"));
        assert_eq!(t.keys().collect::<Vec<_>>(), ["users"], "{name:?}:\n{text}");
        assert!(t["users"]["template"].get(name).is_some(), "{name:?}:\n{text}");
    }
}

/// Invariant 4/5 (the marker is the user's identity): `modify_user` must never be drafted to
/// change `userName`, however `/Schemas` spells it — a run would strip its own marker from every
/// user it modifies, and the marker sweep (`provbench cleanup`, "0 left") would no longer find them.
#[test]
fn modify_is_never_drafted_on_the_marker_attribute() {
    for spelling in [
        "USERNAME",
        "username",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    ] {
        let schema = json!({"attributes": [
            {"name": "userName", "type": "string", "required": true, "mutability": "readWrite"},
            {"name": spelling, "type": "string", "mutability": "readWrite"}]});
        let mut d = Draft::new();
        scim_users::write(Some(&attributes(&schema)), false, &mut d);
        let text = d.render();
        let t: toml::Table = toml::from_str(&text).unwrap();
        let modify = t["users"].get("modify").and_then(|m| m.as_table());
        for key in modify.into_iter().flat_map(|m| m.keys()) {
            let bare = key.rsplit(':').next().unwrap();
            assert!(
                !bare.eq_ignore_ascii_case("userName"),
                "{spelling}: modify_user renames the marker:\n{text}"
            );
        }
    }
}

/// The same, one level down: a workload may not say it either (the gate belongs in
/// `workload::dialect::convert`, where `[users] modify` is read).
#[test]
fn a_workload_that_modifies_username_is_refused() {
    for key in [
        "userName",
        "USERNAME",
        "\"urn:ietf:params:scim:schemas:core:2.0:User:userName\"",
    ] {
        let text = format!(
            "name = \"m\"\n[target]\nkind = \"embedded\"\n[users]\nmodify = {{ {key} = \"x {{seq}}\" }}\n\
             [load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n\
             [[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"modify_user\", \"delete_user\"]\n"
        );
        assert!(
            Workload::parse(Path::new("m.toml"), &text, &Overrides::default()).is_err(),
            "{key}: a modify that strips the run's marker validates"
        );
    }
}

/// `init --check` (false "agrees"): a run trims step names (`Step::parse_with`), the check does
/// not, so a journey step written with a space is run but never judged.
#[test]
fn check_judges_a_step_the_run_would_take_however_it_is_spaced() {
    let text = "name = \"m\"\n[target]\nkind = \"embedded\"\n[load]\nmodel = \"closed\"\nadmins = 1\n\
                iterations = 1\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\", \" find_user\", \"delete_user\"]\n";
    // The run takes it: ` find_user` is find_user.
    Workload::parse(Path::new("m.toml"), text, &Overrides::default()).unwrap();
    let mut d = Draft::new();
    d.unsupported("find_user", "the filter is ignored");
    let t: toml::Table = toml::from_str(text).unwrap();
    assert!(
        !disagreements(&d, &t).is_empty(),
        "the workload's find_user is not judged"
    );
}

const TOKEN_ENV: &str = "PB_REVIEW_INIT_TOKEN";

/// `init --check --write-probe` (false "agrees"): the probe PATCHes the attributes discovery
/// drafted, not the workload's own `[users] modify`; a workload that also changes an attribute
/// the target answers 500 to is called agreeing, and every modify_user of its run fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_write_probe_tries_the_workloads_own_modify() {
    let (out, r) =
        crate::init_probe::check_where_nickname_is_refused(r#"{ title = "Title {seq}", nickName = "Nick {seq}" }"#)
            .await;
    let said = format!("{}{}", out.stdout, out.stderr);
    // A run of this workload: every modify_user sends nickName, which the target answers 500.
    assert_eq!(out.code, Some(1), "--check called it agreeing:\n{said}");
    r.stop().await;
}

/// Invariants 5 and 8: `init --write-probe` interrupted (Ctrl-C) between its create and its
/// delete. `init` installs no signal handler, so the process dies at once: the probe user stays
/// on the target, and the run id (said only in the lines printed when init ends) is never shown,
/// so not even `provbench cleanup --run-id` can be pointed at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_write_probe_removes_its_user_or_names_it() {
    use provbench::reference::distribution::Distribution;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut config = ReferenceConfig::profile("fast").unwrap();
    config.faults.latency = Distribution::Fixed(Duration::from_millis(400));
    let r = start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .args([
            "init",
            &r.scim,
            "--token-env",
            TOKEN_ENV,
            "--write-probe",
            "--out",
            "w.toml",
        ])
        .env(TOKEN_ENV, &r.token)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let list = r.get_json("/scim/v2/Users?count=100").await;
        if list["totalResults"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the probe never created its user"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "init ended before its probe's create was seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let left = r.get_json("/scim/v2/Users?count=100").await["totalResults"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        left == 0 || stderr.contains("provbench cleanup --run-id pb-"),
        "SIGINT mid-probe: {left} user(s) left, exit {:?}, stderr: {stderr:?}",
        out.status.code()
    );
    r.stop().await;
}
