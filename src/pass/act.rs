//! Acting on planned jobs: stopping servers and deleting users, concurrently across users.

use futures::future::FutureExt;
use futures::stream::StreamExt;

use crate::hub::{DeleteOutcome, HubApi, StopOutcome};
use crate::keepalive::KeepAlives;
use crate::models::Server;
use crate::policy::{decide_user, CullReason, KeepReason, UserFacts};
use crate::timestamp::{format_duration, format_utc};

use super::jobs::{Acted, Listing, ServerJob, UserJob};
use super::report::{log_name, Action, Outcome, PassReport, Skip};
use super::{PassSettings, LOG};

/// Stop and delete what `jobs` plan (in a dry run, only record what would be done); what the
/// acting did to `listing`.
pub(super) async fn act(
    hub: &dyn HubApi,
    settings: &PassSettings,
    keep_alives: Option<&KeepAlives>,
    listing: Listing,
    jobs: Vec<UserJob>,
    report: &mut PassReport,
) -> Acted {
    if settings.dry_run {
        for job in jobs {
            for action in dry_run_actions(job) {
                report.record_action(action);
            }
        }
        return Acted::default();
    }
    // Only as many jobs in flight as requests may be: a job's future is kilobytes (it holds
    // its requests), so creating them all at once would make memory grow with the work.
    let mut running = futures::stream::iter(jobs)
        .map(|job| {
            let may_leave = listing.may_lose(&job);
            run_job(hub, settings, keep_alives, job).map(move |done| (may_leave, done))
        })
        .buffer_unordered(hub.concurrency());
    let mut acted = Acted::default();
    while let Some((may_leave, (actions, kept))) = running.next().await {
        for skip in kept {
            report.record_skip(skip);
        }
        if may_leave {
            acted.left += 1;
            if actions.iter().any(|a| a.outcome.is_unsettled()) {
                acted.unsettled += 1;
            }
        }
        for action in actions {
            report.record_action(action);
        }
    }
    acted
}

pub(super) fn dry_run_actions(job: UserJob) -> Vec<Action> {
    let mut actions: Vec<Action> = job
        .servers
        .into_iter()
        .map(|s| {
            Action::server(&job.user, &s.name, s.reason, s.inactive)
                .with(Outcome::WouldStop, s.note)
                .with_probe(s.probe)
        })
        .collect();
    if let Some((reason, inactive)) = job.delete {
        log::info!(
            target: LOG,
            user = job.user.as_str(), action = "delete-user", reason = reason.label(),
            idle_seconds = idle_seconds(inactive).as_str();
            "Would delete user {} ({reason}, inactive for {})", job.user, format_duration(inactive)
        );
        actions.push(Action::user(&job.user, reason, inactive));
    }
    actions
}

pub(super) fn idle_seconds(inactive: Option<f64>) -> String {
    inactive.map_or_else(String::new, |s| format!("{s:.0}"))
}

pub(super) fn log_cull(user: &str, job: &ServerJob, dry_run: bool) {
    let verb = match (job.reason == CullReason::LongStopped, dry_run) {
        (true, true) => "Would remove stopped",
        (true, false) => "Removing stopped",
        (false, true) => "Would cull",
        (false, false) => "Culling",
    };
    log::info!(
        target: LOG,
        user = user, server = job.name.as_str(), action = "stop-server", reason = job.reason.label(),
        idle_seconds = idle_seconds(job.inactive).as_str();
        "{verb} server {} ({})", log_name(user, &job.name), job.why()
    );
}

async fn stop(hub: &dyn HubApi, remove: bool, user: &str, server: &ServerJob) -> Action {
    let name = log_name(user, &server.name);
    let (outcome, detail) = match hub.stop_server(user, &server.name, remove).await {
        Ok(StopOutcome::Stopped) => {
            log::debug!(target: LOG, "Stopped server {name}");
            (Outcome::Stopped, None)
        }
        Ok(StopOutcome::Stopping) => {
            log::warn!(target: LOG, "Server {name} is slow to stop");
            (Outcome::Stopping, None)
        }
        Ok(StopOutcome::Gone) => {
            log::info!(target: LOG, "Server {name} was already gone");
            (Outcome::Gone, None)
        }
        Err(e) => {
            log::warn!(target: LOG, "Failed to stop server {name}: {e}");
            (Outcome::Failed, Some(e.to_string()))
        }
    };
    Action::server(user, &server.name, server.reason, server.inactive)
        .with(outcome, detail.or_else(|| server.note.clone()))
        .with_probe(server.probe.clone())
}

