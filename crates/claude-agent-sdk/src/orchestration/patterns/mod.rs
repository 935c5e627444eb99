//! Orchestration patterns: how a list of agents is run on one input.
//!
//! | Use case | Pattern |
//! |----------|---------|
//! | Data pipelines, multi-step workflows | [`SequentialOrchestrator`] |
//! | Multi-perspective analysis, batch processing | [`ParallelOrchestrator`] |
//! | Mixed dependencies | nest one in the other with [`OrchestratorAgent`](super::OrchestratorAgent) |
//!
//! A pattern only decides which agent runs when, and on what — it builds a
//! graph of nodes for the engine (see ARCHITECTURE.md) and concludes the result
//! from what the run produced; retries, timeouts, cancellation and the journal
//! are the engine's.

mod parallel;
mod sequential;

use std::collections::HashSet;
use std::sync::Arc;

use crate::orchestration::agent::{Agent, AgentInput};
use crate::orchestration::budget::RunBudget;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::branching::Branching;
use crate::orchestration::engine::driver::{self, RunPlan, RunReport};
use crate::orchestration::engine::graph::Graph;
use crate::orchestration::engine::run_state::{Reuse, Reused};
use crate::orchestration::engine::walk::{Agents, Overrides};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::human::{EnclosingStep, FinishedStep, Pause};
use crate::orchestration::journal::NodeId;
use crate::orchestration::orchestrator::{
    require_runtime, BaseOrchestrator, OrchestratorInput, OrchestratorOutput,
};
use crate::orchestration::resume::{pattern_labels, pattern_position};

pub use parallel::ParallelOrchestrator;
pub use sequential::SequentialOrchestrator;

/// The configuration builders every pattern shares; the pattern must have a
/// `base: BaseOrchestrator` field.
macro_rules! orchestrator_builders {
    () => {
        /// Replaces the whole configuration.
        #[must_use]
        pub fn with_config(
            mut self,
            config: $crate::orchestration::config::ExecutionConfig,
        ) -> Self {
            self.base = self.base.with_config(config);
            self
        }

        /// Sets the retries per agent after its first attempt (shorthand for the config's).
        #[must_use]
        pub fn with_max_retries(mut self, max_retries: usize) -> Self {
            self.base.config_mut().max_retries = max_retries;
            self
        }

        /// Bounds the whole run (shorthand for the config's).
        #[must_use]
        pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.base.config_mut().timeout = timeout;
            self
        }

        /// Bounds each attempt of each agent (shorthand for the config's).
        #[must_use]
        pub fn with_agent_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.base.config_mut().agent_timeout = Some(timeout);
            self
        }

        /// Names the orchestrator, as its errors and spans call it (default:
        /// the pattern's type name), e.g. after the group of a workflow it runs.
        #[must_use]
        pub fn with_name(mut self, name: impl Into<String>) -> Self {
            let config = self.base.config().clone();
            self.base = $crate::orchestration::BaseOrchestrator::new(name, self.base.description())
                .with_config(config);
            self
        }

        /// The configuration that governs this orchestrator's runs.
        #[must_use]
        pub fn config(&self) -> &$crate::orchestration::config::ExecutionConfig {
            self.base.config()
        }
    };
}
pub(crate) use orchestrator_builders;

/// Whether a run's output carries its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceOut {
    /// The run's own trace, read from the journal.
    Attach,
    /// The run's own trace, its events moved out of the journal (the
    /// context is private to the run).
    Take,
    /// None: the run is a nested step, whose records the enclosing trace holds.
    Skip,
}

/// The shape of a run: its graph and, for a graph drawn by a user, what
/// decides its branches and what it may spend.
pub(crate) struct Flow {
    pub(crate) graph: Graph,
    pub(crate) branching: Option<Arc<dyn Branching>>,
    pub(crate) budget: RunBudget,
    /// Outputs of steps a paused run finished (by node and activation), to
    /// reuse rather than run again.
    pub(crate) reuse: Reuse,
}

impl Flow {
    /// A pattern's flow: a fixed graph whose steps are its agents.
    pub(crate) fn pattern(graph: Graph) -> Self {
        Self {
            graph,
            branching: None,
            budget: RunBudget::unlimited(),
            reuse: Reuse::new(),
        }
    }
}

