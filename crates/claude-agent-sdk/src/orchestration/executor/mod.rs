//! The executor: one node's run — its attempts and the retries between them
//! — through small layers, each in its own file:
//!
//! - [`retry`]: the [`RetryPolicy`] that decides whether a
//!   failed attempt gets another, and after how long;
//! - [`timeout`]: the attempt timeout and the run's stop conditions, and how
//!   an attempt stops (nested runs first);
//! - [`panic`](mod@panic): panics in the agent — while it runs or while it is dropped —
//!   become a permanent error;
//! - recording: every attempt's start and end go through the run's
//!   [`Recorder`], and the
//!   attempt runs inside its [`AttemptScope`] (what
//!   [`ExecutionContext::current`](crate::orchestration::ExecutionContext::current)
//!   reads).
//!
//! The concurrency limit is the scheduler's: it never hands out more nodes
//! than the limit allows.

pub(crate) mod panic;
pub(crate) mod retry;
pub(crate) mod timeout;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use std::time::Duration;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::orchestration::agent::{Agent, AgentError, AgentInput, AgentOutput};
use crate::orchestration::budget::Spending;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::recorder::{AttemptEnd, Recorder};
use crate::orchestration::engine::stop::{sooner, RunStop, STOP_GRACE};
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::journal::{InputSource, Interruption, NodeId, ParentAttempt, RunOutcome};
use crate::orchestration::scope::{self, AttemptScope, NestedRuns, Nesting, RunBooks};
use crate::orchestration::telemetry::{log_event, AttemptSpan};
use crate::orchestration::usage::Usage;
use panic::CatchUnwind;
use retry::RetryPolicy;
use timeout::{bounded, Bounded};

/// The policies one node runs under.
#[derive(Debug, Clone)]
pub(crate) struct NodePolicy<'a> {
    pub(crate) max_retries: usize,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) retry: &'a dyn RetryPolicy,
    pub(crate) log: bool,
}

impl NodePolicy<'_> {
    fn max_attempts(&self) -> u32 {
        u32::try_from(self.max_retries.saturating_add(1)).unwrap_or(u32::MAX)
    }
}

/// What the executor needs of the run a node belongs to.
pub(crate) struct RunShared {
    pub(crate) ctx: ExecutionContext,
    pub(crate) recorder: Recorder,
    pub(crate) stop: RunStop,
    /// The runs nested in this run's attempts (see [`RunBooks`]).
    pub(crate) children: Mutex<Vec<Weak<dyn RunBooks>>>,
    /// Whether the run's books are closed (its last event written).
    pub(crate) closed: AtomicBool,
    /// Held while the books close: a second closer (a parent closing the
    /// runs nested in it as this one closes itself on another thread) waits
    /// until the first has written the last event.
    closing: Mutex<()>,
    /// The runs nested in each attempt that started one.
    nested: Mutex<HashMap<(NodeId, u32), NestedRuns>>,
    /// Whether any attempt ever started a nested run (most never do: their
    /// end then takes no lock for it).
    any_nested: AtomicBool,
    /// What the idempotency keys of the run's attempts start with (see
    /// [`RunBooks::key_prefix`]).
    key_prefix: String,
    /// See [`RunBooks::enclosing_activations`].
    enclosing_activations: Vec<u32>,
    /// What the run may spend of tokens and dollars, and what it spent.
    pub(crate) spending: Arc<Spending>,
}

impl RunShared {
    pub(crate) fn new(
        ctx: &ExecutionContext,
        recorder: Recorder,
        stop: RunStop,
        key_prefix: String,
        enclosing_activations: Vec<u32>,
        spending: Spending,
    ) -> Self {
        Self {
            ctx: ctx.clone(),
            recorder,
            stop,
            key_prefix,
            enclosing_activations,
            spending: Arc::new(spending),
            children: Mutex::default(),
            closed: AtomicBool::new(false),
            closing: Mutex::new(()),
            nested: Mutex::default(),
            any_nested: AtomicBool::new(false),
        }
    }

