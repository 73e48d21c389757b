//! What a pass reports, as Python objects: made once from the core's report when the pass ends,
//! so nothing crosses as JSON and nothing goes back.

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::pass::report::{Action, Outcome, PassReport, Skip};
use crate::warnings::delivery::Warning;

use super::convert::{python_of, timedelta, utc};

/// A stop or a deletion the pass attempted.
#[pyclass(frozen, get_all, name = "Action", module = "cull_idle._core")]
pub struct PyAction {
    pub user: String,
    /// The server's name (`""` for the default server), or `None` for a user deletion.
    pub server: Option<String>,
    /// `idle`, `max-age` or `long-stopped`.
    pub reason: &'static str,
    /// A `timedelta`, or `None`.
    pub inactive: Py<PyAny>,
    /// `stopped`, `stopping` (202), `gone` (404), `deleted`, `kept`, `failed`, `would-stop`,
    /// `would-delete`.
    pub outcome: &'static str,
    pub detail: Option<String>,
    /// What asking the server saw: `{"work": {...}, "error": None}`, or `None`.
    pub probe: Py<PyAny>,
}

#[pymethods]
impl PyAction {
    fn __repr__(&self) -> String {
        format!(
            "Action(user={:?}, server={:?}, reason={:?}, outcome={:?}, detail={:?})",
            self.user, self.server, self.reason, self.outcome, self.detail
        )
    }
}

/// A server or user the pass kept, and why.
#[pyclass(frozen, get_all, name = "Skip", module = "cull_idle._core")]
pub struct PySkip {
    pub user: String,
    pub server: Option<String>,
    pub reason: &'static str,
    pub detail: Option<String>,
    pub probe: Py<PyAny>,
}

#[pymethods]
impl PySkip {
    fn __repr__(&self) -> String {
        format!(
            "Skip(user={:?}, server={:?}, reason={:?}, detail={:?})",
            self.user, self.server, self.reason, self.detail
        )
    }
}

/// A warning given before a cull: of a server (`server` its name) or of a user's deletion
/// (`server` is `None`).
#[pyclass(frozen, get_all, name = "CullWarning", module = "cull_idle._core")]
pub struct PyCullWarning {
    /// `server` or `user`.
    pub kind: &'static str,
    pub user: String,
    pub server: Option<String>,
    pub reason: &'static str,
    pub inactive: Py<PyAny>,
    /// An aware `datetime` in UTC: the cull comes at the first pass from then on.
    pub cull_at: Py<PyAny>,
    /// The hook and the webhook, whichever are set, both took it.
    pub delivered: bool,
}

#[pymethods]
impl PyCullWarning {
    fn __repr__(&self) -> String {
        format!(
            "CullWarning(kind={:?}, user={:?}, server={:?}, reason={:?}, delivered={})",
            self.kind, self.user, self.server, self.reason, self.delivered
        )
    }
}

impl PyCullWarning {
    pub fn new(py: Python<'_>, w: &Warning) -> PyResult<Self> {
        Ok(PyCullWarning {
            kind: w.kind.label(),
            user: w.user.clone(),
            server: w.server.clone(),
            reason: w.reason.label(),
            inactive: timedelta(py, w.inactive)?.map_or_else(|| py.None(), Bound::unbind),
            cull_at: utc(py, w.cull_at)?.unbind(),
            delivered: w.delivered,
        })
    }
}

/// What one pass saw and did.
#[pyclass(frozen, name = "CullReport", module = "cull_idle._core")]
pub struct PyCullReport {
    /// Every page of users was listed; `False` when the Hub could not be read (see `errors`).
    #[pyo3(get)]
    complete: bool,
    #[pyo3(get)]
    hub_version: Option<String>,
    #[pyo3(get)]
    users_seen: u64,
    #[pyo3(get)]
    servers_seen: u64,
    /// Each with its outcome, and whether it is a server's, for the properties that pick.
    actions: Vec<(Py<PyAction>, Outcome, bool)>,
    skipped: Vec<Py<PySkip>>,
    /// Kept for being active, or not selected: only counted, so that the report does not grow
    /// with the size of the Hub.
    #[pyo3(get)]
    kept_active: u64,
    #[pyo3(get)]
    kept_not_selected: u64,
    warned: Vec<Py<PyCullWarning>>,
    /// Warnings the hook or the webhook failed to deliver (their culls go ahead on schedule).
    #[pyo3(get)]
    warning_failures: u64,
    /// The first 100 error messages (`errors_total` counts them all).
    #[pyo3(get)]
    errors: Vec<String>,
    #[pyo3(get)]
    errors_total: u64,
    /// Failed requests to the Hub (retries too), by HTTP status or `timeout`, `connect`, …
    #[pyo3(get)]
    request_errors: Py<PyAny>,
    /// Everything counted, even with `details=False`: `{"servers": {outcome: {reason: n}},
    /// "users": …, "skipped": {reason: n}, "warned": {kind: n}}`.
    #[pyo3(get)]
    totals: Py<PyAny>,
    #[pyo3(get)]
    seconds: f64,
    /// Nothing was stopped or deleted: outcomes are `would-stop` and `would-delete`.
    #[pyo3(get)]
    dry_run: bool,
}

