//! `--idle-by=work` over passes in memory: what an open tab no longer hides, what doubt keeps,
//! and how often servers are asked.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::ledger::WorkLedger;

/// Answers by URL from what each server is doing now; counts the questions.
#[derive(Default)]
struct Servers {
    work: Mutex<HashMap<String, ServerWork>>,
    asked: AtomicUsize,
}

impl Servers {
    fn set(&self, user: &str, work: ServerWork) {
        self.work
            .lock()
            .unwrap()
            .insert(format!("http://hub/user/{user}/"), work);
    }
}

impl WorkProbe for Servers {
    fn probe<'a>(
        &'a self,
        base: &'a str,
        _token: &'a crate::http::ApiToken,
        _questions: crate::probe::Questions,
    ) -> BoxFuture<'a, Result<ServerWork, HttpError>> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let work = self.work.lock().unwrap().get(base).cloned();
            work.ok_or_else(|| refused(base))
        })
    }
}

/// A server with one idle kernel, last used `ago` seconds before NOW.
fn used(ago: f64) -> ServerWork {
    ServerWork {
        kernels: 1,
        connections: 1,
        last_work: Some(NOW - ago),
        ..ServerWork::default()
    }
}

fn busy() -> ServerWork {
    ServerWork {
        kernels: 1,
        busy_kernels: 1,
        ..ServerWork::default()
    }
}

struct WorkCuller {
    options: PassOptions,
    memory: Mutex<BusyMemory>,
    ledger: Mutex<WorkLedger>,
    tokens: crate::probe_tokens::ProbeTokens,
}

impl WorkCuller {
    fn new(json: &str) -> Self {
        WorkCuller {
            options: options(json),
            memory: Mutex::default(),
            ledger: Mutex::default(),
            tokens: crate::probe_tokens::ProbeTokens::default(),
        }
    }

    fn pass(&self, hub: &MemoryHub, servers: &Servers, later: f64) -> PassReport {
        let probes = Probes {
            client: servers,
            tokens: &self.tokens,
            memory: &self.memory,
            ledger: &self.ledger,
            store: None,
        };
        let settings = self.options.settings(NOW + later, None);
        block_on(run_pass(
            hub,
            &settings,
            Hooks::default(),
            Some(&probes),
            None,
            None,
        ))
    }
}

fn reasons(report: &PassReport) -> Vec<(String, &'static str)> {
    let mut out: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.user.clone(), s.reason.label()))
        .collect();
    out.sort();
    out
}

/// Servers started 9060 s before NOW that the Hub saw active 5 s before NOW: each has a tab
/// open.
fn open_tabs(names: &[&str]) -> MemoryHub {
    MemoryHub::with(
        names
            .iter()
            .map(|name| {
                let mut user = user(name, &[("", 9000.0, Answer::Stop)]);
                user.servers[0].stamped = Some(5.0);
                user
            })
            .collect(),
    )
}

