//! The views of the servers a pass judged, as the page will show them: built as the pass goes,
//! and handed to the board, finished, when it ends.

use std::collections::HashMap;

use crate::board::{Cull, ServerView, RECENT_CULLS};
use crate::reasons::{CullReason, KeepKind, Verdict, Why};

/// The views a pass builds as it goes.
#[derive(Debug, Default)]
pub struct Draft {
    views: HashMap<(String, String), ServerView>,
    /// The pass's last culls, at most as many as the board lists.
    culls: Vec<Cull>,
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
    pub fn kept(&mut self, user: &str, server: &str, why: Why, detail: Option<&str>) {
        if let Some(view) = self.get_mut(user, server) {
            view.verdict = Verdict::Keep;
            view.reason = why;
            view.detail = detail.map(str::to_owned);
        }
    }

    /// A stop for `reason`: done or under way (`Some(true)`), a dry run's (`Some(false)`), or
    /// failed (`None`).
    pub fn stopped(
        &mut self,
        user: &str,
        server: &str,
        reason: CullReason,
        stopped: Option<bool>,
        detail: Option<&str>,
    ) {
        if let Some(view) = self.get_mut(user, server) {
            (view.verdict, view.reason) = match stopped {
                Some(true) => (Verdict::Stop, Why::Culled(reason)),
                Some(false) => (Verdict::WouldStop, Why::Culled(reason)),
                None => (Verdict::Keep, Why::Kept(KeepKind::StopFailed)),
            };
            view.detail = detail.map(str::to_owned);
            view.stop_reason = Some(reason);
        }
    }

    /// A stop or deletion done (or under way) at `at`.
    pub fn culled(
        &mut self,
        user: &str,
        server: Option<&str>,
        reason: CullReason,
        outcome: &'static str,
        at: f64,
    ) {
        if self.culls.len() == RECENT_CULLS {
            self.culls.remove(0);
        }
        self.culls.push(Cull {
            user: user.to_owned(),
            server: server.map(str::to_owned),
            reason: reason.label(),
            outcome,
            at,
            pass_started: at, // the board sets the pass's start
        });
    }

    pub fn finish(self) -> (Vec<ServerView>, Vec<Cull>) {
        (self.views.into_values().collect(), self.culls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::view;
    use crate::policy::LimitFrom;

    #[test]
    fn skips_stops_and_warnings_set_the_verdict() {
        let mut draft = Draft::default();
        for user in ["a", "b", "d", "f"] {
            draft.insert(view(
                user,
                "",
                None,
                Some(10.0),
                (3600.0, LimitFrom::Timeout),
                Some((CullReason::Idle, 60.0)),
                1000.0,
            ));
        }
        draft.kept("a", "", Why::Kept(KeepKind::KeptAlive), Some("until T"));
        draft.stopped("d", "", CullReason::Idle, Some(true), None);
        draft.stopped("f", "", CullReason::Idle, None, Some("500"));
        draft.warned("b", "", 1000.0, 1600.0);
        draft.kept("nobody", "", Why::Kept(KeepKind::Cap), None);
        let (mut views, _) = draft.finish();
        views.sort_by(|x, y| x.user.cmp(&y.user));
        let [a, b, d, f] = &views[..] else {
            panic!("{views:?}")
        };
        assert_eq!(
            (a.verdict, a.reason, a.detail.as_deref()),
            (
                Verdict::Keep,
                Why::Kept(KeepKind::KeptAlive),
                Some("until T")
            )
        );
        assert_eq!((b.warned_at, b.stop_at), (Some(1000.0), Some(1600.0)));
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Stop, Why::Culled(CullReason::Idle))
        );
        assert_eq!((f.verdict, f.reason.label()), (Verdict::Keep, "failed"));
    }
}
