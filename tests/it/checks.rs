//! The checks against the reference service: all pass without flaws; each deliberate flaw makes
//! exactly its matching check fail and the run exit 1 naming it; no secret reaches any file.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

const WORKLOAD: &str = r#"name = "checks"
[target]
kind = "embedded"
profile = "fast"
[load]
model = "closed"
admins = 6
duration = "3s"
# Room between the disable and the delete for the disable's revocation check, even on a busy
# machine: each change is judged on its own evidence.
think_time = "60ms..90ms"
[[journey]]
name = "joiner-mover-leaver"
steps = ["create_user", "assign_role:employee", "modify_user", "disable_user", "delete_user"]
# Leavers disabled and left to the run's cleanup: no delete of the journey's own overtakes their
# disable's revocation check, however slow the machine makes the checks.
[[journey]]
name = "leaver"
weight = 1
steps = ["create_user", "assign_role:employee", "disable_user"]
[users]
password = "Pw-{run_id}-{seq}!"
[checks]
kinds = ["login", "permissions", "audit", "welcome", "authorization", "escalation", "revocation"]
sample = 0.5
timeout = "3s"
attempts = 5
"#;

fn run(dir: &Path, flaw: Option<&str>, extra: &[&str]) -> (Option<i32>, String, Value) {
    let text = match flaw {
        Some(f) => WORKLOAD.replace("profile = \"fast\"", &format!("profile = \"fast\"\nflaws = [\"{f}\"]")),
        None => WORKLOAD.to_string(),
    };
    std::fs::write(dir.join("w.toml"), text).unwrap();
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir)
        .args(["run", "w.toml", "--no-progress", "--out", "results"])
        .args(extra)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let summary = serde_json::from_str(&std::fs::read_to_string(dir.join("results/summary.json")).unwrap()).unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        summary,
    )
}

fn failed_checks(summary: &Value) -> Vec<String> {
    summary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["failed"].as_u64().unwrap() > 0 || !c["error"].is_null())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn without_flaws_every_check_passes_and_no_secret_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // Every check on half the users, with the workload's room between a disable and its delete
    // (with 1–3 ms, every disable's revocation check was overtaken: not judged, no pass).
    let (code, stdout, s) = run(
        dir.path(),
        None,
        // Each check's judged cases are asserted below (passed > 0), not the evidence rule's
        // count: a busy machine judges fewer.
        // A bound the checks meet on a starved machine too (each passing case ends as soon as
        // it is judged; only a flaw would wait it out).
        &[
            "--set",
            "load.admins=10",
            "--set",
            "checks.min_evidence=1",
            "--set",
            "checks.timeout=15s",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    // Under load, but no rate asserted: a busy machine runs fewer operations, not different
    // verdicts. Every check must have judged users (below), which is what the test is for.
    assert!(failed_checks(&s).is_empty(), "{}", s["checks"]);
    for c in s["checks"].as_array().unwrap() {
        assert!(c["passed"].as_u64().unwrap() > 0, "{c}");
    }
    // What judging cost is counted (at least a request per judged case) and said.
    let judged: u64 = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["passed"].as_u64().unwrap())
        .sum();
    let cost = &s["check_cost"];
    assert!(
        cost["requests"].as_u64().unwrap() >= judged,
        "{cost} for {judged} judged cases"
    );
    assert!(cost["share_of_requests"].as_f64().unwrap() > 0.0, "{cost}");
    assert!(stdout.contains("checks sent"), "{stdout}");
    for m in ["login_latency", "login_ready_lag", "revocation_lag", "audit_lag"] {
        assert!(
            s["metrics"].as_array().unwrap().iter().any(|x| x["metric"] == m),
            "{m} missing"
        );
    }
    // Secrets: client secrets, user passwords, tokens never reach a file the run writes.
    let run_id = s["run_id"].as_str().unwrap();
    let password_prefix = format!("Pw-{run_id}-");
    for entry in std::fs::read_dir(dir.path().join("results")).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for secret in ["-secret", password_prefix.as_str(), "access_token", "Bearer "] {
            assert!(!text.contains(secret), "{} contains `{secret}`", path.display());
        }
    }
}

fn only_this_fails(flaw: &str, check: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, s) = run(dir.path(), Some(flaw), &[]);
    assert_eq!(code, Some(1), "{flaw}: {stdout}");
    assert_eq!(failed_checks(&s), [check], "{flaw}: {}", s["checks"]);
    assert!(stdout.contains(&format!("FAIL  check {check}")), "{flaw}: {stdout}");
    let junit = std::fs::read_to_string(dir.path().join("results/junit.xml")).unwrap();
    assert!(
        junit.contains(&format!("name=\"{check}\"")) && junit.contains("type=\"check\""),
        "{junit}"
    );
}

#[test]
fn privilege_escalation_fails_the_escalation_check() {
    only_this_fails("privilege-escalation", "escalation");
}

#[test]
fn stale_tokens_fail_the_revocation_check() {
    only_this_fails("stale-tokens", "revocation");
}

#[test]
fn incomplete_deprovisioning_fails_the_revocation_check() {
    only_this_fails("incomplete-deprovisioning", "revocation");
}

