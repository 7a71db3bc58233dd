//! rev38: schedules where sampled users' writes are part followed, part passed over (the
//! probes at `max_share`), checked for what the probes conclude: every handed write is
//! accounted for once (observed, shed or not followed), no followed write times out because a
//! passed-over write of its user overtook it, and every created user is read after cleanup.

use provbench::reference::config::ReferenceConfig;

use crate::engine::run_with;
use crate::support::start_reference;

async fn schedule(steps: &str, max_share: f64) {
    let config = ReferenceConfig::from_toml(
        "profile = \"fast\"\n[[services]]\nname = \"mail\"\nsync_delay = \"uniform:20ms..60ms\"\n",
    )
    .unwrap();
    let reference = start_reference(config).await;
    let workload = format!(
        "name = \"rev38\"\n[load]\nmodel = \"closed\"\nadmins = 3\nduration = \"3s\"\n\
         [[journey]]\nname = \"j\"\nsteps = [{steps}]\n\
         [probes]\nsample = 1.0\nmax_share = {max_share}\ntimeout = \"20s\"\n\
         poll = {{ initial = \"5ms\", max = \"20ms\", factor = 1.2 }}\n\
         sync = [{{ service = \"mail\", url = \"/linked/mail/Users/{{id}}\" }}]\n"
    );
    let (result, _dir) = run_with(Some(&reference), &workload, false).await;
    reference.stop().await;
    let p = result.summary.probes.clone().unwrap();
    let ok = |op: &str| {
        result
            .summary
            .metric("api_latency", Some(("op", op)))
            .map_or(0, |m| m.count - m.errors - m.timeouts)
    };
    let (created, modified, deleted) = (ok("create_user"), ok("modify_user"), ok("delete_user"));
    let toggled = ok("disable_user") + ok("enable_user");
    let lag: Vec<_> = result
        .summary
        .metrics
        .iter()
        .filter(|m| m.metric == "sync_lag")
        .map(|m| (m.tags.clone(), m.count, m.timeouts))
        .collect();
    eprintln!(
        "rev38 {steps} share {max_share}: created {created} modified {modified} deleted {deleted} toggled {toggled}\n  {p:?}\n  {lag:?}"
    );
    let handed = p.writes_observed + p.shed + p.not_followed;
    assert_eq!(
        handed,
        created + modified + deleted + toggled,
        "every sampled write handed once: {p:?}"
    );
    assert!(
        p.not_followed > 0 || max_share >= 1.0,
        "the share was never reached: {p:?}"
    );
    assert!(
        lag.iter().all(|(_, _, t)| *t == 0),
        "a followed write timed out (lag 20-60 ms, bound 20 s): {lag:?}"
    );
    assert!(p.reads_after_cleanup >= created, "{created} created: {p:?}");
    assert!(p.leftovers.values().all(|n| *n == 0), "{p:?}");
}

/// create followed, modify passed over, delete followed (and every other mix the share makes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev38_create_modify_modify_delete_at_a_small_share() {
    schedule(r#""create_user", "modify_user", "modify_user", "delete_user""#, 0.05).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev38_create_disable_enable_delete_at_a_small_share() {
    schedule(
        r#""create_user", "disable_user", "enable_user", "modify_user", "delete_user""#,
        0.05,
    )
    .await;
}
