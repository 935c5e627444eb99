//! Properties of the scheduler on its own, over random graphs and random runs.
//!
//! A [`Case`] is a random DAG of 1–12 nodes (forward edges from a lower to a
//! higher node), each node plain, routed or a map, under a random join policy
//! (`All`, `AtLeast(k)`, `Any`), with up to three bounded loops (from a node
//! back to one of its ancestors, or to itself; bound 1–4, possibly nested or
//! overlapping), a concurrency limit (1–4), a step limit (mostly none), and a
//! list of choices that drive the run: whether to start a step or complete
//! one, which, how it ends, where a router sends it, whether a loop goes
//! round, how many items a map gets. Choices past the end of the list read as
//! 0, the plainest answer (start what is ready, succeed, take every route, do
//! not go round, no items), so every run ends and shrinking makes runs plain.
//!
//! [`Run`] drives the scheduler with those choices and checks, after every
//! call, what it observes against a model built from the docs alone: which
//! pass each node is in (a loop going round starts its body's nodes afresh),
//! and what each predecessor told a node in the current pass — it succeeded
//! (and its router chose the node), it failed, it was skipped, or nothing
//! yet. Each violation is filed under the [`Property`] it breaks, and each
//! property is a test of its own.

use proptest::prelude::*;

use super::*;
use crate::orchestration::join_policy::JoinPolicy;

/// How many random cases each property runs.
const CASES: u32 = 4000;

// ---------------------------------------------------------------------------
// Cases

/// One node of a case.
#[derive(Debug, Clone)]
struct Spec {
    join: JoinPolicy,
    map: bool,
    routed: bool,
    ends: bool,
}

/// A random graph and the choices that drive its run.
#[derive(Debug, Clone)]
struct Case {
    nodes: Vec<Spec>,
    /// Forward edges `(from, to)`, `from < to`.
    edges: Vec<(usize, usize)>,
    /// Loops `(from, to, max_iterations)`, `to` an ancestor of `from` (or itself).
    loops: Vec<(usize, usize, u32)>,
    limit: usize,
    max_steps: usize,
    choices: Vec<u8>,
}

impl Case {
    /// The scheduler's graph for this case.
    fn graph(&self) -> Graph {
        let mut graph = Graph::new("graph", true);
        for spec in &self.nodes {
            let node = graph.add_node();
            let target = graph.node_mut(node).unwrap();
            target.join = spec.join;
            target.map = spec.map;
            target.routed = spec.routed;
            target.ends = spec.ends;
        }
        for &(from, to) in &self.edges {
            graph.add_edge(n(from), n(to));
        }
        for &(from, to, bound) in &self.loops {
            assert!(graph.add_loop(n(from), n(to), bound), "{from} → {to}");
        }
        graph
    }
}

fn n(index: usize) -> NodeId {
    NodeId::from_index(index)
}

/// Rolls for one node: router, map, join, the `k` of `AtLeast(k)`, end.
type NodeRolls = (u8, u8, u8, usize, u8);

fn node_rolls() -> impl Strategy<Value = NodeRolls> {
    (0..4u8, 0..6u8, 0..5u8, 1..=4usize, 0..4u8)
}

/// A loop's rolls: its last node, its first (among that node's ancestors), its bound.
fn loop_rolls() -> impl Strategy<Value = (u8, u8, u32)> {
    (any::<u8>(), any::<u8>(), 1..=4u32)
}

/// No step limit, mostly; sometimes a small one.
fn step_limit() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(usize::MAX), 1 => 1..=30usize]
}

/// At most this many nodes.
const MAX_NODES: usize = 12;

