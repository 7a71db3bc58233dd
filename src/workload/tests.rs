//! Parsing and validation of whole workload files.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::vocab::Op;

const MINIMAL: &str = r#"
name = "t"
[load]
model = "closed"
admins = 2
duration = "1s"
[[journey]]
name = "jml"
steps = ["create_user", "assign_role:employee", "disable_user", "delete_user"]
"#;

fn parse(text: &str) -> Result<Workload, WorkloadError> {
    Workload::parse(Path::new("w.toml"), text, &Overrides::default())
}

fn parse_with(text: &str, sets: &[&str]) -> Result<Workload, WorkloadError> {
    let overrides = sets.iter().fold(Overrides::default(), |o, s| o.set(s));
    Workload::parse(Path::new("w.toml"), text, &overrides)
}

#[test]
fn minimal_workload_gets_defaults() {
    let w = parse(MINIMAL).unwrap();
    assert!(
        matches!(&w.target, Target::Embedded { profile, reference } if profile == "realistic" && !reference.services.is_empty())
    );
    assert_eq!(w.http.timeout, Duration::from_secs(30));
    assert!(matches!(w.load, Load::Closed { admins: 2, stop: Stop::Duration(d), .. } if d == Duration::from_secs(1)));
    assert_eq!(
        w.builtin_operations(),
        [Op::CreateUser, Op::AssignRole, Op::DisableUser, Op::DeleteUser]
    );
    assert_eq!(
        w.effective_text, MINIMAL,
        "without overrides the file is saved as written"
    );
    assert!(w.users.template.uses("run_id"));
}

#[test]
fn unknown_key_points_at_line_with_hint() {
    let text = MINIMAL.replace("admins = 2", "admns = 2");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(
        e.message
            .contains("unknown key `admns` in [load]: did you mean `admins`?"),
        "{e}"
    );
    let e = parse(&format!("rat = 1\n{MINIMAL}")).unwrap_err();
    assert!(e.message.contains("at the top level"), "{e}");
}

#[test]
fn semantic_errors_point_at_their_key() {
    let e = parse(&MINIMAL.replace("duration = \"1s\"", "duration = \"soon\"")).unwrap_err();
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("`duration`"), "{e}");
    let e = parse(&MINIMAL.replace("\"disable_user\"", "\"disabel_user\"")).unwrap_err();
    assert!(e.message.contains("did you mean `disable_user`"), "{e}");
    assert_eq!(e.line, Some(9));
    let e = parse(&MINIMAL.replace("admins = 2", "admins = 2\nrate = \"5/s\"")).unwrap_err();
    assert!(e.message.contains("`rate` applies to the open model only"), "{e}");
    let e = parse(&MINIMAL.replace("model = \"closed\"", "model = \"closd\"")).unwrap_err();
    assert!(e.message.contains("unknown load model"), "{e}");
}

#[test]
fn open_model_with_stages() {
    let text = r#"
name = "o"
[load]
model = "open"
rate = "10/s"
stages = [{ to = "50/s", over = "10s" }, { hold = "20s" }]
max_admins = 50
[[journey]]
name = "j"
steps = ["create_user", "delete_user"]
"#;
    let w = parse(text).unwrap();
    let Load::Open {
        schedule, max_admins, ..
    } = &w.load
    else {
        panic!()
    };
    assert_eq!(*max_admins, 50);
    assert_eq!(schedule.duration(), Duration::from_secs(30));
    assert_eq!(schedule.peak_rate(), 50.0);
    assert_eq!(schedule.total_arrivals(), 300 + 1000);
}

#[test]
fn overrides_replace_values_and_keep_validation() {
    let w = parse_with(MINIMAL, &["load.admins=7", "load.duration=2m"]).unwrap();
    assert!(matches!(w.load, Load::Closed { admins: 7, stop: Stop::Duration(d), .. } if d == Duration::from_secs(120)));
    let e = parse_with(MINIMAL, &["load.admns=7"]).unwrap_err();
    assert!(
        e.message.contains("did you mean `admins`") && e.message.contains("--set load.admns=7"),
        "{e}"
    );
    let w = parse_with(MINIMAL, &["target.base_url=http://127.0.0.1:9000/scim/v2"]).unwrap();
    assert!(matches!(w.target, Target::Scim { ref base_url, .. } if base_url == "http://127.0.0.1:9000/scim/v2"));
}

