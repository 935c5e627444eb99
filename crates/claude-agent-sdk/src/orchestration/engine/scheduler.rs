//! The scheduler: which step runs next, decided from the run's state alone.
//!
//! No I/O, no clock, no tokio: the driver tells the scheduler what happened
//! (a step completed, how, and — for a node with a router or at the end of a
//! loop — what the driver decided from its output) and asks what to start.
//!
//! A *step* is one activation of a node: a pipeline's or fan-out's nodes run
//! once each (step *k* is node *k*), while a graph's node may run once per
//! loop iteration, and a map node once per item. A node becomes ready as
//! soon as its own predecessors allow — there is no "superstep" barrier, so
//! a fast branch never waits for a slow sibling — and the scheduler hands out
//! at most `limit` steps at a time, so the concurrency limit is exact by
//! construction.
//!
//! A step's completion reaches the nodes it feeds as a token, and each
//! node's join counts the tokens it received ([`tokens`]). A loop's last
//! node may send the run back to the loop's first ([`loops`]), and a map
//! node's step splits into one step per item ([`maps`]). Every step counts
//! against the run's step limit; a run that reaches it starts nothing more
//! and names the node it refused a step. The same scheduler, run over a
//! graph alone, tells whether a retry of a failed run could still reach
//! its end ([`what_if`]).

use std::collections::VecDeque;

use self::loops::{loop_reach, LoopReach};
use self::maps::MapItems;
use self::tokens::{NodeState, Token};
use super::graph::Graph;
use crate::orchestration::journal::NodeId;

/// A step of a run: the journal's [`NodeId`] names steps.
pub(crate) type StepId = NodeId;

/// How a step's run ended, as far as scheduling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    Succeeded,
    Failed,
    Interrupted,
}

/// What the driver decided from a succeeded step's output (for nodes with a
/// router, or at the end of a loop).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The successors that get the output; `None`: all of them.
    pub(crate) routes: Option<Vec<NodeId>>,
    /// Whether the output is one of the run's results; `None`: whether the
    /// node has an edge to the end.
    pub(crate) ends: Option<bool>,
    /// Whether the loop this node closes goes round again (if its bound allows).
    pub(crate) again: bool,
}

/// Where a step's input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepInput {
    /// The run's input.
    RunInput,
    /// Another step's output.
    OutputOf(StepId),
    /// Several steps' outputs, gathered (a join, in predecessor order; a
    /// map's items, in item order).
    Gathered(Vec<StepId>),
    /// Item `index` of the items a map step split its input into.
    Item { map: StepId, index: u32 },
}

/// What a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepKind {
    /// A node's agent runs.
    Agent,
    /// A map node's activation: the driver splits its input into items
    /// ([`Scheduler::expand`]); it completes when every item's step has.
    Map,
}

/// One activation of a node.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) node: NodeId,
    pub(crate) kind: StepKind,
    pub(crate) input: StepInput,
    /// The iteration of the innermost loop the node is in (1 outside loops).
    pub(crate) iteration: u32,
    /// For a map item's step: its map step and the item's index.
    pub(crate) item: Option<(StepId, u32)>,
    /// Which of its node's steps this is, from 1 (set when the step is added).
    pub(crate) activation: u32,
}

/// Decides what runs next (see the module docs).
#[derive(Debug)]
pub(crate) struct Scheduler {
    graph: Graph,
    /// The nodes node `n` feeds: `successors[start[n]..start[n + 1]]`, each
    /// edge with its slot among the edges into its target.
    start: Vec<usize>,
    successors: Vec<NodeId>,
    slots: Vec<usize>,
    /// How many nodes feed node `n`.
    waits: Vec<usize>,
    /// What going round each loop touches (empty without loops).
    reach: Vec<LoopReach>,
    /// The nodes that feed node `n`, by slot (kept when the graph has loops:
    /// going round re-delivers tokens by slot).
    predecessors: Vec<Vec<NodeId>>,
    /// Which nodes a loop going round is starting afresh: marked and cleared
    /// within [`go_round`](Self::go_round), kept to spare it an allocation.
    afresh: Vec<bool>,
    /// The token each node last received in each of its slots — node `n`'s
    /// at `inbox[inbox_start[n]..]` — kept when the graph has loops (empty
    /// otherwise).
    inbox_start: Vec<usize>,
    inbox: Vec<Option<Token>>,
    nodes: Vec<NodeState>,
    /// How many steps each node has had.
    activations: Vec<u32>,
    /// The current iteration of each loop (from 1).
    iterations: Vec<u32>,
    steps: Vec<Step>,
    /// How each step ended, once it has.
    ended: Vec<Option<Completion>>,
    /// Each map step's items (by map step; empty for other steps).
    maps: Vec<MapItems>,
    ready: VecDeque<StepId>,
    /// Map steps whose items have all completed, for the driver to gather.
    gathered: Vec<StepId>,
    /// The steps whose outputs are the run's results, in completion order.
    results: Vec<StepId>,
    /// Agent steps running.
    running: usize,
    /// Map steps waiting for their items.
    mapping: usize,
    limit: usize,
    max_steps: usize,
    /// The node refused a step when the step limit was reached.
    runaway: Option<NodeId>,
}

