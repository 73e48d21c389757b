//! The `cull_arbiter` and `warn_hook` hooks: Python coroutine functions awaited on the
//! caller's event loop.

use std::future::Future;
use std::pin::Pin;

use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;

use crate::pass::Arbiter;
use crate::warnings::delivery::{WarnHook, Warning};

use super::report::PyCullWarning;

/// An arbiter backed by a Python coroutine function `(inactive, inactive_limit, server_json,
/// user_json)` that already handles sync/async hooks and their exceptions.
pub struct PyArbiter {
    pub func: Py<PyAny>,
    pub locals: TaskLocals,
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
            let answer = truthy(&self.locals, |py| {
                self.func
                    .bind(py)
                    .call1((inactive, inactive_limit, server_json, user_json))
            })
            .await;
            answer.unwrap_or_else(|e| {
                log::error!(target: "cull_idle", "The cull_arbiter hook failed, not culling: {e}");
                false
            })
        })
    }
}

/// Await what `call` returns (a coroutine) on the caller's loop; whether its result is truthy.
async fn truthy(
    locals: &TaskLocals,
    call: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<bool> {
    let future =
        Python::attach(|py| pyo3_async_runtimes::into_future_with_locals(locals, call(py)?))?;
    let value = future.await?;
    Ok(Python::attach(|py| {
        value.bind(py).is_truthy().unwrap_or(false)
    }))
}

/// A warning hook backed by a Python coroutine function `(warning, user_json, server_json)`,
/// `warning` a `CullWarning`, that already handles sync/async hooks, and answers whether it worked.
pub struct PyWarnHook {
    pub func: Py<PyAny>,
    pub locals: TaskLocals,
}

impl WarnHook for PyWarnHook {
    fn warn<'a>(&'a self, warning: &'a Warning) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let answer = truthy(&self.locals, |py| {
                let given = Py::new(py, PyCullWarning::new(py, warning)?)?;
                self.func.bind(py).call1((
                    given,
                    warning.user_json.as_str(),
                    warning.server_json.as_deref(),
                ))
            })
            .await;
            answer.unwrap_or_else(|e| {
                log::error!(target: "cull_idle", "The warn_hook failed for {}: {e}", warning.subject());
                false
            })
        })
    }
}
