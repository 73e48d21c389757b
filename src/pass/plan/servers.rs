//! One server of a listed user: judged by the policy (by its work, with `--idle-by=work`), shown
//! on the page, and passed through the warning gate.

use serde_json::value::RawValue;

use crate::models::Server;
use crate::policy::{assess_server, default_arbiter, idle_rule_applies, KeepReason};
use crate::reasons::KeepKind;
use crate::signals::IdleBy;
use crate::state::{Key, Kind};
use crate::stretch::Stretch;
use crate::warnings::server_due_in;
use crate::work::ServerKey;

use super::super::act::log_cull;
use super::super::jobs::{ServerFacts, ServerJob};
use super::super::judge::decide;
use super::super::probing::inactive_before_probes;
use super::super::report::log_name;
use super::super::stopped::judge_stopped;
use super::super::warnings::Candidate;
use super::super::work_mode::{inactive_by_work, name_the_work};
use super::super::LOG;
use super::Planner;

impl Planner<'_> {
    /// One of a user's servers: a job, a reason to keep it (it is alive), or `None` for a
    /// stopped server that stays as it is.
    pub(super) async fn plan_server(
        &mut self,
        user: &str,
        name: &str,
        raw: &RawValue,
        limit: f64,
        user_json: &str,
    ) -> Option<Result<ServerJob, KeepReason>> {
        let server: Server = match serde_json::from_str(raw.get()) {
            Ok(server) => server,
            Err(e) => {
                self.report.servers_seen += 1;
                let log_name = log_name(user, name);
                log::warn!(target: LOG, "Not culling server {log_name}: its model does not parse: {e}");
                return Some(Err(KeepReason::Kept(KeepKind::BadModel)));
            }
        };
        if server.stopped {
            // Neither seen as a server nor alive: only a candidate for removal.
            return self
                .plan_stopped(user, name, &server, raw, user_json)
                .map(Ok);
        }
        self.report.servers_seen += 1;
        if let Some(probes) = self.probes {
            probes.tokens.listed(user, name);
        }
        let (limit, limit_from) = self
            .settings
            .policy
            .limit_of_server(server.profile(), limit);
        if self.feed.keep_alive(user, name).is_some() {
            // Listed, ready or not (a Hub restarting checks its servers): its keep-alive stays.
            self.feed.saw_kept(user, name);
        }
        let decision = match self
            .judge_server(user, name, &server, raw, limit, user_json)
            .await
        {
            Ok((decision, facts)) => {
                self.feed.record_view(
                    &mut self.report,
                    (user, name, &server),
                    (limit, limit_from),
                    &facts,
                );
                self.gate_server((user, name, raw), decision, facts, user_json)
            }
            Err(keep) => Err(keep),
        };
        if let Ok(job) = &decision {
            if job.probe_at.is_none() {
                log_cull(user, job, self.settings.dry_run);
            }
        }
        Some(decision)
    }

    /// `Err` for a server skipped before it is judged (pending, unreadable); otherwise the
    /// policy's decision, and what warnings need to know.
    async fn judge_server(
        &self,
        user: &str,
        name: &str,
        server: &Server,
        raw: &RawValue,
        limit: f64,
        user_json: &str,
    ) -> Result<(Result<ServerJob, KeepReason>, ServerFacts), KeepReason> {
        let now = self.settings.now;
        let log_name = log_name(user, name);
        let mut idleness = assess_server(server, now).inspect_err(|keep| match keep {
            KeepReason::Pending(what) => {
                log::warn!(target: LOG, "Not culling server {log_name} with pending {what}");
            }
            KeepReason::Kept(KeepKind::NotReady) => {
                log::warn!(target: LOG, "Not culling not-ready not-pending server {log_name}");
            }
            KeepReason::Kept(KeepKind::BadTimestamp) => {
                log::warn!(target: LOG, "Not culling server {log_name}: a timestamp does not parse");
            }
            _ => {}
        })?;
        let mut stretch =
            Stretch::by_hub(server.last_activity.as_deref(), server.started.as_deref());
        let hub_inactive = idleness.inactive;
        // With --idle-by=work, the server's key in the pass's answers and the ledger.
        let work_key = self
            .probes
            .filter(|_| self.settings.work.by_work())
            .map(|_| ServerKey::new(user, name));
        let mut judged_by_work = false;
        match (self.probes, idleness.inactive, work_key.as_ref()) {
            (Some(probes), _, Some(key)) => {
                (idleness.inactive, judged_by_work) =
                    inactive_by_work(probes, &self.work, (key, server), now, hub_inactive);
            }
            (Some(probes), Some(inactive), None) => {
                idleness.inactive = Some(inactive_before_probes(probes, user, name, now, inactive));
            }
            _ => {}
        }
        if let Some(inactive) = idleness.inactive {
            // By when it began, so that the proxy's stamps of the culler's own probes, looked
            // through above, leave the stretch (and its warning) as it was.
            stretch = Stretch::since(now - inactive, server.started.as_deref());
        }
        let kept = self.feed.keep_alive(user, name);
        if let Some(kept) = &kept {
            // From the moment it was kept, a new stretch: an earlier warning allows no cull.
            stretch = stretch.kept_since(kept.set_at);
        }
        let kept_for = kept.as_ref().map(|k| k.until - now).filter(|&s| s > 0.0);
        let policy = &self.settings.policy;
        let verdict = match (
            idle_rule_applies(policy, name, &idleness),
            idleness.inactive,
        ) {
            (true, Some(inactive)) => Some(match self.arbiter {
                Some(hook) => hook.allow(inactive, limit, raw.get(), user_json).await,
                None => default_arbiter(limit, inactive),
            }),
            _ => None,
        };
        let facts = ServerFacts {
            stretch,
            due: if self.warnings.warns_for(Kind::Server).is_some() || self.feed.shown() {
                server_due_in(policy, limit, name, &idleness, kept_for)
            } else {
                None
            },
            inactive: idleness.inactive,
            kept_until: kept.as_ref().map(|k| k.until),
            idle_by: if judged_by_work {
                IdleBy::Work
            } else {
                IdleBy::Hub
            },
        };
        // With --idle-by=work a server answered this pass is judged already: no second probe.
        let answered = work_key
            .as_ref()
            .is_some_and(|key| self.work.answered.contains_key(key));
        let decision = decide(
            self.settings,
            self.probes.is_some() && !answered,
            (user, name, server),
            (&idleness, hub_inactive),
            limit,
            verdict,
        );
        let decision = match work_key.as_ref() {
            Some(key) => name_the_work(&self.work, key, decision),
            None => decision,
        };
        let decision = match kept {
            Some(kept) => self
                .feed
                .hold_for_keep_alive(&log_name, &kept, &idleness, decision),
            None => decision,
        };
        Ok((decision, facts))
    }

    /// A server's decision after the warning gate: a cull that is due may have to wait.
    fn gate_server(
        &mut self,
        (user, name, raw): (&str, &str, &RawValue),
        decision: Result<ServerJob, KeepReason>,
        facts: ServerFacts,
        user_json: &str,
    ) -> Result<ServerJob, KeepReason> {
        let candidate = Candidate {
            key: Key {
                kind: Kind::Server,
                user: user.to_owned(),
                server: name.to_owned(),
            },
            stretch: facts.stretch,
            due_now: decision.as_ref().ok().map(|job| job.reason),
            due: facts.due,
            inactive: facts.inactive,
            user_json,
            server_json: Some(raw.get()),
        };
        let gated = self.warnings.gate(candidate, &mut self.report);
        decision.and_then(|job| gated.map(|()| job))
    }

    /// A stopped named server: a removal job once it has been stopped long enough (and warned,
    /// with warnings on).
    fn plan_stopped(
        &mut self,
        user: &str,
        name: &str,
        server: &Server,
        raw: &RawValue,
        user_json: &str,
    ) -> Option<ServerJob> {
        let (decision, facts) = judge_stopped(self.settings, name, server)?;
        match self.gate_server((user, name, raw), decision, facts, user_json) {
            Ok(job) => {
                log_cull(user, &job, self.settings.dry_run);
                Some(job)
            }
            Err(keep) => {
                if matches!(
                    keep,
                    KeepReason::Warned { .. } | KeepReason::Kept(KeepKind::NotWarned)
                ) {
                    self.keep(user, Some(name), keep);
                }
                None
            }
        }
    }
}
