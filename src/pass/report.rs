//! What a pass reports: its actions and skips, their totals, and its errors.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::board::PassSummary;
use crate::reasons::KeepKind;

use super::views::Draft;
use crate::policy::{CullReason, KeepReason};
use crate::warnings::delivery::Warning;
use crate::work::ServerWork;

/// A pass where everything fails must not grow its report with the size of the Hub.
pub const MAX_ERRORS: usize = 100;

/// What became of a stop or a deletion the pass attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Stopped,
    /// 202: the Hub is still stopping it.
    Stopping,
    /// 404: it was already gone.
    Gone,
    Deleted,
    /// A user deletion that a fresh look at the user called off.
    Kept,
    Failed,
    WouldStop,
    WouldDelete,
}

impl Outcome {
    /// A short stable label for reports, logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Stopped => "stopped",
            Outcome::Stopping => "stopping",
            Outcome::Gone => "gone",
            Outcome::Deleted => "deleted",
            Outcome::Kept => "kept",
            Outcome::Failed => "failed",
            Outcome::WouldStop => "would-stop",
            Outcome::WouldDelete => "would-delete",
        }
    }

    /// The server is stopped now, whoever stopped it.
    pub fn is_down(self) -> bool {
        matches!(self, Outcome::Stopped | Outcome::Gone)
    }

    /// The user may still leave the listing later: its stop is slow or failed.
    pub fn is_unsettled(self) -> bool {
        matches!(self, Outcome::Stopping | Outcome::Failed)
    }
}

/// What a probe of a server saw, or why it saw nothing.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeRecord {
    pub work: Option<ServerWork>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub user: String,
    /// `None` for a user deletion.
    pub server: Option<String>,
    pub reason: CullReason,
    pub inactive: Option<f64>,
    pub outcome: Outcome,
    pub detail: Option<String>,
    /// What asking the server saw, when it was asked (`--keep-busy-kernels`).
    pub probe: Option<Box<ProbeRecord>>,
}

impl Action {
    pub fn server(user: &str, server: &str, reason: CullReason, inactive: Option<f64>) -> Self {
        Action {
            user: user.to_owned(),
            server: Some(server.to_owned()),
            reason,
            inactive,
            outcome: Outcome::WouldStop,
            detail: None,
            probe: None,
        }
    }

    pub fn user(user: &str, reason: CullReason, inactive: Option<f64>) -> Self {
        Action {
            user: user.to_owned(),
            server: None,
            reason,
            inactive,
            outcome: Outcome::WouldDelete,
            detail: None,
            probe: None,
        }
    }

    #[must_use]
    pub fn with(mut self, outcome: Outcome, detail: Option<String>) -> Self {
        self.outcome = outcome;
        self.detail = detail;
        self
    }

    #[must_use]
    pub fn with_probe(mut self, probe: Option<Box<ProbeRecord>>) -> Self {
        self.probe = probe;
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    pub user: String,
    pub server: Option<String>,
    pub reason: KeepReason,
    pub detail: Option<String>,
    pub probe: Option<Box<ProbeRecord>>,
}

impl Skip {
    /// A kept server (`server: Some`) or user (`None`), with the reason's own detail.
    pub fn new(user: &str, server: Option<&str>, reason: KeepReason) -> Self {
        Skip {
            user: user.to_owned(),
            server: server.map(str::to_owned),
            detail: reason.detail(),
            reason,
            probe: None,
        }
    }

    #[must_use]
    pub fn with_detail(mut self, detail: Option<String>) -> Self {
        self.detail = detail;
        self
    }

