//! Checking a graph before anything runs, and turning it into the engine's.
//!
//! Every problem is found at once and reported in one
//! [`InvalidConfig`](crate::orchestration::OrchestrationError::InvalidConfig)
//! naming the nodes: unknown ids, nodes that can never run, nodes with no
//! path to the end, and cycles without a bound (a cycle must be a loop, with
//! its maximum iteration count).

use std::collections::HashMap;

use super::route::{END, START};
use super::GraphOrchestrator;
use crate::orchestration::engine::graph::Graph;
use crate::orchestration::errors::OrchestrationError;
use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::journal::NodeId;

/// A checked graph: the engine's graph and the node ids by index.
pub(crate) struct Checked {
    pub(crate) graph: Graph,
    pub(crate) index: HashMap<String, NodeId>,
}

/// Checks `definition` and builds the engine's graph from it.
pub(crate) fn check(definition: &GraphOrchestrator) -> Result<Checked, Vec<GraphProblem>> {
    let mut problems = Problems::default();
    let mut index: HashMap<String, NodeId> = HashMap::new();
    for (position, node) in definition.nodes.iter().enumerate() {
        if node.id == START || node.id == END {
            problems.add(
                format!("`{}` is reserved: name the node otherwise", node.id),
                &[&node.id],
            );
        } else if index
            .insert(node.id.clone(), NodeId::from_index(position))
            .is_some()
        {
            problems.add(format!("two nodes are called `{}`", node.id), &[&node.id]);
        }
        if node.options.attempt_timeout.is_some_and(|t| t.is_zero()) {
            problems.add(
                format!(
                    "the node `{}` has a zero attempt timeout: it must be greater than zero",
                    node.id
                ),
                &[&node.id],
            );
        }
    }
    let known = |id: &str, role: &str, problems: &mut Problems| -> bool {
        if id == START || id == END || index.contains_key(id) {
            return true;
        }
        problems.add(
            format!(
                "{role} names `{id}`, which is not a node{}",
                suggest(id, &index)
            ),
            &[],
        );
        false
    };

    let count = definition.nodes.len();
    let mut graph = Graph::new("graph", true);
    for _ in 0..count {
        graph.add_node();
    }
    let mut starts = vec![false; count];
    let mut forward: Vec<(usize, usize)> = Vec::new();
    let mut has_static_out = vec![false; count];
    for (from, to) in &definition.edges {
        let ok = known(from, "an edge", &mut problems) & known(to, "an edge", &mut problems);
        if !ok {
            continue;
        }
        if to == START {
            problems.add(
                format!("an edge leads back to START from `{from}`"),
                &[from],
            );
            continue;
        }
        if from == END {
            problems.add(format!("an edge leaves END for `{to}`"), &[to]);
            continue;
        }
        match (from.as_str(), to.as_str()) {
            (START, END) => problems.add("an edge goes from START straight to END", &[]),
            (START, to) => starts[index[to].index()] = true,
            (from, END) => {
                let node = index[from];
                has_static_out[node.index()] = true;
                if let Some(spec) = graph.node_mut(node) {
                    spec.ends = true;
                }
            }
            (from, to) => {
                has_static_out[index[from].index()] = true;
                forward.push((index[from].index(), index[to].index()));
            }
        }
    }
    let mut routed = vec![false; count];
    for router in &definition.routers {
        if !known(&router.from, "a router", &mut problems) {
            continue;
        }
        if router.from == START || router.from == END {
            problems.add(format!("a router cannot leave `{}`", router.from), &[]);
            continue;
        }
        let from = index[&router.from].index();
        if std::mem::replace(&mut routed[from], true) {
            problems.add(
                format!("`{}` has two routers", router.from),
                &[&router.from],
            );
        }
        if has_static_out[from] {
            problems.add(
                format!(
                    "`{}` has both a router and plain edges: route to every successor",
                    router.from
                ),
                &[&router.from],
            );
        }
        if router.targets.is_empty() {
            problems.add(
                format!("the router of `{}` names no target", router.from),
                &[&router.from],
            );
        }
        if let Some(spec) = graph.node_mut(NodeId::from_index(from)) {
            spec.routed = true;
        }
        for target in &router.targets {
            if !known(target, "a router", &mut problems) || target == END {
                continue;
            }
            if target == START {
                problems.add(
                    format!("the router of `{}` routes to START", router.from),
                    &[&router.from],
                );
                continue;
            }
            forward.push((from, index[target].index()));
        }
    }
    // An edge named twice (two `add_edge`s, or a router listing a target
    // twice) is one edge: its target is fed once.
    let mut named = std::collections::HashSet::new();
    forward.retain(|&edge| named.insert(edge));
    for (from, to) in &forward {
        graph.add_edge(NodeId::from_index(*from), NodeId::from_index(*to));
    }
    for (position, node) in definition.nodes.iter().enumerate() {
        if let Some(spec) = graph.node_mut(NodeId::from_index(position)) {
            spec.map = node.split.is_some();
            spec.asks = node.asks;
        }
    }
    for (id, policy) in &definition.joins {
        if !known(id, "a join", &mut problems) {
            continue;
        }
        if id == START || id == END {
            // Nothing waits at either: whatever reaches END is a result.
            problems.add(
                format!("a join names `{id}`, which joins nothing: put it on a node (to wait for several nodes before END, join them in a node of their own)"),
                &[],
            );
            continue;
        }
        let node = index[id];
        let feeds = forward.iter().filter(|(_, to)| *to == node.index()).count();
        let items = definition.nodes[node.index()].split.is_some();
        if let JoinPolicy::AtLeast(k) = policy {
            if *k == 0 || (!items && *k > feeds) {
                problems.add(
                    format!(
                        "the join of `{id}` asks for {k} successes but {feeds} node(s) feed it"
                    ),
                    &[id],
                );
            }
        }
        if let Some(spec) = graph.node_mut(node) {
            spec.join = *policy;
        }
    }
    for lp in &definition.loops {
        let ok = known(&lp.from, "a loop", &mut problems) & known(&lp.to, "a loop", &mut problems);
        if !ok
            || [&lp.from, &lp.to]
                .iter()
                .any(|id| *id == START || *id == END)
        {
            if ok {
                problems.add("a loop runs between two nodes, not START or END", &[]);
            }
            continue;
        }
        if lp.max_iterations == 0 {
            problems.add(
                format!(
                    "the loop from `{}` to `{}` allows no iteration",
                    lp.from, lp.to
                ),
                &[&lp.from, &lp.to],
            );
        }
        let from = index[&lp.from];
        if definition.nodes[from.index()].split.is_some() {
            problems.add(
                format!(
                    "the loop from `{}` back to `{}` is closed by a map: put a node after the map and close the loop there",
                    lp.from, lp.to
                ),
                &[&lp.from],
            );
        }
        if graph.nodes[from.index()].closes_loop.is_some() {
            problems.add(format!("`{}` closes two loops", lp.from), &[&lp.from]);
        } else if !graph.add_loop(from, index[&lp.to], lp.max_iterations) {
            problems.add(
                format!(
                    "the loop from `{}` back to `{}` has no way round: `{}` does not lead to `{}`",
                    lp.from, lp.to, lp.to, lp.from
                ),
                &[&lp.from, &lp.to],
            );
        }
    }
    for router in &definition.routers {
        if let Some(node) = index.get(&router.from) {
            if definition.nodes[node.index()].split.is_some() {
                problems.add(
                    format!(
                        "the map `{}` has a router: put a node after it",
                        router.from
                    ),
                    &[&router.from],
                );
            }
        }
    }
    if problems.0.is_empty() {
        check_shape(definition, &graph, &starts, &mut problems);
    }
    if problems.0.is_empty() {
        graph.concurrent = may_run_steps_at_once(&graph, &starts);
        Ok(Checked { graph, index })
    } else {
        Err(problems.0)
    }
}

