//! Warnings before culling, within a pass: the gate each due server and user passes, the
//! state it writes, and delivering what it gave.
//!
//! A warning is recorded in the state as pending before it is delivered, and marked delivered,
//! with its time moved to when its delivery ended, once it has. A cull goes ahead only for
//! what the state says was delivered at least the window ago, so it never comes sooner than
//! that after people had it, even when the culler dies mid-delivery (the next one delivers the
//! pending warning again). A state that cannot be written gives no new warnings (and so allows
//! no new culls) for the rest of the pass; a delivery that fails after its retries, or a hook
//! that outlasts its time, is logged and counted, and the cull goes ahead on schedule.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::policy::{CullReason, KeepReason};
use crate::reasons::KeepKind;
use crate::state::{Entry, Key, Kind, StateDb, Write};
use crate::stretch::Stretch;
use crate::timestamp::{format_duration, format_utc};
use crate::warnings::delivery::{WarnHook, Warning, WebhookClient};
use crate::warnings::{gate, Gate};

use super::report::PassReport;
use super::{PassSettings, LOG};

/// Where warnings are remembered and how they are delivered.
pub struct Warnings<'a> {
    pub state: &'a StateDb,
    pub hook: Option<&'a dyn WarnHook>,
    pub webhook: Option<&'a WebhookClient>,
    /// How long the hook may take for one warning before it counts as failed.
    pub hook_timeout: Duration,
}

/// The warnings of one pass: the gate each due server and user passes, and what it decided
/// and has not yet written or delivered.
pub(super) struct WarningGate<'a> {
    /// Where warnings go, when the pass gives them.
    warnings: Option<&'a Warnings<'a>>,
    settings: &'a PassSettings,
    book: Book,
}

#[derive(Default)]
struct Book {
    pending: Vec<Warning>,
    writes: Vec<Write>,
    /// The state failed: no new warnings, and no sweep, in this pass.
    broken: bool,
}

/// A server or user that a gate looks at.
pub(super) struct Candidate<'a> {
    pub key: Key,
    pub stretch: Stretch,
    /// The pass would cull it now, and why.
    pub due_now: Option<CullReason>,
    /// When the policy (with the default arbiter) will cull it, and why.
    pub due: Option<(CullReason, f64)>,
    pub inactive: Option<f64>,
    pub user_json: &'a str,
    pub server_json: Option<&'a str>,
}

impl<'a> WarningGate<'a> {
    pub fn new(warnings: Option<&'a Warnings<'a>>, settings: &'a PassSettings) -> Self {
        WarningGate {
            warnings: warnings.filter(|_| settings.warns()),
            settings,
            book: Book::default(),
        }
    }

    pub fn warns_for(&self, kind: Kind) -> Option<f64> {
        let window = match kind {
            Kind::Server => self.settings.warn_before,
            Kind::User => self.settings.warn_users_before,
        };
        self.warnings.filter(|_| window > 0.0).map(|_| window)
    }

    pub fn wants_models(&self) -> bool {
        self.warnings.is_some_and(|w| w.hook.is_some())
    }

    /// `Ok(())` if a cull that is due now may go ahead (or none is due); otherwise why not.
    pub fn gate(
        &mut self,
        candidate: Candidate<'_>,
        report: &mut PassReport,
    ) -> Result<(), KeepReason> {
        let (Some(warnings), Some(window)) = (self.warnings, self.warns_for(candidate.key.kind))
        else {
            return Ok(());
        };
        let due_in = if candidate.due_now.is_some() {
            Some(0.0)
        } else {
            candidate.due.map(|(_, seconds)| seconds)
        };
        // Only what is due within the window costs a lookup; an active server costs nothing.
        if due_in.is_none_or(|d| d > window) {
            return Ok(());
        }
        let now = self.settings.now;
        let entry = match warnings.state.lookup(&candidate.key) {
            Ok(entry) => entry,
            Err(e) => {
                self.state_failed(&e, report);
                return candidate
                    .due_now
                    .map_or(Ok(()), |_| Err(KeepReason::Kept(KeepKind::NotWarned)));
            }
        };
        let held = |cull_at: f64| {
            candidate
                .due_now
                .map_or(Ok(()), |_| Err(KeepReason::Warned { cull_at }))
        };
        let decided = gate(due_in, window, now, entry.as_ref(), &candidate.stretch);
        if let (Kind::Server, Some(draft)) = (candidate.key.kind, &mut report.draft) {
            let key = &candidate.key;
            match (decided, &entry) {
                (Gate::Warn { cull_at }, _) => draft.warned(&key.user, &key.server, now, cull_at),
                (Gate::Wait { cull_at }, Some(e)) => {
                    draft.warned(&key.user, &key.server, e.warned_at, cull_at);
                }
                (Gate::Go, Some(e)) => draft.warned(&key.user, &key.server, e.warned_at, e.cull_at),
                _ => {}
            }
        }
        match decided {
            Gate::Quiet => Ok(()),
            Gate::Go => {
                self.book.writes.push(Write::Seen(candidate.key));
                Ok(())
            }
            Gate::Wait { cull_at } => {
                self.book.writes.push(Write::Seen(candidate.key));
                held(cull_at)
            }
            Gate::Warn { .. } if self.book.broken => candidate
                .due_now
                .map_or(Ok(()), |_| Err(KeepReason::Kept(KeepKind::NotWarned))),
            Gate::Warn { cull_at } => {
                let reason = candidate
                    .due_now
                    .or(candidate.due.map(|(reason, _)| reason))
                    .unwrap_or(CullReason::Idle);
                let warning = Warning {
                    kind: candidate.key.kind,
                    user: candidate.key.user.clone(),
                    server: (candidate.key.kind == Kind::Server)
                        .then(|| candidate.key.server.clone()),
                    reason,
                    inactive: candidate.inactive,
                    cull_at,
                    delivered: false,
                    user_json: candidate.user_json.to_owned(),
                    server_json: candidate.server_json.map(str::to_owned),
                };
                if self.settings.dry_run {
                    log::info!(target: LOG, "Would warn user {}: {}", warning.user, sentence(&warning));
                    report.record_warning(warning);
                } else {
                    self.book.writes.push(Write::Warned {
                        key: candidate.key,
                        entry: Entry {
                            stretch: candidate.stretch,
                            warned_at: now,
                            cull_at,
                            delivered: false,
                        },
                        reason: reason.label(),
                    });
                    self.book.pending.push(warning);
                }
                held(cull_at)
            }
        }
    }