/// A case: every roll is drawn for twelve nodes and the first `count` are
/// used, so that cases shrink well (fewer nodes, fewer edges, plainer nodes,
/// fewer choices).
fn case() -> impl Strategy<Value = Case> {
    (
        1..=MAX_NODES,
        1..=4u8,
        proptest::collection::vec(0..8u8, MAX_NODES * MAX_NODES),
        proptest::collection::vec(node_rolls(), MAX_NODES),
        proptest::collection::vec(loop_rolls(), 0..=3),
        1..=4usize,
        step_limit(),
        proptest::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(
            |(count, density, edges, nodes, loops, limit, max_steps, choices)| {
                // Edge `(from, to)` when its roll is below the density.
                let edges: Vec<bool> = (0..count)
                    .flat_map(|from| (from + 1..count).map(move |to| (from, to)))
                    .map(|(from, to)| edges[from * MAX_NODES + to] < density)
                    .collect();
                build(&edges, &nodes[..count], &loops, limit, max_steps, choices)
            },
        )
}

/// Turns the rolls into a case: the edges the pair bits say, node kinds
/// and joins that fit them (as the graph check would require: a router has
/// no plain edges, a map has no router and closes no loop, a node that feeds
/// nothing ends), and the loops that fit.
fn build(
    edge_bits: &[bool],
    rolls: &[NodeRolls],
    loop_rolls: &[(u8, u8, u32)],
    limit: usize,
    max_steps: usize,
    choices: Vec<u8>,
) -> Case {
    let count = rolls.len();
    let pairs = (0..count).flat_map(|from| (from + 1..count).map(move |to| (from, to)));
    let edges: Vec<(usize, usize)> = pairs
        .zip(edge_bits)
        .filter(|(_, &bit)| bit)
        .map(|(pair, _)| pair)
        .collect();
    let feeds = |node: usize| edges.iter().filter(|(_, to)| *to == node).count();
    let fed = |node: usize| edges.iter().filter(|(from, _)| *from == node).count();
    let nodes: Vec<Spec> = rolls
        .iter()
        .enumerate()
        .map(|(node, &(router, map, join, k, ends))| {
            let routed = router == 0;
            let map = !routed && map == 0;
            let join = match join {
                0 | 1 => JoinPolicy::All,
                2 => JoinPolicy::Any,
                // A map's `AtLeast(k)` counts items; a join's, its predecessors.
                _ if map => JoinPolicy::AtLeast(k),
                _ => JoinPolicy::AtLeast(1 + (k - 1) % feeds(node).max(1)),
            };
            let ends = !routed && (fed(node) == 0 || ends == 0);
            Spec {
                join,
                map,
                routed,
                ends,
            }
        })
        .collect();
    let mut loops: Vec<(usize, usize, u32)> = Vec::new();
    for &(from, to, bound) in loop_rolls {
        let from = usize::from(from) % count;
        if nodes[from].map || loops.iter().any(|lp| lp.0 == from) {
            continue;
        }
        let ancestors = ancestors_or_self(&edges, count, from);
        let to = ancestors[usize::from(to) % ancestors.len()];
        loops.push((from, to, bound));
    }
    Case {
        nodes,
        edges,
        loops,
        limit,
        max_steps,
        choices,
    }
}

/// `node` and every node with a forward path to it, in node order.
fn ancestors_or_self(edges: &[(usize, usize)], count: usize, node: usize) -> Vec<usize> {
    let mut seen = vec![false; count];
    seen[node] = true;
    for to in (0..=node).rev() {
        if seen[to] {
            for &(from, _) in edges.iter().filter(|(_, t)| *t == to) {
                seen[from] = true;
            }
        }
    }
    (0..count).filter(|&index| seen[index]).collect()
}

// ---------------------------------------------------------------------------
// The model

/// What the docs promise, one per test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Property {
    /// Never more than `limit` agent steps run.
    Limit,
    /// `next()` hands out only ready steps, each once; no step is lost.
    Ready,
    /// The run ends, within a bound worked out from the loop bounds.
    Ends,
    /// A loop goes round only when told to and below its bound; its passes
    /// (the `iteration` of its body's steps) count from 1, again on each
    /// pass of a loop it is nested in.
    LoopBound,
    /// A node runs at most once per pass of the loops whose body holds it.
    Once,
    /// A node runs only when its join is satisfied by what its predecessors
    /// said in the current pass, and every node that can run does.
    Join,
    /// A router's unchosen successors do not run on its output.
    Routes,
    /// Results are the succeeded steps that end, each once.
    Results,
    /// `completed_all()` iff nothing in the last pass was cut short and the
    /// step limit was not reached.
    CompletedAll,
    /// A map runs one step per item and succeeds under its join over items.
    Maps,
}

/// What a predecessor told a node in the current pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Succeeded(StepId),
    Failed,
    Skipped,
    Pending,
}

/// Where a node without a step in the current pass stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Its join is satisfied: it should have a step.
    Runnable,
    /// It will not run, and passes a failure on.
    Failed,
    /// No branch led to it.
    Skipped,
    /// It waits for predecessors.
    Waiting,
}

/// How many of `live` predecessors (or items) must succeed under `join`.
fn required(join: JoinPolicy, live: usize) -> usize {
    join.required_successes(live).clamp(1, live.max(1))
}

/// Reads the case's choices; past the end, 0.
struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    fn next(&mut self) -> u8 {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }
}

/// A map step's items as the model sees them.
#[derive(Debug, Clone, Default)]
struct Items {
    count: usize,
    pending: usize,
    succeeded: usize,
    interrupted: bool,
}

/// A run of a case: the scheduler, driven by the case's choices, and the
/// model it is checked against.
struct Run<'a> {
    case: &'a Case,
    scheduler: Scheduler,
    choices: Choices<'a>,
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
    /// `in_body[l][v]`: node `v` is in loop `l`'s body.
    in_body: Vec<Vec<bool>>,
    /// The loops whose bodies lie strictly inside each loop's.
    inner: Vec<Vec<usize>>,
    /// The most steps the run may create (from the loop bounds).
    bound: usize,
    // By step.
    /// Steps observed so far.
    seen: usize,
    handed: Vec<bool>,
    /// How each step ended: as completed, or for a map step, as its items say.
    outcome: Vec<Option<Completion>>,
    decisions: Vec<Decision>,
    items: Vec<Items>,
    // By node.
    /// Each node's step in the current pass.
    current: Vec<Option<StepId>>,
    // By loop.
    iterations: Vec<u32>,
    rounds: Vec<u32>,
    /// Agent steps handed out and not completed.
    running: Vec<StepId>,
    /// Map steps handed out and not expanded.
    unexpanded: Vec<StepId>,
    results: Vec<StepId>,
    /// Whether the call being checked is an `expand` (which creates items).
    expanding: bool,
    violations: Vec<(Property, String)>,
}

