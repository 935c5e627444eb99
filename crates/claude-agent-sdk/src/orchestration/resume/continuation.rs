//! What a resumed run continues from: the steps that finished before the
//! stop, the answers already given, and the changes to the shared state the
//! new run starts from.
//!
//! A [`Continuation`] is read from the journal once, before the new run
//! starts ([`history`](super::history)), and goes to that run inside its
//! context ([`ExecutionContext::continuing`]): the first run that starts
//! under the context, not nested in another, takes it. The journal knows
//! the stopped run's steps; only the new run knows its graph. So the
//! continuation keeps each finished step by what names it in any build of
//! the graph ([`StepNode`]: a graph's node id, a pipeline's position) and
//! the new run matches them against its own nodes ([`Continuation::reuse`]),
//! refusing to start when they differ.
//!
//! A fork is a continuation cut short after one step
//! ([`Continuation::fork_after`]): what finished after it, the state it
//! changed and the answers given are dropped, and the new run is a run of
//! its own rather than the old one's continuation.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::nested::FinishedInside;
use crate::orchestration::agent::AgentOutput;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::branching::decision_of;
use crate::orchestration::engine::run_state::{Reuse, Reused};
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::human::FinishedStep;
use crate::orchestration::journal::{ForkPoint, NodeId, RunId, StateChange, StepDecision};
use crate::orchestration::orchestrator::OrchestratorInput;

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
    pub(super) runs: Vec<RunId>,
    /// Every key the runs read changed — what a fork under a context that
    /// holds them sets back.
    pub(super) touched: HashSet<String>,
    /// The steps that finished inside top-level steps that did not, oldest
    /// run first (see [`nested`](super::nested)).
    pub(super) inside: Vec<FinishedInside>,
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
    pub(super) step: (StepNode, u32),
    /// The run of the chain it came with (for the part of a forked run's
    /// history a fork took, the fork).
    pub(super) run: RunId,
    pub(super) key: String,
    pub(super) change: StateChange,
}

/// A step that finished, and where it is in the graph.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// The run and the step id it had there.
    pub(super) step: (RunId, NodeId),
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
    pub(super) fn empty(run: RunId) -> Self {
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
    pub(super) fn fork_after(mut self, after: &str) -> Result<Self> {
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
