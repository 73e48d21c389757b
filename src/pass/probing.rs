//! Asking idle candidates what they run before they are stopped (`--keep-busy-kernels`,
//! `--keep-connected`), and keeping those whose work keeps them.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures::stream::StreamExt;

use crate::http::HttpError;
use crate::hub::HubApi;
use crate::ledger::{work_at, WorkLedger};
use crate::policy::CullReason;
use crate::policy::KeepReason;
use crate::probe::{Questions, WorkProbe, PROBES_IN_FLIGHT};
use crate::probe_tokens::{revoke, ProbeTokens};
use crate::reasons::KeepKind;
use crate::signals::recent_work;
use crate::signals::WorkRules;
use crate::state::StateDb;
use crate::timestamp::format_duration;
use crate::work::{BusyMemory, KeptBusy, ServerKey, ServerWork};

use super::act::{idle_seconds, log_cull};
use super::jobs::{ServerJob, UserJob};
use super::report::{log_name, PassReport, ProbeRecord, Skip};
use super::{PassSettings, LOG};

/// What probing needs beyond the settings: the client, the tokens it asks servers with, the
/// servers kept busy so far, and with `--idle-by=work` the work seen of each running server
/// (these live as long as the connection, across passes).
pub struct Probes<'a> {
    pub client: &'a dyn WorkProbe,
    pub tokens: &'a ProbeTokens,
    pub memory: &'a Mutex<BusyMemory>,
    pub ledger: &'a Mutex<WorkLedger>,
    /// Where the ledger is kept across restarts.
    pub store: Option<&'a StateDb>,
}

impl Probes<'_> {
    /// Ask `user`'s server `server` at `base`, with its own probe token (made first if need be).
    pub(super) async fn ask(
        &self,
        hub: &dyn HubApi,
        (user, server, base): (&str, &str, &str),
        questions: Questions,
        now: f64,
    ) -> Result<ServerWork, HttpError> {
        let token = self.tokens.token_for(hub, user, server, now).await?;
        self.client.probe(base, &token, questions).await
    }

    /// Delete the probe tokens of servers that a complete pass no longer lists.
    pub(super) async fn end_token_pass(&self, hub: &dyn HubApi, complete: bool) {
        let ended = self.tokens.end_pass(complete);
        if !ended.is_empty() {
            log::debug!(target: LOG, "Deleting {} probe tokens of servers no longer running", ended.len());
            revoke(hub, &ended).await;
        }
    }

    pub(super) fn lock_ledger(&self) -> MutexGuard<'_, WorkLedger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read the state file's ledger once, before the first pass that needs it.
    pub(super) fn begin_work_pass(&self) {
        let mut ledger = self.lock_ledger();
        if let (false, Some(store)) = (ledger.loaded, self.store) {
            if let Err(e) = ledger.load(store) {
                log::warn!(target: LOG, "Cannot read the work seen from the state file ({e}); servers are judged from their start until they are asked");
            }
            ledger.loaded = true;
        }
        ledger.begin_pass();
    }

    pub(super) fn end_work_pass(&self, complete: bool) {
        let mut ledger = self.lock_ledger();
        ledger.end_pass(complete);
        if let Some(store) = self.store {
            if let Err(e) = ledger.save(store) {
                log::warn!(target: LOG, "Cannot write the work seen to the state file ({e}); the next pass tries again");
            }
        }
    }
}

/// Whether a server the policy chose to cull for `reason` is asked first. Only idle
/// candidates are: max-age is absolute, and active servers are never probed at all.
pub(super) fn needs_probe(rules: &WorkRules, reason: CullReason, inactive: Option<f64>) -> bool {
    rules.enabled() && reason == CullReason::Idle && !rules.past_busy_timeout(inactive)
}

pub(super) fn lock(memory: &Mutex<BusyMemory>) -> MutexGuard<'_, BusyMemory> {
    memory.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long `user`'s server `name`, `inactive` by the Hub's count at `now`, has been idle by the
