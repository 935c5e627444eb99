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
//!   all of them by default).
//! - **Routers**: [`add_router`](GraphOrchestrator::add_router) — a closure
//!   over the node's output and the run's state picks the next node(s) among
//!   those it declares, or [`END`]. Branches not chosen are skipped, and a
//!   join downstream counts only the branches that ran.
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
//! lives in the [`ExecutionContext`]:
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
//! [`OrchestrationError::InvalidConfig`] naming the nodes.
//!
//! **Human input**: an agent asks a person with
//! [`ExecutionContext::ask`](crate::orchestration::ExecutionContext::ask);
//! the run pauses and returns [`OrchestrationError::InputRequired`], and
//! [`resume`](GraphOrchestrator::resume) continues it with the answers,
//! without running any finished step again (see [`human`](crate::orchestration::human)).
//!
//! **Limits**: a run takes at most [`RunBudget::max_steps`] steps (one per
//! node run, loop iteration and map item; [`DEFAULT_MAX_STEPS`](crate::orchestration::budget::DEFAULT_MAX_STEPS)
//! unless set), and may bound tokens, cost and time ([`with_budget`](GraphOrchestrator::with_budget));
//! crossing one fails the run with [`OrchestrationError::BudgetExceeded`],
//! which names the budget — and for the step limit, the loop that ran away.
//!
//! **The output**: `result` is the content of the output that reached
//! [`END`] (several reaching it are gathered, in completion order);
//! `agent_outputs` holds every successful step's output in the order the
//! steps were created; `failures` lists the steps that failed while the run
//! still reached its end (`index` is the step's number, as in the journal).
//! A run that never reaches [`END`] fails with its first failure.
//!
//! ```
//! use claude_agent_sdk::orchestration::{
//!     AgentOutput, GraphOrchestrator, Orchestrator, OrchestratorInput, Route, SimpleAgent,
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
//! let output = graph
//!     .orchestrate(vec![], OrchestratorInput::new("what happened?"))
//!     .await?;
//! assert_eq!(output.result, "draft of draft of A+B+C");
//! # Ok::<(), claude_agent_sdk::orchestration::OrchestrationError>(())
//! # }).unwrap();
//! ```

mod check;
mod nodes;
mod route;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::orchestration::agent::{Agent, AgentInput, AgentOutput};
use crate::orchestration::budget::RunBudget;
use crate::orchestration::context::ExecutionContext;
use crate::orchestration::engine::driver::RunReport;
use crate::orchestration::engine::run_state::{Branching, Reuse};
use crate::orchestration::engine::scheduler::{Decision, StepKind};
use crate::orchestration::engine::stop::interruption_error;
use crate::orchestration::errors::{OrchestrationError, Result};
use crate::orchestration::human::{FinishedStep, Pause};
use crate::orchestration::join_policy::JoinPolicy;
use crate::orchestration::journal::NodeId;
use crate::orchestration::orchestrator::{
    AgentFailure, BaseOrchestrator, OrchestratorInput, OrchestratorOutput,
};
use crate::orchestration::patterns::{
    orchestrator_builders, orchestrator_impl, run_pattern, Flow, TraceOut,
};
use crate::orchestration::registry::AgentRegistry;

pub use nodes::NodeOptions;
pub use route::{Route, RouteContext, Split, END, START};

use nodes::{AskAgent, NodeAgent, NodeSource};
use route::{Condition, Router};

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
    /// Problems found while building (reported with the rest by the check).
    problems: Vec<String>,
    /// The checked graph, made by the first run (or `validate`) and kept
    /// until the graph changes.
    prepared: Arc<OnceLock<std::result::Result<Prepared, OrchestrationError>>>,
}

/// A checked graph, ready to run.
#[derive(Clone)]
struct Prepared {
    graph: crate::orchestration::engine::graph::Graph,
    compiled: Arc<Compiled>,
}

