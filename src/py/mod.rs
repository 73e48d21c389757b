//! Python bindings of cull-idle's core: a thin layer over the pure Rust modules, which carry
//! no pyo3 imports and are tested with `cargo test`. This layer only converts arguments,
//! maps errors (in [`errors`]) and bridges to asyncio.

pub mod arbiter;
pub mod convert;
pub mod errors;
pub mod options;
pub mod report;
pub mod task;
pub mod web;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;

use crate::board::Board;
use crate::http::{ApiToken, Retry};
use crate::hub::{HubClient, HubSettings, TlsFiles, DEFAULT_CONCURRENCY};
use crate::keepalive::KeepAlives;
use crate::ledger::WorkLedger;
use crate::metrics::Metrics;
use crate::pass::{run_pass, Arbiter, BoardFeed, Hooks, Probes, Warnings};
use crate::probe::{ProbeClient, ProbeSettings};
use crate::probe_tokens::ProbeTokens;
use crate::state::StateDb;
use crate::warnings::delivery::{WarnHook, WebhookClient};
use crate::work::BusyMemory;

use arbiter::{PyArbiter, PyWarnHook};
use errors::{config_error, to_py, CoreError};
use options::PyPassOptions;
use task::{Output, Task};

pub static LOG_RESET: OnceLock<pyo3_log::ResetHandle> = OnceLock::new();

/// Every reason a server or user is kept or culled, with its words, as JSON: for the README's
/// table and the metrics' label values.
#[pyfunction]
pub fn reasons() -> String {
    serde_json::to_string(&crate::reasons::docs()).unwrap_or_default()
}

/// The signals of kernel-aware culling: each one's option, scope and label, as JSON, for the
/// start-up scope check and the README.
#[pyfunction]
pub fn signals() -> String {
    serde_json::to_string(&crate::signals::docs()).unwrap_or_default()
}

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

/// The culler's session with one Hub: its HTTP clients (the Hub's, the servers', the
/// webhook's), the state file, the memory of servers kept for their work, and what a page
/// served for it shares with the passes. Reuse it across passes.
#[pyclass(frozen, module = "cull_idle._core")]
pub struct Connection {
    client: Arc<HubClient>,
    /// What the client was made from, for the page's own client.
    settings: HubSettings,
    /// For single-user servers (`--keep-busy-kernels`); shares the Hub client's limit. Built
    /// on first use: a TLS client costs start-up time that most deployments never need.
    prober: OnceLock<Arc<ProbeClient>>,
    probe_settings: ProbeSettings,
    /// The tokens probes carry, one per server asked (`crate::probe_tokens`).
    probe_tokens: Arc<ProbeTokens>,
    /// Servers kept for their work, across the passes made over this connection.
    memory: Arc<Mutex<BusyMemory>>,
    /// With `--idle-by=work`, the work seen of each running server (`crate::ledger`).
    ledger: Arc<Mutex<WorkLedger>>,
    /// The warnings given (`state_file`, else in memory on first use).
    state: OnceLock<Arc<StateDb>>,
    webhook: Option<Arc<WebhookClient>>,
    /// How long the warn_hook may take for one warning: as long as a request may.
    hook_timeout: Duration,
    url: String,
    /// Set once a page is served: what passes publish for it, and the keep-alives they honour.
    page: OnceLock<PageShare>,
    /// Set once metrics are served: each pass counts itself there when it ends.
    metrics: OnceLock<Arc<Metrics>>,
}