impl<'a> Run<'a> {
    fn new(case: &'a Case) -> Self {
        let graph = case.graph();
        let count = case.nodes.len();
        let mut preds = vec![Vec::new(); count];
        let mut succs = vec![Vec::new(); count];
        for &(from, to) in &case.edges {
            preds[to].push(from);
            succs[from].push(to);
        }
        let in_body: Vec<Vec<bool>> = graph
            .loops
            .iter()
            .map(|lp| (0..count).map(|v| lp.body.contains(&n(v))).collect())
            .collect();
        let inner = (0..in_body.len())
            .map(|outer| {
                (0..in_body.len())
                    .filter(|&other| {
                        other != outer
                            && (0..count).all(|v| !in_body[other][v] || in_body[outer][v])
                    })
                    .collect()
            })
            .collect();
        let mut run = Self {
            case,
            scheduler: Scheduler::new(graph, case.limit, case.max_steps),
            choices: Choices {
                bytes: &case.choices,
                at: 0,
            },
            preds,
            succs,
            in_body,
            inner,
            bound: 0,
            seen: 0,
            handed: Vec::new(),
            outcome: Vec::new(),
            decisions: Vec::new(),
            items: Vec::new(),
            current: vec![None; count],
            iterations: vec![1; case.loops.len()],
            rounds: vec![0; case.loops.len()],
            running: Vec::new(),
            unexpanded: Vec::new(),
            results: Vec::new(),
            expanding: false,
            violations: Vec::new(),
        };
        run.bound = run.step_bound();
        let starts: Vec<usize> = (0..count).filter(|&v| run.preds[v].is_empty()).collect();
        let created: Vec<usize> = run
            .scheduler
            .steps()
            .iter()
            .map(|step| step.node.index())
            .collect();
        let expected = &starts[..starts.len().min(case.max_steps)];
        if created != expected {
            run.fail(
                Property::Ready,
                format!(
                    "the run starts with {created:?}, not the nodes nothing feeds {expected:?}"
                ),
            );
        }
        run.observe(None);
        run.check_always();
        run
    }

    fn fail(&mut self, property: Property, message: String) {
        self.violations.push((property, message));
    }

    fn node(&self, step: StepId) -> usize {
        self.scheduler.step(step).unwrap().node.index()
    }

    fn loop_closed_by(&self, node: usize) -> Option<usize> {
        self.case.loops.iter().position(|lp| lp.0 == node)
    }

    /// The most steps the run may create: each node once, plus once per
    /// round of each loop whose body holds it, times one plus four items
    /// for a map; a loop goes round at most `bound - 1` times per pass of
    /// each loop it is nested in.
    fn step_bound(&self) -> usize {
        let count = self.case.nodes.len();
        let mut order: Vec<usize> = (0..self.case.loops.len()).collect();
        let size = |l: usize| self.in_body[l].iter().filter(|&&b| b).count();
        order.sort_by_key(|&l| std::cmp::Reverse(size(l)));
        let mut rounds = vec![0usize; self.case.loops.len()];
        for &l in &order {
            let outer: usize = (0..self.case.loops.len())
                .filter(|&o| self.inner[o].contains(&l))
                .map(|o| rounds[o])
                .sum();
            rounds[l] = (self.case.loops[l].2 as usize - 1) * (1 + outer);
        }
        (0..count)
            .map(|v| {
                let passes: usize = 1
                    + (0..rounds.len())
                        .filter(|&l| self.in_body[l][v])
                        .map(|l| rounds[l])
                        .sum::<usize>();
                passes * if self.case.nodes[v].map { 5 } else { 1 }
            })
            .sum()
    }

    // -- Driving --------------------------------------------------------

    /// Drives the run to its end, then checks how it ended.
    fn drive(mut self) -> Vec<(Property, String)> {
        for _ in 0..4 * self.bound + 16 {
            let others = self.running.len() + self.unexpanded.len();
            if self.choices.next().is_multiple_of(2) || others == 0 {
                if self.start() {
                    continue;
                }
                if others == 0 {
                    self.check_end();
                    return self.violations;
                }
            }
            let pick = usize::from(self.choices.next()) % others;
            if pick < self.running.len() {
                self.complete(pick);
            } else {
                self.split(pick - self.running.len());
            }
        }
        self.fail(
            Property::Ends,
            format!("no end after {} calls", 4 * self.bound + 16),
        );
        self.violations
    }

    /// Asks for the next step; whether one was handed out.
    fn start(&mut self) -> bool {
        let ready = self.scheduler.has_ready();
        let Some(step) = self.scheduler.next() else {
            if ready && self.scheduler.running() < self.case.limit {
                self.fail(
                    Property::Ready,
                    "next() gave nothing though a step was ready and the limit allowed".into(),
                );
            }
            return false;
        };
        if step.index() >= self.seen
            || self.handed[step.index()]
            || self.outcome[step.index()].is_some()
        {
            self.fail(
                Property::Ready,
                format!("next() handed out {step:?}, which was not ready"),
            );
            return true;
        }
        self.handed[step.index()] = true;
        if self.scheduler.step(step).unwrap().kind == StepKind::Map {
            self.unexpanded.push(step);
        } else {
            self.running.push(step);
        }
        self.check_always();
        true
    }

    /// Completes the `index`th running step as the choices say.
    fn complete(&mut self, index: usize) {
        let step = self.running.remove(index);
        let info = self.scheduler.step(step).unwrap().clone();
        let how = match self.choices.next() % 16 {
            0..=11 => Completion::Succeeded,
            12..=14 => Completion::Failed,
            _ => Completion::Interrupted,
        };
        let decision = if how == Completion::Succeeded && info.item.is_none() {
            self.decide(info.node.index())
        } else {
            Decision::default()
        };
        let results = self.scheduler.results().len();
        self.scheduler.complete(step, how, &decision);
        self.outcome[step.index()] = Some(how);
        self.decisions[step.index()] = decision;
        let finished = match info.item {
            None => Some((step, how)),
            Some((map, _)) => {
                let items = &mut self.items[map.index()];
                items.pending -= 1;
                items.succeeded += usize::from(how == Completion::Succeeded);
                items.interrupted |= how == Completion::Interrupted;
                let done = items.pending == 0;
                done.then(|| (map, self.map_outcome(map)))
            }
        };
        let gathered = finished.filter(|_| info.item.is_some()).map(|(map, _)| map);
        self.after(finished, results, gathered);
    }

