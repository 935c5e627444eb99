//! Graphs: routing, joins, maps and bounded loops.
//!
//! Real agent work is rarely a fixed list: a reviewer sends a draft back
//! until it passes, a triage agent routes a ticket to one of several
//! specialists, a planner's list of sub-questions gets one researcher per
//! item. A [`GraphOrchestrator`] draws such a flow as nodes and edges, and
//! runs it on the same engine as the patterns — retries, timeouts,
//! cancellation, the journal and traces work the same way.
//!
//! - **Nodes**: any [`Agent`] ([`add_node`](GraphOrchestrator::add_node)),
//!   with its own retries and attempt timeout ([`NodeOptions`]); an agent of
//!   an [`AgentRegistry`] by id; a whole graph as one node
//!   ([`add_subgraph`](GraphOrchestrator::add_subgraph)); or a map, which
//!   runs its agent once per item of its input ([`add_map`](GraphOrchestrator::add_map)).
//! - **Edges**: [`add_edge`](GraphOrchestrator::add_edge) from [`START`],
//!   between nodes, and to [`END`] (the nodes whose outputs are the run's
//!   result). A node fed by several nodes is a *join*: it waits for them
//!   under its [`JoinPolicy`] ([`with_join`](GraphOrchestrator::with_join);
//!   all of them by default). Under `AtLeast(k)` or `Any` it runs as soon
//!   as enough have succeeded, on their outputs: what the others produce
//!   later does not reach it.
//! - **Routers**: [`add_router`](GraphOrchestrator::add_router) — a closure
//!   over the node's output and the run's state picks the next node(s) among
//!   those it declares, or [`END`]. Branches not chosen are skipped, and a
//!   join downstream counts only the branches that ran — so a node fed by a
//!   router *and* by another node runs on that node's output when the
//!   router skips it: to gate a step on a router's choice (an approval
//!   before a payment), feed it from the router alone.
//! - **Loops**: [`add_loop`](GraphOrchestrator::add_loop) — after the loop's
//!   last node, a condition decides whether to go back to its first node
//!   (which gets the last node's output); the nodes between run again, at
//!   most `max_iterations` times in all.
//!
//! **What a node receives**: a node that runs first gets the run's input; a
//! node fed by one node gets that node's output content; a node fed by
//! several that succeeded — a join, or the node after a map — gets their
//! outputs *gathered*: as content, the contents one after another separated
//! by a blank line; and in its metadata under `"results"`, a JSON array with
//! one object per output (`agent`, `content`, `data` when it had any, and
//! for a map's items `item` — the index — and `input`, the item's text), in
//! predecessor order or item order. Every node also gets the run's context and metadata. Shared state
//! lives in the [`ExecutionContext`](crate::orchestration::ExecutionContext):
//! [`set_state`](crate::orchestration::ExecutionContext::set_state) is
//! last-write-wins, and parallel branches that write one key use
//! [`update_state`](crate::orchestration::ExecutionContext::update_state)
//! (an atomic read-modify-write) or the reducers
//! [`append_state`](crate::orchestration::ExecutionContext::append_state) and
//! [`merge_state`](crate::orchestration::ExecutionContext::merge_state).
//!
//! **No superstep barrier**: a node runs as soon as its own predecessors
//! allow, so a fast branch never waits for a slow sibling; at most the
//! config's `parallel_limit` agents run at once.
//!
//! **Checked before anything runs**: unknown node ids (with a did-you-mean),
//! nodes that can never run, nodes with no path to [`END`], and cycles that
//! are not bounded loops are all reported at once, as
//! [`OrchestrationError::InvalidConfig`](crate::orchestration::OrchestrationError::InvalidConfig) naming the nodes
//! ([`GraphOrchestrator::validate`] checks without running;
//! [`GraphOrchestrator::problems`] gives each problem with its nodes).
//!
//! **Human input**: an agent asks a person with
//! [`ExecutionContext::ask`](crate::orchestration::ExecutionContext::ask);
//! the run pauses and returns [`OrchestrationError::InputRequired`](crate::orchestration::OrchestrationError::InputRequired), and
//! [`resume`](GraphOrchestrator::resume) continues it with the answers,
//! without running any finished step again (see [`human`](crate::orchestration::human)).
//!
//! **Limits**: a run takes at most [`RunBudget::max_steps`] steps (one per
//! node run, loop iteration and map item; [`DEFAULT_MAX_STEPS`](crate::orchestration::budget::DEFAULT_MAX_STEPS)
//! unless set), and may bound tokens, cost and time ([`with_budget`](GraphOrchestrator::with_budget));
//! crossing one fails the run with [`OrchestrationError::BudgetExceeded`](crate::orchestration::OrchestrationError::BudgetExceeded),
//! which names the budget — and for the step limit, the loop that ran away.
//!
//! **Running it**: a graph holds its agents, so
//! [`invoke`](GraphOrchestrator::invoke)`("text")` runs it on an input alone
//! ([`invoke_in`](GraphOrchestrator::invoke_in) under a context of yours);
//! as an [`Orchestrator`](crate::orchestration::Orchestrator) it takes an
//! empty agent list (`orchestrate(vec![], input)`), and nests in an
//! [`OrchestratorAgent`](crate::orchestration::OrchestratorAgent) or a
//! registry like any other.
//!
//! **The output**: `result` is the content of the output that reached
//! [`END`] (several reaching it are gathered, in completion order);
//! `agent_outputs` holds every successful step's output in the order the
//! steps were created; `failures` lists the steps that failed while the run
//! still reached its end (`index` is the step's number, as in the journal).
//! A run that never reaches [`END`] fails with its first failure — made
//! permanent when nodes that failed for good (outside loops and maps) keep
//! any run of the graph from reaching [`END`], so that a retry around the
//! graph (a subgraph node's) does not run them again.
//!
//! ```
//! use claude_agent_sdk::orchestration::{
//!     AgentOutput, GraphOrchestrator, Route, SimpleAgent,
//!     Split, END, START,
//! };
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let triage = SimpleAgent::new("triage", "", |i| Ok(AgentOutput::new(i.content)));
//! let planner = SimpleAgent::new("planner", "", |_| Ok(AgentOutput::new("a\nb\nc")));
//! let research = SimpleAgent::new("research", "", |i| Ok(AgentOutput::new(i.content.to_uppercase())));
//! let writer = SimpleAgent::new("writer", "", |i| {
//!     Ok(AgentOutput::new(format!("draft of {}", i.content.replace("\n\n", "+"))))
//! });
//! let critic = SimpleAgent::new("critic", "", |i| Ok(AgentOutput::new(i.content)));
//! let graph = GraphOrchestrator::new("report")
//!     .add_node("triage", triage)
//!     .add_node("planner", planner)
//!     .add_map("research", research, Split::Lines)
//!     .add_node("writer", writer)
//!     .add_node("critic", critic)
//!     .add_edge(START, "triage")
//!     // A router: questions go to the planner, anything else ends the run.
//!     .add_router("triage", ["planner", END], |route| {
//!         if route.output.content.ends_with('?') { Route::to("planner") } else { Route::end() }
//!     })
//!     .add_edge("planner", "research")
//!     .add_edge("research", "writer")
//!     .add_edge("writer", "critic")
//!     // Refine until the critic is happy, three rounds at most.
//!     .add_loop("critic", "writer", 3, |route| route.iteration < 2)
//!     .add_edge("critic", END);
//! let output = graph.invoke("what happened?").await?;
//! assert_eq!(output.result, "draft of draft of A+B+C");
//! # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
//! # }).unwrap();
//! ```