    #[must_use]
    pub fn with_probe(mut self, probe: Option<Box<ProbeRecord>>) -> Self {
        self.probe = probe;
        self
    }
}

#[derive(Debug, Default, Serialize)]
pub struct PassReport {
    /// Every page was listed (acting may still have had errors).
    pub complete: bool,
    pub dry_run: bool,
    pub hub_version: Option<String>,
    pub users_seen: u64,
    pub servers_seen: u64,
    pub actions: Vec<Action>,
    /// Why servers and users were kept, except the common "active" and "not-selected", which
    /// are only counted, so the report does not grow with the size of the Hub.
    pub skipped: Vec<Skip>,
    pub kept_active: u64,
    pub kept_not_selected: u64,
    /// Warnings given (or, in a dry run, that would be).
    pub warned: Vec<Warning>,
    /// Warnings that a hook or the webhook failed to deliver.
    pub warning_failures: u64,
    /// The first [`MAX_ERRORS`] error messages; `errors_total` counts them all.
    pub errors: Vec<String>,
    pub errors_total: u64,
    /// Failed requests to the Hub during the pass (each retry counts), by HTTP status or by
    /// error kind. A 404 to a stop is counted here too.
    pub request_errors: BTreeMap<String, u64>,
    /// Every action and skip counted, whether or not `actions`/`skipped` list them:
    /// `servers` and `users` by outcome then reason, `skipped` by reason.
    pub totals: Totals,
    pub seconds: f64,
    /// List every action and notable skip, not only count them.
    #[serde(skip)]
    pub details: bool,
    /// What the page will show of each server, while the page is served.
    #[serde(skip)]
    pub draft: Option<Box<Draft>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub servers: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    pub users: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Warnings given, by kind (`server`, `user`).
    pub warned: BTreeMap<&'static str, u64>,
}

impl PassReport {
    /// Stops (`servers`) or deletions with this outcome.
    pub fn count(&self, outcome: Outcome, servers: bool) -> u64 {
        let by_outcome = if servers {
            &self.totals.servers
        } else {
            &self.totals.users
        };
        by_outcome
            .get(outcome.label())
            .map_or(0, |r| r.values().sum())
    }

    /// The pass in one line of the operators' view; it started at `now`.
    pub fn board_summary(&self, now: f64) -> PassSummary {
        PassSummary {
            started: now,
            seconds: self.seconds,
            complete: self.complete,
            dry_run: self.dry_run,
            users_seen: self.users_seen,
            servers_seen: self.servers_seen,
            stopped: self.count(Outcome::Stopped, true)
                + self.count(Outcome::Gone, true)
                + self.count(Outcome::Stopping, true),
            deleted: self.count(Outcome::Deleted, false),
            warned: self.totals.warned.values().sum(),
            kept_alive: self
                .totals
                .skipped
                .get(KeepKind::KeptAlive.label())
                .copied()
                .unwrap_or(0),
            errors: self.errors_total,
        }
    }

    /// Count an action, and list it if the pass keeps details.
    pub fn record_action(&mut self, action: Action) {
        if let Some(draft) = &mut self.draft {
            if matches!(
                action.outcome,
                Outcome::Stopped | Outcome::Stopping | Outcome::Gone | Outcome::Deleted
            ) {
                let at = crate::timestamp::unix_now();
                let server = action.server.as_deref();
                draft.culled(
                    &action.user,
                    server,
                    action.reason,
                    action.outcome.label(),
                    at,
                );
            }
        }
        if let (Some(draft), Some(server)) = (&mut self.draft, action.server.as_deref()) {
            let stopped = match action.outcome {
                Outcome::WouldStop => Some(false),
                Outcome::Failed => None,
                _ => Some(true),
            };
            draft.stopped(
                &action.user,
                server,
                action.reason,
                stopped,
                action.detail.as_deref(),
            );
        }
        let by_outcome = if action.server.is_some() {
            &mut self.totals.servers
        } else {
            &mut self.totals.users
        };
        *by_outcome
            .entry(action.outcome.label())
            .or_default()
            .entry(action.reason.label())
            .or_default() += 1;
        if action.outcome == Outcome::Failed {
            let who = action.server.as_ref().map_or_else(
                || format!("user {}", action.user),
                |s| log_name(&action.user, s),
            );
            self.record_error(format!(
                "{who}: {}",
                action.detail.as_deref().unwrap_or("failed")
            ));
        }
        if self.details {
            self.actions.push(action);
        }
    }

    /// Count a kept server or user; list it if the pass keeps details and the reason is
    /// notable ("active" and "not selected" are only counted).
    pub fn record_skip(&mut self, skip: Skip) {
        if let (Some(draft), Some(server)) = (&mut self.draft, skip.server.as_deref()) {
            draft.kept(
                &skip.user,
                server,
                skip.reason.why(),
                skip.detail.as_deref(),
            );
        }
        match skip.reason {
            KeepReason::Kept(KeepKind::Active) => self.kept_active += 1,
            KeepReason::Kept(KeepKind::NotSelected) => self.kept_not_selected += 1,
            _ => {
                *self.totals.skipped.entry(skip.reason.label()).or_default() += 1;
                if self.details {
                    self.skipped.push(skip);
                }
            }
        }
    }