    /// What the driver decides from a succeeded step of `node`: a router's
    /// routes (any subset of the successors) and whether it ends; whether
    /// the loop the node closes goes round.
    fn decide(&mut self, node: usize) -> Decision {
        let mut decision = Decision::default();
        if self.case.nodes[node].routed {
            let byte = self.choices.next();
            let routes = self.succs[node]
                .iter()
                .enumerate()
                .filter(|(bit, _)| byte & (1 << (bit % 7)) == 0)
                .map(|(_, &to)| n(to))
                .collect();
            decision.routes = Some(routes);
            decision.ends = Some(byte & 0x80 == 0);
        }
        if self.loop_closed_by(node).is_some() {
            decision.again = !self.choices.next().is_multiple_of(3);
        }
        decision
    }

    /// Splits the `index`th map step handed out into items (or fails it).
    fn split(&mut self, index: usize) {
        let map = self.unexpanded.remove(index);
        let byte = self.choices.next();
        let results = self.scheduler.results().len();
        if byte % 16 == 15 {
            self.scheduler.fail_map(map);
            self.outcome[map.index()] = Some(Completion::Failed);
            self.after(Some((map, Completion::Failed)), results, None);
            return;
        }
        let count = usize::from(byte % 5);
        let stopped = self.scheduler.runaway().is_some();
        self.scheduler.expand(map, count);
        let created = self.scheduler.steps()[self.seen..]
            .iter()
            .filter(|s| s.item.is_some_and(|(m, _)| m == map))
            .count();
        if created != count && self.scheduler.runaway().is_none() {
            self.fail(
                Property::Maps,
                format!("a map split into {count} items got {created} steps"),
            );
        }
        // The step limit reached while splitting: the items made never run,
        // the map is cut short (and not gathered).
        let cut = stopped || created < count;
        self.items[map.index()] = Items {
            count: created,
            pending: if cut { 0 } else { created },
            interrupted: cut,
            ..Items::default()
        };
        let finished = (cut || created == 0).then(|| (map, self.map_outcome(map)));
        let gathered = finished.filter(|_| !cut).map(|(map, _)| map);
        self.expanding = true;
        self.after(finished, results, gathered);
        self.expanding = false;
    }

    /// How map step `map` ends once its items have: cut short when one
    /// was, else under its node's join over the items (`All` over none
    /// succeeds; `Any` over none fails).
    fn map_outcome(&mut self, map: StepId) -> Completion {
        let items = &self.items[map.index()];
        let join = self.case.nodes[self.node(map)].join;
        let how = if items.interrupted {
            Completion::Interrupted
        } else if items.succeeded >= join.required_successes(items.count) {
            Completion::Succeeded
        } else {
            Completion::Failed
        };
        self.outcome[map.index()] = Some(how);
        how
    }

    // -- Checking each call ----------------------------------------------

    /// After a call in which step `finished` (if any) ended as said:
    /// checks the map's outcome and gathering, whether a loop went round,
    /// the results, and the steps the call created.
    fn after(
        &mut self,
        finished: Option<(StepId, Completion)>,
        results: usize,
        gathered: Option<StepId>,
    ) {
        let taken = self.scheduler.take_gathered();
        if taken != gathered.into_iter().collect::<Vec<_>>() {
            self.fail(
                Property::Maps,
                format!("gathered {taken:?}, expected {gathered:?}"),
            );
        }
        let mut round = None;
        let mut expected_results = Vec::new();
        if let Some((step, how)) = finished {
            let node = self.node(step);
            if self.scheduler.step(step).unwrap().kind == StepKind::Map
                && self.scheduler.ended(step) != Some(how)
            {
                self.fail(
                    Property::Maps,
                    format!(
                        "map step {step:?} ended {:?}, expected {how:?} ({:?})",
                        self.scheduler.ended(step),
                        self.items[step.index()]
                    ),
                );
            }
            let current = self.current[node] == Some(step);
            let succeeded = current && how == Completion::Succeeded;
            let went;
            (went, round) = self.went_round(step, node, succeeded);
            let decision = &self.decisions[step.index()];
            if succeeded && !went && decision.ends.unwrap_or(self.case.nodes[node].ends) {
                expected_results.push(step);
            }
        }
        let new_results = self.scheduler.results()[results..].to_vec();
        if new_results != expected_results {
            self.fail(
                Property::Results,
                format!("results gained {new_results:?}, expected {expected_results:?}"),
            );
        }
        self.results.extend(expected_results);
        self.observe(round);
        self.check_always();
    }

    /// Whether finishing `step` of `node` sent a loop round, and the step it
    /// went round to (none when the step limit refused it): checked against
    /// the loop's bound and the decision, and modelled — the body starts a
    /// new pass, loops nested in it start again from pass 1.
    fn went_round(&mut self, step: StepId, node: usize, succeeded: bool) -> (bool, Option<StepId>) {
        let Some(l) = self.loop_closed_by(node) else {
            return (false, None);
        };
        let (_, to, bound) = self.case.loops[l];
        let back = (self.seen..self.scheduler.steps().len())
            .map(StepId::from_index)
            .find(|&s| {
                let info = self.scheduler.step(s).unwrap();
                info.node == n(to) && info.item.is_none() && info.input == StepInput::OutputOf(step)
            });
        let asked = succeeded && self.decisions[step.index()].again;
        let allowed = asked && self.iterations[l] < bound;
        let refused = allowed && back.is_none() && self.scheduler.runaway().is_some();
        match back {
            Some(_) if !allowed => {
                let why = if asked { "past its bound" } else { "untold" };
                self.fail(
                    Property::LoopBound,
                    format!(
                        "loop {l} went round {why} (pass {} of {bound})",
                        self.iterations[l]
                    ),
                );
            }
            None if allowed && self.scheduler.runaway().is_none() => {
                self.fail(
                    Property::LoopBound,
                    format!(
                        "loop {l} did not go round at pass {} of {bound}",
                        self.iterations[l]
                    ),
                );
                return (false, None);
            }
            _ => {}
        }
        if back.is_none() && !refused {
            return (false, None);
        }
        self.rounds[l] += 1;
        self.iterations[l] += 1;
        for &inner in &self.inner[l] {
            self.iterations[inner] = 1;
        }
        for v in 0..self.case.nodes.len() {
            if self.in_body[l][v] {
                self.current[v] = None;
            }
        }
        (true, back)
    }

