//! What a run is made of: nodes, the edges between them, and the loops that
//! send a run back to an earlier node.
//!
//! Every flow is a [`Graph`]: a pipeline is a chain (each node fed by the one
//! before it), a fan-out is a set of nodes without edges, and a
//! [`GraphOrchestrator`](crate::orchestration::GraphOrchestrator) is whatever
//! its user drew — routed edges, joins, maps and bounded loops included. The
//! [`Scheduler`](super::scheduler::Scheduler) walks the graph; it knows
//! nothing of agents.
//!
//! Where a node's input comes from follows from its edges: a node without
//! forward predecessors starts the run on the run's input; a node fed by one
//! predecessor gets that predecessor's output; a node fed by several (a join)
//! gets their outputs gathered.

use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::journal::NodeId;

/// One node of a graph.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// How many predecessors must succeed before the node may run.
    pub(crate) join: JoinPolicy,
    /// Whether the node runs once per item of its input (a map).
    pub(crate) map: bool,
    /// Whether a router picks which of the node's out-edges carry its output.
    pub(crate) routed: bool,
    /// Whether the node's output is one of the run's results (an edge to the end).
    pub(crate) ends: bool,
    /// The loop this node decides (it is that loop's last node), if any.
    pub(crate) closes_loop: Option<usize>,
    /// Whether the node only asks a person (it does no work): a run that
    /// pauses still starts it, so that its question is asked at once too.
    pub(crate) asks: bool,
}

impl Node {
    fn new() -> Self {
        Self {
            join: JoinPolicy::All,
            map: false,
            routed: false,
            ends: false,
            closes_loop: None,
            asks: false,
        }
    }
}

/// A bounded loop: after `from` succeeds, the run may go back to `to` —
/// running every node between them again — at most `max_iterations` times
/// in all.
#[derive(Debug, Clone)]
pub(crate) struct Loop {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) max_iterations: u32,
    /// The nodes that run again on each iteration (`to` and `from` included).
    pub(crate) body: Vec<NodeId>,
}

/// A run's nodes and edges.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// What kind of flow this is (`sequential`, `parallel`, `graph`), for spans and logs.
    pub(crate) kind: &'static str,
    pub(crate) nodes: Vec<Node>,
    /// The forward edges `(from, to)`, in the order they were added.
    edges: Vec<(NodeId, NodeId)>,
    pub(crate) loops: Vec<Loop>,
    /// Whether nodes may run at the same time (on worker tasks); a graph
    /// where they never can runs its nodes one at a time, on one task.
    pub(crate) concurrent: bool,
}

impl Graph {
    /// An empty graph of kind `kind`.
    pub(crate) fn new(kind: &'static str, concurrent: bool) -> Self {
        Self {
            kind,
            concurrent,
            ..Self::default()
        }
    }

    /// A chain of `count` nodes: node k+1 takes node k's output.
    pub(crate) fn chain(count: usize) -> Self {
        let mut graph = Self::new("sequential", false).with_capacity(count, count);
        for index in 0..count {
            let node = graph.add_node();
            if let Some(previous) = index.checked_sub(1) {
                graph.add_edge(NodeId::from_index(previous), node);
            }
        }
        graph
    }

    /// `count` independent nodes, each on the run's input.
    pub(crate) fn fan_out(count: usize) -> Self {
        let mut graph = Self::new("parallel", true).with_capacity(count, 0);
        for _ in 0..count {
            graph.add_node();
        }
        graph
    }

    /// The same graph with room for `nodes` nodes and `edges` edges.
    pub(crate) fn with_capacity(mut self, nodes: usize, edges: usize) -> Self {
        self.nodes.reserve_exact(nodes);
        self.edges.reserve_exact(edges);
        self
    }

    /// Adds a node (a plain one: joins all its predecessors, no router).
    pub(crate) fn add_node(&mut self) -> NodeId {
        let id = NodeId::from_index(self.nodes.len());
        self.nodes.push(Node::new());
        id
    }

    /// The node `node`, to set its kind.
    pub(crate) fn node_mut(&mut self, node: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(node.index())
    }

    /// Adds a forward edge; edges between unknown nodes are ignored.
    pub(crate) fn add_edge(&mut self, from: NodeId, to: NodeId) {
        if from.index() < self.nodes.len() && to.index() < self.nodes.len() {
            self.edges.push((from, to));
        }
    }

