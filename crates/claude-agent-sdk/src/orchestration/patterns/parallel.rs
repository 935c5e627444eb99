//! Parallel orchestration: a fan-out of agents on the same input, joined in order.
//!
//! ```text
//!         → Agent A ─┐
//! Input ─┼→ Agent B ─┼→ Aggregator → Output
//!         → Agent C ─┘
//! ```
//!
//! The run spawns `parallel_limit` worker tasks (fewer when there are fewer
//! agents) on the runtime, so CPU-heavy agents use every core. Each worker takes
//! the next agent that has not started, runs it to its end, and takes the next,
//! until none is left: at no moment do more than `parallel_limit` agents run, and
//! a fan-out of 100,000 agents holds `parallel_limit` tasks in memory rather than
//! 100,000. Starting an agent costs an atomic increment, not a task spawn, and the
//! driver only wakes when a worker is done, never once per agent. Each worker
//! spends tokio's cooperative budget per agent, so a worker whose agents finish
//! at once still yields to its siblings regularly.

use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use tokio::task::coop::consume_budget;
use tokio::task::JoinSet;

use crate::orchestration::agent::{Agent, AgentError, AgentInput, AgentOutput};
use crate::orchestration::agent_run::{AgentPolicy, Interruption, RunError, Runner};
use crate::orchestration::context::{self, ExecutionContext};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::orchestrator::{
    AgentFailure, BaseOrchestrator, OrchestratorInput, OrchestratorOutput,
};
use crate::orchestration::patterns::{orchestrator_builders, orchestrator_impl};
use crate::orchestration::recorded::RecordedInput;

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

/// What every worker of one run shares, behind one `Arc`.
struct Shared {
    agents: Vec<Box<dyn Agent>>,
    input: RecordedInput,
    ctx: ExecutionContext,
    policy: AgentPolicy,
    /// The position of the next agent to start.
    next: AtomicUsize,
    /// How each agent ended, by position, written by its worker the moment the
    /// agent is done: a worker that is aborted (a runtime shutting down) loses
    /// only the agent it was running, never those it had finished.
    outcomes: Vec<OnceLock<Outcome>>,
    /// The first interruption an agent saw; no agent starts after one.
    interrupted: OnceLock<Interruption>,
}

/// How one agent's run ended.
type Outcome = std::result::Result<AgentOutput, RunError>;

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
                if policy.record {
                    ctx.reserve_records(count);
                }
                let mut shared = Arc::new(Shared {
                    agents,
                    input: RecordedInput::from(AgentInput::from(input)),
                    ctx: ctx.clone(),
                    policy,
                    next: AtomicUsize::new(0),
                    outcomes: (0..count).map(|_| OnceLock::new()).collect(),
                    interrupted: OnceLock::new(),
                });
                let (outcomes, interrupted) = fan_out(&mut shared, config.parallel_limit).await;
                match interrupted {
                    Some(interruption) => Err(self.base.interruption_error(interruption)),
                    None => join(&shared.agents, outcomes, config.join_policy),
                }
            })
            .await
    }
}

orchestrator_impl!(ParallelOrchestrator);

/// Runs every agent, at most `limit` at a time, and collects how each ended by
/// its position. Stops starting agents once the run is cancelled or out of time.
async fn fan_out(
    shared: &mut Arc<Shared>,
    limit: usize,
) -> (Vec<OnceLock<Outcome>>, Option<Interruption>) {
    let count = shared.agents.len();
    // Dropping the run drops this set, which aborts the workers.
    let mut workers = JoinSet::new();
    for _ in 0..limit.min(count) {
        let shared = Arc::clone(shared);
        workers.spawn(async move { work(&shared).await });
    }
    // A worker only ends early when a runtime shutting down aborts it; the agent
    // it was running keeps an empty slot and `join` reports it failed.
    while workers.join_next().await.is_some() {}
    let mut interrupted = shared.interrupted.get().copied();
    if interrupted.is_none() && shared.ctx.is_cancelled() {
        interrupted = Some(Interruption::Cancelled);
    }
    // Every worker has ended and dropped its handle, so the outcomes move out;
    // should one still be held, they are copied.
    let outcomes = match Arc::get_mut(shared) {
        Some(shared) => std::mem::take(&mut shared.outcomes),
        None => shared
            .outcomes
            .iter()
            .map(|slot| {
                slot.get()
                    .cloned()
                    .map_or_else(OnceLock::new, OnceLock::from)
            })
            .collect(),
    };
    (outcomes, interrupted)
}

/// One worker: runs the next agent that has not started until none is left or
/// the run is interrupted, and writes how each of its agents ended into its slot.
async fn work(shared: &Shared) {
    let mut runner = Runner::new(&shared.ctx, &shared.policy);
    let scope = runner.scope();
    context::scope(scope, run_agents(shared, &mut runner)).await;
}

