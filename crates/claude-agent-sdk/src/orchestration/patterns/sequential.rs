//! Sequential orchestration: a pipeline where each agent works on the previous
//! agent's output.
//!
//! ```text
//! Input → Agent A → Agent B → Agent C → Output
//! ```
//!
//! Agent k+1 receives agent k's output content, together with the run input's
//! context and metadata. The first agent that fails for good (after its retries)
//! ends the run; later agents never run.

use crate::orchestration::agent::{Agent, AgentOutput};
use crate::orchestration::agent_run::Runner;
use crate::orchestration::context::{self, ExecutionContext};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::orchestrator::{BaseOrchestrator, OrchestratorInput, OrchestratorOutput};
use crate::orchestration::patterns::{orchestrator_builders, orchestrator_impl};
use crate::orchestration::recorded::Shared;
use crate::orchestration::step_input::StepInput;

/// Runs agents one after another, each on the previous one's output.
///
/// `result` is the last agent's content and `agent_outputs` holds every agent's
/// output in order. Errors: [`AgentFailed`](crate::orchestration::OrchestrationError::AgentFailed)
/// naming the first agent that failed for good (a timeout included),
/// [`Timeout`](crate::orchestration::OrchestrationError::Timeout) when the run timeout
/// passes, [`Cancelled`](crate::orchestration::OrchestrationError::Cancelled), and
/// [`InvalidConfig`](crate::orchestration::OrchestrationError::InvalidConfig) for an
/// empty agent list or a bad configuration.
///
/// ```
/// use claude_agent_sdk::orchestration::{
///     Agent, AgentOutput, Orchestrator, OrchestratorInput, SequentialOrchestrator, SimpleAgent,
/// };
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let agents: Vec<Box<dyn Agent>> = vec![
///     Box::new(SimpleAgent::new("research", "", |i| Ok(AgentOutput::new(format!("notes on {}", i.content))))),
///     Box::new(SimpleAgent::new("write", "", |i| Ok(AgentOutput::new(format!("article from {}", i.content))))),
/// ];
/// let output = SequentialOrchestrator::new()
///     .with_max_retries(3)
///     .orchestrate(agents, OrchestratorInput::new("tides"))
///     .await?;
/// assert_eq!(output.result, "article from notes on tides");
/// assert_eq!(output.agent_outputs.len(), 2);
/// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SequentialOrchestrator {
    base: BaseOrchestrator,
}

impl Default for SequentialOrchestrator {
    fn default() -> Self {
        Self::new()
    }
}

impl SequentialOrchestrator {
    /// A sequential orchestrator with the default configuration.
    #[must_use]
    pub fn new() -> Self {
        Self {
            base: BaseOrchestrator::new(
                "SequentialOrchestrator",
                "Runs agents one after another, each on the previous agent's output",
            ),
        }
    }

    orchestrator_builders!();

    async fn run(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        let count = agents.len();
        self.base
            .run("sequential", count, ctx, |policy| async move {
                let OrchestratorInput {
                    content,
                    context,
                    metadata,
                } = input;
                let (context, metadata) = (Shared::new(context), Shared::new(metadata));
                if policy.record {
                    ctx.reserve_records(count);
                }
                let mut outputs: Vec<AgentOutput> = Vec::with_capacity(count);
                // One runner for the whole pipeline, in one task-local scope:
                // nothing is awaited between two steps, so the end of one step's
                // record is the start of the next (one clock read per step).
                let mut runner = Runner::pipeline(ctx, &policy);
                let scope = runner.scope();
                let steps = async {
                    for agent in &agents {
                        // A step's input is borrowed from the previous output,
                        // which the pipeline keeps anyway: the agent gets its own
                        // copy, and the step's records share the previous
                        // record's output text.
                        let previous = outputs.last().map_or(&content, |output| &output.content);
                        runner.next_step();
                        let step = StepInput::new(previous, &context, &metadata);
                        let output = runner
                            .run(agent.as_ref(), &step)
                            .await
                            .map_err(|error| self.base.run_error(agent.name(), error))?;
                        outputs.push(output);
                    }
                    Ok::<_, OrchestrationError>(())
                };
                context::scope(scope, steps).await?;
                let result = outputs
                    .last()
                    .map_or(content, |output| output.content.clone());
                Ok(OrchestratorOutput::new(result, outputs))
            })
            .await
    }
}

orchestrator_impl!(SequentialOrchestrator);
