//! Invariant 6 (bounded by construction), against a lying SCIM server written on raw TCP so it
//! can say what no framework lets a server say: a body that never ends (chunked), a
//! `Content-Length` of a terabyte, a header block without end, a token endpoint that never stops
//! answering, a user list whose pages never end. The real binary runs under an address-space
//! cap (`prlimit --as`), so reading any of these whole aborts the process and fails the test;
//! each answer must instead be an error with a sample, and cleanup must still run.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The address space the binary may use: far more than a run of two admins needs, far less
/// than an endless answer read whole.
const ADDRESS_SPACE: &str = "--as=1073741824";

#[derive(Clone, Copy, PartialEq)]
/// What never ends.
enum Lie {
    /// Creates answer, in turn: an endless chunked body, a terabyte `Content-Length`, an
    /// endless header block. Lists and deletes are honest.
    Answers,
    /// The token endpoint's answer never ends.
    Token,
    /// `/Users` lists say `totalResults: 10^12` and their pages never end (ten foreign users
    /// each, one marked user on the first); deletes are honest.
    List,
}

struct Server {
    origin: String,
    /// id → userName: what the server holds.
    users: Arc<Mutex<BTreeMap<String, String>>>,
    deletes: Arc<AtomicU64>,
}

struct St {
    lie: Lie,
    users: Arc<Mutex<BTreeMap<String, String>>>,
    creates: AtomicU64,
    deletes: Arc<AtomicU64>,
}

/// A request as the server needs it.
struct Request {
    method: String,
    target: String,
    body: Vec<u8>,
}

async fn read_request(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await.ok()?;
    Some(Request { method, target, body })
}

async fn answer(w: &mut tokio::net::tcp::OwnedWriteHalf, status: &str, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: a head and a body in two small ones wait out the peer's delayed ACK.
    w.write_all(format!("{head}{body}").as_bytes()).await
}

/// Writes `start`, then `filler` until the reader goes away.
async fn without_end(w: &mut tokio::net::tcp::OwnedWriteHalf, start: &[u8], filler: &[u8]) {
    if w.write_all(start).await.is_err() {
        return;
    }
    while w.write_all(filler).await.is_ok() {}
}

fn list(users: &[(String, String)], total: u64) -> Value {
    let resources: Vec<Value> = users
        .iter()
        .map(|(id, name)| json!({"id": id, "userName": name}))
        .collect();
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": total,
           "itemsPerPage": resources.len(), "Resources": resources})
}

/// `startIndex` of a list request (1 when absent).
fn start_index(target: &str) -> u64 {
    target
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("startIndex="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

async fn serve(stream: TcpStream, s: Arc<St>) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    while let Some(req) = read_request(&mut r).await {
        let path = req.target.split('?').next().unwrap_or_default().to_string();
        let written = match (req.method.as_str(), path.as_str()) {
            ("POST", "/token") => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                let start = format!("{head}13\r\n{{\"access_token\": \"t\r\n");
                without_end(&mut w, start.as_bytes(), &chunk(b'x')).await;
                return;
            }
            ("POST", "/scim/v2/Users") => {
                let n = s.creates.fetch_add(1, Ordering::Relaxed);
                let sent: Value = serde_json::from_slice(&req.body).unwrap_or_default();
                let id = format!("u{n}");
                let name = sent["userName"].as_str().unwrap_or_default().to_string();
                s.users.lock().insert(id.clone(), name.clone());
                let start = format!("{{\"id\":\"{id}\",\"userName\":\"{name}\",\"title\":\"");
                match n % 3 {
                    0 => {
                        let head = "HTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n";
                        let first = format!("{head}{:x}\r\n{start}\r\n", start.len());
                        without_end(&mut w, first.as_bytes(), &chunk(b'a')).await;
                    }
                    1 => {
                        let head = "HTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\nContent-Length: 1000000000000\r\n\r\n";
                        without_end(&mut w, format!("{head}{start}").as_bytes(), &[b'a'; 65536]).await;
                    }
                    _ => {
                        let head = "HTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\n";
                        without_end(
                            &mut w,
                            head.as_bytes(),
                            format!("X-More: {}\r\n", "h".repeat(1000)).as_bytes(),
                        )
                        .await;
                    }
                }
                return;
            }
            ("GET", "/scim/v2/Users") if s.lie == Lie::List => {
                let start = start_index(&req.target);
                let mut page: Vec<(String, String)> = (start..start + 10)
                    .map(|i| (format!("f{i}"), format!("someone{i}@example.test")))
                    .collect();
                if start == 1 {
                    page.extend(s.users.lock().iter().map(|(i, n)| (i.clone(), n.clone())));
                }
                answer(&mut w, "200 OK", &list(&page, 1_000_000_000_000)).await
            }
            ("GET", "/scim/v2/Users") => {
                let users: Vec<(String, String)> = s.users.lock().iter().map(|(i, n)| (i.clone(), n.clone())).collect();
                let total = users.len() as u64;
                answer(&mut w, "200 OK", &list(&users, total)).await
            }
            ("GET", "/scim/v2/Groups") => answer(&mut w, "200 OK", &list(&[], 0)).await,
            ("GET", p) if p.starts_with("/scim/v2/Users/") => {
                let id = &p["/scim/v2/Users/".len()..];
                let held = s.users.lock().get(id).cloned();
                match held {
                    Some(name) => answer(&mut w, "200 OK", &json!({"id": id, "userName": name})).await,
                    None => answer(&mut w, "404 Not Found", &json!({"status": "404"})).await,
                }
            }
            ("DELETE", p) if p.starts_with("/scim/v2/Users/") => {
                s.deletes.fetch_add(1, Ordering::Relaxed);
                let gone = s.users.lock().remove(&p["/scim/v2/Users/".len()..]).is_some();
                match gone {
                    true => w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await,
                    false => answer(&mut w, "404 Not Found", &json!({"status": "404"})).await,
                }
            }
            _ => answer(&mut w, "404 Not Found", &json!({"status": "404"})).await,
        };
        if written.is_err() {
            return;
        }
    }
}

