//! The driver: one run, from its first event to its last.
//!
//! It asks the [`Scheduler`] what may start, runs each node through the
//! [executor](crate::orchestration::executor) — on the caller's task when the
//! graph never runs two nodes at once (a pipeline), on
//! [worker tasks](super::workers) otherwise (a fan-out) — and tells the
//! scheduler how each ended. When the run must stop (cancelled, out of time),
//! it starts nothing more, tells the running attempts to stop, waits for them
//! (at most [`STOP_GRACE`](super::stop::STOP_GRACE)), and writes off any that
//! did not stop as abandoned — so when a run returns, every attempt it
//! started has ended and has its record.
//!
//! One rule decides a stop that races the last completions, in every
//! pattern: a run whose nodes all ran to their own end — none was cut short,
//! none was left unstarted — returns its result, even if the cancellation (or
//! the deadline) arrived while they were finishing; a run where the stop cut
//! any work short ends in `Cancelled` (or `Timeout`). Either way the outputs
//! already produced stay in the journal, and so in the context's trace.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::graph::{Graph, InputRule};
use super::recorder::{NodeNames, Recorder};
use super::scheduler::{Completion, Scheduler};
use super::stop::{sooner, RunStop};
use super::workers;
use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::executor::retry::RetryPolicy;
use crate::orchestration::executor::{run_node, NodeFailure, NodePolicy, RunShared};
use crate::orchestration::journal::{InputSource, Interruption, NodeId, RunId, RunOutcome};
use crate::orchestration::scope::{self, RunBooks};
use crate::orchestration::telemetry::{in_run_span, log_event};

/// What a run is asked to do.
pub(crate) struct RunPlan<'a> {
    /// The orchestrator's name.
    pub(crate) orchestrator: &'a str,
    /// The configuration that governs the run.
    pub(crate) config: &'a ExecutionConfig,
    pub(crate) graph: Graph,
    /// The agents, by node.
    pub(crate) agents: Agents<'a>,
    pub(crate) input: AgentInput,
    /// Retries and attempt timeout that win over everything else (a
    /// registry's metadata).
    pub(crate) overrides: Overrides,
}

/// A run's agents: owned (they can go to tasks of their own), or one
/// borrowed agent (run on the caller's task).
pub(crate) enum Agents<'a> {
    Owned(Arc<Vec<Box<dyn Agent>>>),
    Borrowed(&'a dyn Agent),
}

impl Agents<'_> {
    fn get(&self, node: NodeId) -> Option<&dyn Agent> {
        match self {
            Self::Owned(agents) => agents.get(node.index()).map(|agent| agent.as_ref()),
            Self::Borrowed(agent) => (node.index() == 0).then_some(*agent),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Owned(agents) => agents.len(),
            Self::Borrowed(_) => 1,
        }
    }

    fn names(&self) -> NodeNames {
        match self {
            Self::Owned(agents) => NodeNames::Agents(Arc::clone(agents)),
            Self::Borrowed(agent) => NodeNames::One(Arc::from(agent.name())),
        }
    }
}

/// Per-run settings that win over the agents' own and the config's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Overrides {
    pub(crate) max_retries: Option<usize>,
    pub(crate) attempt_timeout: Option<std::time::Duration>,
}

/// What a run produced, for its pattern to conclude from.
pub(crate) struct RunReport {
    /// The name of each node's agent.
    pub(crate) names: NodeNames,
    /// Each node's output, when it succeeded.
    pub(crate) outputs: Vec<Option<AgentOutput>>,
    /// The nodes that failed for good, in node order, with their errors.
    pub(crate) failures: Vec<(NodeId, OrchestrationError)>,
    /// Why the run was cut short, if it was.
    pub(crate) interrupted: Option<Interruption>,
}

