//! Listing the Hub's users page by page and planning what to do with each, acting on the plan
//! between pages once enough of it waits (see [`super::ACT_AFTER`]).

use std::time::Instant;

use crate::http::HttpError;
use crate::hub::{parse_version, HubApi, UserState};
use crate::listing::RecentNames;
use crate::models::User;
use crate::policy::{decide_user, user_idleness, CullReason, KeepReason, UserFacts};
use crate::reasons::KeepKind;
use crate::scopes::{self, Need};

use super::act::act;
use super::feed::FeedRecorder;
use super::jobs::{apply_cap, Acted, Listing, UserJob};
use super::judge::user_gate;
use super::probing::{probe_candidates, Probes};
use super::report::{PassReport, Skip};
use super::warnings::{Candidate, WarningGate};
use super::work_mode::{skip_with_answer, PassWork};

mod reading;
mod servers;
use super::{Arbiter, PassSettings, LOG, STATE_FILTER_SINCE, STOPPED_SINCE};
use crate::state::{Key, Kind};
use crate::stretch::Stretch;
use crate::warnings::user_due_in;

pub(super) struct Planner<'a> {
    pub hub: &'a dyn HubApi,
    pub settings: &'a PassSettings,
    pub arbiter: Option<&'a dyn Arbiter>,
    /// The `cull_user_hook`, asked before an idle user is deleted (`server_json` is empty).
    pub user_arbiter: Option<&'a dyn Arbiter>,
    pub probes: Option<&'a Probes<'a>>,
    pub started: Instant,
    pub report: PassReport,
    /// Planned and not yet acted on.
    pub jobs: Vec<UserJob>,
    /// With `--max-culls-per-pass`, the idlest jobs so far, acted on when the pass ends.
    pub held: Vec<UserJob>,
    /// With `--max-culls-per-pass`, every stop and deletion wanted this pass.
    pub wanted: usize,
    /// The listing being read.
    pub listing: Listing,
    /// The warnings this pass gives, and the gate due servers and users pass.
    pub warnings: WarningGate<'a>,
    /// Listings carry stopped servers (`--remove-stopped-named-servers`, JupyterHub 3.0+).
    pub include_stopped: bool,
    /// What the page's board shows of this pass, and the keep-alives it honours.
    pub feed: FeedRecorder<'a>,
    /// With `--idle-by=work`, the servers asked this pass.
    pub work: PassWork,
}