/// Regression: an unrelated `--set` moved every error to a line of the re-serialised document.
#[test]
fn errors_keep_their_line_under_overrides_or_name_the_override() {
    let text = MINIMAL.replace("admins = 2", "admins = 0");
    let plain = parse(&text).unwrap_err();
    assert_eq!((plain.line, plain.column), (Some(5), Some(10)), "{plain}");
    for sets in [&["load.duration=5s"][..], &["users.prepopulate=3", "name=other"][..]] {
        let e = parse_with(&text, sets).unwrap_err();
        assert_eq!((e.line, e.column), (Some(5), Some(10)), "{sets:?}: {e}");
        assert_eq!(e.message, plain.message, "{sets:?}");
    }
    // The bad value came from the command line: it says so, and points at no line of the file.
    let e = parse_with(MINIMAL, &["load.duration=forever"]).unwrap_err();
    assert_eq!(e.line, None, "{e}");
    assert!(
        e.message.contains("`forever` is not a duration") && e.message.contains("`--set load.duration=forever`"),
        "{e}"
    );
    let e = parse_with(MINIMAL, &["load.admins=0"]).unwrap_err();
    assert!(e.line.is_none() && e.message.contains("--set load.admins=0"), "{e}");
    // A journey error after an override still points at its step.
    let bad_step = MINIMAL.replace("\"disable_user\"", "\"disabel_user\"");
    let e = parse_with(&bad_step, &["load.admins=3"]).unwrap_err();
    assert_eq!(e.line, Some(9), "{e}");
}

/// Regression: the results kept the file as written, so the report showed a rate not run.
#[test]
fn the_effective_workload_names_its_overrides() {
    let mut o = Overrides::default().set("load.admins=7");
    o.thresholds = vec!["p99(api_latency) < 1s".into()];
    let w = Workload::parse(Path::new("w.toml"), MINIMAL, &o).unwrap();
    assert_eq!(
        w.overrides,
        ["--set load.admins=7", "--threshold 'p99(api_latency) < 1s'"]
    );
    assert!(
        w.effective_text.contains("#   --set load.admins=7"),
        "{}",
        w.effective_text
    );
    let again: toml::Table = toml::from_str(&w.effective_text).unwrap();
    assert_eq!(again["load"]["admins"].as_integer(), Some(7));
    assert_eq!(again["thresholds"][0].as_str(), Some("p99(api_latency) < 1s"));
    assert_eq!(w.thresholds.len(), 1);
    // The saved text loads as the same workload.
    let reloaded = parse(&w.effective_text).unwrap();
    assert!(matches!(reloaded.load, Load::Closed { admins: 7, .. }));
}

#[test]
fn templates_must_carry_the_run_marker() {
    let text = format!("{MINIMAL}\n[users]\ntemplate = {{ userName = \"fixed@example.test\" }}\n");
    let e = parse(&text).unwrap_err();
    assert!(e.message.contains("{run_id}"), "{e}");
    // The marker must stay a whole token once rendered.
    for name in [
        "x{run_id}-{seq}",
        "{run_id}{seq}@x",
        "{seq}{run_id}@x",
        "{run_id}7-{seq}",
    ] {
        let text = format!("{MINIMAL}\n[users]\ntemplate = {{ userName = \"{name}\" }}\n");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("stand apart"), "{name}: {e}");
    }
    for name in ["{run_id}-{seq}@x", "u.{run_id}.{seq}", "{seq}_{run_id}"] {
        let text = format!("{MINIMAL}\n[users]\ntemplate = {{ userName = \"{name}\" }}\n");
        assert!(parse(&text).is_ok(), "{name}");
    }
    let text = format!("{MINIMAL}\n[users]\ngroup_template = {{ displayName = \"team-{{seq}}\" }}\n");
    assert!(parse(&text).unwrap_err().message.contains("group_template"));
}

#[test]
fn journeys_that_need_existing_users_need_a_source() {
    let text = MINIMAL.replace(
        "[\"create_user\", \"assign_role:employee\", \"disable_user\", \"delete_user\"]",
        "[\"find_user\"]",
    );
    let e = parse(&text).unwrap_err();
    assert!(e.message.contains("prepopulate"), "{e}");
    assert!(parse(&format!("{text}\n[users]\nprepopulate = 5\n")).is_ok());
    let text = MINIMAL.replace(
        "[\"create_user\", \"assign_role:employee\", \"disable_user\", \"delete_user\"]",
        "[\"delete_user\"]",
    );
    let e = parse(&format!("{text}\n[users]\nprepopulate = 5\n")).unwrap_err();
    assert!(e.message.contains("did not create"), "{e}");
}

#[test]
fn every_shipped_workload_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Workload::load(&path, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 1);
}