/// Runs `agents` as `flow` under `base`'s configuration and `ctx`, and
/// concludes the output with `conclude`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_pattern(
    base: &BaseOrchestrator,
    flow: Flow,
    agents: Arc<Vec<Box<dyn Agent>>>,
    input: OrchestratorInput,
    ctx: &ExecutionContext,
    trace: TraceOut,
    conclude: impl FnOnce(RunReport) -> Result<OrchestratorOutput>,
) -> Result<OrchestratorOutput> {
    if agents.is_empty() {
        return Err(OrchestrationError::InvalidConfig(format!(
            "{} was given no agents",
            base.name()
        )));
    }
    base.config().validate()?;
    flow.budget.validate()?;
    require_runtime()?;
    // Nested in a step that runs again in a resumed run: what this pattern
    // finished in that step before is reused, not run again.
    let mut flow = flow;
    let finished = ctx.take_finished_before();
    if !finished.is_empty() {
        let reused = handed_back(&flow.graph, &agents, finished, ctx);
        flow.reuse.extend(reused);
    }
    let plan = RunPlan {
        orchestrator: base.name(),
        config: base.config(),
        graph: flow.graph,
        agents: Agents::Owned(agents),
        input: AgentInput::from(input),
        overrides: Overrides::default(),
        branching: flow.branching,
        budget: flow.budget,
        reuse: flow.reuse,
    };
    let (run, result) = driver::run(plan, ctx, |mut report| {
        keep_finished_in_questions(&mut report);
        conclude(report)
    })
    .await;
    let mut output = result?;
    let trace = match trace {
        TraceOut::Attach => {
            ctx.run_trace_cut(run, base.config().record_text_limit)
                .await
        }
        TraceOut::Take => ctx.take_run_trace(run).await,
        TraceOut::Skip => None,
    };
    if let Some(trace) = trace {
        output.execution_trace = trace;
    }
    Ok(output)
}

/// A pattern has no pause of its own: a question one of its agents asked
/// fails its run, and the graph around it pauses. So that the person sees
/// every question at once, and resuming runs nothing again, the first
/// question's pause gathers the questions of every agent that asked, and
/// what the pattern finished — the outputs of its agents that succeeded,
/// and, under each agent that asked, what the runs nested in it finished —
/// labelled as a resume from the journal labels them (see [`handed_back`]).
fn keep_finished_in_questions(report: &mut RunReport) {
    let asked = |error: &OrchestrationError| {
        matches!(error.root_cause(), OrchestrationError::InputRequired(_))
    };
    if !report.failures.iter().any(|(_, error)| asked(error)) {
        return;
    }
    let labels = pattern_labels(report.names.iter());
    let finished: Vec<FinishedStep> = labels
        .iter()
        .zip(&report.outputs)
        .filter_map(|((name, occurrence), output)| {
            Some(FinishedStep::new(
                name.clone(),
                *occurrence,
                output.clone()?,
            ))
        })
        .collect();
    let mut gathered: Option<Pause> = None;
    for (node, error) in &mut report.failures {
        let (Some(pause), Some((name, occurrence))) = (error.pause_mut(), labels.get(node.index()))
        else {
            continue;
        };
        for step in &mut pause.finished {
            step.within
                .insert(0, EnclosingStep::new(name.clone(), *occurrence));
        }
        match &mut gathered {
            None => gathered = Some(pause.clone()),
            Some(first) => {
                for question in &pause.questions {
                    if !first.questions.iter().any(|asked| asked.id == question.id) {
                        first.questions.push(question.clone());
                    }
                }
                first.finished.extend(pause.finished.iter().cloned());
            }
        }
    }
    let Some(mut gathered) = gathered else { return };
    gathered.finished.extend(finished);
    // It is no pause of a run to resume: the graph around takes it in.
    gathered.run = None;
    gathered.origin = None;
    // The first question's failure (in agent order: the one the pattern
    // reports) carries the gathered pause.
    let first = report
        .failures
        .iter_mut()
        .find_map(|(_, error)| error.pause_mut());
    if let Some(pause) = first {
        *pause = gathered;
    }
}

