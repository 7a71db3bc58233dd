//! The binary's surface: help texts, exit codes and error wording.

use assert_cmd::Command;

fn provbench() -> Command {
    Command::cargo_bin("provbench").unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = provbench().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help_names_subcommands_and_exit_codes() {
    let help = stdout_of(&["--help"]);
    assert!(help.contains("serve"), "{help}");
    assert!(help.contains("Exit codes: 0 passed, 1"), "{help}");
}

#[test]
fn serve_help_documents_every_fault_and_flaw() {
    let help = stdout_of(&["serve", "--help"]);
    for needle in [
        "--latency",
        "--error-rate",
        "--rate-limit",
        "--stall",
        "--sync-delay",
        "--sync-failure",
        "--sync-lost",
        "--flaw",
        "privilege-escalation",
        "stale-tokens",
        "incomplete-deprovisioning",
        "missing-audit",
        "--admin-token",
        "Examples:",
    ] {
        assert!(help.contains(needle), "serve --help lacks {needle}");
    }
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["serve", "--sync-delay", "directory=gamma:1s"], "unknown kind `gamma`"),
        (&["serve", "--sync-delay", "ldap=1s"], "unknown linked service `ldap`"),
        (&["serve", "--flaw", "bogus"], "unknown flaw `bogus`"),
        (&["serve", "--error-rate", "1.5"], "between 0 and 1"),
        (&["serve", "--stall", "10s/5s"], "0 < duration < every"),
        (&["serve", "--profile", "nope"], "invalid value 'nope'"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, wording) in cases {
        let out = provbench().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wording), "{args:?}: expected `{wording}` in {stderr}");
    }
}

