//! Keep-alives and what the page is shown, over passes against the Hub in memory.

use std::sync::Arc;

use crate::board::Board;
use crate::keepalive::{grant, KeepAlives};
use crate::pass::{run_pass, BoardFeed, Hooks, PassReport, Warnings};
use crate::state::StateDb;
use crate::warnings::delivery::{WarnHook, Warning};

use super::{block_on, options, stopped, user, Answer, MemoryHub, NOW};

struct Silent;

impl WarnHook for Silent {
    fn warn<'a>(
        &'a self,
        _warning: &'a Warning,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(async { true })
    }
}

struct Culler {
    state: Arc<StateDb>,
    board: Board,
    kept: KeepAlives,
    options: crate::options::PassOptions,
}

impl Culler {
    fn new(json: &str) -> Self {
        let state = Arc::new(StateDb::open(":memory:").unwrap());
        Culler {
            kept: KeepAlives::load(Arc::clone(&state), 7200.0, NOW).unwrap(),
            state,
            board: Board::default(),
            options: options(json),
        }
    }

    fn keep(&self, user: &str, seconds: f64, later: f64) {
        let g = grant(seconds, self.kept.max).unwrap();
        self.kept.set(user, "", g, NOW + later).unwrap();
    }

    fn pass(&self, hub: &MemoryHub, later: f64) -> PassReport {
        let settings = self.options.settings(NOW + later, None);
        let warnings = Warnings {
            state: &self.state,
            hook: Some(&Silent),
            webhook: None,
            hook_timeout: std::time::Duration::from_secs(5),
        };
        block_on(run_pass(
            hub,
            &settings,
            Hooks::default(),
            None,
            Some(&warnings),
            Some(BoardFeed {
                board: &self.board,
                keep_alives: Some(&self.kept),
            }),
        ))
    }
}

