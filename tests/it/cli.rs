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