mod check;
mod nodes;
mod route;
mod run;

use std::sync::{Arc, OnceLock};

use crate::orchestration::agent::Agent;
use crate::orchestration::budget::RunBudget;
use crate::orchestration::errors::Result;
use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::orchestrator::BaseOrchestrator;
use crate::orchestration::patterns::orchestrator_builders;
use crate::orchestration::registry::AgentRegistry;

pub use check::GraphProblem;
pub use nodes::NodeOptions;
pub use route::{Route, RouteContext, Split, END, START};

use nodes::{AskAgent, NodeAgent, NodeSource};
use route::{Condition, Router};
use run::Compiled;

/// A graph of agents (see the module docs).
#[derive(Clone)]
pub struct GraphOrchestrator {
    base: BaseOrchestrator,
    nodes: Vec<NodeDef>,
    edges: Vec<(String, String)>,
    routers: Vec<RouterDef>,
    loops: Vec<LoopDef>,
    joins: Vec<(String, JoinPolicy)>,
    budget: RunBudget,
    /// The checked graph, made by the first run (or `validate`) and kept
    /// until the graph changes.
    prepared: Arc<OnceLock<std::result::Result<Prepared, Vec<GraphProblem>>>>,
}

/// A checked graph, ready to run.
#[derive(Clone)]
struct Prepared {
    graph: crate::orchestration::engine::graph::Graph,
    compiled: Arc<Compiled>,
    /// The nodes' agents, made once when none is looked up in a registry
    /// (a registry's agents are looked up when each run starts).
    agents: Option<Arc<Vec<Box<dyn Agent>>>>,
}

