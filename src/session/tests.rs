//! Whole passes through a session over the Hub in memory: what it keeps from one pass to the
//! next (warnings, probe tokens, the memory of busy servers, keep-alives, the board, the
//! metrics), wired as the binding wires it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::*;
use crate::keepalive::grant;
use crate::options::PassOptions;
use crate::pass::tests::{block_on, options, stopped, user, Answer, MemoryHub, MemoryProbe, NOW};
use crate::pass::Outcome;
use crate::warnings::delivery::Warning;
use crate::work::ServerWork;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl WarnHook for Recorder {
    fn warn<'a>(&'a self, warning: &'a Warning) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        self.0.lock().unwrap().push(warning.subject());
        Box::pin(async { true })
    }
}

/// A session over `hub` whose servers answer from `servers` (URL to work).
fn session(hub: &Arc<MemoryHub>, servers: HashMap<String, ServerWork>) -> Session<MemoryHub> {
    Session::with_clients(Arc::clone(hub), Arc::new(MemoryProbe(servers)), None)
}

fn pass(
    session: &Session<MemoryHub>,
    options: &PassOptions,
    later: f64,
    hook: Option<&dyn WarnHook>,
) -> PassReport {
    let settings = options.settings(NOW + later, None);
    block_on(session.pass(&settings, Hooks::default(), hook)).expect("the session's clients")
}

#[test]
fn a_warning_given_in_one_pass_holds_the_cull_in_the_next() {
    let hub = Arc::new(MemoryHub::with(vec![user(
        "soon",
        &[("", 3300.0, Answer::Stop)],
    )]));
    let session = session(&hub, HashMap::new());
    let options = options(r#"{"inactive_limit": 3600, "warn_before": 600}"#);
    let hook = Recorder::default();
    let report = pass(&session, &options, 0.0, Some(&hook));
    assert_eq!(report.totals.warned.get("server"), Some(&1));
    assert_eq!(*hook.0.lock().unwrap(), ["server soon"], "delivered");
    pass(&session, &options, 400.0, Some(&hook));
    assert!(stopped(&hub).is_empty(), "due at 300 s, but warned for 600");
    assert_eq!(hook.0.lock().unwrap().len(), 1, "warned once");
    let report = pass(&session, &options, 601.0, Some(&hook));
    assert_eq!(report.count(Outcome::Stopped, true), 1);
}

#[test]
fn a_session_on_the_same_state_file_keeps_the_warnings_of_the_last() {
    let hub = Arc::new(MemoryHub::with(vec![user(
        "soon",
        &[("", 3300.0, Answer::Stop)],
    )]));
    let state = Arc::new(StateDb::open(":memory:").unwrap());
    let options = options(r#"{"inactive_limit": 3600, "warn_before": 600}"#);
    let first = Session::with_clients(
        Arc::clone(&hub),
        Arc::new(MemoryProbe(HashMap::new())),
        Some(Arc::clone(&state)),
    );
    pass(&first, &options, 0.0, Some(&Recorder::default()));
    drop(first);
    let second = Session::with_clients(
        Arc::clone(&hub),
        Arc::new(MemoryProbe(HashMap::new())),
        Some(state),
    );
    let hook = Recorder::default();
    pass(&second, &options, 400.0, Some(&hook));
    assert!(stopped(&hub).is_empty() && hook.0.lock().unwrap().is_empty());
    pass(&second, &options, 601.0, Some(&hook));
    assert_eq!(stopped(&hub).len(), 1);
}

#[test]
fn probes_keep_busy_servers_and_reuse_their_tokens_across_passes() {
    let hub = Arc::new(MemoryHub::with(vec![
        user("busy", &[("", 7200.0, Answer::Stop)]),
        user("idle", &[("", 7200.0, Answer::Stop)]),
    ]));
    let busy = ServerWork {
        kernels: 1,
        busy_kernels: 1,
        ..ServerWork::default()
    };
    let session = session(
        &hub,
        HashMap::from([("http://hub/user/busy/".to_owned(), busy)]),
    );
    let options = options(r#"{"inactive_limit": 3600, "keep_busy_kernels": true}"#);
    let report = pass(&session, &options, 0.0, None);
    assert_eq!(stopped(&hub), ["stop idle/"]);
    assert_eq!(report.totals.skipped.get("busy"), Some(&1), "{report:?}");
    let made = hub.tokens.lock().unwrap().made;
    assert_eq!(made, 2, "one for each server asked");
    pass(&session, &options, 60.0, None);
    assert_eq!(stopped(&hub).len(), 1, "still busy");
    assert_eq!(
        hub.tokens.lock().unwrap().made,
        made,
        "the busy server's token is kept by the session between passes"
    );
}

#[test]
fn the_page_s_keep_alives_and_board_are_the_passes_own() {
    let hub = Arc::new(MemoryHub::with(vec![
        user("kept", &[("", 7200.0, Answer::Stop)]),
        user("other", &[("", 7200.0, Answer::Stop)]),
    ]));
    let session = session(&hub, HashMap::new());
    let metrics = Arc::new(Metrics::new());
    session.count_passes_in(&metrics);
    let share = session.page_share(7200.0, NOW).unwrap();
    let kept = share
        .keep_alives
        .as_ref()
        .expect("kept in the session's state");
    kept.set("kept", "", grant(1800.0, kept.max).unwrap(), NOW)
        .unwrap();
    let report = pass(&session, &options(r#"{"inactive_limit": 3600}"#), 1.0, None);
    assert_eq!(stopped(&hub), ["stop other/"]);
    assert_eq!(report.totals.skipped.get("kept-alive"), Some(&1));
    let again = session.page_share(0.0, NOW).unwrap();
    assert!(
        Arc::ptr_eq(&again.board, &share.board),
        "one board a session"
    );
    let snapshot = share.board.snapshot();
    assert_eq!(snapshot.for_user("kept")[0].reason.label(), "kept-alive");
    assert_eq!(share.board.history().len(), 1);
    assert!(
        metrics.encode().contains("cull_idle_passes_total 1"),
        "{}",
        metrics.encode()
    );
}