    /// Registers the steps created since the last call, and checks each:
    /// its kind, pass and iteration, and — unless it is the first step of a
    /// loop going round (`round`) or a map's item — that its join allowed it.
    fn observe(&mut self, round: Option<StepId>) {
        let items_expected = self.expanding;
        let first = self.seen;
        let steps: Vec<Step> = self.scheduler.steps()[first..].to_vec();
        self.seen += steps.len();
        for (offset, step) in steps.iter().enumerate() {
            let id = StepId::from_index(first + offset);
            self.handed.push(false);
            self.outcome.push(None);
            self.decisions.push(Decision::default());
            self.items.push(Items::default());
            let v = step.node.index();
            let count = self.scheduler.steps()[..=id.index()]
                .iter()
                .filter(|s| s.node == step.node)
                .count();
            if step.activation as usize != count {
                self.fail(
                    Property::Once,
                    format!(
                        "{id:?} is activation {} of node {v}, not {count}",
                        step.activation
                    ),
                );
            }
            if let Some((map, index)) = step.item {
                self.check_item(id, step, map, index, items_expected);
                continue;
            }
            if self.current[v].is_some() {
                self.fail(
                    Property::Once,
                    format!("node {v} got a second step ({id:?}) in one pass"),
                );
            }
            self.current[v] = Some(id);
            let passes = 1
                + (0..self.rounds.len())
                    .filter(|&l| self.in_body[l][v])
                    .map(|l| self.rounds[l])
                    .sum::<u32>();
            let own = self.scheduler.steps()[..=id.index()]
                .iter()
                .filter(|s| s.node == step.node && s.item.is_none())
                .count();
            if own > passes as usize {
                self.fail(
                    Property::Once,
                    format!("node {v} has {own} steps in {passes} pass(es) of its loops"),
                );
            }
            let kind = if self.case.nodes[v].map {
                StepKind::Map
            } else {
                StepKind::Agent
            };
            if step.kind != kind {
                self.fail(
                    Property::Maps,
                    format!("{id:?} of node {v} is a {:?}", step.kind),
                );
            }
            self.check_iteration(id, step);
        }
        for (offset, step) in steps.iter().enumerate() {
            let id = StepId::from_index(first + offset);
            if step.item.is_none() && Some(id) != round {
                self.check_join(id, step);
            }
        }
    }

    fn check_item(&mut self, id: StepId, step: &Step, map: StepId, index: u32, expected: bool) {
        let Some(parent) = self.scheduler.step(map).cloned() else {
            self.fail(Property::Maps, format!("item {id:?} of no map ({map:?})"));
            return;
        };
        let fits = expected
            && step.kind == StepKind::Agent
            && step.node == parent.node
            && step.iteration == parent.iteration
            && step.input == (StepInput::Item { map, index })
            && parent.kind == StepKind::Map
            && index as usize == id.index() - self.items_base(map);
        if !fits {
            self.fail(
                Property::Maps,
                format!("item step {id:?} {step:?} does not fit map {map:?} {parent:?}"),
            );
        }
    }

    /// The first item step of map `map` (items are created together).
    fn items_base(&self, map: StepId) -> usize {
        self.scheduler
            .steps()
            .iter()
            .position(|s| s.item.is_some_and(|(m, _)| m == map))
            .unwrap_or(map.index())
    }

    /// The step's iteration is the pass of the innermost loop holding its node.
    fn check_iteration(&mut self, id: StepId, step: &Step) {
        let v = step.node.index();
        let holding: Vec<usize> = (0..self.in_body.len())
            .filter(|&l| self.in_body[l][v])
            .collect();
        let innermost: Vec<usize> = holding
            .iter()
            .copied()
            .filter(|&l| !holding.iter().any(|o| self.inner[l].contains(o)))
            .collect();
        let ok = if innermost.is_empty() {
            step.iteration == 1
        } else {
            innermost.iter().any(|&l| {
                step.iteration == self.iterations[l] && step.iteration <= self.case.loops[l].2
            })
        };
        if !ok {
            let passes: Vec<(usize, u32)> =
                innermost.iter().map(|&l| (l, self.iterations[l])).collect();
            self.fail(
                Property::LoopBound,
                format!(
                    "{id:?} of node {v} is iteration {}, expected the pass of {passes:?}",
                    step.iteration
                ),
            );
        }
    }

