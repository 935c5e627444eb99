//! Errors of orchestration runs, and which of them are worth retrying.
//!
//! Every fallible call in this module returns [`Result<T>`], whose error is
//! [`OrchestrationError`]. The error decides on its own whether a retry may help
//! ([`OrchestrationError::is_retryable`]) and, for rate limits, how long to wait
//! before trying again ([`OrchestrationError::retry_after`]). Only a retryable
//! error is ever retried — a [`RetryPolicy`](super::RetryPolicy) may retry less,
//! never more — so an agent steers retries through the error it returns.
//!
//! An agent that failed for good becomes [`OrchestrationError::AgentFailed`],
//! whose [`FailureReason`] keeps the error that caused it: a permanent cause
//! stays permanent however many runs it crosses, and its retry-after hint and
//! [`ErrorDetails`] (status code, request id) stay readable.
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

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::orchestration::agent::AgentError;
use crate::orchestration::budget::BudgetExceeded;
use crate::orchestration::human::Pause;
use crate::orchestration::registry::RegistryError;

mod details;

pub use details::ErrorDetails;

/// The result type of every orchestration operation.
pub type Result<T, E = OrchestrationError> = std::result::Result<T, E>;

/// Why an orchestration, or one agent in it, did not succeed.
///
/// The variants follow the specification; [`Transient`](Self::Transient) and
/// [`Registry`](Self::Registry) are additions for rate limits and registry calls.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OrchestrationError {
    /// An agent failed for good: `(agent name, reason)`. The reason keeps the
    /// error that caused the failure; the variant is retryable exactly when
    /// that cause is (and, without a cause, always — the specification's table).
    /// Built from text with `.into()`:
    /// `OrchestrationError::AgentFailed(name.into(), format!("gave up after {n}").into())`;
    /// a matched reason reads as text with `to_string()` or `message()`.
    #[error("agent `{0}` failed: {reason}", reason = .1.said_of(.0))]
    AgentFailed(String, FailureReason),

    /// A permanent failure reported by an agent. Not retryable. Built from
    /// text with `.into()`: `OrchestrationError::AgentError(format!("bad input {x}").into())`.
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
    #[non_exhaustive]
    Transient {
        /// What went wrong, in the back end's own words where it gave any.
        message: String,
        /// The least time to wait before the next attempt (a `retry-after` hint).
        retry_after: Option<Duration>,
        /// What the back end said about the failure, when it said anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<Box<ErrorDetails>>,
    },

    /// A registry call failed. Not retryable.
    #[error(transparent)]
    Registry(#[from] RegistryError),

    /// A run crossed one of its [`RunBudget`](super::RunBudget)s: it started
    /// nothing more, and the agents already running finished. Not retryable.
    #[error("budget exceeded: {0}")]
    BudgetExceeded(Box<BudgetExceeded>),

    /// An agent asked a person a question
    /// ([`ExecutionContext::ask`](super::ExecutionContext::ask)) the run has no
    /// answer to: the run paused. The [`Pause`] holds the questions and what
    /// a resumed run needs (see [`human`](super::human)). Not retryable.
    #[error("waiting for input: {0}")]
    InputRequired(Box<Pause>),

    /// The journal's store failed (a database that went away, a file that
    /// cannot be written or is corrupt). Retryable when the store can come
    /// back (a lost connection); a run it stopped can be
    /// [resumed](mod@super::resume) once it is back.
    #[error("journal store failed: {message}")]
    #[non_exhaustive]
    Store {
        /// What went wrong.
        message: String,
        /// Whether trying again later may work.
        retryable: bool,
    },
}

