//! Work (a pass, a scope check) running on the runtime, with its result.

use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use tokio::task::AbortHandle;

use crate::pass::report::PassReport;

use crate::errors::CoreError;

use super::errors::to_py;
use super::report::PyCullReport;

/// What a task gives when it is done.
pub enum Output {
    /// The token's scopes, as the Hub reports them (`None` from Hubs that report none).
    Scopes(Option<Vec<String>>),
    /// A pass's report, made into Python objects when it is taken.
    Report(Box<PassReport>),
}

type Slot = Arc<Mutex<Option<Result<Output, CoreError>>>>;

/// Completion is signalled by one byte on a socket (watched by the asyncio loop with
/// `add_reader`), never by a runtime thread calling into Python: a thread still inside the
/// interpreter when `asyncio.run()` returns and Python finalizes crashes the process.
#[pyclass(frozen, module = "cull_idle._core")]
pub struct Task {
    reader: UnixStream,
    slot: Slot,
    abort: AbortHandle,
}

impl Task {
    pub fn spawn(
        work: impl Future<Output = Result<Output, CoreError>> + Send + 'static,
    ) -> PyResult<Task> {
        let (reader, writer) = UnixStream::pair()?;
        let slot: Slot = Arc::new(Mutex::new(None));
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

    /// The result (`TokenScopes`, or a pass's `CullReport`), or `None` while running or after a
    /// cancellation; a failure raises the matching `cull_idle` exception.
    fn result(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let taken = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match taken {
            Some(Ok(Output::Scopes(reported))) => {
                Ok(Some(Py::new(py, TokenScopes { reported })?.into_any()))
            }
            Some(Ok(Output::Report(report))) => Ok(Some(
                Py::new(py, PyCullReport::new(py, &report)?)?.into_any(),
            )),
            Some(Err(e)) => Err(to_py(py, &e)),
            None => Ok(None),
        }
    }
}

/// The token's scopes as the Hub reported them: `reported` is `None` from Hubs that report
/// none.
#[pyclass(frozen, get_all, module = "cull_idle._core")]
pub struct TokenScopes {
    reported: Option<Vec<String>>,
}

struct DoneSignal(UnixStream);

impl Drop for DoneSignal {
    fn drop(&mut self) {
        // A failed write can only mean the reader is gone, and then nobody is waiting.
        let _ = self.0.write_all(b"!");
    }
}
