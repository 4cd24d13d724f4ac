//! The crate's one error type. Every fallible public function returns [`Result`]; user input never panics.

use std::fmt;

/// Everything that can go wrong in wgrnn, grouped by who has to act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU adapter (or none matching `WGPU_BACKEND` / `WGPU_ADAPTER_NAME`).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The configuration itself is invalid (zero sizes, unknown mode, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A tensor has the wrong shape, dtype or content.
    #[error("{name}: {problem}")]
    Shape {
        /// The tensor's name as the user knows it (`input`, `h0`, `weight_hh_l1_reverse`, ...).
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A tensor is larger than the adapter can bind.
    #[error("{name}: {bytes} bytes exceeds the adapter's {limit_name} of {limit} bytes")]
    Limit {
        /// The tensor's name.
        name: String,
        /// Its size in bytes.
        bytes: u64,
        /// The wgpu limit's name.
        limit_name: &'static str,
        /// The limit's value.
        limit: u64,
    },
    /// wgpu reported a validation or internal error.
    #[error("device error: {0}")]
    Device(String),
    /// The device ran out of memory.
    #[error("device out of memory: {0}")]
    OutOfMemory(String),
    /// Training produced a non-finite loss; nothing was saved over the last good checkpoint.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's content is malformed.
    #[error("{path}: {problem}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl Error {
    /// A shape/content error for tensor `name`.
    pub fn shape(name: impl Into<String>, problem: impl fmt::Display) -> Self {
        Error::Shape {
            name: name.into(),
            problem: problem.to_string(),
        }
    }

    /// A configuration error.
    pub fn config(problem: impl fmt::Display) -> Self {
        Error::Config(problem.to_string())
    }

    /// True for errors caused by the caller's input (shapes, configuration, files, sizes beyond
    /// the adapter's limits), as opposed to the machine (adapter, device, memory). The CLI maps
    /// the former to exit status 2.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::Config(_)
                | Error::Shape { .. }
                | Error::Format { .. }
                | Error::Io { .. }
                | Error::Limit { .. }
        )
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Checks that `got` equals `expected`, naming the tensor otherwise.
pub(crate) fn check_shape(name: &str, got: &[usize], expected: &[usize]) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::shape(
            name,
            format!("expected shape {expected:?}, got {got:?}"),
        ))
    }
}
