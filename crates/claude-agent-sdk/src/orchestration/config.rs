//! [`ExecutionConfig`]: the knobs of a run — time limits, retries, concurrency,
//! logging and trace records.
//!
//! The config belongs to an orchestrator ([`with_config`](super::SequentialOrchestrator::with_config))
//! and governs every run it makes, including runs under a caller-owned
//! [`ExecutionContext`](super::ExecutionContext). Mistakes (a zero timeout, a
//! fan-out's zero parallel limit) are reported as
//! [`OrchestrationError::InvalidConfig`] when a run starts, before any agent runs.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::executor::retry::{Backoff, ExponentialRetry, RetryPolicy};
use crate::orchestration::join_policy::JoinPolicy;

/// Configuration of an orchestration run.
///
/// ```
/// use claude_agent_sdk::orchestration::context::ExecutionConfig;
/// use std::time::Duration;
///
/// let config = ExecutionConfig::new()
///     .with_timeout(Duration::from_secs(120))   // Max 2 minutes
///     .with_max_retries(5)                      // 5 retries per agent
///     .with_parallel_limit(20)                  // Max 20 parallel agents
///     .with_logging(true)                       // Enable logging
///     .with_tracing(true)                       // Enable tracing
///     .with_agent_timeout(Duration::from_secs(30))
///     .with_backoff(Duration::from_millis(50), Duration::from_secs(2));
/// assert_eq!(config.max_retries, 5);
/// assert_eq!(config.agent_timeout, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ExecutionConfig {
    /// Bound on a whole run (default 300 s). A run that exceeds it fails with
    /// [`OrchestrationError::Timeout`].
    pub timeout: Duration,
    /// Retries per agent after its first attempt (default 3): at most
    /// `max_retries + 1` attempts, and only for retryable errors.
    pub max_retries: usize,
    /// Most agents a parallel run executes at once (default 10). A
    /// [`ParallelOrchestrator`](super::ParallelOrchestrator) refuses 0; a
    /// graph runs at least one step at a time; a pipeline, one anyway.
    pub parallel_limit: usize,
    /// Emit `tracing` events for runs, retries, timeouts and failures (default true).
    pub enable_logging: bool,
    /// Keep an [`AgentExecution`](super::AgentExecution) record per attempt
    /// (default true; a durable journal keeps them whatever this says).
    pub enable_tracing: bool,
    /// Bound on each single attempt of an agent (default none). An attempt that
    /// exceeds it is cancelled and counts as a retryable timeout.
    pub agent_timeout: Option<Duration>,
    /// The delay schedule between attempts.
    pub backoff: Backoff,
    /// When a parallel run succeeds although some agents failed.
    pub join_policy: JoinPolicy,
    /// The most bytes of each input and output text a trace record keeps
    /// (default none: records keep whole texts). Longer texts are cut, and
    /// the record says how many bytes were elided. The texts are the
    /// records' contents, the strings of an output's `data` (where an
    /// [`OrchestratorAgent`](super::OrchestratorAgent) reports its nested
    /// outputs) and those of the gathered `results` a join or a map hands on
    /// in its input's metadata (which stay a JSON array, their strings cut).
    /// The records of a run nested in a step are cut to the tighter of its
    /// own limit and that of the run around it, whose trace holds them.
    ///
    /// What a run keeps in memory: each agent's output once in
    /// [`OrchestratorOutput::agent_outputs`](super::OrchestratorOutput::agent_outputs)
    /// (as the specification's type requires), and — with trace records on —
    /// each attempt's output once in the journal, plus, in the trace a run
    /// returns, each attempt's input and output. For a run of
    /// [`orchestrate`](super::Orchestrator::orchestrate) this limit bounds
    /// the last two, so a run with big payloads keeps a small trace. A
    /// journal a run can be [resumed](mod@super::resume) from — the
    /// journal of a caller's [`ExecutionContext`](super::ExecutionContext),
    /// in memory ([`InMemoryJournal`](super::InMemoryJournal)) or durable
    /// (`SqliteJournal`, `PostgresJournal`) — stores texts whole whatever
    /// this says, since a resumed run reuses them; the traces read from it
    /// are cut to this limit (the orchestrator's for the trace its run
    /// returns, the context's for
    /// [`get_trace`](super::ExecutionContext::get_trace) and
    /// [`run_trace`](super::ExecutionContext::run_trace)).
    pub record_text_limit: Option<usize>,
    /// Decides which failed attempts are retried and when (default: an
    /// [`ExponentialRetry`] on [`backoff`](Self::backoff)). Not serialized.
    #[serde(skip)]
    pub retry_policy: Option<Arc<dyn RetryPolicy>>,
}

