//! One attempt of one agent: panic containment, the per-attempt timeout, the
//! task-local context, and the attempt's trace record.
//!
//! An attempt ends in exactly one record, however it ends: with the agent's
//! output, with its error, with a panic turned into an error, with the attempt
//! timeout, or — when the attempt's future is dropped by a cancellation or the run
//! deadline — with an "interrupted" record written from [`Drop`].
//!
//! The attempt is one `async fn` around one hand-written future ([`Call`]) that
//! calls the agent, polls it inside the attempt's span and contains its panics,
//! so an attempt costs no wrapper futures for those layers.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use bytestring::ByteString;
use smol_str::SmolStr;

use crate::orchestration::agent::{Agent, AgentError, AgentOutput};
use crate::orchestration::agent_run::{AgentPolicy, Lap, Runner};
use crate::orchestration::context::{ExecutionContext, NestedSlot};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::observer::RunEvent;
use crate::orchestration::step_input::StepInput;
use crate::orchestration::telemetry::{log_event, AttemptSpan};
use crate::orchestration::text_arena::TextArena;
use crate::orchestration::trace::{AgentExecution, ExecutionTrace, RecordedOutput};

/// Runs attempt number `attempt` of `agent` on a copy of `input`.
///
/// The runner's lap (see [`Runner::lap`]), when it holds an instant, is the
/// attempt's start; when the attempt ends timed, its end (and the record's end
/// time, when it wrote one) is left in it. A successful attempt's recorded
/// output text is left in [`Runner::output_text`], for a pipeline's next step,
/// and its output in [`Runner::output`]: the futures that poll the attempt
/// (the race against the run's cancellation, the retry loop) then pass on a
/// small result instead of moving the output through every layer.
/// The attempt runs inside the runner's task-local scope (see
/// [`Runner::scope`]), whose nested-trace slot it empties into its record.
// Some bindings exist only to be logged.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) async fn run_attempt(
    runner: &mut Runner<'_>,
    agent: &dyn Agent,
    input: &StepInput<'_>,
    attempt: u32,
) -> Result<()> {
    let (ctx, policy) = (runner.ctx, runner.policy);
    let name = agent.name();
    let span = AttemptSpan::new(name, attempt);
    let (mut record, call) = {
        let _entered = span.enter();
        let started = runner.lap.take();
        let record = AttemptRecord {
            agent: name,
            input,
            ctx,
            policy,
            attempt,
            started: (policy.record || ctx.is_observed()).then(|| started.unwrap_or_else(Lap::now)),
            nested: &runner.nested,
            input_text: &mut runner.input_text,
            texts: &mut runner.texts,
        };
        ctx.emit(|| RunEvent::AttemptStarted {
            agent: name,
            attempt,
            max_attempts: policy.attempts_of(agent),
        });
        let call = Call {
            agent,
            input,
            running: None,
            span: &span,
        };
        (record, call)
    };
    let mut call = pin!(call);
    let attempt_timeout = policy.attempt_timeout_of(agent);
    let outcome = match attempt_timeout {
        None => Some(call.as_mut().await),
        Some(limit) => tokio::time::timeout(limit, call.as_mut()).await.ok(),
    };
    let _entered = span.enter();
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
                attempt_timeout.unwrap_or_default()
            )))
        }
    };
    if let Err(error) = &result {
        log_event!(policy.log, warn, agent = name, attempt, %error, "agent attempt failed");
    }
    (runner.lap, runner.output_text) = record.finish(&result);
    result.map(|output| runner.output = Some(output))
}

/// The agent's call: made at the first poll and polled inside the attempt's
/// span, with panics caught — those in a hand-written (non-async) `execute`
/// included.
struct Call<'a> {
    agent: &'a dyn Agent,
    /// Where the agent's own copy of its input comes from, when the call is made.
    input: &'a StepInput<'a>,
    /// The agent's future, kept until the attempt is over (as a timed-out or
    /// interrupted agent is dropped with the attempt).
    running: Option<Pin<Box<dyn Future<Output = Result<AgentOutput>> + Send + 'a>>>,
    span: &'a AttemptSpan,
}

