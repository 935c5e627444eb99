//! One attempt of one agent: panic containment, the per-attempt timeout, and
//! the attempt's trace record.
//!
//! An attempt ends in exactly one record, however it ends: with the agent's
//! output, with its error, with a panic turned into an error, with the attempt
//! timeout, or — when the attempt's future is dropped by a cancellation or the run
//! deadline — with an "interrupted" record written from [`Drop`].
//!
//! Most agents that compute rather than wait are done at their first poll, so
//! an attempt is two halves: [`start_attempt`], a plain function that calls the
//! agent, polls it once inside the attempt's span with panics contained, and —
//! when it is done — writes the record then and there; and [`run_attempt`], the
//! `async fn` that carries on an agent that has to wait, under the attempt
//! timeout, around one hand-written future ([`Call`]).

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytestring::ByteString;
use chrono::{DateTime, TimeDelta, Utc};
use smol_str::SmolStr;
use tokio::time::Instant;

use crate::orchestration::agent::{Agent, AgentError, AgentOutput};
use crate::orchestration::agent_run::{AgentPolicy, Lap, Runner};
use crate::orchestration::context::{ExecutionContext, NestedSlot};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::observer::RunEvent;
use crate::orchestration::recorded::RecordedOutput;
use crate::orchestration::step_input::StepInput;
use crate::orchestration::telemetry::{log_event, AttemptSpan};
use crate::orchestration::text_arena::TextArena;
use crate::orchestration::trace::{AgentExecution, ExecutionTrace};

/// The agent's future, as `Agent::execute` returns it.
type AgentFuture<'a> = Pin<Box<dyn Future<Output = Result<AgentOutput>> + Send + 'a>>;

/// An attempt whose agent did not finish at its first poll, for
/// [`run_attempt`] to carry on.
pub(crate) struct Waiting<'a> {
    span: AttemptSpan,
    /// When the attempt started, when it is timed (see [`AttemptRecord::started`]).
    started: Option<Lap>,
    /// When the attempt times out, if it can.
    times_out_at: Option<Instant>,
    running: AgentFuture<'a>,
}

/// Starts attempt number `attempt` of `agent` on a copy of `input`: calls the
/// agent and polls it once, with `cx`.
///
/// An agent that is done at its first poll (one that computes rather than
/// waits) has its whole attempt here — its record included — without the
/// machinery a waiting agent needs; one that has to wait is handed back, and
/// [`run_attempt`] carries the attempt on.
///
/// The runner's lap (see [`Runner::lap`]), when it holds an instant, is the
/// attempt's start; when the attempt ends timed, its end (and the record's end
/// time, when it wrote one) is left in it. A successful attempt's recorded
/// output text is left in [`Runner::output_text`], for a pipeline's next step,
/// and its output in [`Runner::output`]: the futures that poll the attempt
/// (the race against the run's cancellation, the retry loop) then pass on a
/// small result instead of moving the output through every layer. Attempts
/// run inside the runner's task-local scope (see [`Runner::scope`]), whose
/// nested-trace slot each empties into its record.
pub(crate) fn start_attempt<'a>(
    runner: &mut Runner<'_>,
    agent: &'a dyn Agent,
    input: &StepInput<'_>,
    attempt: u32,
    cx: &mut Context<'_>,
) -> std::result::Result<Result<()>, Waiting<'a>> {
    let (ctx, policy) = (runner.ctx, runner.policy);
    let name = agent.name();
    let span = AttemptSpan::new(name, attempt);
    let lap = runner.lap.take();
    let started = (policy.record || ctx.is_observed()).then(|| lap.unwrap_or_else(Lap::now));
    // A limit too far out to represent is no limit.
    let times_out_at = policy.attempt_timeout_of(agent).and_then(|limit| {
        started
            .map_or_else(Instant::now, |started| started.at)
            .checked_add(limit)
    });
    let polled = {
        let _entered = span.enter();
        ctx.emit(|| RunEvent::AttemptStarted {
            agent: name,
            attempt,
            max_attempts: policy.attempts_of(agent),
        });
        catch_unwind(AssertUnwindSafe(|| {
            let mut running = agent.execute(input.for_agent());
            match running.as_mut().poll(cx) {
                Poll::Ready(result) => Ok(result),
                Poll::Pending => Err(running),
            }
        }))
    };
    let result = match polled {
        Ok(Ok(result)) => result,
        Ok(Err(running)) => {
            return Err(Waiting {
                span,
                started,
                times_out_at,
                running,
            })
        }
        Err(panic) => Err(panicked(name, panic.as_ref())),
    };
    let _entered = span.enter();
    let (slots, end) = runner.slots();
    let mut record = AttemptRecord::new(ctx, policy, slots, name, input, attempt, started);
    Ok(record.end(result, end))
}

