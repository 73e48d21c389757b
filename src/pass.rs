//! One culling pass: list, decide, act.
//!
//! The pass acts on what it has planned whenever [`PassSettings::act_after`] stops and
//! deletions are waiting at the end of a page, and on the rest when it has listed everything, so
//! memory grows with neither the Hub nor the work (a small Hub's pass lists everything first).
//! Acting removes listed users from the Hub's `state=ready` (or `state=inactive`) set, which
//! moves later users to lower offsets; [`crate::listing`] says where the next page starts so
//! that no user slides past unseen, and recognises the users read twice. Acting is concurrent
//! across users, bounded by the client's `concurrency`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use futures::future::FutureExt;
use futures::stream::StreamExt;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::hub::{parse_version, DeleteOutcome, HubClient, HubError, StopOutcome};
use crate::listing::{unsettled_allowance, Cursor, RecentNames};
use crate::models::{Server, User};
use crate::policy::{
    assess_server, decide_server, decide_user, default_arbiter, idle_rule_applies, user_idleness,
    CullReason, KeepReason, Policy, UserFacts,
};
use crate::probe::{server_base, ProbeClient, ProbeError};
use crate::timestamp::format_duration;
use crate::work::{work_keeps, BusyMemory, KeptBusy, ServerWork, WorkRules};

const LOG: &str = "cull_idle";
/// Hubs from 1.3 filter users by server state.
const STATE_FILTER_SINCE: (u64, u64, u64) = (1, 3, 0);
/// The Hub clamps `limit` to its `api_page_max_limit`, so this asks for its largest page.
const LARGEST_PAGE: u64 = 1_000_000;
/// Act once this many stops and deletions are planned: a few hundred kilobytes of jobs, and
/// enough of them that waiting for the last of each batch costs little.
pub const ACT_AFTER: usize = 1000;

/// A `cull_arbiter` hook: may a server idle for `inactive` seconds be culled? It is given the
/// server's model as the Hub sent it, and the user's (name, admin, groups, times) as JSON.
/// Implementations report their own failures and answer `false` for them.
pub trait Arbiter: Send + Sync {
    fn allow<'a>(
        &'a self,
        inactive: f64,
        inactive_limit: f64,
        server_json: &'a str,
        user_json: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

#[derive(Debug, Clone)]
pub struct PassSettings {
    pub policy: Policy,
    /// `None` asks for the Hub's largest page.
    pub page_size: Option<u64>,
    /// Seconds since the epoch; one "now" for the whole pass, like the reference.
    pub now: f64,
    /// Decide and report, but send no DELETE.
    pub dry_run: bool,
    /// At most this many stops and deletions in one pass; the rest wait for the next pass.
    pub max_culls: Option<usize>,
    /// Whether idle servers are asked about their kernels before they are stopped.
    pub work: WorkRules,
    /// The proxy's address for probes (`--server-url`); `None` uses the Hub's `full_url`.
    pub server_url: Option<String>,
    /// List every action and notable skip in the report, not only count them.
    pub details: bool,
    /// Act on what is planned once this many stops and deletions wait ([`ACT_AFTER`]), rather
    /// than after the whole listing; `usize::MAX` lists everything first.
    pub act_after: usize,
}

/// What probing needs beyond the settings: the client, and the servers kept busy so far
/// (which lives as long as the connection, across passes).
pub struct Probes<'a> {
    pub client: &'a ProbeClient,
    pub memory: &'a Mutex<BusyMemory>,
}

/// What a probe of a server saw, or why it saw nothing.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeRecord {
    pub work: Option<ServerWork>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub user: String,
    /// `None` for a user deletion.
    pub server: Option<String>,
    pub reason: &'static str,
    pub inactive: Option<f64>,
    /// `stopped`, `stopping`, `gone`, `deleted`, `kept` or `failed`; in a dry run `would-stop`
    /// or `would-delete`.
    pub outcome: &'static str,
    pub detail: Option<String>,
    /// What asking the server saw, when it was asked (`--keep-busy-kernels`).
    pub probe: Option<Box<ProbeRecord>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    pub user: String,
    pub server: Option<String>,
    pub reason: &'static str,
    pub detail: Option<String>,
    pub probe: Option<Box<ProbeRecord>>,
}

#[derive(Debug, Default, Serialize)]
pub struct PassReport {
    /// Every page was listed (acting may still have had errors).
    pub complete: bool,
    pub dry_run: bool,
    pub hub_version: Option<String>,
    pub users_seen: u64,
    pub servers_seen: u64,
    pub actions: Vec<Action>,
    /// Why servers and users were kept, except the common "active" and "not-selected", which
    /// are only counted, so the report does not grow with the size of the Hub.
    pub skipped: Vec<Skip>,
    pub kept_active: u64,
    pub kept_not_selected: u64,
    /// The first [`MAX_ERRORS`] error messages; `errors_total` counts them all.
    pub errors: Vec<String>,
    pub errors_total: u64,
    /// Failed requests to the Hub during the pass (each retry counts), by HTTP status or by
    /// `timeout`, `connect`, `transport`, `decode`. A 404 to a stop is counted here too.
    pub request_errors: BTreeMap<String, u64>,
    /// Every action and skip counted, whether or not `actions`/`skipped` list them:
    /// `servers` and `users` by outcome then reason, `skipped` by reason.
    pub totals: Totals,
    pub seconds: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub servers: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    pub users: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    pub skipped: BTreeMap<&'static str, u64>,
}