/// culler's: a server kept busy before is judged from when it became idle, as the proxy's
/// stamps of the culler's own probes move the Hub's `last_activity`.
pub(super) fn inactive_before_probes(
    probes: &Probes<'_>,
    user: &str,
    name: &str,
    now: f64,
    inactive: f64,
) -> f64 {
    let since = {
        let mut memory = lock(probes.memory);
        // Usually empty: no key to build for every server of a large Hub.
        (!memory.is_empty())
            .then(|| memory.idle_since(&ServerKey::new(user, name), now - inactive))
            .flatten()
    };
    match since.filter(|since| now - since > inactive) {
        Some(since) => {
            log::debug!(
                target: LOG,
                "Server {} was kept busy before; idle for {} by the Hub's count before the culler's own probes",
                log_name(user, name), format_duration(Some(now - since))
            );
            now - since
        }
        None => inactive,
    }
}

/// Ask every idle candidate (concurrently, [`PROBES_IN_FLIGHT`] at a time) what it runs; keep
/// those whose work keeps them, and with them their users.
pub(super) async fn probe_candidates(
    probes: &Probes<'_>,
    hub: &dyn HubApi,
    settings: &PassSettings,
    started: Instant,
    jobs: &mut Vec<UserJob>,
    report: &mut PassReport,
) {
    let rules = settings.work;
    let now = settings.now;
    let candidates: Vec<_> = jobs
        .iter()
        .enumerate()
        .flat_map(|(j, job)| {
            job.servers
                .iter()
                .enumerate()
                .filter_map(move |(s, server)| {
                    let at = server.probe_at.clone()?;
                    Some((
                        j,
                        s,
                        (job.user.clone(), server.name.clone(), at),
                        server.limit,
                    ))
                })
        })
        .collect();
    let mut asking = futures::stream::iter(candidates)
        .map(|(j, s, (user, name, at), limit)| async move {
            let result = match at {
                Some(base) => Some(
                    probes
                        .ask(
                            hub,
                            (&user, &name, &base),
                            rules.questions(now - limit),
                            now,
                        )
                        .await,
                ),
                None => None,
            };
            (j, s, result)
        })
        .buffer_unordered(PROBES_IN_FLIGHT);
    let mut kept: Vec<(usize, usize)> = Vec::new();
    while let Some((j, s, result)) = asking.next().await {
        let user = jobs[j].user.clone();
        let server = &mut jobs[j].servers[s];
        match judge_probe(probes, settings, started, &user, server, result) {
            Some(reason) => {
                let summary = server
                    .probe
                    .as_ref()
                    .and_then(|p| p.work.as_ref())
                    .map(ServerWork::summary);
                report.record_skip(
                    Skip::new(&user, Some(&server.name), reason)
                        .with_detail(summary)
                        .with_probe(server.probe.take()),
                );
                kept.push((j, s));
            }
            None => log_cull(&user, server, settings.dry_run),
        }
    }
    kept.sort_unstable();
    for &(j, s) in kept.iter().rev() {
        jobs[j].servers.remove(s);
    }
    let mut touched: Vec<usize> = kept.iter().map(|&(j, _)| j).collect();
    touched.dedup();
    for j in touched {
        let job = &mut jobs[j];
        if job.delete.take().is_some() {
            log::debug!(target: LOG, "Not culling user {}: a server of it is kept for its work", job.user);
            report.record_skip(
                Skip::new(&job.user, None, KeepReason::ServersAlive(1))
                    .with_detail(Some("a server is kept for its work".into())),
            );
        }
    }
    jobs.retain(|job| job.culls() > 0);
}