    /// Closes the run's books with `outcome`, once: the run's stop token is
    /// cancelled (anything it left behind stops), its attempts still open end
    /// as interrupted, and its last event is written. When another thread is
    /// closing them already, returns once that one has.
    pub(crate) fn close(&self, outcome: RunOutcome) {
        let _closing = self.closing.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.stop.token.cancel();
        // Tasks its attempts spawned that are still running stop now.
        if self.any_nested.load(Ordering::Acquire) {
            let mut nested = self.nested.lock().unwrap_or_else(PoisonError::into_inner);
            for runs in nested.values_mut() {
                runs.abort_tasks();
            }
        }
        let why = match &outcome {
            RunOutcome::Interrupted(why) => *why,
            _ => Interruption::Abandoned,
        };
        self.recorder.close(why);
        self.recorder.run_finished(outcome);
        self.ctx.run_ended(self.ctx.clock().now());
        self.closed.store(true, Ordering::Release);
    }

    /// Closes the books of every run nested in this one, innermost first,
    /// then this run's with `outcome`. A work list, not recursion: nesting
    /// can be deep.
    pub(crate) fn close_tree(&self, outcome: RunOutcome) {
        let why = match &outcome {
            RunOutcome::Interrupted(why) => *why,
            _ => Interruption::Abandoned,
        };
        let mut found: Vec<Arc<dyn RunBooks>> = Vec::new();
        let mut pending = self.children();
        while let Some(run) = pending.pop() {
            // A closed run closed its own nested runs: nothing to do below it.
            if !run.is_closed() {
                pending.extend(run.children());
                found.push(run);
            }
        }
        // A child was found after its parent: close in reverse.
        for run in found.iter().rev() {
            run.close_interrupted(why);
        }
        self.close(outcome);
    }

    /// `change` applied to the bookkeeping of the runs nested in attempt
    /// `attempt` of `node`, if it started any (it stays, marked as the
    /// change marks it, for runs and tasks that start late).
    fn with_nested<T>(
        &self,
        node: NodeId,
        attempt: u32,
        change: impl FnOnce(&mut NestedRuns) -> Option<T>,
    ) -> Option<T> {
        if !self.any_nested.load(Ordering::Acquire) {
            return None;
        }
        let mut nested = self.nested.lock().unwrap_or_else(PoisonError::into_inner);
        nested.get_mut(&(node, attempt)).and_then(change)
    }

    /// Attempt `attempt` of `node` is over (and recorded so): its
    /// bookkeeping of the runs nested in it goes, to the caller, if it
    /// started any; a run or task starting in it from now on starts stopped.
    fn end_nested(&self, node: NodeId, attempt: u32) -> Option<NestedRuns> {
        if !self.any_nested.load(Ordering::Acquire) {
            return None;
        }
        let mut nested = self.nested.lock().unwrap_or_else(PoisonError::into_inner);
        nested.remove(&(node, attempt))
    }

    fn lock_children(&self) -> MutexGuard<'_, Vec<Weak<dyn RunBooks>>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RunBooks for RunShared {
    fn context(&self) -> &ExecutionContext {
        &self.ctx
    }

    fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    fn enclosing_activations(&self) -> &[u32] {
        &self.enclosing_activations
    }

    fn text_limit(&self) -> Option<usize> {
        self.recorder.text_limit()
    }

    fn nest(&self, attempt: ParentAttempt) -> Nesting {
        self.any_nested.store(true, Ordering::Release);
        let mut nested = self.nested.lock().unwrap_or_else(PoisonError::into_inner);
        let runs = nested.entry((attempt.node, attempt.attempt)).or_default();
        // An attempt that already ended: the run nested in it starts stopped.
        if !self.recorder.is_open(attempt.node, attempt.attempt) {
            runs.over = true;
        }
        runs.nest(&self.stop.token, &self.spending)
    }