/// One chunk of 64 KiB of `b`, chunked-encoded.
fn chunk(b: u8) -> Vec<u8> {
    let mut c = b"10000\r\n".to_vec();
    c.extend(std::iter::repeat_n(b, 0x10000));
    c.extend(b"\r\n");
    c
}

async fn start(lie: Lie, existing: &[(&str, &str)]) -> Server {
    let users = Arc::new(Mutex::new(
        existing.iter().map(|(i, n)| (i.to_string(), n.to_string())).collect(),
    ));
    let deletes = Arc::new(AtomicU64::new(0));
    let st = Arc::new(St {
        lie,
        users: users.clone(),
        creates: AtomicU64::new(0),
        deletes: deletes.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, st.clone()));
        }
    });
    Server { origin, users, deletes }
}

/// The binary, under the address-space cap.
pub fn capped() -> Command {
    let mut c = Command::new("prlimit");
    c.arg(ADDRESS_SPACE).arg(env!("CARGO_BIN_EXE_provbench"));
    c
}

/// Runs a 1 s workload with `target` as its `[target]` table; (exit code, output, summary).
fn run(target: &str) -> (Option<i32>, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(dir.path().join("secret"), "s").unwrap();
    let text = format!(
        "name = \"bounds\"\n[target]\n{target}\n[load]\nmodel = \"closed\"\nadmins = 2\nduration = \"1s\"\nthink_time = \"20ms\"\n[[journey]]\nname = \"j\"\nsteps = [\"create_user\"]\n"
    );
    std::fs::write(dir.path().join("w.toml"), text).unwrap();
    let out = capped()
        .current_dir(dir.path())
        .args([
            "run",
            "w.toml",
            "--no-progress",
            "--out",
            "results",
            "--cleanup-timeout",
            "60s",
        ])
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(dir.path().join("results/summary.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), said, summary)
}

/// Endless and huge answers to creates: each is an error of its create (a payload error with a
/// sample for the bodies, with the workload's own `max_body`), the run ends, and cleanup finds
/// and deletes every user the server made, although no create's answer was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_answers_are_errors_with_a_sample_and_cleanup_still_runs() {
    let server = start(Lie::Answers, &[("victim", "victim@example.test")]).await;
    let target = format!(
        "kind = \"scim\"\nbase_url = \"{}/scim/v2\"\nauth = {{ kind = \"bearer\", token_file = \"token\" }}\nmax_body = \"64KiB\"\ntimeout = \"20s\"",
        server.origin
    );
    let (code, said, s) = tokio::task::spawn_blocking(move || run(&target)).await.unwrap();
    assert!(
        code.is_some(),
        "the process was killed (an allocation past the cap?): {said}"
    );
    assert_eq!(code, Some(2), "every create failed: {said}");
    assert_eq!(s["outcome"], "error", "{said}");
    let creates = s["failures"]
        .as_array()
        .unwrap_or_else(|| panic!("{s}"))
        .iter()
        .find(|f| f["op"] == "create_user" && f["reason"] == "payload")
        .unwrap_or_else(|| panic!("no payload failure: {}", s["failures"]));
    let examples: Vec<&str> = creates["examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        examples
            .iter()
            .any(|e| e.contains("longer than the limit of 65536 bytes") && e.contains("began: {\"id\":\"u")),
        "an endless body is refused at the workload's limit, with its first bytes: {examples:?}"
    );
    assert!(
        examples
            .iter()
            .any(|e| e.contains("longer than the limit of 65536 bytes; it began: ")),
        "{examples:?}"
    );
    // Cleanup ran: what the server made is gone (found by the sweep), the victim is not.
    let left: Vec<String> = server.users.lock().values().cloned().collect();
    assert_eq!(left, ["victim@example.test"], "{}\n{said}", s["cleanup"]);
    assert!(server.deletes.load(Ordering::Relaxed) > 0);
    assert_eq!(s["cleanup"]["failed"], 0, "{}", s["cleanup"]);
}

/// A token endpoint whose answer never ends stops the run at its start with an error that says
/// so, never an allocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_token_answer_is_an_error_at_start() {
    let server = start(Lie::Token, &[]).await;
    let target = format!(
        "kind = \"scim\"\nbase_url = \"{0}/scim/v2\"\nauth = {{ kind = \"oauth2-client-credentials\", token_url = \"{0}/token\", client_id = \"c\", client_secret_file = \"secret\" }}\nmax_body = \"1MiB\"",
        server.origin
    );
    let (code, said, _) = tokio::task::spawn_blocking(move || run(&target)).await.unwrap();
    assert!(
        code.is_some(),
        "the process was killed (an allocation past the cap?): {said}"
    );
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("longer than the limit of 1048576 bytes"), "{said}");
    assert_eq!(server.users.lock().len(), 0, "no load without a token");
}

