//! The attempt an agent's code runs in, reachable without being passed around.
//!
//! While an attempt runs, its future is polled inside a task-local
//! [`AttemptScope`]: the run's [`ExecutionContext`] (what
//! [`ExecutionContext::current`] returns), which attempt this is, the token
//! that tells it to stop, its deadline, and the nested runs it started. A run
//! started inside an attempt — an [`OrchestratorAgent`](super::OrchestratorAgent)'s,
//! a registry call's, any `orchestrate` call an agent makes — reads the scope
//! to become that attempt's child: it inherits the deadline and the stop
//! token as values, names its parent in the journal, and registers itself so
//! that the attempt, when it has to stop, waits for it to stop first.
//!
//! A task an agent spawns does not inherit task-locals; spawn it with
//! [`ExecutionContext::spawn`] (or wrap its future in
//! [`ExecutionContext::propagate`]) to carry the scope along. A task spawned
//! with the context belongs to the attempt: once the attempt is over (it
//! ended, or it stopped and the runs nested in it had their grace to stop
//! too), the task is aborted if it still runs, and awaited — so when a run
//! returns, no task its agents spawned with the context is still running,
//! or writes to its journal.

use std::future::Future;
use std::sync::{Arc, Weak};

use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::orchestration::budget::{Spending, Tally, Within};
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::journal::ParentAttempt;
use crate::orchestration::stop_token::StopToken;
use crate::orchestration::telemetry::in_current_span;

tokio::task_local! {
    static CURRENT: AttemptScope;
}

/// A run, as its attempts and the runs nested in them see it. A nested run
/// registers with the run of the attempt it starts in, so that a run closing
/// its books — also when its future is dropped, which cannot wait for
/// anything — closes those of the runs nested in it first, and nothing it
/// started writes to the journal afterwards.
pub(crate) trait RunBooks: Send + Sync {
    /// The run's context.
    fn context(&self) -> &ExecutionContext;
    /// What a run starting inside `attempt` takes from it (see [`Nesting`]).
    fn nest(&self, attempt: ParentAttempt) -> Nesting;
    /// Tells the runs nested in `attempt` to stop; returns what to wait on
    /// for them to finish stopping, if any is running.
    fn stop_nested(&self, attempt: ParentAttempt) -> Option<TaskTracker>;
    /// Notes `child`, a run started inside one of this run's attempts.
    fn adopt(&self, child: Weak<dyn RunBooks>);
    /// What a task spawned with the context inside `attempt` holds while it
    /// lives (see [`ExecutionContext::spawn`]).
    fn task_token(&self, attempt: ParentAttempt) -> TaskTrackerToken;
    /// Notes `task`, spawned with the context inside `attempt`: it is
    /// aborted once the attempt is over (at once, if it is over already).
    fn spawned(&self, attempt: ParentAttempt, task: AbortHandle);
    /// The runs nested in this one that are still alive.
    fn children(&self) -> Vec<Arc<dyn RunBooks>>;
    /// Whether this run's books are closed (and so those of every run
    /// nested in it).
    fn is_closed(&self) -> bool;
    /// Closes this run's books (its own attempts and its last event) as cut
    /// short by `why`, unless they are closed already.
    fn close_interrupted(&self, why: crate::orchestration::journal::Interruption);
    /// What the idempotency keys of this run's attempts start with: the id
    /// of the run first started (a resumed run keeps it), or for a nested
    /// run the key of the attempt it runs in.
    fn key_prefix(&self) -> &str;
    /// Which activation of its node each step this run is nested in is,
    /// outermost first (empty for a run not nested in an attempt): with the
    /// activation of a step of its own, where that step stands among all the
    /// passes of the loops and maps around it.
    fn enclosing_activations(&self) -> &[u32];
    /// The most bytes of each text this run's records keep, when its
    /// journal cuts them: a run nested in it keeps no more.
    fn text_limit(&self) -> Option<usize>;
}

/// What a run nested in an attempt takes from it.
pub(crate) struct Nesting {
    /// The token its stop token derives from (already cancelled when the
    /// attempt is over).
    pub(crate) stop: StopToken,
    /// Counts it among the attempt's nested runs while it lives.
    pub(crate) alive: TaskTrackerToken,
    /// Where what it spends counts too: the attempt, and the attempt's run.
    pub(crate) within: Within,
}

