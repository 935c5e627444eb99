//! Parallel orchestration: a fan-out of agents on the same input, joined in order.
//!
//! ```text
//!         → Agent A ─┐
//! Input ─┼→ Agent B ─┼→ Aggregator → Output
//!         → Agent C ─┘
//! ```
//!
//! Each agent runs as its own tokio task, so CPU-heavy agents use every core.
//! The driver keeps exactly `parallel_limit` tasks alive while there is work:
//! it spawns the next agent only when one finishes, so at no moment do more than
//! `parallel_limit` agents run, and a fan-out of 100,000 agents holds
//! `parallel_limit` tasks in memory rather than 100,000.

use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::task::JoinSet;

use crate::orchestration::agent::{Agent, AgentError, AgentInput, AgentOutput};
use crate::orchestration::agent_run::{run_agent, AgentPolicy, Interruption, RunError};
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::orchestrator::{
    AgentFailure, BaseOrchestrator, OrchestratorInput, OrchestratorOutput,
};
use crate::orchestration::patterns::{orchestrator_builders, orchestrator_impl};

/// Runs agents concurrently on the same input and aggregates their outputs.
///
/// Every agent gets the run's content, context and metadata. `agent_outputs`
/// follow the order in which the agents were given, whatever order they finish
/// in, and `result` reads `Parallel execution results:` followed by one line
/// `N. <agent name>: <content>` per agent in that order. Every agent runs to its
/// end whatever its siblings do.
///
/// With the default [`JoinPolicy::All`], a run where some agents failed ends in
/// [`PartialSuccess`](OrchestrationError::PartialSuccess) with the number that
/// failed, and one where all failed in [`AgentFailed`](OrchestrationError::AgentFailed)
/// naming the first failed agent in order. A tolerant policy returns `Ok` instead,
/// listing the failures in [`OrchestratorOutput::failures`].
///
/// ```
/// use claude_agent_sdk::orchestration::{
///     Agent, AgentOutput, Orchestrator, OrchestratorInput, ParallelOrchestrator, SimpleAgent,
/// };
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let analyzer = |angle: &'static str| -> Box<dyn Agent> {
///     Box::new(SimpleAgent::new(angle, "", move |i| {
///         Ok(AgentOutput::new(format!("{angle} view of {}", i.content)))
///     }))
/// };
/// let output = ParallelOrchestrator::new()
///     .with_max_retries(2)
///     .with_parallel_limit(5)
///     .orchestrate(vec![analyzer("technical"), analyzer("business")], OrchestratorInput::new("X"))
///     .await?;
/// assert_eq!(
///     output.result,
///     "Parallel execution results:\n1. technical: technical view of X\n2. business: business view of X"
/// );
/// # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ParallelOrchestrator {
    base: BaseOrchestrator,
}

impl Default for ParallelOrchestrator {
    fn default() -> Self {
        Self::new()
    }
}

/// What every task of one run shares, behind one `Arc`.
struct Shared {
    input: Arc<AgentInput>,
    ctx: ExecutionContext,
    policy: AgentPolicy,
}

/// An agent that has finished, with how its run ended.
type Finished = (Box<dyn Agent>, std::result::Result<AgentOutput, RunError>);

impl ParallelOrchestrator {
    /// A parallel orchestrator with the default configuration.
    #[must_use]
    pub fn new() -> Self {
        Self {
            base: BaseOrchestrator::new(
                "ParallelOrchestrator",
                "Runs agents concurrently on the same input and aggregates their outputs",
            ),
        }
    }

    orchestrator_builders!();

    /// Sets how many agents run at once (shorthand for the config's).
    #[must_use]
    pub fn with_parallel_limit(mut self, parallel_limit: usize) -> Self {
        self.base.config_mut().parallel_limit = parallel_limit;
        self
    }

    /// Sets when the run succeeds although some agents failed (shorthand for the config's).
    #[must_use]
    pub fn with_join_policy(mut self, policy: JoinPolicy) -> Self {
        self.base.config_mut().join_policy = policy;
        self
    }

