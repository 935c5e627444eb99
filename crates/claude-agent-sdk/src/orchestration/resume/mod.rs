//! Resuming a run from its journal: a run that stopped — its process
//! killed, a timeout, a failed agent since fixed, a question waiting for an
//! answer — continues where it stopped, without running again what finished.
//!
//! [`resume`] reads the stopped run's events from the context's
//! [`Journal`](super::Journal) (any store: the in-memory one in a process,
//! `SqliteJournal` or `PostgresJournal` — features `sqlite`, `postgres` —
//! across processes) and
//! starts a new run of the same orchestrator that *continues* it:
//!
//! - every step that finished successfully is not run again — its output
//!   comes from the journal, and the run moves on from it exactly as it did
//!   (where its router or loop condition sent it, as journaled with the
//!   step, not decided again on the state as it is now);
//! - a step that started and never finished (the process died in the middle
//!   of it) runs again: steps run **at least once**, and exactly once when
//!   they finished before the stop — what finished inside a graph,
//!   pipeline or fan-out nested in such a step (a subgraph, a map's items,
//!   an `OrchestratorAgent`) is handed back to it and not run again either
//!   (see `nested`);
//! - the changes the finished steps made to the shared state are replayed
//!   into the context — those of every attempt of such a step, a failed
//!   attempt that was retried included, as the run went on with them; those
//!   of a step that runs again are dropped. A context the stopped run ran
//!   under (or a handle sharing its state) holds them already and keeps what
//!   it has; a fresh one, in another process, gets them all, on top of what
//!   it was given before the resume. (An
//!   [`update_state`](super::ExecutionContext::update_state) is journaled as
//!   the value it made: one made on top of a dropped change keeps it.) A
//!   [`fork`] starts from the changes up to its fork point: under a context
//!   holding the forked run's changes, every key that run changed is set
//!   back to what those changes make of it (a value the key had before the
//!   forked run is not restored); other keys stay as they are;
//! - the new run is a run of its own in the journal (its own [`RunId`]), whose
//!   `RunStarted` event names the run it resumes; a chain of resumes reads
//!   back to the first run, and a run is resumed at most once — resuming it
//!   again means resuming the run that continued it.
//!
//! # Idempotency keys
//! Work that a step does outside the process (a payment, an e-mail, a row
//! written) may happen twice when a step runs again after a crash. Each
//! attempt has a key that stays the same when the same attempt of the same
//! step runs again in a resumed run:
//! [`ExecutionContext::idempotency_key`](super::ExecutionContext::idempotency_key),
//! `{first run id}/{node}.{activation}/{attempt}` (node: the node's position
//! in its graph; activation: which of the node's steps, from 1; nested runs
//! prefix theirs with the key of the attempt they run in). Give it to the
//! service that does the side effect, and it can refuse the second one.
//!
//! # What must match
//! The resumed run must be built the same way: in a pipeline or fan-out, the
//! same nodes (by agent name); in a graph, every step that finished must
//! still be there (its node id, with the same agent) — a graph may gain
//! nodes, or change those that never ran, between the runs. A difference is
//! an [`InvalidConfig`](OrchestrationError::InvalidConfig) error naming it,
//! and nothing runs. The input comes from the journal. Steps handed back to
//! a graph nested in a step that did not finish are matched when that graph
//! runs: one whose node it no longer has is left out (the graph changed
//! since: what it has runs anew); their agents are not compared. A nested
//! pipeline or fan-out matches its steps by agent name (and which of the
//! agents with that name each is), a pipeline only up to its first change.

mod nested;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use nested::{finished_inside, Attempts, FinishedInside};
pub(crate) use nested::{pattern_labels, pattern_position};

use crate::orchestration::agent::{Agent, AgentOutput};
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::run_state::{decision_of, Reuse, Reused};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::human::FinishedStep;
use crate::orchestration::journal::{
    AttemptOutcome, EventKind, ForkPoint, JournalEvent, NodeId, ParentAttempt, RunId, RunOutcome,
    StateChange, StepDecision,
};
use crate::orchestration::orchestrator::{Orchestrator, OrchestratorInput, OrchestratorOutput};

