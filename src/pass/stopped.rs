//! Stopped named servers (`--remove-stopped-named-servers`): listed with
//! `include_stopped_servers`, never counted as alive, and removed once stopped long enough.

use crate::models::Server;
use crate::policy::{decide_stopped, CullReason, KeepReason};
use crate::signals::IdleBy;
use crate::stretch::Stretch;
use crate::timestamp::parse_timestamp;

use super::jobs::{ServerFacts, ServerJob};
use super::PassSettings;

/// A stopped named server: `None` when the rule does not apply to it; otherwise a removal job
/// once it has been stopped long enough, and what the warning gate needs to know.
pub(super) fn judge_stopped(
    settings: &PassSettings,
    name: &str,
    server: &Server,
) -> Option<(Result<ServerJob, KeepReason>, ServerFacts)> {
    let since = server
        .last_activity
        .as_deref()
        .or(server.started.as_deref());
    let stopped_for = since
        .and_then(|t| parse_timestamp(t).ok())
        .map(|t| settings.now - t);
    let policy = &settings.policy;
    let after = policy.remove_stopped_named_servers;
    let decision = decide_stopped(policy, name, stopped_for)?.map(|reason| ServerJob {
        name: name.to_owned(),
        reason,
        inactive: stopped_for,
        age: None,
        limit: after,
        started: None,
        hub_inactive: stopped_for,
        probe_at: None,
        probe: None,
        note: None,
    });
    let facts = ServerFacts {
        stretch: Stretch::by_hub(server.last_activity.as_deref(), server.started.as_deref()),
        due: stopped_for.map(|s| (CullReason::LongStopped, (after - s).max(0.0))),
        inactive: stopped_for,
        kept_until: None,
        idle_by: IdleBy::Hub,
    };
    Some((decision, facts))
}