/// A pass where everything fails must not grow its report with the size of the Hub.
pub const MAX_ERRORS: usize = 100;

impl PassReport {
    fn count(&self, outcome: &str, servers: bool) -> u64 {
        let by_outcome = if servers {
            &self.totals.servers
        } else {
            &self.totals.users
        };
        by_outcome.get(outcome).map_or(0, |r| r.values().sum())
    }

    /// Count an action, and list it if the pass keeps details.
    fn record_action(&mut self, action: Action, details: bool) {
        let by_outcome = if action.server.is_some() {
            &mut self.totals.servers
        } else {
            &mut self.totals.users
        };
        *by_outcome
            .entry(action.outcome)
            .or_default()
            .entry(action.reason)
            .or_default() += 1;
        if action.outcome == "failed" {
            let who = action.server.as_ref().map_or_else(
                || format!("user {}", action.user),
                |s| log_name(&action.user, s),
            );
            self.record_error(format!(
                "{who}: {}",
                action.detail.as_deref().unwrap_or("failed")
            ));
        }
        if details {
            self.actions.push(action);
        }
    }

    /// Count a skip, and list it if the pass keeps details.
    fn record_skip(&mut self, skip: Skip, details: bool) {
        *self.totals.skipped.entry(skip.reason).or_default() += 1;
        if details {
            self.skipped.push(skip);
        }
    }

    fn record_error(&mut self, message: String) {
        self.errors_total += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(message);
        }
    }

    /// One line for the log; `errors` already holds every failed action.
    fn summary(&self) -> String {
        if self.dry_run {
            return format!(
                "Cull pass {} in {:.2}s (DRY RUN, nothing was stopped): {} users and {} servers seen, {} servers would be stopped, {} users would be deleted, {} errors",
                if self.complete { "done" } else { "INCOMPLETE" },
                self.seconds,
                self.users_seen,
                self.servers_seen,
                self.count("would-stop", true),
                self.count("would-delete", false),
                self.errors_total,
            );
        }
        format!(
            "Cull pass {} in {:.2}s: {} users and {} servers seen, {} servers stopped, {} still stopping, {} users deleted, {} errors",
            if self.complete { "done" } else { "INCOMPLETE" },
            self.seconds,
            self.users_seen,
            self.servers_seen,
            self.count("stopped", true) + self.count("gone", true),
            self.count("stopping", true),
            self.count("deleted", false),
            self.errors_total,
        )
    }
}

struct ServerJob {
    name: String,
    reason: CullReason,
    inactive: Option<f64>,
    age: Option<f64>,
    /// The server's idle limit.
    limit: f64,
    /// Ask the server before stopping it; the address to ask (`None`: unknown).
    probe_at: Option<Option<String>>,
    /// Boxed: rare, and a pass may hold many jobs.
    probe: Option<Box<ProbeRecord>>,
    /// A note for the report (e.g. the busy-timeout was reached).
    note: Option<String>,
}

impl ServerJob {
    /// Why it is culled, for log lines.
    fn why(&self) -> String {
        let inactive = format_duration(self.inactive);
        let mut why = match self.reason {
            CullReason::Idle => format!("inactive for {inactive}"),
            CullReason::MaxAge => {
                format!(
                    "age: {}, inactive for {inactive}",
                    format_duration(self.age)
                )
            }
        };
        if let Some(note) = &self.note {
            why = format!("{why}; {note}");
        }
        if let Some(work) = self.probe.as_ref().and_then(|p| p.work.as_ref()) {
            why = format!("{why}; {}", work.summary());
        }
        why
    }
}

struct UserJob {
    user: String,
    servers: Vec<ServerJob>,
    delete: Option<(CullReason, Option<f64>)>,
    /// A ready server of the user is kept, so the user stays in `state=ready` whatever happens
    /// to the others.
    stays: bool,
    /// The listing the user was found in.
    listed_in: Listing,
}

/// The listing being read, for what acting on a job does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// `state=ready`: a user leaves it when its last server stops.
    Ready,
    /// `state=inactive`, or every user (Hubs before 1.3): only deleting a user removes it.
    Other,
}

impl Listing {
    /// Whether acting on `job` may take its user out of this listing.
    fn may_lose(self, job: &UserJob) -> bool {
        job.listed_in == self
            && (job.delete.is_some()
                || (self == Listing::Ready && !job.servers.is_empty() && !job.stays))
    }
}

/// What acting on a batch of jobs did to the listing being read.
#[derive(Debug, Default)]
struct Acted {
    /// Users who may have left the listing.
    left: u64,
    /// Of those, users who may still leave later: a stop was slow (202) or failed.
    unsettled: u64,
}