#[derive(Clone)]
struct NodeDef {
    id: String,
    source: NodeSource,
    options: NodeOptions,
    split: Option<Split>,
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
            problems: Vec::new(),
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
    #[must_use]
    pub fn add_ask(self, id: impl Into<String>, question: impl Into<String>) -> Self {
        let id = id.into();
        let agent = AskAgent {
            name: id.clone(),
            question_id: id.clone(),
            question: question.into(),
        };
        self.push_node(
            id,
            NodeSource::Agent(Arc::new(agent)),
            NodeOptions::new(),
            None,
        )
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
        });
        self
    }

    /// Adds an edge: `to` gets `from`'s output. `from` may be [`START`]
    /// (`to` runs first, on the run's input); `to` may be [`END`] (`from`'s
    /// output is a result of the run).
    #[must_use]
    pub fn add_edge(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.prepared = Arc::default();
        self.edges.push((from.into(), to.into()));
        self
    }

    /// Gives node `from` a router: after it succeeds, `router` picks which
    /// of `targets` (node ids, or [`END`]) get its output. Routing to a node
    /// not in `targets` fails the step.
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
    /// When the loop ends, `from`'s output goes on along its edges.
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
    /// must succeed.
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

    /// Checks the graph as a run would before starting.
    ///
    /// # Errors
    /// [`OrchestrationError::InvalidConfig`] naming every problem found.
    pub fn validate(&self) -> Result<()> {
        self.prepared().map(|_| ())
    }

    /// The checked graph (checked once, until the graph changes).
    fn prepared(&self) -> Result<&Prepared> {
        self.prepared
            .get_or_init(|| {
                let checked = check::check(self)?;
                let compiled = Arc::new(Compiled::new(self, &checked));
                Ok(Prepared {
                    graph: checked.graph,
                    compiled,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Continues a run that paused for human input (see [`human`](crate::orchestration::human)),
    /// under a fresh context: the steps the paused run finished are not run
    /// again (their outputs are reused), and the agents that asked get
    /// `answers` (question id → answer) from
    /// [`ExecutionContext::ask`]. A run may pause again on new questions.
    ///
    /// ```
    /// use claude_agent_sdk::orchestration::{
    ///     Agent, AgentInput, AgentOutput, ExecutionContext, GraphOrchestrator,
    ///     OrchestrationError, Orchestrator, OrchestratorInput, Result, END, START,
    /// };
    ///
    /// struct Spender;
    /// #[async_trait::async_trait]
    /// impl Agent for Spender {
    ///     fn name(&self) -> &str { "spender" }
    ///     fn description(&self) -> &str { "spends money, with approval" }
    ///     async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
    ///         let ctx = ExecutionContext::current().expect("runs in a run");
    ///         let answer = ctx.ask("approve", "Spend $50?")?;
    ///         Ok(AgentOutput::new(format!("{}: {answer}", input.content)))
    ///     }
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let graph = GraphOrchestrator::new("buy")
    ///     .add_node("spend", Spender)
    ///     .add_edge(START, "spend")
    ///     .add_edge("spend", END);
    /// let Err(OrchestrationError::InputRequired(pause)) =
    ///     graph.orchestrate(vec![], OrchestratorInput::new("order")).await
    /// else {
    ///     panic!("the run should pause");
    /// };
    /// assert_eq!(pause.questions[0].text, "Spend $50?");
    /// let output = graph.resume(*pause, [("approve", "yes")]).await?;
    /// assert_eq!(output.result, "order: yes");
    /// # Ok::<(), OrchestrationError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`orchestrate`](crate::orchestration::Orchestrator::orchestrate);
    /// [`OrchestrationError::InvalidConfig`] when `pause` names a node this
    /// graph does not have.
    pub async fn resume<I, K, V>(&self, pause: Pause, answers: I) -> Result<OrchestratorOutput>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let ctx = ExecutionContext::private(self.base.config().clone());
        self.resume_with_context(pause, answers, &ctx, TraceOut::Take)
            .await
    }

    /// As [`resume`](Self::resume), under a caller-owned context (which
    /// keeps the answers).
    ///
    /// # Errors
    /// As [`resume`](Self::resume).
    pub async fn resume_in<I, K, V>(
        &self,
        pause: Pause,
        answers: I,
        ctx: &ExecutionContext,
    ) -> Result<OrchestratorOutput>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.resume_with_context(pause, answers, ctx, TraceOut::Attach)
            .await
    }

    async fn resume_with_context<I, K, V>(
        &self,
        pause: Pause,
        answers: I,
        ctx: &ExecutionContext,
        trace: TraceOut,
    ) -> Result<OrchestratorOutput>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (id, answer) in pause.answers {
            ctx.answer(id, answer);
        }
        for (id, answer) in answers {
            ctx.answer(id, answer);
        }
        let mut reuse = Reuse::new();
        for step in pause.finished {
            let Some(position) = self.nodes.iter().position(|node| node.id == step.node) else {
                return Err(OrchestrationError::InvalidConfig(format!(
                    "the paused run names node `{}`, which graph `{}` does not have",
                    step.node,
                    self.base.name()
                )));
            };
            reuse.insert((NodeId::from_index(position), step.activation), step.output);
        }
        let input = pause.input.unwrap_or_default();
        self.run_reusing(vec![], input, ctx, trace, reuse).await
    }

    async fn run(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
        trace: TraceOut,
    ) -> Result<OrchestratorOutput> {
        self.run_reusing(agents, input, ctx, trace, Reuse::new())
            .await
    }

    async fn run_reusing(
        &self,
        agents: Vec<Box<dyn Agent>>,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
        trace: TraceOut,
        reuse: Reuse,
    ) -> Result<OrchestratorOutput> {
        if !agents.is_empty() {
            return Err(OrchestrationError::InvalidConfig(format!(
                "graph `{}` carries its own agents: pass an empty list, not {}",
                self.base.name(),
                agents.len()
            )));
        }
        let prepared = self.prepared()?;
        let mut agents: Vec<Box<dyn Agent>> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let (agent, options) = node.source.resolve(&node.options).await?;
            agents.push(Box::new(NodeAgent::new(agent, options)));
        }
        let flow = Flow {
            graph: prepared.graph.clone(),
            branching: Some(Arc::clone(&prepared.compiled) as Arc<dyn Branching>),
            budget: self.budget,
            reuse,
        };
        let timeout = self.base.config().timeout;
        let kept_input = input.clone();
        run_pattern(&self.base, flow, agents, input, ctx, trace, |report| {
            if !report.asked.is_empty() {
                return Err(self.paused(&report, kept_input, ctx));
            }
            conclude(report, self.base.name(), timeout)
        })
        .await
    }

    /// The pause of a run whose steps asked questions.
    fn paused(
        &self,
        report: &RunReport,
        input: OrchestratorInput,
        ctx: &ExecutionContext,
    ) -> OrchestrationError {
        let finished = report
            .scheduler
            .steps()
            .iter()
            .zip(&report.outputs)
            .filter(|(step, _)| step.kind == StepKind::Agent)
            .filter_map(|(step, output)| {
                Some(FinishedStep {
                    node: self.nodes.get(step.node.index())?.id.clone(),
                    activation: step.activation,
                    output: output.clone()?,
                })
            })
            .collect();
        OrchestrationError::InputRequired(Box::new(Pause {
            questions: report
                .asked
                .iter()
                .map(|(_, question)| question.clone())
                .collect(),
            finished,
            answers: ctx.answers(),
            input: Some(input),
        }))
    }
}

