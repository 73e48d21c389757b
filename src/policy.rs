//! The cull policy: which servers and users to cull, decided from what the Hub reported.
//!
//! Pure functions over plain numbers, so every rule of the reference culler is unit-tested
//! here without a Hub. Times are seconds; `now` is seconds since the epoch.

use crate::models::Server;
pub use crate::reasons::CullReason;
use crate::reasons::{KeepKind, Why};
use crate::signals::Signal;
use crate::timestamp::parse_timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Idle limit in seconds (`--timeout`).
    pub inactive_limit: f64,
    /// Cull servers (and users) older than this regardless of activity; 0 turns it off.
    pub max_age: f64,
    pub cull_users: bool,
    pub cull_admin_users: bool,
    pub cull_default_servers: bool,
    pub cull_named_servers: bool,
    pub remove_named_servers: bool,
    /// Remove named servers stopped for longer than this (`--remove-stopped-named-servers`);
    /// 0 turns it off.
    pub remove_stopped_after: f64,
    /// Idle limit for deleting users; `None` uses the user's server limit.
    pub user_inactive_limit: Option<f64>,
    /// Users whose name matches one of these shell-style globs are never culled nor deleted.
    pub exclude_users: Vec<String>,
    /// Members of these Hub groups are never culled nor deleted.
    pub exclude_groups: Vec<String>,
    /// Per-group idle limits for servers; a user in several of these groups gets the largest.
    pub group_limits: Vec<(String, f64)>,
}

impl Policy {
    /// Whether decisions need the users' groups (which the token must be allowed to see).
    pub fn uses_groups(&self) -> bool {
        !self.exclude_groups.is_empty() || !self.group_limits.is_empty()
    }

    /// Exempt by name or by group membership.
    pub fn is_exempt(&self, user: &str, groups: &[String]) -> bool {
        self.exclude_users
            .iter()
            .any(|pattern| glob_match(pattern, user))
            || groups.iter().any(|g| self.exclude_groups.contains(g))
    }

    /// The idle limit for a user's servers: the largest limit of its groups that have one.
    pub fn server_limit(&self, groups: &[String]) -> f64 {
        self.group_limits
            .iter()
            .filter(|(group, _)| groups.contains(group))
            .map(|&(_, limit)| limit)
            .reduce(f64::max)
            .unwrap_or(self.inactive_limit)
    }

    /// The idle limit for deleting a user.
    pub fn user_limit(&self, groups: &[String]) -> f64 {
        self.user_inactive_limit
            .unwrap_or_else(|| self.server_limit(groups))
    }
}

