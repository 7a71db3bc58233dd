//! `provbench init` against real directories: the OpenLDAP pair of `tests/ldap/pair.sh` (started
//! by `crate::ldap::Pair` on free ports) and Samba's AD DC (`crate::samba::Dc`). The written
//! workload passes `validate --online` and runs with 0 errors and nothing left; the write probe
//! leaves the directory as it found it, foreign look-alikes included; a base DN that does not
//! exist is an error naming it; `init --check` names a wrong lock rule. Where slapd (or Samba, or
//! root) is missing, build.rs sets `provbench_no_slapd` (`provbench_no_samba`) and these tests
//! are `#[ignore]`d, reported as ignored, never as passed.

use std::path::Path;
use std::process::{Command, Output};

use crate::ldap::{Pair, ldap};

const ADMIN: &str = "cn=admin,dc=example,dc=test";

/// `provbench ARGS` with the directory's admin password in `$DIR_PW`.
fn provbench(password_file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provbench"))
        .args(args)
        .env("DIR_PW", std::fs::read_to_string(password_file).unwrap())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `provbench init` against the pair's provider, writing `out`.
fn init(pair: &Pair, out: &Path, extra: &[&str]) -> Output {
    let url = format!("ldap://127.0.0.1:{}", pair.provider);
    let out = out.display().to_string();
    let mut args = vec![
        "init",
        url.as_str(),
        "--bind-dn",
        ADMIN,
        "--password-env",
        "DIR_PW",
        "--out",
        out.as_str(),
    ];
    args.extend(extra);
    provbench(&pair.dir().join("admin.pw"), &args)
}

/// Every entry of the provider, each with all its user attributes and its modifyTimestamp,
/// sorted: any entry added, deleted or changed shows.
fn everything(pair: &Pair) -> Vec<String> {
    let out = ldap(
        "ldapsearch",
        pair.provider,
        pair.dir(),
        &[
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-b",
            "dc=example,dc=test",
            "(objectClass=*)",
            "*",
            "modifyTimestamp",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut entries: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split("\n\n")
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    entries.sort();
    entries
}

/// Entries under the users' base that look like the probe's: a `pb-` name, marker-like text in
/// `description`. Not the run's: none may be touched.
fn seed_lookalikes(pair: &Pair) {
    let ldif = "dn: uid=pb-lookalike-1,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: pb-lookalike-1\ncn: Look Alike\nsn: Alike\ndescription: pb-00000000-1 written by provbench init --write-probe\n\n\
dn: uid=colleague,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: colleague\ncn: A Colleague\nsn: Colleague\ndescription: pb-probe pb-1 uid=pb-x-1\n";
    let added = ldap("ldapadd", pair.provider, pair.dir(), &[], Some(ldif));
    assert!(added.status.success(), "{}", text(&added));
}

/// `validate --online`, then `run --duration 3s`: 0 errors, cleanup complete, nothing left.
fn validate_and_run(password_file: &Path, workload: &Path) -> serde_json::Value {
    let w = workload.display().to_string();
    let valid = provbench(password_file, &["validate", "--online", &w]);
    assert!(valid.status.success(), "validate --online: {}", text(&valid));
    let out = workload.with_extension("out").display().to_string();
    let run = provbench(
        password_file,
        &["run", &w, "--duration", "3s", "--no-progress", "--out", &out],
    );
    assert!(run.status.success(), "run: {}", text(&run));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(workload.with_extension("out").join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["outcome"], "passed", "{s:#}");
    let ops: Vec<&serde_json::Value> = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["metric"] == "api_latency")
        .collect();
    assert!(
        ops.iter()
            .any(|m| m["tags"]["op"] == "create_user" && m["count"].as_u64() > Some(0)),
        "{ops:?}"
    );
    assert!(ops.iter().all(|m| m["errors"] == 0), "{ops:?}");
    let c = &s["cleanup"];
    assert!(
        c["failed"] == 0 && c["unverified"] == 0 && c["left"].as_array().is_none_or(Vec::is_empty),
        "{c}"
    );
    s
}

/// `init` with and without `--write-probe` against the provider: a workload of the directory's
/// shape (base DN found, inetOrgPerson, the ppolicy lock, groups) that validates and runs with 0
/// errors and nothing left; the probe says what it learnt and leaves every entry as it was,
/// look-alikes included.
#[test]
#[cfg_attr(provbench_no_slapd, ignore = "needs slapd (Debian slapd)")]
fn init_writes_ldap_workloads_that_validate_and_run() {
    let _alone = crate::support::loads_both_cores();
    let pair = Pair::start();
    seed_lookalikes(&pair);
    let before = everything(&pair);
    for probe in [false, true] {
        let path = pair.dir().join(format!("init-{probe}.toml"));
        let extra: &[&str] = if probe { &["--write-probe"] } else { &[] };
        let out = init(&pair, &path, extra);
        assert!(out.status.success(), "{}", text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        if probe {
            assert!(said.contains("write probe: added uid=pb-"), "{said}");
            assert!(said.contains("the lock rule works"), "{said}");
            assert!(said.contains("read it back as gone (noSuchObject)"), "{said}");
        } else {
            assert!(said.contains("nothing was written"), "{said}");
        }
        assert_eq!(everything(&pair), before, "init left the directory changed:\n{said}");
        let written = std::fs::read_to_string(&path).unwrap();
        for line in [
            "base_dn = \"ou=people,dc=example,dc=test\"",
            "object_classes = [\"inetOrgPerson\"]",
            "lock = \"ppolicy\"",
            "groups.base_dn = \"ou=groups,dc=example,dc=test\"",
            "\"disable_user\"",
        ] {
            assert!(written.contains(line), "{line} missing from:\n{written}");
        }
        validate_and_run(&pair.dir().join("admin.pw"), &path);
        assert_eq!(everything(&pair), before, "the run left the directory changed");
    }
}

/// A base DN that does not exist is an error naming it (exit 2, nothing written); `init --check`
/// agrees with init's own workload and names `[directory] lock` when the workload's lock rule is
/// not the directory's (exit 1).
#[test]
#[cfg_attr(provbench_no_slapd, ignore = "needs slapd (Debian slapd)")]
fn a_missing_base_dn_is_named_and_check_names_a_wrong_lock_rule() {
    let pair = Pair::start();
    let pw = pair.dir().join("admin.pw");
    let path = pair.dir().join("init.toml");
    let missing = "ou=nowhere,dc=example,dc=test";
    let out = init(&pair, &path, &["--base-dn", missing]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(missing) && said.contains("does not exist"), "{said}");
    assert!(!path.exists());

    let out = init(&pair, &path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let w = path.display().to_string();
    let agreed = provbench(&pw, &["init", "--check", &w]);
    assert_eq!(agreed.status.code(), Some(0), "{}", text(&agreed));

    let written = std::fs::read_to_string(&path).unwrap();
    let wrong = written.replace("lock = \"ppolicy\"", "lock = \"389ds\"");
    assert_ne!(wrong, written);
    let bad = pair.dir().join("wrong-lock.toml");
    std::fs::write(&bad, wrong).unwrap();
    let b = bad.display().to_string();
    let checked = provbench(&pw, &["init", "--check", &b]);
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked));
    let listed = String::from_utf8_lossy(&checked.stdout);
    assert!(
        listed.contains("[directory] lock") && listed.contains("389ds"),
        "{listed}"
    );
    assert!(!listed.contains("base_dn"), "{listed}");
}

/// Samba's AD DC: init finds Active Directory (the preset, CN=Users, groups of class `group`),
/// its write probe's locked entry cannot bind, and the workload runs with 0 errors and nothing
/// left.
#[test]
#[cfg_attr(provbench_no_samba, ignore = "needs Samba's AD DC (Debian samba) and root")]
fn init_against_samba_ad_writes_the_ad_preset_that_runs() {
    use crate::samba::{ADMIN, CA, Dc, USERS};
    let _alone = crate::support::loads_both_cores();
    let dc = Dc::start();
    let pw = dc.dir().join("admin.pw");
    let path = dc.dir().join("init-ad.toml");
    let out = path.display().to_string();
    let args = [
        "init",
        "ldaps://127.0.0.1:636",
        "--ca-file",
        CA,
        "--bind-dn",
        ADMIN,
        "--password-env",
        "DIR_PW",
        "--write-probe",
        "--out",
        &out,
    ];
    let written = provbench(&pw, &args);
    assert!(written.status.success(), "{}", text(&written));
    let said = String::from_utf8_lossy(&written.stderr);
    assert!(said.contains("the lock rule works"), "{said}");
    assert!(said.contains("read it back as gone (noSuchObject)"), "{said}");
    let workload = std::fs::read_to_string(&path).unwrap();
    for line in [
        format!("base_dn = \"{USERS}\""),
        "lock = \"active-directory\"".to_string(),
        format!("groups.base_dn = \"{USERS}\""),
        "groups.object_class = \"group\"".to_string(),
    ] {
        assert!(workload.contains(&line), "{line} missing from:\n{workload}");
    }
    // The probe's own marker: its entry is gone too.
    let probe = said
        .split("write probe: added ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|rdn| rdn.get(3..))
        .and_then(|cn| cn.strip_suffix("-1"))
        .unwrap_or_else(|| panic!("no probe entry named in:\n{said}"))
        .to_string();
    assert_eq!(dc.marked(&probe), 0, "the write probe left its entry");
    let s = validate_and_run(&pw, &path);
    let run_id = s["run_id"].as_str().unwrap();
    assert_eq!(dc.marked(run_id), 0, "the run left entries in the DC");
}

/// A write probe that fails after its add (`init --check --write-probe` of a workload whose
/// unlock the directory refuses: an undefined attribute) still deletes its entry, and fails
/// (exit 2) naming it; the directory is left as it was.
#[test]
#[cfg_attr(provbench_no_slapd, ignore = "needs slapd (Debian slapd)")]
fn a_probe_that_fails_after_its_add_still_deletes_its_entry() {
    let pair = Pair::start();
    let pw = pair.dir().join("admin.pw");
    let path = pair.dir().join("init.toml");
    let out = init(&pair, &path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(&path).unwrap();
    let broken = written.replace(
        "lock = \"ppolicy\"",
        "lock = \"custom\"\ndisable = { description = \"locked\" }\nenable = { pbNoSuchAttribute = [] }",
    );
    assert_ne!(broken, written);
    std::fs::write(&path, broken).unwrap();
    let before = everything(&pair);
    let w = path.display().to_string();
    let checked = provbench(&pw, &["init", "--write-probe", "--check", &w]);
    assert_eq!(checked.status.code(), Some(2), "{}", text(&checked));
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(
        said.contains("unlocking uid=pb-") && said.contains("was deleted and read back as gone"),
        "{said}"
    );
    assert_eq!(everything(&pair), before, "the failed probe left the directory changed");
}

/// The write probe's modify of an attribute the directory refuses gives way to another, said in
/// the report, and `init --check --write-probe` names the workload's `modify` as a disagreement;
/// nothing is left.
#[test]
#[cfg_attr(provbench_no_slapd, ignore = "needs slapd (Debian slapd)")]
fn a_refused_modify_attribute_gives_way_to_another() {
    let pair = Pair::start();
    let pw = pair.dir().join("admin.pw");
    let path = pair.dir().join("init.toml");
    let out = init(&pair, &path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(&path).unwrap();
    let refused = written.replace(
        "modify.title = \"Title {seq}\"",
        "modify.pbNoSuchAttribute = \"x {seq}\"",
    );
    assert_ne!(refused, written);
    std::fs::write(&path, refused).unwrap();
    let before = everything(&pair);
    let w = path.display().to_string();
    let checked = provbench(&pw, &["init", "--write-probe", "--check", &w]);
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked));
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(
        said.contains("modify of pbNoSuchAttribute was refused") && said.contains("modify uses description"),
        "{said}"
    );
    let listed = String::from_utf8_lossy(&checked.stdout);
    assert!(listed.contains("[directory] modify.description"), "{listed}");
    assert_eq!(everything(&pair), before, "the probe left the directory changed");
}