impl Scheduler {
    /// A scheduler for `graph` running at most `limit` agent steps at once
    /// (at least one) and creating at most `max_steps` steps.
    pub(crate) fn new(graph: Graph, limit: usize, max_steps: usize) -> Self {
        let (start, successors, slots) = graph.edge_table();
        let waits = graph.inbound_counts();
        let count = graph.len();
        let (reach, predecessors, inbox_start) = loop_reach(&graph, &waits);
        let inbox = vec![
            None;
            if graph.loops.is_empty() {
                0
            } else {
                successors.len()
            }
        ];
        let mut scheduler = Self {
            start,
            successors,
            slots,
            waits,
            reach,
            afresh: vec![false; if graph.loops.is_empty() { 0 } else { count }],
            predecessors,
            inbox_start,
            inbox,
            nodes: vec![NodeState::waiting(); count],
            activations: vec![0; count],
            iterations: vec![1; graph.loops.len()],
            graph,
            steps: Vec::with_capacity(count),
            ended: Vec::with_capacity(count),
            maps: Vec::new(),
            ready: VecDeque::new(),
            gathered: Vec::new(),
            results: Vec::new(),
            running: 0,
            mapping: 0,
            limit: limit.max(1),
            max_steps,
            runaway: None,
        };
        for index in 0..count {
            if scheduler.waits[index] == 0 {
                scheduler.activate(NodeId::from_index(index), StepInput::RunInput);
            }
        }
        scheduler
    }

    /// The next step to start, if one is ready and the limit allows; it
    /// counts as running from now on. A map step is handed out whatever the
    /// limit (it runs no agent): the driver splits its input and calls
    /// [`expand`](Self::expand).
    pub(crate) fn next(&mut self) -> Option<StepId> {
        let &step = self.ready.front()?;
        let is_map = self.steps[step.index()].kind == StepKind::Map;
        if !is_map && self.running >= self.limit {
            return None;
        }
        self.ready.pop_front();
        if is_map {
            self.mapping += 1;
        } else {
            self.running += 1;
        }
        Some(step)
    }

    /// The next ready step of a node that only asks (see
    /// [`Node::asks`](super::graph::Node::asks)), if the limit allows: what
    /// a paused run may still start. It counts as running from now on.
    pub(crate) fn next_asking(&mut self) -> Option<StepId> {
        if self.running >= self.limit {
            return None;
        }
        let position = self.ready.iter().position(|step| self.asks(*step))?;
        let step = self.ready.remove(position)?;
        self.running += 1;
        Some(step)
    }

    /// Whether a step of a node that only asks is ready (the limit aside).
    pub(crate) fn has_ready_asking(&self) -> bool {
        self.ready.iter().any(|step| self.asks(*step))
    }

    fn asks(&self, step: StepId) -> bool {
        let Some(step) = self.steps.get(step.index()) else {
            return false;
        };
        step.kind == StepKind::Agent && self.graph.nodes[step.node.index()].asks
    }

    /// Notes that running step `step` completed as `how` (with `decision`
    /// when it succeeded), and readies (or skips) the nodes it feeds.
    pub(crate) fn complete(&mut self, step: StepId, how: Completion, decision: &Decision) {
        let Some(info) = self.steps.get(step.index()) else {
            return;
        };
        if self.ended[step.index()].is_some() || info.kind != StepKind::Agent {
            return;
        }
        let item = info.item;
        self.ended[step.index()] = Some(how);
        self.running -= 1;
        match item {
            Some((map, _)) => {
                let items = &mut self.maps[map.index()];
                items.pending -= 1;
                match how {
                    Completion::Succeeded => items.succeeded += 1,
                    Completion::Interrupted => items.interrupted += 1,
                    Completion::Failed => {}
                }
                if items.pending == 0 {
                    self.finish_map(map);
                }
            }
            None => self.finish(step, how, decision),
        }
    }