/// Where `text` uses what TOML 1.1 added to 1.0 (the `toml` crate reads 1.1; many readers,
/// Python's `tomllib` among them, read only 1.0): a line break in an inline table (outside an
/// array in it, where 1.0 allows one), a trailing
/// comma in an inline table, a `\e` or `\x` escape. Each as `line: what`.
fn toml_1_1_only(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    // The open brackets, innermost last: `{` an inline table, `[` an array (or a header).
    let (mut open, mut line, mut last) = (Vec::new(), 1usize, ' ');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                if open.last() == Some(&'{') {
                    found.push(format!("{line}: an inline table across lines"));
                }
                line += 1;
            }
            '#' => {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            '"' | '\'' => {
                let multi = chars.peek() == Some(&c) && {
                    let mut ahead = chars.clone();
                    ahead.next();
                    ahead.next() == Some(c)
                };
                if multi {
                    chars.next();
                    chars.next();
                }
                let mut run = 0;
                while let Some(s) = chars.next() {
                    if s == '\n' {
                        line += 1;
                    }
                    if s == '\\' && c == '"' {
                        if let Some(e @ ('e' | 'x')) = chars.next() {
                            found.push(format!("{line}: the escape \\{e}"));
                        }
                        run = 0;
                        continue;
                    }
                    run = if s == c { run + 1 } else { 0 };
                    if run == if multi { 3 } else { 1 } {
                        break;
                    }
                }
            }
            '{' | '[' => open.push(c),
            '}' => {
                if last == ',' {
                    found.push(format!("{line}: a trailing comma in an inline table"));
                }
                open.pop();
            }
            ']' => {
                open.pop();
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last = c;
        }
    }
    found
}

#[test]
fn every_shipped_workload_is_toml_1_0() {
    assert_eq!(
        toml_1_1_only("a = { b = 1,\n c = 2 }\nd = { e = 1, }\nf = \"\\e\"\n"),
        [
            "1: an inline table across lines",
            "3: a trailing comma in an inline table",
            "4: the escape \\e"
        ]
    );
    assert!(
        toml_1_1_only("x = { y = [\n { z = 1 },\n] }\na = [\n 1,\n]\nb = { c = \"{\\n\" } # {\nd = \"\"\"\n{\"\"\"\n")
            .is_empty()
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let found = toml_1_1_only(&text);
            assert!(found.is_empty(), "{} is not TOML 1.0: {found:?}", path.display());
        }
    }
}

/// The 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

/// Mistakes inside `[checks]` and `[operations]` point at their key's line, not the section's.
#[test]
fn section_errors_name_their_keys_line() {
    let cases = [
        (
            "[checks]\nkinds = [\"login\",\n  \"logni\"]\n",
            "\"logni\"]",
            "did you mean `login`?",
        ),
        (
            "[checks]\nkinds = [\"audit\"]\n\nsample = 5.0\n",
            "sample = 5.0",
            "checks.sample",
        ),
        (
            "[checks]\nkinds = [\"authorization\"]\nreadonly_client = { id = \"ro\",\n  token_url = \"/t\" }\n",
            "token_url = \"/t\"",
            "signs in at checks.token_url",
        ),
        (
            "[checks]\nkinds = [\"audit\"]\nattempts = 0\n",
            "attempts = 0",
            "`checks.attempts` must be at least 1",
        ),
        (
            "[checks]\nkinds = [\"login\"]\n\nlogin_flow = { kind = \"authorization-code\", idp_origins = [\"https://login.example.com/realms/x\"] }\n",
            "idp_origins",
            "checks.login_flow.idp_origins: `https://login.example.com/realms/x` is not an origin",
        ),
        (
            "[operations.ping]\nmethod = \"GET\"\npath = \"/ping\"\ncleanup = \"ping\"\n",
            "cleanup = \"ping\"",
            "its own cleanup",
        ),
        (
            "[operations.ping]\nmethod = \"GET\"\n\npath = \"ping\"\n",
            "path = \"ping\"",
            "starts with `/`",
        ),
    ];
    for (section, at, needle) in cases {
        let text = format!("{MINIMAL}{section}");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains(needle), "{section}: {e}");
        assert_eq!(e.line, Some(line_of(&text, at)), "{section}: {e}");
    }
}