impl UserJob {
    /// How long the longest-idle part of this job has been idle (for `max_culls` ordering).
    fn idlest(&self) -> f64 {
        self.servers
            .iter()
            .filter_map(|s| s.inactive)
            .chain(self.delete.and_then(|(_, inactive)| inactive))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    fn culls(&self) -> usize {
        self.servers.len() + usize::from(self.delete.is_some())
    }
}

/// Run one pass. Never fails: Hub errors are logged, retried where that helps, and recorded.
pub async fn run_pass(
    hub: &HubClient,
    settings: &PassSettings,
    arbiter: Option<&dyn Arbiter>,
    probes: Option<&Probes<'_>>,
) -> PassReport {
    let started = Instant::now();
    let probes = probes.filter(|_| settings.work.enabled());
    if let Some(probes) = probes {
        lock(probes.memory).begin_pass();
    }
    let mut planner = Planner {
        hub,
        settings,
        arbiter,
        probes,
        started,
        report: PassReport {
            dry_run: settings.dry_run,
            ..PassReport::default()
        },
        jobs: Vec::new(),
        held: Vec::new(),
        wanted: 0,
        listing: Listing::Other,
    };
    planner.report.complete = planner.list_all().await;
    // What is left is acted on here, even after a failed listing; a capped pass acts only now.
    planner.flush(true).await;
    let mut report = planner.report;
    if let Some(probes) = probes {
        lock(probes.memory).end_pass(report.complete);
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.request_errors = hub.take_error_counts();
    log::info!(target: LOG, "{}", report.summary());
    report
}

fn lock(memory: &Mutex<BusyMemory>) -> std::sync::MutexGuard<'_, BusyMemory> {
    memory.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Planner<'a> {
    hub: &'a HubClient,
    settings: &'a PassSettings,
    arbiter: Option<&'a dyn Arbiter>,
    probes: Option<&'a Probes<'a>>,
    started: Instant,
    report: PassReport,
    /// Planned and not yet acted on.
    jobs: Vec<UserJob>,
    /// With `--max-culls-per-pass`, the idlest jobs so far, acted on when the pass ends.
    held: Vec<UserJob>,
    /// With `--max-culls-per-pass`, every stop and deletion wanted this pass.
    wanted: usize,
    /// The listing being read.
    listing: Listing,
}

impl Planner<'_> {
    /// List and plan; `false` if the listing could not be completed.
    async fn list_all(&mut self) -> bool {
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
        self.report.hub_version = Some(version);
        if self.settings.policy.cull_users && state_filter {
            if let Err(e) = self.list(Some("inactive")).await {
                self.fail(&e, "cannot list users without servers");
                return false;
            }
        }
        if let Err(e) = self.list(state_filter.then_some("ready")).await {
            self.fail(&e, "cannot list users with ready servers");
            return false;
        }
        true
    }

    fn fail(&mut self, error: &HubError, what: &str) {
        let message = format!("{what}: {error}");
        if error.status() == Some(403) {
            log::error!(
                target: LOG,
                "{message}. The culler's token needs the scopes list:users, read:users:activity, read:servers and \
                 delete:servers (with --cull-users also delete:users and read:users)"
            );
        } else {
            log::warn!(target: LOG, "{message}; the next pass will try again");
        }
        self.report.record_error(message);
    }

    /// List one state's users, acting on what is planned whenever enough of it waits.
    async fn list(&mut self, state: Option<&str>) -> Result<(), HubError> {
        self.listing = match state {
            Some("ready") => Listing::Ready,
            _ => Listing::Other,
        };
        let act_after = self.settings.act_after;
        let mut offset = 0;
        let mut limit = Some(self.settings.page_size.unwrap_or(LARGEST_PAGE));
        let mut pages = 0u64;
        let mut recent = RecentNames::default();
        let mut cursor = Cursor::default();
        let mut reread = 0u64;
        let mut acting_early = true;
        loop {
            let page = self.hub.list_users(state, offset, limit).await?;
            pages += 1;
            let page_limit = page.next.as_ref().map_or(1, |next| next.limit.max(1));
            // The users a correction reads again are among the last listed, at most the users
            // acted on at once (fewer than `act_after` plus a page) and the unsettled allowance.
            recent.keep_at_least(
                (act_after.saturating_add(page.items.len()) as u64)
                    .saturating_add(unsettled_allowance(page_limit)),
            );
            for item in &page.items {
                if !self.plan_user(item, &mut recent).await {
                    reread += 1;
                }
            }
            let next = match page.next {
                // Rebuilt from offset/limit against our base URL: `next.url` is built from the
                // Host the Hub saw, which the culler may not be able to reach.
                Some(next) if next.offset > offset => next,
                Some(next) => {
                    return Err(HubError::Decode {
                        method: reqwest::Method::GET,
                        path: crate::hub::users_query(state, offset, limit),
                        detail: format!(
                            "the next page's offset {} does not move forward",
                            next.offset
                        ),
                    });
                }
                None => break,
            };
            let mut left = 0;
            if acting_early && self.jobs.iter().map(UserJob::culls).sum::<usize>() >= act_after {
                let acted = self.flush(false).await;
                left = acted.left;
                if !cursor.unsettle(acted.unsettled, page_limit) {
                    acting_early = false;
                    log::warn!(
                        target: LOG,
                        "{} users' stops or deletions are still in progress or failed; listing the rest before acting again",
                        cursor.unsettled()
                    );
                }
            }
            offset = cursor.resume(next.offset, left, page_limit);
            limit = Some(page_limit);
        }
        log::debug!(
            target: LOG,
            "Listed users (state={}) in {pages} pages; {reread} read again after acting",
            state.unwrap_or("any")
        );
        Ok(())
    }