#[test]
fn an_open_tab_keeps_a_server_by_the_hub_and_not_by_its_work() {
    let make = || {
        let hub = open_tabs(&["tab", "busy", "typing"]);
        let servers = Servers::default();
        servers.set("tab", used(8000.0));
        servers.set("busy", busy());
        servers.set("typing", used(10.0));
        (hub, servers)
    };
    let (hub, servers) = make();
    let by_hub = WorkCuller::new(r#"{"inactive_limit": 3600}"#);
    let report = by_hub.pass(&hub, &servers, 0.0);
    assert!(report.actions.is_empty(), "{:?}", outcomes(&report));

    let (hub, servers) = make();
    let by_work = WorkCuller::new(r#"{"inactive_limit": 3600, "idle_by": "work"}"#);
    let report = by_work.pass(&hub, &servers, 0.0);
    assert_eq!(stopped(&hub), ["stop tab/"]);
    assert_eq!(
        reasons(&report),
        [("busy".into(), "busy"), ("typing".into(), "worked")]
    );
    // Each was asked once: the first question answered for the whole pass.
    assert_eq!(servers.asked.load(Ordering::Relaxed), 3);
}

#[test]
fn a_server_that_cannot_be_asked_is_judged_by_the_hub() {
    let mut hub = open_tabs(&["tab"]);
    hub.users
        .get_mut()
        .unwrap()
        .push(user("gone-quiet", &[("", 9000.0, Answer::Stop)]));
    // Neither answers.
    let servers = Servers::default();
    let culler = WorkCuller::new(r#"{"inactive_limit": 3600, "idle_by": "work"}"#);
    let report = culler.pass(&hub, &servers, 0.0);
    assert_eq!(reasons(&report), [("tab".into(), "unanswered")]);
    assert_eq!(stopped(&hub), ["stop gone-quiet/"]);
}

#[test]
fn work_seen_before_keeps_a_server_that_a_later_question_finds_quiet() {
    let hub = open_tabs(&["burst"]);
    let servers = Servers::default();
    servers.set("burst", busy());
    let culler = WorkCuller::new(r#"{"inactive_limit": 3600, "idle_by": "work"}"#);
    // Busy when asked, long after its start: working then.
    culler.pass(&hub, &servers, 0.0);
    // Its kernel finished with no stamp since its start; the work seen still counts.
    servers.set("burst", used(9060.0));
    let report = culler.pass(&hub, &servers, 3540.0);
    assert!(stopped(&hub).is_empty(), "{:?}", outcomes(&report));
    culler.pass(&hub, &servers, 3600.0);
    assert_eq!(stopped(&hub), ["stop burst/"]);
}

#[test]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn servers_are_asked_by_their_limit_not_by_the_passes() {
    const SERVERS: usize = 200;
    const LIMIT: f64 = 3600.0;
    const HOURS: f64 = 10.0;
    let names: Vec<String> = (0..SERVERS).map(|i| format!("u{i:03}")).collect();
    let hub = open_tabs(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let servers = Servers::default();
    // Half compute all along; the other half were last used just before NOW.
    for (i, name) in names.iter().enumerate() {
        servers.set(name, if i % 2 == 0 { busy() } else { used(0.0) });
    }
    let culler = WorkCuller::new(r#"{"inactive_limit": 3600, "idle_by": "work"}"#);
    let mut passes = 0;
    let mut t = 0.0;
    while t <= HOURS * 3600.0 {
        culler.pass(&hub, &servers, t);
        passes += 1;
        t += 60.0;
    }
    let asked = servers.asked.load(Ordering::Relaxed);
    let stops = stopped(&hub).len();
    assert_eq!(
        stops,
        SERVERS / 2,
        "the idle half is stopped once, the busy half never"
    );
    // A busy server is asked about once per limit; an idle one once, before it is stopped.
    let per_busy = 2 + (HOURS * 3600.0 / LIMIT).round() as usize;
    let bound = (SERVERS / 2) * per_busy + SERVERS / 2;
    assert!(
        asked <= bound,
        "{asked} questions in {passes} passes of {SERVERS} servers; at most {bound} expected"
    );
    assert!(asked < SERVERS * passes / 50, "{asked} questions");
}

#[test]
fn a_warning_window_moves_the_first_question_earlier_and_adds_at_most_one() {
    let hub = open_tabs(&["quiet"]);
    let servers = Servers::default();
    servers.set("quiet", used(0.0));
    let culler =
        WorkCuller::new(r#"{"inactive_limit": 3600, "idle_by": "work", "warn_before": 600}"#);
    let mut asked_at = Vec::new();
    let mut t = 0.0;
    while t <= 4000.0 {
        let before = servers.asked.load(Ordering::Relaxed);
        culler.pass(&hub, &servers, t);
        if servers.asked.load(Ordering::Relaxed) > before {
            asked_at.push(t);
        }
        t += 60.0;
    }
    // Asked when first seen (long after its start), as it could enter the window (3000 s after
    // its last work), then once it is due.
    assert_eq!(asked_at, [0.0, 3000.0, 3600.0]);
    assert_eq!(stopped(&hub), ["stop quiet/"]);
}

#[test]
fn users_no_rule_may_touch_are_not_asked() {
    let hub = open_tabs(&["keeper", "other"]);
    let servers = Servers::default();
    servers.set("keeper", used(8000.0));
    servers.set("other", used(8000.0));
    let culler = WorkCuller::new(
        r#"{"inactive_limit": 3600, "idle_by": "work", "exclude_users": ["keeper"]}"#,
    );
    culler.pass(&hub, &servers, 0.0);
    assert_eq!(servers.asked.load(Ordering::Relaxed), 1);
    assert_eq!(stopped(&hub), ["stop other/"]);
}

/// Answers at once, but for the users it names, who never answer (their probe gives up after
/// `DEADLINE` of the runtime's clock).
struct Stalling(Vec<String>);

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

impl WorkProbe for Stalling {
    fn probe<'a>(
        &'a self,
        base: &'a str,
        _token: &'a crate::http::ApiToken,
        _questions: crate::probe::Questions,
    ) -> BoxFuture<'a, Result<ServerWork, HttpError>> {
        Box::pin(async move {
            if self
                .0
                .iter()
                .any(|name| base.contains(&format!("/{name}/")))
            {
                tokio::time::sleep(DEADLINE).await;
                return Err(refused(base));
            }
            Ok(used(8000.0))
        })
    }
}

#[test]
fn servers_that_never_answer_on_different_pages_hold_up_the_pass_once() {
    // Ten pages of 5 users, with one server on each page that uses its whole deadline.
    let names: Vec<String> = (0..50).map(|i| format!("u{i:02}")).collect();
    let hub = open_tabs(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let stalling = Stalling(names.iter().step_by(5).cloned().collect());
    let culler =
        WorkCuller::new(r#"{"inactive_limit": 3600, "idle_by": "work", "api_page_size": 5}"#);
    let probes = Probes {
        client: &stalling,
        tokens: &culler.tokens,
        memory: &culler.memory,
        ledger: &culler.ledger,
        store: None,
    };
    let settings = culler.options.settings(NOW, None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (report, took) = runtime.block_on(async {
        let began = tokio::time::Instant::now();
        let report = run_pass(&hub, &settings, Hooks::default(), Some(&probes), None, None).await;
        (report, began.elapsed())
    });
    assert!(report.complete);
    // One page after another would take ten deadlines.
    assert!(took < DEADLINE * 2, "{took:?}");
    let stopped: Vec<_> = outcomes(&report).into_iter().map(|(u, _, _)| u).collect();
    assert_eq!(
        stopped.len(),
        40,
        "the idle servers that answered: {stopped:?}"
    );
    let unanswered = reasons(&report);
    assert_eq!(unanswered.len(), 10);
    assert!(
        unanswered.iter().all(|(_, why)| *why == "unanswered"),
        "{unanswered:?}"
    );
}