/// A user list that never ends (`totalResults: 10^12`, pages without end): `provbench cleanup`
/// stops at its page bound, deletes the marked user it saw, and says the target could not be
/// searched to the end; never "0 left", never a wait for the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_list_ends_the_sweep_as_unsearchable() {
    let server = start(Lie::List, &[("m1", "pb-1a2b3c4d-1@example.test")]).await;
    let url = format!("{}/scim/v2", server.origin);
    let out = tokio::task::spawn_blocking(move || {
        capped()
            .args([
                "cleanup",
                "--run-id",
                "pb-1a2b3c4d",
                "--target-url",
                &url,
                "--timeout",
                "120s",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.code().is_some(), "killed: {said}");
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("did not end within 1000 pages") && said.contains("totalResults 1000000000000"),
        "the sweep names why it stopped: {said}"
    );
    assert!(
        !said.contains("timed out"),
        "stopped by its bound, not the deadline: {said}"
    );
    assert!(
        server.users.lock().is_empty(),
        "the marked user it saw is deleted: {said}"
    );
    assert_eq!(server.deletes.load(Ordering::Relaxed), 1);
}

/// The login check's token endpoint answers without end: each login read is an error of the
/// check, within the target's `max_body`, and the run ends with its verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_login_answer_fails_the_check_within_the_limit() {
    let server = start(Lie::Token, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"name = "endless-login"
[target]
kind = "embedded"
profile = "fast"
max_body = "64KiB"
[load]
model = "closed"
admins = 2
duration = "1s"
think_time = "20ms"
[[journey]]
name = "j"
steps = ["create_user"]
[users]
password = "Pw-{{run_id}}-{{seq}}!"
[checks]
kinds = ["login"]
sample = 1.0
timeout = "3s"
token_url = "{}/token"
"#,
        server.origin
    );
    std::fs::write(dir.path().join("w.toml"), text).unwrap();
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        capped()
            .current_dir(&path)
            .args(["run", "w.toml", "--no-progress", "--out", "results"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.code().is_some(), "killed: {said}");
    assert_ne!(out.status.code(), Some(0), "{said}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/summary.json")).unwrap()).unwrap();
    let checks = summary["checks"].to_string();
    assert!(
        checks.contains("longer than the limit of 65536 bytes"),
        "the login's error says why: {checks}\n{said}"
    );
}
