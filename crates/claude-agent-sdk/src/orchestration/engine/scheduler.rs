//! The scheduler: which node runs next, decided from the run's state alone.
//!
//! No I/O, no clock, no tokio: the driver tells the scheduler what happened
//! (a node completed, how) and asks what to start. A node becomes ready as
//! soon as its own predecessors allow — there is no "superstep" barrier, so a
//! fast branch never waits for a slow sibling — and the scheduler hands out
//! at most `limit` nodes at a time, so the concurrency limit is exact by
//! construction. A node whose join can no longer be satisfied (a predecessor
//! failed) is skipped, and so are the nodes waiting for it.

use std::collections::VecDeque;

use super::graph::Graph;
use crate::orchestration::journal::NodeId;

/// How a node's run ended, as far as scheduling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    Succeeded,
    Failed,
    Interrupted,
}

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// Waiting for predecessors: how many have succeeded and failed so far.
    Waiting {
        succeeded: usize,
        failed: usize,
    },
    Ready,
    Running,
    Done(Completion),
    /// Its join can never be satisfied; it will not run.
    Skipped,
}

/// Decides what runs next (see the module docs).
#[derive(Debug)]
pub(crate) struct Scheduler {
    graph: Graph,
    /// The nodes waiting for node `n`: `successors[start[n]..start[n + 1]]`.
    start: Vec<usize>,
    successors: Vec<NodeId>,
    states: Vec<NodeState>,
    ready: VecDeque<NodeId>,
    running: usize,
    limit: usize,
}

impl Scheduler {
    /// A scheduler for `graph` running at most `limit` nodes at once (at
    /// least one).
    pub(crate) fn new(graph: Graph, limit: usize) -> Self {
        let (start, successors) = graph.successor_table();
        let mut scheduler = Self {
            start,
            successors,
            states: vec![
                NodeState::Waiting {
                    succeeded: 0,
                    failed: 0
                };
                graph.len()
            ],
            graph,
            ready: VecDeque::new(),
            running: 0,
            limit: limit.max(1),
        };
        for index in 0..scheduler.graph.len() {
            scheduler.settle(NodeId::from_index(index));
        }
        scheduler
    }

    /// The next node to start, if one is ready and the limit allows; it
    /// counts as running from now on.
    pub(crate) fn next(&mut self) -> Option<NodeId> {
        if self.running >= self.limit {
            return None;
        }
        let node = self.ready.pop_front()?;
        self.states[node.index()] = NodeState::Running;
        self.running += 1;
        Some(node)
    }

    /// Notes that running node `node` completed as `how`, and readies (or
    /// skips) the nodes waiting for it.
    pub(crate) fn complete(&mut self, node: NodeId, how: Completion) {
        let Some(state) = self.states.get_mut(node.index()) else {
            return;
        };
        if *state != NodeState::Running {
            return;
        }
        *state = NodeState::Done(how);
        self.running -= 1;
        // Skipping spreads along edges: a work list (allocated only when a
        // node is skipped), not recursion.
        let mut skipped = Vec::new();
        self.pass_on(node, how == Completion::Succeeded, &mut skipped);
        while let Some(from) = skipped.pop() {
            self.pass_on(from, false, &mut skipped);
        }
    }

    /// Tells the nodes waiting for `from` whether it succeeded; those it
    /// skips are added to `skipped`.
    fn pass_on(&mut self, from: NodeId, succeeded: bool, skipped: &mut Vec<NodeId>) {
        for edge in self.start[from.index()]..self.start[from.index() + 1] {
            let next = self.successors[edge];
            if let NodeState::Waiting {
                succeeded: ok,
                failed,
            } = &mut self.states[next.index()]
            {
                if succeeded {
                    *ok += 1;
                } else {
                    *failed += 1;
                }
            }
            if self.settle(next) == Some(NodeState::Skipped) {
                skipped.push(next);
            }
        }
    }

    /// Readies or skips a waiting node whose join is decided; returns its new
    /// state when it changed.
    fn settle(&mut self, node: NodeId) -> Option<NodeState> {
        let NodeState::Waiting { succeeded, failed } = self.states[node.index()] else {
            return None;
        };
        let waits = self.graph.predecessors[node.index()];
        let required = self.graph.nodes[node.index()]
            .join
            .required_successes(waits)
            .min(waits);
        let new = if succeeded >= required {
            NodeState::Ready
        } else if waits - failed < required {
            NodeState::Skipped
        } else {
            return None;
        };
        self.states[node.index()] = new;
        if new == NodeState::Ready {
            self.ready.push_back(node);
        }
        Some(new)
    }

