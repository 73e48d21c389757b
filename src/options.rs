//! A pass's options as one typed value, checked here and nowhere else.
//!
//! The Python facade gives them by the Python API's keyword names (`max_age`,
//! `group_timeouts`, …), so an error names the keyword the caller wrote. The defaults are
//! here, and Python reads them from here.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::pass::{PassSettings, ACT_AFTER};
use crate::policy::Policy;
use crate::signals::WorkRules;

/// Options that cannot work; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionsError(pub String);

/// Everything a pass is told, as the Python API names it: the policy's and the work rules'
/// own fields under their own names, and how the pass goes about it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PassOptions {
    #[serde(flatten)]
    pub policy: Policy,
    #[serde(flatten)]
    pub work: WorkRules,
    /// 0 asks for the Hub's largest page.
    pub api_page_size: u64,
    pub dry_run: bool,
    /// 0: no cap.
    pub max_culls_per_pass: u64,
    pub server_url: Option<String>,
    pub details: bool,
    /// Warn this many seconds before a server is culled; 0 turns warnings off.
    pub warn_before: f64,
    /// The same for deleting users; `None` uses `warn_before`.
    pub warn_users_before: Option<f64>,
}

impl Default for PassOptions {
    /// The policy's and the work rules' own defaults, and no cap, no dry run, the Hub's largest
    /// page and a detailed report.
    fn default() -> Self {
        PassOptions {
            policy: Policy::default(),
            work: WorkRules::default(),
            api_page_size: 0,
            dry_run: false,
            max_culls_per_pass: 0,
            server_url: None,
            details: true,
            warn_before: 0.0,
            warn_users_before: None,
        }
    }
}

/// Takes the options out of a JSON object one by one, so each error names its option.
struct Fields(Map<String, Value>);

impl Fields {
    fn take<T: DeserializeOwned>(
        &mut self,
        key: &str,
        expected: &str,
    ) -> Result<Option<T>, OptionsError> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|_| OptionsError(format!("{key} must be {expected}, not {value}"))),
        }
    }

    fn seconds(&mut self, key: &str) -> Result<Option<f64>, OptionsError> {
        let value: Option<f64> = self.take(key, "a number of seconds")?;
        value.map(|v| non_negative(key, v)).transpose()
    }

    fn count(&mut self, key: &str) -> Result<Option<u64>, OptionsError> {
        let value: Option<f64> = self.take(key, "a whole number")?;
        match value {
            Some(v) if v < 0.0 => Err(OptionsError(format!("{key} must not be negative, not {v}"))),
            Some(v) if v.fract() != 0.0 || !v.is_finite() => Err(OptionsError(format!(
                "{key} must be a whole number, not {v}"
            ))),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(v) => Ok(Some(v as u64)),
            None => Ok(None),
        }
    }

    fn flag(&mut self, key: &str, default: bool) -> Result<bool, OptionsError> {
        Ok(self.take(key, "true or false")?.unwrap_or(default))
    }

    /// A mapping of names (of groups, of profiles) to seconds.
    fn limits(&mut self, key: &str, of: &str) -> Result<Vec<(String, f64)>, OptionsError> {
        let limits: Option<std::collections::BTreeMap<String, f64>> =
            self.take(key, &format!("a mapping of {of} names to seconds"))?;
        limits
            .unwrap_or_default()
            .into_iter()
            .map(|(name, seconds)| {
                non_negative(&format!("{key}[{name:?}]"), seconds).map(|s| (name, s))
            })
            .collect()
    }

    fn names(&mut self, key: &str) -> Result<Vec<String>, OptionsError> {
        Ok(self.take(key, "a list of names")?.unwrap_or_default())
    }
}

fn non_negative(key: &str, seconds: f64) -> Result<f64, OptionsError> {
    if seconds.is_finite() && seconds >= 0.0 {
        Ok(seconds)
    } else {
        Err(OptionsError(format!(
            "{key} must not be negative, not {seconds}"
        )))
    }
}