/// Resumes run `run` of `orchestrator` (see the [module docs](self)):
/// reads its events from `ctx`'s journal and runs what is left of it under
/// `ctx`, with the answers `ctx` holds for questions the run asked.
///
/// `agents` are the orchestrator's agents, as for
/// [`orchestrate_with_context`](Orchestrator::orchestrate_with_context)
/// (an empty list for a [`GraphOrchestrator`](super::GraphOrchestrator)).
///
/// # Errors
/// [`OrchestrationError::InvalidConfig`] when the journal has no such run,
/// the run kept no records (tracing was off), it was resumed already, or
/// the orchestrator's nodes differ from the run's; otherwise what the
/// resumed run returns.
pub async fn resume<O>(
    orchestrator: &O,
    agents: Vec<Box<dyn Agent>>,
    run: RunId,
    ctx: &ExecutionContext,
) -> Result<OrchestratorOutput>
where
    O: Orchestrator + ?Sized,
{
    resume_with_metadata(orchestrator, agents, run, HashMap::new(), ctx).await
}

/// As [`resume`], with `metadata` set in the input's metadata (the rest of
/// the input comes from the journal, as the finished steps were computed
/// from it): what changed about the run's surroundings since it stopped —
/// a new request id, the fingerprint of a definition that changed — which
/// the resumed run records, and a later resume of it reads.
///
/// # Errors
/// As [`resume`].
pub async fn resume_with_metadata<O>(
    orchestrator: &O,
    agents: Vec<Box<dyn Agent>>,
    run: RunId,
    metadata: HashMap<String, String>,
    ctx: &ExecutionContext,
) -> Result<OrchestratorOutput>
where
    O: Orchestrator + ?Sized,
{
    let continuation = Continuation::read(ctx, run).await?;
    for (id, answer) in &continuation.answers {
        if !ctx.answers().contains_key(id) {
            ctx.answer(id.clone(), answer.clone());
        }
    }
    let mut input = continuation.input.clone();
    input.metadata.extend(metadata);
    let ctx = ctx.clone().continuing(continuation);
    orchestrator
        .orchestrate_with_context(agents, input, &ctx)
        .await
}

/// Starts a new run of `orchestrator` from the state after the last
/// finished step of node `after` in run `run` (a graph's node id, or an
/// agent's name in a pipeline or fan-out): the steps that finished up to it
/// are not run again (their outputs and state changes are reused); what
/// came after runs anew — with changed agents, prompts or, given `input`, a
/// changed input. The old run and its history stay as they are; the fork is
/// a run of its own, which can itself be resumed or forked. Under the
/// context the old run ran under, the keys of the shared state it changed
/// start again from the changes up to the fork point (see the
/// [module docs](self)).
///
/// # Errors
/// As [`resume`], and [`OrchestrationError::InvalidConfig`] when the run
/// has no finished step of `after`.
pub async fn fork<O>(
    orchestrator: &O,
    agents: Vec<Box<dyn Agent>>,
    run: RunId,
    after: &str,
    input: Option<OrchestratorInput>,
    ctx: &ExecutionContext,
) -> Result<OrchestratorOutput>
where
    O: Orchestrator + ?Sized,
{
    let continuation = Continuation::read(ctx, run).await?.fork_after(after)?;
    let input = input.unwrap_or_else(|| continuation.input.clone());
    let ctx = ctx.clone().continuing(continuation);
    orchestrator
        .orchestrate_with_context(agents, input, &ctx)
        .await
}

