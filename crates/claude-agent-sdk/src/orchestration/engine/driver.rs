//! The driver: one run, from its first event to its last.
//!
//! It asks the [`Scheduler`] what may start, runs each node through the
//! [executor](crate::orchestration::executor) — [one at a time](super::serial)
//! on a task of its own when the graph never runs two nodes at once (a
//! pipeline; on the caller's task when the run is nested in an attempt, or
//! its one agent is borrowed), on [worker tasks](super::workers) otherwise
//! (a fan-out) — and
//! tells the scheduler how each ended. When the run must stop (cancelled, out of time),
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

use super::branching::Branching;
use super::graph::Graph;
use super::recorder::{NodeNames, Recorder};
use super::run_state::{Reuse, RunState};
use super::scheduler::{Decision, Scheduler};
use super::serial::{drive_inline, drive_on_task, OnTask};
use super::stop::{interruption_error, RunStop, TimeLimit, STORE_GRACE};
use super::walk::{Agents, Overrides, Walk};
use super::workers;
use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::budget::{Budget, BudgetExceeded, RunBudget, Spending};
use crate::orchestration::config::ExecutionConfig;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::executor::RunShared;
use crate::orchestration::human::{FinishedStep, Question};
use crate::orchestration::journal::{Interruption, NodeId, RunId, RunOutcome};
use crate::orchestration::resume::Continuation;
use crate::orchestration::scope::{self, AttemptScope, RunBooks};
use crate::orchestration::telemetry::{in_run_span, log_event, record_run_id};

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
    /// What the graph's author decides as it runs (none for patterns).
    pub(crate) branching: Option<Arc<dyn Branching>>,
    /// What the run may spend.
    pub(crate) budget: RunBudget,
    /// Outputs of steps a paused run finished, to reuse.
    pub(crate) reuse: Reuse,
}

