//! cull-idle's core: pure Rust modules (no pyo3), tested with `cargo test`, under a thin
//! binding in [`py`].
//!
//! - [`policy`] and [`work`] are the pure decision rules; [`options`] checks a pass's options.
//! - [`pass`] runs a pass in phases against any [`hub::HubApi`].
//! - [`http`] is the HTTP plumbing that [`hub`] (the Hub's REST API) and [`probe`]
//!   (single-user servers) share.
//! - [`web`] serves [`metrics`], the health check, and the page (with Hub OAuth, [`auth`])
//!   that shows [`board`] and sets [`keepalive`]s, with axum.

pub mod auth;
pub mod board;
pub mod errors;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod hub;
pub mod keepalive;
pub mod ledger;
pub mod listing;
pub mod logline;
pub mod metrics;
pub mod models;
pub mod options;
pub mod pass;
pub mod policy;
pub mod probe;
pub mod probe_tokens;
mod py;
pub mod reasons;
pub mod scopes;
pub mod session;
pub mod setup;
pub mod signals;
pub mod state;
pub mod stretch;
pub mod timestamp;
pub mod tls;
pub mod warnings;
pub mod web;
pub mod work;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
mod _core {
    #[pymodule_export]
    use super::py::docs::{reasons, scopes, signals, Reason, Scope, Signal};
    #[pymodule_export]
    use super::py::options::PyPassOptions;
    #[pymodule_export]
    use super::py::report::{PyAction, PyCullReport, PyCullWarning, PySkip};
    #[pymodule_export]
    use super::py::task::{Task, TokenScopes};
    #[pymodule_export]
    use super::py::web::{PyPageSettings, WebServer};
    #[pymodule_export]
    use super::py::Connection;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("DEFAULT_CONCURRENCY", super::hub::DEFAULT_CONCURRENCY)?;
        let logger = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::LoggersAndLevels)?
            .filter(log::LevelFilter::Warn)
            .filter_target("cull_idle".to_owned(), log::LevelFilter::Trace);
        let reset = logger.reset_handle();
        // As `Logger::install` does, with each message escaped on its way to Python.
        if log::set_boxed_logger(Box::new(super::logline::Escaping(logger))).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
            let _ = super::py::LOG_RESET.set(reset);
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
