//! Invariant 6 for directories: a lying LDAP server on raw TCP (hand-encoded BER) that answers
//! every search with entries without end, ignoring the size limit it was sent and the abandon
//! that follows. The real binary runs under the address-space cap of [`super::bounds`]: the
//! sweep must stop at its bound and say why, never hold the endless list. And one that answers
//! with nesting deeper than a stack: the bind fails, the process is not aborted.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::bounds::capped;

/// A BER length.
fn ber_len(n: usize) -> Vec<u8> {
    match n {
        0..=127 => vec![n as u8],
        _ => {
            let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            let mut out = vec![0x80 | bytes.len() as u8];
            out.extend(bytes);
            out
        }
    }
}

/// A BER element: `tag`, its length, `content`.
pub(super) fn ber(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(ber_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// An LDAPMessage: the message id and one protocol operation.
pub(super) fn ldap_message(id: &[u8], op: Vec<u8>) -> Vec<u8> {
    let mut content = ber(0x02, id);
    content.extend(op);
    ber(0x30, &content)
}

/// Reads one BER element's tag and content.
pub(super) async fn read_ber(r: &mut tokio::net::tcp::OwnedReadHalf) -> Option<(u8, Vec<u8>)> {
    let tag = r.read_u8().await.ok()?;
    let first = r.read_u8().await.ok()?;
    let len = match first {
        0..=127 => first as usize,
        _ => {
            let mut n = 0usize;
            for _ in 0..(first & 0x7f) {
                n = (n << 8) | r.read_u8().await.ok()? as usize;
            }
            n
        }
    };
    let mut content = vec![0; len];
    r.read_exact(&mut content).await.ok()?;
    Some((tag, content))
}

/// The base DN of a search request (`op` is the whole SearchRequest element).
fn search_base(op: &[u8]) -> String {
    let body = &op[1 + ber_len(op.len()).len()..];
    let (len, skip) = match body[1] {
        n @ 0..=127 => (n as usize, 2),
        n => {
            let k = (n & 0x7f) as usize;
            (body[2..2 + k].iter().fold(0, |a, b| (a << 8) | *b as usize), 2 + k)
        }
    };
    String::from_utf8_lossy(&body[skip..skip + len]).into_owned()
}

pub(super) type Writer = Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>;

/// A directory that binds anyone and answers every search with entries without end, each
/// named as the run's (`uid=pb-1a2b3c4d-N` under the searched base), ignoring size limits and
/// abandons; each search is answered side by side with the others, as ldap3 multiplexes them.
async fn endless_directory() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (mut r, w) = stream.into_split();
            let w: Writer = Arc::new(tokio::sync::Mutex::new(w));
            tokio::spawn(async move {
                let ok = [ber(0x0a, &[0]), ber(0x04, b""), ber(0x04, b"")].concat();
                while let Some((_, message)) = read_ber(&mut r).await {
                    // messageID: INTEGER (short), then the operation's tag, length, content.
                    let id = message[2..2 + message[1] as usize].to_vec();
                    let op = message[2 + id.len()..].to_vec();
                    let answer = match op[0] {
                        0x60 => ldap_message(&id, ber(0x61, &ok)),
                        0x4a => ldap_message(&id, ber(0x6b, &ok)),
                        0x63 => {
                            let (w, base) = (w.clone(), search_base(&op));
                            tokio::spawn(async move {
                                for i in 1u64.. {
                                    let dn = format!("uid=pb-1a2b3c4d-{i},{base}");
                                    let entry = [ber(0x04, dn.as_bytes()), ber(0x30, b"")].concat();
                                    let m = ldap_message(&id, ber(0x64, &entry));
                                    if w.lock().await.write_all(&m).await.is_err() {
                                        return;
                                    }
                                }
                            });
                            continue;
                        }
                        // Unbind, abandon: no answer.
                        _ => continue,
                    };
                    if w.lock().await.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A directory whose every search answers entries without end: the sweep reads no more than
/// the size limit it asked for, says so, and ends; it never holds the endless list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_directory_search_ends_the_sweep_as_unsearchable() {
    let port = endless_directory().await;
    let (code, said) = cleanup(port, "3s").await;
    assert!(code.is_some(), "killed: {said}");
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("answered more than the 10000 entries asked for") && said.contains("uid=pb-1a2b3c4d-10001,"),
        "the sweep names why it stopped, with a sample: {said}"
    );
    for base in ["ou=people,", "ou=groups,"] {
        assert!(
            said.contains(&format!("cannot search: {base}dc=example,dc=test: payload")),
            "each base: {said}"
        );
    }
    assert!(
        !said.contains("timed out"),
        "stopped by its bound, not the deadline: {said}"
    );
}

/// A directory that answers the bind with one message nested 100,000 SEQUENCEs deep (about
/// 0.5 MB): lber 0.5.1 recursed a stack frame a level and overflowed ldap3's task's stack,
/// aborting the whole process; provbench's copy (`vendor/lber`) reads past 256 levels as an
/// error, so the bind fails and the command says so.
async fn nesting_directory() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let nested = Arc::new(nested_sequences(100_000));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (mut r, w) = stream.into_split();
            let nested = nested.clone();
            tokio::spawn(async move {
                let mut w = w;
                while let Some((_, message)) = read_ber(&mut r).await {
                    let id = message[2..2 + message[1] as usize].to_vec();
                    let answer = ldap_message(&id, nested.as_ref().clone());
                    if w.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// `levels` SEQUENCEs, each holding the next, around a NULL: the lengths inside out, then the
/// bytes outside in (wrapping a level at a time would copy the whole a level).
fn nested_sequences(levels: usize) -> Vec<u8> {
    let mut lengths = vec![2usize];
    for _ in 0..levels {
        let inner = lengths[lengths.len() - 1];
        lengths.push(1 + ber_len(inner).len() + inner);
    }
    let mut out = Vec::with_capacity(lengths[levels]);
    for inner in lengths[..levels].iter().rev() {
        out.push(0x30);
        out.extend(ber_len(*inner));
    }
    out.extend_from_slice(&[0x05, 0x00]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_nested_past_the_stack_is_an_error_not_a_crash() {
    let port = nesting_directory().await;
    let (code, said) = cleanup(port, "5s").await;
    assert!(code.is_some(), "killed: {said}");
    assert_ne!(code, Some(0), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    assert!(
        said.contains(&format!("binding to ldap://127.0.0.1:{port}")),
        "the bind fails: {said}"
    );
}

/// Writes `w.toml` (and its password file `pw`) in `dir`: a one-step LDAP workload named `name`
/// against the directory on `port`, its requests timing out after `timeout`, with a groups base
/// when `groups`.
pub fn ldap_workload(dir: &std::path::Path, name: &str, port: u16, timeout: &str, groups: bool) {
    std::fs::write(dir.join("pw"), "secret").unwrap();
    let groups = match groups {
        true => {
            "groups = { base_dn = \"ou=groups,dc=example,dc=test\", object_class = \"groupOfNames\", member_attribute = \"member\" }\n"
        }
        false => "",
    };
    std::fs::write(
        dir.join("w.toml"),
        format!(
            r#"name = "{name}"
[target]
kind = "ldap"
url = "ldap://127.0.0.1:{port}"
bind_dn = "cn=admin,dc=example,dc=test"
password_file = "pw"
base_dn = "ou=people,dc=example,dc=test"
timeout = "{timeout}"
[directory]
rdn = "uid"
name = "{{run_id}}-{{seq}}"
object_classes = ["inetOrgPerson"]
attributes = {{ cn = "{{first}} {{last}}", sn = "{{last}}" }}
{groups}[load]
model = "closed"
admins = 1
duration = "1s"
[[journey]]
name = "j"
steps = ["create_user"]
"#
        ),
    )
    .unwrap();
}

/// `provbench cleanup` against the directory on `port`, its requests timing out after
/// `timeout`: its exit code and what it said.
pub async fn cleanup(port: u16, timeout: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    ldap_workload(dir.path(), "lying-ldap", port, timeout, true);
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        capped()
            .current_dir(&path)
            .args(["cleanup", "--run-id", "pb-1a2b3c4d", "w.toml", "--timeout", "120s"])
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
    (out.status.code(), said)
}