    /// Adds a loop from `from` back to `to`; its body is every node on a
    /// forward path from `to` to `from`. Returns `false` (and adds nothing)
    /// when `from` cannot be reached from `to`.
    pub(crate) fn add_loop(&mut self, from: NodeId, to: NodeId, max_iterations: u32) -> bool {
        let body = self.between(to, from);
        if body.is_empty() {
            return false;
        }
        let index = self.loops.len();
        self.loops.push(Loop {
            from,
            to,
            max_iterations: max_iterations.max(1),
            body,
        });
        if let Some(node) = self.nodes.get_mut(from.index()) {
            node.closes_loop = Some(index);
        }
        true
    }

    /// The nodes on some forward path from `start` to `end` (both included),
    /// in node order; empty when there is none.
    fn between(&self, start: NodeId, end: NodeId) -> Vec<NodeId> {
        let (starts, successors) = self.successor_table();
        let predecessors = self.predecessor_lists();
        let reach = |from: NodeId, forward: bool| {
            let mut seen = vec![false; self.nodes.len()];
            let mut pending = vec![from];
            while let Some(node) = pending.pop() {
                if std::mem::replace(&mut seen[node.index()], true) {
                    continue;
                }
                if forward {
                    pending.extend(&successors[starts[node.index()]..starts[node.index() + 1]]);
                } else {
                    pending.extend(&predecessors[node.index()]);
                }
            }
            seen
        };
        if start.index() >= self.nodes.len() || end.index() >= self.nodes.len() {
            return Vec::new();
        }
        let after_start = reach(start, true);
        let before_end = reach(end, false);
        (0..self.nodes.len())
            .filter(|&index| after_start[index] && before_end[index])
            .map(NodeId::from_index)
            .collect()
    }

    /// For each node, the nodes it feeds: `successors[start[n]..start[n + 1]]`.
    pub(crate) fn successor_table(&self) -> (Vec<usize>, Vec<NodeId>) {
        let (start, successors, _) = self.edge_table();
        (start, successors)
    }

    /// As [`successor_table`](Self::successor_table), with each edge's slot:
    /// its place among the edges into its target, in the order they were added.
    pub(crate) fn edge_table(&self) -> (Vec<usize>, Vec<NodeId>, Vec<usize>) {
        let mut start = vec![0; self.nodes.len() + 1];
        for (from, _) in &self.edges {
            start[from.index() + 1] += 1;
        }
        for index in 1..start.len() {
            start[index] += start[index - 1];
        }
        let mut next = start.clone();
        let mut successors = vec![NodeId(0); self.edges.len()];
        let mut slots = vec![0; self.edges.len()];
        let mut inbound = vec![0; self.nodes.len()];
        for (from, to) in &self.edges {
            successors[next[from.index()]] = *to;
            slots[next[from.index()]] = inbound[to.index()];
            inbound[to.index()] += 1;
            next[from.index()] += 1;
        }
        (start, successors, slots)
    }

    /// For each node, how many edges lead into it.
    pub(crate) fn inbound_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.nodes.len()];
        for (_, to) in &self.edges {
            counts[to.index()] += 1;
        }
        counts
    }

    /// For each node, the nodes that feed it, in the order the edges were added.
    pub(crate) fn predecessor_lists(&self) -> Vec<Vec<NodeId>> {
        let mut lists = vec![Vec::new(); self.nodes.len()];
        for (from, to) in &self.edges {
            lists[to.index()].push(*from);
        }
        lists
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(index: usize) -> NodeId {
        NodeId::from_index(index)
    }

    #[test]
    fn a_loop_body_is_every_node_between_its_ends() {
        // 0 → 1 → 2 → 3, 1 → 4 (a side branch that never comes back)
        let mut graph = Graph::new("graph", true);
        for _ in 0..5 {
            graph.add_node();
        }
        for (from, to) in [(0, 1), (1, 2), (2, 3), (1, 4)] {
            graph.add_edge(n(from), n(to));
        }
        assert!(graph.add_loop(n(2), n(1), 3));
        assert_eq!(graph.loops[0].body, [n(1), n(2)]);
        assert_eq!(graph.nodes[2].closes_loop, Some(0));
        assert!(!graph.add_loop(n(1), n(3), 3), "3 never reaches 1");
    }
}