/// What a resumed run continues from: read from the journal, taken by the
/// first run (not nested in another) that starts under the context.
#[derive(Debug, Clone)]
pub(crate) struct Continuation {
    /// The run this one continues.
    pub(crate) previous: RunId,
    /// The first run of the chain (its id starts every idempotency key).
    pub(crate) origin: RunId,
    /// The run's input.
    pub(crate) input: OrchestratorInput,
    /// The names of the run's nodes, when the run named them (pipelines and
    /// fan-outs: their agents).
    pub(crate) nodes: Vec<String>,
    /// Every step that finished, oldest run first.
    pub(crate) finished: Vec<Finished>,
    /// Answers the run already had.
    pub(crate) answers: HashMap<String, String>,
    /// The changes to the shared state that finished attempts made, in order.
    pub(crate) state: Vec<KeptChange>,
    /// The runs whose changes `state` holds (a context holding them is not
    /// given them again).
    runs: Vec<RunId>,
    /// Every key the runs read changed — what a fork under a context that
    /// holds them sets back.
    touched: HashSet<String>,
    /// The steps that finished inside top-level steps that did not, oldest
    /// run first (see [`nested`]).
    inside: Vec<FinishedInside>,
    /// Where the new run starts when it is a fork: a run of its own that
    /// starts from the old one's steps up to this point, not its
    /// continuation.
    pub(crate) fork: Option<ForkPoint>,
}

/// A state change a resumed run replays, and the top-level step whose
/// work it is part of (its node and activation, the same in every run of
/// the chain: a step cut short in one run and finished in the next is one
/// step).
#[derive(Debug, Clone)]
pub(crate) struct KeptChange {
    step: (StepNode, u32),
    /// The run of the chain it came with (for the part of a forked run's
    /// history a fork took, the fork).
    run: RunId,
    key: String,
    change: StateChange,
}

/// A step that finished, and where it is in the graph.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// The run and the step id it had there.
    step: (RunId, NodeId),
    pub(crate) node: StepNode,
    /// The agent that ran it.
    pub(crate) agent: String,
    pub(crate) activation: u32,
    pub(crate) output: AgentOutput,
    /// What its node decided about the output, when it decides.
    pub(crate) decision: Option<StepDecision>,
}

/// Which node a finished step activated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum StepNode {
    /// A pipeline's or fan-out's node, by position.
    Index(NodeId),
    /// A graph's node, by its id.
    Label(String),
}

impl Continuation {
    /// The continuation of run `previous`, which paused on `input`, resumed
    /// from its [`Pause`](crate::orchestration::Pause): the pause holds what
    /// it finished, so this only links the runs (a run is continued once)
    /// and keeps the idempotency keys of `origin`'s chain.
    pub(crate) fn after_pause(previous: RunId, origin: RunId, input: OrchestratorInput) -> Self {
        Self {
            origin,
            input,
            runs: vec![previous],
            ..Self::empty(previous)
        }
    }

    /// The continuation of run `run` with nothing finished: the start of a
    /// history [`read`](Self::read) fills in.
    fn empty(run: RunId) -> Self {
        Self {
            previous: run,
            origin: run,
            input: OrchestratorInput::default(),
            nodes: Vec::new(),
            finished: Vec::new(),
            answers: HashMap::new(),
            state: Vec::new(),
            runs: Vec::new(),
            touched: HashSet::new(),
            inside: Vec::new(),
            fork: None,
        }
    }

