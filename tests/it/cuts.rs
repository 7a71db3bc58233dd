//! Invariant 9 at the places that quote a target's answer: a sample is redacted before it is
//! cut. A target that echoes the bearer token it was sent, placed so that the token straddles
//! the cut, must not leave its first half in any output (redaction recognises whole secrets
//! only, so a sample cut first keeps the half it can no longer recognise).

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use assert_cmd::Command;

const TOKEN: &str = "tok-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh";

/// `pad` bytes of filler, then what the request's Authorization header held.
fn echo(h: &HeaderMap, pad: usize) -> String {
    let auth = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    format!("{}{}", "x".repeat(pad), auth.trim_start_matches("Bearer "))
}

/// Regression: the DELETE answer of a journey's step and of cleanup (cut at 80 bytes) and the
/// sweep's refused search (cut at 120) were cut before redaction: the token's first part
/// reached summary.json, run.log and stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_across_a_samples_cut_leaves_no_part_behind() {
    let app = Router::new()
        .route(
            "/scim/v2/Users",
            get(|h: HeaderMap| async move { (StatusCode::FORBIDDEN, echo(&h, 100)) }).post(
                |Json(b): Json<serde_json::Value>| async move {
                    (
                        StatusCode::CREATED,
                        Json(json!({"id": "u1", "userName": b["userName"]})),
                    )
                },
            ),
        )
        .route(
            "/scim/v2/Users/{id}",
            get(|| async { StatusCode::NOT_FOUND })
                .delete(|h: HeaderMap| async move { (StatusCode::OK, echo(&h, 60)) }),
        )
        .route(
            "/scim/v2/Groups",
            get(|h: HeaderMap| async move { (StatusCode::FORBIDDEN, echo(&h, 100)) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "cuts"
[target]
kind = "scim"
base_url = "http://{addr}/scim/v2"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "closed"
admins = 1
iterations = 1
[[journey]]
name = "j"
steps = ["create_user", "delete_user"]
"#
        ),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("provbench")
            .unwrap()
            .current_dir(&d)
            .args([
                "-v",
                "run",
                "w.toml",
                "--no-progress",
                "--out",
                "results",
                "--cleanup-timeout",
                "3s",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let mut outputs = vec![("stdout/stderr".to_string(), [out.stdout, out.stderr].concat())];
    for entry in std::fs::read_dir(dir.path().join("results")).unwrap() {
        let path = entry.unwrap().path();
        outputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    let all: String = outputs.iter().map(|(_, b)| String::from_utf8_lossy(b)).collect();
    assert!(all.contains("xxxxxxxx"), "the echoes were quoted:\n{all}");
    // No 10-character piece of the token, anywhere.
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for i in 0..=TOKEN.len() - 10 {
            let piece = &TOKEN[i..i + 10];
            assert!(!text.contains(piece), "{name} shows `{piece}` of the token:\n{text}");
        }
    }
}
