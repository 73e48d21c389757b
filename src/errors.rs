//! Why a call into the core failed: one enum over the modules' own errors, each carrying its
//! message. `py::errors` maps it to the Python exceptions, in one place.

use crate::http::HttpError;
use crate::options::OptionsError;
use crate::setup::SetupError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    State(#[from] StateError),
    /// The state file opened, but its keep-alives could not be read.
    #[error("cannot read keep-alives from the state file: {0}")]
    KeepAlives(#[source] rusqlite::Error),
}