    /// Count a warning given (a dry run's are only listed), and list it with details.
    pub fn record_warning(&mut self, warning: Warning) {
        if !self.dry_run {
            *self.totals.warned.entry(warning.kind.label()).or_default() += 1;
            if !warning.delivered {
                self.warning_failures += 1;
            }
        }
        if self.details {
            self.warned.push(warning);
        }
    }

    pub fn record_error(&mut self, message: String) {
        self.errors_total += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(message);
        }
    }

    /// One line for the log; `errors` already holds every failed action.
    pub fn summary(&self) -> String {
        let state = if self.complete { "done" } else { "INCOMPLETE" };
        if self.dry_run {
            return format!(
                "Cull pass {state} in {:.2}s (DRY RUN, nothing was stopped): {} users and {} servers seen, {} servers would be stopped, {} users would be deleted, {} errors",
                self.seconds,
                self.users_seen,
                self.servers_seen,
                self.count(Outcome::WouldStop, true),
                self.count(Outcome::WouldDelete, false),
                self.errors_total,
            );
        }
        let warned: u64 = self.totals.warned.values().sum();
        let warned = if warned > 0 {
            format!(", {warned} warned")
        } else {
            String::new()
        };
        format!(
            "Cull pass {state} in {:.2}s: {} users and {} servers seen, {} servers stopped, {} still stopping, {} users deleted, {} errors{warned}",
            self.seconds,
            self.users_seen,
            self.servers_seen,
            self.count(Outcome::Stopped, true) + self.count(Outcome::Gone, true),
            self.count(Outcome::Stopping, true),
            self.count(Outcome::Deleted, false),
            self.errors_total,
        )
    }
}

/// `user` for a default server, `user/server` for a named one, as the reference logs them.
pub fn log_name(user: &str, server: &str) -> String {
    if server.is_empty() {
        user.to_owned()
    } else {
        format!("{user}/{server}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_what_reports_and_metrics_carry() {
        for outcome in [
            Outcome::Stopped,
            Outcome::Stopping,
            Outcome::Gone,
            Outcome::Deleted,
            Outcome::Kept,
            Outcome::Failed,
            Outcome::WouldStop,
            Outcome::WouldDelete,
        ] {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.label()));
        }
        let skip = Skip::new("a", None, KeepReason::Pending("spawn".into()));
        let json = serde_json::to_value(&skip).unwrap();
        assert_eq!(json["reason"], "pending");
        assert_eq!(json["detail"], "spawn");
        let action = Action::server("a", "", CullReason::MaxAge, Some(1.0));
        assert_eq!(serde_json::to_value(&action).unwrap()["reason"], "max-age");
    }

    #[test]
    fn common_skips_are_only_counted() {
        let mut report = PassReport {
            details: true,
            ..PassReport::default()
        };
        report.record_skip(Skip::new("a", Some(""), KeepReason::Kept(KeepKind::Active)));
        report.record_skip(Skip::new(
            "b",
            Some(""),
            KeepReason::Kept(KeepKind::NotSelected),
        ));
        report.record_skip(Skip::new("c", Some(""), KeepReason::Kept(KeepKind::Exempt)));
        assert_eq!((report.kept_active, report.kept_not_selected), (1, 1));
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.totals.skipped.get("exempt"), Some(&1));
    }

    #[test]
    fn failed_actions_are_errors_and_the_list_is_bounded() {
        let mut report = PassReport::default();
        for i in 0..(MAX_ERRORS + 5) {
            let action = Action::server(&format!("u{i}"), "", CullReason::Idle, None)
                .with(Outcome::Failed, Some("boom".into()));
            report.record_action(action);
        }
        assert_eq!(report.errors.len(), MAX_ERRORS);
        assert_eq!(report.errors_total, (MAX_ERRORS + 5) as u64);
        assert_eq!(report.errors[0], "u0: boom");
        assert!(report.actions.is_empty(), "details are off");
    }
}
