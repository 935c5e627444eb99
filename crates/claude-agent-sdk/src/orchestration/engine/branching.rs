//! What a graph's author decides while a run goes on, and how those
//! decisions are kept.
//!
//! A pipeline or fan-out sends every output along every edge. A graph's
//! router picks the branches an output takes, a loop's condition says
//! whether the loop goes round again, and a map splits its input into
//! items. The engine asks for these decisions through [`Branching`], so the
//! scheduler and the walkers know nothing of routers or conditions: a
//! pattern simply has none.
//!
//! A decision is made on the run's state as it is when the step ends. A
//! resumed run must not make it again on the state as it is by then: it
//! takes the way the step went. So a decision is journaled with the step's
//! end by the graph's node ids ([`kept_decision`]), and read back into node
//! positions when the run is resumed ([`decision_of`]). It is kept by id
//! because positions are not stable: a graph may gain nodes between the runs.

use super::scheduler::Decision;
use crate::orchestration::agent::{AgentInput, AgentOutput};
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::errors::Result;
use crate::orchestration::journal::{NodeId, StepDecision};

/// What a graph's author decides while it runs: where a routed node's output
/// goes, whether a loop goes round again, and how a map splits its input.
/// Patterns have none.
pub(crate) trait Branching: Send + Sync {
    /// Where the output of `node`'s step (in loop iteration `iteration`)
    /// goes; `None` for a node with no router and closing no loop (its
    /// output goes along every edge).
    ///
    /// # Errors
    /// When the router named a node it may not route to: the step fails.
    fn decide(
        &self,
        node: NodeId,
        output: &AgentOutput,
        iteration: u32,
        ctx: &ExecutionContext,
    ) -> Result<Option<Decision>>;

    /// The items map node `node` runs once each, from its input.
    ///
    /// # Errors
    /// When the input cannot be split (not the JSON array the map expects).
    fn split(&self, node: NodeId, input: &AgentInput) -> Result<Vec<String>>;

    /// The node's id in the graph, for the journal.
    fn label(&self, node: NodeId) -> &str;
}

/// `decision` as the journal and a pause keep it: nodes by their graph ids.
pub(crate) fn kept_decision(decision: &Decision, branching: &dyn Branching) -> StepDecision {
    StepDecision {
        routes: decision.routes.as_ref().map(|routes| {
            routes
                .iter()
                .map(|node| branching.label(*node).to_owned())
                .collect()
        }),
        ends: decision.ends,
        again: decision.again,
    }
}

/// A kept decision back in node positions (`position` finds a graph node by
/// its id); `None` when it names a node the graph does not have.
pub(crate) fn decision_of(
    kept: &StepDecision,
    position: impl Fn(&str) -> Option<NodeId>,
) -> Option<Decision> {
    let routes = match &kept.routes {
        Some(routes) => Some(
            routes
                .iter()
                .map(|node| position(node))
                .collect::<Option<Vec<NodeId>>>()?,
        ),
        None => None,
    };
    Some(Decision {
        routes,
        ends: kept.ends,
        again: kept.again,
    })
}