/// The error a run (or `validate`) gives for the problems of graph `name`.
pub(crate) fn invalid(name: &str, problems: &[GraphProblem]) -> OrchestrationError {
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    OrchestrationError::InvalidConfig(format!("graph `{name}`: {}", messages.join("; ")))
}

/// One thing wrong with a graph, as [`GraphOrchestrator::problems`] finds it
/// before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphProblem {
    /// What is wrong, in words (the errors of `validate` and of a run join
    /// these).
    pub message: String,
    /// The ids of the nodes it is about, the one to change first; empty
    /// when it is about no node (an id that names none, the graph as a
    /// whole).
    pub nodes: Vec<String>,
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<GraphProblem>);

impl Problems {
    fn add(&mut self, message: impl Into<String>, nodes: &[&str]) {
        self.0.push(GraphProblem {
            message: message.into(),
            nodes: nodes.iter().map(|&node| node.to_owned()).collect(),
        });
    }
}

/// The checks on the graph as a whole: where it starts, that every node can
/// run and can reach the end, and that every cycle is a bounded loop.
fn check_shape(
    definition: &GraphOrchestrator,
    graph: &Graph,
    starts: &[bool],
    problems: &mut Problems,
) {
    let count = graph.len();
    let name = |node: usize| definition.nodes[node].id.as_str();
    if count == 0 {
        problems.add("the graph has no nodes", &[]);
        return;
    }
    let (start, successors) = graph.successor_table();
    let predecessors = graph.predecessor_lists();
    if !starts.iter().any(|&s| s) {
        problems.add("no edge from START: say which node runs first", &[]);
    }
    for node in 0..count {
        let fed = !predecessors[node].is_empty();
        if starts[node] && fed {
            let by: Vec<&str> = predecessors[node].iter().map(|p| name(p.index())).collect();
            problems.add(
                format!(
                    "`{}` runs first (an edge from START) but is also fed by `{}`: come back to it with a loop",
                    name(node),
                    by.join("`, `")
                ),
                &[name(node)],
            );
        }
        if !starts[node] && !fed {
            problems.add(
                format!("`{}` can never run: no edge leads to it", name(node)),
                &[name(node)],
            );
        }
    }
    // Cycles among forward edges have no bound.
    if let Some(cycle) = find_cycle(count, &start, &successors) {
        let names: Vec<&str> = cycle.iter().map(|&node| name(node)).collect();
        problems.add(
            format!(
                "the cycle `{}` has no bound: make its way back a loop (add_loop) with a maximum iteration count",
                names.join("` → `")
            ),
            &names,
        );
    }
    // Every node must lead to the end: walk back from the nodes that end,
    // each node once (a cycle is walked round once).
    let mut reaches_end = vec![false; count];
    let mut pending: Vec<usize> = (0..count)
        .filter(|&node| graph.nodes[node].ends || router_ends(definition, node))
        .collect();
    while let Some(node) = pending.pop() {
        if std::mem::replace(&mut reaches_end[node], true) {
            continue;
        }
        pending.extend(predecessors[node].iter().map(|from| from.index()));
    }
    let stuck: Vec<&str> = (0..count)
        .filter(|&node| !reaches_end[node])
        .map(name)
        .collect();
    if !stuck.is_empty() {
        problems.add(
            format!(
                "no path to END from `{}`: add an edge to END",
                stuck.join("`, `")
            ),
            &stuck,
        );
    }
}

