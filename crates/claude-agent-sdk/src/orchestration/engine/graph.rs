//! What a run is made of: nodes, the edges between them, and where each
//! node's input comes from.
//!
//! Every pattern is a [`Graph`]: a pipeline is a chain (each node takes its
//! predecessor's output), a fan-out is a set of nodes without edges that all
//! take the run's input. The [`Scheduler`](super::scheduler::Scheduler) walks
//! the graph; it knows nothing of agents.

use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::journal::NodeId;

/// Where a node's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputRule {
    /// The run's input.
    RunInput,
    /// The content of another node's output, with the run's context and metadata.
    OutputOf(NodeId),
}

/// One node: an agent (by position in the run's agent list) and its input.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) input: InputRule,
    /// How many predecessors must succeed before the node may run.
    pub(crate) join: JoinPolicy,
}

/// A run's nodes and edges.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// What kind of flow this is (`sequential`, `parallel`), for spans and logs.
    pub(crate) kind: &'static str,
    pub(crate) nodes: Vec<Node>,
    /// The edges `(from, to)`, in the order they were added.
    edges: Vec<(NodeId, NodeId)>,
    /// `predecessors[n]`: how many nodes node `n` waits for.
    pub(crate) predecessors: Vec<usize>,
    /// Whether nodes may run at the same time (on tasks of their own); a
    /// graph where they never can runs its nodes on the caller's task.
    pub(crate) concurrent: bool,
}

impl Graph {
    /// A chain of `count` nodes: node k+1 takes node k's output.
    pub(crate) fn chain(count: usize) -> Self {
        let mut graph = Self {
            kind: "sequential",
            ..Self::default()
        };
        for index in 0..count {
            let input = match index.checked_sub(1) {
                Some(previous) => InputRule::OutputOf(NodeId::from_index(previous)),
                None => InputRule::RunInput,
            };
            graph.add_node(input);
            if let Some(previous) = index.checked_sub(1) {
                graph.add_edge(NodeId::from_index(previous), NodeId::from_index(index));
            }
        }
        graph
    }

    /// `count` independent nodes, each on the run's input.
    pub(crate) fn fan_out(count: usize) -> Self {
        let mut graph = Self {
            kind: "parallel",
            concurrent: true,
            ..Self::default()
        };
        for _ in 0..count {
            graph.add_node(InputRule::RunInput);
        }
        graph
    }

    fn add_node(&mut self, input: InputRule) -> NodeId {
        let id = NodeId::from_index(self.nodes.len());
        self.nodes.push(Node {
            input,
            join: JoinPolicy::All,
        });
        self.predecessors.push(0);
        id
    }

    fn add_edge(&mut self, from: NodeId, to: NodeId) {
        if from.index() < self.nodes.len() {
            if let Some(waits) = self.predecessors.get_mut(to.index()) {
                self.edges.push((from, to));
                *waits += 1;
            }
        }
    }

    /// For each node, the nodes that wait for it: `successors[start[n]..start[n + 1]]`.
    pub(crate) fn successor_table(&self) -> (Vec<usize>, Vec<NodeId>) {
        let mut start = vec![0; self.nodes.len() + 1];
        for (from, _) in &self.edges {
            start[from.index() + 1] += 1;
        }
        for index in 1..start.len() {
            start[index] += start[index - 1];
        }
        let mut next = start.clone();
        let mut successors = vec![NodeId(0); self.edges.len()];
        for (from, to) in &self.edges {
            successors[next[from.index()]] = *to;
            next[from.index()] += 1;
        }
        (start, successors)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}