/// Runs `plan` under `ctx`; `conclude` turns what the run produced into its
/// result, which decides how the run's last event reads. Returns the run's
/// id with the result.
pub(crate) async fn run<T>(
    plan: RunPlan<'_>,
    ctx: &ExecutionContext,
    conclude: impl FnOnce(RunReport) -> Result<T>,
) -> (RunId, Result<T>) {
    let RunPlan {
        orchestrator,
        config,
        graph,
        agents,
        input,
        overrides,
    } = plan;
    let log = config.enable_logging;
    let nodes = agents.len();
    in_run_span(graph.kind, nodes, async move {
        let parent = scope::current();
        let (token, nested) = match &parent {
            Some(parent) => {
                let (stop, nested) = parent.nest();
                (stop.child(), Some(nested))
            }
            None => (ctx.cancellation().child(), None),
        };
        let stop = RunStop {
            token,
            context: parent.as_ref().map(|_| ctx.cancellation().clone()),
            deadline: sooner(
                Instant::now().checked_add(config.timeout),
                parent.as_ref().and_then(|parent| parent.deadline),
            ),
        };
        let run_id = RunId::new();
        let names = agents.names();
        let recorder = Recorder::new(
            run_id,
            orchestrator,
            config.timeout,
            ctx,
            names.clone(),
            config.enable_tracing,
            config.record_text_limit,
        );
        let shared = Arc::new(RunShared::new(ctx, recorder, stop));
        if let Some(parent) = &parent {
            let books: Arc<dyn RunBooks> = Arc::clone(&shared) as Arc<dyn RunBooks>;
            parent.run.adopt(Arc::downgrade(&books));
        }
        ctx.run_started(run_id);
        if config.enable_tracing {
            // A run start and end, and at least a start and an end per node.
            ctx.journal().reserve(2 * nodes + 2);
        }
        shared
            .recorder
            .run_started(&input, parent.as_ref().map(|parent| parent.attempt));
        log_event!(log, debug, agents = nodes, "orchestration started");
        let mut books = OpenBooks {
            shared: Some(Arc::clone(&shared)),
            _nested: nested,
        };
        let driver = Driver {
            shared: &shared,
            agents: &agents,
            input: Arc::new(input),
            config,
            overrides,
            retry: config.retry_policy(),
        };
        let report = driver.drive(graph, names).await;
        let interrupted = report.interrupted;
        let result = conclude(report);
        let outcome = match (&result, interrupted) {
            (Ok(_), _) => RunOutcome::Succeeded,
            (Err(_), Some(why)) => RunOutcome::Interrupted(why),
            (Err(error), None) => RunOutcome::Failed(error.clone()),
        };
        #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
        match &result {
            Ok(_) => log_event!(log, info, "orchestration finished"),
            Err(error) => log_event!(log, warn, %error, "orchestration failed"),
        }
        books.close(outcome);
        (run_id, result)
    })
    .await
}

/// Closes a run's books when it ends — or, when its future is dropped first,
/// closes them as dropped: the attempts still open end as interrupted, and
/// nothing the run started writes to its journal afterwards (the books of
/// the runs nested in it are closed first).
struct OpenBooks {
    shared: Option<Arc<RunShared>>,
    /// Counts this run among the nested runs of the attempt it runs in.
    _nested: Option<TaskTrackerToken>,
}

impl OpenBooks {
    fn close(&mut self, outcome: RunOutcome) {
        if let Some(shared) = self.shared.take() {
            shared.close_tree(outcome);
        }
    }
}

impl Drop for OpenBooks {
    fn drop(&mut self) {
        self.close(RunOutcome::Interrupted(Interruption::Dropped));
    }
}

/// The scheduler and what the run produced so far.
pub(crate) struct Settled {
    pub(crate) scheduler: Scheduler,
    /// Each node's output, when it succeeded.
    pub(crate) outputs: Vec<Option<AgentOutput>>,
    /// The nodes that failed for good, with their errors.
    pub(crate) failures: Vec<(NodeId, OrchestrationError)>,
    /// The first interruption a node saw.
    pub(crate) interrupted: Option<Interruption>,
}

impl Settled {
    fn new(scheduler: Scheduler) -> Self {
        let mut outputs = Vec::with_capacity(scheduler.graph().len());
        outputs.resize_with(scheduler.graph().len(), || None);
        Self {
            scheduler,
            outputs,
            failures: Vec::new(),
            interrupted: None,
        }
    }

    /// Nothing: what a run's state is swapped with when it is taken.
    pub(crate) fn empty() -> Self {
        Self::new(Scheduler::new(Graph::default(), 1))
    }

    /// Tells the scheduler how `node` ended and keeps its output, its
    /// failure or the interruption it saw.
    pub(crate) fn settle(&mut self, node: NodeId, outcome: Result<AgentOutput, NodeFailure>) {
        let how = match outcome {
            Ok(output) => {
                if let Some(slot) = self.outputs.get_mut(node.index()) {
                    *slot = Some(output);
                }
                Completion::Succeeded
            }
            Err(NodeFailure::Failed(error)) => {
                self.failures.push((node, error));
                Completion::Failed
            }
            Err(NodeFailure::Interrupted(why)) => {
                self.interrupted.get_or_insert(why);
                Completion::Interrupted
            }
        };
        self.scheduler.complete(node, how);
    }
}