/// What a run produced, for its pattern to conclude from. A pipeline's or
/// fan-out's steps are its nodes: step *k* ran node *k*.
pub(crate) struct RunReport {
    /// The name of each node's agent.
    pub(crate) names: NodeNames,
    /// Each step's output, when it succeeded.
    pub(crate) outputs: Vec<Option<AgentOutput>>,
    /// The steps that failed for good, in step order, with their errors.
    pub(crate) failures: Vec<(NodeId, OrchestrationError)>,
    /// Why the run was cut short, if it was.
    pub(crate) interrupted: Option<Interruption>,
    /// The budget (or step limit) that stopped the run, if one did.
    pub(crate) stopped: Option<OrchestrationError>,
    /// The questions steps asked (the run paused), with the steps that asked.
    pub(crate) asked: Vec<(NodeId, Question)>,
    /// The steps that finished inside graphs nested in the steps that asked.
    pub(crate) finished_inside: Vec<FinishedStep>,
    /// The journal's failure to store the run, which fails it.
    pub(crate) store_failure: Option<OrchestrationError>,
    /// What each step that succeeded decided, by step, when its node decides.
    pub(crate) decisions: Vec<Option<Decision>>,
    /// The scheduler, with the steps the run took and its results.
    pub(crate) scheduler: Scheduler,
    /// The run's id.
    pub(crate) run: RunId,
    /// What bounded the run's time (for the error of a run that timed out).
    pub(crate) time_limit: TimeLimit,
    /// For a run not nested in another, the run whose id its idempotency
    /// keys start with (see [`Pause::origin`](crate::orchestration::Pause::origin)).
    pub(crate) origin: Option<RunId>,
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
        branching,
        budget,
        reuse,
    } = plan;
    let log = config.enable_logging;
    let nodes = agents.len();
    in_run_span(graph.kind, nodes, async move {
        let parent = scope::current();
        let nesting = parent.as_ref().map(AttemptScope::nest);
        let token = match &nesting {
            Some(nesting) => nesting.stop.child(),
            None => ctx.cancellation().child(),
        };
        let (limit, deadline) = TimeLimit::of(
            config.timeout,
            Instant::now(),
            parent.as_ref().and_then(|parent| parent.deadline),
        );
        let stop = RunStop {
            token,
            context: parent.as_ref().map(|_| ctx.cancellation().clone()),
            deadline,
            limit,
        };
        let run_id = RunId::new();
        record_run_id(run_id);
        let names = agents.names();
        // A resumed run: the first run under the context that is not nested.
        let continuation = match parent {
            None => ctx.take_continuation(),
            Some(_) => None,
        };
        let mut reuse = reuse;
        if let Some(continuation) = &continuation {
            // The claim waits for the store, but not past the run's stop.
            let continued = tokio::select! {
                biased;
                kept = continue_from(continuation, &names, branching.as_deref(), ctx, run_id) => kept,
                why = stop.stopped() => Err(interruption_error(why, orchestrator, limit)),
            };
            match continued {
                Ok(kept) => reuse.extend(kept),
                Err(error) => return (run_id, Err(error)),
            }
        }
        // A run not nested in another: the first run of its chain of
        // resumes, whose id its idempotency keys start with.
        let origin = match (&parent, &continuation) {
            (Some(_), _) => None,
            (None, Some(continuation)) if continuation.fork.is_none() => Some(continuation.origin),
            (None, _) => Some(run_id),
        };
        let key_prefix = match (&parent, origin) {
            (Some(parent), _) => parent.idempotency_key(),
            (None, origin) => origin.unwrap_or(run_id).to_string(),
        };
        let recorder = Recorder::new(
            run_id,
            orchestrator,
            config,
            ctx,
            names.clone(),
            branching.is_none(),
            limit,
        )
        .nested_within(parent.as_ref().and_then(|parent| parent.run.text_limit()));
        let enclosing = parent.as_ref().map(AttemptScope::activations);
        // What a nested run spends counts in the runs around it too.
        let (nested, within) = match nesting {
            Some(nesting) => (Some(nesting.alive), Some(nesting.within)),
            None => (None, None),
        };
        let spending = Spending::new(&budget, within);
        let shared = Arc::new(RunShared::new(
            ctx,
            recorder,
            stop,
            key_prefix,
            enclosing.unwrap_or_default(),
            spending,
        ));
        if let Some(parent) = &parent {
            let books: Arc<dyn RunBooks> = Arc::clone(&shared) as Arc<dyn RunBooks>;
            parent.run.adopt(Arc::downgrade(&books));
        }
        // A run nested in an attempt of a run under this same context shows
        // in that run's trace, not among the context's runs.
        let nested_here = parent
            .as_ref()
            .is_some_and(|parent| parent.run.context().is_same(ctx));
        ctx.run_started(run_id, !nested_here);
        if parent.is_none() {
            // Its changes go into the context's state: a run that resumes
            // it there does not replay them.
            ctx.hold_changes_of([run_id]);
        }
        if config.enable_tracing {
            // A run start and end, and at least a start and an end per node
            // (and, in a graph, the step's announcement).
            let per_node = if branching.is_some() { 3 } else { 2 };
            ctx.journal().reserve(per_node * nodes + 2);
        }
        // A resumed run names the run it continues; a fork, where it starts.
        let (resumes, forks) = match &continuation {
            Some(continuation) => match &continuation.fork {
                Some(fork) => (None, Some(fork.clone())),
                None => (Some(continuation.previous), None),
            },
            None => (None, None),
        };
        shared.recorder.run_started(
            &input,
            parent.as_ref().map(|parent| parent.attempt),
            resumes,
            forks,
        );
        if parent.is_none() {
            let carried = continuation
                .as_ref()
                .map(|continuation| &continuation.answers);
            shared.recorder.answers_given(ctx.answers(), carried);
        }
        let durable = ctx.journal().is_durable();
        log_event!(log, debug, agents = nodes, "orchestration started");
        let mut books = OpenBooks {
            shared: Some(Arc::clone(&shared)),
            _nested: nested,
        };
        // A durable run is stored before any of its agents starts: a process
        // killed from then on leaves a run to resume. A store that does not
        // answer keeps it from starting, but not past its stop.
        if durable && parent.is_none() {
            let stopped = tokio::select! {
                biased;
                stored = ctx.journal().flush() => stored
                    .err()
                    .map(|error| (RunOutcome::Failed(error.clone()), error)),
                why = shared.stop.stopped() => Some((
                    RunOutcome::Interrupted(why),
                    interruption_error(why, orchestrator, limit),
                )),
            };
            if let Some((outcome, error)) = stopped {
                let was_stopped = matches!(outcome, RunOutcome::Interrupted(_));
                books.close(outcome);
                if was_stopped {
                    // Its end, as any stopped run's (a failed store has
                    // nothing more to take).
                    let _ = store_end(ctx, true).await;
                }
                return (run_id, Err(error));
            }
        }
        let walk = Walk {
            run: Arc::clone(&shared),
            agents,
            input: Arc::new(input),
            config: config.clone(),
            overrides,
            retry: config.retry_policy(),
            branching,
            budget,
            started: Instant::now(),
            durable,
        };
        let mut report = drive(walk, graph, names, reuse, origin).await;
        let interrupted = report.interrupted;
        let store_failure = report.store_failure.take();
        let mut result = conclude(report);
        if let Some(error) = store_failure {
            result = Err(error);
        }
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
        // The run's last event is stored before it returns (nested runs'
        // are stored with their root's).
        if durable && parent.is_none() {
            if let Err(error) = store_end(ctx, interrupted.is_some()).await {
                result = Err(error);
            }
        }
        (run_id, result)
    })
    .await
}

