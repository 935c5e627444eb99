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
//! Each predecessor's completion reaches a waiting node as a token: it
//! succeeded, it failed (or failures kept it from running), or it was
//! skipped (no branch led to it: a router chose others). The node's
//! [`JoinPolicy`] counts successes among the predecessors not skipped: the
//! node runs once enough succeeded; it does not run once that can no longer
//! happen, and passes on a failure — or, when every predecessor was
//! skipped, a skip — to the nodes it feeds. A loop's last node may send the run back to the loop's
//! first: the nodes between them start afresh, up to the loop's bound,
//! keeping what their predecessors outside the loop passed them (those ran
//! once, and do not pass it again).
//! Every step counts against the run's step limit; a run that reaches it
//! starts nothing more and names the node it refused a step.

use std::collections::VecDeque;

use self::loops::{loop_reach, LoopReach};
use super::graph::Graph;
use crate::orchestration::join_policy::JoinPolicy;
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

/// Where a node stands in the current pass over it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeState {
    /// Waiting for predecessors: what each that ended said so far.
    Waiting {
        succeeded: usize,
        failed: usize,
        skipped: usize,
        /// The succeeded predecessors' steps, with the predecessor's position
        /// among the node's predecessors.
        fed_by: Vec<(usize, StepId)>,
    },
    /// Its step was created and has not completed.
    Active(StepId),
    Done(Completion),
    /// Its join can never be satisfied (or no branch leads to it); it will not run.
    Skipped,
}

impl NodeState {
    fn waiting() -> Self {
        Self::Waiting {
            succeeded: 0,
            failed: 0,
            skipped: 0,
            fed_by: Vec::new(),
        }
    }
}

/// A token a predecessor passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Succeeded(StepId),
    Failed,
    Skipped,
}

/// How a waiting node's join was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Runs,
    /// It will not run, and passes this token on.
    WillNotRun(Token),
}

/// A map step's items.
#[derive(Debug, Clone, Default)]
struct MapItems {
    steps: Vec<StepId>,
    pending: usize,
    succeeded: usize,
    /// Items cut short by a stop.
    interrupted: usize,
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

    /// Gives map step `map` one step per item, `count` items (none: the
    /// map succeeds at once, with nothing gathered).
    pub(crate) fn expand(&mut self, map: StepId, count: usize) {
        let Some(step) = self.steps.get(map.index()) else {
            return;
        };
        if step.kind != StepKind::Map || self.ended[map.index()].is_some() {
            return;
        }
        let (node, iteration) = (step.node, step.iteration);
        let mut items = MapItems::default();
        for index in 0..count {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let Some(item) = self.add_step(Step {
                node,
                kind: StepKind::Agent,
                input: StepInput::Item { map, index },
                iteration,
                item: Some((map, index)),
                activation: 0,
            }) else {
                break;
            };
            items.steps.push(item);
            self.ready.push_back(item);
        }
        if self.runaway.is_some() {
            // The step limit refused an item: the run starts nothing more,
            // so the items made before it never run and the map is cut short.
            for item in &items.steps {
                self.ended[item.index()] = Some(Completion::Interrupted);
            }
            self.maps[map.index()] = items;
            self.mapping -= 1;
            self.ended[map.index()] = Some(Completion::Interrupted);
            self.finish(map, Completion::Interrupted, &Decision::default());
            return;
        }
        items.pending = items.steps.len();
        let done = items.pending == 0;
        self.maps[map.index()] = items;
        if done {
            self.finish_map(map);
        }
    }

