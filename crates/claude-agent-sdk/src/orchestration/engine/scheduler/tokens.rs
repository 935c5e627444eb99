//! How a step's completion travels: tokens along the edges, counted by
//! each node's join.
//!
//! Each predecessor's completion reaches a waiting node as a token: it
//! succeeded, it failed (or failures kept it from running), or it was
//! skipped (no branch led to it: a router chose others). The node's
//! [`JoinPolicy`] counts successes among the predecessors not skipped: the
//! node runs once enough succeeded; it does not run once that can no longer
//! happen, and passes on a failure — or, when every predecessor was
//! skipped, a skip — to the nodes it feeds.
//!
//! Tokens, rather than a count of the predecessors that finished, are what
//! let a node start as soon as its own inputs allow, and what let a
//! router's choice reach every node past the branch it did not take: a node
//! that will not run says so to the nodes it feeds, so no node waits for a
//! predecessor that will never run.

use super::{Completion, Decision, Scheduler, StepId, StepInput};
use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::journal::NodeId;

/// Where a node stands in the current pass over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NodeState {
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
    pub(super) fn waiting() -> Self {
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
pub(super) enum Token {
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

impl Scheduler {
    /// Passes step `step`'s completion on along its node's edges (or back
    /// round its loop).
    pub(super) fn finish(&mut self, step: StepId, how: Completion, decision: &Decision) {
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
    pub(super) fn pass_on(&mut self, mut passed_on: Vec<(NodeId, Token)>) {
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
    pub(super) fn pass(
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
}

/// How many of `live` predecessors (those not skipped) must succeed under
/// `join`: at least one, at most all.
fn join_requirement(join: JoinPolicy, live: usize) -> usize {
    join.required_successes(live).clamp(1, live.max(1))
}
