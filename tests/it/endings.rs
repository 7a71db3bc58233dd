//! Every way a `provbench run` process ends, and what it shows on the way (invariants 8 and 9 of
//! the threat model): SIGHUP follows the signal protocol as SIGTERM does; closed stdout and
//! stderr (`provbench run … 2>&1 | head -1`) neither panic nor stop the result files; and a
//! target that echoes credentials, cookies, CR/LF and a fake verdict line gets none of them into
//! any output; a target that refuses connections ends the command at once.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use provbench::reference::config::ReferenceConfig;
use serde_json::{Value, json};

use crate::engine::marked_users;
use crate::support::start_reference;

/// A workload of four admins creating users for a minute against `url` (bearer token in a file).
fn scim_workload(dir: &std::path::Path, url: &str, token: &str, duration: &str) {
    std::fs::write(dir.join("token"), token).unwrap();
    std::fs::write(
        dir.join("w.toml"),
        format!(
            "name = \"endings\"\n[target]\nkind = \"scim\"\nbase_url = \"{url}\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\n[load]\nmodel = \"closed\"\nadmins = 4\nduration = \"{duration}\"\nthink_time = \"5ms\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\", \"get_user\"]\n"
        ),
    )
    .unwrap();
}

fn provbench(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("provbench"));
    c.args(args).current_dir(dir);
    c
}

/// Waits for `child` off the runtime: its exit code.
async fn exit_code(mut child: std::process::Child, what: &'static str) -> Option<i32> {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code();
            }
            assert!(Instant::now() < deadline, "{what}: the run never ended");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap()
}