/// Carries on an attempt whose agent had to wait (see [`start_attempt`]):
/// polls it inside its span until it is done or its attempt timeout passes.
/// Dropped before the end (a cancelled run), it still writes its record.
// Some bindings exist only to be logged.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) async fn run_attempt(
    runner: &mut Runner<'_>,
    agent: &dyn Agent,
    input: &StepInput<'_>,
    attempt: u32,
    waiting: Waiting<'_>,
) -> Result<()> {
    let Waiting {
        span,
        started,
        times_out_at,
        running,
    } = waiting;
    let (ctx, policy, name) = (runner.ctx, runner.policy, agent.name());
    let (slots, end) = runner.slots();
    let mut record = AttemptRecord::new(ctx, policy, slots, name, input, attempt, started);
    let outcome = {
        let mut call = pin!(Call {
            running: Some(running),
            span: &span,
        });
        match times_out_at {
            None => Some(call.as_mut().await),
            Some(at) => tokio::time::timeout_at(at, call.as_mut()).await.ok(),
        }
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
                policy.attempt_timeout_of(agent).unwrap_or_default()
            )))
        }
    };
    record.end(result, end)
}

/// The waiting agent's future, polled inside the attempt's span with panics
/// caught.
struct Call<'a> {
    /// Kept until the attempt is over (as a timed-out or interrupted agent is
    /// dropped with the attempt).
    running: Option<AgentFuture<'a>>,
    span: &'a AttemptSpan,
}

impl Future for Call<'_> {
    type Output = std::thread::Result<Result<AgentOutput>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(running) = this.running.as_mut() else {
            return Poll::Ready(Ok(Err(OrchestrationError::AgentError(AgentError::new(
                "internal error: an attempt was polled after it ended",
            )))));
        };
        let _entered = this.span.enter();
        match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(cx))) {
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

/// The parts of a [`Runner`] an attempt's record works with.
pub(crate) struct RecordSlots<'r> {
    /// Where a nested orchestration run by the agent leaves its trace.
    pub(crate) nested: &'r NestedSlot,
    /// The text the agent's records share as their input: taken by its last
    /// record, made by its first when it is not known yet.
    pub(crate) input_text: &'r mut Option<ByteString>,
    /// Where the records' texts are copied.
    pub(crate) texts: &'r mut TextArena,
}

/// The parts of a [`Runner`] an ended attempt leaves its results in.
pub(crate) struct EndSlots<'r> {
    pub(crate) lap: &'r mut Option<Lap>,
    /// Where a pipeline keeps the recorded output text; `None` outside one.
    pub(crate) output_text: Option<&'r mut Option<ByteString>>,
    pub(crate) output: &'r mut Option<AgentOutput>,
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
    slots: RecordSlots<'a>,
}

impl<'a, 'i> AttemptRecord<'a, 'i> {
    fn new(
        ctx: &'a ExecutionContext,
        policy: &'a AgentPolicy,
        slots: RecordSlots<'a>,
        agent: &'a str,
        input: &'a StepInput<'i>,
        attempt: u32,
        started: Option<Lap>,
    ) -> Self {
        Self {
            agent,
            input,
            ctx,
            policy,
            attempt,
            started,
            slots,
        }
    }

    /// Ends the attempt with `result`: logs a failure, writes the record, and
    /// leaves the lap, the recorded output text and the output in `end`.
    // The error exists only to be logged.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn end(&mut self, result: Result<AgentOutput>, end: EndSlots<'_>) -> Result<()> {
        if let Err(error) = &result {
            log_event!(self.policy.log, warn, agent = self.agent, attempt = self.attempt, %error, "agent attempt failed");
        }
        let (lap, text) = self.finish(&result, end.output_text.is_some());
        *end.lap = lap;
        if let Some(kept) = end.output_text {
            *kept = text;
        }
        result.map(|output| *end.output = Some(output))
    }

    /// Writes the record (and tells the observer); returns when the attempt
    /// ended, when it was timed, and — with `keep_text` — the recorded output's
    /// text, when a record kept one.
    fn finish(
        &mut self,
        result: &Result<AgentOutput>,
        keep_text: bool,
    ) -> (Option<Lap>, Option<ByteString>) {
        // Emptied whatever happens, so that it never reaches a later attempt.
        let nested = self.slots.nested.take();
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
                    let content = self.slots.texts.copy(&output.content);
                    (Some(RecordedOutput::with_content(content, output)), None)
                }
                Err(error) => (None, Some(error.to_string())),
            };
            text = output
                .as_ref()
                .filter(|_| keep_text)
                .map(|output| output.content.clone());
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
            self.slots.input_text.take()
        } else {
            self.slots.input_text.clone()
        };
        let text = text.unwrap_or_else(|| {
            let text = self.slots.texts.copy(self.input.content());
            if !last {
                *self.slots.input_text = Some(text.clone());
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
            let nested = self.slots.nested.take();
            self.write(started, elapsed, None, error, nested, true);
        }
    }
}
