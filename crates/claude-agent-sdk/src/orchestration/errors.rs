//! Errors of orchestration runs, and which of them are worth retrying.
//!
//! Every fallible call in this module returns [`Result<T>`], whose error is
//! [`OrchestrationError`]. The error decides on its own whether a retry may help
//! ([`OrchestrationError::is_retryable`]) and, for rate limits, how long to wait
//! before trying again ([`OrchestrationError::retry_after`]). The retry machinery
//! reads nothing else: an agent steers retries purely through the error it returns.
//!
//! ```
//! use claude_agent_sdk::orchestration::errors::OrchestrationError;
//! use std::time::Duration;
//!
//! // A permanent failure: retrying cannot help.
//! let bad_request = OrchestrationError::AgentError("malformed prompt".into());
//! assert!(!bad_request.is_retryable());
//!
//! // A rate limit: retry, but not before the server says so.
//! let limited = OrchestrationError::transient("429 Too Many Requests")
//!     .with_retry_after(Duration::from_secs(2));
//! assert!(limited.is_retryable());
//! assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
//! ```

use std::time::Duration;

use crate::orchestration::agent::AgentError;
use crate::orchestration::registry::RegistryError;

/// The result type of every orchestration operation.
pub type Result<T, E = OrchestrationError> = std::result::Result<T, E>;

/// Why an orchestration, or one agent in it, did not succeed.
///
/// The variants follow the specification; [`Transient`](Self::Transient) and
/// [`Registry`](Self::Registry) are additions for rate limits and registry calls.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum OrchestrationError {
    /// An agent failed: `(agent name, reason)`. Retryable.
    #[error("agent `{0}` failed: {1}")]
    AgentFailed(String, String),

    /// A permanent failure reported by an agent. Not retryable.
    #[error("agent error: {0}")]
    AgentError(AgentError),

    /// The orchestrator itself failed. Not retryable.
    #[error("orchestrator failed: {0}")]
    OrchestratorFailed(String),

    /// An operation ran out of time. Retryable.
    #[error("timed out: {0}")]
    Timeout(String),

    /// The run was configured in a way that cannot work. Not retryable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The run was cancelled through its [`ExecutionContext`](super::ExecutionContext).
    /// Not retryable.
    #[error("execution cancelled")]
    Cancelled,

    /// Some agents of a parallel run failed: the number that failed. Not retryable.
    #[error("{0} agent(s) failed")]
    PartialSuccess(usize),

    /// A transient failure (rate limit, overload, dropped connection) that a
    /// retry may cure, optionally with the delay the server asked for. Retryable.
    #[error("transient failure: {message}")]
    Transient {
        /// What went wrong, in the back end's own words where it gave any.
        message: String,
        /// The least time to wait before the next attempt (a `retry-after` hint).
        retry_after: Option<Duration>,
    },

    /// A registry call failed. Not retryable.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl OrchestrationError {
    /// Builds a retryable [`Transient`](Self::Transient) error without a delay hint.
    #[must_use]
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    /// Attaches a retry-after hint; only [`Transient`](Self::Transient) errors carry one,
    /// other variants are returned unchanged.
    #[must_use]
    pub fn with_retry_after(self, delay: Duration) -> Self {
        match self {
            Self::Transient { message, .. } => Self::Transient {
                message,
                retry_after: Some(delay),
            },
            other => other,
        }
    }

    /// Whether another attempt may succeed where this one failed.
    ///
    /// `AgentFailed`, `Timeout` and `Transient` are retryable; every other variant
    /// describes a failure that repeats itself and is not.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::AgentFailed(..) | Self::Timeout(_) | Self::Transient { .. }
        )
    }

    /// The least time to wait before retrying, when the failure carried a hint.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<AgentError> for OrchestrationError {
    fn from(error: AgentError) -> Self {
        Self::AgentError(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_specification_table() {
        let retryable = [
            OrchestrationError::AgentFailed("a".into(), "b".into()),
            OrchestrationError::Timeout("t".into()),
            OrchestrationError::transient("429"),
        ];
        let permanent = [
            OrchestrationError::AgentError(AgentError::new("x")),
            OrchestrationError::OrchestratorFailed("x".into()),
            OrchestrationError::InvalidConfig("x".into()),
            OrchestrationError::Cancelled,
            OrchestrationError::PartialSuccess(2),
            OrchestrationError::Registry(RegistryError::AgentNotFound("x".into())),
        ];
        assert!(retryable.iter().all(OrchestrationError::is_retryable));
        assert!(!permanent.iter().any(OrchestrationError::is_retryable));
    }

    #[test]
    fn retry_after_only_sticks_to_transient_errors() {
        let hinted =
            OrchestrationError::transient("slow down").with_retry_after(Duration::from_secs(3));
        assert_eq!(hinted.retry_after(), Some(Duration::from_secs(3)));
        let other = OrchestrationError::Cancelled.with_retry_after(Duration::from_secs(3));
        assert_eq!(other, OrchestrationError::Cancelled);
        assert_eq!(other.retry_after(), None);
    }

    #[test]
    fn agent_error_converts_with_question_mark() {
        fn fails() -> Result<()> {
            Err(AgentError::new("domain rule broken"))?;
            Ok(())
        }
        assert_eq!(
            fails(),
            Err(OrchestrationError::AgentError(AgentError::new(
                "domain rule broken"
            )))
        );
    }
}
