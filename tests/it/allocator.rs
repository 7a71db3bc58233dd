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