    /// Step `id` of a node started on its predecessors: each output it got
    /// is a predecessor's success in the current pass (its router chose the
    /// node), in predecessor order, and enough of them for the join over
    /// the predecessors not skipped.
    fn check_join(&mut self, id: StepId, step: &Step) {
        let v = step.node.index();
        let preds = self.preds[v].clone();
        if preds.is_empty() {
            if step.input != StepInput::RunInput {
                self.fail(
                    Property::Join,
                    format!("start node {v} got {:?}", step.input),
                );
            }
            return;
        }
        let fed = match &step.input {
            StepInput::OutputOf(one) => vec![*one],
            StepInput::Gathered(many) => many.clone(),
            other => {
                self.fail(Property::Join, format!("node {v} ({id:?}) got {other:?}"));
                return;
            }
        };
        let mut memo = vec![None; self.case.nodes.len()];
        let tokens: Vec<Token> = preds.iter().map(|&p| self.token(p, v, &mut memo)).collect();
        let mut last = None;
        for &from in &fed {
            let Some(slot) = tokens.iter().position(|&t| t == Token::Succeeded(from)) else {
                let p = self.scheduler.step(from).map(|s| s.node.index());
                let unchosen = p.is_some_and(|p| {
                    self.case.nodes[p].routed
                        && self.decisions[from.index()]
                            .routes
                            .as_ref()
                            .is_some_and(|routes| !routes.contains(&n(v)))
                });
                let property = if unchosen {
                    Property::Routes
                } else {
                    Property::Join
                };
                self.fail(
                    property,
                    format!(
                        "node {v} ({id:?}) ran on {from:?} (node {p:?}), which did not succeed \
                         towards it in this pass: tokens {tokens:?}"
                    ),
                );
                continue;
            };
            if last.is_some_and(|last| slot <= last) {
                self.fail(
                    Property::Join,
                    format!("node {v} ({id:?}) got {fed:?}, not in predecessor order"),
                );
            }
            last = Some(slot);
        }
        let live = tokens.iter().filter(|&&t| t != Token::Skipped).count();
        let join = self.case.nodes[v].join;
        if live == 0 || fed.len() < required(join, live) {
            self.fail(
                Property::Join,
                format!(
                    "node {v} ({id:?}) ran on {fed:?} under {join:?}, its predecessors \
                     {preds:?} saying {tokens:?}"
                ),
            );
        }
    }

    /// What predecessor `p` told `v` in the current pass.
    fn token(&self, p: usize, v: usize, memo: &mut Vec<Option<Standing>>) -> Token {
        if let Some(step) = self.current[p] {
            return match self.outcome[step.index()] {
                None => Token::Pending,
                Some(Completion::Succeeded) => {
                    let unchosen = self.case.nodes[p].routed
                        && self.decisions[step.index()]
                            .routes
                            .as_ref()
                            .is_some_and(|routes| !routes.contains(&n(v)));
                    if unchosen {
                        Token::Skipped
                    } else {
                        Token::Succeeded(step)
                    }
                }
                Some(_) => Token::Failed,
            };
        }
        match self.standing(p, memo) {
            Standing::Failed => Token::Failed,
            Standing::Skipped => Token::Skipped,
            Standing::Runnable | Standing::Waiting => Token::Pending,
        }
    }

    /// Where node `v`, without a step in the current pass, stands.
    fn standing(&self, v: usize, memo: &mut Vec<Option<Standing>>) -> Standing {
        if let Some(standing) = memo[v] {
            return standing;
        }
        let preds = &self.preds[v];
        let standing = if preds.is_empty() {
            Standing::Runnable
        } else {
            let tokens: Vec<Token> = preds.iter().map(|&p| self.token(p, v, memo)).collect();
            let count = |f: fn(&Token) -> bool| tokens.iter().filter(|t| f(t)).count();
            let succeeded = count(|t| matches!(t, Token::Succeeded(_)));
            let failed = count(|t| *t == Token::Failed);
            let live = tokens.len() - count(|t| *t == Token::Skipped);
            let need = required(self.case.nodes[v].join, live);
            if live == 0 {
                Standing::Skipped
            } else if succeeded >= need {
                Standing::Runnable
            } else if live - failed < need {
                Standing::Failed
            } else {
                Standing::Waiting
            }
        };
        memo[v] = Some(standing);
        standing
    }

    /// After every call: the limit holds, the ready steps are the created
    /// ones not handed out, and no node that can run is left without a step.
    fn check_always(&mut self) {
        let limit = self.case.limit;
        if self.scheduler.running() > limit || self.scheduler.running() != self.running.len() {
            self.fail(
                Property::Limit,
                format!(
                    "{} agent steps running (the model says {}), limit {limit}",
                    self.scheduler.running(),
                    self.running.len()
                ),
            );
        }
        if self.scheduler.steps().len() > self.case.max_steps {
            self.fail(Property::Ends, "more steps than the step limit".into());
        }
        if self.scheduler.runaway().is_some() {
            if self.scheduler.steps().len() != self.case.max_steps {
                self.fail(
                    Property::Ends,
                    "the step limit stopped the run before it was reached".into(),
                );
            }
            return;
        }
        let unhanded = self.handed.iter().any(|&h| !h);
        if unhanded != self.scheduler.has_ready() {
            self.fail(
                Property::Ready,
                format!(
                    "has_ready() is {}, but steps not handed out: {unhanded}",
                    self.scheduler.has_ready()
                ),
            );
        }
        let mut memo = vec![None; self.case.nodes.len()];
        for v in 0..self.case.nodes.len() {
            if self.current[v].is_none() && self.standing(v, &mut memo) == Standing::Runnable {
                self.fail(
                    Property::Join,
                    format!("node {v} can run but has no step in this pass"),
                );
            }
        }
    }

    // -- Checking the end --------------------------------------------------

