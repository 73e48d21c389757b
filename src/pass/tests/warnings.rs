//! Warnings before culling, over passes at successive times against the Hub in memory.

use std::sync::Mutex;

use crate::notify::{WarnHook, Warning};
use crate::pass::{run_pass, Hooks, PassReport, Warnings};
use crate::state::StateDb;

use super::{block_on, options, stopped, user, Answer, MemoryHub, NOW};

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl WarnHook for Recorder {
    fn warn<'a>(
        &'a self,
        warning: &'a Warning,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        self.0.lock().unwrap().push(warning.subject());
        Box::pin(async { true })
    }
}

struct Culler {
    state: StateDb,
    hook: Recorder,
    options: crate::options::PassOptions,
}

impl Culler {
    fn new(json: &str) -> Self {
        Culler {
            state: StateDb::open(":memory:").unwrap(),
            hook: Recorder::default(),
            options: options(json),
        }
    }

    /// A pass `later` seconds after NOW; the warnings it delivered.
    fn pass(&self, hub: &MemoryHub, later: f64) -> (PassReport, Vec<String>) {
        let settings = self.options.settings(NOW + later, None);
        let warnings = Warnings {
            state: &self.state,
            hook: Some(&self.hook),
            webhook: None,
        };
        let report = block_on(run_pass(
            hub,
            &settings,
            Hooks::default(),
            None,
            Some(&warnings),
            None,
        ));
        let mut given = std::mem::take(&mut *self.hook.0.lock().unwrap());
        given.sort();
        (report, given)
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
        r#"{"inactive_limit": 3600, "cull_users": true, "warn_before": 600, "warn_users_before": 86400}"#,
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
