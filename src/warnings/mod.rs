//! Warnings before culling. Here, the rule: when the policy will cull a server or user if
//! nothing changes, and whether a cull that is due may go ahead yet, as pure functions like the
//! policy they follow. [`delivery`] delivers them; `pass::warnings` is the gate in a pass.
//!
//! The arbiter hook cannot be predicted, so predictions use the default arbiter: a server is
//! due once idle for its limit, or, with `--max-age`, once that old.

pub mod delivery;

use crate::policy::{idle_rule_applies, CullReason, Idleness, Policy, UserFacts};
use crate::state::Entry;
use crate::stretch::Stretch;
use crate::timestamp::parse_timestamp;

/// The seconds from now until the policy culls this server if it stays idle, and why; `None`
/// if no rule ever would. A server its user keeps alive for `kept_for` more seconds is not
/// culled for idleness before then; max age still culls it.
pub fn server_due_in(
    policy: &Policy,
    limit: f64,
    name: &str,
    idleness: &Idleness,
    kept_for: Option<f64>,
) -> Option<(CullReason, f64)> {
    let idle = idleness
        .inactive
        .filter(|_| idle_rule_applies(policy, name, idleness))
        .map(|inactive| {
            let due = (limit - inactive).max(kept_for.unwrap_or(0.0)).max(0.0);
            (CullReason::Idle, due)
        });
    let old = idleness
        .age
        .filter(|_| policy.max_age > 0.0)
        .map(|age| (CullReason::MaxAge, (policy.max_age - age).max(0.0)));
    earliest(idle, old)
}

/// The same for deleting a user, once it has no server left.
pub fn user_due_in(
    policy: &Policy,
    limit: f64,
    facts: &UserFacts<'_>,
    now: f64,
) -> Option<(CullReason, f64)> {
    let since = |t: Option<&str>| t.and_then(|t| parse_timestamp(t).ok()).map(|t| now - t);
    let age = since(facts.created);
    let inactive = since(facts.last_activity).or(age);
    let idle = inactive
        .filter(|_| policy.cull_admin_users || !facts.admin)
        .map(|inactive| (CullReason::Idle, (limit - inactive).max(0.0)));
    let old = age
        .filter(|_| policy.max_age > 0.0)
        .map(|age| (CullReason::MaxAge, (policy.max_age - age).max(0.0)));
    earliest(idle, old)
}

fn earliest(
    a: Option<(CullReason, f64)>,
    b: Option<(CullReason, f64)>,
) -> Option<(CullReason, f64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.1 < a.1 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// What warnings allow for one server or user in this pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Not due within the window, and not warned for this stretch: nothing to do.
    Quiet,
    /// Warn now; it may be culled at `cull_at` at the earliest.
    Warn { cull_at: f64 },
    /// Warned for this stretch already; not before `cull_at`.
    Wait { cull_at: f64 },
    /// Warned at least the window ago: a cull that is due may go ahead.
    Go,
}

