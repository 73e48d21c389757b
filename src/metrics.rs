//! What the passes did since the culler started, as Prometheus metrics and a health state.
//!
//! Counters are updated once per pass, from the pass's totals (which count everything even
//! when the report lists nothing), so a scrape never waits for a pass.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::pass::report::{Outcome, PassReport};
use crate::reasons::KeepKind;

use crate::timestamp::unix_now;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

/// `/health`'s answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Health {
    /// `starting` before the first pass, then `ok` or `failing` by the last pass.
    pub status: &'static str,
    pub passes: u64,
    pub passes_failed: u64,
    pub last_pass: Option<f64>,
    pub last_success: Option<f64>,
    pub uptime_seconds: f64,
}

#[derive(Debug, Default)]
struct PassRecord {
    passes: u64,
    passes_failed: u64,
    last_pass: Option<f64>,
    last_success: Option<f64>,
    last_complete: Option<bool>,
}

pub struct Metrics {
    registry: Registry,
    started: f64,
    state: Mutex<PassRecord>,
    passes: Counter,
    passes_failed: Counter,
    duration: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    stopped: Family<ReasonLabel, Counter>,
    deleted: Family<ReasonLabel, Counter>,
    skipped: Family<ReasonLabel, Counter>,
    request_errors: Family<StatusLabel, Counter>,
    warnings: Family<KindLabel, Counter>,
    warning_failures: Counter,
    page: PageCounters,
    /// Read at each scrape, so the gauge drops as keep-alives run out.
    watched: std::sync::OnceLock<std::sync::Arc<crate::keepalive::KeepAlives>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What the page counts.
struct PageCounters {
    keep_alives: Counter,
    keep_alives_in_force: Gauge,
    auth_checks: Counter,
    auth_busy: Counter,
    auth_errors: Counter,
}

impl PageCounters {
    fn register(registry: &mut Registry) -> Self {
        let page = PageCounters {
            keep_alives: Counter::default(),
            keep_alives_in_force: Gauge::default(),
            auth_checks: Counter::default(),
            auth_busy: Counter::default(),
            auth_errors: Counter::default(),
        };
        registry.register(
            "page_auth_checks",
            "Requests the page made to the Hub to check a visitor's token (the rest were cached)",
            page.auth_checks.clone(),
        );
        registry.register(
            "page_auth_busy",
            "Page requests answered 503 at once because the page's own budget of Hub requests was in use",
            page.auth_busy.clone(),
        );
        registry.register(
            "page_auth_errors",
            "The page's checks of visitors that the Hub failed to answer (not counted in the passes' errors)",
            page.auth_errors.clone(),
        );
        registry.register(
            "keep_alives",
            "Keep-alives that users set from the page or the API",
            page.keep_alives.clone(),
        );
        registry.register(
            "keep_alives_in_force",
            "Keep-alives in force when scraped",
            page.keep_alives_in_force.clone(),
        );
        page
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cull_idle");
        let passes = Counter::default();
        let passes_failed = Counter::default();
        // From a tenth of a second to about an hour and a half.
        let duration = Histogram::new(exponential_buckets(0.1, 2.0, 16));
        let last_success = Gauge::<f64, AtomicU64>::default();
        let stopped = Family::<ReasonLabel, Counter>::default();
        let deleted = Family::<ReasonLabel, Counter>::default();
        let skipped = Family::<ReasonLabel, Counter>::default();
        let request_errors = Family::<StatusLabel, Counter>::default();
        let warnings = Family::<KindLabel, Counter>::default();
        let warning_failures = Counter::default();
        let page = PageCounters::register(&mut registry);
        registry.register(
            "warnings",
            "Warnings given before culling, by kind (server, user)",
            warnings.clone(),
        );
        registry.register(
            "warning_failures",
            "Warnings that a hook or the webhook failed to deliver",
            warning_failures.clone(),
        );
        registry.register("passes", "Cull passes run", passes.clone());
        registry.register(
            "passes_failed",
            "Passes that could not list every user",
            passes_failed.clone(),
        );
        registry.register(
            "pass_duration_seconds",
            "Time taken by passes",
            duration.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When the last complete pass ended (Unix time)",
            last_success.clone(),
        );
        registry.register(
            "servers_stopped",
            "Servers stopped, by reason",
            stopped.clone(),
        );
        registry.register("users_deleted", "Users deleted, by reason", deleted.clone());
        registry.register(
            "skipped",
            "Servers and users kept, by reason",
            skipped.clone(),
        );
        registry.register(
            "hub_request_errors",
            "Failed requests to the Hub (retries too), by status or kind",
            request_errors.clone(),
        );
        Metrics {
            registry,
            started: unix_now(),
            state: Mutex::default(),
            passes,
            passes_failed,
            duration,
            last_success,
            stopped,
            deleted,
            skipped,
            request_errors,
            warnings,
            warning_failures,
            page,
            watched: std::sync::OnceLock::new(),
        }
    }

    /// Report how many of these keep-alives are in force at each scrape.
    pub fn watch_keep_alives(&self, keep_alives: std::sync::Arc<crate::keepalive::KeepAlives>) {
        let _ = self.watched.set(keep_alives);
    }

