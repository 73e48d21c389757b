//! Passes against a Hub in memory: acting between pages, the cap, probing, and what the Hub
//! answers to stops. A real Hub is the Python suite's; this one is for the pass's own logic,
//! in milliseconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::BoxFuture;
use reqwest::Method;

use crate::http::ApiToken;
use crate::http::{ErrorKind, HttpError, Peer};
use crate::hub::{DeleteOutcome, HubApi, IssuedToken, StopOutcome, TokenRequest, UserState};
use crate::models::{User, UserPage};
use crate::options::PassOptions;
use crate::probe::WorkProbe;
use crate::probe_tokens::ProbeTokens;
use crate::work::{BusyMemory, ServerWork};

use super::{run_pass, Hooks, Outcome, PassReport, Probes};

pub(crate) const NOW: f64 = 1_795_773_600.0; // 2026-11-27T10:00:00Z

#[allow(clippy::cast_possible_truncation)]
fn ts(seconds_ago: f64) -> String {
    chrono::DateTime::from_timestamp_micros(((NOW - seconds_ago) * 1e6).round() as i64)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// What the Hub answers to a stop of a server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Answer {
    /// 204, and the server is gone.
    Stop,
    /// 202: still stopping, and still listed as ready.
    Slow,
    /// 404: it was already gone.
    Gone,
    /// 500 (after the client's retries).
    Fail,
}

pub(crate) struct MemServer {
    name: String,
    pub(crate) idle: f64,
    answer: Answer,
    /// Seconds before NOW that the proxy last stamped the route, when not `idle` (a request
    /// that was no one's work, such as the culler's own probe).
    stamped: Option<f64>,
}

pub(crate) struct MemUser {
    name: String,
    pub(crate) servers: Vec<MemServer>,
}

impl MemUser {
    fn model(&self) -> String {
        let servers: serde_json::Map<String, serde_json::Value> = self
            .servers
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    serde_json::json!({
                        "name": s.name, "ready": true, "pending": null,
                        "last_activity": ts(s.stamped.unwrap_or(s.idle)), "started": ts(s.idle + 60.0),
                        "url": format!("/user/{}/{}", self.name, s.name),
                        "full_url": format!("http://hub/user/{}/{}", self.name, s.name),
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "name": self.name, "admin": false, "groups": [],
            "created": ts(90_000.0), "last_activity": ts(90_000.0), "servers": servers,
        })
        .to_string()
    }
}

#[derive(Default)]
pub(crate) struct MemoryHub {
    pub(crate) users: Mutex<Vec<MemUser>>,
    /// Every stop and deletion asked for, in order.
    calls: Mutex<Vec<String>>,
    /// Users sent in pages.
    listed: Mutex<u64>,
    /// Every listing fails with 503.
    down: bool,
    /// Reports JupyterHub 2.3.1, before `include_stopped_servers`.
    old: bool,
    pub(crate) tokens: Mutex<MemTokens>,
}

/// The tokens the Hub made for probes.
#[derive(Default)]
pub(crate) struct MemTokens {
    pub(crate) made: u32,
    /// Live ones: owner, id, secret, what was asked.
    live: Vec<(String, String, String, TokenRequest)>,
    deleted: Vec<String>,
}

impl MemoryHub {
    pub(crate) fn with(users: Vec<MemUser>) -> Self {
        MemoryHub {
            users: Mutex::new(users),
            ..MemoryHub::default()
        }
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn status(method: &Method, path: &str, status: u16) -> HttpError {
        HttpError::status(Peer::Hub, method, path, status, None)
    }
}

impl HubApi for MemoryHub {
    fn version(&self) -> BoxFuture<'_, Result<String, HttpError>> {
        let version = if self.old { "2.3.1" } else { "5.2.1" };
        Box::pin(async move { Ok(version.to_owned()) })
    }

