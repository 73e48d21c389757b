//! What the last pass saw of each running server and what it decided, for the page: a
//! snapshot replaced whole at the end of each pass, so a page view reads memory and never the
//! Hub. It holds one small entry per running server, and only while the page is served.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;

use crate::policy::LimitFrom;
use crate::reasons::{CullReason, KeepKind, Verdict, Why};
use crate::signals::IdleBy;

/// How many passes the operators' view lists.
pub const HISTORY: usize = 20;
/// How many of the last culls the operators' view lists (a bound, whatever the Hub's size).
pub const RECENT_CULLS: usize = 50;

/// One running server and its verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerView {
    pub user: String,
    /// `""` for the default server.
    pub server: String,
    /// Seconds idle when the pass looked, as the Hub counts it or by the work seen (`idle_by`).
    pub inactive: Option<f64>,
    pub last_activity: Option<String>,
    /// This server's idle limit, in seconds (a group's, when one applies).
    pub limit: f64,
    /// The limit is a group's (`--group-timeout`), not `--timeout`.
    pub group_limit: bool,
    /// The limit is this profile's (`--profile-timeout`).
    pub profile: Option<String>,
    pub verdict: Verdict,
    /// Why: a skip reason (`active`, `exempt`, `kept-alive`, `busy`, `warned`, …) or a cull
    /// reason (`idle`, `max-age`).
    pub reason: Why,
    pub detail: Option<String>,
    /// When the policy will stop it if nothing changes (seconds since the epoch), and why.
    pub stop_at: Option<f64>,
    pub stop_reason: Option<CullReason>,
    /// When a warning for this idle stretch was given.
    pub warned_at: Option<f64>,
    /// The keep-alive in force, if any.
    pub kept_until: Option<f64>,
    /// `inactive` is by the work seen inside the server (`--idle-by=work`).
    pub idle_by: IdleBy,
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

/// A stop or deletion a pass made, as the operators' view lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cull {
    pub user: String,
    /// `None` for a user deletion; `""` for the default server.
    pub server: Option<String>,
    /// A cull reason's label (`idle`, `max-age`).
    pub reason: &'static str,
    /// `stopped`, `stopping` (the Hub was still at it), `gone` or `deleted`.
    pub outcome: &'static str,
    /// When the culler acted, and when its pass started (seconds since the epoch).
    pub at: f64,
    pub pass_started: f64,
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
            .filter(|v| v.verdict == Verdict::Keep && v.stop_at.is_some_and(|t| t <= at + seconds))
            .collect();
        due.sort_by(|a, b| {
            a.stop_at
                .partial_cmp(&b.stop_at)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        due
    }
}

/// The snapshot the page reads, and the last passes.
#[derive(Debug, Default)]
pub struct Board {
    snapshot: RwLock<Arc<Snapshot>>,
    history: Mutex<VecDeque<PassSummary>>,
    culls: Mutex<VecDeque<Cull>>,
}

impl Board {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn history(&self) -> Vec<PassSummary> {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.iter().rev().cloned().collect()
    }

    /// The last culls, newest first.
    pub fn recent_culls(&self) -> Vec<Cull> {
        let culls = self.culls.lock().unwrap_or_else(PoisonError::into_inner);
        culls.iter().rev().cloned().collect()
    }

    /// Replace the snapshot with the views of a pass made at `now` (its start). An incomplete
    /// pass keeps the previous views of servers it did not reach, so nobody's server drops off
    /// the page.
    pub fn publish(
        &self,
        now: f64,
        complete: bool,
        mut views: Vec<ServerView>,
        summary: PassSummary,
        culls: Vec<Cull>,
    ) {
        if !complete {
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
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot {
            at: Some(now),
            complete,
            views,
        });
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(summary);
        drop(history);
        let mut recent = self.culls.lock().unwrap_or_else(PoisonError::into_inner);
        for cull in culls {
            if recent.len() == RECENT_CULLS {
                recent.pop_front();
            }
            recent.push_back(Cull {
                pass_started: now,
                ..cull
            });
        }
    }
}

