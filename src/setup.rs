//! Settings that cannot work, found before any request: a value or URL that cannot be used,
//! or a file the settings name that cannot be read. Requests fail with
//! [`crate::http::HttpError`] instead.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// A value that cannot work (a bad URL, an unusable certificate).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file the settings name cannot be read.
    #[error("cannot read the {what} {}: {message}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        /// The OS error number, if there is one.
        errno: Option<i32>,
        message: String,
    },
}

impl SetupError {
    pub fn config(detail: impl Into<String>) -> Self {
        SetupError::Config(detail.into())
    }
}

/// A file's bytes; an error names the file by `what` it is for.
pub fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|e| SetupError::File {
        what,
        path: path.to_owned(),
        errno: e.raw_os_error(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named_with_its_os_error() {
        let err = read_file("CA file", Path::new("/nope/ca.pem")).unwrap_err();
        let SetupError::File { errno, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*errno, Some(2));
        assert!(
            err.to_string()
                .starts_with("cannot read the CA file /nope/ca.pem: "),
            "{err}"
        );
        assert_eq!(
            SetupError::config("x").to_string(),
            "invalid configuration: x"
        );
    }
}