    /// Whether nothing runs and nothing more can start: the run is over.
    #[cfg(test)]
    pub(crate) fn is_finished(&self) -> bool {
        self.running == 0 && self.ready.is_empty()
    }

    /// Whether every node has run to its own end (succeeded or failed) or
    /// was skipped: none was cut short, none is left to start.
    pub(crate) fn completed_all(&self) -> bool {
        self.states.iter().all(|state| {
            matches!(
                state,
                NodeState::Done(Completion::Succeeded | Completion::Failed) | NodeState::Skipped
            )
        })
    }

    /// Whether a node is ready to start (the limit aside).
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// How many nodes are running.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// The graph being walked.
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Where node `node` stands.
    #[cfg(test)]
    pub(crate) fn state(&self, node: NodeId) -> Option<NodeState> {
        self.states.get(node.index()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(index: usize) -> NodeId {
        NodeId::from_index(index)
    }

    #[test]
    fn a_chain_runs_one_node_after_another() {
        let mut scheduler = Scheduler::new(Graph::chain(3), 10);
        assert_eq!(scheduler.next(), Some(n(0)));
        assert_eq!(scheduler.next(), None, "node 1 waits for node 0");
        scheduler.complete(n(0), Completion::Succeeded);
        assert_eq!(scheduler.next(), Some(n(1)));
        scheduler.complete(n(1), Completion::Succeeded);
        assert_eq!(scheduler.next(), Some(n(2)));
        assert!(!scheduler.is_finished());
        scheduler.complete(n(2), Completion::Succeeded);
        assert!(scheduler.is_finished());
    }

    #[test]
    fn a_failure_skips_everything_after_it() {
        let mut scheduler = Scheduler::new(Graph::chain(4), 10);
        assert_eq!(scheduler.next(), Some(n(0)));
        scheduler.complete(n(0), Completion::Failed);
        assert_eq!(scheduler.next(), None);
        assert!(scheduler.is_finished());
        for later in 1..4 {
            assert_eq!(scheduler.state(n(later)), Some(NodeState::Skipped));
        }
    }

    #[test]
    fn a_fan_out_never_runs_more_than_the_limit() {
        let mut scheduler = Scheduler::new(Graph::fan_out(5), 2);
        assert_eq!(scheduler.next(), Some(n(0)));
        assert_eq!(scheduler.next(), Some(n(1)));
        assert_eq!(scheduler.next(), None, "the limit is reached");
        assert_eq!(scheduler.running(), 2);
        scheduler.complete(n(1), Completion::Failed);
        assert_eq!(
            scheduler.next(),
            Some(n(2)),
            "a sibling's failure stops nothing"
        );
        scheduler.complete(n(0), Completion::Succeeded);
        scheduler.complete(n(2), Completion::Succeeded);
        assert_eq!(scheduler.next(), Some(n(3)));
        assert_eq!(scheduler.next(), Some(n(4)));
        scheduler.complete(n(3), Completion::Succeeded);
        assert!(!scheduler.completed_all());
        scheduler.complete(n(4), Completion::Interrupted);
        assert!(scheduler.is_finished());
        assert!(!scheduler.completed_all(), "node 4 was cut short");
    }

    #[test]
    fn a_run_whose_nodes_all_ended_on_their_own_is_complete() {
        let mut scheduler = Scheduler::new(Graph::chain(3), 1);
        assert!(!scheduler.completed_all());
        let first = scheduler.next().unwrap();
        scheduler.complete(first, Completion::Failed);
        assert!(scheduler.completed_all(), "the rest was skipped");
    }

    #[test]
    fn completions_of_nodes_not_running_are_ignored() {
        let mut scheduler = Scheduler::new(Graph::fan_out(2), 1);
        scheduler.complete(n(1), Completion::Succeeded);
        assert_eq!(scheduler.running(), 0);
        assert_eq!(scheduler.next(), Some(n(0)));
        scheduler.complete(n(0), Completion::Succeeded);
        scheduler.complete(n(0), Completion::Failed);
        assert_eq!(
            scheduler.state(n(0)),
            Some(NodeState::Done(Completion::Succeeded))
        );
    }

    #[test]
    fn a_limit_of_zero_still_lets_one_node_run() {
        let mut scheduler = Scheduler::new(Graph::fan_out(2), 0);
        assert!(scheduler.next().is_some());
        assert!(scheduler.next().is_none());
    }
}
