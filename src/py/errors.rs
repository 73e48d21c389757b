//! The one place where core errors become Python exceptions, of the classes that
//! `cull_idle._errors` declares.

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::errors::CoreError;
use crate::http::ErrorKind;
use crate::options::OptionsError;
use crate::scopes::{self, Need};
use crate::setup::SetupError;

/// A settings error raised before any request (`ConfigError`).
pub fn config_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_py(py, &CoreError::Options(OptionsError(message.into())))
}

pub fn to_py(py: Python<'_>, error: &CoreError) -> PyErr {
    let (class, message) = match error {
        CoreError::Options(e) => ("ConfigError", e.to_string()),
        // A state file that cannot be used is a setting to fix, not a reason to start afresh.
        CoreError::State(_) | CoreError::KeepAlives(_) => ("ConfigError", error.to_string()),
        CoreError::Setup(e @ SetupError::Config(_)) => ("ConfigError", e.to_string()),
        CoreError::Setup(e @ SetupError::File { path, errno, .. }) => {
            return PyOSError::new_err((*errno, e.to_string(), path.display().to_string()));
        }
        CoreError::Http(e) => match e.kind() {
            ErrorKind::Status if matches!(e.http_status(), Some(401 | 403)) => (
                "HubAuthError",
                format!(
                    "{e}; the Hub refused the culler's token: check JUPYTERHUB_API_TOKEN, and that its role \
                     has the scopes {}",
                    scopes::listed(Need::Always)
                ),
            ),
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Transport => {
                ("HubUnreachable", e.to_string())
            }
            ErrorKind::Status | ErrorKind::Decode => ("HubError", e.to_string()),
        },
    };
    match error_class(py, class) {
        Ok(class) => PyErr::from_type(class, message),
        Err(e) => e,
    }
}

fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let class = py.import("cull_idle._errors")?.getattr(name)?;
    class
        .cast_into::<PyType>()
        .map_err(|_| PyRuntimeError::new_err(format!("cull_idle._errors.{name} is not a class")))
}
