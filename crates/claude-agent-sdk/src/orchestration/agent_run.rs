//! One agent's whole run: attempts, retries with backoff, and the run's deadline
//! and cancellation — the machinery every pattern and the registry share.
//!
//! An attempt is one call (panic containment, attempt timeout, trace record:
//! [`start_attempt`], and [`run_attempt`] when the agent has to wait);
//! [`Runner::run`] repeats it for retryable errors only, on [`backon`]'s
//! exponential schedule, and races every waiting attempt and every backoff
//! sleep against the run's cancellation and deadline. A [`Runner`] runs agents
//! one after another (a pipeline, or one worker of a fan-out) inside one
//! task-local scope and carries what they can share; [`run_agent`] runs a
//! single agent.
//!
//! The common case — an agent that succeeds at its first attempt — costs no
//! retry schedule, no timer and no cancellation waiter: the schedule is built
//! at the first retryable failure, and the watchers are only made once the
//! agent has had to wait.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use bytestring::ByteString;

use crate::orchestration::agent::{Agent, AgentError, AgentOutput};
use crate::orchestration::attempt::{run_attempt, start_attempt, EndSlots, RecordSlots};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::{self, AttemptScope, ExecutionContext, NestedSlot};
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::observer::RunEvent;
use crate::orchestration::recorded::RecordedInput;
use crate::orchestration::retry::Backoff;
use crate::orchestration::step_input::StepInput;
use crate::orchestration::telemetry::log_event;
use crate::orchestration::text_arena::TextArena;

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

    /// The retries `agent` gets: its own budget, or the run's.
    pub(crate) fn retries_of(&self, agent: &dyn Agent) -> usize {
        agent.max_retries().unwrap_or(self.max_retries)
    }

    /// The attempts `agent` gets at most.
    pub(crate) fn attempts_of(&self, agent: &dyn Agent) -> u32 {
        u32::try_from(self.retries_of(agent).saturating_add(1)).unwrap_or(u32::MAX)
    }

    /// The bound on each attempt of `agent`: its own, or the run's.
    pub(crate) fn attempt_timeout_of(&self, agent: &dyn Agent) -> Option<Duration> {
        agent.attempt_timeout().or(self.agent_timeout)
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
    input: &RecordedInput,
    ctx: &ExecutionContext,
    policy: &AgentPolicy,
) -> std::result::Result<AgentOutput, RunError> {
    let mut runner = Runner::new(ctx, policy);
    let scope = runner.scope();
    let input = runner.share_input(input);
    context::scope(scope, runner.run(agent, &input)).await
}

/// An instant a runner read, and its UTC time once a record has needed it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lap {
    pub(crate) at: Instant,
    pub(crate) wall: Option<DateTime<Utc>>,
}

impl Lap {
    pub(crate) fn now() -> Self {
        Self {
            at: Instant::now(),
            wall: None,
        }
    }
}