/// Waits for the store to commit a top-level run's last events. A run that
/// was `stopped` (cancelled, out of time) waits no longer than
/// [`STORE_GRACE`] for a store that does not answer: its caller asked for it
/// to stop, and its error already says why it did. The store gets its end
/// when it answers again; until then the run reads as crashed, resumable.
async fn store_end(ctx: &ExecutionContext, stopped: bool) -> Result<()> {
    if stopped {
        tokio::time::timeout(STORE_GRACE, ctx.journal().flush())
            .await
            .unwrap_or(Ok(()))
    } else {
        ctx.journal().flush().await
    }
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

/// Runs every step of `graph`; reports how each ended (failures in step
/// order). A top-level run's steps never run on the caller's task (see
/// [`drive_on_task`]); a nested run's may, since the attempt it runs in
/// leaves it behind when it must.
async fn drive(
    walk: Walk<'_>,
    graph: Graph,
    names: NodeNames,
    reuse: Reuse,
    origin: Option<RunId>,
) -> RunReport {
    // A run not nested in another (it has an origin) walks on a task of its
    // own when it runs one step at a time.
    let top_level = origin.is_some();
    let run = walk.run.recorder.run_id();
    let time_limit = walk.run.stop.limit;
    let limit = if graph.concurrent {
        walk.config.parallel_limit
    } else {
        1
    };
    let concurrent = graph.concurrent;
    let announce = walk.branching.is_some();
    let state = RunState::new(
        Scheduler::new(graph, limit, walk.budget.max_steps),
        announce,
    )
    .reusing(reuse);
    let max_steps = walk.budget.max_steps;
    // A graph's nodes by the ids its author gave them (for the step limit's
    // culprit); a pattern's by their agents' names.
    let branching = walk.branching.clone();
    let label = |node: NodeId| match &branching {
        Some(branching) => branching.label(node).to_owned(),
        None => names.get(node).to_owned(),
    };
    let (mut state, mut interrupted) = match walk.into_owned() {
        Ok(walk) if concurrent => workers::drive(Arc::new(walk), state).await,
        Ok(walk) if top_level => match drive_on_task(walk, state).await {
            OnTask::Walked(state, interrupted) => (*state, interrupted),
            // The steps' state stays with the step that did not stop: the
            // run ends as interrupted, its records (in the journal) say how.
            OnTask::Abandoned(why) => return abandoned(names, why, run, origin, time_limit),
        },
        Ok(walk) => drive_inline(&walk, state).await,
        // A borrowed agent cannot go to a task of its own.
        Err(walk) => drive_inline(&walk, state).await,
    };
    // One rule for a stop that races the last completions: if every node
    // ran to its own end anyway, the run has its result.
    if state.scheduler.completed_all() {
        interrupted = None;
    }
    state.failures.sort_by_key(|(step, _)| *step);
    let stopped = state
        .exceeded
        .take()
        .or_else(|| runaway(&state.scheduler, label, max_steps));
    RunReport {
        names,
        outputs: state.outputs,
        failures: state.failures,
        interrupted,
        asked: std::mem::take(&mut state.asked),
        finished_inside: std::mem::take(&mut state.finished_inside),
        store_failure: state.store_failure.take(),
        stopped: stopped.map(|exceeded| OrchestrationError::BudgetExceeded(Box::new(exceeded))),
        decisions: std::mem::take(&mut state.decisions),
        scheduler: state.scheduler,
        run,
        time_limit,
        origin,
    }
}

/// The report of a run whose step was left behind when it stopped (as
/// `why`): nothing it produced is at hand, and it did not complete.
fn abandoned(
    names: NodeNames,
    why: Interruption,
    run: RunId,
    origin: Option<RunId>,
    time_limit: TimeLimit,
) -> RunReport {
    let state = RunState::empty();
    RunReport {
        names,
        outputs: state.outputs,
        failures: state.failures,
        interrupted: Some(why),
        asked: Vec::new(),
        finished_inside: Vec::new(),
        store_failure: None,
        stopped: None,
        decisions: Vec::new(),
        scheduler: state.scheduler,
        run,
        time_limit,
        origin,
    }
}

/// What run `run` reuses of the run `continuation` continues: the outputs
/// of its finished steps, once the journal gave the continued run to this
/// one (a run is continued once) and its nodes match `names` (and, for a
/// graph, the node ids `branching` labels them with).
async fn continue_from(
    continuation: &Continuation,
    names: &NodeNames,
    branching: Option<&dyn Branching>,
    ctx: &ExecutionContext,
    run: RunId,
) -> Result<Reuse> {
    let agent_names: Vec<&str> = names.iter().collect();
    let labels: Vec<&str> = match branching {
        Some(branching) => (0..agent_names.len())
            .map(|node| branching.label(NodeId::from_index(node)))
            .collect(),
        None => Vec::new(),
    };
    let reuse = continuation
        .reuse(&labels, &agent_names)
        .map_err(OrchestrationError::InvalidConfig)?;
    if continuation.fork.is_none() {
        if let Some(other) = ctx
            .journal()
            .claim_resume(continuation.previous, run)
            .await?
        {
            return Err(OrchestrationError::InvalidConfig(format!(
                "run {} was resumed already, by run {other}: resume that one",
                continuation.previous
            )));
        }
    }
    continuation.replay_state(ctx);
    // What finished inside steps that did not goes back to the graphs
    // nested in those steps when they run again.
    for (step, finished) in continuation.handed_inside(&labels) {
        ctx.keep_paused_inside(step, vec![finished]);
    }
    Ok(reuse)
}

/// The step limit's error, when the run reached it: it names the loop
/// that ran away — of the loops that went round, the one on the most
/// passes in a row (those around the node refused a step first; on a tie,
/// the innermost) — or, when none went round, the node refused a step.
fn runaway(
    scheduler: &Scheduler,
    label: impl Fn(NodeId) -> String,
    steps: usize,
) -> Option<BudgetExceeded> {
    let node = scheduler.runaway()?;
    let runs = scheduler.activations(node);
    let graph = scheduler.graph();
    let went_round = |around_node: bool| {
        graph
            .loops
            .iter()
            .enumerate()
            .filter(|(_, lp)| !around_node || lp.body.contains(&node))
            .map(|(index, lp)| (scheduler.loop_iteration(index), lp))
            .filter(|(passes, _)| *passes > 1)
            .max_by(|(a, a_loop), (b, b_loop)| {
                a.cmp(b).then(b_loop.body.len().cmp(&a_loop.body.len()))
            })
    };
    let culprit = match went_round(true).or_else(|| went_round(false)) {
        Some((_, lp)) => format!(
            "the loop from `{}` back to `{}` ran away (`{}` had {runs} steps)",
            label(lp.from),
            label(lp.to),
            label(node)
        ),
        // A map node's steps are its own and one per item.
        None => format!("`{}` had {runs} steps", label(node)),
    };
    Some(BudgetExceeded::new(Budget::Steps, steps as f64, steps as f64).with_culprit(culprit))
}
