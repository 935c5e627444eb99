//! One agent's whole run: attempts, retries with backoff, and the run's deadline
//! and cancellation — the machinery every pattern and the registry share.
//!
//! The pieces compose like tower layers: [`run_attempt`] is one call (panic
//! containment, attempt timeout, trace record); [`backon`] wraps it in retries
//! for retryable errors only; [`run_agent`] races that against the run's
//! cancellation and deadline, so a backoff sleep is as interruptible as an agent.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use tokio::time::Instant;

use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::attempt::run_attempt;
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::observer::RunEvent;
use crate::orchestration::retry::Backoff;
use crate::orchestration::telemetry::log_event;

/// The settings one agent runs under, fixed when a run starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentPolicy {
    pub(crate) max_retries: usize,
    pub(crate) agent_timeout: Option<Duration>,
    pub(crate) backoff: Backoff,
    /// Keep per-attempt trace records.
    pub(crate) record: bool,
    /// Emit `tracing` events.
    pub(crate) log: bool,
    /// When the whole run must be over, if it is bounded.
    pub(crate) deadline: Option<Instant>,
}

impl AgentPolicy {
    /// The policy of a run under `config` that starts now.
    pub(crate) fn for_run(config: &ExecutionConfig) -> Self {
        Self {
            max_retries: config.max_retries,
            agent_timeout: config.agent_timeout,
            backoff: config.backoff,
            record: config.enable_tracing,
            log: config.enable_logging,
            deadline: Instant::now().checked_add(config.timeout),
        }
    }

    /// The most attempts an agent gets.
    pub(crate) fn max_attempts(&self) -> u32 {
        u32::try_from(self.max_retries.saturating_add(1)).unwrap_or(u32::MAX)
    }

    pub(crate) fn deadline_passed(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// Why an agent's run ended without the agent itself having failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    Cancelled,
    DeadlineExceeded,
}

/// How an agent's run can end besides success.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RunError {
    /// The agent failed: its last error, after the retries it was allowed.
    Failed(OrchestrationError),
    /// The run was cancelled or ran out of time while the agent was running.
    Interrupted(Interruption),
}

/// Runs `agent` with retries until it succeeds, fails for good, or the run is
/// cancelled or out of time.
pub(crate) async fn run_agent(
    agent: &dyn Agent,
    input: &Arc<AgentInput>,
    ctx: &ExecutionContext,
    policy: &AgentPolicy,
) -> std::result::Result<AgentOutput, RunError> {
    if ctx.is_cancelled() {
        return Err(RunError::Interrupted(Interruption::Cancelled));
    }
    if policy.deadline_passed() {
        return Err(RunError::Interrupted(Interruption::DeadlineExceeded));
    }
    // The watchers are lazy: with `biased`, an agent that is ready at once never
    // pays for registering a timer or a cancellation waiter.
    let cancelled = async { ctx.cancelled().await };
    let deadline = async {
        match policy.deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        result = with_retries(agent, input, ctx, policy) => result.map_err(RunError::Failed),
        () = cancelled => Err(RunError::Interrupted(Interruption::Cancelled)),
        () = deadline => Err(RunError::Interrupted(Interruption::DeadlineExceeded)),
    }
}

/// Attempts `agent` until success, a non-retryable error, or no retries left.
async fn with_retries(
    agent: &dyn Agent,
    input: &Arc<AgentInput>,
    ctx: &ExecutionContext,
    policy: &AgentPolicy,
) -> Result<AgentOutput> {
    let attempts = AtomicU32::new(0);
    let next_attempt = || {
        let attempt = attempts.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        run_attempt(agent, input, ctx, policy, attempt)
    };
    next_attempt
        .retry(policy.backoff.builder(policy.max_retries))
        .sleep(tokio::time::sleep)
        .when(OrchestrationError::is_retryable)
        .adjust(|error, nominal| nominal.map(|delay| policy.backoff.shape(delay, error)))
        .notify(|error, delay| {
            ctx.emit(|| RunEvent::RetryScheduled {
                agent: agent.name(),
                next_attempt: attempts.load(Ordering::Relaxed).saturating_add(1),
                delay,
                error,
            });
            log_event!(
                policy.log,
                info,
                agent = agent.name(),
                ?delay,
                %error,
                "retrying agent after a retryable failure"
            );
        })
        .await
}