fn action(py: Python<'_>, a: &Action) -> PyResult<Py<PyAction>> {
    let action = PyAction {
        user: a.user.clone(),
        server: a.server.clone(),
        reason: a.reason.label(),
        inactive: timedelta(py, a.inactive)?.map_or_else(|| py.None(), Bound::unbind),
        outcome: a.outcome.label(),
        detail: a.detail.clone(),
        probe: python_of(py, &a.probe)?.unbind(),
    };
    Py::new(py, action)
}

fn skip(py: Python<'_>, s: &Skip) -> PyResult<Py<PySkip>> {
    let skip = PySkip {
        user: s.user.clone(),
        server: s.server.clone(),
        reason: s.reason.label(),
        detail: s.detail.clone(),
        probe: python_of(py, &s.probe)?.unbind(),
    };
    Py::new(py, skip)
}

impl PyCullReport {
    pub fn new(py: Python<'_>, report: &PassReport) -> PyResult<Self> {
        Ok(PyCullReport {
            complete: report.complete,
            hub_version: report.hub_version.clone(),
            users_seen: report.users_seen,
            servers_seen: report.servers_seen,
            actions: report
                .actions
                .iter()
                .map(|a| Ok((action(py, a)?, a.outcome, a.server.is_some())))
                .collect::<PyResult<_>>()?,
            skipped: report
                .skipped
                .iter()
                .map(|s| skip(py, s))
                .collect::<PyResult<_>>()?,
            kept_active: report.kept_active,
            kept_not_selected: report.kept_not_selected,
            warned: report
                .warned
                .iter()
                .map(|w| Py::new(py, PyCullWarning::new(py, w)?))
                .collect::<PyResult<_>>()?,
            warning_failures: report.warning_failures,
            errors: report.errors.clone(),
            errors_total: report.errors_total,
            request_errors: python_of(py, &report.request_errors)?.unbind(),
            totals: python_of(py, &report.totals)?.unbind(),
            seconds: report.seconds,
            dry_run: report.dry_run,
        })
    }

    /// The actions whose outcome and kind (server or user) match.
    fn picked<'py>(
        &self,
        py: Python<'py>,
        wanted: impl Fn(Outcome, bool) -> bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let picked = self
            .actions
            .iter()
            .filter(|(_, outcome, server)| wanted(*outcome, *server))
            .map(|(a, _, _)| a.clone_ref(py));
        PyList::new(py, picked)
    }
}

#[pymethods]
impl PyCullReport {
    /// Stops and deletions attempted (with details on).
    #[getter]
    fn actions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.picked(py, |_, _| true)
    }

    /// Kept servers and users with a notable reason (with details on).
    #[getter]
    fn skipped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.skipped.iter().map(|s| s.clone_ref(py)))
    }

    /// Warnings given in this pass; in a dry run, those that would be.
    #[getter]
    fn warned<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.warned.iter().map(|w| w.clone_ref(py)))
    }

    /// Servers that are stopped now (including those already gone).
    #[getter]
    fn stopped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.picked(py, |o, server| server && o.is_down())
    }

    /// Servers the Hub is still stopping (202); their users were not deleted.
    #[getter]
    fn stopping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.picked(py, |o, server| server && o == Outcome::Stopping)
    }

    /// Users deleted.
    #[getter]
    fn deleted<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.picked(py, |o, server| !server && o == Outcome::Deleted)
    }

    /// Stops and deletions that failed.
    #[getter]
    fn failed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.picked(py, |o, _| o == Outcome::Failed)
    }

    fn __repr__(&self) -> String {
        format!(
            "CullReport(complete={}, users_seen={}, servers_seen={}, actions={}, skipped={}, errors_total={})",
            if self.complete { "True" } else { "False" },
            self.users_seen,
            self.servers_seen,
            self.actions.len(),
            self.skipped.len(),
            self.errors_total
        )
    }
}