    /// Probe and act on the jobs planned so far (with a cap, keep the idlest of them for the
    /// end of the pass); `last` acts on those too.
    async fn flush(&mut self, last: bool) -> Acted {
        let mut jobs = std::mem::take(&mut self.jobs);
        let settings = self.settings;
        if let Some(probes) = self.probes {
            let in_flight = self.hub.concurrency();
            probe_candidates(
                probes,
                in_flight,
                settings,
                self.started,
                &mut jobs,
                &mut self.report,
            )
            .await;
        }
        let Some(cap) = settings.max_culls else {
            return act(self.hub, settings, self.listing, jobs, &mut self.report).await;
        };
        // The idlest `cap` need every candidate seen; keeping only the idlest so far gives the
        // same choice (the sort is stable) in memory bounded by the cap.
        self.wanted += jobs.iter().map(UserJob::culls).sum::<usize>();
        self.held.append(&mut jobs);
        let held: usize = self.held.iter().map(UserJob::culls).sum();
        if !last {
            if held > cap.saturating_mul(2) {
                apply_cap(cap, &mut self.held, &mut self.report, settings.details);
            }
            return Acted::default();
        }
        apply_cap(cap, &mut self.held, &mut self.report, settings.details);
        if self.wanted > cap {
            log::warn!(
                target: LOG,
                "Cull cap reached: {cap} of {} stops and deletions this pass (--max-culls-per-pass); the rest wait for the next pass",
                self.wanted
            );
        }
        let held = std::mem::take(&mut self.held);
        act(self.hub, settings, self.listing, held, &mut self.report).await
    }

    fn keep(&mut self, user: &str, server: Option<&str>, reason: &KeepReason) {
        match reason {
            KeepReason::Active => self.report.kept_active += 1,
            KeepReason::NotSelected => self.report.kept_not_selected += 1,
            other => self.report.record_skip(
                Skip {
                    user: user.to_owned(),
                    server: server.map(str::to_owned),
                    reason: other.label(),
                    detail: match other {
                        KeepReason::Pending(what) => Some(what.clone()),
                        KeepReason::ServersAlive(n) => Some(n.to_string()),
                        _ => None,
                    },
                    probe: None,
                },
                self.settings.details,
            ),
        }
    }

    /// Plan what to do with a listed user; `false` if it was listed just before (the listing
    /// moved back after acting) and so is not planned again.
    async fn plan_user(&mut self, item: &RawValue, recent: &mut RecentNames) -> bool {
        let mut user: User = match serde_json::from_str(item.get()) {
            Ok(user) => user,
            Err(e) => {
                log::warn!(target: LOG, "Skipping a user the Hub described in a form that does not parse: {e}");
                self.report.record_skip(
                    Skip {
                        user: String::new(),
                        server: None,
                        reason: "bad-model",
                        detail: Some(e.to_string()),
                        probe: None,
                    },
                    self.settings.details,
                );
                return true;
            }
        };
        if !recent.record(&user.name) {
            return false;
        }
        self.report.users_seen += 1;
        let groups = user.groups.clone().unwrap_or_default();
        if let Some(keep) = self.user_gate(&user, &groups) {
            self.keep(&user.name, None, &keep);
            return true;
        }
        let Some(servers) = user.servers() else {
            log::warn!(
                target: LOG,
                "Not culling user {}: the Hub sent no server information (does the token have read:servers?)",
                user.name
            );
            self.keep(&user.name, None, &KeepReason::NoActivityData);
            return true;
        };
        let policy = &self.settings.policy;
        let limit = policy.server_limit(&groups);
        let user_json = if self.arbiter.is_some() {
            user.hook_model()
        } else {
            String::new()
        };
        let mut to_stop = Vec::new();
        let mut alive = 0;
        let mut stays = false;
        for (name, raw) in servers.0 {
            self.report.servers_seen += 1;
            match self
                .plan_server(&user.name, &name, &raw, limit, &user_json)
                .await
            {
                Ok(job) => to_stop.push(job),
                Err(keep) => {
                    alive += 1;
                    // Every reason but these is given to a ready server, which keeps its user in
                    // `state=ready`.
                    stays |= !matches!(
                        keep,
                        KeepReason::Pending(_) | KeepReason::NotReady | KeepReason::BadTimestamp
                    );
                    self.keep(&user.name, Some(&name), &keep);
                }
            }
        }
        let delete = if policy.cull_users {
            self.plan_user_deletion(&user, &groups, alive)
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

    /// Users no rule may touch: exempt ones, and with group rules, those whose groups are unknown.
    fn user_gate(&self, user: &User, groups: &[String]) -> Option<KeepReason> {
        let policy = &self.settings.policy;
        if policy.uses_groups() && user.groups.is_none() {
            log::warn!(
                target: LOG,
                "Not culling user {}: group rules are set but the Hub did not say which groups it is in \
                 (the token needs read:users:groups)",
                user.name
            );
            return Some(KeepReason::NoGroups);
        }
        if policy.is_exempt(&user.name, groups) {
            log::debug!(target: LOG, "Not culling user {}: exempt", user.name);
            return Some(KeepReason::Exempt);
        }
        None
    }

    /// Whether to delete the user after its servers are stopped (`alive` of them are kept).
    fn plan_user_deletion(
        &mut self,
        user: &User,
        groups: &[String],
        alive: usize,
    ) -> Option<(CullReason, Option<f64>)> {
        let policy = &self.settings.policy;
        let now = self.settings.now;
        let facts = UserFacts {
            admin: user.admin.unwrap_or(false),
            created: user.created.as_deref(),
            last_activity: user.last_activity.as_deref(),
        };
        let idleness = user_idleness(&facts, now);
        match decide_user(policy, policy.user_limit(groups), &facts, alive, now) {
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
                    self.keep(&user.name, None, &keep);
                }
                None
            }
        }
    }

