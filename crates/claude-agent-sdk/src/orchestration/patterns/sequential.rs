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

use std::sync::Arc;

use crate::orchestration::agent::Agent;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::driver::RunReport;
use crate::orchestration::engine::graph::Graph;
use crate::orchestration::engine::stop::interruption_error;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::orchestrator::{BaseOrchestrator, OrchestratorInput, OrchestratorOutput};
use crate::orchestration::patterns::{
    orchestrator_builders, orchestrator_impl, run_pattern, Flow, TraceOut,
};

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
        trace: TraceOut,
    ) -> Result<OrchestratorOutput> {
        let graph = Graph::chain(agents.len());
        let content = input.content.clone();
        run_pattern(
            &self.base,
            Flow::pattern(graph),
            Arc::new(agents),
            input,
            ctx,
            trace,
            |report| self.conclude(report, content),
        )
        .await
    }

    /// The output of a pipeline: the last agent's content and every output,
    /// or the first failure.
    fn conclude(&self, report: RunReport, input: String) -> Result<OrchestratorOutput> {
        if let Some(why) = report.interrupted {
            return Err(interruption_error(why, self.base.name(), report.time_limit));
        }
        // A budget (of a run around it: it has none of its own) stopped it.
        if let Some(stopped) = report.stopped {
            return Err(stopped);
        }
        if let Some((_, error)) = report.failures.into_iter().next() {
            return Err(error);
        }
        // `filter_map` (unlike `flatten`) collects in place: no second buffer.
        #[allow(clippy::filter_map_identity)]
        let outputs: Vec<_> = report
            .outputs
            .into_iter()
            .filter_map(|output| output)
            .collect();
        if outputs.len() != report.names.len() {
            return Err(OrchestrationError::OrchestratorFailed(
                "the pipeline ended before its last agent".into(),
            ));
        }
        let result = outputs
            .last()
            .map_or(input, |output| output.content.clone());
        Ok(OrchestratorOutput::new(result, outputs))
    }
}

orchestrator_impl!(SequentialOrchestrator);