orchestrator_impl!(GraphOrchestrator);

/// A router and the targets it may name (`None`: END).
type RouterEntry = (Router, Vec<(String, Option<NodeId>)>);

/// The graph's decisions, with node ids resolved to indexes.
struct Compiled {
    labels: Vec<String>,
    /// By node: its router and the nodes it may route to (`None`: END).
    routers: Vec<Option<RouterEntry>>,
    /// By node: the condition of the loop it closes.
    loops: Vec<Option<Condition>>,
    splits: Vec<Option<Split>>,
}

impl Compiled {
    fn new(definition: &GraphOrchestrator, checked: &check::Checked) -> Self {
        let count = definition.nodes.len();
        let mut routers: Vec<Option<_>> = vec![None; count];
        for router in &definition.routers {
            if let Some(node) = checked.index.get(&router.from) {
                let targets = router
                    .targets
                    .iter()
                    .map(|target| (target.clone(), checked.index.get(target).copied()))
                    .collect();
                routers[node.index()] = Some((Arc::clone(&router.router), targets));
            }
        }
        let mut loops: Vec<Option<Condition>> = vec![None; count];
        for lp in &definition.loops {
            if let Some(node) = checked.index.get(&lp.from) {
                loops[node.index()] = Some(Arc::clone(&lp.again));
            }
        }
        Self {
            labels: definition.nodes.iter().map(|n| n.id.clone()).collect(),
            routers,
            loops,
            splits: definition.nodes.iter().map(|n| n.split.clone()).collect(),
        }
    }
}