#[derive(Clone)]
struct NodeDef {
    id: String,
    source: NodeSource,
    options: NodeOptions,
    split: Option<Split>,
    /// Whether it is a question node ([`GraphOrchestrator::add_ask`]).
    asks: bool,
}

#[derive(Clone)]
struct RouterDef {
    from: String,
    targets: Vec<String>,
    router: Router,
}

#[derive(Clone)]
struct LoopDef {
    from: String,
    to: String,
    max_iterations: u32,
    again: Condition,
}

impl std::fmt::Debug for GraphOrchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphOrchestrator")
            .field("name", &self.base.name())
            .field(
                "nodes",
                &self.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            )
            .field("edges", &self.edges)
            .finish_non_exhaustive()
    }
}

impl GraphOrchestrator {
    /// An empty graph called `name`, with the default configuration.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            base: BaseOrchestrator::new(name, "Runs a graph of agents"),
            nodes: Vec::new(),
            edges: Vec::new(),
            routers: Vec::new(),
            loops: Vec::new(),
            joins: Vec::new(),
            budget: RunBudget::new(),
            prepared: Arc::default(),
        }
    }

    orchestrator_builders!();

    /// Sets how many agents (branches, map items) run at once (shorthand
    /// for the config's).
    #[must_use]
    pub fn with_parallel_limit(mut self, parallel_limit: usize) -> Self {
        self.base.config_mut().parallel_limit = parallel_limit;
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.base = BaseOrchestrator::new(self.base.name(), description)
            .with_config(self.base.config().clone());
        self
    }

    /// Adds node `id` running `agent`.
    #[must_use]
    pub fn add_node(self, id: impl Into<String>, agent: impl Agent + 'static) -> Self {
        self.add_node_with(id, agent, NodeOptions::new())
    }

    /// Adds node `id` running `agent` under `options` (its own retries and
    /// attempt timeout).
    #[must_use]
    pub fn add_node_with(
        self,
        id: impl Into<String>,
        agent: impl Agent + 'static,
        options: NodeOptions,
    ) -> Self {
        self.push_node(id.into(), NodeSource::Agent(Arc::new(agent)), options, None)
    }

    /// Adds node `id` running an agent already shared elsewhere.
    #[must_use]
    pub fn add_shared_node(self, id: impl Into<String>, agent: Arc<dyn Agent>) -> Self {
        self.push_node(
            id.into(),
            NodeSource::Agent(agent),
            NodeOptions::new(),
            None,
        )
    }

    /// Adds node `id` running the agent registered as `agent_id` in
    /// `registry`, looked up when a run starts. The registry's metadata
    /// (`max_retries`, `timeout_secs`) governs it, as when the registry runs
    /// it by id; an unknown or disabled id fails the run before anything runs.
    #[must_use]
    pub fn add_registry_node(
        self,
        id: impl Into<String>,
        registry: Arc<AgentRegistry>,
        agent_id: impl Into<String>,
    ) -> Self {
        let source = NodeSource::Registry {
            registry,
            id: agent_id.into(),
        };
        self.push_node(id.into(), source, NodeOptions::new(), None)
    }

    /// Adds node `id` running `graph` as one step (a nested run: its trace
    /// sits under the step's record).
    #[must_use]
    pub fn add_subgraph(self, id: impl Into<String>, graph: GraphOrchestrator) -> Self {
        let id = id.into();
        let description = graph.base.description().to_owned();
        let agent = crate::orchestration::OrchestratorAgent::new(
            id.clone(),
            description,
            graph,
            Vec::new(),
        );
        self.push_node(
            id,
            NodeSource::Agent(Arc::new(agent)),
            NodeOptions::new(),
            None,
        )
    }

    /// Adds node `id`, which asks a person `question` (followed by the
    /// node's input) under question id `id`: the run pauses until
    /// [`resume`](Self::resume) gives the answer, which is the node's output.
    /// In a loop, each pass asks again: pass *n* > 1 under question id
    /// `id#n` (`review`, then `review#2`, `review#3`, …), so an answer
    /// given for one pass is never taken for the next.
    #[must_use]
    pub fn add_ask(self, id: impl Into<String>, question: impl Into<String>) -> Self {
        let id = id.into();
        let agent = AskAgent {
            name: id.clone(),
            question_id: id.clone(),
            question: question.into(),
        };
        let mut graph = self.push_node(
            id,
            NodeSource::Agent(Arc::new(agent)),
            NodeOptions::new(),
            None,
        );
        if let Some(node) = graph.nodes.last_mut() {
            node.asks = true;
        }
        graph
    }

    /// Adds map node `id`: its input is split into items by `split`, and
    /// `agent` runs once per item (at most the config's `parallel_limit` at
    /// once); the items' outputs are gathered in item order. By default every
    /// item must succeed; [`with_join`](Self::with_join) on the map relaxes that.
    #[must_use]
    pub fn add_map(self, id: impl Into<String>, agent: impl Agent + 'static, split: Split) -> Self {
        self.push_node(
            id.into(),
            NodeSource::Agent(Arc::new(agent)),
            NodeOptions::new(),
            Some(split),
        )
    }

    fn push_node(
        mut self,
        id: String,
        source: NodeSource,
        options: NodeOptions,
        split: Option<Split>,
    ) -> Self {
        self.prepared = Arc::default();
        self.nodes.push(NodeDef {
            id,
            source,
            options,
            split,
            asks: false,
        });
        self
    }

    /// Adds an edge: `to` gets `from`'s output. `from` may be [`START`]
    /// (`to` runs first, on the run's input); `to` may be [`END`] (`from`'s
    /// output is a result of the run). Adding an edge twice adds it once.
    #[must_use]
    pub fn add_edge(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.prepared = Arc::default();
        self.edges.push((from.into(), to.into()));
        self
    }

    /// Gives node `from` a router: after it succeeds, `router` picks which
    /// of `targets` (node ids, or [`END`]) get its output. Routing to a node
    /// not in `targets` fails the step. `from` may not be a map: to route
    /// what a map gathered, put a node after it and route from there.
    #[must_use]
    pub fn add_router<I, S>(
        mut self,
        from: impl Into<String>,
        targets: I,
        router: impl Fn(&RouteContext<'_>) -> Route + Send + Sync + 'static,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.prepared = Arc::default();
        self.routers.push(RouterDef {
            from: from.into(),
            targets: targets.into_iter().map(Into::into).collect(),
            router: Arc::new(router),
        });
        self
    }

    /// Adds a loop: after node `from` succeeds, while `again` says so, the
    /// run goes back to node `to` (which gets `from`'s output), running the
    /// nodes between them again — at most `max_iterations` passes in all.
    /// When the loop ends, `from`'s output goes on along its edges. `from`
    /// may not be a map (put a node after it and close the loop there);
    /// `to` may.
    ///
    /// Each pass starts the loops nested in it afresh (their passes count
    /// from 1 again), and the nodes after the loop that a pass left unrun —
    /// a branch a router in the loop did not take — may run on a later pass
    /// that leads to them: "loop until done, then leave by another branch"
    /// works. A node after the loop runs at most once.
    #[must_use]
    pub fn add_loop(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        max_iterations: u32,
        again: impl Fn(&RouteContext<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.prepared = Arc::default();
        self.loops.push(LoopDef {
            from: from.into(),
            to: to.into(),
            max_iterations,
            again: Arc::new(again),
        });
        self
    }

    /// Sets how many of node `id`'s predecessors (for a map: its items)
    /// must succeed. Predecessors a router did not lead to do not count:
    /// the policy asks for no more successes than there are predecessors
    /// left (`AtLeast(3)` with two branches taken needs both). A map with
    /// fewer items than its policy asks for (`AtLeast(k)` over fewer than
    /// *k*, `Any` over none) fails; under `All`, a map with no items
    /// succeeds, gathering nothing. `id` must be a node: [`END`] joins
    /// nothing (every output that reaches it is a result), and naming it is
    /// a problem the check reports.
    #[must_use]
    pub fn with_join(mut self, id: impl Into<String>, policy: JoinPolicy) -> Self {
        self.prepared = Arc::default();
        self.joins.push((id.into(), policy));
        self
    }

    /// Sets what a run may spend.
    #[must_use]
    pub fn with_budget(mut self, budget: RunBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the most steps a run may take (see [`RunBudget::max_steps`]).
    #[must_use]
    pub fn with_max_steps(mut self, steps: usize) -> Self {
        self.budget.max_steps = steps;
        self
    }

    /// The budget runs get.
    #[must_use]
    pub fn budget(&self) -> &RunBudget {
        &self.budget
    }

    /// The node ids, in the order they were added.
    pub fn node_ids(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|node| node.id.as_str())
    }

    /// Checks the graph, its configuration and its budget as a run would
    /// before starting.
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`](crate::orchestration::OrchestrationError::InvalidConfig) naming every problem found
    /// in the graph (each of [`problems`](Self::problems), joined), or else
    /// what is wrong with the configuration
    /// ([`ExecutionConfig::validate`](crate::orchestration::ExecutionConfig::validate))
    /// or the budget ([`RunBudget::validate`]).
    pub fn validate(&self) -> Result<()> {
        self.prepared()?;
        self.base.config().validate()?;
        self.budget.validate()
    }

    /// What is wrong with the graph, one problem at a time, each with the
    /// nodes it is about (for a tool that points at them); empty when the
    /// graph can run.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::{GraphOrchestrator, SimpleAgent, AgentOutput, END, START};
    ///
    /// let echo = |name: &str| SimpleAgent::new(name, "echo", |input| Ok(AgentOutput::new(input.content)));
    /// let graph = GraphOrchestrator::new("g")
    ///     .add_node("a", echo("a"))
    ///     .add_node("orphan", echo("orphan"))
    ///     .add_edge(START, "a")
    ///     .add_edge("a", END)
    ///     .add_edge("orphan", END);
    /// let problems = graph.problems();
    /// assert_eq!(problems.len(), 1);
    /// assert_eq!(problems[0].nodes, ["orphan"]);
    /// assert!(problems[0].message.contains("can never run"));
    /// ```
    #[must_use]
    pub fn problems(&self) -> Vec<GraphProblem> {
        match self.checked() {
            Ok(_) => Vec::new(),
            Err(problems) => problems.clone(),
        }
    }

    /// The nodes' agents, when every one is fixed (none is a registry's).
    fn fixed_agents(&self) -> Option<Arc<Vec<Box<dyn Agent>>>> {
        let agents = self.nodes.iter().map(|node| match &node.source {
            NodeSource::Agent(agent) => Some(NodeAgent::boxed(Arc::clone(agent), node.options)),
            NodeSource::Registry { .. } => None,
        });
        agents.collect::<Option<Vec<_>>>().map(Arc::new)
    }

    /// The checked graph (checked once, until the graph changes).
    fn prepared(&self) -> Result<&Prepared> {
        self.checked()
            .map_err(|problems| check::invalid(self.base.name(), problems))
    }

    /// The checked graph, or what is wrong with it.
    fn checked(&self) -> std::result::Result<&Prepared, &Vec<GraphProblem>> {
        self.prepared
            .get_or_init(|| {
                let checked = check::check(self)?;
                let compiled = Arc::new(Compiled::new(self, &checked));
                Ok(Prepared {
                    graph: checked.graph,
                    compiled,
                    agents: self.fixed_agents(),
                })
            })
            .as_ref()
    }
}
