//! Python bindings of cull-idle's core: a thin layer over the pure Rust modules, which carry
//! no pyo3 imports and are tested with `cargo test`. This layer only converts arguments,
//! maps errors (in [`errors`]) and bridges to asyncio.

pub mod arbiter;
pub mod convert;
pub mod docs;
pub mod errors;
pub mod options;
pub mod report;
pub mod task;
pub mod web;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::CoreError;
use crate::http::{ApiToken, Retry};
use crate::hub::{HubSettings, TlsFiles};
use crate::pass::{Arbiter, Hooks};
use crate::session::{Session, SessionConfig};
use crate::warnings::delivery::WarnHook;

use arbiter::PyHook;
use errors::{config_error, to_py};
use options::PyPassOptions;
use task::{Output, Task};

pub static LOG_RESET: OnceLock<pyo3_log::ResetHandle> = OnceLock::new();

fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            config_error(
                py,
                format!("{name} must be a positive number of seconds, not {value}"),
            )
        })
}

/// An operator's async hook, awaited on the asyncio loop that started the pass.
fn on_this_loop(py: Python<'_>, func: Option<Py<PyAny>>) -> PyResult<Option<PyHook>> {
    func.map(|func| {
        Ok(PyHook {
            func,
            locals: pyo3_async_runtimes::tokio::get_current_locals(py)?,
        })
    })
    .transpose()
}

/// The culler's session with one Hub ([`Session`]), as Python holds it. Reuse it across
/// passes.
#[pyclass(frozen, module = "cull_idle._core")]
pub struct Connection {
    pub(crate) session: Arc<Session>,
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (url, token, *, request_timeout=60.0, concurrency=None, ca_file=None, cert_file=None, key_file=None, retries=3, backoff=0.5, probe_timeout=10.0, state_file=None, warn_webhook=None, state_read_only=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        token: String,
        request_timeout: f64,
        concurrency: Option<i64>,
        ca_file: Option<PathBuf>,
        cert_file: Option<PathBuf>,
        key_file: Option<PathBuf>,
        retries: u32,
        backoff: f64,
        probe_timeout: f64,
        state_file: Option<String>,
        warn_webhook: Option<String>,
        state_read_only: bool,
    ) -> PyResult<Self> {
        if token.is_empty() {
            return Err(config_error(
                py,
                "an API token is required (JUPYTERHUB_API_TOKEN)",
            ));
        }
        let concurrency = concurrency.unwrap_or(0);
        let concurrency = usize::try_from(concurrency).map_err(|_| {
            config_error(
                py,
                format!("concurrency must not be negative, not {concurrency}"),
            )
        })?;
        let backoff = Duration::try_from_secs_f64(backoff)
            .map_err(|_| config_error(py, "backoff must be a non-negative number of seconds"))?;
        let config = SessionConfig {
            hub: HubSettings {
                url,
                token: ApiToken::new(token),
                request_timeout: seconds(py, "request_timeout", request_timeout)?,
                concurrency,
                tls: TlsFiles {
                    ca_file,
                    cert_file,
                    key_file,
                },
                retry: Retry { retries, backoff },
            },
            probe_timeout: seconds(py, "probe_timeout", probe_timeout)?,
            state_file,
            state_read_only,
            warn_webhook,
        };
        // Building the TLS client may log; never wait on it while attached (pyo3-log deadlock).
        let session = py
            .detach(|| Session::connect(&config))
            .map_err(|e| to_py(py, &e))?;
        Ok(Connection {
            session: Arc::new(session),
        })
    }

    /// Start one pass with `options` (checked when they were made) on the runtime; see
    /// [`Task`]. Must be called from a running asyncio loop when a hook is given (it is
    /// awaited on that loop). `act_after` is for tests: act in small batches.
    #[pyo3(signature = (options, *, now, arbiter=None, user_arbiter=None, warn_hook=None, act_after=None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
    fn start_pass(
        &self,
        py: Python<'_>,
        options: &Bound<'_, PyPassOptions>,
        now: f64,
        arbiter: Option<Py<PyAny>>,
        user_arbiter: Option<Py<PyAny>>,
        warn_hook: Option<Py<PyAny>>,
        act_after: Option<usize>,
    ) -> PyResult<Task> {
        if let Some(reset) = LOG_RESET.get() {
            // Pick up logging configuration changed since the last pass.
            reset.reset();
        }
        let settings = options.get().0.settings(now, act_after);
        let server = on_this_loop(py, arbiter)?;
        let user = on_this_loop(py, user_arbiter)?;
        let warn_hook = on_this_loop(py, warn_hook)?;
        let session = Arc::clone(&self.session);
        Task::spawn(async move {
            let hooks = Hooks {
                server: server.as_ref().map(|h| h as &dyn Arbiter),
                user: user.as_ref().map(|h| h as &dyn Arbiter),
            };
            let warn_hook = warn_hook.as_ref().map(|h| h as &dyn WarnHook);
            let report = session.pass(&settings, hooks, warn_hook).await?;
            Ok(Output::Report(Box::new(report)))
        })
    }

    /// Start reading the token's scopes (`GET /user`); the task's result is a `TokenScopes`.
    fn start_token_scopes(&self) -> PyResult<Task> {
        let session = Arc::clone(&self.session);
        Task::spawn(async move {
            let scopes = session
                .hub()
                .token_scopes()
                .await
                .map_err(CoreError::from)?;
            Ok(Output::Scopes(scopes))
        })
    }

    fn __repr__(&self) -> String {
        format!("Connection({:?})", self.session.url())
    }
}
