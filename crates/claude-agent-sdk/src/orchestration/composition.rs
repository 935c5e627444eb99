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
//! The nested run shares the outer run's state (through
//! [`ExecutionContext::child`]), inherits the outer attempt's deadline and
//! cancellation, and keeps its own trace, which lands in the outer attempt's
//! [`AgentExecution::nested`](super::AgentExecution::nested). It runs on a
//! task of its own, so nesting a thousand levels deep costs a thousand small
//! tasks rather than a thousand stack frames; when the outer attempt stops,
//! it waits for the nested run to stop first.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::task::AbortOnDropHandle;

use crate::orchestration::agent::{Agent, AgentError, AgentInput, AgentOutput};
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::orchestrator::Orchestrator;
use crate::orchestration::usage::Usage;

/// An orchestrator and its agents, run as one agent.
///
/// The output's `content` is the nested run's `result`; its `data` holds the
/// nested `agent_outputs` (without their own `data`, which the nested trace
/// keeps, so that nesting never builds deep values), `failures`, and — when
/// they reported any — under `"usage"` the [`Usage`] the nested outputs
/// reported, summed: what the
/// nested run spent counts against an enclosing run's budget; its confidence is the mean confidence
/// of the nested outputs, scaled by the share of agents that succeeded. A nested
/// run that fails fails this agent with the nested error, whose cause decides
/// whether a retry reruns the nested orchestration (a permanent failure deep
/// inside stays permanent).
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
    orchestrator: Arc<O>,
    agents: Vec<Arc<dyn Agent>>,
}

impl<O: Orchestrator + 'static> OrchestratorAgent<O> {
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
            orchestrator: Arc::new(orchestrator),
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

#[async_trait]
impl<O: Orchestrator + 'static> Agent for OrchestratorAgent<O> {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let config = self.orchestrator.config().clone();
        let ctx = match ExecutionContext::current() {
            // A resumed run's nested graph reuses what it finished before
            // its run paused.
            Some(parent) => {
                let finished = crate::orchestration::scope::current()
                    .map(|scope| {
                        parent.take_paused_inside((scope.step.node, scope.step.activation))
                    })
                    .unwrap_or_default();
                parent.child(config).finished_before(finished)
            }
            None => ExecutionContext::new(config),
        };
        let agents: Vec<Box<dyn Agent>> = self
            .agents
            .iter()
            .map(|agent| Box::new(Arc::clone(agent)) as Box<dyn Agent>)
            .collect();
        let orchestrator = Arc::clone(&self.orchestrator);
        // A task of its own (carrying this attempt's scope): polling a nested
        // run never deepens this task's stack.
        // Aborted if the attempt running it is dropped.
        let nested = AbortOnDropHandle::new(ExecutionContext::spawn(async move {
            orchestrator
                .orchestrate_nested(agents, input.into(), &ctx)
                .await
        }));
        let output = match nested.await {
            Ok(result) => result?,
            Err(error) if error.is_panic() => {
                return Err(OrchestrationError::AgentError(AgentError::new(
                    "the nested orchestration panicked",
                )))
            }
            Err(_) => return Err(OrchestrationError::Cancelled),
        };

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
        // What the nested agents spent, as this agent's own usage: an
        // enclosing run counts it against its budget (a nested
        // `OrchestratorAgent` reports its own total the same way).
        let usage = output
            .agent_outputs
            .iter()
            .filter_map(Usage::from_output)
            .sum::<Usage>();
        // The nested outputs without their own `data`, which the nested trace
        // keeps: one level of summary, so nesting never builds deep values.
        let summaries: Vec<AgentOutput> = output
            .agent_outputs
            .into_iter()
            .map(|output| AgentOutput {
                data: serde_json::Value::Null,
                ..output
            })
            .collect();
        let mut data = serde_json::Map::new();
        for (key, value) in [
            ("agent_outputs", serde_json::to_value(&summaries)),
            ("failures", serde_json::to_value(&output.failures)),
        ] {
            // Plain data with string keys: serializing it cannot fail.
            data.insert(key.to_owned(), value.unwrap_or_default());
        }
        if !usage.is_empty() {
            let usage = serde_json::to_value(usage).unwrap_or_default();
            data.insert(Usage::DATA_KEY.to_owned(), usage);
        }
        Ok(AgentOutput::new(output.result)
            .with_confidence(mean * share)
            .with_data(serde_json::Value::Object(data)))
    }
}
