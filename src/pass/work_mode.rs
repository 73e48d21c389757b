//! `--idle-by=work` in a pass: before a page's users are planned, ask the servers that could be
//! due by the work last seen (see [`crate::ledger`]), concurrently; then judge each server by
//! the work seen. A server that cannot be asked is judged by the Hub's `last_activity`, which
//! counts an open tab as activity: doubt keeps a server, it never makes one idle.

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::http::HttpError;
use crate::hub::HubApi;
use crate::ledger::{work_at, WorkLedger};
use crate::models::{Server, User};
use crate::policy::KeepReason;
use crate::probe::server_base;
use crate::reasons::KeepKind;
use crate::signals::{recent_work, Signal};
use crate::timestamp::{format_duration, parse_timestamp};
use crate::work::{ServerKey, ServerWork};

use super::probing::Probes;
use super::report::{log_name, ProbeRecord, Skip};
use super::{PassSettings, LOG};

/// What this pass learnt of servers' work, by server: only the servers asked this pass.
#[derive(Debug, Default)]
pub(super) struct PassWork {
    /// Asked this pass, and answered: the signal that its answer showed working, if any, and
    /// the answer.
    pub answered: HashMap<ServerKey, (Option<&'static Signal>, ServerWork)>,
    /// Asked this pass (or unaskable), and no answer: judged by the Hub.
    pub unanswered: HashSet<ServerKey>,
}

/// A server to ask: its key, owner and name, `started`, idle limit and address.
struct Due {
    key: ServerKey,
    user: String,
    server: String,
    name: String,
    started: f64,
    limit: f64,
    base: Option<String>,
}

/// The servers of `users` that must be asked before they are judged.
fn due_servers(
    settings: &PassSettings,
    ledger: &mut WorkLedger,
    users: &[Result<User, serde_json::Error>],
) -> Vec<Due> {
    let policy = &settings.policy;
    let window = settings.warn_before;
    let mut due = Vec::new();
    for user in users.iter().flatten() {
        // Users no rule may touch are not asked about (see `judge::user_gate`).
        if policy.uses_groups() && user.groups.is_none() {
            continue;
        }
        let groups = user.groups.as_deref().unwrap_or_default();
        if policy.is_exempt(&user.name, groups) {
            continue;
        }
        let Some(servers) = &user.servers else {
            continue;
        };
        let user_limit = policy.server_limit(groups);
        for (name, raw) in servers {
            let Ok(server) = serde_json::from_str::<Server>(raw.get()) else {
                continue;
            };
            let pending = server.pending.as_deref().is_some_and(|p| !p.is_empty());
            let Some(started) = started_at(&server) else {
                continue;
            };
            let selected = if name.is_empty() {
                policy.cull_default_servers
            } else {
                policy.cull_named_servers
            };
            // Servers the idle rule never stops need no answer (`--max-age` asks nothing).
            if server.stopped || pending || !server.is_ready() || !selected {
                continue;
            }
            let (limit, _) = policy.limit_of_server(server.profile(), user_limit);
            let key = ServerKey::new(&user.name, name);
            if ledger
                .seen(&key, started)
                .ask_due(limit, window, settings.now)
            {
                due.push(Due {
                    key,
                    user: user.name.clone(),
                    server: name.clone(),
                    name: log_name(&user.name, name),
                    started,
                    limit,
                    base: server_base(
                        settings.server_url.as_deref(),
                        server.url.as_deref(),
                        server.full_url.as_deref(),
                    ),
                });
            }
        }
    }
    due
}

/// The Hub's `started` of a server, when it says and it parses.
pub(super) fn started_at(server: &Server) -> Option<f64> {
    parse_timestamp(server.started.as_deref()?).ok()
}

/// What asking one server gave: `None` when it could not be asked (no address).
type Asked = (u64, Due, Option<Result<ServerWork, HttpError>>);

/// The questions under way for pages listed and not yet planned. The listing goes on while a
/// page waits for its answers, so servers that use their whole deadline on different pages
/// hold up the pass once, not once per page. Whatever the pass awaits meanwhile (a page of the
/// listing, the planning of a page, warnings) is awaited [`Asking::during`] the questions, so
/// that no answer waits unread while its deadline runs.
#[derive(Default)]
pub(super) struct Asking<'a> {
    inflight: FuturesUnordered<BoxFuture<'a, Asked>>,
    /// Questions still open, by page (its number in the listing).
    open: HashMap<u64, usize>,
    /// Answers come in and not yet recorded in the pass's answers.
    arrived: Vec<Asked>,
}

impl<'a> Asking<'a> {
    /// Ask the servers of page `page` (its `users`) that could be due.
    pub fn start(
        &mut self,
        (probes, hub, settings): (&'a Probes<'a>, &'a dyn HubApi, &'a PassSettings),
        page: u64,
        users: &[Result<User, serde_json::Error>],
    ) {
        let due = due_servers(settings, &mut probes.lock_ledger(), users);
        if due.is_empty() {
            return;
        }
        self.open.insert(page, due.len());
        let (rules, now) = (settings.work, settings.now);
        for due in due {
            self.inflight.push(Box::pin(async move {
                let result = match &due.base {
                    Some(base) => Some(
                        probes
                            .ask(
                                hub,
                                (&due.user, &due.server, base),
                                rules.questions(now - due.limit),
                                now,
                            )
                            .await,
                    ),
                    None => None,
                };
                (page, due, result)
            }));
        }
    }