    /// The run ended: nothing is left, nothing waits, the results are all
    /// there, and `completed_all()` says what happened.
    fn check_end(&mut self) {
        if self.scheduler.running() != 0 || self.scheduler.has_ready() {
            self.fail(Property::Ends, "nothing to do, yet steps are left".into());
        }
        // A step limit reached while a map expands leaves the map waiting
        // for items it never got: see
        // `a_run_stopped_by_the_step_limit_while_a_map_expands_is_finished`.
        if !self.scheduler.is_finished() && self.scheduler.runaway().is_none() {
            self.fail(Property::Ends, "nothing to do, yet not finished".into());
        }
        if self.scheduler.steps().len() > self.bound {
            self.fail(
                Property::Ends,
                format!(
                    "{} steps, more than the loops allow ({})",
                    self.scheduler.steps().len(),
                    self.bound
                ),
            );
        }
        for v in 0..self.case.nodes.len() {
            let steps = self
                .scheduler
                .steps()
                .iter()
                .filter(|s| s.node == n(v))
                .count();
            if self.scheduler.activations(n(v)) as usize != steps {
                self.fail(
                    Property::Once,
                    format!(
                        "activations({v}) is {}, it has {steps} steps",
                        self.scheduler.activations(n(v))
                    ),
                );
            }
        }
        if self.scheduler.results() != self.results.as_slice() {
            self.fail(
                Property::Results,
                format!(
                    "results {:?}, expected {:?}",
                    self.scheduler.results(),
                    self.results
                ),
            );
        }
        let runaway = self.scheduler.runaway().is_some();
        let mut memo = vec![None; self.case.nodes.len()];
        let mut whole = !runaway;
        for v in 0..self.case.nodes.len() {
            let settled = match self.current[v] {
                Some(step) => {
                    matches!(
                        self.outcome[step.index()],
                        Some(Completion::Succeeded | Completion::Failed)
                    ) && !self.items[step.index()].interrupted
                }
                None => {
                    let standing = self.standing(v, &mut memo);
                    if !runaway && standing == Standing::Waiting {
                        self.fail(
                            Property::Ends,
                            format!("node {v} is left waiting at the end"),
                        );
                    }
                    matches!(standing, Standing::Skipped | Standing::Failed)
                }
            };
            whole &= settled;
        }
        if self.scheduler.completed_all() != whole {
            self.fail(
                Property::CompletedAll,
                format!(
                    "completed_all() is {}, expected {whole} (runaway: {runaway})",
                    self.scheduler.completed_all()
                ),
            );
        }
    }
}

/// Runs `case` and fails when it breaks `property`.
fn holds(case: &Case, property: Property) -> Result<(), TestCaseError> {
    let broken: Vec<String> = Run::new(case)
        .drive()
        .into_iter()
        .filter(|(p, _)| *p == property)
        .map(|(_, message)| message)
        .collect();
    prop_assert!(broken.is_empty(), "{property:?}: {broken:#?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Never more than `limit` agent steps run at once (map steps run no agent).
    #[test]
    fn never_more_than_the_limit_run(case in case()) {
        holds(&case, Property::Limit)?;
    }

    /// `next()` hands out only steps that were created and are ready, each
    /// once, and gives nothing only when none is ready or the limit is
    /// reached; the steps ready are exactly those not handed out.
    #[test]
    fn next_hands_out_only_ready_steps(case in case()) {
        holds(&case, Property::Ready)?;
    }

    /// Every run ends: within a bounded number of calls, with at most as
    /// many steps as the loop bounds allow, no more than the step limit,
    /// and no node left waiting.
    #[test]
    fn every_run_ends(case in case()) {
        holds(&case, Property::Ends)?;
    }

    /// A loop goes round only when its last node succeeded in the current
    /// pass and asked to, and only below its bound; a step's iteration is
    /// the pass of the innermost loop holding it, which counts from 1 again
    /// on each pass of a loop it is nested in.
    #[test]
    fn loops_keep_to_their_bounds(case in case()) {
        holds(&case, Property::LoopBound)?;
    }

    /// A node gets at most one step per pass: a node outside every loop
    /// (after a loop included) gets one step at most, a node in loops one
    /// more per round of those loops; a map's items aside.
    #[test]
    fn a_node_runs_at_most_once_per_pass(case in case()) {
        holds(&case, Property::Once)?;
    }

    /// A node runs only on its predecessors' successes in the current pass,
    /// enough of them for its join over the predecessors not skipped, in
    /// predecessor order; a node fed only by skipped or failed branches
    /// never runs; and a node whose join is satisfied gets its step.
    #[test]
    fn a_node_runs_when_its_join_allows(case in case()) {
        holds(&case, Property::Join)?;
    }

    /// A router's successors that it did not choose do not run on its output.
    #[test]
    fn unchosen_routes_do_not_run(case in case()) {
        holds(&case, Property::Routes)?;
    }

    /// The results are the current passes' succeeded steps of nodes that
    /// end (an edge to the end, or a router choosing the end) and did not
    /// send a loop round, each once, in completion order.
    #[test]
    fn results_are_the_steps_that_end(case in case()) {
        holds(&case, Property::Results)?;
    }

    /// `completed_all()` is true iff the step limit was not reached and every
    /// node ran to its own end in its last pass (nothing cut short, a map's
    /// items included) or was skipped.
    #[test]
    fn completed_all_iff_nothing_was_cut_short(case in case()) {
        holds(&case, Property::CompletedAll)?;
    }

    /// A map step gets one step per item, on the item, in its pass; it ends
    /// when they all have, succeeding under its join over the items, and is
    /// gathered once.
    #[test]
    fn maps_run_one_step_per_item(case in case()) {
        holds(&case, Property::Maps)?;
    }
}

// ---------------------------------------------------------------------------
// Where the scheduler and the docs disagree: the smallest cases found.

/// A graph of one map node, which ends.
fn one_map() -> Graph {
    let mut graph = Graph::new("graph", true);
    let map = graph.add_node();
    let node = graph.node_mut(map).unwrap();
    node.map = true;
    node.ends = true;
    graph
}

/// A map whose item was cut short was cut short itself: the run did not
/// complete all ("none was cut short").
#[test]
fn a_map_whose_item_was_interrupted_did_not_complete_all() {
    let mut scheduler = Scheduler::new(one_map(), 1, usize::MAX);
    let map = scheduler.next().unwrap();
    scheduler.expand(map, 1);
    let item = scheduler.next().unwrap();
    scheduler.complete(item, Completion::Interrupted, &Decision::default());
    assert!(scheduler.is_finished());
    assert!(
        !scheduler.completed_all(),
        "the map's only item was cut short"
    );
}

/// A run the step limit stopped while a map was splitting into items is
/// over: nothing runs and nothing more can start.
#[test]
fn a_run_stopped_by_the_step_limit_while_a_map_expands_is_finished() {
    // The map step and its first item fit in the limit; the second does not.
    let mut scheduler = Scheduler::new(one_map(), 1, 2);
    let map = scheduler.next().unwrap();
    scheduler.expand(map, 2);
    assert_eq!(scheduler.runaway(), Some(n(0)));
    assert_eq!(scheduler.next(), None);
    assert_eq!(scheduler.running(), 0);
    assert!(
        scheduler.is_finished(),
        "the item created before the limit was dropped from the ready steps"
    );
}

/// A map none of whose items ran (the step limit refused them all) did not
/// succeed: it was split into items, and no item succeeded.
#[test]
fn a_map_whose_items_the_step_limit_refused_does_not_succeed() {
    let mut scheduler = Scheduler::new(one_map(), 1, 1);
    let map = scheduler.next().unwrap();
    scheduler.expand(map, 2);
    assert_eq!(scheduler.runaway(), Some(n(0)));
    assert_ne!(scheduler.ended(map), Some(Completion::Succeeded));
    assert!(
        scheduler.results().is_empty(),
        "no item ran: nothing to end with"
    );
}

/// After an outer loop goes round, an inner loop going round keeps for the
/// nodes after it only what the outer loop's current pass said: a node
/// does not run on a predecessor's output from an earlier outer pass while
/// that predecessor's step of this pass is still running.
#[test]
fn an_inner_loop_going_round_keeps_no_output_of_an_earlier_outer_pass() {
    // 0 → 1 → 3 and 0 → 2 → 3; node 1 loops on itself (inner loop), and
    // 3 back to 0 (outer loop), twice each.
    let mut graph = Graph::new("graph", true);
    for _ in 0..4 {
        graph.add_node();
    }
    for (from, to) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        graph.add_edge(n(from), n(to));
    }
    assert!(graph.add_loop(n(1), n(1), 2));
    assert!(graph.add_loop(n(3), n(0), 2));
    let mut scheduler = Scheduler::new(graph, 4, usize::MAX);
    let go = |again| Decision {
        again,
        ..Decision::default()
    };
    let mut run = |node: usize, again: bool| {
        let step = (0..scheduler.steps().len())
            .map(StepId::from_index)
            .find(|&s| scheduler.step(s).unwrap().node == n(node) && scheduler.ended(s).is_none())
            .unwrap();
        while scheduler.next().is_some() {}
        scheduler.complete(step, Completion::Succeeded, &go(again));
        step
    };
    // Outer pass 1: 0, 1 and 2, then 3 on both, which goes round.
    run(0, false);
    run(1, false);
    let first_two = run(2, false);
    run(3, true);
    // Outer pass 2: 0; then 1 goes round while 2 still runs.
    run(0, false);
    run(1, true);
    run(1, false);
    let join = scheduler
        .steps()
        .iter()
        .position(|s| s.node == n(3) && s.activation == 2);
    assert_eq!(
        join.map(|index| scheduler.steps()[index].input.clone()),
        None,
        "node 3 must wait for node 2's step of this pass, not run on {first_two:?}"
    );
}

