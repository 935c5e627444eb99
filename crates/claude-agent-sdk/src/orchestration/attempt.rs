//! One attempt of one agent: panic containment, the per-attempt timeout, the
//! task-local context, and the attempt's trace record.
//!
//! An attempt ends in exactly one record, however it ends: with the agent's
//! output, with its error, with a panic turned into an error, with the attempt
//! timeout, or — when the attempt's future is dropped by a cancellation or the run
//! deadline — with an "interrupted" record written from [`Drop`].

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use crate::orchestration::agent::{Agent, AgentError, AgentInput, AgentOutput};
use crate::orchestration::agent_run::AgentPolicy;
use crate::orchestration::context::{self, AttemptScope, ExecutionContext};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::observer::RunEvent;
use crate::orchestration::telemetry::{in_attempt_span, log_event};
use crate::orchestration::trace::{AgentExecution, ExecutionTrace};

/// Runs attempt number `attempt` of `agent` on a copy of `input`.
///
/// `lap` is the clock shared with the caller (see
/// [`run_agent_lapped`](crate::orchestration::agent_run::run_agent_lapped)): when
/// it holds an instant, that instant is the attempt's start; when the attempt
/// ends with a timed record, the record's end instant is left in it.
pub(crate) async fn run_attempt(
    agent: &dyn Agent,
    input: &Arc<AgentInput>,
    ctx: &ExecutionContext,
    policy: &AgentPolicy,
    attempt: u32,
    lap: &mut Option<Instant>,
) -> Result<AgentOutput> {
    let name = agent.name();
    in_attempt_span(name, attempt, async move {
        let started = lap.take();
        let mut record = AttemptRecord::start(name, input, ctx, policy, attempt, started);
        ctx.emit(|| RunEvent::AttemptStarted {
            agent: name,
            attempt,
            max_attempts: policy.max_attempts(),
        });
        // The call happens inside the future, so a panic in a hand-written
        // (non-async) `execute` is caught too.
        let call = AssertUnwindSafe(async { agent.execute(AgentInput::clone(input)).await });
        let mut call = pin!(context::scope(ctx, call.catch_unwind()));
        let outcome = match policy.agent_timeout {
            None => Some(call.as_mut().await),
            Some(limit) => tokio::time::timeout(limit, call.as_mut()).await.ok(),
        };
        let result = match outcome {
            Some(Ok(result)) => result,
            Some(Err(panic)) => Err(panicked(name, panic.as_ref())),
            None => {
                log_event!(
                    policy.log,
                    warn,
                    agent = name,
                    attempt,
                    "agent attempt timed out"
                );
                Err(OrchestrationError::Timeout(format!(
                    "agent `{name}` attempt {attempt} exceeded its {:?} timeout",
                    policy.agent_timeout.unwrap_or_default()
                )))
            }
        };
        if let Err(error) = &result {
            log_event!(policy.log, warn, agent = name, attempt, %error, "agent attempt failed");
        }
        let nested = call
            .as_mut()
            .take_value()
            .and_then(AttemptScope::into_nested);
        *lap = record.finish(&result, nested);
        result
    })
    .await
}

/// A panic becomes a permanent (non-retryable) error carrying the panic message.
fn panicked(agent: &str, payload: &(dyn Any + Send)) -> OrchestrationError {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    OrchestrationError::AgentError(AgentError::new(format!(
        "agent `{agent}` panicked: {message}"
    )))
}

/// Writes the attempt's [`AgentExecution`] into the context's trace exactly once.
struct AttemptRecord<'a> {
    agent: &'a str,
    input: &'a Arc<AgentInput>,
    ctx: &'a ExecutionContext,
    policy: &'a AgentPolicy,
    attempt: u32,
    /// When the attempt started; `None` when nobody needs it (no trace record,
    /// no observer) or once the record is written.
    started: Option<Instant>,
}

impl<'a> AttemptRecord<'a> {
    fn start(
        agent: &'a str,
        input: &'a Arc<AgentInput>,
        ctx: &'a ExecutionContext,
        policy: &'a AgentPolicy,
        attempt: u32,
        started: Option<Instant>,
    ) -> Self {
        let timed = policy.record || ctx.is_observed();
        Self {
            agent,
            input,
            ctx,
            policy,
            attempt,
            started: timed.then(|| started.unwrap_or_else(Instant::now)),
        }
    }

    /// Writes the record (and tells the observer); returns the instant the
    /// attempt ended, when it was timed.
    fn finish(
        &mut self,
        result: &Result<AgentOutput>,
        nested: Option<ExecutionTrace>,
    ) -> Option<Instant> {
        let started = self.started.take()?;
        let ended = Instant::now();
        let elapsed = ended.saturating_duration_since(started);
        self.ctx.emit(|| RunEvent::AttemptFinished {
            agent: self.agent,
            attempt: self.attempt,
            outcome: result.as_ref(),
            elapsed,
        });
        if self.policy.record {
            let (output, error) = match result {
                Ok(output) => (Some(output.clone()), None),
                Err(error) => (None, Some(error.to_string())),
            };
            self.write(started, elapsed, output, error, nested);
        }
        Some(ended)
    }

    fn write(
        &self,
        started: Instant,
        elapsed: Duration,
        output: Option<AgentOutput>,
        error: Option<String>,
        nested: Option<ExecutionTrace>,
    ) {
        let clock = self.ctx.clock();
        let start_time = clock.wall_at(started);
        self.ctx.record(AgentExecution {
            agent_name: self.agent.to_owned(),
            attempt: self.attempt,
            start_time,
            end_time: Some(clock.wall_at(started + elapsed)),
            duration_ms: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            input: Arc::clone(self.input),
            success: error.is_none(),
            output,
            error,
            nested: nested.map(Box::new),
        });
    }
}

impl Drop for AttemptRecord<'_> {
    fn drop(&mut self) {
        if let Some(started) = self.started.take().filter(|_| self.policy.record) {
            let why = if self.ctx.is_cancelled() {
                "interrupted: the run was cancelled"
            } else if self.policy.deadline_passed() {
                "interrupted: the run timed out"
            } else {
                "interrupted: the attempt was abandoned"
            };
            self.write(started, started.elapsed(), None, Some(why.to_owned()), None);
        }
    }
}
