//! Decisions before a job: whether any rule may touch a user, and a server's decision as a job
//! for the pass (the policy's verdict, and whether the server is asked about its work first).

use crate::models::{Server, User};
use crate::policy::{decide_server, Idleness, KeepReason, Policy};
use crate::probe::server_base;
use crate::reasons::KeepKind;
use crate::timestamp::format_duration;

use super::jobs::ServerJob;
use super::probing::needs_probe;
use super::report::log_name;
use super::{PassSettings, LOG};

/// The policy's decision on a server it has measured; `verdict` is the arbiter's, when the idle
/// rule applies. With `probing`, an idle candidate is to be asked first. `hub_inactive` is how
/// long the Hub has seen it idle (with `--idle-by=work`, `idleness` is by its work).
pub(super) fn decide(
    settings: &PassSettings,
    probing: bool,
    (user, name, server): (&str, &str, &Server),
    (idleness, hub_inactive): (&Idleness, Option<f64>),
    limit: f64,
    verdict: Option<bool>,
) -> Result<ServerJob, KeepReason> {
    let log_name = log_name(user, name);
    let policy = &settings.policy;
    let inactive = format_duration(idleness.inactive);
    let age = format_duration(idleness.age);
    match decide_server(policy, limit, name, idleness, verdict) {
        Ok(reason) => {
            let work = settings.work;
            let probe = probing && needs_probe(&work, reason, idleness.inactive);
            let mut job = ServerJob {
                name: name.to_owned(),
                reason,
                inactive: idleness.inactive,
                age: idleness.age,
                limit,
                started: super::work_mode::started_at(server),
                hub_inactive,
                probe_at: probe.then(|| {
                    server_base(
                        settings.server_url.as_deref(),
                        server.url.as_deref(),
                        server.full_url.as_deref(),
                    )
                }),
                probe: None,
                note: None,
            };
            if probe {
                log::debug!(target: LOG, "Server {log_name} is {}; asking it what it runs", job.why());
            } else if work.enabled() && work.past_busy_timeout(job.inactive) {
                job.note = Some("idle past --busy-timeout; not asked".into());
            }
            Ok(job)
        }
        Err(keep) => {
            log::debug!(target: LOG, "Not culling server {log_name} ({}; age: {age}, inactive for {inactive})", keep.label());
            Err(keep)
        }
    }
}

/// Users no rule may touch: exempt ones, and with group rules, those whose groups are unknown.
pub(super) fn user_gate(policy: &Policy, user: &User, groups: &[String]) -> Option<KeepReason> {
    if policy.uses_groups() && user.groups.is_none() {
        log::warn!(
            target: LOG,
            "Not culling user {}: group rules are set but the Hub did not say which groups it is in \
             (the token needs read:users:groups)",
            user.name
        );
        return Some(KeepReason::Kept(KeepKind::NoGroups));
    }
    if policy.is_exempt(&user.name, groups) {
        log::debug!(target: LOG, "Not culling user {}: exempt", user.name);
        return Some(KeepReason::Kept(KeepKind::Exempt));
    }
    None
}