impl PassOptions {
    /// Parse and check a JSON object of options; unknown keys are errors.
    pub fn from_json(text: &str) -> Result<Self, OptionsError> {
        let map: Map<String, Value> = serde_json::from_str(text)
            .map_err(|e| OptionsError(format!("options must be a JSON object ({e})")))?;
        Self::from_map(map)
    }

    /// Check options given by name, each with its default when left out; unknown names are
    /// errors.
    pub fn from_map(map: Map<String, Value>) -> Result<Self, OptionsError> {
        let mut f = Fields(map);
        let d = PassOptions::default();
        let (p, w) = (&d.policy, &d.work);
        let policy = Policy {
            inactive_limit: f.seconds("inactive_limit")?.unwrap_or(p.inactive_limit),
            max_age: f.seconds("max_age")?.unwrap_or(p.max_age),
            cull_users: f.flag("cull_users", p.cull_users)?,
            cull_admin_users: f.flag("cull_admin_users", p.cull_admin_users)?,
            cull_default_servers: f.flag("cull_default_servers", p.cull_default_servers)?,
            cull_named_servers: f.flag("cull_named_servers", p.cull_named_servers)?,
            remove_named_servers: f.flag("remove_named_servers", p.remove_named_servers)?,
            remove_stopped_named_servers: f
                .seconds("remove_stopped_named_servers")?
                .unwrap_or(p.remove_stopped_named_servers),
            user_timeout: f.seconds("user_timeout")?,
            exclude_users: f.names("exclude_users")?,
            exclude_groups: f.names("exclude_groups")?,
            group_timeouts: f.limits("group_timeouts", "group")?,
            profile_timeouts: f.limits("profile_timeouts", "profile")?,
        };
        let work = WorkRules {
            keep_busy_kernels: f.flag("keep_busy_kernels", w.keep_busy_kernels)?,
            keep_connected: f.flag("keep_connected", w.keep_connected)?,
            busy_timeout: f.seconds("busy_timeout")?.unwrap_or(w.busy_timeout),
            keep_cpu_above: f
                .take::<f64>("keep_cpu_above", "a percentage")?
                .map(|v| non_negative("keep_cpu_above", v))
                .transpose()?
                .unwrap_or(w.keep_cpu_above),
            idle_by: f
                .take("idle_by", "\"hub\" or \"work\"")?
                .unwrap_or(w.idle_by),
        };
        let options = PassOptions {
            policy,
            work,
            api_page_size: f.count("api_page_size")?.unwrap_or(d.api_page_size),
            dry_run: f.flag("dry_run", d.dry_run)?,
            max_culls_per_pass: f.count("max_culls_per_pass")?.unwrap_or(0),
            server_url: f.take("server_url", "a URL")?,
            details: f.flag("details", d.details)?,
            warn_before: f.seconds("warn_before")?.unwrap_or(d.warn_before),
            warn_users_before: f.seconds("warn_users_before")?,
        };
        if let Some(key) = f.0.keys().next() {
            return Err(OptionsError(format!("unknown option {key}")));
        }
        options.check_warning_windows()?;
        options.check_idle_by()?;
        options.check_busy_timeout()?;
        if let Some(url) = &options.server_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(OptionsError(format!(
                    "server_url must start with http:// or https://, not {url:?}"
                )));
            }
        }
        Ok(options)
    }

    /// Work mode sees through open tabs; two options would undo that.
    fn check_idle_by(&self) -> Result<(), OptionsError> {
        if !self.work.by_work() {
            return Ok(());
        }
        if self.work.keep_connected {
            return Err(OptionsError(
                "keep_connected keeps every server with an open notebook tab, which idle_by=\"work\" \
                 exists to see through; use one or the other"
                    .into(),
            ));
        }
        if self.work.busy_timeout > 0.0 {
            return Err(OptionsError(
                "busy_timeout bounds servers by the Hub's count, which idle_by=\"work\" does not use; \
                 bound a server's life with max_age instead"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A busy-timeout within the idle limit would cull a busy server as soon as it is idle
    /// enough to be asked.
    fn check_busy_timeout(&self) -> Result<(), OptionsError> {
        let (busy_timeout, limit) = (self.work.busy_timeout, self.policy.inactive_limit);
        if self.work.enabled() && busy_timeout > 0.0 && busy_timeout <= limit {
            return Err(OptionsError(format!(
                "busy_timeout ({busy_timeout}s) must be longer than the timeout ({limit}s), or no \
                 busy server would ever be kept"
            )));
        }
        Ok(())
    }

    /// A warning window at or above an idle limit would warn a server (or user) as soon as it
    /// is used, and again at each use, since each use starts a new idle stretch.
    fn check_warning_windows(&self) -> Result<(), OptionsError> {
        let too_long = |what: &str, window: f64, limits: &[(String, f64)]| {
            limits
                .iter()
                .find(|(_, limit)| window >= *limit)
                .map_or(Ok(()), |(name, limit)| {
                    Err(OptionsError(format!(
                        "{what} ({window}s) must be shorter than {name} ({limit}s), or anyone who \
                         used a server would be warned at once, and again at each use"
                    )))
                })
        };
        let policy = &self.policy;
        let groups = policy
            .group_timeouts
            .iter()
            .map(|(group, limit)| (format!("the timeout of group {group:?}"), *limit));
        let server_limits: Vec<(String, f64)> =
            std::iter::once(("the timeout".to_owned(), policy.inactive_limit))
                .chain(groups.clone())
                .collect();
        if self.warn_before > 0.0 {
            too_long("warn_before", self.warn_before, &server_limits)?;
            let profiles: Vec<(String, f64)> = policy
                .profile_timeouts
                .iter()
                .map(|(profile, limit)| (format!("the timeout of profile {profile:?}"), *limit))
                .collect();
            too_long("warn_before", self.warn_before, &profiles)?;
        }
        let users_window = self.warn_users_before.unwrap_or(self.warn_before);
        if policy.cull_users && users_window > 0.0 {
            let user_limits: Vec<(String, f64)> = match policy.user_timeout {
                Some(limit) => vec![("user_timeout".to_owned(), limit)],
                None => server_limits,
            };
            too_long("warn_users_before", users_window, &user_limits)?;
        }
        Ok(())
    }

    /// The settings of one pass, made at `now` (seconds since the epoch).
    pub fn settings(&self, now: f64, act_after: Option<usize>) -> PassSettings {
        PassSettings {
            policy: self.policy.clone(),
            page_size: Some(self.api_page_size).filter(|&n| n > 0),
            now,
            dry_run: self.dry_run,
            max_culls: usize::try_from(self.max_culls_per_pass)
                .ok()
                .filter(|&n| n > 0),
            work: self.work,
            server_url: self.server_url.clone(),
            details: self.details,
            act_after: act_after.map_or(ACT_AFTER, |n| n.max(1)),
            warn_before: self.warn_before,
            warn_users_before: self.warn_users_before.unwrap_or(self.warn_before),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        PassOptions::from_json(json).unwrap_err().0
    }

    #[test]
    fn a_busy_timeout_within_the_idle_limit_is_refused_only_when_servers_are_asked() {
        let with = |extra: &str| {
            PassOptions::from_json(&format!(
                r#"{{"inactive_limit": 3600, "busy_timeout": 600{extra}}}"#
            ))
        };
        assert!(with("").is_ok(), "no signal: the timeout does nothing");
        let refused = with(r#", "keep_cpu_above": 50"#).unwrap_err().0;
        assert!(
            refused.starts_with("busy_timeout (600s) must be longer than the timeout (3600s)"),
            "{refused}"
        );
    }

    #[test]
    fn defaults_are_the_reference_s() {
        assert_eq!(
            PassOptions::from_json("{}").unwrap(),
            PassOptions::default()
        );
        let settings = PassOptions::default().settings(1.0, None);
        assert_eq!(settings.policy, Policy::default());
        assert_eq!((settings.page_size, settings.max_culls), (None, None));
        assert_eq!(settings.act_after, ACT_AFTER);
    }

    #[test]
    fn every_option_arrives() {
        let options = PassOptions::from_json(
            r#"{"inactive_limit": 3600, "max_age": 7200, "cull_users": true, "cull_admin_users": false,
                "cull_default_servers": false, "cull_named_servers": false, "remove_named_servers": true,
                "api_page_size": 50, "dry_run": true, "user_timeout": 172800, "exclude_users": ["staff-*"],
                "exclude_groups": ["ta"], "group_timeouts": {"gpu": 14400}, "max_culls_per_pass": 5,
                "keep_busy_kernels": true, "keep_connected": true, "busy_timeout": 90000,
                "server_url": "http://proxy", "details": false, "warn_before": 600,
                "warn_users_before": 86400}"#,
        )
        .unwrap();
        let s = options.settings(10.0, Some(0));
        assert_eq!(s.policy.inactive_limit, 3600.0);
        assert_eq!(s.policy.group_timeouts, [("gpu".to_owned(), 14400.0)]);
        assert_eq!(
            (s.page_size, s.max_culls, s.act_after),
            (Some(50), Some(5), 1)
        );
        assert!(s.dry_run && !s.details && s.work.keep_busy_kernels && s.work.keep_connected);
        assert_eq!(s.server_url.as_deref(), Some("http://proxy"));
        assert_eq!(s.policy.user_timeout, Some(172_800.0));
        assert_eq!((s.warn_before, s.warn_users_before), (600.0, 86400.0));
        let s = PassOptions::from_json(r#"{"warn_before": 60}"#)
            .unwrap()
            .settings(1.0, None);
        assert_eq!(s.warn_users_before, 60.0);
    }

    #[test]
    fn bad_options_name_themselves() {
        assert_eq!(
            error(r#"{"max_age": -5}"#),
            "max_age must not be negative, not -5"
        );
        assert!(error(r#"{"group_timeouts": {"gpu": -1}}"#).contains("group_timeouts[\"gpu\"]"));
        assert!(error(r#"{"exclude_users": "alice"}"#)
            .starts_with("exclude_users must be a list of names"));
        assert!(error(r#"{"api_page_size": 2.5}"#).contains("whole number"));
        assert!(error(r#"{"max_culls_per_pass": -1}"#).contains("must not be negative"));
        assert!(error(r#"{"server_url": "proxy"}"#).contains("http://"));
        assert_eq!(error(r#"{"timout": 5}"#), "unknown option timout");
        assert!(error(r#"{"dry_run": "yes"}"#).contains("true or false"));
        assert_eq!(
            error(r#"{"idle_by": "tabs"}"#),
            r#"idle_by must be "hub" or "work", not "tabs""#
        );
        assert!(error("[]").contains("JSON object"));
    }

    #[test]
    fn a_warning_window_must_be_shorter_than_every_limit_it_warns_of() {
        assert!(error(r#"{"inactive_limit": 600, "warn_before": 600}"#)
            .starts_with("warn_before (600s) must be shorter than the timeout (600s)"));
        let group = error(
            r#"{"inactive_limit": 3600, "warn_before": 600, "group_timeouts": {"short": 300}}"#,
        );
        assert!(
            group.contains(r#"the timeout of group "short" (300s)"#),
            "{group}"
        );
        let profile = error(
            r#"{"inactive_limit": 3600, "warn_before": 600, "profile_timeouts": {"gpu": 600}}"#,
        );
        assert!(
            profile.contains(r#"the timeout of profile "gpu" (600s)"#),
            "{profile}"
        );
        assert!(error(r#"{"profile_timeouts": {"gpu": -5}}"#).contains("profile_timeouts[\"gpu\"]"));
        assert!(error(
            r#"{"inactive_limit": 3600, "warn_before": 600, "cull_users": true, "warn_users_before": 86400}"#
        )
        .starts_with("warn_users_before (86400s)"));
        for fine in [
            r#"{"inactive_limit": 3600, "warn_before": 600}"#,
            r#"{"inactive_limit": 600, "warn_before": 0}"#,
            // Users are not deleted without cull_users: their window is not used.
            r#"{"inactive_limit": 3600, "warn_before": 600, "warn_users_before": 86400}"#,
            r#"{"inactive_limit": 3600, "warn_before": 600, "cull_users": true, "user_timeout": 172800, "warn_users_before": 86400}"#,
        ] {
            PassOptions::from_json(fine).unwrap();
        }
    }
}
