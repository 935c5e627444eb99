//! The process's exit codes.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything succeeded (0).
    Success,
    /// An agent or the run failed (1).
    Failed,
    /// Bad usage, an invalid workflow, or an unreadable file (2).
    Usage,
    /// The run paused on questions for a person, and no answer could be
    /// asked for (3).
    InputRequired,
    /// The run was cancelled by a signal: 128 + its number (Ctrl-C 130,
    /// SIGTERM 143, SIGHUP 129).
    Cancelled(crate::run::Stop),
}

impl Exit {
    /// The numeric code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failed => 1,
            Self::Usage => 2,
            Self::InputRequired => 3,
            Self::Cancelled(stop) => stop.exit_code(),
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}