/// What a pattern reuses of `finished`, the steps handed back to it by the
/// run it is nested in (see `resume`): its own steps' outputs, each found by
/// its agent's name and which of the agents with that name it is; the steps
/// of runs nested in its steps are kept in `ctx` for those runs. A step of
/// an agent the pattern no longer has is left out, and so is every step
/// after it in a pipeline (its input would not be the one it had): the
/// pattern changed since, and what it has runs anew.
fn handed_back(
    graph: &Graph,
    agents: &[Box<dyn Agent>],
    finished: Vec<FinishedStep>,
    ctx: &ExecutionContext,
) -> Reuse {
    let mut reuse = Reuse::new();
    let mut inside: Vec<(NodeId, FinishedStep)> = Vec::new();
    for mut step in finished {
        let (name, occurrence) = match step.within.first() {
            Some(outer) => (outer.node.as_str(), outer.activation),
            None => (step.node.as_str(), step.activation),
        };
        let names = agents.iter().map(|agent| agent.name());
        let Some(position) = pattern_position(names, name, occurrence) else {
            continue;
        };
        let node = NodeId::from_index(position);
        if step.within.is_empty() {
            // A pattern's step is its node's one activation.
            let output = step.output;
            reuse.insert(
                (node, 1),
                Reused {
                    output,
                    decision: None,
                },
            );
        } else {
            step.within.remove(0);
            inside.push((node, step));
        }
    }
    // A step fed by one that runs anew gets nothing back: its input would
    // not be the one it had (a pattern's edges go forward, so one pass in
    // node order sees each predecessor settled first).
    let mut anew = HashSet::new();
    for (index, predecessors) in graph.predecessor_lists().iter().enumerate() {
        if predecessors
            .iter()
            .any(|from| !reuse.contains_key(&(*from, 1)))
        {
            let node = NodeId::from_index(index);
            anew.insert(node);
            reuse.remove(&(node, 1));
        }
    }
    for (node, step) in inside {
        if !anew.contains(&node) {
            ctx.keep_paused_inside((node, 1), vec![step]);
        }
    }
    reuse
}

/// Implements [`Orchestrator`](crate::orchestration::Orchestrator) for a pattern with
/// a `base: BaseOrchestrator` field and an inherent
/// `async fn run(&self, agents, input, &ExecutionContext, TraceOut) -> Result<OrchestratorOutput>`.
macro_rules! orchestrator_impl {
    ($pattern:ty) => {
        #[async_trait::async_trait]
        impl $crate::orchestration::Orchestrator for $pattern {
            fn name(&self) -> &str {
                self.base.name()
            }

            fn description(&self) -> &str {
                self.base.description()
            }

            fn config(&self) -> &$crate::orchestration::ExecutionConfig {
                self.base.config()
            }

            async fn orchestrate(
                &self,
                agents: Vec<Box<dyn $crate::orchestration::Agent>>,
                input: $crate::orchestration::OrchestratorInput,
            ) -> $crate::orchestration::Result<$crate::orchestration::OrchestratorOutput> {
                // This context is the run's alone: its events move into the trace.
                let ctx =
                    $crate::orchestration::ExecutionContext::private(self.base.config().clone());
                self.run(
                    agents,
                    input,
                    &ctx,
                    $crate::orchestration::patterns::TraceOut::Take,
                )
                .await
            }

            async fn orchestrate_with_context(
                &self,
                agents: Vec<Box<dyn $crate::orchestration::Agent>>,
                input: $crate::orchestration::OrchestratorInput,
                ctx: &$crate::orchestration::ExecutionContext,
            ) -> $crate::orchestration::Result<$crate::orchestration::OrchestratorOutput> {
                self.run(
                    agents,
                    input,
                    ctx,
                    $crate::orchestration::patterns::TraceOut::Attach,
                )
                .await
            }

            async fn orchestrate_nested(
                &self,
                agents: Vec<Box<dyn $crate::orchestration::Agent>>,
                input: $crate::orchestration::OrchestratorInput,
                ctx: &$crate::orchestration::ExecutionContext,
            ) -> $crate::orchestration::Result<$crate::orchestration::OrchestratorOutput> {
                self.run(
                    agents,
                    input,
                    ctx,
                    $crate::orchestration::patterns::TraceOut::Skip,
                )
                .await
            }
        }
    };
}
pub(crate) use orchestrator_impl;