    async fn plan_server(
        &self,
        user: &str,
        name: &str,
        raw: &RawValue,
        limit: f64,
        user_json: &str,
    ) -> Result<ServerJob, KeepReason> {
        let now = self.settings.now;
        let log_name = log_name(user, name);
        let server: Server = serde_json::from_str(raw.get()).map_err(|e| {
            log::warn!(target: LOG, "Not culling server {log_name}: its model does not parse: {e}");
            KeepReason::BadTimestamp
        })?;
        let mut idleness = assess_server(&server, now).inspect_err(|keep| match keep {
            KeepReason::Pending(what) => {
                log::warn!(target: LOG, "Not culling server {log_name} with pending {what}");
            }
            KeepReason::NotReady => {
                log::warn!(target: LOG, "Not culling not-ready not-pending server {log_name}");
            }
            KeepReason::BadTimestamp => {
                log::warn!(target: LOG, "Not culling server {log_name}: a timestamp does not parse");
            }
            _ => {}
        })?;
        if let (Some(probes), Some(inactive)) = (self.probes, idleness.inactive) {
            let since = {
                let mut memory = lock(probes.memory);
                // Usually empty: no key to build for every server of a large Hub.
                (!memory.is_empty())
                    .then(|| memory.idle_since(&memory_key(user, name), now - inactive))
                    .flatten()
            };
            if let Some(since) = since.filter(|since| now - since > inactive) {
                log::debug!(
                    target: LOG,
                    "Server {log_name} was kept busy before; idle for {} by the Hub's count before the culler's own probes",
                    format_duration(Some(now - since))
                );
                idleness.inactive = Some(now - since);
            }
        }
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
        let inactive = format_duration(idleness.inactive);
        let age = format_duration(idleness.age);
        match decide_server(policy, limit, name, &idleness, verdict) {
            Ok(reason) => {
                let work = self.settings.work;
                let probe = self.probes.is_some() && work.needs_probe(reason, idleness.inactive);
                let mut job = ServerJob {
                    name: name.to_owned(),
                    reason,
                    inactive: idleness.inactive,
                    age: idleness.age,
                    limit,
                    probe_at: probe.then(|| {
                        server_base(
                            self.settings.server_url.as_deref(),
                            server.url.as_deref(),
                            server.full_url.as_deref(),
                        )
                    }),
                    probe: None,
                    note: None,
                };
                if probe {
                    log::debug!(target: LOG, "Server {log_name} is {}; asking it what it runs", job.why());
                } else {
                    if work.enabled() && work.past_busy_timeout(job.inactive) {
                        job.note = Some("idle past --busy-timeout; not asked".into());
                    }
                    log_cull(user, &job, self.settings.dry_run);
                }
                Ok(job)
            }
            Err(keep) => {
                log::debug!(target: LOG, "Not culling server {log_name} ({}; age: {age}, inactive for {inactive})", keep.label());
                Err(keep)
            }
        }
    }
}

fn idle_seconds(inactive: Option<f64>) -> String {
    inactive.map_or_else(String::new, |s| format!("{s:.0}"))
}

fn memory_key(user: &str, server: &str) -> String {
    format!("{user}/{server}")
}

fn log_cull(user: &str, job: &ServerJob, dry_run: bool) {
    let verb = if dry_run { "Would cull" } else { "Culling" };
    log::info!(
        target: LOG,
        user = user, server = job.name.as_str(), action = "stop-server", reason = job.reason.label(),
        idle_seconds = idle_seconds(job.inactive).as_str();
        "{verb} server {} ({})", log_name(user, &job.name), job.why()
    );
}