impl Planner<'_> {
    /// List and plan; `false` if the listing could not be completed.
    pub async fn list_all(&mut self) -> bool {
        let version = match self.hub.version().await {
            Ok(version) => version,
            Err(e) => {
                self.fail(&e, "cannot read the Hub's version");
                return false;
            }
        };
        let state_filter = parse_version(&version).map_or_else(
            || {
                log::warn!(target: LOG, "The Hub reports no usable version ({version:?}); assuming a current Hub");
                true
            },
            |v| v >= STATE_FILTER_SINCE,
        );
        if self.settings.policy.remove_stopped_named_servers > 0.0 {
            self.include_stopped = parse_version(&version).is_none_or(|v| v >= STOPPED_SINCE);
            if !self.include_stopped {
                let message = format!(
                    "--remove-stopped-named-servers needs JupyterHub 3.0 or later (include_stopped_servers); \
                     this Hub is {version}, so no stopped server is removed"
                );
                log::error!(target: LOG, "{message}");
                self.report.record_error(message);
            }
        }
        self.report.hub_version = Some(version);
        // Users whose servers are all stopped are only in `state=inactive`.
        if (self.settings.policy.cull_users || self.include_stopped) && state_filter {
            if let Err(e) = self.list(Some(UserState::Inactive)).await {
                self.fail(&e, "cannot list users without servers");
                return false;
            }
        }
        if let Err(e) = self.list(state_filter.then_some(UserState::Ready)).await {
            self.fail(&e, "cannot list users with ready servers");
            return false;
        }
        true
    }

    fn fail(&mut self, error: &HttpError, what: &str) {
        let message = format!("{what}: {error}");
        if error.http_status() == Some(403) {
            log::error!(
                target: LOG,
                "{message}. The culler's token needs the scopes {} (with --cull-users also {})",
                scopes::listed(Need::Always),
                scopes::listed(Need::CullUsers),
            );
        } else {
            log::warn!(target: LOG, "{message}; the next pass will try again");
        }
        self.report.record_error(message);
    }

    /// Probe and act on the jobs planned so far (with a cap, keep the idlest of them for the
    /// end of the pass); `last` acts on those too.
    pub async fn flush(&mut self, last: bool) -> Acted {
        // Warnings first: they are recorded before anything they allow is done.
        self.deliver_warnings().await;
        let mut jobs = std::mem::take(&mut self.jobs);
        let settings = self.settings;
        let keep_alives = self.feed.keep_alives();
        if let Some(probes) = self.probes {
            probe_candidates(
                probes,
                self.hub,
                settings,
                self.started,
                &mut jobs,
                &mut self.report,
            )
            .await;
        }
        let Some(cap) = settings.max_culls else {
            return act(
                self.hub,
                settings,
                keep_alives,
                self.listing,
                jobs,
                &mut self.report,
            )
            .await;
        };
        // The idlest `cap` need every candidate seen; keeping only the idlest so far gives the
        // same choice (the sort is stable) in memory bounded by the cap.
        self.wanted += jobs.iter().map(UserJob::culls).sum::<usize>();
        self.held.append(&mut jobs);
        let held: usize = self.held.iter().map(UserJob::culls).sum();
        if !last {
            if held > cap.saturating_mul(2) {
                apply_cap(cap, &mut self.held, &mut self.report);
            }
            return Acted::default();
        }
        apply_cap(cap, &mut self.held, &mut self.report);
        if self.wanted > cap {
            log::warn!(
                target: LOG,
                "Cull cap reached: {cap} of {} stops and deletions this pass (--max-culls-per-pass); the rest wait for the next pass",
                self.wanted
            );
        }
        let held = std::mem::take(&mut self.held);
        act(
            self.hub,
            settings,
            keep_alives,
            self.listing,
            held,
            &mut self.report,
        )
        .await
    }

    pub(super) fn keep(&mut self, user: &str, server: Option<&str>, reason: KeepReason) {
        self.report.record_skip(Skip::new(user, server, reason));
    }

    /// Plan what to do with a listed user; `false` if it was listed just before (the listing
    /// moved back after acting) and so is not planned again.
    async fn plan_user(
        &mut self,
        user: Result<User, serde_json::Error>,
        recent: &mut RecentNames,
    ) -> bool {
        let mut user: User = match user {
            Ok(user) => user,
            Err(e) => {
                log::warn!(target: LOG, "Skipping a user the Hub described in a form that does not parse: {e}");
                self.report.record_skip(
                    Skip::new("", None, KeepReason::Kept(KeepKind::BadModel))
                        .with_detail(Some(e.to_string())),
                );
                return true;
            }
        };
        if !recent.record(&user.name) {
            return false;
        }
        self.report.users_seen += 1;
        let groups = user.groups.clone().unwrap_or_default();
        if let Some(keep) = user_gate(&self.settings.policy, &user, &groups) {
            self.keep(&user.name, None, keep);
            return true;
        }
        let Some(servers) = user.servers() else {
            log::warn!(
                target: LOG,
                "Not culling user {}: the Hub sent no server information (does the token have read:servers?)",
                user.name
            );
            self.keep(&user.name, None, KeepReason::Kept(KeepKind::NoActivityData));
            return true;
        };
        let policy = &self.settings.policy;
        let limit = policy.server_limit(&groups);
        let user_json = if self.arbiter.is_some()
            || self.user_arbiter.is_some()
            || self.warnings.wants_models()
        {
            user.hook_model()
        } else {
            String::new()
        };
        let mut to_stop = Vec::new();
        let mut alive = 0;
        let mut stays = false;
        for (name, raw) in servers.0 {
            match self
                .plan_server(&user.name, &name, &raw, limit, &user_json)
                .await
            {
                Some(Ok(job)) => to_stop.push(job),
                Some(Err(keep)) => {
                    alive += 1;
                    // Every reason but these is given to a ready server, which keeps its user in
                    // `state=ready`.
                    stays |= !matches!(
                        keep,
                        KeepReason::Pending(_)
                            | KeepReason::Kept(
                                KeepKind::NotReady | KeepKind::BadTimestamp | KeepKind::BadModel
                            )
                    );
                    let skip = skip_with_answer(&self.work, &user.name, &name, keep);
                    self.report.record_skip(skip);
                }
                None => {}
            }
        }
        let delete = if policy.cull_users {
            self.plan_user_deletion(&user, &groups, alive, &user_json)
                .await
        } else {
            None
        };
        if to_stop.is_empty() && delete.is_none() {
            return true;
        }
        // A pass may hold many jobs: no spare capacity (a Vec grows to four at its first push).
        to_stop.shrink_to_fit();
        self.jobs.push(UserJob {
            user: user.name,
            servers: to_stop,
            delete,
            stays,
            listed_in: self.listing,
        });
        true
    }

    /// Whether to delete the user after its servers are stopped (`alive` of them are kept).
    async fn plan_user_deletion(
        &mut self,
        user: &User,
        groups: &[String],
        alive: usize,
        user_json: &str,
    ) -> Option<(CullReason, Option<f64>)> {
        let policy = &self.settings.policy;
        let now = self.settings.now;
        let facts = UserFacts {
            admin: user.admin.unwrap_or(false),
            created: user.created.as_deref(),
            last_activity: user.last_activity.as_deref(),
        };
        let idleness = user_idleness(&facts, now);
        let limit = policy.user_limit(groups);
        let mut decision = decide_user(policy, limit, &facts, alive, now);
        if let (Ok(CullReason::Idle), Some(hook), Some(inactive)) =
            (&decision, self.user_arbiter, idleness.inactive)
        {
            // As for servers, max-age deletes whatever the hook says.
            if !hook.allow(inactive, limit, "", user_json).await {
                decision = Err(KeepReason::Kept(KeepKind::Arbiter));
            }
        }
        let decision = if alive == 0 && self.warnings.warns_for(Kind::User).is_some() {
            let candidate = Candidate {
                key: Key {
                    kind: Kind::User,
                    user: user.name.clone(),
                    server: String::new(),
                },
                stretch: Stretch::by_hub(user.last_activity.as_deref(), user.created.as_deref()),
                due_now: decision.as_ref().ok().copied(),
                due: user_due_in(policy, limit, &facts, now),
                inactive: idleness.inactive,
                user_json,
                server_json: None,
            };
            let gated = self.warnings.gate(candidate, &mut self.report);
            decision.and_then(|reason| gated.map(|()| reason))
        } else {
            decision
        };
        match decision {
            Ok(reason) => Some((reason, idleness.inactive)),
            Err(keep) => {
                log::debug!(
                    target: LOG,
                    "Not culling user {} ({}; created: {}, last active: {})",
                    user.name,
                    keep.label(),
                    user.created.as_deref().unwrap_or("unknown"),
                    user.last_activity.as_deref().unwrap_or("unknown"),
                );
                if !matches!(keep, KeepReason::ServersAlive(_)) {
                    self.keep(&user.name, None, keep);
                }
                None
            }
        }
    }

    async fn deliver_warnings(&mut self) {
        let concurrency = self.hub.concurrency();
        self.warnings
            .deliver(&mut self.report, concurrency, self.started)
            .await;
    }
}
