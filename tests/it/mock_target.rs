//! A kind of target defined outside the crate, like hyperfine's `MockExecutor`: an in-memory
//! user store behind [`Protocol`], given to the run through `RunOptions::target`. It drives the
//! engine's journeys, failure samples, cleanup and results without the reference service or any
//! socket, so what the engine does around a protocol is tested on its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use provbench::engine::state::{AdminState, JourneyState, Run, StepEnd, created, current_id, payload, user};
use provbench::engine::targets::{BoxFuture, Protocol};
use provbench::engine::{self, RunOptions};
use provbench::ledger::{Created, RunId};
use provbench::results::{CleanupReport, RunOutcome};
use provbench::workload::{Step, Workload};
use tokio_util::sync::CancellationToken;

/// Users by id: (userName, active).
#[derive(Default)]
struct Mock {
    users: Mutex<HashMap<String, (String, bool)>>,
    /// Every request, as `op id`, in order.
    log: Mutex<Vec<String>>,
}

impl Mock {
    fn touch(&self, op: &str, id: &str) -> Result<(), StepEnd> {
        self.log.lock().push(format!("{op} {id}"));
        if self.users.lock().contains_key(id) {
            Ok(())
        } else {
            Err(payload(format!("no user {id}")))
        }
    }
}

impl Protocol for Mock {
    fn kind(&self) -> &'static str {
        "mock"
    }

    fn url(&self) -> String {
        "mock://memory".into()
    }

    fn request_line(&self, step: &Step) -> Option<&'static str> {
        Some(match step {
            Step::CreateUser => "mock insert",
            Step::DeleteUser => "mock remove",
            _ => "mock update",
        })
    }

    fn execute<'a>(
        &'a self,
        run: &'a Run,
        admin: &'a mut AdminState,
        step: &'a Step,
        state: &'a mut JourneyState,
    ) -> BoxFuture<'a, Result<(), StepEnd>> {
        Box::pin(async move {
            match step {
                Step::CreateUser => {
                    let seq = run.next_seq();
                    let vars = run.vars(admin, seq);
                    let name = format!("{}-{seq}", run.run_id);
                    let id = format!("u{seq}");
                    self.log.lock().push(format!("insert {id}"));
                    self.users.lock().insert(id.clone(), (name.clone(), true));
                    state.user = Some(created(run, admin, id, name, &vars));
                    Ok(())
                }
                Step::GetUser | Step::ModifyUser => self.touch("update", &current_id(run, admin, state)?),
                Step::DisableUser | Step::EnableUser => {
                    let id = current_id(run, admin, state)?;
                    self.touch("update", &id)?;
                    let active = *step == Step::EnableUser;
                    self.users.lock().get_mut(&id).expect("touched").1 = active;
                    Ok(())
                }
                Step::DeleteUser => {
                    let u = user(run, admin, state)?;
                    let id = u.id.clone().unwrap_or_default();
                    self.touch("remove", &id)?;
                    self.users.lock().remove(&id);
                    u.mark_deleted();
                    Ok(())
                }
                other => Err(payload(format!("the mock has no `{}`", other.name()))),
            }
        })
    }

    fn clean_up<'a>(
        &'a self,
        items: Vec<Created>,
        run_id: &'a RunId,
        _limit: Duration,
    ) -> BoxFuture<'a, CleanupReport> {
        Box::pin(async move {
            let mut report = CleanupReport::default();
            for item in items {
                report.attempted += 1;
                // The ownership rule of every kind: only what carries the run's marker goes.
                assert!(
                    run_id.marks(item.name()),
                    "cleanup handed {} without the marker",
                    item.name()
                );
                self.log.lock().push(format!("cleanup {}", item.id()));
                match self.users.lock().remove(item.id()) {
                    Some(_) => report.deleted += 1,
                    None => report.already_gone += 1,
                }
            }
            report
        })
    }
}

// No [target]: the mock replaces it. The embedded service's default probes read its HTTP
// linked services, which the mock has not: they are off.
const WORKLOAD: &str = r#"
name = "mock"
[probes]
enabled = false
[load]
model = "closed"
admins = 3
iterations = 4

[[journey]]
name = "leaver"
weight = 1
steps = ["create_user", "modify_user", "disable_user", "enable_user", "delete_user"]

[[journey]]
name = "stays"
weight = 1
steps = ["create_user", "get_user", "disable_user"]

[[journey]]
name = "broken"
weight = 1
steps = ["create_user", "delete_user", "get_user"]
"#;

#[tokio::test]
async fn a_kind_of_target_outside_the_crate_drives_journeys_cleanup_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let w = Workload::parse(&dir.path().join("mock.toml"), WORKLOAD, &Default::default()).unwrap();
    let mock = Arc::new(Mock::default());
    crate::support::logs();
    let result = engine::run(
        RunOptions {
            out: Some(dir.path().join("results")),
            target: Some(mock.clone()),
            ..RunOptions::new(w)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let s = &result.summary;
    assert_eq!(s.target.kind, "mock");
    assert_eq!(s.target.url, "mock://memory");

    // Every journey ran, by weight; the broken one failed at its last step, with the request
    // line the protocol named and the protocol's own reason.
    let ran: u64 = s.journeys.iter().map(|j| j.completed + j.failed).sum();
    assert_eq!(ran, 12, "{:?}", s.journeys);
    let count = |op: &str| {
        s.metrics
            .iter()
            .find(|m| m.metric == "api_latency" && m.tags.get("op").map(String::as_str) == Some(op))
            .map_or(0, |m| m.count)
    };
    let broken = s.journeys.iter().find(|j| j.name == "broken").unwrap();
    assert_eq!(broken.completed, 0);
    assert!(broken.failed > 0);
    assert_eq!(count("create_user"), 12);
    let failure = s
        .failures
        .iter()
        .find(|f| f.op == "get_user")
        .expect("get_user failures sampled");
    assert!(
        failure.examples.iter().all(|e| e.starts_with("mock update: no user u")),
        "{failure:?}"
    );

    // Cleanup got exactly what journeys left (the "stays" users), and nothing is left.
    let stays = s.journeys.iter().find(|j| j.name == "stays").unwrap().completed;
    let cleanup = s.cleanup.as_ref().expect("cleanup ran");
    assert_eq!(cleanup.deleted, stays, "{cleanup:?}");
    assert_eq!(cleanup.failed, 0);
    assert!(
        mock.users.lock().is_empty(),
        "left in the mock: {:?}",
        mock.users.lock()
    );
    let log = mock.log.lock();
    assert!(
        log.iter().filter(|l| l.starts_with("cleanup ")).count() as u64 == stays,
        "{log:?}"
    );

    // The results are written as for any target, and judged: errors happened, no threshold.
    for f in ["summary.json", "junit.xml", "report.html", "summary.md"] {
        assert!(result.dir.join(f).exists(), "{f} missing");
    }
    assert_ne!(s.outcome, RunOutcome::Running);
}
