//! One culling pass: list, decide, act.
//!
//! The pass acts on what it has planned whenever [`PassSettings::act_after`] stops and
//! deletions are waiting at the end of a page, and on the rest when it has listed everything, so
//! memory grows with neither the Hub nor the work (a small Hub's pass lists everything first).
//! Acting removes listed users from the Hub's `state=ready` (or `state=inactive`) set, which
//! moves later users to lower offsets; [`crate::listing`] says where the next page starts so
//! that no user slides past unseen, and recognises the users read twice. Acting is concurrent
//! across users, bounded by the client's `concurrency`.
//!
//! The phases live in their own modules: [`plan`] lists and decides, [`probing`] asks idle
//! candidates what they run, [`act`] stops and deletes, and [`report`] records it all.

mod act;
mod feed;
mod jobs;
mod judge;
mod plan;
mod probing;
pub mod report;
mod stopped;
#[cfg(test)]
pub(crate) mod tests;
pub mod views;
mod warnings;
mod work_mode;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::board::Board;
use crate::hub::HubApi;
use crate::keepalive::KeepAlives;
use crate::policy::Policy;
use crate::signals::WorkRules;

pub use probing::Probes;
pub use report::{Action, Outcome, PassReport, ProbeRecord, Skip, MAX_ERRORS};
pub use warnings::Warnings;

const LOG: &str = "cull_idle";
/// Hubs from 1.3 filter users by server state.
const STATE_FILTER_SINCE: (u64, u64, u64) = (1, 3, 0);
/// Hubs from 3.0 list stopped servers with `include_stopped_servers`.
const STOPPED_SINCE: (u64, u64, u64) = (3, 0, 0);
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

/// The operator's hooks that decide: `server` is the `cull_arbiter` for idle servers, `user`
/// the `cull_user_hook` for idle users (asked with an empty server model).
#[derive(Clone, Copy, Default)]
pub struct Hooks<'a> {
    pub server: Option<&'a dyn Arbiter>,
    pub user: Option<&'a dyn Arbiter>,
}

/// What a pass feeds the page's board, and the keep-alives it honours, while the page is
/// served. ("Page" in `pass` is otherwise a page of the Hub's user listing.)
#[derive(Clone, Copy)]
pub struct BoardFeed<'a> {
    pub board: &'a Board,
    pub keep_alives: Option<&'a KeepAlives>,
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
    /// Seconds of warning before a server is culled (`--warn-before`); 0: no warnings.
    pub warn_before: f64,
    /// The same before a user is deleted (`--warn-users-before`).
    pub warn_users_before: f64,
}

impl PassSettings {
    pub fn warns(&self) -> bool {
        self.warn_before > 0.0 || self.warn_users_before > 0.0
    }
}

/// Run one pass. Never fails: Hub errors are logged, retried where that helps, and recorded.
pub async fn run_pass(
    hub: &dyn HubApi,
    settings: &PassSettings,
    hooks: Hooks<'_>,
    probes: Option<&Probes<'_>>,
    warnings: Option<&Warnings<'_>>,
    feed: Option<BoardFeed<'_>>,
) -> PassReport {
    let started = Instant::now();
    let probes = probes.filter(|_| settings.work.enabled());
    if let Some(probes) = probes {
        probing::lock(probes.memory).begin_pass();
        probes.tokens.begin_pass();
        if settings.work.by_work() {
            probes.begin_work_pass();
        }
    }
    let mut planner = plan::Planner {
        hub,
        settings,
        arbiter: hooks.server,
        user_arbiter: hooks.user,
        probes,
        started,
        report: PassReport {
            dry_run: settings.dry_run,
            details: settings.details,
            draft: feed.map(|_| Box::default()),
            ..PassReport::default()
        },
        jobs: Vec::new(),
        held: Vec::new(),
        wanted: 0,
        listing: jobs::Listing::Other,
        work: work_mode::PassWork::default(),
        warnings: warnings::WarningGate::new(warnings, settings),
        include_stopped: false,
        feed: feed::FeedRecorder::new(feed, settings),
    };
    planner.report.complete = planner.list_all().await;
    // What is left is acted on here, even after a failed listing; a capped pass acts only now.
    planner.flush(true).await;
    planner.warnings.sweep(&mut planner.report);
    planner.feed.sweep(&mut planner.report);
    let mut report = planner.report;
    if let Some(probes) = probes {
        probes.end_token_pass(hub, report.complete).await;
        probing::lock(probes.memory).end_pass(report.complete);
        if settings.work.by_work() {
            probes.end_work_pass(report.complete);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.request_errors = hub.take_error_counts();
    log::info!(target: LOG, "{}", report.summary());
    if let (Some(feed), Some(draft)) = (feed, report.draft.take()) {
        let summary = report.board_summary(settings.now);
        let (views, culls) = draft.finish();
        feed.board
            .publish(settings.now, report.complete, views, summary, culls);
    }
    report
}
