//! Review of the vendored ldap3 (2026-12-07), invariant 6 for directories: answers that are
//! well formed, one by one, but never end. A lying LDAP server on raw TCP binds anyone and
//! answers every search with SearchResultEntries, or SearchResultReferences, without end.
//!
//! - `Directory::exists` (the base DN check before a run's load, the login directory's pre-flight,
//!   init) read through ldap3's `Ldap::search`, which collects every entry and every referral
//!   URI until the SearchResultDone: an endless answer was held whole, until the address space
//!   ran out (the sweep's reads are bounded; this one was not).
//! - `read_capped` (every other search: the sweep, lookups, probes) skipped references and
//!   intermediate messages without counting them: an endless stream of them never ended the
//!   search, each arriving well inside the per-answer timeout, so the sweep waited for the
//!   cleanup's deadline.

use std::process::Command;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use super::bounds::capped;
use super::bounds_ldap::{Writer, ber, ldap_message, read_ber};

#[derive(Clone, Copy)]
enum Endless {
    Entries,
    References,
    /// Not endless: a SearchResultDone sizeLimitExceeded and no entry.
    SizeLimitAlone,
}

/// A directory that binds anyone and answers each search with `what` without end, ignoring
/// size limits and abandons.
async fn endless(what: Endless) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (mut r, w) = stream.into_split();
            let w: Writer = Arc::new(tokio::sync::Mutex::new(w));
            tokio::spawn(async move {
                let ok = [ber(0x0a, &[0]), ber(0x04, b""), ber(0x04, b"")].concat();
                while let Some((_, message)) = read_ber(&mut r).await {
                    let id = message[2..2 + message[1] as usize].to_vec();
                    let op = message[2 + id.len()..].to_vec();
                    let answer = match op[0] {
                        0x60 => ldap_message(&id, ber(0x61, &ok)),
                        0x63 => {
                            let w = w.clone();
                            if let Endless::SizeLimitAlone = what {
                                let done = [ber(0x0a, &[4]), ber(0x04, b""), ber(0x04, b"")].concat();
                                let _ = w.lock().await.write_all(&ldap_message(&id, ber(0x65, &done))).await;
                                continue;
                            }
                            tokio::spawn(async move {
                                for i in 1u64.. {
                                    let m = match what {
                                        Endless::Entries => {
                                            let dn = format!("uid=someone-{i},dc=example,dc=test");
                                            let entry = [ber(0x04, dn.as_bytes()), ber(0x30, b"")].concat();
                                            ldap_message(&id, ber(0x64, &entry))
                                        }
                                        Endless::SizeLimitAlone => unreachable!(),
                                        Endless::References => {
                                            let uri = format!("ldap://elsewhere.invalid/dc=x{i}");
                                            ldap_message(&id, ber(0x73, &ber(0x04, uri.as_bytes())))
                                        }
                                    };
                                    if w.lock().await.write_all(&m).await.is_err() {
                                        return;
                                    }
                                }
                            });
                            continue;
                        }
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

/// `provbench ARGS` (under the address-space cap, killed after 90 s) in a directory holding an
/// LDAP workload against `port`: exit code (`None`: killed) and what it said.
async fn provbench(port: u16, args: &'static [&'static str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    super::bounds_ldap::ldap_workload(dir.path(), "endless-ldap", port, "3s", false);
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        let c = capped();
        Command::new("timeout")
            .args(["-s", "KILL", "90"])
            .arg(c.get_program())
            .args(c.get_args())
            .current_dir(&path)
            .args(args)
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

/// The base DN check before a run's load, answered with entries without end: an error that
/// says the answer was past its bound, at once; not the endless answer held until the process
/// is out of memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_to_the_base_dn_check_is_bounded() {
    for what in [Endless::Entries, Endless::References] {
        let port = endless(what).await;
        let (code, said) = provbench(port, &["run", "w.toml", "--no-progress", "--out", "results"]).await;
        assert!(code.is_some(), "killed: {said}");
        assert_ne!(code, Some(0), "{said}");
        assert!(
            said.contains("a search of the target's base DN `ou=people,dc=example,dc=test`")
                && said.contains("payload"),
            "the check names its bound: {said}"
        );
        assert!(!said.contains("memory allocation"), "{said}");
    }
}

/// The same check answered sizeLimitExceeded without the entry it stopped at: that says
/// nothing either way (the check is an error, not "does not exist"; after a failed add, the
/// write probe of `init` reads "does not exist" as "nothing is left").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_limit_without_its_entry_says_nothing_of_the_base_dn() {
    let port = endless(Endless::SizeLimitAlone).await;
    let (code, said) = provbench(port, &["run", "w.toml", "--no-progress", "--out", "results"]).await;
    assert!(code.is_some_and(|c| c != 0), "{code:?}: {said}");
    assert!(
        said.contains("a search of the target's base DN `ou=people,dc=example,dc=test`")
            && said.contains("sizeLimitExceeded"),
        "{said}"
    );
    assert!(!said.contains("does not exist"), "{said}");
}

/// The sweep answered with SearchResultReferences without end: stopped by a bound on what one
/// search reads, and said so; not by the cleanup's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_stream_of_references_ends_the_sweep_at_its_bound() {
    let port = endless(Endless::References).await;
    let (code, said) = provbench(
        port,
        &["cleanup", "--run-id", "pb-1a2b3c4d", "w.toml", "--timeout", "40s"],
    )
    .await;
    assert!(code.is_some(), "killed: {said}");
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("ou=people,dc=example,dc=test: payload") && said.contains("references"),
        "the sweep names why it stopped: {said}"
    );
    assert!(
        !said.contains("timed out"),
        "stopped by its bound, not the deadline: {said}"
    );
}

/// hlog lines past one stored block (65,535 bytes: every bucket of the histogram counted, with
/// counts that take six bytes each in the V2 encoding) read back through hdrhistogram's own
/// deserializer, which `report`, `compare` and `merge` read with.
#[test]
fn an_hlog_line_of_many_stored_blocks_reads_back() {
    use hdrhistogram::serialization::{Deserializer, Serializer};
    let mut h = provbench::metrics::series::new_histogram();
    let mut v = 1;
    while v <= h.high() {
        h.record_n(v, 1 << 40).unwrap();
        v = h.next_non_equivalent(v);
    }
    let mut line = Vec::new();
    provbench::metrics::deflate::StoredDeflate::new()
        .serialize(&h, &mut line)
        .unwrap();
    assert!(
        line.len() > 2 * 65_535,
        "{} bytes: more than two stored blocks",
        line.len()
    );
    let back: hdrhistogram::Histogram<u64> = Deserializer::new().deserialize(&mut line.as_slice()).unwrap();
    assert_eq!(back, h);
}
