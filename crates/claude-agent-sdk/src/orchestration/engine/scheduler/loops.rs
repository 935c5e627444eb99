//! Loops in the scheduler: what going round a loop touches, worked out once
//! when the scheduler is made, and going round itself — the body's nodes
//! waiting afresh, nested loops starting again, and what the body heard from
//! outside heard again.

use super::tokens::NodeState;
use super::{Scheduler, StepId, StepInput};
use crate::orchestration::engine::graph::Graph;
use crate::orchestration::journal::NodeId;

impl Scheduler {
    /// Sends the run back to the first node of loop `index`, fed by `step`:
    /// the body's nodes wait afresh for their predecessors in the body, and
    /// keep what their predecessors outside it passed them; loops nested in
    /// the body start again from their first iteration; and the nodes after
    /// the body that this pass left unrun (a branch a router did not take, a
    /// join still waiting) wait afresh too, since a later pass may lead to
    /// them.
    pub(super) fn go_round(&mut self, index: usize, step: StepId) {
        self.iterations[index] += 1;
        let reach = &self.reach[index];
        for &inner in &reach.inner {
            self.iterations[inner] = 1;
        }
        let reopened = reach.after.iter().copied().filter(|node| {
            matches!(
                self.nodes[node.index()],
                NodeState::Skipped | NodeState::Waiting { .. }
            )
        });
        let afresh: Vec<NodeId> = self.graph.loops[index]
            .body
            .iter()
            .copied()
            .chain(reopened)
            .collect();
        for node in &afresh {
            self.nodes[node.index()] = NodeState::waiting();
            self.afresh[node.index()] = true;
            // What it said on an earlier pass is no longer what it says:
            // the nodes it feeds wait for this pass's word.
            for edge in self.start[node.index()]..self.start[node.index() + 1] {
                let (next, slot) = (self.successors[edge], self.slots[edge]);
                self.inbox[self.inbox_start[next.index()] + slot] = None;
            }
        }
        let to = self.graph.loops[index].to;
        self.activate(to, StepInput::OutputOf(step));
        // What the nodes that wait afresh heard from predecessors that stay
        // as they are is heard again: those do not pass it a second time.
        let mut kept = Vec::new();
        for &node in afresh.iter().filter(|&&node| node != to) {
            for (slot, from) in self.predecessors[node.index()].iter().enumerate() {
                if self.afresh[from.index()] {
                    continue;
                }
                if let Some(token) = self.inbox[self.inbox_start[node.index()] + slot] {
                    kept.push((node, slot, token));
                }
            }
        }
        for node in &afresh {
            self.afresh[node.index()] = false;
        }
        let mut passed_on = Vec::new();
        for (node, slot, token) in kept {
            self.pass(node, slot, token, &mut passed_on);
        }
        self.pass_on(passed_on);
    }
}

/// What going round one loop touches, worked out once.
#[derive(Debug, Clone, Default)]
pub(super) struct LoopReach {
    /// The nodes after the body: reachable from it, not in it.
    after: Vec<NodeId>,
    /// The loops whose bodies lie inside this one's.
    inner: Vec<usize>,
}

/// For each loop of `graph`, what going round it touches; each node's
/// predecessors by slot; and where each node's slots start in a table of
/// every node's inputs (`waits`: how many each has). All empty for a graph
/// without loops.
pub(super) fn loop_reach(
    graph: &Graph,
    waits: &[usize],
) -> (Vec<LoopReach>, Vec<Vec<NodeId>>, Vec<usize>) {
    if graph.loops.is_empty() {
        return (Vec::new(), Vec::new(), Vec::new());
    }
    let mut inbox_start = Vec::with_capacity(waits.len());
    let mut next = 0;
    for &count in waits {
        inbox_start.push(next);
        next += count;
    }
    let (starts, successors) = graph.successor_table();
    let in_body: Vec<Vec<bool>> = graph
        .loops
        .iter()
        .map(|lp| {
            let mut in_body = vec![false; graph.len()];
            for node in &lp.body {
                in_body[node.index()] = true;
            }
            in_body
        })
        .collect();
    let reach = graph
        .loops
        .iter()
        .enumerate()
        .map(|(index, lp)| {
            let mut seen = in_body[index].clone();
            let mut pending = lp.body.clone();
            let mut after = Vec::new();
            while let Some(node) = pending.pop() {
                for &next in &successors[starts[node.index()]..starts[node.index() + 1]] {
                    if !std::mem::replace(&mut seen[next.index()], true) {
                        after.push(next);
                        pending.push(next);
                    }
                }
            }
            let inner = (0..graph.loops.len())
                .filter(|&other| {
                    other != index
                        && graph.loops[other]
                            .body
                            .iter()
                            .all(|node| in_body[index][node.index()])
                })
                .collect();
            LoopReach { after, inner }
        })
        .collect();
    // A node's slots number its predecessors in the order the edges were added.
    (reach, graph.predecessor_lists(), inbox_start)
}