/// A view of a server the policy has judged, before its verdict is known.
pub fn view(
    user: &str,
    server: &str,
    last_activity: Option<&str>,
    inactive: Option<f64>,
    (limit, from): (f64, LimitFrom),
    due: Option<(CullReason, f64)>,
    now: f64,
) -> ServerView {
    ServerView {
        user: user.to_owned(),
        server: server.to_owned(),
        inactive,
        last_activity: last_activity.map(str::to_owned),
        limit,
        group_limit: from == LimitFrom::Group,
        profile: match from {
            LimitFrom::Profile(profile) => Some(profile),
            LimitFrom::Group | LimitFrom::Timeout => None,
        },
        verdict: Verdict::Keep,
        reason: Why::Kept(KeepKind::Active),
        detail: None,
        stop_at: due.map(|(_, seconds)| now + seconds),
        stop_reason: due.map(|(reason, _)| reason),
        warned_at: None,
        kept_until: None,
        idle_by: IdleBy::Hub,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn v(user: &str, server: &str, stop_in: Option<f64>) -> ServerView {
        view(
            user,
            server,
            None,
            Some(10.0),
            (3600.0, LimitFrom::Timeout),
            stop_in.map(|s| (CullReason::Idle, s)),
            1000.0,
        )
    }

    fn summary(started: f64) -> PassSummary {
        PassSummary {
            started,
            seconds: 0.0,
            complete: true,
            dry_run: false,
            users_seen: 0,
            servers_seen: 0,
            stopped: 0,
            deleted: 0,
            warned: 0,
            kept_alive: 0,
            errors: 0,
        }
    }

    #[test]
    fn a_user_reads_only_their_own_servers() {
        let views = [("bob", ""), ("alice", "lab"), ("alice", ""), ("alicia", "")]
            .iter()
            .map(|(user, server)| v(user, server, None))
            .collect();
        let board = Board::default();
        board.publish(1000.0, true, views, summary(1000.0), Vec::new());
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
    fn due_culls_are_sorted_soonest_first() {
        let mut stopped = v("d", "", Some(0.0));
        stopped.verdict = Verdict::Stop;
        let views = vec![
            v("a", "", Some(1800.0)),
            v("b", "", Some(60.0)),
            v("c", "", Some(7200.0)),
            stopped,
        ];
        let board = Board::default();
        board.publish(1000.0, true, views, summary(1000.0), Vec::new());
        let snapshot = board.snapshot();
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
        board.publish(
            1000.0,
            true,
            vec![v("a", "", None), v("b", "", None)],
            summary(1000.0),
            Vec::new(),
        );
        board.publish(
            2000.0,
            false,
            vec![v("a", "", Some(5.0))],
            summary(2000.0),
            Vec::new(),
        );
        let snapshot = board.snapshot();
        assert_eq!(snapshot.views.len(), 2);
        assert!(
            snapshot.for_user("a")[0].stop_at.is_some(),
            "the new view wins"
        );
        for i in 0..30 {
            board.publish(
                f64::from(i),
                true,
                Vec::new(),
                summary(f64::from(i)),
                Vec::new(),
            );
        }
        let history = board.history();
        assert_eq!(history.len(), HISTORY);
        assert_eq!(history[0].started, 29.0, "newest first");
    }

    #[test]
    fn the_last_culls_are_listed_newest_first_with_their_pass_and_bounded() {
        let board = Board::default();
        let cull = |user: &str, at: f64| Cull {
            user: user.to_owned(),
            server: Some(String::new()),
            reason: "idle",
            outcome: "stopped",
            at,
            pass_started: at,
        };
        board.publish(
            1000.0,
            true,
            Vec::new(),
            summary(1000.0),
            vec![cull("a", 1001.0)],
        );
        assert_eq!(board.recent_culls()[0].pass_started, 1000.0);
        let many: Vec<Cull> = (0..RECENT_CULLS + 5)
            .map(|i| {
                cull(
                    &format!("u{i}"),
                    2000.0 + f64::from(u32::try_from(i).unwrap()),
                )
            })
            .collect();
        board.publish(2000.0, true, Vec::new(), summary(2000.0), many);
        let recent = board.recent_culls();
        assert_eq!(recent.len(), RECENT_CULLS);
        assert_eq!(
            recent[0].user,
            format!("u{}", RECENT_CULLS + 4),
            "newest first"
        );
        assert!(recent
            .iter()
            .all(|c| c.pass_started == 2000.0 && c.user != "a"));
    }
}
