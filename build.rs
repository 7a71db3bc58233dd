//! Tells the LDAP integration tests (tests/it/ldap.rs) whether OpenLDAP's `slapd` is here: where
//! it is missing they are compiled `#[ignore]`d (cfg `provbench_no_slapd`), so that the test
//! runner reports them as ignored instead of counting a skipped test as passed. With
//! `PROVBENCH_REQUIRE_SLAPD` set (CI), a missing slapd fails the build instead. The same for
//! Samba's AD DC (tests/it/samba.rs, cfg `provbench_no_samba`, `PROVBENCH_REQUIRE_SAMBA`), which
//! also needs root: its LDAP ports are 389 and 636.

use std::path::Path;

/// Where Debian's slapd package installs it.
const SLAPD: &str = "/usr/sbin/slapd";

/// Where Debian's samba package installs the AD DC.
const SAMBA: &str = "/usr/sbin/samba";

fn main() {
    samba();
    println!("cargo::rustc-check-cfg=cfg(provbench_no_slapd)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PROVBENCH_REQUIRE_SLAPD");
    // Re-evaluated when slapd is installed or removed: its folder changes then. (Not the
    // missing file itself: cargo would rerun this script, and rebuild the crate, every time.)
    if Path::new(SLAPD).is_file() {
        println!("cargo::rerun-if-changed={SLAPD}");
        return;
    }
    println!("cargo::rerun-if-changed=/usr/sbin");
    if std::env::var_os("PROVBENCH_REQUIRE_SLAPD").is_some() {
        panic!(
            "slapd is required here (PROVBENCH_REQUIRE_SLAPD is set) but {SLAPD} is missing: apt-get install slapd ldap-utils"
        );
    }
    println!("cargo::warning=slapd is not installed: the LDAP tests are ignored (apt-get install slapd ldap-utils)");
    println!("cargo::rustc-cfg=provbench_no_slapd");
}

/// Whether this process runs as root (the `Uid:` line of /proc/self/status: real, effective, …).
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn samba() {
    println!("cargo::rustc-check-cfg=cfg(provbench_no_samba)");
    println!("cargo::rerun-if-env-changed=PROVBENCH_REQUIRE_SAMBA");
    let installed = Path::new(SAMBA).is_file();
    if installed {
        println!("cargo::rerun-if-changed={SAMBA}");
    } else {
        println!("cargo::rerun-if-changed=/usr/sbin");
    }
    let missing = match (installed, root()) {
        (true, true) => return,
        (false, _) => format!("{SAMBA} is missing: apt-get install samba"),
        (true, false) => "the Samba AD DC needs root (its LDAP ports are 389 and 636)".to_string(),
    };
    if std::env::var_os("PROVBENCH_REQUIRE_SAMBA").is_some() {
        panic!("Samba's AD DC is required here (PROVBENCH_REQUIRE_SAMBA is set) but {missing}");
    }
    println!("cargo::warning=the Samba AD tests are ignored: {missing}");
    println!("cargo::rustc-cfg=provbench_no_samba");
}
