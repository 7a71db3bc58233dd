//! The binary's allocator (issue 25): `provbench` allocates through mimalloc, not glibc's malloc.
//! An LDAP add is about 45 allocations inside ldap3 and its BER encoder, and glibc's malloc,
//! free and realloc were two fifths of its instructions; a build that lost the
//! `#[global_allocator]` line would still pass every other test while costing that again.

use assert_cmd::Command;

/// mimalloc reads its options from the environment when the process starts: with
/// `MIMALLOC_VERBOSE=1` it says so on stderr. glibc's malloc knows no such variable and says
/// nothing.
#[test]
fn the_binary_allocates_through_mimalloc() {
    let out = Command::cargo_bin("provbench")
        .unwrap()
        .arg("--version")
        .env("MIMALLOC_VERBOSE", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mimalloc: process init"),
        "no word from mimalloc on stderr: {stderr}"
    );
    // Its word is on stderr only: stdout stays the program's own.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("provbench {}", env!("CARGO_PKG_VERSION"))
    );
}

/// mimalloc advises transparent huge pages for its memory; the binary turns them off for itself
/// (each first touch would zero 2 MiB: the largest kernel cost probes added). The kernel reports
/// the flag in `/proc/PID/status` as `THP_enabled: 0` (Linux 6.x; older kernels print no such
/// line, and the test then has nothing to read and says so).
#[cfg(target_os = "linux")]
#[test]
fn the_binary_turns_transparent_huge_pages_off() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    if !ours.contains("THP_enabled:") {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
        return;
    }
    let mut serve = Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once it listens, main has long run.
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", serve.id())).unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(line.contains("listening on"), "{line}");
    assert!(status.contains("THP_enabled:\t0"), "{status}");
}