/// Ask every idle candidate (concurrently, within the client's limit) what it runs; keep
/// those whose work keeps them, and with them their users.
async fn probe_candidates(
    probes: &Probes<'_>,
    in_flight: usize,
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
                .filter_map(move |(s, server)| Some((j, s, server.probe_at.clone()?, server.limit)))
        })
        .collect();
    let mut asking = futures::stream::iter(candidates)
        .map(|(j, s, at, limit)| async move {
            let result = match at {
                Some(base) => Some(
                    probes
                        .client
                        .probe(&base, rules.keep_busy, now - limit)
                        .await,
                ),
                None => None,
            };
            (j, s, result)
        })
        .buffer_unordered(in_flight);
    let mut kept: Vec<(usize, usize)> = Vec::new();
    while let Some((j, s, result)) = asking.next().await {
        let user = jobs[j].user.clone();
        let server = &mut jobs[j].servers[s];
        let keep = judge_probe(probes, settings, started, &user, server, result);
        match keep {
            Some(reason) => {
                let skip = Skip {
                    user: user.clone(),
                    server: Some(server.name.clone()),
                    reason: reason.label(),
                    detail: server
                        .probe
                        .as_ref()
                        .and_then(|p| p.work.as_ref())
                        .map(ServerWork::summary),
                    probe: server.probe.take(),
                };
                report.record_skip(skip, settings.details);
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
            let skip = Skip {
                user: job.user.clone(),
                server: None,
                reason: KeepReason::ServersAlive(1).label(),
                detail: Some("a server is kept for its work".into()),
                probe: None,
            };
            report.record_skip(skip, settings.details);
        }
    }
    jobs.retain(|job| job.culls() > 0);
}

async fn act(
    hub: &HubClient,
    settings: &PassSettings,
    listing: Listing,
    jobs: Vec<UserJob>,
    report: &mut PassReport,
) -> Acted {
    if settings.dry_run {
        for job in jobs {
            for action in dry_run_actions(job) {
                report.record_action(action, settings.details);
            }
        }
        return Acted::default();
    }
    // Only as many jobs in flight as requests may be: a job's future is kilobytes (it holds
    // its requests), so creating them all at once would make memory grow with the work.
    let mut running = futures::stream::iter(jobs)
        .map(|job| {
            let may_leave = listing.may_lose(&job);
            run_job(hub, settings, job).map(move |actions| (may_leave, actions))
        })
        .buffer_unordered(hub.concurrency());
    let mut acted = Acted::default();
    while let Some((may_leave, actions)) = running.next().await {
        if may_leave {
            acted.left += 1;
            if actions
                .iter()
                .any(|a| matches!(a.outcome, "stopping" | "failed"))
            {
                acted.unsettled += 1;
            }
        }
        for action in actions {
            report.record_action(action, settings.details);
        }
    }
    acted
}

