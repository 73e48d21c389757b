//! Python bindings of cull-idle's core: a thin layer over the pure Rust modules.
//!
//! `hub`, `models`, `policy`, `work`, `probe`, `pass` and `timestamp` carry no pyo3 imports
//! and are tested with `cargo test`; this file only converts arguments, maps errors and
//! bridges to asyncio.

#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod listing;
pub mod models;
pub mod pass;
pub mod policy;
pub mod probe;
pub mod timestamp;
pub mod work;

use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use tokio::task::AbortHandle;

use crate::hub::{ApiToken, HubClient, HubSettings, TlsFiles};
use crate::pass::{run_pass, Arbiter, PassSettings, Probes};
use crate::policy::Policy;
use crate::probe::{ProbeClient, ProbeSettings};
use crate::work::{BusyMemory, WorkRules};

static LOG_RESET: OnceLock<pyo3_log::ResetHandle> = OnceLock::new();

/// The one place where core errors become Python exceptions.
fn to_py_err(error: &impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(error.to_string())
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{name} must be a positive number of seconds, not {value}"
            ))
        })
}

/// A connection to one Hub's REST API; reuse it across passes to keep connections alive.
#[pyclass(frozen, module = "cull_idle._core")]
struct Hub {
    client: Arc<HubClient>,
    /// For single-user servers (`--keep-busy-kernels`); shares the Hub client's limit. Built
    /// on first use: a TLS client costs start-up time that most deployments never need.
    prober: OnceLock<Arc<ProbeClient>>,
    probe_settings: ProbeSettings,
    /// Servers kept for their work, across the passes made over this connection.
    memory: Arc<Mutex<BusyMemory>>,
    url: String,
}

#[pymethods]
impl Hub {
    #[new]
    #[pyo3(signature = (url, token, *, request_timeout=60.0, concurrency=10, ca_file=None, cert_file=None, key_file=None, retries=3, backoff=0.5, probe_timeout=10.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        token: String,
        request_timeout: f64,
        concurrency: usize,
        ca_file: Option<PathBuf>,
        cert_file: Option<PathBuf>,
        key_file: Option<PathBuf>,
        retries: u32,
        backoff: f64,
        probe_timeout: f64,
    ) -> PyResult<Self> {
        let token = ApiToken::new(token);
        let probe_settings = ProbeSettings {
            token: token.clone(),
            timeout: seconds("probe_timeout", probe_timeout)?,
            ca_file: ca_file.clone(),
            retries,
            backoff: Duration::try_from_secs_f64(backoff).unwrap_or_default(),
        };
        let settings = HubSettings {
            url: url.clone(),
            token,
            request_timeout: seconds("request_timeout", request_timeout)?,
            concurrency,
            tls: TlsFiles {
                ca_file,
                cert_file,
                key_file,
            },
            retries,
            backoff: Duration::try_from_secs_f64(backoff).map_err(|_| {
                PyValueError::new_err("backoff must be a non-negative number of seconds")
            })?,
        };
        // Building the TLS client may log; never wait on it while attached (pyo3-log deadlock).
        let client = py
            .detach(|| HubClient::new(&settings))
            .map_err(|e| to_py_err(&e))?;
        Ok(Hub {
            client: Arc::new(client),
            prober: OnceLock::new(),
            probe_settings,
            memory: Arc::default(),
            url,
        })
    }

    /// Start one pass on the runtime; see [`Task`]. Must be called from a running
    /// asyncio loop when an arbiter is given (it is awaited on that loop).
    #[pyo3(signature = (*, now, inactive_limit, max_age=0.0, cull_users=false, cull_admin_users=true, cull_default_servers=true, cull_named_servers=true, remove_named_servers=false, page_size=None, arbiter=None, user_inactive_limit=None, exclude_users=Vec::new(), exclude_groups=Vec::new(), group_limits=Vec::new(), dry_run=false, max_culls=None, keep_busy_kernels=false, keep_connected=false, busy_timeout=0.0, server_url=None, details=true, act_after=None))]
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    fn start_pass(
        &self,
        py: Python<'_>,
        now: f64,
        inactive_limit: f64,
        max_age: f64,
        cull_users: bool,
        cull_admin_users: bool,
        cull_default_servers: bool,
        cull_named_servers: bool,
        remove_named_servers: bool,
        page_size: Option<u64>,
        arbiter: Option<Py<PyAny>>,
        user_inactive_limit: Option<f64>,
        exclude_users: Vec<String>,
        exclude_groups: Vec<String>,
        group_limits: Vec<(String, f64)>,
        dry_run: bool,
        max_culls: Option<usize>,
        keep_busy_kernels: bool,
        keep_connected: bool,
        busy_timeout: f64,
        server_url: Option<String>,
        details: bool,
        act_after: Option<usize>,
    ) -> PyResult<Task> {
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        let limits_ok = non_negative(inactive_limit)
            && non_negative(max_age)
            && non_negative(busy_timeout)
            && user_inactive_limit.is_none_or(non_negative)
            && group_limits.iter().all(|&(_, limit)| non_negative(limit));
        if !limits_ok {
            return Err(PyValueError::new_err(
                "time limits must be non-negative numbers of seconds",
            ));
        }
        if let Some(reset) = LOG_RESET.get() {
            // Pick up logging configuration changed since the last pass.
            reset.reset();
        }
        let settings = PassSettings {
            policy: Policy {
                inactive_limit,
                max_age,
                cull_users,
                cull_admin_users,
                cull_default_servers,
                cull_named_servers,
                remove_named_servers,
                user_inactive_limit,
                exclude_users,
                exclude_groups,
                group_limits,
            },
            page_size: page_size.filter(|&n| n > 0),
            now,
            dry_run,
            max_culls,
            work: WorkRules {
                keep_busy: keep_busy_kernels,
                keep_connected,
                busy_timeout,
            },
            server_url,
            details,
            act_after: act_after.map_or(pass::ACT_AFTER, |n| n.max(1)),
        };
        let hook = match arbiter {
            Some(func) => Some(PyArbiter {
                func,
                locals: pyo3_async_runtimes::tokio::get_current_locals(py)?,
            }),
            None => None,
        };
        let client = Arc::clone(&self.client);
        let probe_client = if settings.work.enabled() {
            Some(self.probe_client(py)?)
        } else {
            None
        };
        let memory = Arc::clone(&self.memory);
        Task::spawn(async move {
            let probes = probe_client.as_ref().map(|probe_client| Probes {
                client: probe_client,
                memory: &memory,
            });
            let report = run_pass(
                &client,
                &settings,
                hook.as_ref().map(|h| h as &dyn Arbiter),
                probes.as_ref(),
            )
            .await;
            serde_json::to_string(&report).map_err(|e| e.to_string())
        })
    }

    /// Start reading the token's scopes (`GET /user`); the task's result is a JSON list.
    fn start_token_scopes(&self) -> PyResult<Task> {
        let client = Arc::clone(&self.client);
        Task::spawn(async move {
            let scopes = client.token_scopes().await.map_err(|e| e.to_string())?;
            serde_json::to_string(&scopes).map_err(|e| e.to_string())
        })
    }

    fn __repr__(&self) -> String {
        format!("Hub({:?})", self.url)
    }
}

