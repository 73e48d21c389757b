//! Warnings before culling, over passes at successive times against the Hub in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::pass::{run_pass, Hooks, PassReport, Probes, Warnings};
use crate::state::StateDb;
use crate::warnings::delivery::{WarnHook, Warning};
use crate::work::{BusyMemory, ServerWork};

use super::{block_on, options, stopped, user, Answer, MemoryHub, MemoryProbe, NOW};

#[derive(Default)]
struct Recorder {
    given: Mutex<Vec<String>>,
    /// Never return: a hook stuck on a dead mail server.
    hang: AtomicBool,
}

impl WarnHook for Recorder {
    fn warn<'a>(
        &'a self,
        warning: &'a Warning,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        self.given.lock().unwrap().push(warning.subject());
        let hang = self.hang.load(Ordering::SeqCst);
        Box::pin(async move {
            if hang {
                futures::future::pending::<()>().await;
            }
            true
        })
    }
}

struct Culler {
    state: StateDb,
    hook: Recorder,
    hook_timeout: Duration,
    options: crate::options::PassOptions,
    memory: Mutex<BusyMemory>,
    ledger: Mutex<crate::ledger::WorkLedger>,
}

impl Culler {
    fn new(json: &str) -> Self {
        Culler {
            state: StateDb::open(":memory:").unwrap(),
            hook: Recorder::default(),
            hook_timeout: Duration::from_secs(5),
            options: options(json),
            memory: Mutex::default(),
            ledger: Mutex::default(),
        }
    }

    /// A pass `later` seconds after NOW; the warnings it delivered.
    fn pass(&self, hub: &MemoryHub, later: f64) -> (PassReport, Vec<String>) {
        self.pass_with(hub, later, None, None)
            .expect("the pass ends")
    }

    /// A pass asking servers through `probe`, or one killed after `killed_after`: `None`.
    fn pass_with(
        &self,
        hub: &MemoryHub,
        later: f64,
        probe: Option<&MemoryProbe>,
        killed_after: Option<Duration>,
    ) -> Option<(PassReport, Vec<String>)> {
        let settings = self.options.settings(NOW + later, None);
        let warnings = Warnings {
            state: &self.state,
            hook: Some(&self.hook),
            webhook: None,
            hook_timeout: self.hook_timeout,
        };
        let tokens = crate::probe_tokens::ProbeTokens::default();
        let probes = probe.map(|client| Probes {
            client,
            tokens: &tokens,
            memory: &self.memory,
            ledger: &self.ledger,
            store: None,
        });
        let pass = run_pass(
            hub,
            &settings,
            Hooks::default(),
            probes.as_ref(),
            Some(&warnings),
            None,
        );
        let report = match killed_after {
            None => block_on(pass),
            Some(after) => {
                // The future is dropped where it stands, as a SIGKILL leaves the state file.
                let outcome = block_on(async { tokio::time::timeout(after, pass).await });
                assert!(outcome.is_err(), "the pass was to be killed mid-delivery");
                return None;
            }
        };
        let mut given = std::mem::take(&mut *self.hook.given.lock().unwrap());
        given.sort();
        Some((report, given))
    }
}

