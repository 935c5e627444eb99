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
//! [`ExecutionContext::propagate`]) to carry the scope along.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::orchestration::context::ExecutionContext;
use crate::orchestration::journal::ParentAttempt;
use crate::orchestration::stop_token::StopToken;

tokio::task_local! {
    static CURRENT: Arc<AttemptScope>;
}

/// A run, as its attempts and the runs nested in them see it. A nested run
/// registers with the run of the attempt it starts in, so that a run closing
/// its books — also when its future is dropped, which cannot wait for
/// anything — closes those of the runs nested in it first, and nothing it
/// started writes to the journal afterwards.
pub(crate) trait RunBooks: Send + Sync {
    /// The run's context.
    fn context(&self) -> &ExecutionContext;
    /// The run's stop token.
    fn stop_token(&self) -> &StopToken;
    /// Notes `child`, a run started inside one of this run's attempts.
    fn adopt(&self, child: Weak<dyn RunBooks>);
    /// The runs nested in this one that are still alive.
    fn children(&self) -> Vec<Arc<dyn RunBooks>>;
    /// Closes this run's books (its own attempts and its last event) as cut
    /// short by `why`, unless they are closed already.
    fn close_interrupted(&self, why: crate::orchestration::journal::Interruption);
}

/// What code running inside an attempt can reach.
pub(crate) struct AttemptScope {
    /// Which attempt this is.
    pub(crate) attempt: ParentAttempt,
    /// When the attempt must be over at the latest, if it is bounded.
    pub(crate) deadline: Option<Instant>,
    /// The run the attempt belongs to: its context, its stop token (which
    /// the attempt's own derives from), and where nested runs register.
    pub(crate) run: Arc<dyn RunBooks>,
    /// The runs nested in the attempt. Made when the first one starts: most
    /// attempts never start one, and pay nothing for it.
    nested: Mutex<Nested>,
}

/// The runs nested in an attempt.
#[derive(Debug, Default)]
struct Nested {
    /// Cancelled when the attempt stops or ends: nested runs derive theirs from it.
    stop: Option<StopToken>,
    /// Counts the nested runs still running.
    children: Option<TaskTracker>,
    /// Whether the attempt has stopped or ended (a run nested later starts stopped).
    over: bool,
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
    pub(crate) fn new(
        attempt: ParentAttempt,
        deadline: Option<Instant>,
        run: Arc<dyn RunBooks>,
    ) -> Self {
        Self {
            attempt,
            deadline,
            run,
            nested: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Nested> {
        self.nested.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// For a run starting inside this attempt: the token its own stop token
    /// derives from (already cancelled when the attempt is over), and a
    /// token that counts the run among the attempt's children while it lives.
    pub(crate) fn nest(&self) -> (StopToken, TaskTrackerToken) {
        let mut nested = self.lock();
        let stop = nested
            .stop
            .get_or_insert_with(|| self.run.stop_token().child())
            .clone();
        if nested.over {
            stop.cancel();
        }
        let child = nested.children.get_or_insert_with(TaskTracker::new).token();
        (stop, child)
    }

    /// Tells the runs nested in this attempt to stop; returns what to wait on
    /// for them to finish stopping, if any is running.
    pub(crate) fn stop(&self) -> Option<TaskTracker> {
        let mut nested = self.lock();
        nested.over = true;
        if let Some(stop) = &nested.stop {
            stop.cancel();
        }
        let children = nested.children.clone()?;
        children.close();
        (!children.is_empty()).then_some(children)
    }
}

/// The scope of the attempt the caller runs in, if any.
pub(crate) fn current() -> Option<Arc<AttemptScope>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs `future` inside `scope`.
pub(crate) fn enter<F: Future>(
    scope: Arc<AttemptScope>,
    future: F,
) -> impl Future<Output = F::Output> {
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
    /// starts are nested in the caller's attempt (they stop with it). For
    /// futures handed to a `JoinSet` or another executor.
    pub fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
        let scope = current();
        async move {
            match scope {
                Some(scope) => CURRENT.scope(scope, future).await,
                None => future.await,
            }
        }
    }

    /// Spawns `future` as a tokio task that carries the caller's attempt
    /// scope (see [`propagate`](Self::propagate)).
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
        tokio::spawn(Self::propagate(future))
    }
}