/// Runs agents one after another under one context and policy (a pipeline, or
/// one worker of a fan-out), carrying between them what a run of one agent
/// would otherwise make afresh.
pub(crate) struct Runner<'a> {
    pub(crate) ctx: &'a ExecutionContext,
    pub(crate) policy: &'a AgentPolicy,
    /// The instant the runner last read the clock, while it is still "now" to
    /// within the caller's bookkeeping: in a pipeline nothing is awaited between
    /// two steps, so the end of one step's last attempt is the start of the next
    /// (its deadline check and its first attempt's record), and a step costs one
    /// clock read instead of three. Left holding the end of an agent's last
    /// attempt when that attempt was timed, `None` otherwise.
    pub(crate) lap: Option<Lap>,
    /// Where a nested orchestration leaves its trace for the record of the
    /// attempt running it; shared with the runner's [`scope`](Self::scope).
    pub(crate) nested: Arc<NestedSlot>,
    /// The text the records of the agent about to run share as their input,
    /// when the caller knows it (see [`StepInput`]); the agent's last record
    /// takes it.
    input_text: Option<ByteString>,
    /// Whether the runner is a pipeline, whose steps' records share each
    /// recorded output as the next recorded input (see [`output_text`](Self::output_text)).
    chains: bool,
    /// In a pipeline, the text of the last recorded output: the next step's
    /// recorded input.
    output_text: Option<ByteString>,
    /// Where the runner's records copy their texts.
    pub(crate) texts: TextArena,
    /// The output of the attempt that just succeeded, until [`run`](Self::run)
    /// returns it.
    pub(crate) output: Option<AgentOutput>,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(ctx: &'a ExecutionContext, policy: &'a AgentPolicy) -> Self {
        Self {
            ctx,
            policy,
            lap: None,
            nested: Arc::default(),
            input_text: None,
            chains: false,
            output_text: None,
            texts: TextArena::default(),
            output: None,
        }
    }

    /// A runner for a pipeline: each step's records share the previous step's
    /// recorded output text as their input (see [`next_step`](Self::next_step)).
    pub(crate) fn pipeline(ctx: &'a ExecutionContext, policy: &'a AgentPolicy) -> Self {
        Self {
            chains: true,
            ..Self::new(ctx, policy)
        }
    }

    /// Readies the runner for the next step of its pipeline: that step's
    /// records take the previous step's recorded output text as their input.
    pub(crate) fn next_step(&mut self) {
        self.input_text = self.output_text.take();
    }

    /// The input of an agent run on `input` (a fan-out's, or a single agent's),
    /// whose records share its text.
    pub(crate) fn share_input<'i>(&mut self, input: &'i RecordedInput) -> StepInput<'i> {
        self.input_text = self.policy.record.then(|| input.content.clone());
        StepInput::shared(input)
    }

    /// The runner's parts an attempt's record works with, and those an ended
    /// attempt leaves its results in.
    pub(crate) fn slots(&mut self) -> (RecordSlots<'_>, EndSlots<'_>) {
        let slots = RecordSlots {
            nested: &self.nested,
            input_text: &mut self.input_text,
            texts: &mut self.texts,
        };
        let end = EndSlots {
            lap: &mut self.lap,
            output_text: self.chains.then_some(&mut self.output_text),
            output: &mut self.output,
        };
        (slots, end)
    }

    /// The task-local scope the runner's attempts must run in: the caller
    /// runs the future that drives [`run`](Self::run) inside it (see
    /// [`context::scope`]), once for all the runner's agents.
    pub(crate) fn scope(&self) -> AttemptScope {
        AttemptScope::new(self.ctx, &self.nested)
    }

    /// Runs `agent` with retries until it succeeds, fails for good, or the run
    /// is cancelled or out of time.
    ///
    /// The retry loop is the one `backon::Retryable` would run, written out so
    /// that the first attempt builds nothing: the delays are backon's
    /// exponential schedule for `max_retries`, each spread by the jitter and
    /// floored by a retry-after hint. Attempts and backoff sleeps alike are
    /// raced against the run's cancellation and deadline.
    pub(crate) async fn run(
        &mut self,
        agent: &dyn Agent,
        input: &StepInput<'_>,
    ) -> std::result::Result<AgentOutput, RunError> {
        let (ctx, policy) = (self.ctx, self.policy);
        if ctx.is_cancelled() {
            self.lap = None;
            return Err(RunError::Interrupted(Interruption::Cancelled));
        }
        let now = self.lap.take().unwrap_or_else(Lap::now);
        if policy.deadline.is_some_and(|deadline| now.at >= deadline) {
            return Err(RunError::Interrupted(Interruption::DeadlineExceeded));
        }
        self.lap = Some(now);
        let mut watchers = None;
        let mut attempt = 1_u32;
        let mut schedule = None;
        let result = loop {
            // Most agents are done at their first poll: only one that has to
            // wait gets raced against the run's cancellation and deadline.
            let started = poll_fn(|cx| Poll::Ready(start_attempt(self, agent, input, attempt, cx)));
            let outcome = match started.await {
                Ok(result) => Ok(result),
                Err(waiting) => {
                    let mut work = pin!(run_attempt(self, agent, input, attempt, waiting));
                    poll_fn(|cx| race(work.as_mut(), &mut watchers, ctx, policy, cx)).await
                }
            };
            let error = match outcome {
                Ok(Ok(())) => break Ok(()),
                // An agent that fails because the run was cancelled under it
                // (a nested run, say) was interrupted, not failed.
                Ok(Err(_)) if ctx.is_cancelled() => {
                    break Err(RunError::Interrupted(Interruption::Cancelled))
                }
                Ok(Err(error)) => error,
                Err(why) => break Err(RunError::Interrupted(why)),
            };
            // Whatever follows (a backoff sleep, or the caller's next agent
            // after a failure) must read the clock afresh.
            self.lap = None;
            if !error.is_retryable() {
                break Err(RunError::Failed(error));
            }
            let nominal = schedule
                .get_or_insert_with(|| policy.backoff.builder(policy.retries_of(agent)).build())
                .next();
            let Some(delay) = nominal.map(|nominal| policy.backoff.shape(nominal, &error)) else {
                break Err(RunError::Failed(error));
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
            let mut sleep = pin!(tokio::time::sleep(delay));
            let slept = poll_fn(|cx| race(sleep.as_mut(), &mut watchers, ctx, policy, cx)).await;
            if let Err(why) = slept {
                break Err(RunError::Interrupted(why));
            }
        };
        match result {
            Ok(()) => self.output.take().ok_or_else(|| {
                // `run_attempt` leaves the output of every attempt that succeeds.
                RunError::Failed(OrchestrationError::AgentError(AgentError::new(
                    "internal error: a successful attempt left no output",
                )))
            }),
            Err(error) => {
                self.lap = None;
                Err(error)
            }
        }
    }
}

/// The run's cancellation and deadline, as one future made the first time an
/// agent has to wait.
type Watchers<'a> = Pin<Box<dyn Future<Output = Interruption> + Send + 'a>>;

/// Polls `work`, then — only once it has had to wait — the run's watchers: an
/// agent that is ready at its first poll never pays for a timer or a
/// cancellation waiter, and one that waits pays one allocation for both, next
/// to whatever it waits for.
fn race<'a, F: Future>(
    work: Pin<&mut F>,
    watchers: &mut Option<Watchers<'a>>,
    ctx: &'a ExecutionContext,
    policy: &AgentPolicy,
    cx: &mut Context<'_>,
) -> Poll<std::result::Result<F::Output, Interruption>> {
    if let Poll::Ready(output) = work.poll(cx) {
        return Poll::Ready(Ok(output));
    }
    watchers
        .get_or_insert_with(|| Box::pin(interruption(ctx, policy.deadline)))
        .as_mut()
        .poll(cx)
        .map(Err)
}

/// Completes when the run is cancelled or its deadline passes, whichever is first.
async fn interruption(ctx: &ExecutionContext, deadline: Option<Instant>) -> Interruption {
    let deadline = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = ctx.cancelled() => Interruption::Cancelled,
        () = deadline => Interruption::DeadlineExceeded,
    }
}
