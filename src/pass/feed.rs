//! What a pass feeds the page's board: a view of each server it judged; and the keep-alives it
//! honours and sweeps.

use std::collections::HashSet;

use crate::keepalive::{KeepAlive, KeepAlives};
use crate::models::Server;
use crate::policy::{CullReason, Idleness, KeepReason, LimitFrom};
use crate::timestamp::format_utc;

use super::jobs::{ServerFacts, ServerJob};
use super::report::PassReport;
use super::{BoardFeed, PassSettings, LOG};

/// The board's side of one pass.
pub(super) struct FeedRecorder<'a> {
    feed: Option<BoardFeed<'a>>,
    settings: &'a PassSettings,
    /// Servers seen with a keep-alive recorded, which the sweep keeps.
    kept_seen: HashSet<(String, String)>,
}

impl<'a> FeedRecorder<'a> {
    pub fn new(feed: Option<BoardFeed<'a>>, settings: &'a PassSettings) -> Self {
        FeedRecorder {
            feed,
            settings,
            kept_seen: HashSet::new(),
        }
    }

    /// Whether the page is served: then the pass works out when each server is due.
    pub fn shown(&self) -> bool {
        self.feed.is_some()
    }

    pub fn keep_alives(&self) -> Option<&'a KeepAlives> {
        self.feed.and_then(|feed| feed.keep_alives)
    }

    /// The keep-alive recorded for a server, in force or ended.
    pub fn keep_alive(&self, user: &str, server: &str) -> Option<KeepAlive> {
        self.keep_alives()
            .and_then(|keep_alives| keep_alives.get(user, server))
    }

    /// A server listed with a keep-alive recorded: the sweep keeps it.
    pub fn saw_kept(&mut self, user: &str, server: &str) {
        self.kept_seen.insert((user.to_owned(), server.to_owned()));
    }

    /// A cull the policy decided, unless a keep-alive in force holds it. Max age and
    /// `--busy-timeout` still cull: a keep-alive only stands in for activity.
    pub fn hold_for_keep_alive(
        &self,
        log_name: &str,
        kept: &KeepAlive,
        idleness: &Idleness,
        decision: Result<ServerJob, KeepReason>,
    ) -> Result<ServerJob, KeepReason> {
        let mut job = decision?;
        let policy = &self.settings.policy;
        if policy.max_age > 0.0 && idleness.age.is_some_and(|a| a >= policy.max_age) {
            // The idle rule would have culled it too; max age is what a keep-alive cannot
            // stop, so that is the reason.
            job.reason = CullReason::MaxAge;
            job.probe_at = None;
        }
        let work = self.settings.work;
        let holds = job.reason == CullReason::Idle
            && kept.until > self.settings.now
            && !(work.enabled() && work.past_busy_timeout(job.inactive));
        if !holds {
            return Ok(job);
        }
        log::debug!(
            target: LOG,
            "Not culling server {log_name}: kept alive until {}",
            format_utc(kept.until)
        );
        Err(KeepReason::KeptAlive { until: kept.until })
    }

    /// What the page shows of a server the policy has judged; its verdict follows.
    pub fn record_view(
        &self,
        report: &mut PassReport,
        (user, name, server): (&str, &str, &Server),
        (limit, from): (f64, LimitFrom),
        facts: &ServerFacts,
    ) {
        let now = self.settings.now;
        if let Some(draft) = &mut report.draft {
            let mut view = crate::board::view(
                user,
                name,
                server.last_activity.as_deref(),
                facts.inactive,
                (limit, from),
                facts.due,
                now,
            );
            view.kept_until = facts.kept_until.filter(|&t| t > now);
            view.idle_by = facts.idle_by;
            draft.insert(view);
        }
    }

    /// After a complete pass, forget the ended keep-alives of servers it did not see: stopped,
    /// culled, or gone. One in force is kept, whatever the pass saw: it may have been granted
    /// while the pass was under way, or its server may be starting or pending a Hub's check.
    pub fn sweep(&self, report: &mut PassReport) {
        let Some(keep_alives) = self.keep_alives() else {
            return;
        };
        if !report.complete || self.settings.dry_run {
            return;
        }
        match keep_alives.forget_unseen(&self.kept_seen, self.settings.now) {
            Ok(0) => {}
            Ok(n) => {
                log::debug!(target: LOG, "Forgot {n} keep-alives of servers no longer running");
            }
            Err(e) => {
                log::error!(target: LOG, "Cannot forget ended keep-alives in the state file: {e}");
                report.record_error(format!("state file: {e}"));
            }
        }
    }
}