    /// Reads the history of `run` from `ctx`'s journal: its chain of
    /// resumes back to the first run, and when that one is a fork, the
    /// history of the forked run up to the fork point (and so on, a fork of
    /// a fork read the same way, in a loop).
    async fn read(ctx: &ExecutionContext, run: RunId) -> Result<Self> {
        let journal = ctx.journal();
        // Chains of resumes, newest first; each but the last is a fork of
        // the next one's newest run.
        let mut chains: Vec<Vec<Session>> = Vec::new();
        let mut next = Some(run);
        let mut sessions = 0_usize;
        while let Some(newest) = next.take() {
            let mut chain = Vec::new();
            let mut at = Some(newest);
            while let Some(id) = at {
                let events = journal.read_checked(&[id]).await?;
                let session = Session::of(id, &events)?;
                at = session.resumes;
                chain.push(session);
                sessions += 1;
                if sessions > 100_000 {
                    return Err(OrchestrationError::InvalidConfig(format!(
                        "run {run}: its chain of resumed and forked runs does not end"
                    )));
                }
            }
            next = chain
                .last()
                .and_then(|first| first.forks.as_ref())
                .map(|fork| fork.run);
            chains.push(chain);
        }
        let mut history: Option<Self> = None;
        while let Some(mut chain) = chains.pop() {
            let first = chain.last().map_or(run, |session| session.run);
            let mut continuation =
                match (history.take(), chain.last().and_then(|s| s.forks.clone())) {
                    // A fork: the forked run's history up to the fork point,
                    // which came into the state with the fork.
                    (Some(forked), Some(fork)) => {
                        let mut taken = forked.fork_after(&fork.after)?;
                        for kept in &mut taken.state {
                            kept.run = first;
                        }
                        taken.runs.clear();
                        taken
                    }
                    _ => Self::empty(first),
                };
            for session in chain.iter_mut().rev() {
                continuation.finished.append(&mut session.finished);
                continuation.answers.extend(session.answers.drain());
                continuation.state.append(&mut session.state);
                continuation.runs.push(session.run);
                continuation.touched.extend(session.touched.drain());
                continuation.inside.append(&mut session.inside);
            }
            let newest = chain.swap_remove(0);
            continuation.previous = newest.run;
            // Idempotency keys start with the first run of the newest chain
            // (a fork's keys are its own).
            continuation.origin = first;
            continuation.input = newest.input;
            continuation.nodes = newest.nodes;
            continuation.fork = None;
            history = Some(continuation);
        }
        history.ok_or_else(|| {
            OrchestrationError::InvalidConfig(format!("the journal has no run {run}"))
        })
    }

    /// Replays the state changes of the finished attempts into `ctx` (once
    /// the run that continues this one is sure to start): those of the runs
    /// whose changes `ctx`'s state does not hold — a context the stopped
    /// run ran under keeps what it has (its changes are in it already), a
    /// fresh one gets them all, on top of what it was given. A fork under
    /// a context holding the forked run's changes first sets every key
    /// that history changed back to no value: the keys start again from
    /// the changes up to the fork point.
    pub(crate) fn replay_state(&self, ctx: &ExecutionContext) {
        let held = |run: &RunId| ctx.holds_changes_of(*run);
        let reset = if self.fork.is_some() && self.runs.iter().any(held) {
            self.touched.clone()
        } else {
            HashSet::new()
        };
        ctx.replay_state(
            &reset,
            self.state
                .iter()
                .filter(|kept| reset.contains(&kept.key) || !held(&kept.run))
                .map(|kept| (kept.key.clone(), kept.change.clone())),
        );
        if self.fork.is_none() {
            ctx.hold_changes_of(self.runs.iter().copied());
        }
    }

