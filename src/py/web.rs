//! The web server as Python sees it: started by the lifecycle, fed each pass's report.

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;

use crate::metrics::Metrics;
use crate::web::app::{PageApp, PageSettings};
use crate::web::{normalise_prefix, router, WebServer as Server};

use super::errors::{config_error, to_py};
use super::Connection;

/// A runtime of the web server's own, with one thread, so that visitors (or a flood of them)
/// never wait in the same queue as a pass's work: the passes keep the core's runtime.
struct WebRuntime(Option<tokio::runtime::Runtime>);

impl Drop for WebRuntime {
    fn drop(&mut self) {
        // Without waiting: its thread may be logging, which needs the GIL this thread holds.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The web server's threads yield the CPU to the passes' when it is short (nice 19 on Linux):
/// a flood of visitors then slows the page, not the culling. Where a platform cannot, the
/// thread keeps its priority, and only that is lost.
fn lowest_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
    if let Ok(lowest) = ThreadPriorityValue::try_from(0u8) {
        let _ = set_current_thread_priority(ThreadPriority::Crossplatform(lowest));
    }
}

/// The page's settings, each typed and named: `PageSettings(service_name=…, …)`.
#[pyclass(frozen, name = "PageSettings", module = "cull_idle._core")]
pub struct PyPageSettings(PageSettings);

#[pymethods]
impl PyPageSettings {
    #[new]
    #[pyo3(signature = (*, service_name, auth_cache_seconds, client_id=String::new(), callback_url=String::new(), authorize_url=String::new(), access_scopes=Vec::new(), max_keep_alive=0.0, warn_before=0.0, html=true, admin_groups=Vec::new(), secure_cookies=false))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
    fn new(
        service_name: String,
        auth_cache_seconds: f64,
        client_id: String,
        callback_url: String,
        authorize_url: String,
        access_scopes: Vec<String>,
        max_keep_alive: f64,
        warn_before: f64,
        html: bool,
        admin_groups: Vec<String>,
        secure_cookies: bool,
    ) -> Self {
        PyPageSettings(PageSettings {
            service_name,
            client_id,
            callback_url,
            authorize_url,
            access_scopes,
            max_keep_alive,
            warn_before,
            html,
            admin_groups,
            auth_cache_seconds,
            secure_cookies,
        })
    }

    #[getter]
    fn html(&self) -> bool {
        self.0.html
    }

    #[getter]
    fn client_id(&self) -> &str {
        &self.0.client_id
    }

    #[getter]
    fn callback_url(&self) -> &str {
        &self.0.callback_url
    }
}

/// `/metrics` and `/health` under `prefix` on `host:port`, served by a runtime of its own; with
/// `page` (its settings) and the `hub` connection whose passes it shows, the page too.
#[pyclass(frozen, module = "cull_idle._core")]
pub struct WebServer {
    metrics: Arc<Metrics>,
    server: Mutex<Server>,
    /// After `server`, so that the server is shut down first.
    _runtime: WebRuntime,
    #[pyo3(get)]
    port: u16,
    /// Where the routes are, as served (one `/` at each end).
    #[pyo3(get)]
    prefix: String,
}

#[pymethods]
impl WebServer {
    /// Listen now; a port that cannot be had raises `OSError`.
    #[new]
    #[pyo3(signature = (host, port, prefix="/", *, hub=None, page=None))]
    fn new(
        py: Python<'_>,
        host: &str,
        port: u16,
        prefix: &str,
        hub: Option<PyRef<'_, Connection>>,
        page: Option<PyRef<'_, PyPageSettings>>,
    ) -> PyResult<Self> {
        let metrics = Arc::new(Metrics::new());
        let where_served = normalise_prefix(prefix);
        if let Some(hub) = &hub {
            hub.session.count_passes_in(&metrics);
        }
        let page = match (page, hub) {
            (Some(page), Some(hub)) => {
                let settings = page.0.clone();
                let session = Arc::clone(&hub.session);
                let state = session
                    .page_share(settings.max_keep_alive, crate::timestamp::unix_now())
                    .map_err(|e| to_py(py, &e))?;
                if let Some(kept) = &state.keep_alives {
                    metrics.watch_keep_alives(Arc::clone(kept));
                }
                Some(Arc::new(PageApp::new(
                    settings,
                    where_served.clone(),
                    Arc::new(
                        py.detach(|| session.page_client())
                            .map_err(|e| to_py(py, &e))?,
                    ),
                    state.board,
                    state.keep_alives,
                    Arc::clone(&metrics),
                )))
            }
            (Some(_), None) => return Err(config_error(py, "the page needs the Hub connection")),
            (None, _) => None,
        };
        let app = router(Arc::clone(&metrics), prefix, page);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cull-idle-web")
            .on_thread_start(lowest_priority)
            .enable_all()
            .build()?;
        let server = py.detach(|| Server::start(&runtime, host, port, app))?;
        Ok(WebServer {
            _runtime: WebRuntime(Some(runtime)),
            metrics,
            prefix: where_served,
            port: server.address.port(),
            server: Mutex::new(server),
        })
    }

    /// Count a pass that raised before it could report; the Hub connection counts the others.
    fn pass_raised(&self) {
        self.metrics.observe(None);
    }

    /// Stop accepting requests; those in progress finish.
    fn close(&self) {
        self.server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shut_down();
    }
}