    /// The page asked the Hub about a visitor's token.
    pub fn count_page_auth_check(&self) {
        self.page.auth_checks.inc();
    }

    /// The page answered 503: its budget of Hub requests was in use.
    pub fn count_page_auth_busy(&self) {
        self.page.auth_busy.inc();
    }

    /// The Hub failed a page's check of a visitor.
    pub fn count_page_auth_error(&self) {
        self.page.auth_errors.inc();
    }

    /// A user set a keep-alive.
    pub fn count_keep_alive(&self) {
        self.page.keep_alives.inc();
    }

    /// Count one pass; `None` for a pass that raised.
    pub fn observe(&self, report: Option<&PassReport>) {
        let now = unix_now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.passes += 1;
        state.last_pass = Some(now);
        self.passes.inc();
        let complete = report.is_some_and(|r| r.complete);
        state.last_complete = Some(complete);
        if complete {
            state.last_success = Some(now);
            self.last_success.set(now);
        } else {
            state.passes_failed += 1;
            self.passes_failed.inc();
        }
        let Some(report) = report else { return };
        self.duration.observe(report.seconds);
        let add = |family: &Family<ReasonLabel, Counter>, reason: &str, n: u64| {
            family
                .get_or_create(&ReasonLabel {
                    reason: reason.to_owned(),
                })
                .inc_by(n);
        };
        let servers = &report.totals.servers;
        for outcome in [Outcome::Stopped, Outcome::Gone] {
            for (reason, &n) in servers.get(outcome.label()).into_iter().flatten() {
                add(&self.stopped, reason, n);
            }
        }
        let deleted = report.totals.users.get(Outcome::Deleted.label());
        for (reason, &n) in deleted.into_iter().flatten() {
            add(&self.deleted, reason, n);
        }
        let slow = report.count(Outcome::Stopping, true);
        // Always present, as it was before the first slow stop too.
        add(&self.skipped, KeepKind::SlowStop.label(), slow);
        for (reason, &n) in &report.totals.skipped {
            add(&self.skipped, reason, n);
        }
        for (status, &n) in &report.request_errors {
            self.request_errors
                .get_or_create(&StatusLabel {
                    status: status.clone(),
                })
                .inc_by(n);
        }
        for (&kind, &n) in &report.totals.warned {
            self.warnings
                .get_or_create(&KindLabel {
                    kind: kind.to_owned(),
                })
                .inc_by(n);
        }
        self.warning_failures.inc_by(report.warning_failures);
    }

    /// The text exposition (OpenMetrics, which Prometheus also reads as its own text format).
    pub fn encode(&self) -> String {
        if let Some(kept) = self.watched.get() {
            let n = kept.in_force(unix_now()).len();
            self.page
                .keep_alives_in_force
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    pub fn health(&self) -> Health {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let status = match state.last_complete {
            None => "starting",
            Some(true) => "ok",
            Some(false) => "failing",
        };
        Health {
            status,
            passes: state.passes,
            passes_failed: state.passes_failed,
            last_pass: state.last_pass,
            last_success: state.last_success,
            uptime_seconds: ((unix_now() - self.started) * 1000.0).round() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn a_pass_is_counted_from_its_totals() {
        let metrics = Metrics::new();
        assert_eq!(metrics.health().status, "starting");
        let mut report = PassReport {
            complete: true,
            seconds: 0.5,
            request_errors: [("503".to_owned(), 2)].into(),
            ..PassReport::default()
        };
        let totals = &mut report.totals;
        totals.servers = [
            ("stopped", [("idle", 2)].into()),
            ("gone", [("idle", 1)].into()),
            ("stopping", [("max-age", 1)].into()),
        ]
        .into();
        totals.users = [("deleted", [("idle", 1)].into())].into();
        totals.skipped = [("exempt", 3)].into();
        metrics.observe(Some(&report));
        let text = metrics.encode();
        assert_eq!(sample(&text, "cull_idle_passes_total"), Some(1.0));
        assert_eq!(sample(&text, "cull_idle_passes_failed_total"), Some(0.0));
        assert_eq!(
            sample(&text, "cull_idle_servers_stopped_total{reason=\"idle\"}"),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "cull_idle_users_deleted_total{reason=\"idle\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cull_idle_skipped_total{reason=\"slow-stop\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cull_idle_skipped_total{reason=\"exempt\"}"),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "cull_idle_hub_request_errors_total{status=\"503\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "cull_idle_pass_duration_seconds_count"),
            Some(1.0)
        );
        assert!(sample(&text, "cull_idle_last_success_timestamp_seconds").unwrap() > 0.0);
        assert_eq!(metrics.health().status, "ok");
    }

    #[test]
    fn a_failed_or_raised_pass_makes_health_fail() {
        let metrics = Metrics::new();
        metrics.observe(Some(&PassReport::default()));
        assert_eq!(metrics.health().status, "failing");
        metrics.observe(None);
        let health = metrics.health();
        assert_eq!((health.passes, health.passes_failed), (2, 2));
        assert_eq!(health.last_success, None);
        assert_eq!(
            sample(&metrics.encode(), "cull_idle_passes_failed_total"),
            Some(2.0)
        );
    }
}