/// The gate for a server or user that is `due_in` seconds from being culled (`Some(0.0)` or
/// less: due now), given the warning `entry` remembered for it and its `stretch` now.
///
/// A warning whose delivery never ended (the culler died while delivering it) counts as not
/// given: it is delivered again, and no cull comes before a full window after that. A cull
/// time once announced is kept, whatever the window is now.
pub fn gate(
    due_in: Option<f64>,
    window: f64,
    now: f64,
    entry: Option<&Entry>,
    stretch: &Stretch,
) -> Gate {
    let entry = entry.filter(|e| e.stretch.same(stretch));
    match (due_in, entry) {
        (_, Some(entry)) if entry.delivered => {
            // The window counts from the warning, whatever the hook or the clock did since.
            let earliest = (entry.warned_at + window).max(entry.cull_at);
            if due_in.is_some_and(|d| d <= 0.0) && now >= earliest {
                Gate::Go
            } else {
                Gate::Wait { cull_at: earliest }
            }
        }
        (Some(due_in), entry) if due_in <= window => Gate::Warn {
            cull_at: (now + due_in.max(window)).max(entry.map_or(0.0, |e| e.cull_at)),
        },
        _ => Gate::Quiet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            inactive_limit: 3600.0,
            ..Policy::default()
        }
    }

    fn idle(inactive: f64, age: f64) -> Idleness {
        Idleness {
            inactive: Some(inactive),
            age: Some(age),
        }
    }

    fn s() -> Stretch {
        Stretch::by_hub(Some("s"), None)
    }

    fn entry(warned_at: f64, cull_at: f64) -> Entry {
        Entry {
            stretch: s(),
            warned_at,
            cull_at,
            delivered: true,
        }
    }

    #[test]
    fn a_server_is_due_when_idle_for_its_limit_or_at_max_age() {
        let p = policy();
        assert_eq!(
            server_due_in(&p, 3600.0, "", &idle(3000.0, 9000.0), None),
            Some((CullReason::Idle, 600.0))
        );
        assert_eq!(
            server_due_in(&p, 3600.0, "", &idle(4000.0, 9000.0), None),
            Some((CullReason::Idle, 0.0))
        );
        let aged = Policy {
            max_age: 10_000.0,
            ..policy()
        };
        assert_eq!(
            server_due_in(&aged, 3600.0, "", &idle(10.0, 9900.0), None),
            Some((CullReason::MaxAge, 100.0))
        );
        let named_only = Policy {
            cull_default_servers: false,
            ..policy()
        };
        assert_eq!(
            server_due_in(&named_only, 3600.0, "", &idle(4000.0, 9000.0), None),
            None
        );
        // A group's longer limit moves the window.
        assert_eq!(
            server_due_in(&p, 7200.0, "", &idle(4000.0, 9000.0), None),
            Some((CullReason::Idle, 3200.0))
        );
    }

    #[test]
    fn a_keep_alive_moves_an_idle_cull_but_not_max_age() {
        let p = policy();
        // Due now, kept for another 1800 s.
        assert_eq!(
            server_due_in(&p, 3600.0, "", &idle(4000.0, 9000.0), Some(1800.0)),
            Some((CullReason::Idle, 1800.0))
        );
        // A keep-alive shorter than the idle limit's remainder changes nothing.
        assert_eq!(
            server_due_in(&p, 3600.0, "", &idle(600.0, 9000.0), Some(60.0)),
            Some((CullReason::Idle, 3000.0))
        );
        let aged = Policy {
            max_age: 10_000.0,
            ..policy()
        };
        assert_eq!(
            server_due_in(&aged, 3600.0, "", &idle(4000.0, 9900.0), Some(7200.0)),
            Some((CullReason::MaxAge, 100.0))
        );
    }

    #[test]
    fn admins_kept_by_cull_admin_users_are_due_only_at_max_age() {
        let p = Policy {
            cull_admin_users: false,
            ..policy()
        };
        let facts = UserFacts {
            admin: true,
            created: Some("2026-11-27T09:00:00Z"),
            last_activity: Some("2026-11-27T09:00:00Z"),
        };
        let now = parse_timestamp("2026-11-27T10:00:00Z").unwrap();
        assert_eq!(user_due_in(&p, 3600.0, &facts, now), None);
        let plain = UserFacts {
            admin: false,
            ..facts
        };
        assert_eq!(
            user_due_in(&p, 3600.0, &plain, now),
            Some((CullReason::Idle, 0.0))
        );
    }

    #[test]
    fn the_gate_warns_once_then_waits_the_window_then_goes() {
        let window = 600.0;
        // Inside the window, not warned: warn; the cull is when the policy says.
        assert_eq!(
            gate(Some(300.0), window, 1000.0, None, &s()),
            Gate::Warn { cull_at: 1600.0 }
        );
        // Outside the window: nothing.
        assert_eq!(gate(Some(900.0), window, 1000.0, None, &s()), Gate::Quiet);
        assert_eq!(gate(None, window, 1000.0, None, &s()), Gate::Quiet);
        // Past its limit with no warning: warned now, culled a full window later.
        assert_eq!(
            gate(Some(0.0), window, 1000.0, None, &s()),
            Gate::Warn { cull_at: 1600.0 }
        );
        let given = entry(1000.0, 1600.0);
        assert_eq!(
            gate(Some(0.0), window, 1599.0, Some(&given), &s()),
            Gate::Wait { cull_at: 1600.0 }
        );
        assert_eq!(
            gate(Some(0.0), window, 1600.0, Some(&given), &s()),
            Gate::Go
        );
        // Warned, but not due now (the hook's limit, or a clock step): wait, never warn again.
        assert_eq!(
            gate(Some(50.0), window, 1700.0, Some(&given), &s()),
            Gate::Wait { cull_at: 1600.0 }
        );
    }

    #[test]
    fn a_new_stretch_is_warned_again() {
        let given = entry(1000.0, 1600.0);
        assert_eq!(
            gate(
                Some(0.0),
                600.0,
                5000.0,
                Some(&given),
                &Stretch::by_hub(Some("other"), None)
            ),
            Gate::Warn { cull_at: 5600.0 }
        );
    }

    #[test]
    fn an_undelivered_warning_is_given_again_and_allows_no_cull() {
        let pending = Entry {
            delivered: false,
            ..entry(1000.0, 1600.0)
        };
        // Long past the window it would have allowed: warned again, culled a window later.
        assert_eq!(
            gate(Some(0.0), 600.0, 5000.0, Some(&pending), &s()),
            Gate::Warn { cull_at: 5600.0 }
        );
        // Delivered again soon after: the time it may already have announced stands.
        assert_eq!(
            gate(Some(0.0), 600.0, 1010.0, Some(&pending), &s()),
            Gate::Warn { cull_at: 1610.0 }
        );
        let announced = Entry {
            delivered: false,
            ..entry(1000.0, 9000.0)
        };
        assert_eq!(
            gate(Some(0.0), 600.0, 1010.0, Some(&announced), &s()),
            Gate::Warn { cull_at: 9000.0 }
        );
    }

    #[test]
    fn an_announced_stop_time_is_kept_when_the_window_shrinks() {
        // Warned with a 3600 s window; the culler restarts with a 600 s one.
        let given = entry(1000.0, 4600.0);
        assert_eq!(
            gate(Some(0.0), 600.0, 2000.0, Some(&given), &s()),
            Gate::Wait { cull_at: 4600.0 }
        );
        assert_eq!(gate(Some(0.0), 600.0, 4600.0, Some(&given), &s()), Gate::Go);
    }
}
