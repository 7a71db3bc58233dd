//! Capacity planning against a service of known capacity: 2 workers × 20 ms per job is 100 jobs a
//! second; with a queue-delay threshold the sweep must find a sustainable rate within 15 % of it.

use std::time::Duration;

use provbench::capacity::search::{Plan, Stepping};
use provbench::capacity::{SweepOptions, sweep};
use provbench::reference::config::ReferenceConfig;
use provbench::workload::Workload;
use tokio_util::sync::CancellationToken;

use crate::engine::marked_users;
use crate::support::start_reference;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_finds_the_known_capacity() {
    let _quiet = crate::support::measuring().await;
    crate::support::logs();
    let config = ReferenceConfig::from_toml(
        "profile = \"fast\"\n[queue]\nworkers = 2\nservice_time = \"20ms\"\n[[services]]\nname = \"directory\"\nsync_delay = \"1ms\"\n",
    )
    .unwrap();
    let reference = start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    let text = format!(
        r#"name = "capacity"
thresholds = ["p99(queue_delay) < 200ms"]
[target]
kind = "scim"
base_url = "{}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "open"
rate = "10/s"
duration = "1s"
max_admins = 100
[[journey]]
name = "joiner"
steps = ["create_user"]
[probes]
sample = 1.0
timeout = "10s"
poll = {{ initial = "2ms", max = "20ms", factor = 1.3 }}
queue = {{ job_header = "x-job-location", accepted_at = "/accepted_at", started_at = "/started_at" }}
"#,
        reference.scim
    );
    let path = dir.path().join("w.toml");
    std::fs::write(&path, text).unwrap();
    let workload = Workload::load(&path, &Default::default()).unwrap();
    let out = dir.path().join("sweep");
    let c = sweep(
        SweepOptions {
            workload,
            plan: Plan {
                from: 40.0,
                to: 400.0,
                stepping: Stepping::Geometric(1.5),
                bisect: 3,
            },
            warmup: Duration::from_secs(1),
            hold: Duration::from_secs(3),
            out: out.clone(),
            max_error_rate: 0.01,
            min_achieved: 0.95,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let rate = c.sustainable_rate.expect("some rate passes");
    eprintln!(
        "capacity: sustainable {rate:.1}/s, first failing {:?}, steps {:?}",
        c.first_failing_rate,
        c.steps.iter().map(|s| (s.rate, s.passed)).collect::<Vec<_>>()
    );
    assert!(
        (85.0..=115.0).contains(&rate),
        "sustainable rate {rate:.1}/s, expected 100/s ± 15%"
    );
    assert!(c.binding.iter().any(|b| b.contains("queue_delay")), "{:?}", c.binding);
    assert!(
        !c.only_the_bound,
        "a step failed: the rate is a knee, not the --to bound"
    );
    // The queue delay grows with the rate past the knee.
    let over: Vec<_> = c.steps.iter().filter(|s| s.rate > 120.0).collect();
    assert!(
        over.iter().all(|s| !s.passed),
        "{:?}",
        c.steps.iter().map(|s| (s.rate, s.passed)).collect::<Vec<_>>()
    );
    for f in ["capacity.json", "capacity.csv", "capacity.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let html = std::fs::read_to_string(out.join("capacity.html")).unwrap();
    // The knee is marked in every chart (a label drawn inside the plot, never over the legend,
    // which is HTML under it).
    let marks = html.lines().filter(|l| l.trim() == "sustainable").count();
    assert_eq!(marks, 3, "one knee label per chart");
    assert!(html.contains("Highest sustainable rate") && html.contains("<ul class=\"legend\">"));
    // Every step's users were cleaned up after the sweep.
    for s in &c.steps {
        assert_eq!(
            marked_users(&reference, &s.run_id).await,
            0,
            "step {} left users",
            s.rate
        );
    }
    reference.stop().await;
}