    /// `work`'s output, taking in the answers that come meanwhile.
    pub async fn during<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            if self.inflight.is_empty() {
                return work.await;
            }
            tokio::select! {
                biased;
                out = &mut work => return out,
                Some(asked) = self.inflight.next() => self.arrive(asked),
            }
        }
    }

    /// Wait until every question of page `page` is answered, and record what has come in.
    pub async fn finish(
        &mut self,
        page: u64,
        probes: &Probes<'_>,
        settings: &PassSettings,
        pass: &mut PassWork,
    ) {
        while self.open.contains_key(&page) {
            let Some(asked) = self.inflight.next().await else {
                break;
            };
            self.arrive(asked);
        }
        for (_, due, result) in self.arrived.drain(..) {
            record(probes, settings, due, result, pass);
        }
    }

    fn arrive(&mut self, asked: Asked) {
        if let Some(open) = self.open.get_mut(&asked.0) {
            *open -= 1;
            if *open == 0 {
                self.open.remove(&asked.0);
            }
        }
        self.arrived.push(asked);
    }
}

/// What asking one server showed, in the ledger and this pass's answers.
fn record(
    probes: &Probes<'_>,
    settings: &PassSettings,
    due: Due,
    result: Option<Result<ServerWork, HttpError>>,
    pass: &mut PassWork,
) {
    let (rules, now) = (settings.work, settings.now);
    match result {
        Some(Ok(work)) => {
            let seen = probes.lock_ledger().record(
                &due.key,
                due.started,
                work_at(&rules, &work, now),
                now,
            );
            log::debug!(
                target: LOG,
                "Asked server {} what it runs: {}; idle for {} by its work",
                due.name, work.summary(), format_duration(Some(seen.idle_for(now)))
            );
            let working = rules
                .keeping(&work)
                .or_else(|| (seen.idle_for(now) < due.limit).then_some(&recent_work::SIGNAL));
            pass.answered.insert(due.key, (working, work));
        }
        Some(Err(e)) => {
            log::warn!(
                target: LOG,
                "Cannot ask server {} what it runs ({e}); judging it by the Hub's last activity",
                due.name
            );
            pass.unanswered.insert(due.key);
        }
        None => {
            log::warn!(
                target: LOG,
                "Cannot ask server {} what it runs: the Hub gives no full URL for it (set --server-url); \
                 judging it by the Hub's last activity",
                due.name
            );
            pass.unanswered.insert(due.key);
        }
    }
}

/// How long the server `key` has been idle, and whether that is by its work: by the Hub's
/// count (`hub_inactive`) when it could not be asked this pass or its start is unknown.
pub(super) fn inactive_by_work(
    probes: &Probes<'_>,
    pass: &PassWork,
    (key, server): (&ServerKey, &Server),
    now: f64,
    hub_inactive: Option<f64>,
) -> (Option<f64>, bool) {
    match started_at(server) {
        Some(started) if !pass.unanswered.contains(key) => (
            Some(probes.lock_ledger().seen(key, started).idle_for(now)),
            true,
        ),
        _ => (hub_inactive, false),
    }
}

/// A decision with this pass's answers: why a server kept as active is kept (the work its
/// answer showed, or that it could not be asked and the Hub saw it active), and for a cull,
/// what the answer showed.
pub(super) fn name_the_work(
    pass: &PassWork,
    key: &ServerKey,
    decision: Result<super::jobs::ServerJob, KeepReason>,
) -> Result<super::jobs::ServerJob, KeepReason> {
    match decision {
        Err(KeepReason::Kept(KeepKind::Active)) if pass.unanswered.contains(key) => {
            Err(KeepReason::Kept(KeepKind::Unanswered))
        }
        Err(KeepReason::Kept(KeepKind::Active)) => match pass.answered.get(key) {
            Some((Some(signal), _)) => Err(KeepReason::Working(signal)),
            _ => Err(KeepReason::Kept(KeepKind::Active)),
        },
        Ok(mut job) => {
            if let Some((_, work)) = pass.answered.get(key) {
                job.probe = Some(Box::new(ProbeRecord {
                    work: Some(work.clone()),
                    error: None,
                }));
            }
            Ok(job)
        }
        other => other,
    }
}

/// A kept server's skip, with what this pass's question of it showed.
pub(super) fn skip_with_answer(pass: &PassWork, user: &str, name: &str, keep: KeepReason) -> Skip {
    let answer = matches!(keep, KeepReason::Working(_))
        .then(|| pass.answered.get(&ServerKey::new(user, name)))
        .flatten();
    let skip = Skip::new(user, Some(name), keep);
    match answer {
        Some((_, work)) => skip
            .with_detail(Some(work.summary()))
            .with_probe(Some(Box::new(ProbeRecord {
                work: Some(work.clone()),
                error: None,
            }))),
        // The reason's own detail (a pending spawn's kind) stays.
        None => skip,
    }
}