/// Record what asking `server` found (`None`: it could not be asked, as its address is
/// unknown); the reason to keep it, if any.
fn judge_probe(
    probes: &Probes<'_>,
    settings: &PassSettings,
    started: Instant,
    user: &str,
    server: &mut ServerJob,
    result: Option<Result<ServerWork, HttpError>>,
) -> Option<KeepReason> {
    let name = log_name(user, &server.name);
    let now = settings.now;
    match result {
        None => {
            log::error!(
                target: LOG,
                "Not culling server {name}: it cannot be asked what it runs, because the Hub gives no full URL \
                 for it. Set --server-url to the proxy's address (or JupyterHub.public_url)"
            );
            Some(KeepReason::Kept(KeepKind::NoServerUrl))
        }
        Some(Ok(work)) if settings.work.by_work() => {
            let keep = judge_work(probes, settings, user, server, &work);
            server.probe = Some(Box::new(ProbeRecord {
                work: Some(work),
                error: None,
            }));
            keep
        }
        Some(Err(e)) if settings.work.by_work() => {
            server.probe = Some(Box::new(ProbeRecord {
                work: None,
                error: Some(e.to_string()),
            }));
            if server.hub_inactive.is_some_and(|i| i >= server.limit) {
                log::warn!(
                    target: LOG,
                    "Cannot ask server {name} what it runs ({e}); the Hub has not seen it active for longer than its limit either"
                );
                server.note = Some(format!("not asked ({e}); idle by the Hub's count too"));
                server.inactive = server.hub_inactive;
                None
            } else {
                log::warn!(
                    target: LOG,
                    "Not culling server {name}: it cannot be asked what it runs ({e}), and the Hub has seen it active"
                );
                Some(KeepReason::Kept(KeepKind::Unanswered))
            }
        }
        Some(Ok(work)) => {
            let keep = settings.work.keeping(&work).map(KeepReason::Working);
            let summary = work.summary();
            if let Some(reason) = &keep {
                log::info!(
                    target: LOG,
                    user = user, server = server.name.as_str(), action = "keep-server",
                    reason = reason.label(), idle_seconds = idle_seconds(server.inactive).as_str();
                    "Not culling server {name} ({}), as it is {}: {summary}", server.why(), reason.label()
                );
                lock(probes.memory).remember(
                    ServerKey::new(user, &server.name),
                    KeptBusy {
                        idle_since: now - server.inactive.unwrap_or(0.0),
                        probed_until: now + started.elapsed().as_secs_f64(),
                    },
                );
            }
            server.probe = Some(Box::new(ProbeRecord {
                work: Some(work),
                error: None,
            }));
            keep
        }
        Some(Err(e)) => {
            log::warn!(
                target: LOG,
                "Cannot ask server {name} what it runs ({e}); treating it as not busy"
            );
            server.note = Some(format!("treated as not busy: {e}"));
            server.probe = Some(Box::new(ProbeRecord {
                work: None,
                error: Some(e.to_string()),
            }));
            None
        }
    }
}

/// With `--idle-by=work`: remember what the probe saw, and keep the server if it, or work seen
/// before, is within the limit.
fn judge_work(
    probes: &Probes<'_>,
    settings: &PassSettings,
    user: &str,
    server: &mut ServerJob,
    work: &ServerWork,
) -> Option<KeepReason> {
    let now = settings.now;
    let rules = &settings.work;
    let idle = server.started.map(|started| {
        probes
            .lock_ledger()
            .record(
                &ServerKey::new(user, &server.name),
                started,
                work_at(rules, work, now),
                now,
            )
            .idle_for(now)
    });
    let keep = rules.keeping(work).or_else(|| {
        idle.is_some_and(|idle| idle < server.limit)
            .then_some(&recent_work::SIGNAL)
    });
    if let Some(idle) = idle {
        server.inactive = Some(idle);
    }
    let name = log_name(user, &server.name);
    if let Some(signal) = keep {
        log::info!(
            target: LOG,
            user = user, server = server.name.as_str(), action = "keep-server",
            reason = signal.label, idle_seconds = idle_seconds(server.inactive).as_str();
            "Not culling server {name}, as it is {}: {}", signal.label, work.summary()
        );
    }
    keep.map(KeepReason::Working)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::tests::BUSY;

    #[test]
    fn only_idle_candidates_within_the_busy_timeout_are_probed() {
        let rules = WorkRules {
            busy_timeout: 7200.0,
            ..BUSY
        };
        assert!(needs_probe(&rules, CullReason::Idle, Some(3600.0)));
        assert!(!needs_probe(&rules, CullReason::Idle, Some(7200.0)));
        assert!(!needs_probe(&rules, CullReason::MaxAge, Some(3600.0)));
        assert!(!needs_probe(
            &WorkRules::default(),
            CullReason::Idle,
            Some(3600.0)
        ));
        // Without a busy-timeout there is no bound.
        assert!(needs_probe(&BUSY, CullReason::Idle, Some(1e9)));
        assert!(!BUSY.past_busy_timeout(Some(1e9)));
    }
}