/// `[target]` is read as the struct of its kind: a key of another kind is unknown at its line,
/// and the message names the kind that takes it.
#[test]
fn a_target_key_of_another_kind_names_that_kind() {
    let text =
        format!("{MINIMAL}[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9000\"\nprofile = \"fast\"\n");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.line, Some(line_of(&text, "profile = ")), "{e}");
    assert!(
        e.message.contains("unknown key `profile` in [target]") && e.message.contains("belongs to kind = \"embedded\""),
        "{e}"
    );
    let text = format!(
        "{MINIMAL}[target]\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:3890\"\nbase_dn = \"ou=p,dc=x\"\nbase_url = \"http://x\"\n"
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.line, Some(line_of(&text, "base_url = ")), "{e}");
    assert!(e.message.contains("belongs to kind = \"scim\" or \"http\""), "{e}");
    let text = format!("{MINIMAL}[target]\nprofil = \"fast\"\n");
    let e = parse(&text).unwrap_err();
    assert!(e.message.contains("did you mean `profile`?"), "{e}");
    let text = format!(
        "{MINIMAL}[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9000\"\nauth = {{ kind = \"bearer\",\n  token_url = \"/t\" }}\n"
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.line, Some(line_of(&text, "token_url")), "{e}");
    assert!(e.message.contains("unknown key `token_url`"), "{e}");
}

/// `max_body` bounds every answer the target's client reads: a size with a unit or bytes,
/// within its limits, an error at its line naming the key otherwise.
#[test]
fn max_body_is_a_bounded_size_at_its_line() {
    let scim =
        |v: &str| format!("{MINIMAL}[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9000\"\nmax_body = {v}\n");
    assert_eq!(
        parse(MINIMAL).unwrap().http.body_limit,
        crate::http::body::DEFAULT_LIMIT
    );
    assert_eq!(parse(&scim("\"2MiB\"")).unwrap().http.body_limit, 2 << 20);
    assert_eq!(parse(&scim("65536")).unwrap().http.body_limit, 65536);
    let embedded = format!("{MINIMAL}[target]\nmax_body = \"64KiB\"\n");
    assert_eq!(parse(&embedded).unwrap().http.body_limit, 64 << 10);
    for bad in ["\"2GiB\"", "12", "\"lots\"", "true"] {
        let text = scim(bad);
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(line_of(&text, "max_body = ")), "{bad}: {e}");
        assert!(e.message.contains("target.max_body"), "{bad}: {e}");
    }
}

#[test]
fn a_check_that_would_judge_nothing_is_refused() {
    let scim = r#"
name = "s"
[target]
kind = "scim"
base_url = "http://127.0.0.1:1/scim/v2"
[load]
model = "closed"
admins = 1
iterations = 1
[[journey]]
name = "j"
steps = ["create_user", "disable_user"]
[users]
password = "Pw-{run_id}-{seq}"
[checks]
kinds = ["login", "revocation"]
token_url = "http://127.0.0.1:1/token"
me_url = "http://127.0.0.1:1/{service}/me"
"#;
    let e = parse(scim).unwrap_err();
    assert!(e.message.contains("checks.services names no linked service"), "{e}");
    assert!(e.message.contains("revocation"), "{e}");
    assert!(
        parse(&scim.replace(
            "kinds = [\"login\", \"revocation\"]",
            "kinds = [\"login\", \"revocation\"]\nservices = [\"crm\"]"
        ))
        .is_ok()
    );
    let e = parse(
        &scim
            .replace(
                "kind = \"scim\"\nbase_url = \"http://127.0.0.1:1/scim/v2\"",
                "kind = \"embedded\"",
            )
            .replace("[checks]\n", "[checks]\nmin_evidence = 20\nattempts = 10\n")
            .replace("\"login\", \"revocation\"", "\"authorization\""),
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("checks.attempts (10) is below checks.min_evidence (20)"),
        "{e}"
    );
}

/// `connect_timeout`: 5 s by default (a dead target fails in seconds, whatever the request
/// timeout), applied within `timeout`; zero or a non-duration is an error at its line.
#[test]
fn connect_timeout_is_separate_from_the_request_timeout() {
    let scim =
        |keys: &str| format!("{MINIMAL}[target]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9000\"\n{keys}\n");
    let default = parse(&scim("timeout = \"120s\"")).unwrap().http;
    assert_eq!(default.connect_within(), Duration::from_secs(5));
    let set = parse(&scim("connect_timeout = \"2s\"")).unwrap().http;
    assert_eq!(set.connect_within(), Duration::from_secs(2));
    let within = parse(&scim("timeout = \"1s\"\nconnect_timeout = \"10s\""))
        .unwrap()
        .http;
    assert_eq!(within.connect_within(), Duration::from_secs(1));
    for bad in ["\"0s\"", "\"soon\""] {
        let text = scim(&format!("connect_timeout = {bad}"));
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(line_of(&text, "connect_timeout = ")), "{bad}: {e}");
        assert!(e.message.contains("connect_timeout"), "{bad}: {e}");
    }
}
