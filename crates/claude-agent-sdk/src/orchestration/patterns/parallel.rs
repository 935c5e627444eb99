//! Parallel orchestration: a fan-out of agents on the same input, joined in order.
//!
//! ```text
//!         → Agent A ─┐
//! Input ─┼→ Agent B ─┼→ Aggregator → Output
//!         → Agent C ─┘
//! ```
//!
//! The run is a graph of independent nodes. The engine's scheduler hands out
//! at most `parallel_limit` of them at a time, and each runs on a tokio task
//! of its own, so CPU-heavy agents use every core; a fan-out of 100,000 agents
//! holds `parallel_limit` tasks in memory, not 100,000.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::orchestration::agent::Agent;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::driver::RunReport;
use crate::orchestration::engine::graph::Graph;
use crate::orchestration::engine::stop::interruption_error;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::orchestrator::{
    AgentFailure, BaseOrchestrator, OrchestratorInput, OrchestratorOutput,
};
use crate::orchestration::patterns::{
    orchestrator_builders, orchestrator_impl, run_pattern, Flow, TraceOut,
};

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
/// naming the first failed agent in order — permanent (not retried by a run
/// around it) when the agents that failed for good leave the policy no way
/// to be satisfied, whatever the first one's cause. A tolerant policy returns
/// `Ok` instead, listing the failures
/// in [`OrchestratorOutput::failures`]. When an agent asked a question
/// ([`ExecutionContext::ask`](crate::orchestration::ExecutionContext::ask)) —
/// whatever the policy: a question is not a failure to tolerate — the run
/// fails with that agent's failure, whose root cause is
/// [`InputRequired`](OrchestrationError::InputRequired) holding every
/// question its agents asked: a graph running the fan-out as a node pauses
/// for the answers.
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
        trace: TraceOut,
    ) -> Result<OrchestratorOutput> {
        let config = self.base.config();
        if config.parallel_limit == 0 {
            return Err(OrchestrationError::InvalidConfig(
                "parallel_limit must be at least 1".into(),
            ));
        }
        config.join_policy.validate(agents.len())?;
        let graph = Graph::fan_out(agents.len());
        run_pattern(
            &self.base,
            Flow::pattern(graph),
            Arc::new(agents),
            input,
            ctx,
            trace,
            |report| {
                if let Some(why) = report.interrupted {
                    return Err(interruption_error(why, self.base.name(), report.time_limit));
                }
                // A budget (of a run around it: it has none of its own) stopped it.
                if let Some(stopped) = report.stopped {
                    return Err(stopped);
                }
                join(report, config.join_policy)
            },
        )
        .await
    }
}

orchestrator_impl!(ParallelOrchestrator);

const HEADER: &str = "Parallel execution results:";

/// Aggregates the agents' outcomes in order and applies the join policy.
fn join(report: RunReport, policy: JoinPolicy) -> Result<OrchestratorOutput> {
    let count = report.names.len();
    // "\n{position}. {name}: {content}" per agent, sized up front: one
    // allocation for the common all-succeeded run.
    let size =
        report
            .names
            .iter()
            .zip(&report.outputs)
            .fold(HEADER.len(), |size, (name, output)| {
                size + 24 + name.len() + output.as_ref().map_or(0, |output| output.content.len())
            });
    let mut result = String::with_capacity(size);
    result.push_str(HEADER);
    let mut outputs = Vec::with_capacity(count);
    let mut failures = Vec::new();
    let mut errors = report.failures.into_iter().peekable();
    let mut first_error = None;
    let mut question = None;
    let mut failed_for_good = Vec::new();
    for (index, (name, output)) in report.names.iter().zip(report.outputs).enumerate() {
        let name: &str = name;
        let position = index + 1;
        if let Some(output) = output {
            // Pushed piece by piece: `write!` costs more than the agent here.
            result.push('\n');
            result.push_str(itoa::Buffer::new().format(position));
            result.push_str(". ");
            result.push_str(name);
            result.push_str(": ");
            result.push_str(&output.content);
            outputs.push(output);
            continue;
        }
        let error = match errors.next_if(|(node, _)| node.index() == index) {
            Some((_, error)) => error,
            None => OrchestrationError::OrchestratorFailed(
                "the agent's task ended without a result".into(),
            ),
        };
        let text = match &error {
            OrchestrationError::AgentFailed(_, reason) => reason.to_string(),
            other => other.to_string(),
        };
        let _ = write!(result, "\n{position}. {name}: [failed] {text}");
        failures.push(AgentFailure {
            index,
            agent_name: name.to_owned(),
            error: text,
        });
        if matches!(error.root_cause(), OrchestrationError::InputRequired(_)) {
            question.get_or_insert_with(|| error.clone());
        }
        if !error.is_retryable() {
            failed_for_good.push(name);
        }
        first_error.get_or_insert(error);
    }
    // An agent asked a question: the run fails with it as its root cause,
    // so that a graph running this one as a node pauses for the answer.
    if let Some(question) = question {
        return Err(question);
    }
    if policy.is_satisfied(outputs.len(), count) {
        return Ok(OrchestratorOutput::new(result, outputs).with_failures(failures));
    }
    match first_error {
        // Every agent failed: the first failure in order is the run's — and
        // permanent when the agents that failed for good leave the policy no
        // way to be satisfied, so that no retry around the run runs them again.
        Some(first) if outputs.is_empty() => {
            let left = count - failed_for_good.len();
            if first.is_retryable() && !policy.is_satisfied(left, count) {
                let why = format!(
                    "no retry can satisfy the join policy: {} failed for good",
                    failed_for_good
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Err(first.made_permanent(&why));
            }
            Err(first)
        }
        _ => Err(OrchestrationError::PartialSuccess(count - outputs.len())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use async_trait::async_trait;

    use super::*;
    use crate::orchestration::{AgentInput, AgentOutput, Orchestrator, SimpleAgent};

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