impl Branching for Compiled {
    fn decide(
        &self,
        node: NodeId,
        output: &AgentOutput,
        iteration: u32,
        ctx: &ExecutionContext,
    ) -> Result<Decision> {
        let router = self.routers.get(node.index()).and_then(Option::as_ref);
        let condition = self.loops.get(node.index()).and_then(Option::as_ref);
        if router.is_none() && condition.is_none() {
            return Ok(Decision::default());
        }
        let label = self.label(node);
        let state = ctx.read_state();
        let route = RouteContext {
            node: label,
            output,
            iteration,
            state: &state,
        };
        let mut decision = Decision {
            again: condition.is_some_and(|again| again(&route)),
            ..Decision::default()
        };
        if let Some((router, targets)) = router {
            let chosen = router(&route);
            let mut routes = Vec::with_capacity(chosen.targets.len());
            let mut ends = false;
            for target in &chosen.targets {
                match targets.iter().find(|(id, _)| id == target) {
                    Some((_, Some(next))) => routes.push(*next),
                    Some((_, None)) => ends = true,
                    None => {
                        return Err(OrchestrationError::InvalidConfig(format!(
                        "the router of `{label}` chose `{target}`, which is not among its targets"
                    )))
                    }
                }
            }
            decision.routes = Some(routes);
            decision.ends = Some(ends);
        }
        Ok(decision)
    }

    fn split(&self, node: NodeId, input: &AgentInput) -> Result<Vec<String>> {
        match self.splits.get(node.index()).and_then(Option::as_ref) {
            Some(split) => split.items(&input.content),
            None => Ok(Vec::new()),
        }
    }

    fn label(&self, node: NodeId) -> &str {
        self.labels.get(node.index()).map_or("", String::as_str)
    }
}

/// The output of a graph run: the results that reached the end, every
/// successful step's output, and the failures tolerated on the way.
fn conclude(report: RunReport, name: &str, timeout: Duration) -> Result<OrchestratorOutput> {
    if let Some(why) = report.interrupted {
        return Err(interruption_error(why, name, timeout));
    }
    if let Some(stopped) = report.stopped {
        return Err(stopped);
    }
    let scheduler = &report.scheduler;
    let results: Vec<&AgentOutput> = scheduler
        .results()
        .iter()
        .filter_map(|step| report.outputs.get(step.index())?.as_ref())
        .collect();
    if results.is_empty() {
        return Err(report.failures.into_iter().next().map_or_else(
            || {
                OrchestrationError::OrchestratorFailed(format!(
                    "graph `{name}` ended without reaching END"
                ))
            },
            |(_, error)| error,
        ));
    }
    let result = results
        .iter()
        .map(|output| output.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    let failures = report
        .failures
        .iter()
        .map(|(step, error)| AgentFailure {
            index: step.index(),
            agent_name: scheduler
                .step(*step)
                .map_or("", |info| report.names.get(info.node))
                .to_owned(),
            error: match error {
                OrchestrationError::AgentFailed(_, reason) => reason.to_string(),
                other => other.to_string(),
            },
        })
        .collect();
    let outputs = report
        .outputs
        .into_iter()
        .enumerate()
        .filter(|(index, _)| {
            scheduler
                .step(NodeId::from_index(*index))
                .is_some_and(|step| step.kind == StepKind::Agent)
        })
        .filter_map(|(_, output)| output)
        .collect();
    Ok(OrchestratorOutput::new(result, outputs).with_failures(failures))
}
