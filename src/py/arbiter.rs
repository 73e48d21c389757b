//! The `cull_arbiter` and `warn_hook` hooks: Python coroutine functions awaited on the
//! caller's event loop.

use std::future::Future;
use std::pin::Pin;

use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;

use crate::pass::Arbiter;
use crate::warnings::delivery::{WarnHook, Warning};

use super::report::PyCullWarning;

/// An operator's hook: a Python coroutine function, awaited on the event loop that started the
/// pass, that already handles sync/async hooks and their exceptions. As an [`Arbiter`] it is
/// called `(inactive, inactive_limit, server_json, user_json)`; as a [`WarnHook`],
/// `(warning, user_json, server_json)`, `warning` a `CullWarning`, and answers whether it
/// worked.
pub struct PyHook {
    pub func: Py<PyAny>,
    pub locals: TaskLocals,
}

impl Arbiter for PyHook {
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

impl WarnHook for PyHook {
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