#[test]
fn validate_points_at_the_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"x\"\n[load]\nmodel = \"closed\"\nrat = 5\nduration = \"1s\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n",
    )
    .unwrap();
    let out = provbench().args(["validate"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml:4:1: unknown key `rat` in [load]"), "{stderr}");
    let ok = provbench()
        .args(["validate", "workloads/quickstart.toml"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok (closed model, 20 admins"));
}

#[test]
fn run_of_a_missing_file_is_a_usage_error() {
    let out = provbench().args(["run", "no/such/workload.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the workload"));
}

/// Regression: values that `validate` accepted crashed (capacity overflow), aborted (an 11 TB
/// allocation) or hung a run. Each is refused by `validate`, naming the file, line and limit.
#[test]
fn out_of_bounds_values_are_refused_with_file_line_and_limit() {
    const CLOSED: &str = "name = \"x\"\n[load]\nmodel = \"closed\"\nadmins = 2\nduration = \"1s\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n";
    const OPEN: &str = "name = \"x\"\n[load]\nmodel = \"open\"\nrate = \"10/s\"\nduration = \"1s\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n";
    let cases: &[(String, &str, &str)] = &[
        (
            CLOSED.replace("admins = 2", "admins = 1000000000000000000"),
            "w.toml:4:",
            "limit of 100000",
        ),
        (
            OPEN.replace("rate = \"10/s\"", "rate = \"10/s\"\nmax_admins = 100000000000"),
            "w.toml:5:",
            "limit of 100000",
        ),
        (
            OPEN.replace("\"10/s\"", "\"1e308/s\""),
            "w.toml:4:",
            "limit of 100000/s",
        ),
        (
            OPEN.replace(
                "duration = \"1s\"",
                "stages = [{ to = \"1000000000000/s\", over = \"10s\" }]",
            ),
            "w.toml:5:",
            "limit of 100000/s",
        ),
        (
            format!("{CLOSED}[users]\nprepopulate = 1000000000000000000\n"),
            "w.toml:10:",
            "limit of 1000000",
        ),
        (
            CLOSED.replace("\"1s\"", "\"100000000h\""),
            "w.toml:5:",
            "limit of 7days",
        ),
        (
            CLOSED.replace("admins = 2", "admins = 2\nthink_time = \"2h\""),
            "w.toml:5:",
            "limit of 1h",
        ),
        (
            CLOSED.replace("name = \"j\"", "name = \"j\"\nweight = 4294967295"),
            "w.toml:8:",
            "limit of 1000000",
        ),
        (
            format!(
                "{CLOSED}[probes]\nsample = 1.0\nmax_share = 1.0\nmax_pending = 100000000000\n[[probes.sync]]\nservice = \"d\"\nurl = \"/d/{{id}}\"\n"
            ),
            "w.toml:",
            "limit of 1000000",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (text, at, limit) in cases {
        std::fs::write(dir.path().join("w.toml"), text).unwrap();
        let out = provbench()
            .current_dir(dir.path())
            .args(["validate", "w.toml"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(at) && stderr.contains(limit),
            "{text}: expected `{at}` and `{limit}` in {stderr}"
        );
    }
}

/// Regression: a missing environment variable's error did not name the workload file.
#[test]
fn a_missing_secret_names_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        "name = \"x\"\n[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9/scim/v2\"\nauth = { kind = \"bearer\", token_env = \"PROVBENCH_NO_SUCH_TOKEN\" }\n[load]\nmodel = \"closed\"\nadmins = 1\nduration = \"1s\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n",
    )
    .unwrap();
    let out = provbench()
        .current_dir(dir.path())
        .env_remove("PROVBENCH_NO_SUCH_TOKEN")
        .args(["run", "w.toml", "--no-progress", "--out", "r"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("w.toml: [target] auth") && stderr.contains("`PROVBENCH_NO_SUCH_TOKEN` is not set"),
        "{stderr}"
    );
}

/// A probe that observed nothing fails the run (exit 1), with or without `--strict`: a series
/// whose every observation timed out is no pass.
#[test]
fn a_probe_that_observed_nothing_fails_the_run_strict_or_not() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ref.toml"),
        "profile = \"fast\"\n[[services]]\nname = \"mail\"\nsync_delay = \"10ms\"\nlost_probability = 1.0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        "name = \"x\"\n[target]\nconfig = \"ref.toml\"\n[load]\nmodel = \"closed\"\nadmins = 1\niterations = 3\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n[probes]\nsample = 1.0\nmax_share = 1.0\ntimeout = \"1s\"\n",
    )
    .unwrap();
    let run = |strict: bool| {
        let mut cmd = provbench();
        cmd.current_dir(dir.path())
            .args(["run", "w.toml", "--no-progress", "--out", "r"]);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    let lenient = run(false);
    assert_eq!(
        lenient.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&lenient.stderr)
    );
    assert!(String::from_utf8_lossy(&lenient.stdout).contains("never observed: sync_lag{op=create_user,service=mail}"));
    let strict = run(true);
    assert_eq!(
        strict.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&strict.stdout)
    );
}

/// The keys of one JSON object, in order, duplicates kept (a map would hide them).
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Regression: the "run starting" line had two `target` keys (the module and the target's URL),
/// and jq or Python kept only one. Every `--log-format json` line is an object with unique keys.
#[test]
fn json_log_lines_have_unique_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = provbench()
        .args([
            "run",
            "workloads/quickstart.toml",
            "--duration",
            "1s",
            "--no-progress",
            "--log-format",
            "json",
        ])
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.iter().any(|l| l.contains("run starting")), "{stderr}");
    for line in lines {
        let Keys(keys) = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "duplicate keys in {line}");
    }
}

/// Regression: with `--log-format json`, the progress line ("progress: 5s ...") and provbench's
/// own messages ("error: ...") were plain text among the JSON lines. Every line on stderr is a
/// JSON object: progress is an event with its figures as fields.
#[test]
fn json_logs_hold_no_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    // Progress on (stderr is no terminal: an event every 5 s of load).
    let out = provbench()
        .args([
            "--log-format",
            "json",
            "run",
            "workloads/quickstart.toml",
            "--duration",
            "6s",
        ])
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(events.iter().all(serde_json::Value::is_object), "{stderr}");
    let progress = events
        .iter()
        .find(|e| e["message"] == "progress")
        .unwrap_or_else(|| panic!("no progress event: {stderr}"));
    assert!(progress["ops"].as_u64().is_some_and(|n| n > 0), "{progress}");
    // A command line clap refuses is one JSON error event too, naming the word it refused.
    let out = provbench()
        .args(["--log-format", "json", "run", "--no-such-flag", "w.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(stderr.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert_eq!(v["level"], "ERROR", "{stderr}");
    assert!(v["message"].as_str().unwrap().contains("--no-such-flag"), "{stderr}");
    // What provbench says outside its log: an error on the way out.
    let out = provbench()
        .args(["--log-format", "json", "run", "no-such-workload.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["level"], "ERROR", "{line}");
        assert!(
            v["message"].as_str().unwrap().contains("no-such-workload.toml"),
            "{line}"
        );
    }
    assert!(!stderr.is_empty());
}

/// Completion scripts for each shell name every subcommand, and bash's parses.
#[test]
fn completions_and_man_pages() {
    let bash = stdout_of(&["completions", "bash"]);
    for sub in ["run", "validate", "serve", "compare", "merge"] {
        assert!(bash.contains(sub), "{sub} missing from the bash completion");
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("provbench.bash");
    std::fs::write(&script, &bash).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success(), "bash -n rejects the completion script");
    for shell in ["zsh", "fish"] {
        assert!(stdout_of(&["completions", shell]).contains("provbench"), "{shell}");
    }
    let listed = stdout_of(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(listed.lines().count() >= 9, "{listed}");
    let run = std::fs::read_to_string(dir.path().join("provbench-run.1")).unwrap();
    assert!(run.starts_with(".ie") || run.contains(".TH provbench-run"), "{run}");
    assert!(run.contains("threshold"), "the run page documents its flags");
}

/// stdout is the report's alone: goose's "N users launched." is gone; with `--quiet` it is the
/// verdict, what failed, the results folder and report.html, and stderr holds no info lines.
#[test]
fn stdout_is_the_report_and_quiet_is_brief() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], out: &str| {
        provbench()
            .args(extra)
            .args(["run", "workloads/quickstart.toml", "--duration", "1s", "--no-progress"])
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .unwrap()
    };
    let full = run(&[], "full");
    let stdout = String::from_utf8(full.stdout).unwrap();
    assert!(!stdout.contains("users launched"), "{stdout}");
    assert!(stdout.trim_start().starts_with("provbench · quickstart"), "{stdout}");
    // A terminal's 100 columns, series named as people read them.
    let widest = stdout.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 100, "{widest} columns:\n{stdout}");
    assert!(stdout.contains("create_user → directory"), "{stdout}");
    // The last lines name the results folder and the page to open.
    let report = dir.path().join("full/report.html");
    assert!(
        stdout.trim_end().ends_with(&format!("report   {}", report.display())),
        "{stdout}"
    );
    assert!(report.exists());
    let quiet = run(&["--quiet"], "quiet");
    assert_eq!(quiet.status.code(), Some(0));
    let stdout = String::from_utf8(quiet.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].ends_with("· passed") && lines[1].starts_with("results ") && lines[2].starts_with("report "),
        "{stdout}"
    );
    let stderr = String::from_utf8(quiet.stderr).unwrap();
    assert!(!stderr.contains("INFO"), "{stderr}");
    assert!(dir.path().join("quiet/summary.json").exists());
    // A failed run says what failed, with what was observed, not a bare FAILED.
    let failed = provbench()
        .args(["--quiet", "run", "workloads/quickstart.toml", "--duration", "1s"])
        .args(["--threshold", "max(api_latency) < 1us"])
        .arg("--out")
        .arg(dir.path().join("failed"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(failed.stdout).unwrap();
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].ends_with("· FAILED"), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL  max(api_latency) < 1us  (observed ")),
        "the lost threshold and its observed value: {stdout}"
    );
    assert!(!stdout.contains("pass "), "only what failed: {stdout}");
}

/// Regression: a run with no threshold and no check printed a bare "passed" and wrote a junit.xml
/// with `tests="0"`. It still exits 0 (it measured), and every output says nothing was judged.
#[test]
fn a_run_that_declares_nothing_says_nothing_was_judged() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = std::fs::read_to_string("workloads/quickstart.toml").unwrap();
    let bare: String = quickstart
        .lines()
        .filter(|l| !l.starts_with("thresholds"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(bare, quickstart, "the quickstart declares a threshold");
    std::fs::write(dir.path().join("bare.toml"), bare).unwrap();
    let out = provbench()
        .current_dir(dir.path())
        .args(["run", "bare.toml", "--duration", "1s", "--no-progress", "--out", "r"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let first = stdout.trim_start().lines().next().unwrap_or_default();
    assert!(first.ends_with("· passed (nothing judged)"), "{stdout}");
    assert!(
        stdout.contains("nothing judged: no thresholds or checks declared"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(dir.path().join("r/junit.xml")).unwrap();
    assert!(!junit.contains("tests=\"0\""), "{junit}");
    assert!(junit.contains("<skipped message=\"nothing judged"), "{junit}");
}

/// One HTTP/1.0 GET on loopback: the body, or nothing while nobody listens.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// `--dashboard`: while the run goes, the page is served and its data grows second by second,
/// with the run's context and every series' style of the run; when the run ends the page still
/// answers, with the verdict (it used to stop serving at once).
#[test]
fn the_dashboard_serves_the_run_as_it_goes_and_its_verdict() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .args(["run", "workloads/quickstart.toml", "--duration", "4s", "--no-progress"])
        .args(["--dashboard", &format!("127.0.0.1:{port}")])
        .arg("--out")
        .arg(dir.path().join("r"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (mut seen, mut ended) = (None, None);
    // Until the process ends (it serves the page a few seconds past the run), every 200 ms.
    while child.try_wait().unwrap().is_none() {
        if let Some(body) = http_get(port, "/intervals.json?since=0")
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
        {
            if seen.is_none() && v["next"].as_u64().unwrap_or(0) >= 2 {
                seen = Some(v.clone());
            }
            if !v["outcome"].is_null() {
                ended = Some(v);
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let page = http_get(port, "/").unwrap_or_default();
    child.wait().unwrap();
    let v = seen.expect("two seconds of data while the run went");
    let names: Vec<String> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["series"].as_object().unwrap().keys().cloned().collect::<Vec<_>>())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("api_latency{op=")), "{names:?}");
    assert!(v["rows"][0]["ops_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["context"]["workload"], "quickstart", "{v}");
    assert!(v["context"]["run_id"].as_str().unwrap().starts_with("pb-"), "{v}");
    let create = &v["series"]["api_latency{op=create_user}"];
    assert_eq!(create["label"], "create_user", "{v}");
    assert!(create["colour"].as_str().unwrap().starts_with('#'), "{v}");
    let ended = ended.expect("the verdict, served after the run");
    assert_eq!(ended["outcome"]["verdict"], "passed", "{ended}");
    assert_eq!(ended["outcome"]["thresholds"][0]["expression"], "rate(errors) < 1%");
    assert!(
        page.contains("provbench · live") && page.contains("/intervals.json") && page.contains("id=\"verdict\""),
        "{page}"
    );
}

/// Regression: a failing create showed only as a count; now every run keeps, per operation and
/// reason, the first answers (status and body), in summary.json, the console and the report.
#[test]
fn failures_are_sampled_with_their_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ref.toml"),
        "profile = \"fast\"\n[faults]\nerror_rate = 0.3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        "name = \"failing\"\n[target]\nconfig = \"ref.toml\"\n[load]\nmodel = \"closed\"\nadmins = 2\nduration = \"2s\"\n\
         [[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"delete_user\"]\n",
    )
    .unwrap();
    let out = provbench()
        .current_dir(dir.path())
        .args(["run", "w.toml", "--no-progress", "--out", "r"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("failed   create_user (status) ×"), "{stdout}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r/summary.json")).unwrap()).unwrap();
    let create = s["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["op"] == "create_user")
        .unwrap_or_else(|| panic!("{}", s["failures"]));
    assert!(create["count"].as_u64().unwrap() > 0);
    let example = create["examples"][0].as_str().unwrap();
    assert!(
        example.starts_with("POST /Users: HTTP 500"),
        "the request and the answer: {create}"
    );
    let report = std::fs::read_to_string(dir.path().join("r/report.html")).unwrap();
    assert!(report.contains("<table id=\"failures\">"));
}

/// `validate` refuses what can never be measured or judged: a `queue_delay` threshold where no
/// write carries a job reference (a SCIM target without a queue probe, an LDAP target), and a
/// revocation check where no journey disables or deletes a user.
#[test]
fn validate_refuses_what_can_never_be_measured() {
    let load = "[load]\nmodel = \"closed\"\nadmins = 1\niterations = 1\n";
    let scim = "[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9/scim/v2\"\n";
    let ldap = "[target]\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:9\"\nbase_dn = \"ou=people,dc=x\"\n[directory]\nrdn = \"uid\"\nname = \"{run_id}-{seq}\"\nobject_classes = [\"inetOrgPerson\"]\nattributes = { cn = \"x\", sn = \"y\" }\n";
    let creates = "[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n";
    let queue = "thresholds = [\"p95(queue_delay) < 1s\"]\n";
    let cases = [
        (format!("name = \"q\"\n{queue}{load}{creates}{scim}"), "no queue probe"),
        (
            format!(
                "name = \"q\"\n{queue}{load}{creates}{ldap}[probes]\nqueue = {{ job_header = \"x-job\", accepted_at = \"/a\", started_at = \"/s\" }}\n"
            ),
            "carry no job reference",
        ),
        (
            format!(
                "name = \"r\"\n{load}{creates}[target]\nkind = \"embedded\"\n[users]\npassword = \"Pw-{{seq}}-x\"\n[checks]\nkinds = [\"revocation\"]\n"
            ),
            "would check nothing",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (text, why) in cases {
        std::fs::write(dir.path().join("w.toml"), &text).unwrap();
        let out = provbench()
            .current_dir(dir.path())
            .args(["validate", "w.toml"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(why), "{text}: expected `{why}` in {stderr}");
    }
}