/// After cleanup the probe services are asked whether the run's users are gone: the service
/// that never applies deletes keeps them, and says so; the others hold none.
#[test]
fn downstream_leftovers_are_counted_per_service() {
    let dir = tempfile::tempdir().unwrap();
    let (_, stdout, s) = run(dir.path(), Some("incomplete-deprovisioning"), &[]);
    let leftovers = &s["probes"]["leftovers"];
    let stuck: Vec<(&String, u64)> = leftovers
        .as_object()
        .unwrap_or_else(|| panic!("no leftovers in {}", s["probes"]))
        .iter()
        .map(|(k, v)| (k, v.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(stuck.len(), 1, "exactly the flawed service keeps users: {leftovers}");
    assert!(stdout.contains("deprovisioning did not reach them"), "{stdout}");
    let (_, _, clean) = run(dir.path(), None, &[]);
    assert!(
        clean["probes"]["leftovers"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == 0),
        "{}",
        clean["probes"]
    );
}

#[test]
fn missing_audit_entries_fail_the_audit_check() {
    only_this_fails("missing-audit", "audit");
}

/// The checks workload with only `kinds` checked and the reference laid over by `reference`
/// (TOML), plus `extra` in `[checks]`, run for 2 s: exit code and summary.
fn run_login_variant(kinds: &str, reference: &str, extra: &str) -> (Option<i32>, Value) {
    let workload = WORKLOAD
        .replace("profile = \"fast\"", "profile = \"fast\"\nconfig = \"reference.toml\"")
        .replace(
            "kinds = [\"login\", \"permissions\", \"audit\", \"welcome\", \"authorization\", \"escalation\", \"revocation\"]",
            &format!("kinds = {kinds}"),
        );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("reference.toml"), reference).unwrap();
    std::fs::write(dir.path().join("w.toml"), format!("{workload}{extra}")).unwrap();
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        // These runs prove how a login is made, not how many: one judged case is enough (a
        // busy machine makes few browser logins in 2 s).
        .args(["run", "w.toml", "--no-progress", "--out", "results", "--duration", "2s"])
        .args(["--set", "checks.min_evidence=1"])
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let summary =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap()).unwrap();
    (out.status.code(), summary)
}

/// An identifier-first IdP (`serve --login-identifier-first`): the username on one page, the
/// password on the next, then consent. The browser sign-in fills each page with what it asks
/// for; a name field it does not know fails the check with the page's own text.
#[test]
fn browser_sign_in_through_an_identifier_first_login() {
    let flow = "login_flow = { kind = \"authorization-code\", csrf_field = \"csrf_token\", consent = { field = \"decision\", value = \"allow\" }";
    let reference = "password_grant = false\nlogin_consent = true\nlogin_identifier_first = true\n";
    let (code, summary) = run_login_variant("[\"login\"]", reference, &format!("{flow} }}\n"));
    let checks = summary["checks"].to_string();
    assert_eq!(code, Some(0), "{checks}");
    let login = &summary["checks"][0];
    assert!(
        login["passed"].as_u64().unwrap() > 0 && login["failed"] == 0,
        "{checks}"
    );

    let misnamed = format!("{flow}, username_field = \"email\" }}\n");
    let (code, summary) = run_login_variant("[\"login\"]", reference, &misnamed);
    let checks = summary["checks"].to_string();
    assert_eq!(code, Some(1), "{checks}");
    assert!(checks.contains("Sign in"), "the page's text: {checks}");
}

/// A token endpoint that allows the password grant to confidential clients only, with HTTP
/// Basic only: the login check passes with `login_client` authenticating by Basic, and fails,
/// naming `invalid_client`, without it or with the secret in the form.
#[test]
fn the_login_checks_password_grant_authenticates_its_client() {
    for (client, passes) in [
        ("login_client = { id = \"provbench-admin\" }\n", true),
        ("", false),
        (
            "login_client = { id = \"provbench-admin\", client_auth = \"post\" }\n",
            false,
        ),
    ] {
        let (code, summary) = run_login_variant("[\"login\"]", "client_auth = \"basic\"\n", client);
        if passes {
            assert_eq!(code, Some(0), "{client}: {:?}", failed_checks(&summary));
        } else {
            assert_eq!(code, Some(1), "{client}");
            let text = summary["checks"].to_string();
            assert!(text.contains("invalid_client"), "{client}: {text}");
            // Every refused attempt is an error of login_latency, never a sample of success.
            let login = summary["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["metric"] == "login_latency")
                .unwrap();
            assert!(login["count"].as_u64() > Some(0), "{login}");
            assert_eq!(login["errors"], login["count"], "{client}: {login}");
            assert!(!text.contains("provbench-admin-secret"));
        }
    }
}

/// An IdP that disables the password grant and asks for consent: the login check passes
/// through the authorization code flow (PKCE, the login form's CSRF token, the
/// consent page, the refresh grant); the password grant, or the code flow without the consent
/// step, fails the login check at once, naming why.
#[test]
fn browser_sign_in_through_a_login_form_with_csrf_and_consent() {
    let flow = "login_flow = { kind = \"authorization-code\", csrf_field = \"csrf_token\"";
    for (extra, passes, why) in [
        (
            format!("{flow}, consent = {{ field = \"decision\", value = \"allow\" }} }}\n"),
            true,
            "",
        ),
        (String::new(), false, "unsupported_grant_type"),
        (format!("{flow} }}\n"), false, "consent"),
    ] {
        let reference = "password_grant = false\nlogin_consent = true\n";
        // The login alone: revocation after a disable is judged on its own evidence, which a
        // journey that deletes 20–40 ms after disabling rarely gives.
        let (code, summary) = run_login_variant("[\"login\"]", reference, &extra);
        let checks = summary["checks"].to_string();
        if passes {
            assert_eq!(code, Some(0), "{extra}: {checks}");
            let login = summary["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["kind"] == "login")
                .unwrap();
            assert!(login["passed"].as_u64().unwrap() > 0, "{checks}");
        } else {
            assert_eq!(code, Some(1), "{extra}");
            assert!(checks.contains(why), "{extra}: {checks}");
        }
        assert!(!checks.contains("provbench-admin-secret"));
    }
}