/// Whether two steps of `graph` may ever run at once: it starts with
/// several nodes, a node feeds several, or a map runs items. A graph that
/// never does (a chain, with loops and routers choosing one way) runs on the
/// caller's task, as a pipeline does.
fn may_run_steps_at_once(graph: &Graph, starts: &[bool]) -> bool {
    let (start, _) = graph.successor_table();
    starts.iter().filter(|&&s| s).count() > 1
        || graph.nodes.iter().any(|node| node.map)
        || (0..graph.len()).any(|node| start[node + 1] - start[node] > 1)
}

/// Whether `node`'s router may route to END.
fn router_ends(definition: &GraphOrchestrator, node: usize) -> bool {
    let id = &definition.nodes[node].id;
    definition
        .routers
        .iter()
        .any(|router| &router.from == id && router.targets.iter().any(|t| t == END))
}

/// A cycle among the forward edges, as the nodes on it, if there is one
/// (an iterative depth-first search: deep graphs cannot overflow the stack).
fn find_cycle(count: usize, start: &[usize], successors: &[NodeId]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; count];
    for root in 0..count {
        if marks[root] != Mark::New {
            continue;
        }
        // (node, next edge to look at)
        let mut path: Vec<(usize, usize)> = vec![(root, start[root])];
        marks[root] = Mark::Open;
        while let Some((node, edge)) = path.last_mut() {
            let node = *node;
            if *edge == start[node + 1] {
                marks[node] = Mark::Done;
                path.pop();
                continue;
            }
            let next = successors[*edge].index();
            *edge += 1;
            match marks[next] {
                Mark::New => {
                    marks[next] = Mark::Open;
                    path.push((next, start[next]));
                }
                Mark::Open => {
                    let from = path.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[from..].iter().map(|(n, _)| *n).collect();
                    cycle.push(next);
                    return Some(cycle);
                }
                Mark::Done => {}
            }
        }
    }
    None
}

/// ", did you mean `x`?" when a node's id is close to `id`.
fn suggest(id: &str, index: &HashMap<String, NodeId>) -> String {
    let close = index
        .keys()
        .map(|known| (distance(id, known), known))
        .filter(|(d, known)| *d <= 2.max(known.len() / 3))
        .min();
    match close {
        Some((_, known)) => format!(" (did you mean `{known}`?)"),
        None => String::new(),
    }
}

/// The edit distance between two short strings.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