/// A keep-alive granted since the server was judged, looked up (in memory) just before its
/// stop: the pass may have judged it minutes ago on a large Hub, and the person who was warned
/// is asked to click during exactly that time. As when judging, it stands in for activity
/// only: max age and `--busy-timeout` still cull.
fn kept_since_judged(
    settings: &PassSettings,
    keep_alives: Option<&KeepAlives>,
    user: &str,
    server: &ServerJob,
) -> Option<Skip> {
    if server.reason != CullReason::Idle
        || (settings.work.enabled() && settings.work.past_busy_timeout(server.inactive))
    {
        return None;
    }
    let until = keep_alives?.in_force_until(user, &server.name, settings.now)?;
    log::info!(
        target: LOG,
        "Not culling server {}: kept alive until {} since it was judged",
        log_name(user, &server.name),
        format_utc(until)
    );
    Some(Skip::new(
        user,
        Some(&server.name),
        KeepReason::KeptAlive { until },
    ))
}

async fn run_job(
    hub: &dyn HubApi,
    settings: &PassSettings,
    keep_alives: Option<&KeepAlives>,
    mut job: UserJob,
) -> (Vec<Action>, Vec<Skip>) {
    let remove = settings.policy.remove_named_servers;
    let user = job.user.clone();
    let mut kept = Vec::new();
    job.servers.retain(|s| {
        let skip = kept_since_judged(settings, keep_alives, &user, s);
        let stays = skip.is_none();
        kept.extend(skip);
        stays
    });
    if !kept.is_empty() && job.delete.take().is_some() {
        kept.push(
            Skip::new(&user, None, KeepReason::ServersAlive(kept.len()))
                .with_detail(Some("a server is kept alive".into())),
        );
    }
    let stops = job.servers.iter().map(|s| {
        // A server already stopped is only ever asked to go away.
        stop(hub, remove || s.reason == CullReason::LongStopped, &user, s)
    });
    let mut actions: Vec<Action> = futures::future::join_all(stops).await;
    if let Some((reason, inactive)) = job.delete {
        let alive = actions.iter().filter(|a| !a.outcome.is_down()).count();
        let stopped_now = !actions.is_empty();
        let (outcome, detail) = if alive > 0 {
            log::debug!(target: LOG, "Not culling user {} with {alive} servers still alive", job.user);
            (Outcome::Kept, Some(format!("{alive} servers still alive")))
        } else {
            delete_user(hub, settings, &job.user, reason, inactive, stopped_now).await
        };
        actions.push(Action::user(&job.user, reason, inactive).with(outcome, detail));
    }
    (actions, kept)
}

/// Delete a user, after checking again that it has no active server and, unless this pass
/// just stopped its servers (which moves its activity to now), that it is still to be culled.
/// The listing may be old by now: a user who started a server since must not lose it.
async fn delete_user(
    hub: &dyn HubApi,
    settings: &PassSettings,
    name: &str,
    reason: CullReason,
    inactive: Option<f64>,
    stopped_now: bool,
) -> (Outcome, Option<String>) {
    let mut fresh = match hub.get_user(name).await {
        Ok(Some(user)) => user,
        Ok(None) => return (Outcome::Gone, None),
        Err(e) => {
            log::warn!(target: LOG, "Not deleting user {name}: cannot check it again: {e}");
            return (Outcome::Failed, Some(e.to_string()));
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
        return (
            Outcome::Kept,
            Some(format!("{active} servers became active")),
        );
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
                Outcome::Kept,
                Some(format!("no longer to be culled: {}", keep.label())),
            );
        }
    }
    let detail = match reason {
        CullReason::Idle => format!("inactive for {}", format_duration(inactive)),
        CullReason::MaxAge => format!("max-age, inactive for {}", format_duration(inactive)),
        // Users are not deleted for this reason; no server is alive to be stopped.
        CullReason::LongStopped => format!("stopped, inactive for {}", format_duration(inactive)),
    };
    log::info!(
        target: LOG,
        user = name, action = "delete-user", reason = reason.label(),
        idle_seconds = idle_seconds(inactive).as_str();
        "Culling user {name} ({detail})"
    );
    match hub.delete_user(name).await {
        Ok(DeleteOutcome::Deleted) => (Outcome::Deleted, None),
        Ok(DeleteOutcome::Gone) => (Outcome::Gone, None),
        Err(e) => {
            log::warn!(target: LOG, "Failed to delete user {name}: {e}");
            (Outcome::Failed, Some(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::jobs::tests::job;
    use super::*;

    #[test]
    fn dry_runs_report_what_would_happen() {
        let actions = dry_run_actions(job("a", &[("", 900.0)], Some(900.0)));
        let outcomes: Vec<_> = actions.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, [Outcome::WouldStop, Outcome::WouldDelete]);
    }
}
