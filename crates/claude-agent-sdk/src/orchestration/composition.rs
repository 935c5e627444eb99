//! [`OrchestratorAgent`]: an orchestration that is itself an agent.
//!
//! Wrapping an orchestrator together with its agents as an [`Agent`] lets a
//! pipeline step be a parallel fan-out, or a fan-out branch be a pipeline — the
//! "sequential first, then parallel" shape of mixed dependencies:
//!
//! ```text
//! Input → Researcher → ┌ Technical review ┐ → Editor → Output
//!                      ├ Business review  ┤
//!                      └ Security review  ┘
//! ```
//!
//! The nested run shares the outer run's state and cancellation (through
//! [`ExecutionContext::child`]) and keeps its own trace, which lands in the outer
//! attempt's [`AgentExecution::nested`](super::AgentExecution::nested).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::context::{self, ExecutionContext};
use crate::orchestration::errors::Result;
use crate::orchestration::orchestrator::Orchestrator;

/// An orchestrator and its agents, run as one agent.
///
/// The output's `content` is the nested run's `result`; its `data` holds the
/// nested `agent_outputs` and `failures`; its confidence is the mean confidence
/// of the nested outputs, scaled by the share of agents that succeeded. A nested
/// run that fails fails this agent with the nested error (so a retryable
/// `AgentFailed` reruns the whole nested orchestration).
///
/// ```
/// use claude_agent_sdk::orchestration::{
///     Agent, AgentOutput, Orchestrator, OrchestratorAgent, OrchestratorInput,
///     ParallelOrchestrator, SequentialOrchestrator, SimpleAgent,
/// };
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let step = |name: &'static str| -> Box<dyn Agent> {
///     Box::new(SimpleAgent::new(name, "", move |i| Ok(AgentOutput::new(format!("{name}({})", i.content)))))
/// };
/// let reviews = OrchestratorAgent::new(
///     "reviews",
///     "Three reviews at once",
///     ParallelOrchestrator::new(),
///     vec![step("tech"), step("biz")],
/// );
/// let pipeline: Vec<Box<dyn Agent>> = vec![step("research"), Box::new(reviews)];
/// let output = SequentialOrchestrator::new()
///     .orchestrate(pipeline, OrchestratorInput::new("X"))
///     .await?;
/// assert!(output.result.contains("1. tech: tech(research(X))"));
/// let nested = output.execution_trace.agent_executions[1].nested.as_ref().unwrap();
/// assert_eq!(nested.agent_executions.len(), 2);
/// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
/// # }).unwrap();
/// ```
pub struct OrchestratorAgent<O> {
    name: String,
    description: String,
    orchestrator: O,
    agents: Vec<Arc<dyn Agent>>,
}

impl<O: Orchestrator> OrchestratorAgent<O> {
    /// Wraps `orchestrator` running `agents` as an agent called `name`.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        orchestrator: O,
        agents: Vec<Box<dyn Agent>>,
    ) -> Self {
        Self::from_shared(
            name,
            description,
            orchestrator,
            agents.into_iter().map(Arc::from).collect(),
        )
    }

    /// As [`new`](Self::new), with agents that are shared elsewhere too.
    #[must_use]
    pub fn from_shared(
        name: impl Into<String>,
        description: impl Into<String>,
        orchestrator: O,
        agents: Vec<Arc<dyn Agent>>,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            orchestrator,
            agents,
        }
    }

    /// The wrapped orchestrator.
    #[must_use]
    pub fn orchestrator(&self) -> &O {
        &self.orchestrator
    }

    /// The agents the nested run gets.
    #[must_use]
    pub fn agents(&self) -> &[Arc<dyn Agent>] {
        &self.agents
    }
}

impl<O> fmt::Debug for OrchestratorAgent<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorAgent")
            .field("name", &self.name)
            .field(
                "agents",
                &self.agents.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Hands a nested run's trace to the attempt running it when dropped, so the
/// trace survives an attempt that is cut short (its future dropped).
struct AttachTraceOnDrop(ExecutionContext);

impl Drop for AttachTraceOnDrop {
    fn drop(&mut self) {
        // A run dropped half-way never closed its trace.
        if self.0.get_trace_end().is_none() {
            self.0.finish_trace();
        }
        context::attach_nested_trace(self.0.take_trace());
    }
}

#[async_trait]
impl<O: Orchestrator> Agent for OrchestratorAgent<O> {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let config = self.orchestrator.config().clone();
        let ctx = match ExecutionContext::current() {
            Some(parent) => parent.child(config),
            None => ExecutionContext::new(config),
        };
        let agents = self
            .agents
            .iter()
            .map(|agent| Box::new(Arc::clone(agent)) as Box<dyn Agent>)
            .collect();
        // The nested trace is kept whether the nested run succeeds, fails, or is
        // dropped half-way by a cancellation or a deadline.
        let nested = AttachTraceOnDrop(ctx);
        let result = self
            .orchestrator
            .orchestrate_with_context(agents, input.into(), &nested.0)
            .await;
        drop(nested);
        let output = result?;

        let total = output.agent_outputs.len() + output.failures.len();
        let mean = if output.agent_outputs.is_empty() {
            0.0
        } else {
            output
                .agent_outputs
                .iter()
                .map(|o| o.confidence)
                .sum::<f64>()
                / output.agent_outputs.len() as f64
        };
        let share = if total == 0 {
            0.0
        } else {
            output.agent_outputs.len() as f64 / total as f64
        };
        let mut data = serde_json::Map::new();
        for (key, value) in [
            ("agent_outputs", serde_json::to_value(&output.agent_outputs)),
            ("failures", serde_json::to_value(&output.failures)),
        ] {
            // Plain data with string keys: serializing it cannot fail.
            data.insert(key.to_owned(), value.unwrap_or_default());
        }
        Ok(AgentOutput::new(output.result)
            .with_confidence(mean * share)
            .with_data(serde_json::Value::Object(data)))
    }
}
