//! From a checked graph group to a [`GraphOrchestrator`]: nodes, edges,
//! routes (conditions, or a router agent's answer), bounded loops, maps (each
//! in a small graph of its own, for its `parallel_limit`), joins, and asks
//! (nodes that pause the run for a person's answer).
//!
//! The checker wires the same graph on stand-in agents to let the library
//! check its shape, so `orchestra validate` and `orchestra run` agree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, GraphOrchestrator, OrchestratorAgent, Result,
    Route, RouteContext, Split,
};

use crate::workflow::graph_model::{self, GraphSpec, MapSpec, RouteBy, RouteSpec};
use crate::workflow::raw_graph::SplitSpec;

/// Where a node with a router agent keeps the router's answer.
pub const ROUTE_KEY: &str = "orchestra.route";

/// How many items the latest run of each map node has, by the map's id:
/// told by the map nodes as they split their input, read by the progress
/// display to label each item's lines (`research[2/3]`).
#[derive(Debug, Clone, Default)]
pub struct MapCounts(Arc<Mutex<HashMap<String, usize>>>);

impl MapCounts {
    /// The number of items map `id` last split its input into, if known.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied()
    }

    fn set(&self, id: &str, count: usize) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), count);
    }
}

/// The graph `name` of `spec` over `nodes` (id and agent, in order); its map
/// nodes tell `counts` (when given) how many items they run.
#[must_use]
pub fn wire(
    name: &str,
    spec: &GraphSpec,
    nodes: Vec<(String, Arc<dyn Agent>)>,
    config: &ExecutionConfig,
    counts: Option<&MapCounts>,
) -> GraphOrchestrator {
    let mut graph = GraphOrchestrator::new(name).with_config(config.clone());
    for (id, agent) in nodes {
        graph = match spec.map(&id) {
            Some(map) => {
                let description = agent.description().to_owned();
                let items = map_graph(map, agent, spec, config);
                let node = MapNode {
                    items: OrchestratorAgent::new(&id, description, items, Vec::new()),
                    split: split_of(map.over),
                    counts: counts.cloned(),
                };
                graph.add_shared_node(id.clone(), Arc::new(node))
            }
            None => graph.add_shared_node(id, agent),
        };
    }
    for ask in &spec.asks {
        graph = graph.add_ask(ask.id.clone(), ask.question.clone());
    }
    for (from, to) in &spec.edges {
        graph = graph.add_edge(library_id(from), library_id(to));
    }
    for route in &spec.routes {
        let ids = route.targets();
        let targets: Vec<&str> = ids.iter().map(|id| library_id(id)).collect();
        graph = graph.add_router(route.from.clone(), targets, router(route));
    }
    for lp in &spec.loops {
        let until = lp.until.clone();
        graph = graph.add_loop(lp.last(), lp.first(), lp.max_iterations, move |ctx| {
            until
                .as_ref()
                .is_none_or(|condition| !condition.holds(ctx.output))
        });
    }
    for (id, policy) in &spec.joins {
        if spec.map(id).is_none() {
            graph = graph.with_join(id.clone(), *policy);
        }
    }
    graph
}

/// A map node as a graph of its own: the map, with its own parallel limit and join.
fn map_graph(
    map: &MapSpec,
    agent: Arc<dyn Agent>,
    spec: &GraphSpec,
    config: &ExecutionConfig,
) -> GraphOrchestrator {
    let split = split_of(map.over);
    let limit = map.parallel_limit.unwrap_or(config.parallel_limit);
    let mut graph = GraphOrchestrator::new(map.node.clone())
        .with_config(config.clone())
        .with_parallel_limit(limit)
        .add_map(map.node.clone(), agent, split)
        .add_edge(claude_agent_sdk::orchestration::START, map.node.clone())
        .add_edge(map.node.clone(), claude_agent_sdk::orchestration::END);
    if let Some(policy) = spec.join(&map.node) {
        graph = graph.with_join(map.node.clone(), policy);
    }
    graph
}