#[test]
fn warned_once_then_culled_no_sooner_than_the_window_after() {
    let hub = MemoryHub::with(vec![
        // Due in 300 s: inside the 600 s window.
        user("soon", &[("", 3300.0, Answer::Stop)]),
        user("busy", &[("", 100.0, Answer::Stop)]),
        // Past its limit already, never warned.
        user("late", &[("", 7200.0, Answer::Stop)]),
    ]);
    let culler = Culler::new(r#"{"inactive_limit": 3600, "warn_before": 600}"#);
    let (report, given) = culler.pass(&hub, 0.0);
    assert_eq!(given, ["server late", "server soon"]);
    assert_eq!(report.totals.warned.get("server"), Some(&2));
    assert_eq!(
        report.totals.skipped.get("warned"),
        Some(&1),
        "late is held"
    );
    assert!(stopped(&hub).is_empty());
    // Passes inside the window warn nobody again and stop nothing, though soon is due at 300.
    for later in [100.0, 400.0, 599.0] {
        let (_, given) = culler.pass(&hub, later);
        assert!(given.is_empty(), "{later}: {given:?}");
        assert!(stopped(&hub).is_empty(), "{later}");
    }
    // The window counts from the end of the delivery, a moment after the pass began.
    let (report, given) = culler.pass(&hub, 601.0);
    assert!(given.is_empty());
    assert_eq!(report.count(super::Outcome::Stopped, true), 2);
    assert!(!hub.calls().iter().any(|c| c.contains("busy")));
    // The culled servers' warnings are forgotten at the next complete pass.
    culler.pass(&hub, 700.0);
    assert_eq!(culler.state.remembered().unwrap(), 0);
}

#[test]
fn a_server_active_again_is_kept_and_its_next_stretch_warned_again() {
    let hub = MemoryHub::with(vec![user("u", &[("", 3300.0, Answer::Stop)])]);
    let culler = Culler::new(r#"{"inactive_limit": 3600, "warn_before": 600}"#);
    assert_eq!(culler.pass(&hub, 0.0).1, ["server u"]);
    // Used again 200 s later: its last_activity moves; the warning is forgotten.
    hub.users.lock().unwrap()[0].servers[0].idle = -200.0;
    let (report, given) = culler.pass(&hub, 700.0);
    assert!(given.is_empty() && stopped(&hub).is_empty(), "{report:?}");
    assert_eq!(culler.state.remembered().unwrap(), 0);
    // Idle again until inside the window: a new warning, and the cull waits for it.
    let (_, given) = culler.pass(&hub, 3500.0);
    assert_eq!(given, ["server u"]);
    assert!(stopped(&hub).is_empty());
    culler.pass(&hub, 3800.0);
    assert!(
        stopped(&hub).is_empty(),
        "due at 3400 s idle, but warned only at 3500"
    );
    culler.pass(&hub, 4101.0);
    assert_eq!(stopped(&hub).len(), 1);
}

#[test]
fn a_group_timeout_moves_the_window() {
    let hub = MemoryHub::with(vec![user("u", &[("", 3300.0, Answer::Stop)])]);
    let culler = Culler::new(
        r#"{"inactive_limit": 3600, "warn_before": 600, "group_timeouts": {"g": 7200}}"#,
    );
    // Not in the group: warned. (The memory Hub's users are in no group.)
    assert_eq!(culler.pass(&hub, 0.0).1, ["server u"]);
    let hub = MemoryHub::with(vec![user("u", &[("", 3300.0, Answer::Stop)])]);
    let culler = Culler::new(r#"{"inactive_limit": 7200, "warn_before": 600}"#);
    assert!(culler.pass(&hub, 0.0).1.is_empty());
    assert_eq!(culler.pass(&hub, 3400.0).1, ["server u"]);
}

#[test]
fn users_are_warned_before_they_are_deleted() {
    let hub = MemoryHub::with(vec![user("gone", &[])]);
    let culler = Culler::new(
        r#"{"inactive_limit": 3600, "cull_users": true, "user_timeout": 88000, "warn_before": 600, "warn_users_before": 86400}"#,
    );
    let (_, given) = culler.pass(&hub, 0.0);
    assert_eq!(given, ["user gone"]);
    assert!(hub.calls().is_empty());
    culler.pass(&hub, 86_399.0);
    assert!(hub.calls().is_empty());
    culler.pass(&hub, 86_401.0);
    assert_eq!(hub.calls(), ["delete gone"]);
}

#[test]
fn a_dry_run_warns_nobody_and_remembers_nothing() {
    let hub = MemoryHub::with(vec![user("u", &[("", 7200.0, Answer::Stop)])]);
    let culler = Culler::new(r#"{"inactive_limit": 3600, "warn_before": 600, "dry_run": true}"#);
    let (report, given) = culler.pass(&hub, 0.0);
    assert!(given.is_empty());
    assert_eq!(report.warned.len(), 1);
    assert!(report.totals.warned.is_empty());
    assert_eq!(culler.state.remembered().unwrap(), 0);
}

#[test]
fn a_culler_killed_while_delivering_leads_to_a_warning_not_a_cull() {
    let hub = MemoryHub::with(vec![
        user("a", &[("", 7200.0, Answer::Stop)]),
        user("b", &[("", 7200.0, Answer::Stop)]),
        user("c", &[("", 7200.0, Answer::Stop)]),
    ]);
    let first = Culler::new(r#"{"inactive_limit": 3600, "warn_before": 600}"#);
    first.hook.hang.store(true, Ordering::SeqCst);
    assert!(first
        .pass_with(&hub, 0.0, None, Some(Duration::from_millis(200)))
        .is_none());
    // A new culler on the same state, long after the window the pending warnings would
    // have allowed: it delivers them, and stops nothing.
    let second = Culler {
        state: first.state,
        ..Culler::new(r#"{"inactive_limit": 3600, "warn_before": 600}"#)
    };
    let (report, given) = second.pass(&hub, 5000.0);
    assert_eq!(given, ["server a", "server b", "server c"]);
    assert!(stopped(&hub).is_empty(), "{report:?}");
    second.pass(&hub, 5599.0);
    assert!(
        stopped(&hub).is_empty(),
        "the window counts from this delivery"
    );
    let (report, given) = second.pass(&hub, 5601.0);
    assert!(given.is_empty());
    assert_eq!(report.count(super::Outcome::Stopped, true), 3);
}

#[test]
fn a_hook_that_hangs_is_given_up_on_and_the_cull_keeps_its_schedule() {
    let hub = MemoryHub::with(vec![user("u", &[("", 7200.0, Answer::Stop)])]);
    let culler = Culler {
        hook_timeout: Duration::from_millis(50),
        ..Culler::new(r#"{"inactive_limit": 3600, "warn_before": 600}"#)
    };
    culler.hook.hang.store(true, Ordering::SeqCst);
    let (report, given) = culler.pass(&hub, 0.0);
    assert_eq!(given, ["server u"]);
    assert_eq!(report.warned.len(), 1);
    assert!(!report.warned[0].delivered);
    assert!(report.errors.iter().any(|e| e.contains("not delivered")));
    culler.pass(&hub, 601.0);
    assert_eq!(
        stopped(&hub).len(),
        1,
        "a failed delivery is the broken-webhook case"
    );
}

#[test]
fn a_server_kept_busy_after_its_warning_is_not_warned_for_the_same_stretch_again() {
    let hub = MemoryHub::with(vec![user("u", &[("", 3300.0, Answer::Stop)])]);
    let culler = Culler::new(
        r#"{"inactive_limit": 3600, "warn_before": 600, "keep_busy_kernels": true, "busy_timeout": 90000}"#,
    );
    let work = |busy| {
        MemoryProbe(HashMap::from([(
            "http://hub/user/u/".to_owned(),
            ServerWork {
                kernels: 1,
                busy_kernels: busy,
                ..ServerWork::default()
            },
        )]))
    };
    let (busy, idle) = (work(1), work(0));
    let (_, given) = culler.pass_with(&hub, 0.0, Some(&busy), None).unwrap();
    assert_eq!(given, ["server u"]);
    // Due once the window is over; its kernel is busy, so it is kept.
    let (report, given) = culler.pass_with(&hub, 601.0, Some(&busy), None).unwrap();
    assert!(given.is_empty() && stopped(&hub).is_empty());
    assert_eq!(report.totals.skipped.get("busy"), Some(&1));
    // The proxy stamped the route when the culler asked: the Hub's last_activity moved.
    hub.users.lock().unwrap()[0].servers[0].stamped = Some(-601.0);
    // The kernel is done; the stretch is the one that was warned, so it is culled now.
    let (report, given) = culler.pass_with(&hub, 700.0, Some(&idle), None).unwrap();
    assert!(given.is_empty(), "warned twice for one stretch: {given:?}");
    assert_eq!(report.count(super::Outcome::Stopped, true), 1);
}