/// Shell-style matching as Python's `fnmatch.fnmatchcase`: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*` (linear in practice).
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_class(&pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == '[' {
                        // An unclosed `[` is a literal, as in fnmatch.
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Match `c` against the class starting at `pattern[start] == '['`: `(matched, index after ']')`,
/// or `None` if the class is not closed.
fn match_class(pattern: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        if pattern[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < pattern.len() && pattern[i + 1] == '-' && pattern[i + 2] != ']' {
            matched |= pattern[i] <= c && c <= pattern[i + 2];
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    None
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            inactive_limit: 600.0,
            max_age: 0.0,
            cull_users: false,
            cull_admin_users: true,
            cull_default_servers: true,
            cull_named_servers: true,
            remove_named_servers: false,
            remove_stopped_after: 0.0,
            user_inactive_limit: None,
            exclude_users: Vec::new(),
            exclude_groups: Vec::new(),
            group_limits: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// A spawn, stop, check or rename is in progress.
    Pending(String),
    NotReady,
    /// Neither `last_activity` nor `started` (nor `created` for users) is known.
    NoActivityData,
    /// Active more recently than the limit.
    Active,
    /// Excluded by `--cull-default-servers=false` / `--cull-named-servers=false`.
    NotSelected,
    /// The `cull_arbiter` hook answered no (or failed).
    Arbiter,
    /// Admins are not deleted for inactivity with `--cull-admin-users=false`.
    Admin,
    /// Excluded by `--exclude-users` or `--exclude-groups`.
    Exempt,
    /// Group rules are configured but the Hub did not say which groups the user is in.
    NoGroups,
    /// A user with servers that are still running (or slow to stop).
    ServersAlive(usize),
    /// A timestamp the Hub sent could not be parsed.
    BadTimestamp,
    /// A probe of the server saw work that this signal counts.
    Working(&'static Signal),
    /// Probing is on but the culler does not know where the server can be reached.
    NoServerUrl,
    /// The Hub's model of the user or server does not parse.
    BadModel,
    /// Over `--max-culls-per-pass`: left for the next pass.
    Cap,
    /// Due, but warned less than `--warn-before` ago (or just now): culled from this time on.
    Warned(String),
    /// Due, but its warning could not be recorded (the state file failed), so it was not given.
    NotWarned,
    /// Its user keeps it running until this time (`--max-keep-alive`, from the page or API).
    KeptAlive(String),
}

impl KeepReason {
    /// The reason without its detail, with its words.
    pub fn why(&self) -> Why {
        match self {
            KeepReason::Pending(_) => Why::Kept(KeepKind::Pending),
            KeepReason::NotReady => Why::Kept(KeepKind::NotReady),
            KeepReason::NoActivityData => Why::Kept(KeepKind::NoActivityData),
            KeepReason::Active => Why::Kept(KeepKind::Active),
            KeepReason::NotSelected => Why::Kept(KeepKind::NotSelected),
            KeepReason::Arbiter => Why::Kept(KeepKind::Arbiter),
            KeepReason::Admin => Why::Kept(KeepKind::Admin),
            KeepReason::Exempt => Why::Kept(KeepKind::Exempt),
            KeepReason::NoGroups => Why::Kept(KeepKind::NoGroups),
            KeepReason::ServersAlive(_) => Why::Kept(KeepKind::ServersAlive),
            KeepReason::BadTimestamp => Why::Kept(KeepKind::BadTimestamp),
            KeepReason::Working(signal) => Why::Working(signal),
            KeepReason::NoServerUrl => Why::Kept(KeepKind::NoServerUrl),
            KeepReason::BadModel => Why::Kept(KeepKind::BadModel),
            KeepReason::Cap => Why::Kept(KeepKind::Cap),
            KeepReason::KeptAlive(_) => Why::Kept(KeepKind::KeptAlive),
            KeepReason::Warned(_) => Why::Kept(KeepKind::Warned),
            KeepReason::NotWarned => Why::Kept(KeepKind::NotWarned),
        }
    }

    /// A short stable label for reports and metrics.
    pub fn label(&self) -> &'static str {
        self.why().label()
    }

    /// What the label leaves out, for reports: what is pending, how many servers are alive.
    pub fn detail(&self) -> Option<String> {
        match self {
            KeepReason::Pending(what) => Some(what.clone()),
            KeepReason::ServersAlive(n) => Some(n.to_string()),
            KeepReason::Warned(cull_at) => Some(format!("not before {cull_at}")),
            KeepReason::KeptAlive(until) => Some(format!("until {until}")),
            _ => None,
        }
    }
}

impl serde::Serialize for KeepReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}

/// How long a server has been idle and how old it is, as far as the Hub's model tells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Idleness {
    pub inactive: Option<f64>,
    pub age: Option<f64>,
}

/// First step for a server: skip it outright (pending, not ready, unreadable times), or measure it.
pub fn assess_server(server: &Server, now: f64) -> Result<Idleness, KeepReason> {
    if let Some(pending) = server.pending.as_deref().filter(|p| !p.is_empty()) {
        return Err(KeepReason::Pending(pending.to_owned()));
    }
    if !server.is_ready() {
        return Err(KeepReason::NotReady);
    }
    let age = elapsed_since(server.started.as_deref(), now)?;
    let inactive = elapsed_since(server.last_activity.as_deref(), now)?.or(age);
    Ok(Idleness { inactive, age })
}

fn elapsed_since(timestamp: Option<&str>, now: f64) -> Result<Option<f64>, KeepReason> {
    match timestamp {
        None => Ok(None),
        Some(text) => parse_timestamp(text)
            .map(|t| Some(now - t))
            .map_err(|_| KeepReason::BadTimestamp),
    }
}

/// Whether the idle rule looks at this server at all: the arbiter hook is only asked about
/// servers it could cull (so it is never called without an idle time).
pub fn idle_rule_applies(policy: &Policy, server_name: &str, idleness: &Idleness) -> bool {
    let selected = if server_name.is_empty() {
        policy.cull_default_servers
    } else {
        policy.cull_named_servers
    };
    selected && idleness.inactive.is_some()
}

/// The default arbiter: idle for at least the limit.
pub fn default_arbiter(limit: f64, inactive: f64) -> bool {
    inactive >= limit
}

/// Final decision for a server whose idle limit is `limit`.
///
/// `arbiter` is the hook's answer, `None` when the idle rule does not apply (see
/// [`idle_rule_applies`]). As in the reference, `max_age` culls even active servers and overrides
/// the default/named selection and the hook.
pub fn decide_server(
    policy: &Policy,
    limit: f64,
    server_name: &str,
    idleness: &Idleness,
    arbiter: Option<bool>,
) -> Result<CullReason, KeepReason> {
    let applies = idle_rule_applies(policy, server_name, idleness);
    if applies && arbiter == Some(true) {
        return Ok(CullReason::Idle);
    }
    if policy.max_age > 0.0 && idleness.age.is_some_and(|age| age >= policy.max_age) {
        return Ok(CullReason::MaxAge);
    }
    Err(if idleness.inactive.is_none() {
        KeepReason::NoActivityData
    } else if !applies {
        KeepReason::NotSelected
    } else if idleness.inactive.is_some_and(|i| default_arbiter(limit, i)) {
        // A custom hook said no to a server past the limit.
        KeepReason::Arbiter
    } else {
        KeepReason::Active
    })
}

/// For a stopped server (listed with `include_stopped_servers`), stopped for `stopped_for`
/// seconds: `None` if no rule looks at it (the default server is never removed), else whether
/// to remove it.
pub fn decide_stopped(
    policy: &Policy,
    server_name: &str,
    stopped_for: Option<f64>,
) -> Option<Result<CullReason, KeepReason>> {
    if server_name.is_empty() || policy.remove_stopped_after <= 0.0 {
        return None;
    }
    Some(match stopped_for {
        None => Err(KeepReason::NoActivityData),
        Some(s) if s >= policy.remove_stopped_after => Ok(CullReason::LongStopped),
        Some(_) => Err(KeepReason::Active),
    })
}

/// The user-level facts the Hub reported.
#[derive(Debug, Clone, Default)]
pub struct UserFacts<'a> {
    pub admin: bool,
    pub created: Option<&'a str>,
    pub last_activity: Option<&'a str>,
}

/// Whether to delete a user, idle for at least `limit`, once all its servers are stopped
/// (`--cull-users`).
///
/// `servers_alive` counts the user's servers that were not stopped in this pass: pending ones,
/// kept ones, and ones slow to stop.
pub fn decide_user(
    policy: &Policy,
    limit: f64,
    facts: &UserFacts<'_>,
    servers_alive: usize,
    now: f64,
) -> Result<CullReason, KeepReason> {
    if servers_alive > 0 {
        return Err(KeepReason::ServersAlive(servers_alive));
    }
    let age = elapsed_since(facts.created, now)?;
    let inactive = elapsed_since(facts.last_activity, now)?.or(age);
    let idle = inactive.is_some_and(|i| i >= limit);
    if idle && (policy.cull_admin_users || !facts.admin) {
        return Ok(CullReason::Idle);
    }
    // As in the reference, max-age deletes admins too.
    if policy.max_age > 0.0 && age.is_some_and(|a| a >= policy.max_age) {
        return Ok(CullReason::MaxAge);
    }
    Err(if inactive.is_none() {
        KeepReason::NoActivityData
    } else if idle {
        KeepReason::Admin
    } else {
        KeepReason::Active
    })
}

/// The user-level idleness, for log lines.
pub fn user_idleness(facts: &UserFacts<'_>, now: f64) -> Idleness {
    let age = elapsed_since(facts.created, now).ok().flatten();
    let inactive = elapsed_since(facts.last_activity, now)
        .ok()
        .flatten()
        .or(age);
    Idleness { inactive, age }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_795_773_600.0; // 2026-11-27T10:00:00Z

    #[allow(clippy::cast_possible_truncation)]
    fn ts(seconds_ago: f64) -> String {
        let t = chrono::DateTime::from_timestamp_micros(((NOW - seconds_ago) * 1e6).round() as i64)
            .unwrap();
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    fn server(last_activity: Option<f64>, started: Option<f64>) -> Server {
        Server {
            last_activity: last_activity.map(ts),
            started: started.map(ts),
            pending: None,
            ready: Some(true),
            url: Some("/user/u/".into()),
            full_url: None,
            stopped: false,
        }
    }

    fn decide(policy: &Policy, name: &str, s: &Server) -> Result<CullReason, KeepReason> {
        let idleness = assess_server(s, NOW)?;
        let arbiter = idle_rule_applies(policy, name, &idleness)
            .then(|| default_arbiter(policy.inactive_limit, idleness.inactive.unwrap()));
        decide_server(policy, policy.inactive_limit, name, &idleness, arbiter)
    }

    #[test]
    fn only_named_servers_stopped_long_enough_are_removed() {
        let p = Policy {
            remove_stopped_after: 86_400.0,
            ..Policy::default()
        };
        assert_eq!(decide_stopped(&p, "", Some(1e9)), None);
        assert_eq!(decide_stopped(&Policy::default(), "lab", Some(1e9)), None);
        assert_eq!(
            decide_stopped(&p, "lab", Some(86_400.0)),
            Some(Ok(CullReason::LongStopped))
        );
        assert_eq!(
            decide_stopped(&p, "lab", Some(86_399.0)),
            Some(Err(KeepReason::Active))
        );
        assert_eq!(
            decide_stopped(&p, "lab", None),
            Some(Err(KeepReason::NoActivityData))
        );
    }

    #[test]
    fn pending_servers_are_skipped() {
        for what in ["spawn", "stop", "check", "rename"] {
            let s = Server {
                pending: Some(what.into()),
                ..server(Some(9999.0), Some(9999.0))
            };
            assert_eq!(
                decide(&Policy::default(), "", &s),
                Err(KeepReason::Pending(what.into()))
            );
        }
        // An empty pending string is no pending action.
        let s = Server {
            pending: Some(String::new()),
            ..server(Some(9999.0), Some(9999.0))
        };
        assert_eq!(decide(&Policy::default(), "", &s), Ok(CullReason::Idle));
    }

    #[test]
    fn not_ready_servers_are_skipped() {
        let s = Server {
            ready: Some(false),
            ..server(Some(9999.0), None)
        };
        assert_eq!(
            decide(&Policy::default(), "", &s),
            Err(KeepReason::NotReady)
        );
        let legacy = Server {
            ready: None,
            url: None,
            ..server(Some(9999.0), None)
        };
        assert_eq!(
            decide(&Policy::default(), "", &legacy),
            Err(KeepReason::NotReady)
        );
        let legacy_ready = Server {
            ready: None,
            ..server(Some(9999.0), None)
        };
        assert_eq!(
            decide(&Policy::default(), "", &legacy_ready),
            Ok(CullReason::Idle)
        );
    }

    #[test]
    fn idle_limit_is_inclusive() {
        let p = Policy::default();
        assert_eq!(
            decide(&p, "", &server(Some(600.0), Some(700.0))),
            Ok(CullReason::Idle)
        );
        assert_eq!(
            decide(&p, "", &server(Some(599.0), Some(700.0))),
            Err(KeepReason::Active)
        );
    }

    #[test]
    fn started_is_used_when_last_activity_is_missing() {
        let p = Policy::default();
        assert_eq!(
            decide(&p, "", &server(None, Some(601.0))),
            Ok(CullReason::Idle)
        );
        assert_eq!(
            decide(&p, "", &server(None, Some(10.0))),
            Err(KeepReason::Active)
        );
    }

    #[test]
    fn no_times_at_all_is_never_culled_and_never_arbitrated() {
        let p = Policy {
            max_age: 1.0,
            ..Policy::default()
        };
        let s = server(None, None);
        let idleness = assess_server(&s, NOW).unwrap();
        assert!(!idle_rule_applies(&p, "", &idleness));
        assert_eq!(
            decide_server(&p, p.inactive_limit, "", &idleness, None),
            Err(KeepReason::NoActivityData)
        );
    }

    #[test]
    fn future_activity_is_not_idle() {
        let p = Policy::default();
        assert_eq!(
            decide(&p, "", &server(Some(-3600.0), Some(7200.0))),
            Err(KeepReason::Active)
        );
    }

    #[test]
    fn unparsable_timestamps_skip_the_server() {
        let mut s = server(Some(9999.0), None);
        s.last_activity = Some("last tuesday".into());
        assert_eq!(
            decide(&Policy::default(), "", &s),
            Err(KeepReason::BadTimestamp)
        );
        let mut s = server(Some(9999.0), None);
        s.started = Some("??".into());
        assert_eq!(
            decide(
                &Policy {
                    max_age: 1.0,
                    ..Policy::default()
                },
                "",
                &s
            ),
            Err(KeepReason::BadTimestamp)
        );
    }

    #[test]
    fn default_and_named_selection() {
        let only_named = Policy {
            cull_default_servers: false,
            ..Policy::default()
        };
        let only_default = Policy {
            cull_named_servers: false,
            ..Policy::default()
        };
        let idle = server(Some(9999.0), Some(9999.0));
        assert_eq!(decide(&only_named, "", &idle), Err(KeepReason::NotSelected));
        assert_eq!(decide(&only_named, "gpu", &idle), Ok(CullReason::Idle));
        assert_eq!(decide(&only_default, "", &idle), Ok(CullReason::Idle));
        assert_eq!(
            decide(&only_default, "gpu", &idle),
            Err(KeepReason::NotSelected)
        );
    }

    #[test]
    fn max_age_culls_active_servers_and_overrides_selection_and_arbiter() {
        let p = Policy {
            max_age: 3600.0,
            cull_default_servers: false,
            ..Policy::default()
        };
        let old_but_active = server(Some(1.0), Some(3600.0));
        assert_eq!(decide(&p, "", &old_but_active), Ok(CullReason::MaxAge));
        let idleness = assess_server(&old_but_active, NOW).unwrap();
        assert_eq!(
            decide_server(&p, p.inactive_limit, "x", &idleness, Some(false)),
            Ok(CullReason::MaxAge)
        );
        let young = server(Some(1.0), Some(3599.0));
        assert_eq!(decide(&p, "", &young), Err(KeepReason::NotSelected));
    }

    #[test]
    fn max_age_zero_is_off() {
        let p = Policy {
            max_age: 0.0,
            ..Policy::default()
        };
        assert_eq!(
            decide(&p, "", &server(Some(1.0), Some(1e9))),
            Err(KeepReason::Active)
        );
    }

    #[test]
    fn idle_reason_wins_over_max_age() {
        let p = Policy {
            max_age: 10.0,
            ..Policy::default()
        };
        assert_eq!(
            decide(&p, "", &server(Some(9999.0), Some(9999.0))),
            Ok(CullReason::Idle)
        );
    }

    #[test]
    fn custom_arbiter_answers_are_obeyed() {
        let p = Policy::default();
        let fresh = assess_server(&server(Some(5.0), Some(5.0)), NOW).unwrap();
        assert_eq!(
            decide_server(&p, 600.0, "", &fresh, Some(true)),
            Ok(CullReason::Idle)
        );
        let stale = assess_server(&server(Some(9999.0), Some(9999.0)), NOW).unwrap();
        assert_eq!(
            decide_server(&p, 600.0, "", &stale, Some(false)),
            Err(KeepReason::Arbiter)
        );
        assert_eq!(
            decide_server(&p, 600.0, "", &fresh, Some(false)),
            Err(KeepReason::Active)
        );
    }

    fn user(
        admin: bool,
        created: Option<f64>,
        last: Option<f64>,
    ) -> (bool, Option<String>, Option<String>) {
        (admin, created.map(ts), last.map(ts))
    }

    fn decide_u(
        p: &Policy,
        u: &(bool, Option<String>, Option<String>),
        alive: usize,
    ) -> Result<CullReason, KeepReason> {
        let facts = UserFacts {
            admin: u.0,
            created: u.1.as_deref(),
            last_activity: u.2.as_deref(),
        };
        decide_user(p, p.inactive_limit, &facts, alive, NOW)
    }

    #[test]
    fn users_with_live_servers_are_kept() {
        let p = Policy {
            cull_users: true,
            ..Policy::default()
        };
        assert_eq!(
            decide_u(&p, &user(false, Some(1e6), Some(1e6)), 1),
            Err(KeepReason::ServersAlive(1))
        );
    }

    #[test]
    fn idle_users_are_deleted_with_created_fallback() {
        let p = Policy {
            cull_users: true,
            ..Policy::default()
        };
        assert_eq!(
            decide_u(&p, &user(false, Some(10.0), Some(600.0)), 0),
            Ok(CullReason::Idle)
        );
        assert_eq!(
            decide_u(&p, &user(false, Some(10.0), Some(599.0)), 0),
            Err(KeepReason::Active)
        );
        assert_eq!(
            decide_u(&p, &user(false, Some(700.0), None), 0),
            Ok(CullReason::Idle)
        );
        assert_eq!(
            decide_u(&p, &user(false, None, None), 0),
            Err(KeepReason::NoActivityData)
        );
    }

    #[test]
    fn admin_exemption_applies_to_inactivity_only() {
        let keep_admins = Policy {
            cull_users: true,
            cull_admin_users: false,
            ..Policy::default()
        };
        assert_eq!(
            decide_u(&keep_admins, &user(true, Some(1e5), Some(1e5)), 0),
            Err(KeepReason::Admin)
        );
        assert_eq!(
            decide_u(&keep_admins, &user(false, Some(1e5), Some(1e5)), 0),
            Ok(CullReason::Idle)
        );
        let with_age = Policy {
            max_age: 3600.0,
            ..keep_admins.clone()
        };
        assert_eq!(
            decide_u(&with_age, &user(true, Some(1e5), Some(1e5)), 0),
            Ok(CullReason::MaxAge)
        );
        assert_eq!(
            decide_u(&with_age, &user(true, Some(1e5), Some(1.0)), 0),
            Ok(CullReason::MaxAge)
        );
        let default = Policy {
            cull_users: true,
            ..Policy::default()
        };
        assert_eq!(
            decide_u(&default, &user(true, Some(1e5), Some(1e5)), 0),
            Ok(CullReason::Idle)
        );
    }

    #[test]
    fn user_max_age_without_created_is_unknown() {
        let p = Policy {
            cull_users: true,
            max_age: 10.0,
            ..Policy::default()
        };
        assert_eq!(
            decide_u(&p, &user(false, None, Some(1.0)), 0),
            Err(KeepReason::Active)
        );
    }

    #[test]
    fn user_timestamps_that_do_not_parse_keep_the_user() {
        let p = Policy {
            cull_users: true,
            ..Policy::default()
        };
        let facts = UserFacts {
            admin: false,
            created: Some("nope"),
            last_activity: None,
        };
        assert_eq!(
            decide_user(&p, 600.0, &facts, 0, NOW),
            Err(KeepReason::BadTimestamp)
        );
    }

    #[test]
    fn globs_match_like_fnmatch() {
        let cases = [
            ("*", "anyone", true),
            ("admin-*", "admin-alice", true),
            ("admin-*", "alice", false),
            ("?ob", "bob", true),
            ("?ob", "blob", false),
            ("[bc]at", "cat", true),
            ("[!bc]at", "cat", false),
            ("[!bc]at", "rat", true),
            ("u[0-9][0-9]", "u42", true),
            ("u[0-9][0-9]", "u4x", false),
            ("*@example.org", "ann@example.org", true),
            ("*@example.org", "ann@example.com", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
            ("exact", "Exact", false),
            ("[]x]", "]", true),
            ("[unclosed", "[unclosed", true),
            ("ü*", "ünï", true),
            ("", "", true),
            ("", "x", false),
            ("**", "", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern, text),
                expected,
                "{pattern:?} ~ {text:?}"
            );
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn exemptions_by_name_and_group() {
        let p = Policy {
            exclude_users: names(&["admin-*", "bob"]),
            exclude_groups: names(&["staff"]),
            ..Policy::default()
        };
        assert!(p.is_exempt("admin-1", &[]));
        assert!(p.is_exempt("bob", &[]));
        assert!(p.is_exempt("carol", &names(&["students", "staff"])));
        assert!(!p.is_exempt("carol", &names(&["students"])));
        assert!(!p.is_exempt("bobby", &[]));
        assert!(p.uses_groups());
        assert!(!Policy {
            exclude_users: names(&["x"]),
            ..Policy::default()
        }
        .uses_groups());
    }

    #[test]
    fn group_limits_take_the_largest_of_the_user_s_groups() {
        let p = Policy {
            group_limits: vec![
                ("gpu".into(), 7200.0),
                ("workshop".into(), 300.0),
                ("long".into(), 86400.0),
            ],
            ..Policy::default()
        };
        assert_eq!(p.server_limit(&[]), 600.0);
        assert_eq!(p.server_limit(&names(&["other"])), 600.0);
        assert_eq!(p.server_limit(&names(&["workshop"])), 300.0);
        assert_eq!(p.server_limit(&names(&["workshop", "gpu"])), 7200.0);
        assert_eq!(p.server_limit(&names(&["gpu", "long"])), 86400.0);
        assert_eq!(p.user_limit(&names(&["gpu"])), 7200.0);
        let separate = Policy {
            user_inactive_limit: Some(3.0 * 86400.0),
            ..p
        };
        assert_eq!(separate.user_limit(&names(&["gpu"])), 3.0 * 86400.0);
    }

    #[test]
    fn the_limit_given_is_the_one_used() {
        let p = Policy::default();
        let idleness = assess_server(&server(Some(1000.0), Some(1000.0)), NOW).unwrap();
        let verdict = Some(default_arbiter(7200.0, idleness.inactive.unwrap()));
        assert_eq!(
            decide_server(&p, 7200.0, "", &idleness, verdict),
            Err(KeepReason::Active)
        );
        let verdict = Some(default_arbiter(900.0, idleness.inactive.unwrap()));
        assert_eq!(
            decide_server(&p, 900.0, "", &idleness, verdict),
            Ok(CullReason::Idle)
        );
        let facts = UserFacts {
            admin: false,
            created: None,
            last_activity: Some("2026-11-27T09:40:00Z"),
        };
        assert_eq!(
            decide_user(&p, 1000.0, &facts, 0, NOW),
            Ok(CullReason::Idle)
        );
        assert_eq!(
            decide_user(&p, 1300.0, &facts, 0, NOW),
            Err(KeepReason::Active)
        );
    }

    #[test]
    fn labels_are_stable() {
        assert_eq!(KeepReason::Pending("spawn".into()).label(), "pending");
        assert_eq!(KeepReason::ServersAlive(2).label(), "servers-alive");
        assert_eq!(CullReason::MaxAge.to_string(), "max-age");
    }
}