/// A closed terminal or a dropped SSH session (SIGHUP) ends a run as SIGTERM does: the load
/// stops, cleanup runs, every file is written with a final outcome, and the exit code is 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_flushes_and_cleans_up() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    scim_workload(dir.path(), &reference.scim, &reference.token, "60s");
    let out = dir.path().join("results");
    let child = provbench(dir.path(), &["run", "w.toml", "--no-progress", "--out", "results"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !out.join("intervals.csv").exists() || started.elapsed() < Duration::from_secs(2) {
        assert!(started.elapsed() < Duration::from_secs(20), "the run never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let code = exit_code(child, "SIGHUP").await;
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "aborted", "{summary}");
    assert_eq!(summary["stop_reason"]["reason"], "signal");
    assert!(
        summary["cleanup"]["deleted"].as_u64().unwrap_or(0) > 0,
        "{}",
        summary["cleanup"]
    );
    assert_eq!(marked_users(&reference, summary["run_id"].as_str().unwrap()).await, 0);
    for file in ["junit.xml", "summary.md", "report.html"] {
        assert!(out.join(file).exists(), "{file}");
    }
    assert_eq!(code, Some(130), "as for SIGTERM");
    reference.stop().await;
}

/// A reader that goes away (`provbench run … 2>&1 | head -1`, `provbench completions zsh | head`)
/// leaves writes to stdout and stderr failing with EPIPE: no panic (exit 101), and every result
/// file is still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_and_stderr_never_panic_nor_stop_the_files() {
    let reference = start_reference(ReferenceConfig::profile("fast").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    scim_workload(dir.path(), &reference.scim, &reference.token, "2s");
    let mut child = provbench(dir.path(), &["run", "w.toml", "--no-progress", "--out", "results"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the first line.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let code = exit_code(child, "closed pipes").await;
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}");
    let out = dir.path().join("results");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_ne!(summary["outcome"], "running");
    for file in ["junit.xml", "summary.md", "report.html"] {
        assert!(out.join(file).exists(), "{file} not written");
    }
    assert_eq!(marked_users(&reference, summary["run_id"].as_str().unwrap()).await, 0);
    reference.stop().await;

    let mut completions = provbench(dir.path(), &["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(completions.stdout.take());
    let output = completions.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `application/x-www-form-urlencoded` (`+` for a space) and percent-encoding of every byte but
/// letters and digits, in either hex case.
fn encodings(s: &str) -> [String; 3] {
    let enc = |form: bool, lower: bool| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                b' ' if form => "+".into(),
                _ if lower => format!("%{b:02x}"),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    [enc(true, false), enc(false, false), enc(false, true)]
}

/// RFC 3986 unreserved kept, the rest `%XX` (the Basic credentials of RFC 6749 §2.3.1).
fn unreserved(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The token endpoint echoes the `Authorization: Basic …` header and the form it was sent, and
/// sets a cookie; the API answers every create with an error body holding the bearer token, a
/// cookie, CR/LF and a fake `all thresholds passed` line, ESC and a bidi override; the notify
/// URL carries a password. No form of any secret reaches stdout, stderr or a file of the
/// results, and the console shows no raw CR and no line of the target's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_secrets_and_fake_lines_never_reach_an_output() {
    let refuse_tokens = Arc::new(AtomicBool::new(true));
    let refuse = refuse_tokens.clone();
    const TOKEN: &str = "tok-echo-0123456789abcdef";
    const COOKIE: &str = "c00kie-val-99";
    let fake = "boom\r\nall thresholds passed\r\n\u{1b}[2K\u{202e}";
    let app = Router::new()
        .route(
            "/oauth/token",
            post(move |h: HeaderMap, body: String| {
                let refuse = refuse.load(Ordering::Relaxed);
                async move {
                    let auth = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    if refuse {
                        let echo = format!(
                            "invalid_client: you sent Authorization: {auth} and {body}\nSet-Cookie: idp={COOKIE}; Path=/"
                        );
                        (StatusCode::BAD_REQUEST, echo)
                    } else {
                        (StatusCode::OK, json!({"access_token": TOKEN, "expires_in": 3600}).to_string())
                    }
                }
            }),
        )
        .route(
            "/scim/v2/Users",
            get(|| async { axum::Json(json!({"totalResults": 0, "Resources": []})) }).post(move |h: HeaderMap| async move {
                let auth = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let body = format!("{fake} your header was {auth}; Set-Cookie: sid={COOKIE}\r\nall thresholds passed");
                (StatusCode::INTERNAL_SERVER_ERROR, body)
            }),
        )
        .route(
            "/scim/v2/Groups",
            get(|| async { axum::Json(json!({"totalResults": 0, "Resources": []})) }),
        )
        .route("/hook", post(|| async { StatusCode::OK }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (id, secret) = ("pb admin:1", "Sp ce+/=&%:@x-s3cret");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), secret).unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            "name = \"echo\"\n[target]\nkind = \"scim\"\nbase_url = \"http://{addr}/scim/v2\"\n\
             auth = {{ kind = \"oauth2-client-credentials\", token_url = \"/oauth/token\", client_id = \"{id}\", client_secret_file = \"secret\" }}\n\
             [load]\nmodel = \"closed\"\nadmins = 1\nduration = \"1s\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n"
        ),
    )
    .unwrap();
    let notify = format!("http://hook:n0tify-pass-77@{addr}/hook");
    let run = Arc::new(move |dir: std::path::PathBuf| {
        provbench(
            &dir,
            &[
                "run",
                "w.toml",
                "--no-progress",
                "--out",
                "results",
                "--notify",
                &notify,
            ],
        )
        .output()
        .unwrap()
    });
    // The token endpoint refuses, echoing the Basic header: the run cannot start.
    let refused = tokio::task::spawn_blocking({
        let (d, run) = (dir.path().to_path_buf(), run.clone());
        move || run(d)
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let refused_text = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(refused_text.contains("invalid_client"), "{refused_text}");
    // It grants a token; every create fails with the hostile body.
    refuse_tokens.store(false, Ordering::Relaxed);
    let ran = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || run(d)
    })
    .await
    .unwrap();
    let console = [ran.stdout.clone(), ran.stderr.clone(), refused.stderr.clone()].concat();
    let console = String::from_utf8_lossy(&console).into_owned();
    assert!(console.contains("boom"), "the failure sample is shown: {console}");
    assert!(!console.contains('\r'), "a raw CR on the console: {console:?}");
    assert!(!console.contains(['\u{1b}', '\u{202e}']), "{console:?}");
    assert!(
        !console
            .lines()
            .any(|l| l.trim_start().starts_with("all thresholds passed")),
        "a line of the target's: {console}"
    );
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut forms = vec![
        secret.to_string(),
        b64(&format!("{id}:{secret}")),
        b64(&format!("{}:{}", unreserved(id), unreserved(secret))),
        b64(secret),
        TOKEN.to_string(),
        COOKIE.to_string(),
        "n0tify-pass-77".to_string(),
    ];
    forms.extend(encodings(secret));
    let mut outputs = vec![
        (
            "stdout/stderr (refused)".to_string(),
            [refused.stdout, refused.stderr].concat(),
        ),
        ("stdout/stderr (ran)".to_string(), [ran.stdout, ran.stderr].concat()),
    ];
    for entry in std::fs::read_dir(dir.path().join("results")).unwrap() {
        let path = entry.unwrap().path();
        outputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    assert!(outputs.len() > 5, "the run wrote its files");
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{name} shows `{form}`:\n{text}");
        }
        if !name.ends_with(".json") && !name.ends_with(".log") {
            assert!(
                !text
                    .lines()
                    .any(|l| l.trim_start().starts_with("all thresholds passed")),
                "{name} holds a line of the target's:\n{text}"
            );
        }
    }
}

/// The first Ctrl-C cuts the requests of the start short: a token endpoint, or a `/Schemas`,
/// that never answers (with a 120 s request timeout) does not keep the process waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_signal_cancels_start_up_requests() {
    for hung in [
        "/oauth/token",
        "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    ] {
        let asked = Arc::new(AtomicBool::new(false));
        let seen = asked.clone();
        let hang = move || {
            let seen = seen.clone();
            async move {
                seen.store(true, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::OK
            }
        };
        let token = || async { axum::Json(json!({"access_token": "tok-hang-0123456789", "expires_in": 3600})) };
        let app = match hung {
            "/oauth/token" => Router::new().route(hung, post(hang)),
            _ => Router::new().route("/oauth/token", post(token)).route(hung, get(hang)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "hang-client-secret").unwrap();
        std::fs::write(
            dir.path().join("w.toml"),
            format!(
                "name = \"hang\"\n[target]\nkind = \"scim\"\ntimeout = \"120s\"\nbase_url = \"http://{addr}/scim/v2\"\n\
                 auth = {{ kind = \"oauth2-client-credentials\", token_url = \"/oauth/token\", client_id = \"c\", client_secret_file = \"secret\" }}\n\
                 [load]\nmodel = \"closed\"\nadmins = 1\nduration = \"5s\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n"
            ),
        )
        .unwrap();
        let child = provbench(dir.path(), &["run", "w.toml", "--no-progress", "--out", "results"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !asked.load(Ordering::Relaxed) {
            assert!(started.elapsed() < Duration::from_secs(20), "{hung} never asked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        // `exit_code` gives up after 60 s, half the request timeout.
        let code = exit_code(child, "interrupted start").await;
        assert!(matches!(code, Some(130 | 2)), "{hung}: exit {code:?}");
    }
}

/// Regression: a target that refused connections cost 60 s of silence before exit 2 (the staging
/// failed at once, then cleanup retried its search until its deadline). `run`, `validate
/// --online` and `cleanup` ask for one connection first: exit 2 in the time of a connect, naming
/// the URL and the cause. (The bound is generous: a busy machine meets it; the old way took 60 s
/// and more.)
#[test]
fn a_target_that_refuses_connections_fails_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The listener is dropped: nothing listens on the port now.
    let url = format!("http://127.0.0.1:{port}/scim/v2");
    let dir = tempfile::tempdir().unwrap();
    scim_workload(dir.path(), &url, "t0ken-refused", "5s");
    for args in [
        vec!["run", "w.toml", "--no-progress", "--out", "results"],
        vec!["validate", "--online", "w.toml"],
        vec!["cleanup", "--run-id", "pb-deadbeef", "w.toml"],
    ] {
        let started = Instant::now();
        let out = provbench(dir.path(), &args).output().unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}: {stderr}");
        assert!(
            stderr.contains(&url) && stderr.contains("connection refused"),
            "{args:?}: the URL and the cause: {stderr}"
        );
    }
}
