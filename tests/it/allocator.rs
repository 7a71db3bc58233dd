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

/// mimalloc asked the kernel for transparent huge pages on its memory (`MADV_HUGEPAGE`, shown as
/// `hg` in a mapping's `VmFlags`): each purge of a few freed KiB then split a huge page, and a
/// later allocation there faulted in a whole zeroed 2 MiB one. In a keep-alive journey run at
/// 200/s that was a tenth of the generator's CPU (kernel time in `clear_page_erms`, under
/// `do_huge_pmd_anonymous_page`; docs/src/benchmarks.md). The `no_thp` build leaves the
/// kernel's default (`madvise` on Debian: no huge pages unless asked).
#[cfg(target_os = "linux")]
#[test]
fn the_allocator_asks_for_no_huge_pages() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = std::process::Command::new(assert_cmd::cargo::cargo_bin("provbench"))
        .args(["serve", "--profile", "fast", "--admin-token", "t"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Up once it answers: by then its allocator has mapped its memory.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", serve.id()));
    let _ = serve.kill();
    let _ = serve.wait();
    let smaps = smaps.unwrap();
    let asked: Vec<&str> = smaps
        .lines()
        .filter(|l| l.starts_with("VmFlags:") && l.split_whitespace().any(|f| f == "hg"))
        .collect();
    assert!(smaps.contains("VmFlags:"), "no mappings read");
    assert!(asked.is_empty(), "mappings with MADV_HUGEPAGE: {asked:?}");
}
