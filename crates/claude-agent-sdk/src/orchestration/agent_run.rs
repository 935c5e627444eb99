//! One agent's whole run: attempts, retries with backoff, and the run's deadline
//! and cancellation — the machinery every pattern and the registry share.
//!
//! The pieces compose like tower layers: [`run_attempt`] is one call (panic
//! containment, attempt timeout, trace record); [`with_retries`] repeats it for
//! retryable errors only, on [`backon`]'s exponential schedule; [`run_agent`]
//! races that against the run's cancellation and deadline, so a backoff sleep is
//! as interruptible as an agent.
//!
//! The common case — an agent that succeeds at its first attempt — costs no
//! retry schedule, no timer and no cancellation waiter: the schedule is built
//! at the first retryable failure, and the watchers are only polled once the
//! agent has had to wait.

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
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
    run_agent_lapped(agent, input, ctx, policy, &mut None).await
}

/// [`run_agent`] for a caller that runs agents back to back, with nothing to
/// wait for in between (a pipeline): one clock read serves as the end of one
/// agent's last attempt and the start of the next agent (its deadline check and
/// its first attempt's record), so a step costs one clock read instead of three.
///
/// `lap` holds the instant the caller last read, if it is still "now" to within
/// the caller's bookkeeping; it is left holding the end of the agent's last
/// attempt when that attempt was timed, `None` otherwise.
pub(crate) async fn run_agent_lapped(
    agent: &dyn Agent,
    input: &Arc<AgentInput>,
    ctx: &ExecutionContext,
    policy: &AgentPolicy,
    lap: &mut Option<Instant>,
) -> std::result::Result<AgentOutput, RunError> {
    if ctx.is_cancelled() {
        *lap = None;
        return Err(RunError::Interrupted(Interruption::Cancelled));
    }
    let now = lap.take().unwrap_or_else(Instant::now);
    if policy.deadline.is_some_and(|deadline| now >= deadline) {
        return Err(RunError::Interrupted(Interruption::DeadlineExceeded));
    }
    *lap = Some(now);
    // The watchers are lazy: with `biased`, an agent that is ready at once never
    // pays for registering a timer or a cancellation waiter.
    let cancelled = async { ctx.cancelled().await };
    let deadline = async {
        match policy.deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        biased;
        result = with_retries(agent, input, ctx, policy, lap) => result.map_err(RunError::Failed),
        () = cancelled => Err(RunError::Interrupted(Interruption::Cancelled)),
        () = deadline => Err(RunError::Interrupted(Interruption::DeadlineExceeded)),
    };
    if result.is_err() {
        *lap = None;
    }
    result
}

/// Attempts `agent` until success, a non-retryable error, or no retries left.
///
/// The loop `backon::Retryable` would run, written out so that the first attempt
/// builds nothing: the delays are backon's exponential schedule for
/// `max_retries`, each spread by the jitter and floored by a retry-after hint.
async fn with_retries(
    agent: &dyn Agent,
    input: &Arc<AgentInput>,
    ctx: &ExecutionContext,
    policy: &AgentPolicy,
    lap: &mut Option<Instant>,
) -> Result<AgentOutput> {
    let mut attempt = 1_u32;
    let mut schedule = None;
    loop {
        let error = match run_attempt(agent, input, ctx, policy, attempt, lap).await {
            Ok(output) => return Ok(output),
            Err(error) => error,
        };
        // Whatever follows (a backoff sleep, or the caller's next agent after a
        // failure) must read the clock afresh.
        *lap = None;
        if !error.is_retryable() {
            return Err(error);
        }
        let nominal = schedule
            .get_or_insert_with(|| policy.backoff.builder(policy.max_retries).build())
            .next();
        let Some(delay) = nominal.map(|nominal| policy.backoff.shape(nominal, &error)) else {
            return Err(error);
        };
        attempt = attempt.saturating_add(1);
        ctx.emit(|| RunEvent::RetryScheduled {
            agent: agent.name(),
            next_attempt: attempt,
            delay,
            error: &error,
        });
        log_event!(
            policy.log,
            info,
            agent = agent.name(),
            ?delay,
            %error,
            "retrying agent after a retryable failure"
        );
        tokio::time::sleep(delay).await;
    }
}
