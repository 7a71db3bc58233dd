//! A run against a plain-HTTP target needs no root certificates: nothing it sends is TLS, so
//! nothing may load the system's certificates (issue 25: goose's unused client loaded them at
//! every run, about 18 M instructions, and a system without any failed the run).

use assert_cmd::Command;
use provbench::reference::config::ReferenceConfig;

use crate::support::start_reference;

/// Regression: with no root certificates to load (a minimal container has none), goose's own
/// reqwest client failed to build ("No CA certificates were loaded from the system") and the
/// run ended in an error before its first request, though goose sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_run_loads_no_root_certificates() {
    let server = start_reference(ReferenceConfig::from_toml("profile = \"fast\"\n").unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &server.token).unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            r#"name = "no-certificates"
[target]
kind = "scim"
base_url = "{}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "open"
rate = "20/s"
stages = [{{ hold = "1s" }}]
max_admins = 2
[[journey]]
name = "create-delete"
steps = ["create_user", "delete_user"]
[probes]
enabled = false
"#,
            server.scim
        ),
    )
    .unwrap();
    let missing = dir.path().join("no-such-certificates");
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .current_dir(dir.path())
        .args(["run", "w.toml", "--no-progress", "--out", "results"])
        // Where rustls-native-certs looks first: pointed at nothing, it finds no certificate.
        .env("SSL_CERT_FILE", &missing)
        .env("SSL_CERT_DIR", &missing)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap()).unwrap();
    let completed = summary["journeys"][0]["completed"].as_u64().unwrap_or(0);
    assert!(completed > 0, "{stdout}");
    server.stop().await;
}