/// A node after a loop that waits afresh when the loop goes round does not
/// hear again what a predecessor said in an earlier pass: here node 1 was
/// skipped on pass 1, runs on pass 2, and is still running when pass 3
/// starts — node 3 must wait for it, not take the old skip.
#[test]
fn a_node_after_a_loop_does_not_take_a_skip_from_an_earlier_pass() {
    // 0 routes to 1 and/or 2; 2 loops back to 0 (three passes at most);
    // 1 → 3 after the loop.
    let mut graph = Graph::new("graph", true);
    for _ in 0..4 {
        graph.add_node();
    }
    for (from, to) in [(0, 1), (0, 2), (1, 3)] {
        graph.add_edge(n(from), n(to));
    }
    graph.node_mut(n(0)).unwrap().routed = true;
    graph.node_mut(n(3)).unwrap().ends = true;
    assert!(graph.add_loop(n(2), n(0), 3));
    let mut scheduler = Scheduler::new(graph, 4, usize::MAX);
    let decide = |routes: &[usize], again: bool| Decision {
        routes: Some(routes.iter().map(|&r| n(r)).collect()),
        ends: None,
        again,
    };
    let mut run = |node: usize, decision: Decision| {
        while scheduler.next().is_some() {}
        let step = (0..scheduler.steps().len())
            .map(StepId::from_index)
            .find(|&s| scheduler.step(s).unwrap().node == n(node) && scheduler.ended(s).is_none())
            .unwrap();
        scheduler.complete(step, Completion::Succeeded, &decision);
    };
    run(0, decide(&[2], false)); // pass 1: 1 (and so 3) skipped
    run(2, decide(&[], true));
    run(0, decide(&[1, 2], false)); // pass 2: 1 runs…
    run(2, decide(&[], true)); // …and is still running as pass 3 starts
    run(1, decide(&[], false));
    run(0, decide(&[2], false));
    run(2, decide(&[], false));
    // Node 1 succeeded on pass 2: node 3 runs on its output (`run` finds
    // its step, or panics).
    run(3, Decision::default());
    assert!(scheduler.steps().iter().any(|s| s.node == n(3)));
    assert!(scheduler.completed_all());
}
