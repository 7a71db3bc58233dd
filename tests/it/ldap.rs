//! The replicating OpenLDAP pair the directory work builds on (`tests/ldap/pair.sh`): a provider
//! and a consumer following it with syncrepl on loopback. Skipped with a message where `slapd`
//! is not installed, except in CI (`PROVBENCH_REQUIRE_SLAPD=1`), where a missing `slapd` fails.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Stops the pair when the test ends, however it ends.
struct Pair<'d>(&'d Path);

impl Drop for Pair<'_> {
    fn drop(&mut self) {
        for f in ["provider.pid", "consumer.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.0.join(f)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn slapd_installed() -> bool {
    Path::new("/usr/sbin/slapd").exists()
        || Command::new("sh")
            .args(["-c", "command -v slapd"])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn ldap(tool: &str, port: u16, dir: &Path, args: &[&str], input: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let pw = dir.join("admin.pw");
    let mut cmd = Command::new(tool);
    cmd.args([
        "-x",
        "-H",
        &format!("ldap://127.0.0.1:{port}"),
        "-D",
        "cn=admin,dc=example,dc=test",
        "-y",
    ])
    .arg(&pw)
    .args(args)
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = input {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_provider_and_its_consumer_replicate() {
    if !slapd_installed() {
        assert!(
            std::env::var_os("PROVBENCH_REQUIRE_SLAPD").is_none(),
            "slapd is required here (PROVBENCH_REQUIRE_SLAPD is set) but not installed"
        );
        eprintln!("skipped: slapd is not installed (apt-get install slapd ldap-utils)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (provider, consumer) = (free_port(), free_port());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ldap/pair.sh");
    let _pair = Pair(dir.path());
    let started = Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .args([provider.to_string(), consumer.to_string()])
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));

    let entry = "dn: uid=pb-ldap-1,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: pb-ldap-1\ncn: Ada Lovelace\nsn: Lovelace\n";
    let added = ldap("ldapadd", provider, dir.path(), &[], Some(entry));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    // Bounded wait for the consumer to show it: replication, not its speed, is under test.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = ldap(
            "ldapsearch",
            consumer,
            dir.path(),
            &["-LLL", "-b", "ou=people,dc=example,dc=test", "(uid=pb-ldap-1)", "dn"],
            None,
        );
        if String::from_utf8_lossy(&found.stdout).contains("uid=pb-ldap-1") {
            break;
        }
        assert!(Instant::now() < deadline, "the consumer never showed the entry");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deleted = ldap(
        "ldapdelete",
        provider,
        dir.path(),
        &["uid=pb-ldap-1,ou=people,dc=example,dc=test"],
        None,
    );
    assert!(deleted.status.success());
}
