//! The web server as Python sees it: started by the lifecycle, fed each pass's report.

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;

use crate::metrics::{Metrics, PassCounts};
use crate::web::{normalise_prefix, router, WebServer as Server};

use super::errors::config_error;

/// `/metrics` and `/health` under `prefix` on `host:port`, served by the core's runtime.
#[pyclass(frozen, module = "cull_idle._core")]
pub struct WebServer {
    metrics: Arc<Metrics>,
    server: Mutex<Server>,
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
    #[pyo3(signature = (host, port, prefix="/"))]
    fn new(py: Python<'_>, host: &str, port: u16, prefix: &str) -> PyResult<Self> {
        let metrics = Arc::new(Metrics::new());
        let app = router(Arc::clone(&metrics), prefix);
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        let server = py.detach(|| Server::start(runtime, host, port, app))?;
        Ok(WebServer {
            metrics,
            prefix: normalise_prefix(prefix),
            port: server.address.port(),
            server: Mutex::new(server),
        })
    }

    /// Count one pass from its report's JSON; `None` for a pass that raised.
    #[pyo3(signature = (report_json))]
    fn observe(&self, py: Python<'_>, report_json: Option<&str>) -> PyResult<()> {
        let counts = report_json
            .map(serde_json::from_str::<PassCounts>)
            .transpose()
            .map_err(|e| config_error(py, format!("not a pass report: {e}")))?;
        self.metrics.observe(counts.as_ref());
        Ok(())
    }

    /// Stop accepting requests; those in progress finish.
    fn close(&self) {
        self.server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shut_down();
    }
}
