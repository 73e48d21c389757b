//! What the last pass saw of each running server and what it decided, for the page: a
//! snapshot replaced whole at the end of each pass, so a page view reads memory and never the
//! Hub. It holds one small entry per running server, and only while the page is served.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;

use crate::pass::report::{Action, Outcome, PassReport, Skip};
use crate::policy::CullReason;

/// How many passes the operators' view lists.
pub const HISTORY: usize = 20;

/// One running server and its verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerView {
    pub user: String,
    /// `""` for the default server.
    pub server: String,
    /// Seconds idle, as the Hub counts it, when the pass looked.
    pub inactive: Option<f64>,
    pub last_activity: Option<String>,
    /// This server's idle limit, in seconds (a group's, when one applies).
    pub limit: f64,
    /// The limit is a group's (`--group-timeout`), not `--timeout`.
    pub group_limit: bool,
    /// `keep`, `stop` (stopped by the pass, or being stopped) or `would-stop` (a dry run).
    pub verdict: &'static str,
    /// Why: a skip reason (`active`, `exempt`, `kept-alive`, `busy`, `warned`, …) or a cull
    /// reason (`idle`, `max-age`).
    pub reason: &'static str,
    pub detail: Option<String>,
    /// When the policy will stop it if nothing changes (seconds since the epoch), and why.
    pub stop_at: Option<f64>,
    pub stop_reason: Option<&'static str>,
    /// When a warning for this idle stretch was given.
    pub warned_at: Option<f64>,
    /// The keep-alive in force, if any.
    pub kept_until: Option<f64>,
}

/// One pass, as the operators' view lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PassSummary {
    pub started: f64,
    pub seconds: f64,
    pub complete: bool,
    pub dry_run: bool,
    pub users_seen: u64,
    pub servers_seen: u64,
    pub stopped: u64,
    pub deleted: u64,
    pub warned: u64,
    pub kept_alive: u64,
    pub errors: u64,
}

/// The last pass's servers, by user then server.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The pass's "now"; `None` before the first pass.
    pub at: Option<f64>,
    pub complete: bool,
    pub views: Vec<ServerView>,
}

impl Snapshot {
    /// One user's servers.
    pub fn for_user(&self, user: &str) -> &[ServerView] {
        let start = self.views.partition_point(|v| v.user.as_str() < user);
        let end = start + self.views[start..].partition_point(|v| v.user == user);
        &self.views[start..end]
    }