    fn stop_nested(&self, attempt: ParentAttempt) -> Option<TaskTracker> {
        if !self.any_nested.load(Ordering::Acquire) {
            return None;
        }
        let mut nested = self.nested.lock().unwrap_or_else(PoisonError::into_inner);
        nested.get_mut(&(attempt.node, attempt.attempt))?.stop()
    }

    fn task_token(&self, attempt: ParentAttempt) -> TaskTrackerToken {
        self.any_nested.store(true, Ordering::Release);
        let mut nested = self.nested.lock().unwrap_or_else(PoisonError::into_inner);
        nested
            .entry((attempt.node, attempt.attempt))
            .or_default()
            .task_token()
    }

    fn spawned(&self, attempt: ParentAttempt, task: tokio::task::AbortHandle) {
        self.any_nested.store(true, Ordering::Release);
        let mut nested = self.nested.lock().unwrap_or_else(PoisonError::into_inner);
        let runs = nested.entry((attempt.node, attempt.attempt)).or_default();
        if !self.recorder.is_open(attempt.node, attempt.attempt) {
            runs.over = true;
        }
        runs.spawned(task);
    }

    fn adopt(&self, child: Weak<dyn RunBooks>) {
        let mut children = self.lock_children();
        // Forget runs that have ended, now and then: a long run may nest many.
        if children.len() >= 16 && children.len().is_power_of_two() {
            children.retain(|child| child.strong_count() > 0);
        }
        children.push(child);
    }

    fn children(&self) -> Vec<Arc<dyn RunBooks>> {
        self.lock_children()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn close_interrupted(&self, why: Interruption) {
        self.close(RunOutcome::Interrupted(why));
    }
}

/// How a node's run ended, when it did not succeed.
#[derive(Debug)]
pub(crate) enum NodeFailure {
    /// The agent failed for good: `AgentFailed` with its last error as cause.
    Failed(OrchestrationError),
    /// The run had to stop while the node ran.
    Interrupted(Interruption),
}

/// The input of each attempt of a node (an agent consumes its input): the
/// first attempt takes the one made for it, when there is one; a retry gets
/// a fresh copy.
pub(crate) struct AttemptInputs<'a> {
    pub(crate) first: Option<AgentInput>,
    pub(crate) fresh: &'a (dyn Fn() -> AgentInput + Sync),
}

impl AttemptInputs<'_> {
    fn next(&mut self) -> AgentInput {
        self.first.take().unwrap_or_else(self.fresh)
    }
}

/// Where a step's input comes from, as its attempts' starts are journaled
/// (an [`InputSource`]): a given input is copied from the attempt's own
/// input then, only when attempts are journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputOrigin {
    RunInput,
    OutputOf(NodeId),
    Given,
}

impl InputOrigin {
    /// What the journal says of `input`, which came from here.
    fn source(self, input: &AgentInput) -> InputSource {
        match self {
            Self::RunInput => InputSource::RunInput,
            Self::OutputOf(node) => InputSource::OutputOf(node),
            Self::Given => InputSource::Given(Box::new(input.clone())),
        }
    }
}