    fn state_failed(&mut self, error: &rusqlite::Error, report: &mut PassReport) {
        if !self.book.broken {
            log::error!(
                target: LOG,
                "Cannot use the state file ({error}); no new warnings, and no culls that need one, until it works again"
            );
        }
        self.book.broken = true;
        report.record_error(format!("state file: {error}"));
    }

    /// Whether enough warnings wait to deliver them before the listing goes on.
    pub fn waiting(&self) -> usize {
        self.book.pending.len() + self.book.writes.len()
    }

    /// Record what the gates decided, then deliver the warnings given, `concurrency` at a
    /// time; the pass started at `started`.
    pub async fn deliver(
        &mut self,
        report: &mut PassReport,
        concurrency: usize,
        started: std::time::Instant,
    ) {
        let Some(warnings) = self.warnings else {
            return;
        };
        let writes = std::mem::take(&mut self.book.writes);
        let pending = std::mem::take(&mut self.book.pending);
        if let Err(e) = warnings.state.write(&writes, self.settings.now) {
            // Not recorded, so not given: those servers were kept, and are warned once the
            // state works again.
            self.state_failed(&e, report);
            return;
        }
        let now = self.settings.now;
        let delivered: Vec<(Warning, f64)> = stream::iter(pending)
            .map(|mut warning| async move {
                log::info!(
                    target: LOG,
                    user = warning.user.as_str(), action = "warn", kind = warning.kind.label(),
                    reason = warning.reason.label(), cull_at = format_utc(warning.cull_at).as_str();
                    "Warning user {}: {}", warning.user, sentence(&warning)
                );
                let mut ok = true;
                if let Some(hook) = warnings.hook {
                    let answer = tokio::time::timeout(warnings.hook_timeout, hook.warn(&warning));
                    ok &= answer.await.unwrap_or_else(|_| {
                        log::error!(
                            target: LOG,
                            "The warn_hook did not return within {:.0}s for {}; counted as not delivered",
                            warnings.hook_timeout.as_secs_f64(), warning.subject()
                        );
                        false
                    });
                }
                if let Some(webhook) = warnings.webhook {
                    if let Err(e) = webhook.post(&warning).await {
                        log::error!(target: LOG, "Cannot deliver the warning for {}: {e}", warning.subject());
                        ok = false;
                    }
                }
                warning.delivered = ok;
                let done = now + started.elapsed().as_secs_f64();
                (warning, done)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let confirmed: Vec<(Key, f64, f64)> = delivered
            .iter()
            .map(|(w, done)| {
                let key = Key {
                    kind: w.kind,
                    user: w.user.clone(),
                    server: w.server.clone().unwrap_or_default(),
                };
                (key, *done, done + self.warns_for(w.kind).unwrap_or(0.0))
            })
            .collect();
        if let Err(e) = warnings.state.confirm(&confirmed) {
            // Still pending in the state: delivered again at the next pass, and no cull before
            // a window after that.
            self.state_failed(&e, report);
        }
        for (warning, _) in delivered {
            if !warning.delivered {
                report.record_error(format!("warning for {}: not delivered", warning.subject()));
            }
            report.record_warning(warning);
        }
    }

    /// After a complete pass, forget the warnings it did not see again: their servers were
    /// culled, became active, or are gone.
    pub fn sweep(&mut self, report: &mut PassReport) {
        let Some(warnings) = self.warnings else {
            return;
        };
        if !report.complete || self.book.broken || self.settings.dry_run {
            return;
        }
        match warnings.state.sweep(self.settings.now) {
            Ok(0) => {}
            Ok(n) => {
                log::debug!(target: LOG, "Forgot {n} warnings for servers and users no longer due");
            }
            Err(e) => self.state_failed(&e, report),
        }
    }
}

/// `server alice/lab will be culled at T (inactive for 00:50:00)`.
fn sentence(warning: &Warning) -> String {
    let verb = match (&warning.server, warning.reason) {
        (Some(_), CullReason::LongStopped) => "removed",
        (Some(_), _) => "culled",
        (None, _) => "deleted",
    };
    format!(
        "{} will be {verb} at {} ({})",
        warning.subject(),
        format_utc(warning.cull_at),
        match warning.reason {
            CullReason::Idle => format!("inactive for {}", format_duration(warning.inactive)),
            CullReason::MaxAge => "max age".to_owned(),
            CullReason::LongStopped => format!("stopped for {}", format_duration(warning.inactive)),
        }
    )
}