impl OrchestrationError {
    /// Builds a retryable [`Transient`](Self::Transient) error without a delay hint.
    #[must_use]
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after: None,
            details: None,
        }
    }

    /// A [`Store`](Self::Store) error.
    #[must_use]
    pub fn store(message: impl Into<String>, retryable: bool) -> Self {
        Self::Store {
            message: message.into(),
            retryable,
        }
    }

    /// Attaches a retry-after hint; only [`Transient`](Self::Transient) errors carry one,
    /// other variants are returned unchanged.
    #[must_use]
    pub fn with_retry_after(self, delay: Duration) -> Self {
        match self {
            Self::Transient {
                message, details, ..
            } => Self::Transient {
                message,
                retry_after: Some(delay),
                details,
            },
            other => other,
        }
    }

    /// Attaches what a back end said about the failure (status code, request
    /// id, its error code). [`Transient`](Self::Transient) and
    /// [`AgentError`](Self::AgentError) carry details; other variants are
    /// returned unchanged.
    #[must_use]
    pub fn with_details(self, details: ErrorDetails) -> Self {
        match self {
            Self::Transient {
                message,
                retry_after,
                ..
            } => Self::Transient {
                message,
                retry_after,
                details: Some(Box::new(details)),
            },
            Self::AgentError(error) => Self::AgentError(error.with_details(details)),
            other => other,
        }
    }

    /// Whether another attempt may succeed where this one failed.
    ///
    /// `Timeout` and `Transient` are retryable. `AgentFailed` is retryable when
    /// its cause is (see [`FailureReason::cause`]), and — having no cause, as
    /// when built by hand — always, as the specification's table says; unless
    /// the engine found that no retry can succeed (a fan-out whose agents that
    /// failed for good leave its join policy unsatisfiable: its message says
    /// so). Every other variant describes a failure that repeats itself.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::AgentFailed(_, reason) => {
                !reason.permanent && reason.cause().is_none_or(Self::is_retryable)
            }
            Self::Timeout(_) | Self::Transient { .. } => true,
            Self::Store { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The least time to wait before retrying, when the failure (or, for
    /// `AgentFailed`, its cause) carried a hint — and `None` for a failure
    /// no retry can mend (one that is not [`is_retryable`](Self::is_retryable)).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            Self::AgentFailed(_, reason) if reason.permanent => None,
            Self::AgentFailed(_, reason) => reason.cause().and_then(Self::retry_after),
            _ => None,
        }
    }

    /// What the back end said about the failure, read through any number of
    /// `AgentFailed` layers.
    #[must_use]
    pub fn details(&self) -> Option<&ErrorDetails> {
        match self {
            Self::Transient { details, .. } => details.as_deref(),
            Self::AgentError(error) => error.details(),
            Self::AgentFailed(_, reason) => reason.cause().and_then(Self::details),
            _ => None,
        }
    }

    /// The pause of the question this error is, or was caused by.
    pub(crate) fn pause_mut(&mut self) -> Option<&mut Pause> {
        let root = match self {
            Self::AgentFailed(_, reason) => reason.cause.as_deref_mut()?,
            other => other,
        };
        match root {
            Self::InputRequired(pause) => Some(pause),
            _ => None,
        }
    }

    /// The error at the bottom of any `AgentFailed` layers: what actually went
    /// wrong.
    #[must_use]
    pub fn root_cause(&self) -> &Self {
        match self {
            Self::AgentFailed(_, reason) => reason.cause().unwrap_or(self),
            other => other,
        }
    }

    /// The final failure of agent `agent` after `attempts` attempts ended in
    /// `last`. The cause is `last`'s own root cause, so that nesting never
    /// stacks causes: the chain is one level deep whatever the depth of runs.
    pub(crate) fn agent_failed(agent: &str, last: Self, attempts: u32) -> Self {
        let plural = if attempts == 1 { "" } else { "s" };
        // The count goes with the first line: a message that goes on with
        // lines of detail (a program's stderr) keeps them last. A failure
        // that says its own count already (a run nested in this agent's one
        // attempt) is not counted again: only a retried nested run is.
        let text = last.to_string();
        let counted = matches!(&last, Self::AgentFailed(_, reason) if reason.attempts.is_some());
        let message = match text.split_once('\n') {
            _ if counted && attempts == 1 => text,
            Some((first, rest)) => format!("{first} (after {attempts} attempt{plural})\n{rest}"),
            None => format!("{text} (after {attempts} attempt{plural})"),
        };
        let (cause, permanent) = match last {
            Self::AgentFailed(_, reason) => (reason.cause, reason.permanent),
            other => (Some(Box::new(other)), false),
        };
        Self::AgentFailed(
            agent.to_owned(),
            FailureReason {
                message,
                attempts: Some(attempts),
                cause,
                permanent,
            },
        )
    }

    /// This failure, made permanent whatever its cause says, because
    /// `why`: a run whose retry cannot succeed (a fan-out whose agents that
    /// failed for good leave its join policy unsatisfiable) is not retried
    /// around it. Only an `AgentFailed` carries the mark.
    pub(crate) fn made_permanent(self, why: &str) -> Self {
        match self {
            Self::AgentFailed(agent, mut reason) => {
                reason.permanent = true;
                reason.message = format!("{} ({why})", reason.message);
                Self::AgentFailed(agent, reason)
            }
            other => other,
        }
    }
}

impl From<AgentError> for OrchestrationError {
    fn from(error: AgentError) -> Self {
        Self::AgentError(error)
    }
}

/// Why an agent failed for good: a message that reads as text (it derefs to
/// `str`), how many attempts were made, and the error that caused it.
///
/// ```
/// use claude_agent_sdk::orchestration::{FailureReason, OrchestrationError};
///
/// // Built by hand, as the specification's samples do: a plain message.
/// let error = OrchestrationError::AgentFailed("Writer".into(), "boom".into());
/// if let OrchestrationError::AgentFailed(name, reason) = &error {
///     assert_eq!(name, "Writer");
///     assert!(reason.contains("boom"));
///     assert!(reason.cause().is_none());
/// }
/// assert!(error.is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureReason {
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<Box<OrchestrationError>>,
    /// Whether no retry can succeed, whatever the cause says (see
    /// [`OrchestrationError::is_retryable`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    permanent: bool,
}