impl Hub {
    fn probe_client(&self, py: Python<'_>) -> PyResult<Arc<ProbeClient>> {
        if let Some(client) = self.prober.get() {
            return Ok(Arc::clone(client));
        }
        let client = py
            .detach(|| ProbeClient::new(&self.probe_settings, self.client.limiter()))
            .map_err(|e| to_py_err(&e))?;
        Ok(Arc::clone(self.prober.get_or_init(|| Arc::new(client))))
    }
}

/// Work (a pass, a scope check) running on the runtime, with a JSON result.
///
/// Completion is signalled by one byte on a socket (watched by the asyncio loop with
/// `add_reader`), never by a runtime thread calling into Python: a thread still inside the
/// interpreter when `asyncio.run()` returns and Python finalizes crashes the process.
#[pyclass(frozen, module = "cull_idle._core")]
struct Task {
    reader: UnixStream,
    slot: Arc<Mutex<Option<Result<String, String>>>>,
    abort: AbortHandle,
}

impl Task {
    fn spawn(
        work: impl Future<Output = Result<String, String>> + Send + 'static,
    ) -> PyResult<Task> {
        let (reader, writer) = UnixStream::pair()?;
        let slot = Arc::new(Mutex::new(None));
        let filled = Arc::clone(&slot);
        let task = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            // Declared first, dropped last: the byte is written once the result is in the
            // slot and everything else of this task is gone, or when the task is aborted.
            let _done = DoneSignal(writer);
            let result = work.await;
            *filled.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        });
        Ok(Task {
            reader,
            slot,
            abort: task.abort_handle(),
        })
    }
}

#[pymethods]
impl Task {
    /// The file descriptor that becomes readable when the work has finished or was cancelled.
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// Abandon the work; requests in flight are dropped. `fileno()` still signals the end.
    fn cancel(&self) {
        self.abort.abort();
    }

    /// The result as JSON text, or `None` while running or after a cancellation; a failure
    /// raises `ValueError` with its message.
    fn result(&self) -> PyResult<Option<String>> {
        match self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(Ok(json)) => Ok(Some(json)),
            Some(Err(e)) => Err(PyValueError::new_err(e)),
            None => Ok(None),
        }
    }
}

struct DoneSignal(UnixStream);

impl Drop for DoneSignal {
    fn drop(&mut self) {
        // A failed write can only mean the reader is gone, and then nobody is waiting.
        let _ = self.0.write_all(b"!");
    }
}

/// An arbiter backed by a Python coroutine function `(inactive, inactive_limit, server_json, user_json)`
/// that already handles sync/async hooks and their exceptions.
struct PyArbiter {
    func: Py<PyAny>,
    locals: TaskLocals,
}

impl Arbiter for PyArbiter {
    fn allow<'a>(
        &'a self,
        inactive: f64,
        inactive_limit: f64,
        server_json: &'a str,
        user_json: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let awaiting = Python::attach(|py| {
                let coroutine =
                    self.func
                        .bind(py)
                        .call1((inactive, inactive_limit, server_json, user_json))?;
                pyo3_async_runtimes::into_future_with_locals(&self.locals, coroutine)
            });
            let answer = match awaiting {
                Ok(future) => future.await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(value) => Python::attach(|py| value.bind(py).is_truthy().unwrap_or(false)),
                Err(e) => {
                    log::error!(target: "cull_idle", "The cull_arbiter hook failed, not culling: {e}");
                    false
                }
            }
        })
    }
}

#[pymodule(gil_used = false)]
mod _core {
    #[pymodule_export]
    use super::{Hub, Task};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        let logger = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::LoggersAndLevels)?
            .filter(log::LevelFilter::Warn)
            .filter_target("cull_idle".to_owned(), log::LevelFilter::Trace);
        if let Ok(reset) = logger.install() {
            let _ = super::LOG_RESET.set(reset);
        }
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        // I/O-bound: two workers are plenty whatever the core count.
        builder
            .worker_threads(2)
            .thread_name("cull-idle")
            .enable_all();
        pyo3_async_runtimes::tokio::init(builder);
        Ok(())
    }
}
