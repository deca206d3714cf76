//! The configuration errors of the identity layer.

use std::path::PathBuf;

/// A setting or file that cannot be used to build a verifier or a directory.
///
/// These only happen while the daemon starts: once built, a [`crate::TokenVerifier`] answers
/// with [`crate::TokenError`] and a [`crate::Directory`] never fails. Each message names the
/// setting or the file to fix, and is complete on its own (it carries no separate cause chain),
/// so the daemon can print it as-is and exit.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A setting is missing or has a value that cannot work; `problem` says why, e.g.
    /// `jwt.secret` + `is required for HS256`.
    #[error("{setting} {problem}")]
    InvalidSetting {
        /// The setting's name as configuration spells it, e.g. `jwt.secret`.
        setting: &'static str,
        /// What is wrong with it, written to follow the name.
        problem: String,
    },
    /// A profile file could not be read or parsed; `problem` says why.
    #[error("directory file {}: {problem}", path.display())]
    File {
        /// The file as it was given.
        path: PathBuf,
        /// What went wrong: the IO error, the JSON error, or the entry at fault.
        problem: String,
    },
}

impl IdentityError {
    #[cfg(any(feature = "jwt", feature = "platform"))]
    pub(crate) fn setting(setting: &'static str, problem: impl Into<String>) -> Self {
        Self::InvalidSetting { setting, problem: problem.into() }
    }

    pub(crate) fn file(path: &std::path::Path, problem: impl Into<String>) -> Self {
        Self::File { path: path.to_path_buf(), problem: problem.into() }
    }
}
