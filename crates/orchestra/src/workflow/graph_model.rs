//! A checked graph group: its edges, routes, loops, maps and joins, with node
//! ids resolved (`start` and `end` stay as written; the plan maps them to the
//! library's `START` and `END`).

use claude_agent_sdk::orchestration::JoinPolicy;

use super::condition::Condition;
use super::raw_graph::SplitSpec;

/// The id that stands for the graph's start in edges.
pub const START: &str = "start";
/// The id that stands for the graph's end in edges, routes and loops.
pub const END: &str = "end";

/// The wiring of a graph group (its nodes are the group's steps).
#[derive(Debug, Clone, Default)]
pub struct GraphSpec {
    /// Edges `(from, to)`, loop bodies' implied edges included, without repeats.
    pub edges: Vec<(String, String)>,
    /// Routes, one per routed node.
    pub routes: Vec<RouteSpec>,
    /// Bounded loops.
    pub loops: Vec<LoopSpec>,
    /// Map nodes.
    pub maps: Vec<MapSpec>,
    /// Join policies by node.
    pub joins: Vec<(String, JoinPolicy)>,
    /// Nodes that ask a person (only in the root flow's graph).
    pub asks: Vec<AskSpec>,
}

/// A node that asks a person `question`; the answer, given under `id`, is its
/// output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskSpec {
    /// The node's id, and the answer's.
    pub id: String,
    /// What is asked.
    pub question: String,
}

impl GraphSpec {
    /// The map over node `id`, if it is one.
    #[must_use]
    pub fn map(&self, id: &str) -> Option<&MapSpec> {
        self.maps.iter().find(|map| map.node == id)
    }

    /// The join policy of node `id`, if one is set.
    #[must_use]
    pub fn join(&self, id: &str) -> Option<JoinPolicy> {
        self.joins
            .iter()
            .find(|(node, _)| node == id)
            .map(|(_, policy)| *policy)
    }
}

/// Where a node's output goes.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// The routed node.
    pub from: String,
    /// How the next node is picked.
    pub by: RouteBy,
    /// Where the output goes when nothing else is picked.
    pub default: Vec<String>,
}

impl RouteSpec {
    /// Every node the route may send to, in order, without repeats.
    #[must_use]
    pub fn targets(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let picked = match &self.by {
            RouteBy::Conditions(branches) => branches
                .iter()
                .flat_map(|branch| branch.to.clone())
                .collect::<Vec<_>>(),
            RouteBy::Router { choices, .. } => choices.clone(),
        };
        for id in picked.into_iter().chain(self.default.iter().cloned()) {
            if !all.contains(&id) {
                all.push(id);
            }
        }
        all
    }
}

/// How a route picks.
#[derive(Debug, Clone)]
pub enum RouteBy {
    /// The first branch whose condition holds.
    Conditions(Vec<Branch>),
    /// The choice a router agent names.
    Router {
        /// The router agent's id.
        agent: String,
        /// What it may name.
        choices: Vec<String>,
    },
}

/// A condition and where the output goes when it holds.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The condition.
    pub condition: Condition,
    /// The node(s), or `end`.
    pub to: Vec<String>,
}

/// A bounded loop.
#[derive(Debug, Clone)]
pub struct LoopSpec {
    /// Its nodes, first to last.
    pub body: Vec<String>,
    /// When to stop going round (none: go round `max_iterations` times).
    pub until: Option<Condition>,
    /// The most passes.
    pub max_iterations: u32,
}

impl LoopSpec {
    /// The body's first node (where the loop goes back to).
    #[must_use]
    pub fn first(&self) -> &str {
        self.body.first().map_or("", String::as_str)
    }

    /// The body's last node (whose output decides).
    #[must_use]
    pub fn last(&self) -> &str {
        self.body.last().map_or("", String::as_str)
    }
}

/// A map node.
#[derive(Debug, Clone)]
pub struct MapSpec {
    /// The node.
    pub node: String,
    /// How its input is split.
    pub over: SplitSpec,
    /// Most items at once, when set.
    pub parallel_limit: Option<usize>,
}