    /// Fails map step `map` (its input could not be split).
    pub(crate) fn fail_map(&mut self, map: StepId) {
        let Some(step) = self.steps.get(map.index()) else {
            return;
        };
        if step.kind != StepKind::Map || self.ended[map.index()].is_some() {
            return;
        }
        self.mapping -= 1;
        self.ended[map.index()] = Some(Completion::Failed);
        self.finish(map, Completion::Failed, &Decision::default());
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

    /// A map step whose items all completed: it succeeds when enough did
    /// (the node's join policy over its items).
    fn finish_map(&mut self, map: StepId) {
        self.mapping -= 1;
        let items = &self.maps[map.index()];
        let node = self.steps[map.index()].node;
        // Fewer items than the join asks for (`AtLeast(k)` over fewer than
        // k, `Any` over none) cannot satisfy it: the map fails.
        let required = self.graph.nodes[node.index()]
            .join
            .required_successes(items.steps.len());
        // An item cut short by a stop cuts the map short: it did not run to
        // its own end.
        let how = if items.interrupted > 0 {
            Completion::Interrupted
        } else if items.succeeded >= required {
            Completion::Succeeded
        } else {
            Completion::Failed
        };
        self.ended[map.index()] = Some(how);
        self.gathered.push(map);
        self.finish(map, how, &Decision::default());
    }

    /// Passes step `step`'s completion on along its node's edges (or back
    /// round its loop).
    fn finish(&mut self, step: StepId, how: Completion, decision: &Decision) {
        let node = self.steps[step.index()].node;
        // A step of a pass that a loop has since restarted: nothing to pass on.
        if self.nodes[node.index()] != NodeState::Active(step) {
            return;
        }
        self.nodes[node.index()] = NodeState::Done(how);
        let spec = &self.graph.nodes[node.index()];
        if how == Completion::Succeeded {
            if let Some(index) = spec.closes_loop {
                if decision.again && self.iterations[index] < self.graph.loops[index].max_iterations
                {
                    self.go_round(index, step);
                    return;
                }
            }
            if decision.ends.unwrap_or(spec.ends) {
                self.results.push(step);
            }
        }
        let routed = spec.routed;
        let mut passed_on = Vec::new();
        for edge in self.start[node.index()]..self.start[node.index() + 1] {
            let (next, slot) = (self.successors[edge], self.slots[edge]);
            let token = match how {
                Completion::Succeeded => match &decision.routes {
                    Some(routes) if routed && !routes.contains(&next) => Token::Skipped,
                    _ => Token::Succeeded(step),
                },
                Completion::Failed | Completion::Interrupted => Token::Failed,
            };
            self.pass(next, slot, token, &mut passed_on);
        }
        self.pass_on(passed_on);
    }

    /// A node that will not run passes that on along its edges — as a
    /// failure when a failure stopped it, as a skip when no branch led to
    /// it: a work list, not recursion.
    fn pass_on(&mut self, mut passed_on: Vec<(NodeId, Token)>) {
        while let Some((from, token)) = passed_on.pop() {
            for edge in self.start[from.index()]..self.start[from.index() + 1] {
                let (next, slot) = (self.successors[edge], self.slots[edge]);
                self.pass(next, slot, token, &mut passed_on);
            }
        }
    }

    /// Gives `to` the token `token` from the predecessor in its slot `slot`;
    /// when `to` will not run, it is added to `passed_on` with the token it
    /// passes on.
    fn pass(
        &mut self,
        to: NodeId,
        slot: usize,
        token: Token,
        passed_on: &mut Vec<(NodeId, Token)>,
    ) {
        if let Some(&start) = self.inbox_start.get(to.index()) {
            self.inbox[start + slot] = Some(token);
        }
        // The common case — a node fed by one node, which succeeded — runs
        // at once on that node's output.
        if let (Token::Succeeded(step), 1, NodeState::Waiting { .. }) =
            (token, self.waits[to.index()], &self.nodes[to.index()])
        {
            self.activate(to, StepInput::OutputOf(step));
            return;
        }
        let NodeState::Waiting {
            succeeded,
            failed,
            skipped: skips,
            fed_by,
        } = &mut self.nodes[to.index()]
        else {
            return;
        };
        match token {
            Token::Succeeded(step) => {
                *succeeded += 1;
                fed_by.push((slot, step));
            }
            Token::Failed => *failed += 1,
            Token::Skipped => *skips += 1,
        }
        if let Some(Settled::WillNotRun(token)) = self.settle(to) {
            passed_on.push((to, token));
        }
    }

    /// Runs or skips waiting node `node` once its join is decided.
    fn settle(&mut self, node: NodeId) -> Option<Settled> {
        let NodeState::Waiting {
            succeeded,
            failed,
            skipped,
            fed_by,
        } = &mut self.nodes[node.index()]
        else {
            return None;
        };
        let waits = self.waits[node.index()];
        let live = waits - *skipped;
        let required = join_requirement(self.graph.nodes[node.index()].join, live);
        if live > 0 && *succeeded >= required {
            let mut fed_by = std::mem::take(fed_by);
            fed_by.sort_by_key(|(position, _)| *position);
            let input = match fed_by.as_slice() {
                [] => StepInput::RunInput,
                [(_, one)] => StepInput::OutputOf(*one),
                many => StepInput::Gathered(many.iter().map(|(_, step)| *step).collect()),
            };
            self.activate(node, input);
            return Some(Settled::Runs);
        }
        let token = if live == 0 {
            // No branch led here (a router chose others): a dead path.
            Token::Skipped
        } else if live.saturating_sub(*failed) < required {
            // Failures made the join impossible: the failure goes on.
            Token::Failed
        } else {
            return None;
        };
        self.nodes[node.index()] = NodeState::Skipped;
        Some(Settled::WillNotRun(token))
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

    /// Whether a run of `graph` could still reach its end if the nodes
    /// `fails` says fail again and every other step succeeds: a what-if
    /// over the graph alone, as generous as can be — a routed node sends its
    /// output everywhere it may and may end the run, a loop does not go
    /// round, a map's items succeed. When even this run cannot reach the
    /// end, no retry of the run can.
    pub(crate) fn could_reach_end(graph: &Graph, fails: impl Fn(NodeId) -> bool) -> bool {
        // Without going round, a node has one step (a map two: itself and
        // its one item).
        let steps = graph.len().saturating_mul(2).saturating_add(1);
        let mut what_if = Self::new(graph.clone(), usize::MAX, steps);
        while let Some(step) = what_if.next() {
            let Some(&Step { node, kind, .. }) = what_if.step(step) else {
                break;
            };
            if kind == StepKind::Map {
                what_if.expand(step, 1);
                continue;
            }
            let spec = &what_if.graph.nodes[node.index()];
            let decision = Decision {
                routes: None,
                ends: spec.routed.then_some(true),
                again: false,
            };
            let item = what_if.steps[step.index()].item.is_some();
            let how = if fails(node) && !item {
                Completion::Failed
            } else {
                Completion::Succeeded
            };
            what_if.complete(step, how, &decision);
        }
        // A what-if that ran out of steps says nothing: a retry might.
        what_if.runaway.is_some() || !what_if.results.is_empty()
    }
}

/// How many of `live` predecessors (those not skipped) must succeed under
/// `join`: at least one, at most all.
fn join_requirement(join: JoinPolicy, live: usize) -> usize {
    join.required_successes(live).clamp(1, live.max(1))
}

mod loops;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