#[derive(Clone)]
pub(crate) struct PageShare {
    pub board: Arc<Board>,
    pub keep_alives: Option<Arc<KeepAlives>>,
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
        let retry = Retry { retries, backoff };
        let token = ApiToken::new(token);
        let probe_settings = ProbeSettings {
            timeout: seconds(py, "probe_timeout", probe_timeout)?,
            ca_file: ca_file.clone(),
            retry,
        };
        let settings = HubSettings {
            url: url.clone(),
            token,
            request_timeout: seconds(py, "request_timeout", request_timeout)?,
            // 0 meant "no semaphore" in the reference, where tornado's client still capped it at 10.
            concurrency: if concurrency == 0 {
                DEFAULT_CONCURRENCY
            } else {
                concurrency
            },
            tls: TlsFiles {
                ca_file,
                cert_file,
                key_file,
            },
            retry,
        };
        // Building the TLS client may log; never wait on it while attached (pyo3-log deadlock).
        let client = py
            .detach(|| HubClient::new(&settings))
            .map_err(|e| to_py(py, &e.into()))?;
        let webhook = match warn_webhook {
            Some(hook_url) => Some(Arc::new(
                py.detach(|| {
                    WebhookClient::new(&hook_url, settings.request_timeout, retry, client.limiter())
                })
                .map_err(|e| to_py(py, &e.into()))?,
            )),
            None => None,
        };
        let hook_timeout = settings.request_timeout;
        let state = OnceLock::new();
        if let Some(path) = state_file {
            // A dry run reads the file at most: a real culler may start on it meanwhile.
            let db = py
                .detach(|| {
                    if state_read_only {
                        StateDb::open_snapshot(&path)
                    } else {
                        StateDb::open(&path)
                    }
                })
                .map_err(|e| to_py(py, &e.into()))?;
            let _ = state.set(Arc::new(db));
        }
        Ok(Connection {
            client: Arc::new(client),
            settings,
            prober: OnceLock::new(),
            probe_settings,
            probe_tokens: Arc::default(),
            memory: Arc::default(),
            ledger: Arc::default(),
            state,
            webhook,
            hook_timeout,
            url,
            page: OnceLock::new(),
            metrics: OnceLock::new(),
        })
    }

    /// Start one pass with `options` (checked when they were made) on the runtime; see
    /// [`Task`]. Must be called from a running asyncio loop when an arbiter is given (it is
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
        let options = &options.get().0;
        if let Some(reset) = LOG_RESET.get() {
            // Pick up logging configuration changed since the last pass.
            reset.reset();
        }
        let settings = options.settings(now, act_after);
        let hook = match arbiter {
            Some(func) => Some(PyArbiter {
                func,
                locals: pyo3_async_runtimes::tokio::get_current_locals(py)?,
            }),
            None => None,
        };
        let user_hook = match user_arbiter {
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
        let probe_tokens = Arc::clone(&self.probe_tokens);
        let warn_hook = match warn_hook {
            Some(func) => Some(PyWarnHook {
                func,
                locals: pyo3_async_runtimes::tokio::get_current_locals(py)?,
            }),
            None => None,
        };
        let ledger = Arc::clone(&self.ledger);
        let state = if settings.warns() || settings.work.by_work {
            Some(self.state(py)?)
        } else {
            None
        };
        let webhook = self.webhook.clone();
        let hook_timeout = self.hook_timeout;
        let page = self.page.get().cloned();
        let metrics = self.metrics.get().cloned();
        Task::spawn(async move {
            let warnings = state
                .as_ref()
                .filter(|_| settings.warns())
                .map(|state| Warnings {
                    state: state.as_ref(),
                    hook: warn_hook.as_ref().map(|h| h as &dyn WarnHook),
                    webhook: webhook.as_deref(),
                    hook_timeout,
                });
            let probes = probe_client.as_ref().map(|probe_client| Probes {
                client: probe_client.as_ref(),
                tokens: &probe_tokens,
                memory: &memory,
                ledger: &ledger,
                store: state.as_deref().filter(|_| settings.work.by_work),
            });
            let report = run_pass(
                client.as_ref(),
                &settings,
                Hooks {
                    server: hook.as_ref().map(|h| h as &dyn Arbiter),
                    user: user_hook.as_ref().map(|h| h as &dyn Arbiter),
                },
                probes.as_ref(),
                warnings.as_ref(),
                page.as_ref().map(|page| BoardFeed {
                    board: &page.board,
                    keep_alives: page.keep_alives.as_deref(),
                }),
            )
            .await;
            if let Some(metrics) = metrics {
                metrics.observe(Some(&report));
            }
            Ok(Output::Report(Box::new(report)))
        })
    }

    /// Start reading the token's scopes (`GET /user`); the task's result is a JSON list.
    fn start_token_scopes(&self) -> PyResult<Task> {
        let client = Arc::clone(&self.client);
        Task::spawn(async move {
            let scopes = client.token_scopes().await.map_err(CoreError::from)?;
            Ok(Output::Json(
                serde_json::to_string(&scopes).unwrap_or_default(),
            ))
        })
    }

    fn __repr__(&self) -> String {
        format!("Connection({:?})", self.url)
    }
}

impl Connection {
    /// Count this connection's passes in `metrics` from now on.
    pub(crate) fn count_passes_in(&self, metrics: &Arc<Metrics>) {
        let _ = self.metrics.set(Arc::clone(metrics));
    }

    /// What a page served for this connection shares with its passes; keep-alives are kept
    /// in the connection's state file when `max_keep_alive` is set.
    pub(crate) fn page_share(&self, py: Python<'_>, max_keep_alive: f64) -> PyResult<PageShare> {
        if let Some(page) = self.page.get() {
            return Ok(page.clone());
        }
        let keep_alives = if max_keep_alive > 0.0 {
            let state = self.state(py)?;
            let now = crate::timestamp::unix_now();
            let loaded = KeepAlives::load(state, max_keep_alive, now).map_err(|e| {
                config_error(
                    py,
                    format!("cannot read keep-alives from the state file: {e}"),
                )
            })?;
            Some(Arc::new(loaded))
        } else {
            None
        };
        let page = PageShare {
            board: Arc::default(),
            keep_alives,
        };
        Ok(self.page.get_or_init(|| page).clone())
    }

    /// A client of the page's own for the Hub: a few requests in flight, no retries, and
    /// failures counted apart from the passes', so that visitors (or a flood of made-up
    /// tokens) never queue in front of a pass nor show in its errors.
    pub(crate) fn page_client(&self, py: Python<'_>) -> PyResult<Arc<HubClient>> {
        let settings = HubSettings {
            concurrency: crate::auth::PAGE_HUB_BUDGET,
            retry: Retry {
                retries: 0,
                backoff: Duration::ZERO,
            },
            ..self.settings.clone()
        };
        let client = py
            .detach(|| HubClient::new(&settings))
            .map_err(|e| to_py(py, &e.into()))?;
        Ok(Arc::new(client))
    }

    fn state(&self, py: Python<'_>) -> PyResult<Arc<StateDb>> {
        if let Some(state) = self.state.get() {
            return Ok(Arc::clone(state));
        }
        let db = StateDb::open(":memory:").map_err(|e| to_py(py, &e.into()))?;
        Ok(Arc::clone(self.state.get_or_init(|| Arc::new(db))))
    }

    fn probe_client(&self, py: Python<'_>) -> PyResult<Arc<ProbeClient>> {
        if let Some(client) = self.prober.get() {
            return Ok(Arc::clone(client));
        }
        let client = py
            .detach(|| ProbeClient::new(&self.probe_settings))
            .map_err(|e| to_py(py, &e.into()))?;
        Ok(Arc::clone(self.prober.get_or_init(|| Arc::new(client))))
    }
}