/// A map node in its graph: the run of its items (its own graph, see
/// [`map_graph`]), attempted once. The items have the agent's retries; a
/// failed map is not run again whole (its items that succeeded with them),
/// and its one attempt adds no count to the failed item's own.
struct MapNode {
    items: OrchestratorAgent<GraphOrchestrator>,
    /// How the input splits (the library splits it again, the same way).
    split: Split,
    /// Told how many items each run has.
    counts: Option<MapCounts>,
}

/// The library's split for `over`.
fn split_of(over: SplitSpec) -> Split {
    match over {
        SplitSpec::Lines => Split::Lines,
        SplitSpec::Json => Split::JsonArray,
    }
}

#[async_trait]
impl Agent for MapNode {
    fn name(&self) -> &str {
        self.items.name()
    }

    fn description(&self) -> &str {
        self.items.description()
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        if let Some(counts) = &self.counts {
            // Input the split refuses fails the map in the library, with its
            // own message.
            if let Ok(items) = self.split.items(&input.content) {
                counts.set(self.items.name(), items.len());
            }
        }
        // `{{output.ID}}` reads the map's gathered output, not the item that
        // happened to finish last (each item's step keeps its own under `ID`);
        // after a failed map, what it read before the map ran, as after any
        // failed step.
        let before = crate::template::kept_output(self.items.name()).await;
        match self.items.execute(input).await {
            Ok(output) => {
                crate::template::keep_output(self.items.name(), &output).await;
                Ok(output)
            }
            Err(error) => {
                crate::template::restore_output(self.items.name(), before).await;
                Err(error)
            }
        }
    }

    fn max_retries(&self) -> Option<usize> {
        Some(0)
    }
}

/// The library's id for `start`, `end` and node ids.
fn library_id(id: &str) -> &str {
    match id {
        graph_model::START => claude_agent_sdk::orchestration::START,
        graph_model::END => claude_agent_sdk::orchestration::END,
        other => other,
    }
}

fn to_all(ids: &[String]) -> Route {
    Route::to_all(ids.iter().map(|id| library_id(id).to_owned()))
}

/// The closure that routes `route.from`'s output.
fn router(route: &RouteSpec) -> impl Fn(&RouteContext<'_>) -> Route + Send + Sync + 'static {
    let by = route.by.clone();
    let default = route.default.clone();
    move |ctx| match &by {
        RouteBy::Conditions(branches) => branches
            .iter()
            .find(|branch| branch.condition.holds(ctx.output))
            .map_or_else(|| to_all(&default), |branch| to_all(&branch.to)),
        RouteBy::Router { choices, .. } => {
            let answer = ctx
                .output
                .metadata
                .get(ROUTE_KEY)
                .map(|answer| answer.trim().trim_matches(['`', '"', '\'', '.']).to_owned())
                .unwrap_or_default();
            choices
                .iter()
                .find(|choice| choice.eq_ignore_ascii_case(&answer))
                .map_or_else(
                    || to_all(&default),
                    |choice| to_all(std::slice::from_ref(choice)),
                )
        }
    }
}

/// A node whose output a router agent reads: the node runs, then the router
/// runs on its output, and the router's answer (its first line) rides along in
/// the output's metadata for the route to read.
pub struct Routed {
    inner: Arc<dyn Agent>,
    router: Arc<dyn Agent>,
}

impl Routed {
    /// `inner`, routed by `router`.
    #[must_use]
    pub fn new(inner: Arc<dyn Agent>, router: Arc<dyn Agent>) -> Self {
        Self { inner, router }
    }
}

#[async_trait]
impl Agent for Routed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn description(&self) -> &str {
        self.inner.description()
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let context = input.context.clone();
        let metadata = input.metadata.clone();
        let mut output = self.inner.execute(input).await?;
        let mut ask = AgentInput::new(output.content.clone()).with_context(context);
        for (key, value) in metadata {
            ask = ask.with_metadata(key, value);
        }
        let answer = self.router.execute(ask).await?;
        let first = answer.content.lines().next().unwrap_or_default().to_owned();
        output.metadata.insert(ROUTE_KEY.to_owned(), first);
        Ok(output)
    }

    fn max_retries(&self) -> Option<usize> {
        self.inner.max_retries()
    }

    fn attempt_timeout(&self) -> Option<std::time::Duration> {
        self.inner.attempt_timeout()
    }
}