    /// The servers the policy will stop within `seconds` of the pass, soonest first.
    pub fn due_within(&self, seconds: f64) -> Vec<&ServerView> {
        let Some(at) = self.at else {
            return Vec::new();
        };
        let mut due: Vec<&ServerView> = self
            .views
            .iter()
            .filter(|v| v.verdict == "keep" && v.stop_at.is_some_and(|t| t <= at + seconds))
            .collect();
        due.sort_by(|a, b| {
            a.stop_at
                .partial_cmp(&b.stop_at)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        due
    }
}

/// The views a pass builds as it goes; published when it ends.
#[derive(Debug, Default)]
pub struct Draft {
    views: HashMap<(String, String), ServerView>,
}

impl Draft {
    pub fn insert(&mut self, view: ServerView) {
        self.views
            .insert((view.user.clone(), view.server.clone()), view);
    }

    fn get_mut(&mut self, user: &str, server: &str) -> Option<&mut ServerView> {
        // Built only for a server the draft holds: most skips are of those.
        self.views.get_mut(&(user.to_owned(), server.to_owned()))
    }

    /// A warning for the server's stretch: given at `warned_at`, allowing the cull from `cull_at`.
    pub fn warned(&mut self, user: &str, server: &str, warned_at: f64, cull_at: f64) {
        if let Some(view) = self.get_mut(user, server) {
            view.warned_at = Some(warned_at);
            view.stop_at = Some(view.stop_at.map_or(cull_at, |t| t.max(cull_at)));
        }
    }

    /// A server kept, and why.
    pub fn skip(&mut self, skip: &Skip) {
        let Some(server) = skip.server.as_deref() else {
            return;
        };
        if let Some(view) = self.get_mut(&skip.user, server) {
            view.verdict = "keep";
            view.reason = skip.reason.label();
            view.detail.clone_from(&skip.detail);
        }
    }

    /// A server stopped, or that a dry run would stop.
    pub fn action(&mut self, action: &Action) {
        let Some(server) = action.server.as_deref() else {
            return;
        };
        if let Some(view) = self.get_mut(&action.user, server) {
            (view.verdict, view.reason) = match action.outcome {
                Outcome::WouldStop => ("would-stop", action.reason.label()),
                Outcome::Failed => ("keep", "failed"),
                _ => ("stop", action.reason.label()),
            };
            view.detail.clone_from(&action.detail);
            view.stop_reason = Some(action.reason.label());
        }
    }
}

/// The snapshot the page reads, and the last passes.
#[derive(Debug, Default)]
pub struct Board {
    snapshot: RwLock<Arc<Snapshot>>,
    history: Mutex<VecDeque<PassSummary>>,
}

impl Board {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn history(&self) -> Vec<PassSummary> {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.iter().rev().cloned().collect()
    }

    /// Replace the snapshot with what a pass made at `now` (its start) saw. An incomplete pass keeps the
    /// previous views of servers it did not reach, so nobody's server drops off the page.
    pub fn publish(&self, now: f64, draft: Draft, report: &PassReport) {
        let mut views: Vec<ServerView> = draft.views.into_values().collect();
        if !report.complete {
            let old = self.snapshot();
            let seen: std::collections::HashSet<(&str, &str)> = views
                .iter()
                .map(|v| (v.user.as_str(), v.server.as_str()))
                .collect();
            let missing: Vec<ServerView> = old
                .views
                .iter()
                .filter(|v| !seen.contains(&(v.user.as_str(), v.server.as_str())))
                .cloned()
                .collect();
            views.extend(missing);
        }
        views.sort_by(|a, b| (&a.user, &a.server).cmp(&(&b.user, &b.server)));
        let summary = PassSummary {
            started: now,
            seconds: report.seconds,
            complete: report.complete,
            dry_run: report.dry_run,
            users_seen: report.users_seen,
            servers_seen: report.servers_seen,
            stopped: report.count(Outcome::Stopped, true)
                + report.count(Outcome::Gone, true)
                + report.count(Outcome::Stopping, true),
            deleted: report.count(Outcome::Deleted, false),
            warned: report.totals.warned.values().sum(),
            kept_alive: report
                .totals
                .skipped
                .get("kept-alive")
                .copied()
                .unwrap_or(0),
            errors: report.errors_total,
        };
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot {
            at: Some(now),
            complete: report.complete,
            views,
        });
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(summary);
    }
}

/// A view of a server the policy has judged, before its verdict is known.
pub fn view(
    user: &str,
    server: &str,
    last_activity: Option<&str>,
    inactive: Option<f64>,
    (limit, group_limit): (f64, bool),
    due: Option<(CullReason, f64)>,
    now: f64,
) -> ServerView {
    ServerView {
        user: user.to_owned(),
        server: server.to_owned(),
        inactive,
        last_activity: last_activity.map(str::to_owned),
        limit,
        group_limit,
        verdict: "keep",
        reason: "active",
        detail: None,
        stop_at: due.map(|(_, seconds)| now + seconds),
        stop_reason: due.map(|(reason, _)| reason.label()),
        warned_at: None,
        kept_until: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::KeepReason;

    fn complete() -> PassReport {
        PassReport {
            complete: true,
            ..PassReport::default()
        }
    }

    fn v(user: &str, server: &str, stop_in: Option<f64>) -> ServerView {
        view(
            user,
            server,
            None,
            Some(10.0),
            (3600.0, false),
            stop_in.map(|s| (CullReason::Idle, s)),
            1000.0,
        )
    }

    #[test]
    fn a_user_reads_only_their_own_servers() {
        let mut draft = Draft::default();
        for (user, server) in [("bob", ""), ("alice", "lab"), ("alice", ""), ("alicia", "")] {
            draft.insert(v(user, server, None));
        }
        let board = Board::default();
        board.publish(1000.0, draft, &complete());
        let snapshot = board.snapshot();
        let names: Vec<_> = snapshot
            .for_user("alice")
            .iter()
            .map(|v| (v.user.as_str(), v.server.as_str()))
            .collect();
        assert_eq!(names, [("alice", ""), ("alice", "lab")]);
        assert!(snapshot.for_user("ali").is_empty());
        assert!(snapshot.for_user("zed").is_empty());
        assert_eq!(board.history().len(), 1);
    }

    #[test]
    fn skips_and_actions_set_the_verdict_and_due_culls_are_sorted() {
        let mut draft = Draft::default();
        draft.insert(v("a", "", Some(1800.0)));
        draft.insert(v("b", "", Some(60.0)));
        draft.insert(v("c", "", Some(7200.0)));
        draft.insert(v("d", "", Some(0.0)));
        draft.skip(&Skip::new("a", Some(""), KeepReason::KeptAlive("T".into())));
        draft.action(
            &Action::server("d", "", CullReason::Idle, Some(4000.0)).with(Outcome::Stopped, None),
        );
        draft.warned("b", "", 1000.0, 1600.0);
        let board = Board::default();
        board.publish(1000.0, draft, &complete());
        let snapshot = board.snapshot();
        let a = &snapshot.for_user("a")[0];
        assert_eq!(
            (a.verdict, a.reason, a.detail.as_deref()),
            ("keep", "kept-alive", Some("until T"))
        );
        let d = &snapshot.for_user("d")[0];
        assert_eq!((d.verdict, d.reason), ("stop", "idle"));
        let b = &snapshot.for_user("b")[0];
        assert_eq!((b.warned_at, b.stop_at), (Some(1000.0), Some(1600.0)));
        let due: Vec<_> = snapshot
            .due_within(3600.0)
            .iter()
            .map(|v| v.user.as_str())
            .collect();
        assert_eq!(
            due,
            ["b", "a"],
            "soonest first; stopped and later ones left out"
        );
    }

    #[test]
    fn an_incomplete_pass_keeps_the_servers_it_did_not_reach_and_history_is_bounded() {
        let board = Board::default();
        let mut draft = Draft::default();
        draft.insert(v("a", "", None));
        draft.insert(v("b", "", None));
        board.publish(1000.0, draft, &complete());
        let mut draft = Draft::default();
        draft.insert(v("a", "", Some(5.0)));
        board.publish(2000.0, draft, &PassReport::default());
        let snapshot = board.snapshot();
        assert_eq!(snapshot.views.len(), 2);
        assert!(
            snapshot.for_user("a")[0].stop_at.is_some(),
            "the new view wins"
        );
        for i in 0..30 {
            board.publish(f64::from(i), Draft::default(), &complete());
        }
        let history = board.history();
        assert_eq!(history.len(), HISTORY);
        assert_eq!(history[0].started, 29.0, "newest first");
    }
}