/// Runs `agent` as node `node` on `inputs` (which came from `origin`) until
/// it succeeds, fails for good, or the run must stop.
pub(crate) async fn run_node(
    run: &Arc<RunShared>,
    step: StepKey,
    agent: &dyn Agent,
    mut inputs: AttemptInputs<'_>,
    origin: InputOrigin,
    policy: &NodePolicy<'_>,
) -> Result<Success, NodeFailure> {
    // An agent's own zero timeout (a graph node's or a registry entry's is
    // refused before the run starts): every attempt would time out at once.
    if policy.attempt_timeout.is_some_and(|t| t.is_zero()) {
        return Err(NodeFailure::Failed(OrchestrationError::InvalidConfig(
            format!(
                "agent `{}` has a zero attempt timeout: it must be greater than zero",
                agent.name()
            ),
        )));
    }
    let max_attempts = policy.max_attempts();
    let mut attempt = 1_u32;
    loop {
        // One reading of the clock: the stop check and the attempt's start.
        let now = tokio::time::Instant::now();
        if let Some(why) = run.stop.check_at(now) {
            return Err(NodeFailure::Interrupted(why));
        }
        let this = Attempt {
            step,
            number: attempt,
            max: max_attempts,
            started: now,
        };
        let error = match run_attempt(run, agent, inputs.next(), origin, policy, this).await {
            Ok(success) => return Ok(success),
            Err(AttemptFailure::Interrupted(why)) => return Err(NodeFailure::Interrupted(why)),
            Err(AttemptFailure::Failed(error)) => error,
        };
        // The policy decides within bounds kept here: a retryable error and
        // an attempt left — it may retry less, never more — and a wait of at
        // least the error's retry-after hint, whatever it asks for. It is the
        // user's code: one that panics retries nothing.
        // No retry either once a budget is crossed: it would spend past it
        // (the run then fails naming the budget).
        let may_retry =
            error.is_retryable() && attempt < max_attempts && run.spending.crossed().is_none();
        let delay = if may_retry {
            panic::contained(|| {
                policy
                    .retry
                    .retry_delay(&error, attempt, policy.max_retries)
            })
            .unwrap_or_else(|_| {
                log_event!(
                    true,
                    warn,
                    agent = agent.name(),
                    "the retry policy panicked: no retry"
                );
                None
            })
        } else {
            None
        }
        .map(|delay| delay.max(error.retry_after().unwrap_or_default()));
        // While the run stops, no retry starts, and an agent that failed
        // because of the stop (a nested run it ran was cancelled or timed
        // out) was interrupted. A failure of its own with no retry left is
        // the node's end, stop or not: the node ran to its own end.
        if let Some(why) = run.stop.check() {
            let caused_by_stop = matches!(
                error.root_cause(),
                OrchestrationError::Cancelled | OrchestrationError::Timeout(_)
            );
            if delay.is_some() || caused_by_stop {
                return Err(NodeFailure::Interrupted(why));
            }
        }
        let Some(delay) = delay else {
            return Err(NodeFailure::Failed(OrchestrationError::agent_failed(
                agent.name(),
                error,
                attempt,
            )));
        };
        attempt = attempt.saturating_add(1);
        run.recorder
            .retry_scheduled(step.step, attempt, delay, &error);
        log_event!(policy.log, info, agent = agent.name(), ?delay, %error, "retrying agent after a retryable failure");
        tokio::select! {
            biased;
            why = run.stop.stopped() => return Err(NodeFailure::Interrupted(why)),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// How a node (or one attempt) succeeded.
pub(crate) struct Success {
    pub(crate) output: AgentOutput,
    /// What the runs nested in its (last) attempt spent: already counted
    /// against the budgets as they spent it, so the run charges only what
    /// the output reports beyond it.
    pub(crate) nested_spent: Usage,
}

impl Success {
    /// What the step spent that was not counted as it ran: what its output
    /// reports beyond what its nested runs spent (they counted that).
    pub(crate) fn uncounted(&self) -> Usage {
        Usage::from_output(&self.output)
            .map(|reported| reported.beyond(&self.nested_spent))
            .unwrap_or_default()
    }
}

/// How one attempt ended, when it did not succeed.
enum AttemptFailure {
    Failed(OrchestrationError),
    Interrupted(Interruption),
}

/// Which attempt of which step, and when it starts.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    step: StepKey,
    number: u32,
    max: u32,
    started: tokio::time::Instant,
}

/// A step, as the run journals it (`step`) and as it stays the same when a
/// run resumes (`node` and `activation`: its idempotency key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepKey {
    /// The step's id in this run's journal.
    pub(crate) step: NodeId,
    /// The graph node it activates.
    pub(crate) node: NodeId,
    /// Which of the node's activations it is, from 1.
    pub(crate) activation: u32,
}

/// One attempt: recorded, in its scope, with panics contained, under the
/// attempt timeout and the run's stop conditions.
// Some bindings exist only to be logged.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
async fn run_attempt(
    run: &Arc<RunShared>,
    agent: &dyn Agent,
    input: AgentInput,
    origin: InputOrigin,
    policy: &NodePolicy<'_>,
    this: Attempt,
) -> Result<Success, AttemptFailure> {
    let Attempt {
        step,
        number: attempt,
        started,
        ..
    } = this;
    let node = step.step;
    let name = agent.name();
    if !run
        .recorder
        .attempt_started(node, attempt, this.max, started, || origin.source(&input))
    {
        return Err(AttemptFailure::Interrupted(Interruption::Cancelled));
    }
    let times_out_at = policy
        .attempt_timeout
        .and_then(|limit| started.checked_add(limit));
    let scope = AttemptScope {
        attempt: ParentAttempt {
            run: run.recorder.run_id(),
            node,
            attempt,
        },
        step,
        deadline: sooner(run.stop.deadline, times_out_at),
        run: Arc::clone(run) as Arc<dyn RunBooks>,
    };
    let span = AttemptSpan::new(name, attempt);
    let call = CatchUnwind::new(span.instrument(agent.execute(input)));
    let parent = scope.attempt;
    let outcome = bounded(
        scope::enter(scope, call),
        || run.stop_nested(parent),
        &run.stop,
        times_out_at,
    )
    .await;
    // The attempt is over: whatever it left running stops now.
    let _entered = span.enter();
    let ended = match outcome {
        Bounded::Done(Ok(Ok(mut output))) => {
            output.normalize();
            Ok(output)
        }
        Bounded::Done(Ok(Err(error))) => Err(AttemptFailure::Failed(error)),
        Bounded::Done(Err(panic)) => Err(AttemptFailure::Failed(OrchestrationError::AgentError(
            AgentError::new(format!("agent `{name}` panicked: {panic}")),
        ))),
        Bounded::TimedOut => {
            log_event!(
                policy.log,
                warn,
                agent = name,
                attempt,
                "agent attempt timed out"
            );
            Err(AttemptFailure::Failed(OrchestrationError::Timeout(
                format!(
                    "agent `{name}` attempt {attempt} exceeded its {:?} timeout",
                    policy.attempt_timeout.unwrap_or_default()
                ),
            )))
        }
        Bounded::Interrupted(why) => Err(AttemptFailure::Interrupted(why)),
    };
    let end = match &ended {
        Ok(output) => AttemptEnd::Succeeded(output),
        Err(AttemptFailure::Failed(error)) => {
            log_event!(policy.log, warn, agent = name, attempt, %error, "agent attempt failed");
            AttemptEnd::Failed(error)
        }
        Err(AttemptFailure::Interrupted(why)) => AttemptEnd::Interrupted(*why),
    };
    // The attempt is over: whatever it left running stops now — and is
    // waited for, a while, so that it has ended and has its records before
    // the attempt's end is recorded; then the tasks it spawned with the
    // context are aborted (one may have been about to start a nested run),
    // and awaited a while too — and a run nested in it, or a task spawned
    // in it, from here on starts stopped. So the journal has every nested
    // run's end before the end of the attempt it ran in.
    if let Some(left_running) = run.with_nested(node, attempt, NestedRuns::stop) {
        let _ = tokio::time::timeout(STOP_GRACE, left_running.wait()).await;
    }
    if let Some(tasks) = run.with_nested(node, attempt, NestedRuns::abort_tasks) {
        let _ = tokio::time::timeout(STOP_GRACE, tasks.wait()).await;
    }
    run.recorder.attempt_finished(node, attempt, end);
    let nested_spent = run
        .end_nested(node, attempt)
        .map(|nested| nested.spent.total())
        .unwrap_or_default();
    ended.map(|output| Success {
        output,
        nested_spent,
    })
}
