//! A what-if over a graph: could a run of it still reach its end if the
//! nodes that failed for good fail again?
//!
//! A graph run that failed with a retryable error may be retried whole, by
//! whatever runs it (the attempt around a subgraph, a caller's retry loop).
//! That is worth it only if some run could get past the nodes that failed
//! for good, which fail again however often they run. The scheduler answers
//! by running itself over the graph alone, with no agents and no runtime:
//! those nodes fail, every other step succeeds, and every router sends its
//! output everywhere it may. When even that run cannot reach the end, no
//! retry can, and the error is made permanent.

use super::{Completion, Decision, Scheduler, Step, StepKind};
use crate::orchestration::engine::graph::Graph;
use crate::orchestration::journal::NodeId;

impl Scheduler {
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