struct Driver<'a> {
    shared: &'a Arc<RunShared>,
    agents: &'a Agents<'a>,
    input: Arc<AgentInput>,
    config: &'a ExecutionConfig,
    overrides: Overrides,
    /// The run's retry policy, made once.
    retry: Arc<dyn RetryPolicy>,
}

impl Driver<'_> {
    /// The policies node `node` runs under: the run's overrides win, then
    /// the agent's own, then the config's.
    fn policy<'p>(&'p self, agent: &dyn Agent) -> NodePolicy<'p> {
        policy_for(agent, self.config, self.overrides, self.retry.as_ref())
    }

    /// Runs every node of `graph`; reports how each ended (failures in node order).
    async fn drive(&self, graph: Graph, names: NodeNames) -> RunReport {
        let limit = if graph.concurrent {
            self.config.parallel_limit
        } else {
            1
        };
        let settled = Settled::new(Scheduler::new(graph, limit));
        let (mut settled, mut interrupted) = match self.agents {
            Agents::Owned(agents) if settled.scheduler.graph().concurrent => {
                workers::drive(
                    self.shared,
                    agents,
                    &self.input,
                    self.config,
                    self.overrides,
                    &self.retry,
                    settled,
                )
                .await
            }
            _ => self.drive_inline(settled).await,
        };
        // One rule for a stop that races the last completions: if every node
        // ran to its own end anyway, the run has its result.
        if settled.scheduler.completed_all() {
            interrupted = None;
        }
        settled.failures.sort_by_key(|(node, _)| *node);
        RunReport {
            names,
            outputs: settled.outputs,
            failures: settled.failures,
            interrupted,
        }
    }

    /// Runs every node on the caller's task, one at a time.
    async fn drive_inline(&self, mut settled: Settled) -> (Settled, Option<Interruption>) {
        while let Some(node) = settled.scheduler.next() {
            let rule = settled.scheduler.graph().nodes[node.index()].input;
            let outcome = {
                let outputs = &settled.outputs;
                let input = || make_input(rule, &self.input, outputs);
                let source = source_of(rule);
                match self.agents.get(node) {
                    Some(agent) => {
                        run_node(
                            self.shared,
                            node,
                            agent,
                            &input,
                            &source,
                            &self.policy(agent),
                        )
                        .await
                    }
                    None => Err(NodeFailure::Failed(missing_agent(node))),
                }
            };
            settled.settle(node, outcome);
            if let Some(why) = settled.interrupted {
                return (settled, Some(why));
            }
            // Agents that finish at once never yield on their own: take turns,
            // so that timers, a canceller and other tasks get to run.
            tokio::task::coop::consume_budget().await;
        }
        (settled, None)
    }
}

/// The error for a node without an agent (a graph built wrong).
pub(crate) fn missing_agent(node: NodeId) -> OrchestrationError {
    OrchestrationError::OrchestratorFailed(format!("node {node} has no agent"))
}

/// The policies `agent` runs under: `overrides` win, then the agent's own,
/// then `config`'s.
pub(crate) fn policy_for<'p>(
    agent: &dyn Agent,
    config: &ExecutionConfig,
    overrides: Overrides,
    retry: &'p dyn RetryPolicy,
) -> NodePolicy<'p> {
    NodePolicy {
        max_retries: overrides
            .max_retries
            .or_else(|| agent.max_retries())
            .unwrap_or(config.max_retries),
        attempt_timeout: overrides
            .attempt_timeout
            .or_else(|| agent.attempt_timeout())
            .or(config.agent_timeout),
        retry,
        log: config.enable_logging,
    }
}

/// The input a node with `rule` gets.
pub(crate) fn make_input(
    rule: InputRule,
    input: &AgentInput,
    outputs: &[Option<AgentOutput>],
) -> AgentInput {
    match rule {
        InputRule::RunInput => input.clone(),
        InputRule::OutputOf(node) => AgentInput {
            content: outputs
                .get(node.index())
                .and_then(Option::as_ref)
                .map(|output| output.content.clone())
                .unwrap_or_default(),
            context: input.context.clone(),
            metadata: input.metadata.clone(),
        },
    }
}

/// How the journal names where an input with `rule` came from.
pub(crate) fn source_of(rule: InputRule) -> InputSource {
    match rule {
        InputRule::RunInput => InputSource::RunInput,
        InputRule::OutputOf(node) => InputSource::OutputOf(node),
    }
}
