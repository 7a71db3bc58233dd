//! Tells the LDAP integration tests (tests/it/ldap.rs) whether OpenLDAP's `slapd` is here: where
//! it is missing they are compiled `#[ignore]`d (cfg `provbench_no_slapd`), so that the test
//! runner reports them as ignored instead of counting a skipped test as passed. With
//! `PROVBENCH_REQUIRE_SLAPD` set (CI), a missing slapd fails the build instead.

use std::path::Path;

/// Where Debian's slapd package installs it.
const SLAPD: &str = "/usr/sbin/slapd";

fn main() {
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