impl FailureReason {
    /// A reason that is only a message (no cause, attempts unknown).
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            attempts: None,
            cause: None,
            permanent: false,
        }
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How many attempts the agent made, when the engine produced the failure.
    #[must_use]
    pub fn attempts(&self) -> Option<u32> {
        self.attempts
    }

    /// The error that caused the failure — never itself an `AgentFailed` with
    /// a cause — when the engine produced the failure.
    #[must_use]
    pub fn cause(&self) -> Option<&OrchestrationError> {
        self.cause.as_deref()
    }
}

impl Deref for FailureReason {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl AsRef<str> for FailureReason {
    fn as_ref(&self) -> &str {
        &self.message
    }
}

impl FailureReason {
    /// The message without what an `AgentFailed` around it already says of
    /// `agent`: a cause that names its agent (`agent `x`: …`, `agent `x`
    /// failed: …`, `agent error: agent `x`: …`) would otherwise read "agent
    /// `x` failed: agent error: agent `x`: …".
    #[must_use]
    pub fn said_of(&self, agent: &str) -> &str {
        let prefixes = [
            format!("agent error: agent `{agent}`: "),
            format!("agent `{agent}` failed: "),
            format!("agent `{agent}`: "),
        ];
        let mut text = self.message.as_str();
        while let Some(rest) = prefixes
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix.as_str()))
        {
            text = rest;
        }
        text
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for FailureReason {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for FailureReason {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl PartialEq<str> for FailureReason {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

impl PartialEq<&str> for FailureReason {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

impl PartialEq<String> for FailureReason {
    fn eq(&self, other: &String) -> bool {
        &self.message == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_made_permanent_gives_no_retry_hint() {
        let transient = OrchestrationError::Transient {
            message: "overloaded".into(),
            retry_after: Some(Duration::from_secs(1)),
            details: None,
        };
        let failed = OrchestrationError::agent_failed("a", transient, 1);
        assert_eq!(failed.retry_after(), Some(Duration::from_secs(1)));
        let permanent = failed.made_permanent("its join cannot be met");
        assert!(!permanent.is_retryable());
        assert_eq!(permanent.retry_after(), None);
    }

    #[test]
    fn a_failure_does_not_repeat_its_agents_name() {
        let inner = OrchestrationError::AgentError(AgentError::new("agent `x`: exit code 3"));
        let outer = OrchestrationError::AgentFailed("x".into(), inner.to_string().into());
        assert_eq!(outer.to_string(), "agent `x` failed: exit code 3");
        let twice = OrchestrationError::AgentFailed("x".into(), outer.to_string().into());
        assert_eq!(twice.to_string(), "agent `x` failed: exit code 3");
        // Another agent's name stays.
        let other = OrchestrationError::AgentFailed("y".into(), outer.to_string().into());
        assert_eq!(
            other.to_string(),
            "agent `y` failed: agent `x` failed: exit code 3"
        );
    }

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

    #[test]
    fn a_permanent_cause_stays_permanent_through_every_layer() {
        let details = ErrorDetails::new()
            .with_status(401)
            .with_request_id("req_1");
        let root = OrchestrationError::AgentError(AgentError::new("bad key")).with_details(details);
        let mut error = OrchestrationError::agent_failed("inner", root.clone(), 1);
        for level in 0..50 {
            error = OrchestrationError::agent_failed(&format!("outer{level}"), error, 1);
        }
        assert!(!error.is_retryable());
        assert_eq!(error.root_cause(), &root);
        assert_eq!(error.details().and_then(|d| d.status), Some(401));
        assert_eq!(
            error.details().and_then(|d| d.request_id.as_deref()),
            Some("req_1")
        );
        // One level of cause, whatever the depth: it deserializes.
        let json = serde_json::to_string(&error).unwrap();
        assert_eq!(
            serde_json::from_str::<OrchestrationError>(&json).unwrap(),
            error
        );
    }

    #[test]
    fn a_retryable_cause_keeps_its_hint_and_the_attempts_are_told() {
        let limited = OrchestrationError::transient("429").with_retry_after(Duration::from_secs(7));
        let failed = OrchestrationError::agent_failed("caller", limited, 4);
        assert!(failed.is_retryable());
        assert_eq!(failed.retry_after(), Some(Duration::from_secs(7)));
        let OrchestrationError::AgentFailed(_, reason) = &failed else {
            unreachable!()
        };
        assert_eq!(reason.attempts(), Some(4));
        assert!(reason.contains("after 4 attempts"), "{reason}");
    }
}