/// What code running inside an attempt can reach: which attempt it is, its
/// deadline, and its run. A small value, cloned into the task-local of each
/// attempt (and of each task spawned with the context).
#[derive(Clone)]
pub(crate) struct AttemptScope {
    /// Which attempt this is.
    pub(crate) attempt: ParentAttempt,
    /// The step the attempt belongs to (for its idempotency key).
    pub(crate) step: crate::orchestration::executor::StepKey,
    /// When the attempt must be over at the latest, if it is bounded.
    pub(crate) deadline: Option<Instant>,
    /// The run the attempt belongs to: its context, and where nested runs
    /// register.
    pub(crate) run: Arc<dyn RunBooks>,
}

impl std::fmt::Debug for AttemptScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptScope")
            .field("attempt", &self.attempt)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl AttemptScope {
    /// The activations of the steps this attempt's step is nested in, and
    /// then its own, outermost first (see [`RunBooks::enclosing_activations`]).
    pub(crate) fn activations(&self) -> Vec<u32> {
        let mut activations = self.run.enclosing_activations().to_vec();
        activations.push(self.step.activation);
        activations
    }

    /// See [`RunBooks::nest`].
    pub(crate) fn nest(&self) -> Nesting {
        self.run.nest(self.attempt)
    }

    /// The attempt's idempotency key: `{prefix}/{node}.{activation}/{attempt}`
    /// (see [`ExecutionContext::idempotency_key`]).
    pub(crate) fn idempotency_key(&self) -> String {
        format!(
            "{}/{}.{}/{}",
            self.run.key_prefix(),
            self.step.node.0,
            self.step.activation,
            self.attempt.attempt
        )
    }
}

/// The runs nested in one attempt. Made when the first one starts: most
/// attempts never start one, and pay nothing for it.
#[derive(Debug, Default)]
pub(crate) struct NestedRuns {
    /// Cancelled when the attempt stops or ends: nested runs derive theirs from it.
    stop: Option<StopToken>,
    /// Counts the nested runs still running.
    children: Option<TaskTracker>,
    /// Whether the attempt has stopped or ended (a run nested later starts stopped).
    pub(crate) over: bool,
    /// What the nested runs spent, counted as they spend.
    pub(crate) spent: Tally,
    /// The tasks spawned with the context inside the attempt (see
    /// [`ExecutionContext::spawn`]), to abort when it is over.
    tasks: Vec<AbortHandle>,
    /// Counts those tasks while they live.
    tasks_alive: Option<TaskTracker>,
}

impl NestedRuns {
    /// See [`RunBooks::nest`]; `run_token` is the run's own stop token, and
    /// `spending` the run's spending.
    pub(crate) fn nest(&mut self, run_token: &StopToken, spending: &Arc<Spending>) -> Nesting {
        let stop = self.stop.get_or_insert_with(|| run_token.child()).clone();
        if self.over {
            stop.cancel();
        }
        Nesting {
            stop,
            alive: self.children.get_or_insert_with(TaskTracker::new).token(),
            within: Within {
                run: Arc::clone(spending),
                attempt: self.spent.clone(),
            },
        }
    }

    /// See [`RunBooks::stop_nested`].
    pub(crate) fn stop(&mut self) -> Option<TaskTracker> {
        self.over = true;
        if let Some(stop) = &self.stop {
            stop.cancel();
        }
        let children = self.children.clone()?;
        children.close();
        (!children.is_empty()).then_some(children)
    }

    /// See [`RunBooks::task_token`].
    pub(crate) fn task_token(&mut self) -> TaskTrackerToken {
        self.tasks_alive
            .get_or_insert_with(TaskTracker::new)
            .token()
    }

    /// Notes `task`, spawned with the context inside the attempt; aborts it
    /// at once when the attempt is over already.
    pub(crate) fn spawned(&mut self, task: AbortHandle) {
        if self.over {
            task.abort();
            return;
        }
        // Forget tasks that have ended, now and then: an attempt may spawn many.
        if self.tasks.len() >= 16 && self.tasks.len().is_power_of_two() {
            self.tasks.retain(|task| !task.is_finished());
        }
        self.tasks.push(task);
    }