impl Future for Call<'_> {
    type Output = std::thread::Result<Result<AgentOutput>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        let polled = catch_unwind(AssertUnwindSafe(|| {
            let running = match &mut this.running {
                Some(running) => running,
                running => running.insert(this.agent.execute(this.input.for_agent())),
            };
            running.as_mut().poll(cx)
        }));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        // An agent dropped unfinished runs its drop code inside its attempt's span.
        let _entered = self.span.enter();
        self.running = None;
    }
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
struct AttemptRecord<'a, 'i> {
    agent: &'a str,
    input: &'a StepInput<'i>,
    ctx: &'a ExecutionContext,
    policy: &'a AgentPolicy,
    attempt: u32,
    /// When the attempt started; `None` when nobody needs it (no trace record,
    /// no observer) or once the record is written.
    started: Option<Lap>,
    /// Where a nested orchestration run by the agent leaves its trace.
    nested: &'a NestedSlot,
    /// The text the agent's records share as their input: taken by its last
    /// record, made by its first when it is not known yet.
    input_text: &'a mut Option<ByteString>,
    /// Where the records' texts are copied.
    texts: &'a mut TextArena,
}

impl AttemptRecord<'_, '_> {
    /// Writes the record (and tells the observer); returns when the attempt
    /// ended, when it was timed, and the recorded output's text, when a record
    /// kept one.
    fn finish(&mut self, result: &Result<AgentOutput>) -> (Option<Lap>, Option<ByteString>) {
        // Emptied whatever happens, so that it never reaches a later attempt.
        let nested = self.nested.take();
        let Some(started) = self.started.take() else {
            return (None, None);
        };
        let mut ended = Lap::now();
        let elapsed = ended.at.saturating_duration_since(started.at);
        self.ctx.emit(|| RunEvent::AttemptFinished {
            agent: self.agent,
            attempt: self.attempt,
            outcome: result.as_ref(),
            elapsed,
        });
        let mut text = None;
        if self.policy.record {
            let (output, error) = match result {
                Ok(output) => {
                    let content = self.texts.copy(&output.content);
                    (Some(RecordedOutput::with_content(content, output)), None)
                }
                Err(error) => (None, Some(error.to_string())),
            };
            text = output.as_ref().map(|output| output.content.clone());
            // A failed attempt may be retried on the same input.
            let last = result.is_ok();
            ended.wall = Some(self.write(started, elapsed, output, error, nested, last));
        }
        (Some(ended), text)
    }

    /// Writes the record; returns its end time. With `last`, no later record
    /// shares the input text.
    fn write(
        &mut self,
        started: Lap,
        elapsed: Duration,
        output: Option<RecordedOutput>,
        error: Option<String>,
        nested: Option<Box<ExecutionTrace>>,
        last: bool,
    ) -> DateTime<Utc> {
        // A pipeline step usually starts when the previous record ended, whose
        // UTC time is then already known.
        let start_time = started
            .wall
            .unwrap_or_else(|| self.ctx.clock().wall_at(started.at));
        let end_time = TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|elapsed| start_time.checked_add_signed(elapsed))
            .unwrap_or(start_time);
        let text = if last {
            self.input_text.take()
        } else {
            self.input_text.clone()
        };
        let text = text.unwrap_or_else(|| {
            let text = self.texts.copy(self.input.content());
            if !last {
                *self.input_text = Some(text.clone());
            }
            text
        });
        self.ctx.record(AgentExecution {
            agent_name: SmolStr::new(self.agent),
            attempt: self.attempt,
            start_time,
            end_time: Some(end_time),
            duration_ms: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            input: self.input.for_record(text),
            success: error.is_none(),
            output,
            error,
            nested,
        });
        end_time
    }
}

impl Drop for AttemptRecord<'_, '_> {
    fn drop(&mut self) {
        if let Some(started) = self.started.take().filter(|_| self.policy.record) {
            let why = if self.ctx.is_cancelled() {
                "interrupted: the run was cancelled"
            } else if self.policy.deadline_passed() {
                "interrupted: the run timed out"
            } else {
                "interrupted: the attempt was abandoned"
            };
            let error = Some(why.to_owned());
            let elapsed = started.at.elapsed();
            let nested = self.nested.take();
            self.write(started, elapsed, None, error, nested, true);
        }
    }
}
