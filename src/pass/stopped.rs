//! Stopped named servers (`--remove-stopped-named-servers`): listed with
//! `include_stopped_servers`, never counted as alive, and removed once stopped long enough.

use serde_json::value::RawValue;

use crate::models::Server;
use crate::policy::{decide_stopped, CullReason, KeepReason};
use crate::timestamp::parse_timestamp;
use crate::warn::stretch;

use super::act::log_cull;
use super::jobs::ServerJob;
use super::plan::{Planner, ServerFacts};

impl Planner<'_> {
    /// A stopped named server: a removal job once it has been stopped long enough (and warned,
    /// with warnings on).
    pub(super) fn plan_stopped(
        &mut self,
        user: &str,
        name: &str,
        server: &Server,
        raw: &RawValue,
        user_json: &str,
    ) -> Option<ServerJob> {
        let now = self.settings.now;
        let since = server
            .last_activity
            .as_deref()
            .or(server.started.as_deref());
        let stopped_for = since.and_then(|t| parse_timestamp(t).ok()).map(|t| now - t);
        let policy = &self.settings.policy;
        let after = policy.remove_stopped_after;
        let decision = decide_stopped(policy, name, stopped_for)?.map(|reason| ServerJob {
            name: name.to_owned(),
            reason,
            inactive: stopped_for,
            age: None,
            limit: after,
            probe_at: None,
            probe: None,
            note: None,
        });
        let facts = ServerFacts {
            stretch: stretch(server.last_activity.as_deref(), server.started.as_deref()),
            due: stopped_for.map(|s| (CullReason::LongStopped, (after - s).max(0.0))),
            inactive: stopped_for,
            kept_until: None,
        };
        match self.gate_server(user, name, raw, decision, facts, user_json) {
            Ok(job) => {
                log_cull(user, &job, self.settings.dry_run);
                Some(job)
            }
            Err(keep) => {
                if matches!(keep, KeepReason::Warned(_) | KeepReason::NotWarned) {
                    self.keep(user, Some(name), keep);
                }
                None
            }
        }
    }
}