    /// Aborts the tasks spawned inside the attempt; returns what to wait on
    /// for them to be gone, if any is still there.
    pub(crate) fn abort_tasks(&mut self) -> Option<TaskTracker> {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        let alive = self.tasks_alive.clone()?;
        alive.close();
        (!alive.is_empty()).then_some(alive)
    }
}

impl Drop for NestedRuns {
    /// The attempt's bookkeeping goes (its attempt was dropped before it
    /// could abort them): the tasks it spawned go with it.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The scope of the attempt the caller runs in, if any.
pub(crate) fn current() -> Option<AttemptScope> {
    CURRENT.try_with(AttemptScope::clone).ok()
}

/// The deadline of the attempt the caller runs in, if it runs in a bounded one.
#[cfg_attr(not(feature = "local"), allow(dead_code))]
pub(crate) fn current_deadline() -> Option<Instant> {
    CURRENT.try_with(|scope| scope.deadline).ok().flatten()
}

/// Runs `future` inside `scope`.
pub(crate) fn enter<F: Future>(scope: AttemptScope, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(scope, future)
}

impl ExecutionContext {
    /// The context the calling agent runs under, if it runs under one.
    ///
    /// Inside [`Agent::execute`](super::Agent::execute) called by an orchestrator or
    /// the registry this is always `Some` — also inside tasks spawned with
    /// [`ExecutionContext::spawn`], but not in tasks spawned with plain
    /// `tokio::spawn`, which do not inherit it.
    #[must_use]
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|scope| scope.run.context().clone()).ok()
    }

    /// `future`, carrying the caller's attempt scope (if any) along: inside it
    /// [`ExecutionContext::current`] answers as it does here, and runs it
    /// starts are nested in the caller's attempt (they stop with it); with
    /// the `tracing` feature, it is polled inside the caller's current span
    /// (an attempt's span nests the spans it opens). For futures handed to a
    /// `JoinSet` or another executor.
    pub fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
        let scope = current();
        in_current_span(async move {
            match scope {
                Some(scope) => CURRENT.scope(scope, future).await,
                None => future.await,
            }
        })
    }

    /// Spawns `future` as a tokio task that carries the caller's attempt
    /// scope and `tracing` span (see [`propagate`](Self::propagate)) and, inside an attempt,
    /// belongs to it: once the attempt is over (it ended; or it timed out or
    /// was cancelled, and the runs nested in it — in the task too — had
    /// their grace to stop; or its run was dropped), the task is aborted if
    /// it still runs (its handle then gives a cancelled `JoinError`), and
    /// the attempt waits for it to be gone. An agent that wants a task's
    /// result awaits its handle before returning. (A future wrapped with
    /// `propagate` and handed to plain `tokio::spawn` is the caller's to
    /// stop.)
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::{
    ///     Agent, AgentOutput, ExecutionConfig, ExecutionContext, SimpleAgent,
    /// };
    /// # use claude_agent_sdk::orchestration::AgentInput;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// struct Spawner;
    /// #[async_trait::async_trait]
    /// impl Agent for Spawner {
    ///     fn name(&self) -> &str { "spawner" }
    ///     fn description(&self) -> &str { "works in a task of its own" }
    ///     async fn execute(&self, _input: AgentInput) -> claude_agent_sdk::orchestration::Result<AgentOutput> {
    ///         let seen = ExecutionContext::spawn(async { ExecutionContext::current().is_some() })
    ///             .await
    ///             .unwrap_or(false);
    ///         Ok(AgentOutput::new(seen.to_string()))
    ///     }
    /// }
    /// let ctx = ExecutionContext::new(ExecutionConfig::new());
    /// let output = ctx.run_agent(&Spawner, AgentInput::new("x")).await?;
    /// assert_eq!(output.content, "true");
    /// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
    /// # }).unwrap();
    /// ```
    pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(scope) = current() else {
            return tokio::spawn(in_current_span(future));
        };
        let (run, attempt) = (Arc::clone(&scope.run), scope.attempt);
        let alive = run.task_token(attempt);
        let task = tokio::spawn(in_current_span(CURRENT.scope(scope, async move {
            let _alive = alive;
            future.await
        })));
        run.spawned(attempt, task.abort_handle());
        task
    }
}
