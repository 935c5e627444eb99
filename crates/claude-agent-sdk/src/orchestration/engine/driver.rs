//! The driver: one run, from its first event to its last.
//!
//! It asks the [`Scheduler`] what may start, runs each node through the
//! [executor](crate::orchestration::executor) — on the caller's task when the
//! graph never runs two nodes at once (a pipeline), on a task of its own
//! otherwise (a fan-out) — and tells the scheduler how each ended. When the
//! run must stop (cancelled, out of time), it starts nothing more, tells the
//! running attempts to stop, waits for them (at most [`STOP_GRACE`]), and
//! writes off any that did not stop as abandoned — so when a run returns,
//! every attempt it started has ended and has its record.
//!
//! One rule decides a stop that races the last completions, in every
//! pattern: a run whose nodes all ran to their own end — none was cut short,
//! none was left unstarted — returns its result, even if the cancellation (or
//! the deadline) arrived while they were finishing; a run where the stop cut
//! any work short ends in `Cancelled` (or `Timeout`). Either way the outputs
//! already produced stay in the journal, and so in the context's trace.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::graph::{Graph, InputRule};
use super::recorder::{NodeNames, Recorder};
use super::scheduler::{Completion, Scheduler};
use super::stop::{sooner, RunStop, STOP_GRACE};
use crate::orchestration::agent::{Agent, AgentError, AgentInput, AgentOutput};
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

impl RunReport {
    /// The error of a run cut short by `why`.
    pub(crate) fn interruption_error(
        why: Interruption,
        plan_name: &str,
        config: &ExecutionConfig,
    ) -> OrchestrationError {
        match why {
            Interruption::Cancelled | Interruption::Dropped => OrchestrationError::Cancelled,
            Interruption::TimedOut | Interruption::Abandoned => OrchestrationError::Timeout(
                format!("{plan_name} exceeded its {:?} run timeout", config.timeout),
            ),
        }
    }
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
            context: ctx.cancellation().clone(),
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
        let (outputs, failures, interrupted) = driver.drive(graph).await;
        let report = RunReport {
            names,
            outputs,
            failures,
            interrupted,
        };
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

/// How each node ended: outputs by node, failures in node order, and why the
/// run was cut short.
type Driven = (
    Vec<Option<AgentOutput>>,
    Vec<(NodeId, OrchestrationError)>,
    Option<Interruption>,
);

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

    async fn drive(&self, graph: Graph) -> Driven {
        let nodes = graph.len();
        let mut outputs: Vec<Option<AgentOutput>> = Vec::with_capacity(nodes);
        outputs.resize_with(nodes, || None);
        let mut failures = Vec::new();
        let limit = if graph.concurrent {
            self.config.parallel_limit
        } else {
            1
        };
        let mut scheduler = Scheduler::new(graph, limit);
        let mut interrupted = match self.agents {
            Agents::Owned(agents) if scheduler.graph().concurrent => {
                self.drive_tasks(agents, &mut scheduler, &mut outputs, &mut failures)
                    .await
            }
            _ => {
                self.drive_inline(&mut scheduler, &mut outputs, &mut failures)
                    .await
            }
        };
        // One rule for a stop that races the last completions: if every node
        // ran to its own end anyway, the run has its result.
        if scheduler.completed_all() {
            interrupted = None;
        }
        failures.sort_by_key(|(node, _)| *node);
        (outputs, failures, interrupted)
    }