/// The worker's loop, inside its runner's task-local scope.
async fn run_agents(shared: &Shared, runner: &mut Runner<'_>) {
    while shared.interrupted.get().is_none() && !shared.ctx.is_cancelled() {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        let (Some(agent), Some(slot)) = (shared.agents.get(index), shared.outcomes.get(index))
        else {
            break;
        };
        // The worker may have yielded since its last agent: read the clock afresh.
        runner.lap = None;
        let input = runner.share_input(&shared.input);
        let run = runner.run(agent.as_ref(), &input);
        // Agent panics are contained per attempt; this guards the rest.
        let outcome = AssertUnwindSafe(run)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                Err(RunError::Failed(OrchestrationError::AgentError(
                    AgentError::new("the agent's task panicked outside its attempts"),
                )))
            });
        if let Err(RunError::Interrupted(why)) = &outcome {
            let _ = shared.interrupted.set(*why);
        }
        // Each position is taken by exactly one worker, so the slot is empty.
        let _ = slot.set(outcome);
        // Agents that finish at once never yield on their own: take turns.
        consume_budget().await;
    }
}

const HEADER: &str = "Parallel execution results:";

/// The length of the aggregated result when every agent succeeded, so that it is
/// built in one allocation (a failure line may need more; the string then grows).
fn result_len(agents: &[Box<dyn Agent>], outcomes: &[OnceLock<Outcome>]) -> usize {
    let lines = agents.iter().zip(outcomes).enumerate();
    lines.fold(HEADER.len(), |len, (index, (agent, outcome))| {
        // "\n{position}. {name}: {content}"
        let digits = (index + 1).ilog10() as usize + 1;
        let content = match outcome.get() {
            Some(Ok(output)) => output.content.len(),
            _ => 0,
        };
        len + 5 + digits + agent.name().len() + content
    })
}

/// Aggregates finished agents in order and applies the join policy.
fn join(
    agents: &[Box<dyn Agent>],
    outcomes: Vec<OnceLock<Outcome>>,
    policy: JoinPolicy,
) -> Result<OrchestratorOutput> {
    let count = outcomes.len();
    let mut result = String::with_capacity(result_len(agents, &outcomes));
    result.push_str(HEADER);
    let mut outputs = Vec::with_capacity(count);
    let mut failures = Vec::new();
    for (index, (agent, outcome)) in agents.iter().zip(outcomes).enumerate() {
        let position = index + 1;
        match outcome.into_inner() {
            Some(Ok(output)) => {
                let _ = write!(result, "\n{position}. {}: {}", agent.name(), output.content);
                outputs.push(output);
            }
            Some(Err(error)) => {
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use async_trait::async_trait;

    use super::*;
    use crate::orchestration::{Orchestrator, SimpleAgent};

    /// Tells the test it has started, then never finishes.
    struct Stuck(mpsc::Sender<()>);

    #[async_trait]
    impl Agent for Stuck {
        fn name(&self) -> &str {
            "stuck"
        }
        fn description(&self) -> &str {
            "never finishes"
        }
        async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
            let _ = self.0.send(());
            std::future::pending().await
        }
    }

    #[test]
    fn agents_finished_before_their_worker_is_aborted_keep_their_outputs() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (started, wait) = mpsc::channel();
        let mut agents: Vec<Box<dyn Agent>> = (0..3)
            .map(|i| {
                Box::new(SimpleAgent::new(format!("a{i}"), "", |input| {
                    Ok(AgentOutput::new(input.content))
                })) as Box<dyn Agent>
            })
            .collect();
        agents.push(Box::new(Stuck(started)));
        // The run is driven outside the runtime its one worker runs on, so
        // shutting that runtime down aborts the worker but not the run.
        let handle = runtime.handle().clone();
        let driver = std::thread::spawn(move || {
            let _runtime = handle.enter();
            futures::executor::block_on(
                ParallelOrchestrator::new()
                    .with_parallel_limit(1)
                    .with_join_policy(JoinPolicy::Any)
                    .orchestrate(agents, OrchestratorInput::new("x")),
            )
        });
        wait.recv().unwrap();
        runtime.shutdown_background();
        let output = driver.join().unwrap().unwrap();
        let contents: Vec<_> = output.agent_outputs.iter().map(|o| &o.content).collect();
        assert_eq!(contents, ["x", "x", "x"]);
        assert_eq!(output.failures.len(), 1);
        assert_eq!(output.failures[0].index, 3);
        assert!(
            output.failures[0].error.contains("without a result"),
            "{:?}",
            output.failures
        );
    }
}
