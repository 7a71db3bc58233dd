//! Capacity planning against a service of known capacity: 1 worker × 100 ms per job is 10 jobs a
//! second, far below what the generator can send even on a busy machine. The arrivals are evenly
//! spaced, so below the capacity no job waits in the queue and above it the queue grows by the
//! excess every second: with a queue-delay threshold the sweep must pass every step up to 40 % of
//! the capacity, fail every step from 1.5 times it, and place the knee between (the steps near
//! the knee are for the sweep to decide: a busy machine makes the worker a little slower, and
//! that must not fail the test).

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
    crate::support::logs();
    const CAPACITY: f64 = 10.0;
    let config = ReferenceConfig::from_toml(
        "profile = \"fast\"\n[queue]\nworkers = 1\nservice_time = \"100ms\"\n[[services]]\nname = \"directory\"\nsync_delay = \"1ms\"\n",
    )
    .unwrap();
    let reference = start_reference(config).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &reference.token).unwrap();
    let text = format!(
        r#"name = "capacity"
thresholds = ["p99(queue_delay) < 500ms"]
[target]
kind = "scim"
base_url = "{}"
auth = {{ kind = "bearer", token_file = "token" }}
[load]
model = "open"
rate = "2/s"
duration = "1s"
max_admins = 100
[[journey]]
name = "joiner"
steps = ["create_user"]
[probes]
sample = 1.0
max_share = 1.0
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
                // 2, 4, 8 and 16/s, then two bisections between the last passing and the
                // first failing step.
                from: 2.0,
                to: 64.0,
                stepping: Stepping::Geometric(2.0),
                bisect: 2,
            },
            // From 16/s on, 6 jobs a second more than it can do: the queue delay passes 500 ms
            // within the warm-up, 10 times the margin a busy machine could take from it.
            warmup: Duration::from_secs(1),
            hold: Duration::from_secs(2),
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
    let steps: Vec<(f64, bool)> = c.steps.iter().map(|s| (s.rate, s.passed)).collect();
    // Well below the capacity nothing waits; well above it the queue grows: the search's logic
    // on a curve the test knows, whatever the machine's speed.
    for (r, passed) in &steps {
        if *r <= 0.4 * CAPACITY {
            assert!(passed, "{r}/s is 40 % of the capacity or less: {steps:?}");
        }
        if *r >= 1.5 * CAPACITY {
            assert!(!passed, "{r}/s is 1.5 times the capacity or more: {steps:?}");
        }
    }
    let failing = c.first_failing_rate.expect("a step failed");
    assert!(
        (0.4 * CAPACITY..1.5 * CAPACITY).contains(&rate) && rate < failing && failing <= 16.0,
        "sustainable {rate}/s, first failing {failing}/s, capacity {CAPACITY}/s: {steps:?}"
    );
    // The knee is bracketed: every step up to the sustainable rate passed, every step from the
    // first failing one failed (the bisection narrowed the bracket from both ends).
    assert!(
        steps.iter().all(|(r, p)| (*r <= rate) == *p && (*r >= failing) != *p),
        "{steps:?}"
    );
    // The geometric steps 2, 4, 8… up to the first failing one, then the two bisections.
    const GEOMETRIC: [f64; 4] = [2.0, 4.0, 8.0, 16.0];
    let geometric: Vec<(f64, bool)> = steps.iter().copied().filter(|s| GEOMETRIC.contains(&s.0)).collect();
    let n = geometric.len();
    assert!(
        n >= 1
            && geometric.iter().map(|s| s.0).eq(GEOMETRIC[..n].iter().copied())
            && geometric.iter().enumerate().all(|(i, s)| s.1 == (i + 1 < n)),
        "the geometric steps stop at the first failing one: {steps:?}"
    );
    assert_eq!(steps.len(), geometric.len() + 2, "two bisections: {steps:?}");
    assert!(c.binding.iter().any(|b| b.contains("queue_delay")), "{:?}", c.binding);
    assert!(
        !c.only_the_bound,
        "a step failed: the rate is a knee, not the --to bound"
    );
    for f in ["capacity.json", "capacity.csv", "capacity.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let html = std::fs::read_to_string(out.join("capacity.html")).unwrap();
    // The knee is marked in every chart (a label drawn inside the plot, never over the legend,
    // which is HTML under it).
    let marks = html.matches(">sustainable</text>").count();
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
