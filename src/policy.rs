//! The cull policy: which servers and users to cull, decided from what the Hub reported.
//!
//! Pure functions over plain numbers, so every rule of the reference culler is unit-tested
//! here without a Hub. Times are seconds; `now` is seconds since the epoch.

use crate::models::Server;
pub use crate::reasons::CullReason;
use crate::reasons::{KeepKind, Why};
use crate::signals::Signal;
use crate::timestamp::{format_utc, parse_timestamp};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    pub remove_stopped_named_servers: f64,
    /// Idle limit for deleting users; `None` uses the user's server limit.
    pub user_timeout: Option<f64>,
    /// Users whose name matches one of these shell-style globs are never culled nor deleted.
    pub exclude_users: Vec<String>,
    /// Members of these Hub groups are never culled nor deleted.
    pub exclude_groups: Vec<String>,
    /// Per-group idle limits for servers; a user in several of these groups gets the largest.
    #[serde(serialize_with = "as_mapping")]
    pub group_timeouts: Vec<(String, f64)>,
    /// `--profile-timeout`: the idle limit of servers started with a profile
    /// (`user_options["profile"]`, as KubeSpawner's `profile_list` stores its slug). It wins over
    /// the user's groups and `--timeout`: the profile is what the server costs.
    #[serde(serialize_with = "as_mapping")]
    pub profile_timeouts: Vec<(String, f64)>,
}

/// Limits by name serialize as the mapping the Python API gives them as.
fn as_mapping<S: serde::Serializer>(
    pairs: &[(String, f64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

impl Policy {
    /// Whether decisions need the users' groups (which the token must be allowed to see).
    pub fn uses_groups(&self) -> bool {
        !self.exclude_groups.is_empty() || !self.group_timeouts.is_empty()
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
        self.group_timeouts
            .iter()
            .filter(|(group, _)| groups.contains(group))
            .map(|&(_, limit)| limit)
            .reduce(f64::max)
            .unwrap_or(self.inactive_limit)
    }

    /// The idle limit of one server: its profile's, when `--profile-timeout` names it, else
    /// `user_limit`, the limit of its user's groups (see [`Policy::server_limit`]).
    pub fn limit_of_server(&self, profile: Option<&str>, user_limit: f64) -> (f64, LimitFrom) {
        let by_profile = profile.and_then(|profile| {
            self.profile_timeouts
                .iter()
                .find(|(name, _)| name == profile)
        });
        match by_profile {
            Some((name, limit)) => (*limit, LimitFrom::Profile(name.clone())),
            None if user_limit != self.inactive_limit => (user_limit, LimitFrom::Group),
            None => (user_limit, LimitFrom::Timeout),
        }
    }

    /// The idle limit for deleting a user.
    pub fn user_limit(&self, groups: &[String]) -> f64 {
        self.user_timeout
            .unwrap_or_else(|| self.server_limit(groups))
    }
}

/// Where a server's idle limit comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitFrom {
    /// `--timeout`.
    Timeout,
    /// A `--group-timeout` of its user's groups.
    Group,
    /// The `--profile-timeout` of the profile it was started with.
    Profile(String),
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
            remove_stopped_named_servers: 0.0,
            user_timeout: None,
            exclude_users: Vec::new(),
            exclude_groups: Vec::new(),
            group_timeouts: Vec::new(),
            profile_timeouts: Vec::new(),
        }
    }
}

/// Why a server or user is kept this pass: its kind ([`KeepKind`], with its label and words),
/// and what the kind leaves out where there is more to say.
#[derive(Debug, Clone, PartialEq)]
pub enum KeepReason {
    /// A reason with nothing more to say.
    Kept(KeepKind),
    /// A spawn, stop, check or rename is in progress: which.
    Pending(String),
    /// A user with this many servers still running (or slow to stop).
    ServersAlive(usize),
    /// A probe of the server saw work that this signal counts.
    Working(&'static Signal),
    /// Due, but warned less than `--warn-before` ago (or just now): culled from `cull_at`
    /// (seconds since the epoch) on.
    Warned { cull_at: f64 },
    /// Its user keeps it running until `until` (`--max-keep-alive`, from the page or API).
    KeptAlive { until: f64 },
}

impl KeepReason {
    /// The reason without its detail, with its words.
    pub fn why(&self) -> Why {
        match self {
            KeepReason::Kept(kind) => Why::Kept(*kind),
            KeepReason::Pending(_) => Why::Kept(KeepKind::Pending),
            KeepReason::ServersAlive(_) => Why::Kept(KeepKind::ServersAlive),
            KeepReason::Working(signal) => Why::Working(signal),
            KeepReason::Warned { .. } => Why::Kept(KeepKind::Warned),
            KeepReason::KeptAlive { .. } => Why::Kept(KeepKind::KeptAlive),
        }
    }

    /// A short stable label for reports and metrics.
    pub fn label(&self) -> &'static str {
        self.why().label()
    }

    /// What the label leaves out, for reports: what is pending, how many servers are alive,
    /// until when.
    pub fn detail(&self) -> Option<String> {
        match self {
            KeepReason::Pending(what) => Some(what.clone()),
            KeepReason::ServersAlive(n) => Some(n.to_string()),
            KeepReason::Warned { cull_at } => Some(format!("not before {}", format_utc(*cull_at))),
            KeepReason::KeptAlive { until } => Some(format!("until {}", format_utc(*until))),
            KeepReason::Kept(_) | KeepReason::Working(_) => None,
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
        return Err(KeepReason::Kept(KeepKind::NotReady));
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
            .map_err(|_| KeepReason::Kept(KeepKind::BadTimestamp)),
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
        KeepReason::Kept(KeepKind::NoActivityData)
    } else if !applies {
        KeepReason::Kept(KeepKind::NotSelected)
    } else if idleness.inactive.is_some_and(|i| default_arbiter(limit, i)) {
        // A custom hook said no to a server past the limit.
        KeepReason::Kept(KeepKind::Arbiter)
    } else {
        KeepReason::Kept(KeepKind::Active)
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
    if server_name.is_empty() || policy.remove_stopped_named_servers <= 0.0 {
        return None;
    }
    Some(match stopped_for {
        None => Err(KeepReason::Kept(KeepKind::NoActivityData)),
        Some(s) if s >= policy.remove_stopped_named_servers => Ok(CullReason::LongStopped),
        Some(_) => Err(KeepReason::Kept(KeepKind::Active)),
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
        KeepReason::Kept(KeepKind::NoActivityData)
    } else if idle {
        KeepReason::Kept(KeepKind::Admin)
    } else {
        KeepReason::Kept(KeepKind::Active)
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
mod tests;