impl PartialEq for ExecutionConfig {
    fn eq(&self, other: &Self) -> bool {
        let same_policy = match (&self.retry_policy, &other.retry_policy) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.timeout == other.timeout
            && self.max_retries == other.max_retries
            && self.parallel_limit == other.parallel_limit
            && self.enable_logging == other.enable_logging
            && self.enable_tracing == other.enable_tracing
            && self.agent_timeout == other.agent_timeout
            && self.backoff == other.backoff
            && self.join_policy == other.join_policy
            && self.record_text_limit == other.record_text_limit
            && same_policy
    }
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            max_retries: 3,
            parallel_limit: 10,
            enable_logging: true,
            enable_tracing: true,
            agent_timeout: None,
            backoff: Backoff::default(),
            join_policy: JoinPolicy::All,
            record_text_limit: None,
            retry_policy: None,
        }
    }
}

impl ExecutionConfig {
    /// The default configuration (see the field docs for each value).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Bounds the whole run.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retries per agent after its first attempt.
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: usize) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets how many agents a parallel run executes at once.
    #[must_use]
    pub fn with_parallel_limit(mut self, parallel_limit: usize) -> Self {
        self.parallel_limit = parallel_limit;
        self
    }

    /// Turns `tracing` events on or off.
    #[must_use]
    pub fn with_logging(mut self, enable: bool) -> Self {
        self.enable_logging = enable;
        self
    }

    /// Turns per-attempt trace records on or off.
    #[must_use]
    pub fn with_tracing(mut self, enable: bool) -> Self {
        self.enable_tracing = enable;
        self
    }

    /// Bounds each single attempt of an agent.
    #[must_use]
    pub fn with_agent_timeout(mut self, timeout: Duration) -> Self {
        self.agent_timeout = Some(timeout);
        self
    }

    /// Sets the backoff between attempts: `initial`, doubling up to `max`.
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff {
            initial,
            max,
            ..self.backoff
        };
        self
    }

    /// Sets the whole backoff schedule, jitter included.
    #[must_use]
    pub fn with_backoff_schedule(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets when a parallel run succeeds although some agents failed.
    #[must_use]
    pub fn with_join_policy(mut self, policy: JoinPolicy) -> Self {
        self.join_policy = policy;
        self
    }

    /// Caps how many bytes of each input and output text trace records keep
    /// (see [`record_text_limit`](Self::record_text_limit)).
    #[must_use]
    pub fn with_record_text_limit(mut self, bytes: usize) -> Self {
        self.record_text_limit = Some(bytes);
        self
    }

    /// Replaces the retry policy (see [`RetryPolicy`]).
    #[must_use]
    pub fn with_retry_policy(mut self, policy: Arc<dyn RetryPolicy>) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// The retry policy runs use: the one set, or an [`ExponentialRetry`] on
    /// [`backoff`](Self::backoff).
    #[must_use]
    pub fn retry_policy(&self) -> Arc<dyn RetryPolicy> {
        match &self.retry_policy {
            Some(policy) => Arc::clone(policy),
            None => Arc::new(ExponentialRetry::new(self.backoff)),
        }
    }

    /// Checks the settings every pattern relies on.
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`] for a zero run or agent timeout, or an
    /// inconsistent backoff.
    pub fn validate(&self) -> Result<()> {
        if self.timeout.is_zero() {
            return Err(OrchestrationError::InvalidConfig(
                "timeout must be greater than zero".into(),
            ));
        }
        if self.agent_timeout.is_some_and(|t| t.is_zero()) {
            return Err(OrchestrationError::InvalidConfig(
                "agent timeout must be greater than zero".into(),
            ));
        }
        self.backoff.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_specification() {
        let config = ExecutionConfig::new();
        assert_eq!(config.timeout, Duration::from_secs(300));
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.parallel_limit, 10);
        assert!(config.enable_logging);
        assert!(config.enable_tracing);
        assert_eq!(config.agent_timeout, None);
        assert_eq!(config, ExecutionConfig::default());
    }

    #[test]
    fn zero_timeouts_are_invalid() {
        let zero_run = ExecutionConfig::new().with_timeout(Duration::ZERO);
        assert!(matches!(
            zero_run.validate(),
            Err(OrchestrationError::InvalidConfig(_))
        ));
        let zero_attempt = ExecutionConfig::new().with_agent_timeout(Duration::ZERO);
        assert!(matches!(
            zero_attempt.validate(),
            Err(OrchestrationError::InvalidConfig(_))
        ));
        assert!(ExecutionConfig::new().validate().is_ok());
    }

    #[test]
    fn config_round_trips_and_fills_missing_fields() {
        let config = ExecutionConfig::new()
            .with_max_retries(7)
            .with_join_policy(JoinPolicy::Any);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<ExecutionConfig>(&json).unwrap(),
            config
        );
        let partial: ExecutionConfig = serde_json::from_str(r#"{"max_retries": 1}"#).unwrap();
        assert_eq!(partial.max_retries, 1);
        assert_eq!(partial.parallel_limit, 10);
    }
}