    fn list_users(
        &self,
        state: Option<UserState>,
        _include_stopped: bool,
        offset: u64,
        limit: Option<u64>,
    ) -> BoxFuture<'_, Result<UserPage, HttpError>> {
        Box::pin(async move {
            if self.down {
                return Err(Self::status(&Method::GET, "/users", 503));
            }
            let users = self.users.lock().unwrap();
            let listed: Vec<&MemUser> = users
                .iter()
                .filter(|u| match state {
                    Some(UserState::Ready) => !u.servers.is_empty(),
                    Some(UserState::Inactive) => u.servers.is_empty(),
                    _ => true,
                })
                .collect();
            let limit = limit.unwrap_or(200).min(200);
            let start = usize::try_from(offset).unwrap().min(listed.len());
            let end = (start + usize::try_from(limit).unwrap()).min(listed.len());
            let items: Vec<String> = listed[start..end].iter().map(|u| u.model()).collect();
            *self.listed.lock().unwrap() += (end - start) as u64;
            let next = (end < listed.len())
                .then(|| serde_json::json!({"offset": end, "limit": limit, "url": "x"}));
            let body = format!(
                r#"{{"items": [{}], "_pagination": {{"offset": {offset}, "limit": {limit}, "total": {}, "next": {}}}}}"#,
                items.join(","),
                listed.len(),
                next.map_or("null".to_owned(), |n| n.to_string()),
            );
            Ok(UserPage::from_json(body.as_bytes()).unwrap())
        })
    }

    fn get_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<User>, HttpError>> {
        Box::pin(async move {
            let users = self.users.lock().unwrap();
            Ok(users
                .iter()
                .find(|u| u.name == name)
                .map(|u| serde_json::from_str(&u.model()).unwrap()))
        })
    }

    fn stop_server<'a>(
        &'a self,
        user: &'a str,
        server: &'a str,
        _remove: bool,
    ) -> BoxFuture<'a, Result<StopOutcome, HttpError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push(format!("stop {user}/{server}"));
            let mut users = self.users.lock().unwrap();
            let Some(owner) = users.iter_mut().find(|u| u.name == user) else {
                return Ok(StopOutcome::Gone);
            };
            let Some(i) = owner.servers.iter().position(|s| s.name == server) else {
                return Ok(StopOutcome::Gone);
            };
            match owner.servers[i].answer {
                Answer::Stop => {
                    owner.servers.remove(i);
                    Ok(StopOutcome::Stopped)
                }
                Answer::Slow => Ok(StopOutcome::Stopping),
                Answer::Gone => {
                    owner.servers.remove(i);
                    Ok(StopOutcome::Gone)
                }
                Answer::Fail => Err(Self::status(&Method::DELETE, "/users/x/server", 500)),
            }
        })
    }

    fn delete_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<DeleteOutcome, HttpError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(format!("delete {user}"));
            let mut users = self.users.lock().unwrap();
            let before = users.len();
            users.retain(|u| u.name != user);
            Ok(if users.len() < before {
                DeleteOutcome::Deleted
            } else {
                DeleteOutcome::Gone
            })
        })
    }

    fn create_token<'a>(
        &'a self,
        user: &'a str,
        request: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<IssuedToken, HttpError>> {
        Box::pin(async move {
            let mut tokens = self.tokens.lock().unwrap();
            tokens.made += 1;
            let (id, secret) = (
                format!("a{}", tokens.made),
                format!("secret-{}", tokens.made),
            );
            tokens
                .live
                .push((user.to_owned(), id.clone(), secret.clone(), request.clone()));
            Ok(IssuedToken {
                token: ApiToken::new(secret),
                id,
                expires_at: request
                    .expires_in
                    .map(|s| NOW + f64::from(u32::try_from(s).unwrap())),
            })
        })
    }

    fn delete_token<'a>(
        &'a self,
        user: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async move {
            let mut tokens = self.tokens.lock().unwrap();
            tokens
                .live
                .retain(|(owner, i, _, _)| !(owner == user && i == id));
            tokens.deleted.push(id.to_owned());
            Ok(())
        })
    }

    fn concurrency(&self) -> usize {
        4
    }

    fn take_error_counts(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
}

/// Answers probes from a table of server URLs; anything else cannot be reached.
pub(crate) struct MemoryProbe(pub(crate) HashMap<String, ServerWork>);

impl WorkProbe for MemoryProbe {
    fn probe<'a>(
        &'a self,
        base: &'a str,
        _token: &'a ApiToken,
        _questions: crate::probe::Questions,
    ) -> BoxFuture<'a, Result<ServerWork, HttpError>> {
        Box::pin(async move { self.0.get(base).cloned().ok_or_else(|| refused(base)) })
    }
}

/// What a server that is not there answers a probe.
fn refused(base: &str) -> HttpError {
    HttpError::new(
        ErrorKind::Connect,
        Peer::Server,
        &Method::GET,
        base,
        "connection refused".into(),
    )
}

pub(crate) fn user(name: &str, servers: &[(&str, f64, Answer)]) -> MemUser {
    MemUser {
        name: name.to_owned(),
        servers: servers
            .iter()
            .map(|&(server, idle, answer)| MemServer {
                name: server.to_owned(),
                idle,
                answer,
                stamped: None,
            })
            .collect(),
    }
}

pub(crate) fn options(json: &str) -> PassOptions {
    PassOptions::from_json(json).unwrap()
}

pub(crate) fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