#[test]
fn a_kept_server_is_skipped_until_its_keep_alive_ends_while_others_are_culled() {
    let hub = MemoryHub::with(vec![
        user("kept", &[("", 7200.0, Answer::Stop)]),
        user("other", &[("", 7200.0, Answer::Stop)]),
    ]);
    let culler = Culler::new(r#"{"inactive_limit": 3600}"#);
    culler.keep("kept", 1800.0, 0.0);
    let report = culler.pass(&hub, 1.0);
    assert_eq!(stopped(&hub).len(), 1, "{:?}", hub.calls());
    assert!(stopped(&hub)[0].contains("other"));
    assert_eq!(report.totals.skipped.get("kept-alive"), Some(&1));
    let snapshot = culler.board.snapshot();
    let view = &snapshot.for_user("kept")[0];
    assert_eq!(
        (view.verdict.label(), view.reason.label()),
        ("keep", "kept-alive")
    );
    assert_eq!(view.kept_until, Some(NOW + 1800.0));
    assert_eq!(
        view.stop_at,
        Some(NOW + 1800.0),
        "stopped once the keep-alive ends"
    );
    assert_eq!(snapshot.for_user("other")[0].verdict.label(), "stop");
    // Once it ends, the server is culled at the next pass.
    culler.pass(&hub, 1801.0);
    assert_eq!(stopped(&hub).len(), 2);
    assert_eq!(culler.board.history().len(), 2);
}

#[test]
fn max_age_still_culls_a_kept_server() {
    let hub = MemoryHub::with(vec![user("kept", &[("", 7200.0, Answer::Stop)])]);
    let culler = Culler::new(r#"{"inactive_limit": 3600, "max_age": 3000}"#);
    culler.keep("kept", 3600.0, 0.0);
    culler.pass(&hub, 1.0);
    assert_eq!(stopped(&hub).len(), 1);
}

#[test]
fn a_warned_server_kept_alive_is_warned_again_before_its_keep_alive_ends() {
    let hub = MemoryHub::with(vec![user("u", &[("", 3300.0, Answer::Stop)])]);
    let culler = Culler::new(r#"{"inactive_limit": 3600, "warn_before": 600}"#);
    let report = culler.pass(&hub, 0.0);
    assert_eq!(report.totals.warned.get("server"), Some(&1));
    // Kept for an hour right after the warning: nothing is due within the window for now.
    culler.keep("u", 3600.0, 10.0);
    let report = culler.pass(&hub, 700.0);
    assert!(stopped(&hub).is_empty(), "the first warning allows no cull");
    assert!(report.totals.warned.is_empty());
    // Inside the window before the keep-alive ends: a fresh warning, and no cull until it
    // has been given the window.
    let report = culler.pass(&hub, 3100.0);
    assert_eq!(report.totals.warned.get("server"), Some(&1));
    culler.pass(&hub, 3620.0);
    assert!(
        stopped(&hub).is_empty(),
        "kept until 3610, warned at 3100: not before 3700"
    );
    let view = &culler.board.snapshot().for_user("u")[0].clone();
    assert_eq!(view.reason.label(), "warned");
    culler.pass(&hub, 3701.0);
    assert_eq!(stopped(&hub).len(), 1);
}

#[test]
fn keep_alives_of_servers_no_longer_running_are_forgotten() {
    let hub = MemoryHub::with(vec![user("u", &[("", 100.0, Answer::Stop)])]);
    let culler = Culler::new(r#"{"inactive_limit": 3600}"#);
    culler.keep("u", 600.0, 0.0);
    culler.keep("gone", 600.0, 0.0);
    culler.pass(&hub, 1.0);
    // In force, so kept though unseen: its server may be starting, or pending a Hub's check.
    assert!(culler.kept.get("gone", "").is_some());
    culler.pass(&hub, 601.0);
    assert!(
        culler.kept.get("u", "").is_some(),
        "ended, but its server runs"
    );
    assert!(culler.kept.get("gone", "").is_none());
}

/// An arbiter that grants a keep-alive for the server it is asked about, as a person who
/// clicks while the pass is under way, after that server was judged, would.
struct ClicksDuringThePass<'a>(&'a KeepAlives);

impl crate::pass::Arbiter for ClicksDuringThePass<'_> {
    fn allow<'a>(
        &'a self,
        _inactive: f64,
        _limit: f64,
        server_json: &'a str,
        _user_json: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        let server: serde_json::Value = serde_json::from_str(server_json).unwrap();
        let user = server["url"].as_str().unwrap().split('/').nth(2).unwrap();
        self.0
            .set(user, "", grant(3600.0, self.0.max).unwrap(), NOW + 2.0)
            .unwrap();
        Box::pin(async { true })
    }
}

#[test]
fn a_keep_alive_granted_after_judgement_stops_the_stop_and_outlives_the_pass() {
    let hub = MemoryHub::with(vec![user("u", &[("", 7200.0, Answer::Stop)])]);
    let culler = Culler::new(r#"{"inactive_limit": 3600}"#);
    let clicks = ClicksDuringThePass(&culler.kept);
    let settings = culler.options.settings(NOW + 1.0, None);
    let report = block_on(run_pass(
        &hub,
        &settings,
        Hooks {
            server: Some(&clicks),
            user: None,
        },
        None,
        None,
        Some(BoardFeed {
            board: &culler.board,
            keep_alives: Some(&culler.kept),
        }),
    ));
    assert!(stopped(&hub).is_empty(), "{:?}", hub.calls());
    assert_eq!(report.totals.skipped.get("kept-alive"), Some(&1));
    // Granted during the pass, for a server the pass judged without it: still there, on disk.
    assert_eq!(culler.kept.get("u", "").unwrap().until, NOW + 3602.0);
    let reloaded = KeepAlives::load(Arc::clone(&culler.state), 7200.0, NOW).unwrap();
    assert!(reloaded.get("u", "").is_some());
}