/// Record what asking `server` found (`None`: it could not be asked, as its address is
/// unknown); the reason to keep it, if any.
fn judge_probe(
    probes: &Probes<'_>,
    settings: &PassSettings,
    started: Instant,
    user: &str,
    server: &mut ServerJob,
    result: Option<Result<ServerWork, ProbeError>>,
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
            Some(KeepReason::NoServerUrl)
        }
        Some(Ok(work)) => {
            let keep = work_keeps(&settings.work, &work);
            let summary = work.summary();
            if let Some(reason) = &keep {
                log::info!(
                    target: LOG,
                    user = user, server = server.name.as_str(), action = "keep-server",
                    reason = reason.label(), idle_seconds = idle_seconds(server.inactive).as_str();
                    "Not culling server {name} ({}), as it is {}: {summary}", server.why(), reason.label()
                );
                lock(probes.memory).remember(
                    memory_key(user, &server.name),
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

/// Keep at most `cap` stops and deletions, the longest idle first; record the rest as skipped.
/// A user is only deleted if all of its stops fit under the cap as well.
fn apply_cap(cap: usize, jobs: &mut Vec<UserJob>, report: &mut PassReport, details: bool) {
    let wanted: usize = jobs.iter().map(UserJob::culls).sum();
    if wanted <= cap {
        return;
    }
    jobs.sort_by(|a, b| b.idlest().total_cmp(&a.idlest()));
    let mut budget = cap;
    let mut kept = Vec::new();
    for mut job in jobs.drain(..) {
        let fit = job.servers.len().min(budget);
        let cut = job.servers.len() - fit;
        budget -= fit;
        for server in job.servers.drain(fit..) {
            report.record_skip(
                Skip {
                    user: job.user.clone(),
                    server: Some(server.name),
                    reason: "cap",
                    detail: None,
                    probe: server.probe,
                },
                details,
            );
        }
        if job.delete.is_some() {
            if cut == 0 && budget > 0 {
                budget -= 1;
            } else {
                job.delete = None;
                report.record_skip(
                    Skip {
                        user: job.user.clone(),
                        server: None,
                        reason: "cap",
                        detail: None,
                        probe: None,
                    },
                    details,
                );
            }
        }
        if job.culls() > 0 {
            kept.push(job);
        }
    }
    *jobs = kept;
}

fn dry_run_actions(job: UserJob) -> Vec<Action> {
    let mut actions: Vec<Action> = job
        .servers
        .into_iter()
        .map(|s| Action {
            user: job.user.clone(),
            server: Some(s.name),
            reason: s.reason.label(),
            inactive: s.inactive,
            outcome: "would-stop",
            detail: s.note,
            probe: s.probe,
        })
        .collect();
    if let Some((reason, inactive)) = job.delete {
        log::info!(
            target: LOG,
            user = job.user.as_str(), action = "delete-user", reason = reason.label(),
            idle_seconds = idle_seconds(inactive).as_str();
            "Would delete user {} ({reason}, inactive for {})", job.user, format_duration(inactive)
        );
        actions.push(Action {
            user: job.user,
            server: None,
            reason: reason.label(),
            inactive,
            outcome: "would-delete",
            detail: None,
            probe: None,
        });
    }
    actions
}

fn log_name(user: &str, server: &str) -> String {
    if server.is_empty() {
        user.to_owned()
    } else {
        format!("{user}/{server}")
    }
}

async fn run_job(hub: &HubClient, settings: &PassSettings, job: UserJob) -> Vec<Action> {
    let remove = settings.policy.remove_named_servers;
    let user = job.user.as_str();
    let stops = job.servers.iter().map(|s| async move {
        let name = log_name(user, &s.name);
        let result = hub.stop_server(user, &s.name, remove).await;
        let (outcome, detail) = match result {
            Ok(StopOutcome::Stopped) => {
                log::debug!(target: LOG, "Stopped server {name}");
                ("stopped", None)
            }
            Ok(StopOutcome::Stopping) => {
                log::warn!(target: LOG, "Server {name} is slow to stop");
                ("stopping", None)
            }
            Ok(StopOutcome::Gone) => {
                log::info!(target: LOG, "Server {name} was already gone");
                ("gone", None)
            }
            Err(e) => {
                log::warn!(target: LOG, "Failed to stop server {name}: {e}");
                ("failed", Some(e.to_string()))
            }
        };
        Action {
            user: user.to_owned(),
            server: Some(s.name.clone()),
            reason: s.reason.label(),
            inactive: s.inactive,
            outcome,
            detail: detail.or_else(|| s.note.clone()),
            probe: s.probe.clone(),
        }
    });
    let mut actions: Vec<Action> = futures::future::join_all(stops).await;
    if let Some((reason, inactive)) = job.delete {
        let alive = actions
            .iter()
            .filter(|a| !matches!(a.outcome, "stopped" | "gone"))
            .count();
        let stopped_now = !actions.is_empty();
        let (outcome, detail) = if alive > 0 {
            log::debug!(target: LOG, "Not culling user {} with {alive} servers still alive", job.user);
            ("kept", Some(format!("{alive} servers still alive")))
        } else {
            delete_user(hub, settings, &job.user, reason, inactive, stopped_now).await
        };
        actions.push(Action {
            user: job.user,
            server: None,
            reason: reason.label(),
            inactive,
            outcome,
            detail,
            probe: None,
        });
    }
    actions
}

/// Delete a user, after checking again that it has no active server and, unless this pass
/// just stopped its servers (which moves its activity to now), that it is still to be culled.
/// The listing may be old by now: a user who started a server since must not lose it.
async fn delete_user(
    hub: &HubClient,
    settings: &PassSettings,
    name: &str,
    reason: CullReason,
    inactive: Option<f64>,
    stopped_now: bool,
) -> (&'static str, Option<String>) {
    let mut fresh = match hub.get_user(name).await {
        Ok(Some(user)) => user,
        Ok(None) => return ("gone", None),
        Err(e) => {
            log::warn!(target: LOG, "Not deleting user {name}: cannot check it again: {e}");
            return ("failed", Some(e.to_string()));
        }
    };
    let active = fresh.servers().map_or(0, |s| {
        s.0.iter()
            .filter(|(_, raw)| {
                serde_json::from_str::<Server>(raw.get())
                    .map_or(true, |s| s.is_ready() || s.pending.is_some())
            })
            .count()
    });
    if active > 0 {
        log::info!(target: LOG, "Not culling user {name}: it has {active} active servers now");
        return ("kept", Some(format!("{active} servers became active")));
    }
    if !stopped_now {
        let facts = UserFacts {
            admin: fresh.admin.unwrap_or(false),
            created: fresh.created.as_deref(),
            last_activity: fresh.last_activity.as_deref(),
        };
        let groups = fresh.groups.clone().unwrap_or_default();
        let limit = settings.policy.user_limit(&groups);
        if let Err(keep) = decide_user(&settings.policy, limit, &facts, 0, settings.now) {
            log::info!(target: LOG, "Not culling user {name}: no longer idle ({})", keep.label());
            return (
                "kept",
                Some(format!("no longer to be culled: {}", keep.label())),
            );
        }
    }
    let detail = match reason {
        CullReason::Idle => format!("inactive for {}", format_duration(inactive)),
        CullReason::MaxAge => format!("max-age, inactive for {}", format_duration(inactive)),
    };
    log::info!(
        target: LOG,
        user = name, action = "delete-user", reason = reason.label(),
        idle_seconds = idle_seconds(inactive).as_str();
        "Culling user {name} ({detail})"
    );
    match hub.delete_user(name).await {
        Ok(DeleteOutcome::Deleted) => ("deleted", None),
        Ok(DeleteOutcome::Gone) => ("gone", None),
        Err(e) => {
            log::warn!(target: LOG, "Failed to delete user {name}: {e}");
            ("failed", Some(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(user: &str, servers: &[(&str, f64)], delete: Option<f64>) -> UserJob {
        UserJob {
            user: user.to_owned(),
            servers: servers
                .iter()
                .map(|&(name, inactive)| ServerJob {
                    name: name.to_owned(),
                    reason: CullReason::Idle,
                    inactive: Some(inactive),
                    age: None,
                    limit: 600.0,
                    probe_at: None,
                    probe: None,
                    note: None,
                })
                .collect(),
            delete: delete.map(|inactive| (CullReason::Idle, Some(inactive))),
            stays: false,
            listed_in: Listing::Ready,
        }
    }

    fn planned(jobs: &[UserJob]) -> Vec<String> {
        let mut out = Vec::new();
        for j in jobs {
            out.extend(j.servers.iter().map(|s| format!("{}/{}", j.user, s.name)));
            if j.delete.is_some() {
                out.push(format!("delete {}", j.user));
            }
        }
        out
    }

    #[test]
    fn under_the_cap_nothing_changes() {
        let mut jobs = vec![
            job("a", &[("", 10.0)], None),
            job("b", &[("", 20.0)], Some(20.0)),
        ];
        let mut report = PassReport::default();
        apply_cap(3, &mut jobs, &mut report, true);
        assert_eq!(planned(&jobs), ["a/", "b/", "delete b"]);
        assert!(report.skipped.is_empty());
    }

    #[test]
    fn the_cap_keeps_the_idlest_first() {
        let mut jobs = vec![
            job("a", &[("", 100.0)], None),
            job("b", &[("", 900.0)], None),
            job("c", &[("", 500.0)], None),
        ];
        let mut report = PassReport::default();
        apply_cap(2, &mut jobs, &mut report, true);
        assert_eq!(planned(&jobs), ["b/", "c/"]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(
            (report.skipped[0].user.as_str(), report.skipped[0].reason),
            ("a", "cap")
        );
    }

    #[test]
    fn a_user_is_not_deleted_when_any_of_its_stops_was_cut() {
        let mut jobs = vec![
            job("a", &[("", 900.0), ("x", 800.0)], Some(900.0)),
            job("b", &[], Some(10.0)),
        ];
        let mut report = PassReport::default();
        apply_cap(1, &mut jobs, &mut report, true);
        assert_eq!(planned(&jobs), ["a/"]);
        let skipped: Vec<_> = report
            .skipped
            .iter()
            .map(|s| (s.user.as_str(), s.server.as_deref()))
            .collect();
        assert_eq!(skipped, [("a", Some("x")), ("a", None), ("b", None)]);
    }

    #[test]
    fn a_deletion_counts_against_the_cap() {
        let mut jobs = vec![
            job("a", &[("", 900.0)], Some(900.0)),
            job("b", &[("", 10.0)], None),
        ];
        let mut report = PassReport::default();
        apply_cap(2, &mut jobs, &mut report, true);
        assert_eq!(planned(&jobs), ["a/", "delete a"]);
        assert_eq!(report.skipped.len(), 1);
    }

    #[test]
    fn only_jobs_that_can_empty_a_user_move_its_listing() {
        let stop = job("a", &[("", 900.0)], None);
        let delete = job("b", &[], Some(900.0));
        let mut partial = job("c", &[("lab", 900.0)], None);
        partial.stays = true;
        assert!(Listing::Ready.may_lose(&stop));
        assert!(Listing::Ready.may_lose(&delete));
        assert!(!Listing::Ready.may_lose(&partial));
        // Stopping a server does not take a user out of state=inactive or an unfiltered list.
        let mut inactive = job("d", &[("", 900.0)], Some(900.0));
        inactive.listed_in = Listing::Other;
        let mut kept_user = job("e", &[("", 900.0)], None);
        kept_user.listed_in = Listing::Other;
        assert!(Listing::Other.may_lose(&inactive));
        assert!(!Listing::Other.may_lose(&kept_user));
        // A job carried over from the other listing cannot move this one.
        assert!(!Listing::Ready.may_lose(&inactive));
        assert!(!Listing::Other.may_lose(&stop));
    }

    #[test]
    fn dry_runs_report_what_would_happen() {
        let actions = dry_run_actions(job("a", &[("", 900.0)], Some(900.0)));
        let outcomes: Vec<_> = actions.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, ["would-stop", "would-delete"]);
    }
}