fn pass(hub: &MemoryHub, options: &PassOptions, act_after: Option<usize>) -> PassReport {
    let settings = options.settings(NOW, act_after);
    block_on(run_pass(hub, &settings, Hooks::default(), None, None, None))
}

/// The stops the Hub was asked for, in order.
pub(crate) fn stopped(hub: &MemoryHub) -> Vec<String> {
    hub.calls()
        .into_iter()
        .filter(|c| c.starts_with("stop"))
        .collect()
}

fn outcomes(report: &PassReport) -> Vec<(String, Option<String>, Outcome)> {
    let mut out: Vec<_> = report
        .actions
        .iter()
        .map(|a| (a.user.clone(), a.server.clone(), a.outcome))
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// 60 users, every third idle, a few with an active named server beside an idle default one,
/// and some without servers.
fn mixed_hub() -> MemoryHub {
    let users = (0..60)
        .map(|i| {
            let name = format!("u{i:02}");
            match i % 6 {
                0 | 3 => user(&name, &[("", 900.0, Answer::Stop)]),
                1 => user(
                    &name,
                    &[("", 900.0, Answer::Stop), ("lab", 5.0, Answer::Stop)],
                ),
                2 => user(&name, &[]),
                _ => user(&name, &[("", 5.0, Answer::Stop)]),
            }
        })
        .collect();
    MemoryHub::with(users)
}

#[test]
fn acting_between_pages_neither_misses_nor_repeats_a_user() {
    let options = options(r#"{"inactive_limit": 600, "api_page_size": 7, "cull_users": true}"#);
    let first = mixed_hub();
    let reference = pass(&first, &options, Some(usize::MAX));
    for act_after in [1, 3] {
        let hub = mixed_hub();
        let report = pass(&hub, &options, Some(act_after));
        assert!(report.complete, "{:?}", report.errors);
        assert_eq!(report.users_seen, 60, "act_after {act_after}");
        assert_eq!(
            outcomes(&report),
            outcomes(&reference),
            "act_after {act_after}"
        );
        assert_eq!(
            (report.kept_active, report.skipped.len()),
            (reference.kept_active, reference.skipped.len())
        );
        let calls = hub.calls();
        let mut unique = calls.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            calls.len(),
            "a cull was asked twice: {calls:?}"
        );
    }
    // 30 idle default servers; 10 users without servers deleted, 20 whose servers all stopped.
    assert_eq!(reference.count(Outcome::Stopped, true), 30);
    assert_eq!(reference.count(Outcome::Deleted, false), 30);
}

#[test]
fn a_user_still_listed_after_its_stop_is_seen_once_and_hides_nobody() {
    for answer in [Answer::Slow, Answer::Fail] {
        let mut users: Vec<MemUser> = (0..45)
            .map(|i| user(&format!("s{i:02}"), &[("", 900.0, Answer::Stop)]))
            .collect();
        users[0].servers[0].answer = answer;
        let hub = MemoryHub::with(users);
        let report = pass(&hub, &options(r#"{"api_page_size": 10}"#), Some(1));
        assert_eq!(report.users_seen, 45, "{answer:?}");
        assert_eq!(report.count(Outcome::Stopped, true), 44, "{answer:?}");
        assert_eq!(hub.calls().len(), 45, "{answer:?}: {:?}", hub.calls());
    }
}

#[test]
fn the_cap_stops_the_idlest_even_when_acting_between_pages() {
    let users = (0..12)
        .map(|i| {
            user(
                &format!("c{i:02}"),
                &[("", 1000.0 + f64::from((i * 7) % 12), Answer::Stop)],
            )
        })
        .collect();
    let hub = MemoryHub::with(users);
    let report = pass(
        &hub,
        &options(r#"{"api_page_size": 3, "max_culls_per_pass": 3}"#),
        Some(1),
    );
    let stopped: Vec<_> = outcomes(&report).into_iter().map(|(u, _, _)| u).collect();
    // Idle times 1000 + (7i mod 12): the three largest are i = 5 (11), 10 (10), 3 (9).
    assert_eq!(stopped, ["c03", "c05", "c10"]);
    assert_eq!(report.totals.skipped.get("cap"), Some(&9));
}

#[test]
fn what_the_hub_answers_to_a_stop_is_the_outcome() {
    let hub = MemoryHub::with(vec![
        user("ok", &[("", 900.0, Answer::Stop)]),
        user("slow", &[("", 900.0, Answer::Slow)]),
        user("gone", &[("", 900.0, Answer::Gone)]),
        user("broken", &[("", 900.0, Answer::Fail)]),
    ]);
    let report = pass(&hub, &options(r#"{"cull_users": true}"#), None);
    let by_user: HashMap<_, _> = outcomes(&report)
        .into_iter()
        .map(|(u, s, o)| ((u, s.is_some()), o))
        .collect();
    let of = |u: &str, server: bool| by_user[&(u.to_owned(), server)];
    assert_eq!(of("ok", true), Outcome::Stopped);
    assert_eq!(of("slow", true), Outcome::Stopping);
    assert_eq!(of("gone", true), Outcome::Gone);
    assert_eq!(of("broken", true), Outcome::Failed);
    // Users go only once all their servers are down.
    assert_eq!(of("ok", false), Outcome::Deleted);
    assert_eq!(of("gone", false), Outcome::Deleted);
    assert_eq!(of("slow", false), Outcome::Kept);
    assert_eq!(of("broken", false), Outcome::Kept);
    assert_eq!(
        report.errors,
        ["broken: DELETE /users/x/server: the Hub answered 500"]
    );
    assert!(report
        .summary()
        .contains("2 servers stopped, 1 still stopping, 2 users deleted, 1 errors"));
}

#[test]
fn a_hub_that_cannot_list_gives_an_incomplete_pass_and_no_cull() {
    let hub = MemoryHub {
        down: true,
        ..MemoryHub::with(vec![user("a", &[("", 900.0, Answer::Stop)])])
    };
    let report = pass(&hub, &PassOptions::default(), None);
    assert!(!report.complete);
    assert!(report.errors[0].contains("503"), "{:?}", report.errors);
    assert!(hub.calls().is_empty());
}

#[test]
fn probing_keeps_busy_servers_and_culls_the_rest() {
    let hub = MemoryHub::with(vec![
        user("busy", &[("", 900.0, Answer::Stop)]),
        user("idle", &[("", 900.0, Answer::Stop)]),
        user("unreachable", &[("", 900.0, Answer::Stop)]),
        user("ancient", &[("", 99_000.0, Answer::Stop)]),
    ]);
    let work = |busy| ServerWork {
        kernels: 1,
        busy_kernels: busy,
        ..ServerWork::default()
    };
    let probe = MemoryProbe(HashMap::from([
        ("http://hub/user/busy/".to_owned(), work(1)),
        ("http://hub/user/idle/".to_owned(), work(0)),
        ("http://hub/user/ancient/".to_owned(), work(1)),
    ]));
    let memory = Mutex::new(BusyMemory::default());
    let ledger = Mutex::default();
    let tokens = ProbeTokens::default();
    let probes = Probes {
        client: &probe,
        tokens: &tokens,
        memory: &memory,
        ledger: &ledger,
        store: None,
    };
    let settings =
        options(r#"{"keep_busy_kernels": true, "busy_timeout": 90000}"#).settings(NOW, None);
    let report = block_on(run_pass(
        &hub,
        &settings,
        Hooks::default(),
        Some(&probes),
        None,
        None,
    ));
    let stopped: Vec<_> = outcomes(&report).into_iter().map(|(u, _, _)| u).collect();
    assert_eq!(stopped, ["ancient", "idle", "unreachable"]);
    let kept: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.user.as_str(), s.reason.label()))
        .collect();
    assert_eq!(kept, [("busy", "busy")]);
    let unreachable = report
        .actions
        .iter()
        .find(|a| a.user == "unreachable")
        .unwrap();
    assert!(unreachable
        .detail
        .as_deref()
        .unwrap()
        .starts_with("treated as not busy"));
    // Past the busy-timeout, the server is not asked at all.
    let ancient = report.actions.iter().find(|a| a.user == "ancient").unwrap();
    assert!(ancient.probe.is_none() && ancient.detail.as_deref().unwrap().contains("busy-timeout"));
    assert!(
        !memory.lock().unwrap().is_empty(),
        "the busy server is remembered"
    );
}

#[cfg(test)]
mod feed;
mod probe_tokens;
mod warnings;
mod work_mode;

#[test]
fn removing_stopped_servers_is_refused_on_hubs_before_3_0_and_the_pass_goes_on() {
    let hub = MemoryHub {
        old: true,
        ..MemoryHub::with(vec![user("idle", &[("", 4000.0, Answer::Stop)])])
    };
    let report = pass(
        &hub,
        &options(r#"{"inactive_limit": 3600, "remove_stopped_named_servers": 86400}"#),
        None,
    );
    assert!(report.complete);
    assert!(
        report.errors[0].contains("needs JupyterHub 3.0 or later")
            && report.errors[0].contains("2.3.1"),
        "{:?}",
        report.errors
    );
    assert_eq!(hub.calls(), ["stop idle/"]);
}