    /// Creates node `node`'s step on `input` and readies it.
    fn activate(&mut self, node: NodeId, input: StepInput) {
        let kind = if self.graph.nodes[node.index()].map {
            StepKind::Map
        } else {
            StepKind::Agent
        };
        let iteration = self.iteration_of(node);
        let Some(step) = self.add_step(Step {
            node,
            kind,
            input,
            iteration,
            item: None,
            activation: 0,
        }) else {
            return;
        };
        self.nodes[node.index()] = NodeState::Active(step);
        self.ready.push_back(step);
    }

    /// Adds a step, unless the step limit is reached (then the run starts
    /// nothing more, and the node refused a step is named).
    fn add_step(&mut self, mut step: Step) -> Option<StepId> {
        if self.runaway.is_some() {
            return None;
        }
        if self.steps.len() >= self.max_steps {
            self.runaway = Some(step.node);
            self.ready.clear();
            return None;
        }
        let id = StepId::from_index(self.steps.len());
        self.activations[step.node.index()] += 1;
        step.activation = self.activations[step.node.index()];
        if step.kind == StepKind::Map {
            self.maps
                .resize_with(self.steps.len() + 1, MapItems::default);
        }
        self.steps.push(step);
        self.ended.push(None);
        Some(id)
    }

    /// The iteration of the innermost loop `node` is in (1 outside loops).
    fn iteration_of(&self, node: NodeId) -> u32 {
        self.graph
            .loops
            .iter()
            .enumerate()
            .filter(|(_, lp)| lp.body.contains(&node))
            .min_by_key(|(_, lp)| lp.body.len())
            .map_or(1, |(index, _)| self.iterations[index])
    }

    /// Whether nothing runs and nothing more can start: the run is over.
    #[cfg(test)]
    pub(crate) fn is_finished(&self) -> bool {
        self.running == 0 && self.mapping == 0 && self.ready.is_empty()
    }

    /// Whether every node has run to its own end (succeeded or failed) or
    /// was skipped: none was cut short, none is left to start.
    pub(crate) fn completed_all(&self) -> bool {
        self.runaway.is_none()
            && self.nodes.iter().all(|state| {
                matches!(
                    state,
                    NodeState::Done(Completion::Succeeded | Completion::Failed)
                        | NodeState::Skipped
                )
            })
    }

    /// Whether a step is ready to start (the limit aside).
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// How many agent steps are running.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Step `step`.
    pub(crate) fn step(&self, step: StepId) -> Option<&Step> {
        self.steps.get(step.index())
    }

    /// Every step created so far, in order.
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// How step `step` ended, once it has.
    pub(crate) fn ended(&self, step: StepId) -> Option<Completion> {
        self.ended.get(step.index()).copied().flatten()
    }

    /// The map steps whose items have all completed since the last call.
    pub(crate) fn take_gathered(&mut self) -> Vec<StepId> {
        std::mem::take(&mut self.gathered)
    }

    /// The steps of map step `map`'s items, in item order.
    pub(crate) fn items_of(&self, map: StepId) -> &[StepId] {
        self.maps
            .get(map.index())
            .map_or(&[], |items| items.steps.as_slice())
    }

    /// The steps whose outputs are the run's results, in completion order.
    pub(crate) fn results(&self) -> &[StepId] {
        &self.results
    }

    /// The node refused a step when the step limit stopped the run.
    pub(crate) fn runaway(&self) -> Option<NodeId> {
        self.runaway
    }

    /// The current iteration of loop `index` (from 1; a loop nested in
    /// another counts from 1 again on each pass of the outer one).
    pub(crate) fn loop_iteration(&self, index: usize) -> u32 {
        self.iterations.get(index).copied().unwrap_or(1)
    }

    /// How many steps node `node` has had.
    pub(crate) fn activations(&self, node: NodeId) -> u32 {
        self.activations.get(node.index()).copied().unwrap_or(0)
    }

    /// The graph being walked.
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }
}

mod loops;
mod maps;
mod tokens;
mod what_if;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
