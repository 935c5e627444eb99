//! One agent, run on its own with the same policies as in any orchestration.

use super::driver::{self, RunPlan};
use super::graph::Graph;
use super::stop::interruption_error;
use super::walk::{Agents, Overrides};
use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::Result;

impl ExecutionContext {
    /// Runs one agent on `input` under this context's configuration — the
    /// same retries (retryable errors only, jittered backoff, retry-after
    /// hints), attempt timeout, run timeout, cancellation, panic containment
    /// and trace records as inside any orchestration — without building an
    /// orchestrator. The agent is borrowed, so it runs on the caller's task:
    /// an agent that blocks its thread past the run timeout holds the call
    /// until it returns (an owned agent in a `SequentialOrchestrator` is
    /// left behind at the deadline instead).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use claude_agent_sdk::orchestration::{
    ///     AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, OrchestrationError, SimpleAgent,
    /// };
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let calls = AtomicUsize::new(0);
    /// let flaky = SimpleAgent::new("flaky", "", move |input| {
    ///     if calls.fetch_add(1, Ordering::SeqCst) == 0 {
    ///         Err(OrchestrationError::transient("503 Service Unavailable"))
    ///     } else {
    ///         Ok(AgentOutput::new(input.content))
    ///     }
    /// });
    /// let ctx = ExecutionContext::new(ExecutionConfig::new().with_max_retries(2));
    /// let output = ctx.run_agent(&flaky, AgentInput::new("hello")).await?;
    /// assert_eq!(output.content, "hello");
    /// assert_eq!(ctx.get_trace().await.agent_executions.len(), 2);
    /// # Ok::<(), OrchestrationError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`AgentFailed`](crate::orchestration::OrchestrationError::AgentFailed)
    /// with the agent's last error as its cause,
    /// [`Cancelled`](crate::orchestration::OrchestrationError::Cancelled), or
    /// [`Timeout`](crate::orchestration::OrchestrationError::Timeout) when
    /// the run timeout passes; `InvalidConfig` for a configuration that
    /// cannot work.
    pub async fn run_agent(&self, agent: &dyn Agent, input: AgentInput) -> Result<AgentOutput> {
        run_one(
            agent,
            input,
            self,
            self.config(),
            "run_agent",
            Overrides::default(),
        )
        .await
    }
}

/// Runs `agent` alone under `ctx` with `config` and `overrides`.
pub(crate) async fn run_one(
    agent: &dyn Agent,
    input: AgentInput,
    ctx: &ExecutionContext,
    config: &ExecutionConfig,
    name: &str,
    overrides: Overrides,
) -> Result<AgentOutput> {
    config.validate()?;
    crate::orchestration::orchestrator::require_runtime()?;
    let plan = RunPlan {
        orchestrator: name,
        config,
        graph: Graph::chain(1),
        agents: Agents::Borrowed(agent),
        input,
        overrides,
        branching: None,
        budget: crate::orchestration::budget::RunBudget::unlimited(),
        reuse: Default::default(),
    };
    let (_, result) = driver::run(plan, ctx, |mut report| {
        if let Some(why) = report.interrupted {
            return Err(interruption_error(why, name, report.time_limit));
        }
        // A budget of a run around it was crossed: the agent did not run.
        if let Some(stopped) = report.stopped {
            return Err(stopped);
        }
        if let Some((_, error)) = report.failures.pop() {
            return Err(error);
        }
        report.outputs.pop().flatten().ok_or_else(|| {
            crate::orchestration::OrchestrationError::OrchestratorFailed(
                "the agent's run ended without an output".into(),
            )
        })
    })
    .await;
    result
}