    /// Runs every node on the caller's task, one at a time.
    async fn drive_inline(
        &self,
        scheduler: &mut Scheduler,
        outputs: &mut [Option<AgentOutput>],
        failures: &mut Vec<(NodeId, OrchestrationError)>,
    ) -> Option<Interruption> {
        while let Some(node) = scheduler.next() {
            let rule = scheduler.graph().nodes[node.index()].input;
            let outcome = {
                let made = |rule| make_input(rule, &self.input, outputs);
                let input = || made(rule);
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
            match outcome {
                Ok(output) => {
                    outputs[node.index()] = Some(output);
                    scheduler.complete(node, Completion::Succeeded);
                }
                Err(NodeFailure::Failed(error)) => {
                    failures.push((node, error));
                    scheduler.complete(node, Completion::Failed);
                }
                Err(NodeFailure::Interrupted(why)) => {
                    scheduler.complete(node, Completion::Interrupted);
                    return Some(why);
                }
            }
            // Agents that finish at once never yield on their own: take turns,
            // so that timers, a canceller and other tasks get to run.
            tokio::task::coop::consume_budget().await;
        }
        None
    }

    /// Runs every node on a task of its own, as many at once as the
    /// scheduler allows.
    async fn drive_tasks(
        &self,
        agents: &Arc<Vec<Box<dyn Agent>>>,
        scheduler: &mut Scheduler,
        outputs: &mut [Option<AgentOutput>],
        failures: &mut Vec<(NodeId, OrchestrationError)>,
    ) -> Option<Interruption> {
        let mut tasks = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, NodeId> = HashMap::new();
        let mut interrupted = None;
        // What every task needs, behind one reference count: a task clones
        // one `Arc`, not one per part (counts shared by cores are costly).
        let parts = Arc::new(TaskParts {
            run: Arc::clone(self.shared),
            agents: Arc::clone(agents),
            input: AgentInput::clone(&self.input),
            config: self.config.clone(),
            overrides: self.overrides,
            retry: Arc::clone(&self.retry),
        });
        loop {
            if interrupted.is_none() {
                interrupted = self.shared.stop.check();
            }
            if interrupted.is_none() {
                while let Some(node) = scheduler.next() {
                    let task = node_task(&parts, scheduler, node, outputs);
                    let handle = tasks.spawn(task);
                    running.insert(handle.id(), node);
                }
            }
            if scheduler.running() == 0 || interrupted.is_some() {
                break;
            }
            tokio::select! {
                biased;
                Some(joined) = tasks.join_next_with_id() => {
                    let (node, outcome) = joined_outcome(joined, &mut running);
                    if let Some(why) = settle(scheduler, outputs, failures, node, outcome) {
                        interrupted.get_or_insert(why);
                    }
                }
                why = self.shared.stop.stopped() => interrupted = Some(why),
            }
        }
        if interrupted.is_some() {
            // Stop: every running attempt is told, then awaited for a while.
            self.shared.stop.token.cancel();
            let give_up_at = Instant::now() + STOP_GRACE;
            loop {
                tokio::select! {
                    biased;
                    joined = tasks.join_next_with_id() => match joined {
                        Some(joined) => {
                            let (node, outcome) = joined_outcome(joined, &mut running);
                            settle(scheduler, outputs, failures, node, outcome);
                        }
                        None => break,
                    },
                    () = tokio::time::sleep_until(give_up_at) => break,
                }
            }
            // What did not stop in time is abandoned: its record says so.
            self.shared.recorder.close(Interruption::Abandoned);
            tasks.abort_all();
        }
        interrupted
    }
}

/// What the tasks of a fan-out share.
struct TaskParts {
    run: Arc<RunShared>,
    agents: Arc<Vec<Box<dyn Agent>>>,
    input: AgentInput,
    config: ExecutionConfig,
    overrides: Overrides,
    retry: Arc<dyn RetryPolicy>,
}

/// The task that runs node `node`.
fn node_task(
    parts: &Arc<TaskParts>,
    scheduler: &Scheduler,
    node: NodeId,
    outputs: &[Option<AgentOutput>],
) -> impl std::future::Future<Output = (NodeId, std::result::Result<AgentOutput, NodeFailure>)>
       + Send
       + 'static {
    let rule = scheduler.graph().nodes[node.index()].input;
    // A node on another node's output gets its own copy of it, made now; one
    // on the run's input shares the run's.
    let own_input = match rule {
        InputRule::RunInput => None,
        InputRule::OutputOf(_) => Some(make_input(rule, &parts.input, outputs)),
    };
    let parts = Arc::clone(parts);
    async move {
        let given = own_input.as_ref().unwrap_or(&parts.input);
        let input = || given.clone();
        let Some(agent) = parts.agents.get(node.index()) else {
            return (node, Err(NodeFailure::Failed(missing_agent(node))));
        };
        let agent = agent.as_ref();
        let policy = policy_for(agent, &parts.config, parts.overrides, parts.retry.as_ref());
        let source = source_of(rule);
        // Boxed: the task itself stays small, so spawning it copies little.
        let outcome = Box::pin(run_node(&parts.run, node, agent, &input, &source, &policy)).await;
        (node, outcome)
    }
}

/// The error for a node without an agent (a graph built wrong).
fn missing_agent(node: NodeId) -> OrchestrationError {
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
fn make_input(rule: InputRule, input: &AgentInput, outputs: &[Option<AgentOutput>]) -> AgentInput {
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
fn source_of(rule: InputRule) -> InputSource {
    match rule {
        InputRule::RunInput => InputSource::RunInput,
        InputRule::OutputOf(node) => InputSource::OutputOf(node),
    }
}

type Joined = std::result::Result<
    (
        tokio::task::Id,
        (NodeId, std::result::Result<AgentOutput, NodeFailure>),
    ),
    tokio::task::JoinError,
>;

/// The node a finished task ran and how it ended — also when the task itself
/// failed (a panic outside the attempts, an abort).
fn joined_outcome(
    joined: Joined,
    running: &mut HashMap<tokio::task::Id, NodeId>,
) -> (NodeId, std::result::Result<AgentOutput, NodeFailure>) {
    match joined {
        Ok((id, result)) => {
            running.remove(&id);
            result
        }
        Err(error) => {
            let node = running.remove(&error.id()).unwrap_or(NodeId(u32::MAX));
            let why = if error.is_cancelled() {
                "the agent's task ended without a result (it was aborted)"
            } else {
                "the agent's task panicked outside its attempts"
            };
            let failure = OrchestrationError::AgentError(AgentError::new(why));
            (node, Err(NodeFailure::Failed(failure)))
        }
    }
}

/// Tells the scheduler how `node` ended and keeps its output or failure;
/// returns the interruption it saw, if any.
fn settle(
    scheduler: &mut Scheduler,
    outputs: &mut [Option<AgentOutput>],
    failures: &mut Vec<(NodeId, OrchestrationError)>,
    node: NodeId,
    outcome: std::result::Result<AgentOutput, NodeFailure>,
) -> Option<Interruption> {
    match outcome {
        Ok(output) => {
            if let Some(slot) = outputs.get_mut(node.index()) {
                *slot = Some(output);
            }
            scheduler.complete(node, Completion::Succeeded);
            None
        }
        Err(NodeFailure::Failed(error)) => {
            failures.push((node, error));
            scheduler.complete(node, Completion::Failed);
            None
        }
        Err(NodeFailure::Interrupted(why)) => {
            scheduler.complete(node, Completion::Interrupted);
            Some(why)
        }
    }
}
