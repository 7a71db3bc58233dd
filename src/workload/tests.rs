//! Parsing and validation of whole workload files.

use std::path::Path;
use std::time::Duration;

use super::*;

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
    Workload::parse(Path::new("w.toml"), text, &[])
}

#[test]
fn minimal_workload_gets_defaults() {
    let w = parse(MINIMAL).unwrap();
    assert_eq!(
        w.target,
        Target::Embedded {
            profile: "realistic".into(),
            config: None,
            flaws: vec![]
        }
    );
    assert_eq!(w.http.timeout, Duration::from_secs(30));
    assert!(matches!(w.load, Load::Closed { admins: 2, stop: Stop::Duration(d), .. } if d == Duration::from_secs(1)));
    assert_eq!(
        w.operations(),
        ["create_user", "assign_role", "disable_user", "delete_user"]
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
    let w = Workload::parse(
        Path::new("w.toml"),
        MINIMAL,
        &["load.admins=7".into(), "load.duration=2m".into()],
    )
    .unwrap();
    assert!(matches!(w.load, Load::Closed { admins: 7, stop: Stop::Duration(d), .. } if d == Duration::from_secs(120)));
    let e = Workload::parse(Path::new("w.toml"), MINIMAL, &["load.admns=7".into()]).unwrap_err();
    assert!(
        e.message.contains("did you mean `admins`") && e.message.contains("--set"),
        "{e}"
    );
    let w = Workload::parse(
        Path::new("w.toml"),
        MINIMAL,
        &["target.base_url=http://127.0.0.1:9/scim/v2".into()],
    )
    .unwrap();
    assert!(matches!(w.target, Target::Scim { ref base_url, .. } if base_url == "http://127.0.0.1:9/scim/v2"));
}

#[test]
fn templates_must_carry_the_run_marker() {
    let text = format!("{MINIMAL}\n[users]\ntemplate = {{ userName = \"fixed@example.test\" }}\n");
    let e = parse(&text).unwrap_err();
    assert!(e.message.contains("{run_id}"), "{e}");
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
            Workload::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 1);
}
