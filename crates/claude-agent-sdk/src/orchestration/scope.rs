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
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::orchestration::context::ExecutionContext;
use crate::orchestration::journal::ParentAttempt;

tokio::task_local! {
    static CURRENT: Arc<AttemptScope>;
}

/// What code running inside an attempt can reach.
#[derive(Debug)]
pub(crate) struct AttemptScope {
    /// The context of the run the attempt belongs to.
    pub(crate) ctx: ExecutionContext,
    /// Which attempt this is.
    pub(crate) attempt: ParentAttempt,
    /// Cancelled when the attempt must stop (the run's cancellation, the
    /// run's deadline, the attempt timeout) and when it has ended.
    pub(crate) stop: CancellationToken,
    /// When the attempt must be over at the latest, if it is bounded.
    pub(crate) deadline: Option<Instant>,
    /// The nested runs started inside the attempt and still running.
    pub(crate) children: TaskTracker,
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
        CURRENT.try_with(|scope| scope.ctx.clone()).ok()
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