    async fn run(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput> {
        let count = agents.len();
        self.base
            .run("parallel", count, ctx, |policy| async move {
                let config = self.base.config();
                if config.parallel_limit == 0 {
                    return Err(OrchestrationError::InvalidConfig(
                        "parallel_limit must be at least 1".into(),
                    ));
                }
                config.join_policy.validate(count)?;
                let shared = Arc::new(Shared {
                    input: Arc::new(input.into()),
                    ctx: ctx.clone(),
                    policy,
                });
                let (slots, interrupted) = fan_out(agents, &shared, config.parallel_limit).await;
                match interrupted {
                    Some(interruption) => Err(self.base.interruption_error(interruption)),
                    None => join(slots, config.join_policy),
                }
            })
            .await
    }
}

orchestrator_impl!(ParallelOrchestrator);

/// Runs every agent, at most `limit` at a time, and collects how each ended by
/// its position. Stops starting agents once the run is cancelled or out of time.
async fn fan_out(
    agents: Vec<Box<dyn Agent>>,
    shared: &Arc<Shared>,
    limit: usize,
) -> (Vec<Option<Finished>>, Option<Interruption>) {
    let mut slots: Vec<Option<Finished>> = Vec::new();
    slots.resize_with(agents.len(), || None);
    let mut tasks = JoinSet::new();
    let mut waiting = agents.into_iter().enumerate();
    let mut interrupted = None;
    loop {
        while tasks.len() < limit && interrupted.is_none() && !shared.ctx.is_cancelled() {
            let Some((index, agent)) = waiting.next() else {
                break;
            };
            let shared = Arc::clone(shared);
            tasks.spawn(async move {
                let run = run_agent(agent.as_ref(), &shared.input, &shared.ctx, &shared.policy);
                // Agent panics are contained per attempt; this guards the rest.
                let result = AssertUnwindSafe(run).catch_unwind().await;
                (index, agent, result)
            });
        }
        match tasks.join_next().await {
            None => break,
            Some(Ok((index, agent, result))) => {
                let result = result.unwrap_or_else(|_| {
                    Err(RunError::Failed(OrchestrationError::AgentError(
                        AgentError::new("the agent's task panicked outside its attempts"),
                    )))
                });
                if let Err(RunError::Interrupted(why)) = &result {
                    interrupted.get_or_insert(*why);
                }
                slots[index] = Some((agent, result));
            }
            // Only a runtime shutting down aborts our tasks; the slot stays empty
            // and `join` reports the agent as failed.
            Some(Err(_)) => {}
        }
    }
    if interrupted.is_none() && shared.ctx.is_cancelled() {
        interrupted = Some(Interruption::Cancelled);
    }
    (slots, interrupted)
}

/// Aggregates finished agents in order and applies the join policy.
fn join(slots: Vec<Option<Finished>>, policy: JoinPolicy) -> Result<OrchestratorOutput> {
    let count = slots.len();
    let mut result = String::from("Parallel execution results:");
    let mut outputs = Vec::with_capacity(count);
    let mut failures = Vec::new();
    for (index, slot) in slots.into_iter().enumerate() {
        let position = index + 1;
        match slot {
            Some((agent, Ok(output))) => {
                let _ = write!(result, "\n{position}. {}: {}", agent.name(), output.content);
                outputs.push(output);
            }
            Some((agent, Err(error))) => {
                let error = match error {
                    RunError::Failed(error) => error.to_string(),
                    RunError::Interrupted(_) => "interrupted".to_owned(),
                };
                let _ = write!(result, "\n{position}. {}: [failed] {error}", agent.name());
                failures.push(AgentFailure {
                    index,
                    agent_name: agent.name().to_owned(),
                    error,
                });
            }
            None => {
                let error = "the agent's task ended without a result".to_owned();
                let _ = write!(
                    result,
                    "\n{position}. <agent #{position}>: [failed] {error}"
                );
                failures.push(AgentFailure {
                    index,
                    agent_name: format!("<agent #{position}>"),
                    error,
                });
            }
        }
    }
    if policy.is_satisfied(outputs.len(), count) {
        return Ok(OrchestratorOutput::new(result, outputs).with_failures(failures));
    }
    match failures.into_iter().next() {
        Some(first) if outputs.is_empty() => Err(OrchestrationError::AgentFailed(
            first.agent_name,
            first.error,
        )),
        _ => Err(OrchestrationError::PartialSuccess(count - outputs.len())),
    }
}