    /// Turns this continuation into a fork after the last finished step of
    /// node `after` (a graph's node id, or an agent's name): what finished
    /// after it (and the state it changed) is dropped.
    fn fork_after(mut self, after: &str) -> Result<Self> {
        let Some(cut) = self.finished.iter().rposition(|step| {
            step.agent == after || step.node == StepNode::Label(after.to_owned())
        }) else {
            let mut steps: Vec<&str> = Vec::new();
            for step in &self.finished {
                let name = match &step.node {
                    StepNode::Label(label) => label.as_str(),
                    StepNode::Index(_) => step.agent.as_str(),
                };
                if !steps.contains(&name) {
                    steps.push(name);
                }
            }
            let choices = if steps.is_empty() {
                "it finished no step".to_owned()
            } else {
                format!(
                    "it finished {}",
                    steps
                        .iter()
                        .map(|step| format!("`{step}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(OrchestrationError::InvalidConfig(format!(
                "run {} has no finished step of `{after}` to fork after ({choices})",
                self.previous
            )));
        };
        self.finished.truncate(cut + 1);
        let kept: HashSet<(StepNode, u32)> = self
            .finished
            .iter()
            .map(|step| (step.node.clone(), step.activation))
            .collect();
        self.state.retain(|change| kept.contains(&change.step));
        // What was in flight is after the fork's step: it runs anew, and
        // asks its questions anew (the old run's answers are not the fork's).
        self.inside.clear();
        self.answers.clear();
        self.fork = Some(ForkPoint {
            run: self.previous,
            after: after.to_owned(),
        });
        Ok(self)
    }

    /// The steps that finished inside top-level steps that did not, each
    /// with the top-level step (node position and activation) whose nested
    /// graph gets it back, given the graph's node `labels` (empty for a
    /// pipeline or fan-out). A step whose top-level node this orchestrator
    /// does not have is left out: its node runs anew anyway.
    pub(crate) fn handed_inside(&self, labels: &[&str]) -> Vec<((NodeId, u32), FinishedStep)> {
        self.inside
            .iter()
            .filter_map(|inside| {
                let (node, activation) = &inside.top;
                let position = match node {
                    StepNode::Index(node) if labels.is_empty() => Some(*node),
                    StepNode::Index(_) => None,
                    StepNode::Label(label) => labels
                        .iter()
                        .position(|known| known == label)
                        .map(NodeId::from_index),
                };
                Some(((position?, *activation), inside.step.clone()))
            })
            .collect()
    }

    /// The outputs to reuse, by node position and activation, given the
    /// graph's node `labels` (empty for a pipeline or fan-out) and the agent
    /// `names` by node; or the differences between the run and this graph.
    pub(crate) fn reuse(
        &self,
        labels: &[&str],
        names: &[&str],
    ) -> std::result::Result<Reuse, String> {
        let mut problems = String::new();
        if labels.is_empty() && !self.nodes.is_empty() && self.nodes != names {
            let _ = write!(
                problems,
                "the run's agents were [{}]; these are [{}]",
                self.nodes.join(", "),
                names.join(", ")
            );
        }
        let index: HashMap<&str, usize> = labels
            .iter()
            .enumerate()
            .map(|(position, label)| (*label, position))
            .collect();
        let mut reuse = HashMap::new();
        for step in &self.finished {
            let position = match &step.node {
                StepNode::Index(node) => Some(node.index()),
                StepNode::Label(label) => index.get(label.as_str()).copied(),
            };
            let Some(position) = position.filter(|position| *position < names.len()) else {
                let node = match &step.node {
                    StepNode::Index(node) => node.to_string(),
                    StepNode::Label(label) => format!("`{label}`"),
                };
                let _ = write!(
                    problems,
                    "{}node {node} (agent `{}`) ran in the run; this graph has no such node",
                    if problems.is_empty() { "" } else { "; " },
                    step.agent
                );
                continue;
            };
            if !labels.is_empty() && names[position] != step.agent {
                let _ = write!(
                    problems,
                    "{}node `{}` ran agent `{}`; here it runs `{}`",
                    if problems.is_empty() { "" } else { "; " },
                    labels[position],
                    step.agent,
                    names[position]
                );
            }
            let decision = step.decision.as_ref().and_then(|kept| {
                decision_of(kept, |label| {
                    index.get(label).copied().map(NodeId::from_index)
                })
            });
            let reused = Reused {
                output: step.output.clone(),
                decision,
            };
            reuse.insert((NodeId::from_index(position), step.activation), reused);
        }
        if problems.is_empty() {
            Ok(reuse)
        } else {
            Err(format!(
                "run {} does not match this orchestrator: {problems}",
                self.previous
            ))
        }
    }
}

/// What one run of a chain left: read from its own events (not those of
/// the runs nested in it, which run again inside the steps that did not
/// finish).
struct Session {
    run: RunId,
    resumes: Option<RunId>,
    forks: Option<ForkPoint>,
    input: OrchestratorInput,
    nodes: Vec<String>,
    finished: Vec<Finished>,
    answers: HashMap<String, String>,
    state: Vec<KeptChange>,
    /// Every key a change in it (or in the runs nested in it) touched.
    touched: HashSet<String>,
    inside: Vec<FinishedInside>,
}

impl Session {
    fn of(run: RunId, events: &[JournalEvent]) -> Result<Self> {
        let mut started = None;
        // A graph's steps, by step id: its node, agent and activation.
        let mut steps: Vec<(String, String, u32)> = Vec::new();
        let mut activations: HashMap<String, u32> = HashMap::new();
        let mut finished = Vec::new();
        let mut answers = HashMap::new();
        for event in events.iter().filter(|event| event.run == run) {
            match &event.kind {
                EventKind::RunStarted {
                    input,
                    nodes,
                    resumes,
                    forks,
                    ..
                } => started = Some((input, nodes, *resumes, forks)),
                EventKind::StepAdded {
                    step,
                    node,
                    agent,
                    activation,
                    ..
                } => {
                    let counted = activations.entry(node.clone()).or_insert(0);
                    *counted += 1;
                    if steps.len() <= step.index() {
                        steps.resize(step.index() + 1, Default::default());
                    }
                    let activation = activation.unwrap_or(*counted);
                    steps[step.index()] = (node.clone(), agent.clone(), activation);
                }
                EventKind::AttemptFinished {
                    node,
                    outcome: AttemptOutcome::Succeeded(output),
                    ..
                } => {
                    let step = (run, *node);
                    let (node, agent, activation) = match steps.get(node.index()) {
                        Some((label, agent, activation)) => {
                            (StepNode::Label(label.clone()), agent.clone(), *activation)
                        }
                        None => {
                            let agent = started
                                .and_then(|(_, nodes, _, _)| nodes.get(node.index()))
                                .cloned()
                                .unwrap_or_default();
                            (StepNode::Index(*node), agent, 1)
                        }
                    };
                    finished.push(Finished {
                        step,
                        node,
                        agent,
                        activation,
                        output: output.clone(),
                        decision: None,
                    });
                }
                EventKind::StepDecided { step, decision } => {
                    let decided = finished.iter_mut().rev().find(|f| f.step == (run, *step));
                    if let Some(finished) = decided {
                        finished.decision = Some(decision.clone());
                    }
                }
                EventKind::RunFinished {
                    outcome: RunOutcome::Failed(OrchestrationError::InputRequired(pause)),
                } => answers.extend(pause.answers.clone()),
                EventKind::AnswersGiven { answers: given } => answers.extend(given.clone()),
                _ => {}
            }
        }
        let Some((input, nodes, resumes, forks)) = started else {
            return Err(OrchestrationError::InvalidConfig(format!(
                "the journal has no run {run}"
            )));
        };
        let attempts = Attempts::of(events);
        let top_step = |step: NodeId| match steps.get(step.index()) {
            Some((label, _, activation)) if !label.is_empty() => {
                (StepNode::Label(label.clone()), *activation)
            }
            _ => (StepNode::Index(step), 1),
        };
        let (inside, handed_back) = finished_inside(run, events, &attempts, top_step);
        let state = kept_state_changes(run, events, &attempts, &handed_back)
            .into_iter()
            .map(|(step, key, change)| KeptChange {
                step: top_step(step),
                run,
                key,
                change,
            })
            .collect();
        let touched = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::StateChanged { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect();
        let input = OrchestratorInput {
            content: input.content.clone(),
            context: input.context.clone(),
            metadata: input.metadata.clone(),
        };
        Ok(Self {
            run,
            resumes,
            forks: forks.clone(),
            input,
            nodes: nodes.clone(),
            finished,
            answers,
            state,
            touched,
            inside,
        })
    }
}

/// The state changes of `events` (a run and the runs nested in it) that a
/// resumed run starts from — those made by attempts whose work it keeps
/// (see [`nested`]), and by the attempts that asked the questions the run
/// paused on ([`Attempts::asked_in`]) — each with the top-level step (its
/// id in run `top`) whose work it is part of.
fn kept_state_changes(
    top: RunId,
    events: &[JournalEvent],
    attempts: &Attempts,
    handed_back: &HashSet<(RunId, NodeId)>,
) -> Vec<(NodeId, String, StateChange)> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::StateChanged {
                node,
                attempt,
                key,
                change,
            } => {
                let at = ParentAttempt {
                    run: event.run,
                    node: *node,
                    attempt: *attempt,
                };
                let step = attempts
                    .kept_in(top, at, handed_back)
                    .or_else(|| attempts.asked_in(top, at))?;
                Some((step, key.clone(), change.clone()))
            }
            _ => None,
        })
        .collect()
}
