//! Workloads shared by the orchestration benches: the same trivial agent run
//! through our orchestrators and through raw tokio doing the same work.
//!
//! Every workload takes its agents by value (they are built outside the timing,
//! the same way for ours and the baseline) and returns what it produced, so the
//! caller decides whether dropping the output is timed (it is, everywhere).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, AttemptOutcome, EventKind, ExecutionConfig, GraphOrchestrator,
    InMemoryJournal, InputSource, Journal, JournalEvent, NodeId, Orchestrator, OrchestratorAgent,
    OrchestratorInput, OrchestratorOutput, ParallelOrchestrator, Route, RunId,
    SequentialOrchestrator, SimpleAgent, Split, END, START,
};
use tokio::sync::Semaphore;

/// Length of every input content, in bytes.
pub const INPUT_LEN: usize = 256;

/// A 256-byte ASCII input.
pub fn input_content() -> String {
    let text: String = (0..INPUT_LEN)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)))
        .collect();
    assert_eq!(text.len(), INPUT_LEN);
    text
}

/// `n` trivial agents: each returns `AgentOutput::new(input.content)`.
pub fn make_agents(n: usize) -> Vec<Box<dyn Agent>> {
    (0..n)
        .map(|i| {
            Box::new(SimpleAgent::new(format!("agent-{i}"), "echo", |input| {
                Ok(AgentOutput::new(input.content))
            })) as Box<dyn Agent>
        })
        .collect()
}

/// The multi-thread runtime every bench runs on: one worker per core.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Which side of a comparison a workload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Baseline,
}

/// The orchestrators under test.
pub struct Orchestrators {
    /// `ParallelOrchestrator` with defaults (trace records on) and the limit.
    pub parallel_records: ParallelOrchestrator,
    /// `ParallelOrchestrator` with trace records off.
    pub parallel_no_records: ParallelOrchestrator,
    /// `SequentialOrchestrator` with defaults (trace records on).
    pub sequential: SequentialOrchestrator,
    /// `SequentialOrchestrator` with trace records off.
    pub sequential_no_records: SequentialOrchestrator,
    /// The graph of a graph scenario (see [`Orchestrators::for_scenario`]):
    /// built once, outside the timing, and reused by every round (a graph
    /// holds its agents `Arc`-shared, so runs do not consume them).
    pub graph: Option<GraphOrchestrator>,
    /// The inputs of the router scenario's runs (one per run).
    pub route_inputs: Vec<String>,
}

impl Orchestrators {
    pub fn new(limit: usize) -> Self {
        Self {
            parallel_records: ParallelOrchestrator::new().with_parallel_limit(limit),
            parallel_no_records: ParallelOrchestrator::new().with_config(
                ExecutionConfig::new()
                    .with_parallel_limit(limit)
                    .with_tracing(false),
            ),
            sequential: SequentialOrchestrator::new(),
            sequential_no_records: SequentialOrchestrator::new()
                .with_config(ExecutionConfig::new().with_tracing(false)),
            graph: None,
            route_inputs: Vec::new(),
        }
    }

    /// The orchestrators `scenario` needs: for a graph scenario, its graph
    /// too (built here, outside the timing).
    pub fn for_scenario(scenario: Scenario, content: &str) -> Self {
        let mut orchestrators = Self::new(scenario.limit());
        match scenario {
            Scenario::GraphChain { nodes } => orchestrators.graph = Some(chain_graph(nodes)),
            Scenario::GraphMap { items, limit } => {
                orchestrators.graph = Some(map_graph(items, limit, content));
            }
            Scenario::GraphLoop { iterations } => {
                orchestrators.graph = Some(loop_graph(iterations));
            }
            Scenario::GraphRouter { branches, runs } => {
                orchestrators.graph = Some(router_graph(branches));
                orchestrators.route_inputs = route_inputs(branches, runs, content);
            }
            _ => {}
        }
        orchestrators
    }
}

/// The trivial agent of [`make_agents`], for a graph node.
fn echo(name: String) -> impl Agent + 'static {
    SimpleAgent::new(name, "echo", |input| Ok(AgentOutput::new(input.content)))
}

/// Far above any bench graph's steps: the step limit is not what is measured.
const BENCH_MAX_STEPS: usize = 10_000_000;

/// `n0 → n1 → … → n{nodes-1}`, from START to END, one echo agent per node.
pub fn chain_graph(nodes: usize) -> GraphOrchestrator {
    let mut graph = GraphOrchestrator::new("chain").with_max_steps(BENCH_MAX_STEPS);
    for i in 0..nodes {
        graph = graph.add_node(format!("n{i}"), echo(format!("agent-{i}")));
    }
    graph = graph.add_edge(START, "n0");
    for i in 1..nodes {
        graph = graph.add_edge(format!("n{}", i - 1), format!("n{i}"));
    }
    graph.add_edge(format!("n{}", nodes - 1), END)
}

/// A first node answering `items` lines (each a copy of `content`, so every
/// item's input is the same size as the baseline agents'), then a map of an
/// echo agent over those lines, then END.
pub fn map_graph(items: usize, limit: usize, content: &str) -> GraphOrchestrator {
    let lines: Arc<str> = Arc::from(vec![content; items].join("\n"));
    let plan = SimpleAgent::new("plan", "lines", move |_| Ok(AgentOutput::new(&*lines)));
    GraphOrchestrator::new("map")
        .with_parallel_limit(limit)
        .with_max_steps(BENCH_MAX_STEPS)
        .add_node("plan", plan)
        .add_map("map", echo("item".to_owned()), Split::Lines)
        .add_edge(START, "plan")
        .add_edge("plan", "map")
        .add_edge("map", END)
}

/// `a → b`, looping from `b` back to `a` `iterations` times in all.
pub fn loop_graph(iterations: u32) -> GraphOrchestrator {
    GraphOrchestrator::new("loop")
        .with_max_steps(BENCH_MAX_STEPS)
        .add_node("a", echo("a".to_owned()))
        .add_node("b", echo("b".to_owned()))
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_loop("b", "a", iterations, |_| true)
        .add_edge("b", END)
}

/// The branch a router input picks: its first two characters, a number.
pub fn picked_branch(content: &str, branches: usize) -> usize {
    content
        .get(..2)
        .and_then(|prefix| prefix.parse::<usize>().ok())
        .map_or(0, |branch| branch % branches)
}

/// A router node (echo) whose router picks one of `branches` branch nodes
/// (echo, each to END) by [`picked_branch`] of its output.
pub fn router_graph(branches: usize) -> GraphOrchestrator {
    let names: Arc<Vec<String>> = Arc::new((0..branches).map(|b| format!("b{b}")).collect());
    let mut graph = GraphOrchestrator::new("router")
        .with_max_steps(BENCH_MAX_STEPS)
        .add_node("router", echo("router".to_owned()))
        .add_edge(START, "router");
    for (b, name) in names.iter().enumerate() {
        graph = graph
            .add_node(name.clone(), echo(format!("branch-{b}")))
            .add_edge(name.clone(), END);
    }
    let targets = names.as_ref().clone();
    graph.add_router("router", targets, move |route| {
        Route::to(names[picked_branch(&route.output.content, names.len())].clone())
    })
}

/// `runs` inputs the size of `content`, the first two characters picking
/// branch `run % branches` (so every branch is taken).
pub fn route_inputs(branches: usize, runs: usize, content: &str) -> Vec<String> {
    assert!(branches <= 100, "two digits pick the branch");
    (0..runs)
        .map(|run| format!("{:02}{}", run % branches, &content[2..]))
        .collect()
}

/// Raw loop, the router scenario done by hand: per input, the router agent,
/// then the branch agent [`picked_branch`] names (a vector index) on the
/// router's output; both outputs kept, as ours keeps every step's.
pub async fn baseline_router(agents: &[Box<dyn Agent>], inputs: &[String]) -> Vec<AgentOutput> {
    let (router, branches) = agents.split_first().expect("a router and branches");
    let mut outputs = Vec::with_capacity(inputs.len());
    for input in inputs {
        let routed = router
            .as_ref()
            .execute(AgentInput::new(input.clone()))
            .await
            .expect("router");
        let branch = &branches[picked_branch(&routed.content, branches.len())];
        let step = AgentInput::new(routed.content.clone());
        outputs.push(routed);
        outputs.push(branch.as_ref().execute(step).await.expect("branch"));
    }
    outputs
}

/// Raw loop, the loop scenario done by hand: two agents called alternately,
/// `iterations` times each, each getting the previous output; outputs kept.
pub async fn baseline_loop(
    agents: &[Box<dyn Agent>],
    content: &str,
    iterations: u32,
) -> Vec<AgentOutput> {
    let mut outputs = Vec::with_capacity(2 * iterations as usize);
    let mut input = AgentInput::new(content);
    for _ in 0..iterations {
        for agent in agents {
            let output = agent.as_ref().execute(input).await.expect("agent");
            input = AgentInput::new(output.content.clone());
            outputs.push(output);
        }
    }
    outputs
}

/// Ours, parallel.
pub async fn ours_parallel(
    orchestrator: &ParallelOrchestrator,
    agents: Vec<Box<dyn Agent>>,
    content: &str,
) -> OrchestratorOutput {
    orchestrator
        .orchestrate(agents, OrchestratorInput::new(content))
        .await
        .expect("parallel orchestration")
}

/// Raw tokio, parallel: one task per agent, an `Arc<Semaphore>` limit, outputs
/// collected in the order the agents were given.
pub async fn baseline_parallel(
    agents: Vec<Box<dyn Agent>>,
    content: &str,
    limit: usize,
) -> Vec<AgentOutput> {
    let semaphore = Arc::new(Semaphore::new(limit));
    let input = Arc::new(AgentInput::new(content));
    let handles: Vec<_> = agents
        .into_iter()
        .map(|agent| {
            let semaphore = Arc::clone(&semaphore);
            let input = Arc::clone(&input);
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await.expect("semaphore");
                // `as_ref`: call the agent itself, not the `Box<dyn Agent>` impl
                // (which would box one more future), exactly as ours does.
                agent.as_ref().execute(AgentInput::clone(&input)).await
            })
        })
        .collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task").expect("agent"));
    }
    outputs
}

/// Ours, sequential.
pub async fn ours_sequential(
    orchestrator: &SequentialOrchestrator,
    agents: Vec<Box<dyn Agent>>,
    content: &str,
) -> OrchestratorOutput {
    orchestrator
        .orchestrate(agents, OrchestratorInput::new(content))
        .await
        .expect("sequential orchestration")
}

/// Raw loop, sequential: each agent gets the previous content; outputs collected.
pub async fn baseline_sequential(agents: Vec<Box<dyn Agent>>, content: &str) -> Vec<AgentOutput> {
    let input = AgentInput::new(content);
    let (mut content, context, metadata) = (input.content, input.context, input.metadata);
    let mut outputs = Vec::with_capacity(agents.len());
    for agent in &agents {
        let step = AgentInput {
            content,
            context: context.clone(),
            metadata: metadata.clone(),
        };
        let output = agent.as_ref().execute(step).await.expect("agent");
        content = output.content.clone();
        outputs.push(output);
    }
    outputs
}

/// What a trace record holds, for the reference loop below (the library's
/// `AgentExecution` cannot be built outside the crate).
pub struct RecordData {
    pub agent_name: String,
    pub attempt: u32,
    pub start_time: chrono::DateTime<chrono::Utc>,
    pub end_time: Option<chrono::DateTime<chrono::Utc>>,
    pub duration_ms: Option<u64>,
    pub input: AgentInput,
    pub output: Option<AgentOutput>,
    pub error: Option<String>,
    pub success: bool,
}

/// Reference, not a contender: the baseline loop made to keep what our trace
/// keeps per step (the agent's name, a copy of its input, a copy of its
/// output, UTC start and end times from one clock read per step) in a
/// mutex-guarded, pre-sized vector. The gap between this and the plain loop
/// is what the record data alone costs.
pub async fn reference_sequential_records(
    agents: Vec<Box<dyn Agent>>,
    content: &str,
) -> (Vec<AgentOutput>, Vec<RecordData>) {
    let input = AgentInput::new(content);
    let (mut content, context, metadata) = (input.content, input.context, input.metadata);
    let records = std::sync::Mutex::new(Vec::with_capacity(agents.len()));
    let (wall, mono) = (chrono::Utc::now(), tokio::time::Instant::now());
    let mut lap = mono;
    let mut outputs = Vec::with_capacity(agents.len());
    for agent in &agents {
        let step = AgentInput {
            content,
            context: context.clone(),
            metadata: metadata.clone(),
        };
        let recorded_input = step.clone();
        let output = agent.as_ref().execute(step).await.expect("agent");
        let end = tokio::time::Instant::now();
        let elapsed = end - lap;
        let start_time = wall + chrono::TimeDelta::from_std(lap - mono).expect("delta");
        let recorded = output.clone();
        let input = recorded_input;
        records.lock().expect("lock").push(RecordData {
            agent_name: agent.name().to_owned(),
            attempt: 1,
            start_time,
            end_time: Some(start_time + chrono::TimeDelta::from_std(elapsed).expect("delta")),
            duration_ms: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            input,
            output: Some(recorded),
            error: None,
            success: true,
        });
        lap = end;
        content = output.content.clone();
        outputs.push(output);
    }
    (outputs, records.into_inner().expect("lock"))
}

/// Reference, not a contender: [`baseline_parallel`] made to keep what our
/// trace keeps per agent (as [`reference_sequential_records`] does), each
/// task pushing its record into one mutex-guarded, pre-sized vector. The gap
/// between this and the baseline is what the record data alone costs a
/// fan-out.
pub async fn reference_parallel_records(
    agents: Vec<Box<dyn Agent>>,
    content: &str,
    limit: usize,
) -> (Vec<AgentOutput>, Vec<RecordData>) {
    let semaphore = Arc::new(Semaphore::new(limit));
    let input = Arc::new(AgentInput::new(content));
    let records = Arc::new(std::sync::Mutex::new(Vec::with_capacity(agents.len())));
    let (wall, mono) = (chrono::Utc::now(), tokio::time::Instant::now());
    let handles: Vec<_> = agents
        .into_iter()
        .map(|agent| {
            let semaphore = Arc::clone(&semaphore);
            let input = Arc::clone(&input);
            let records = Arc::clone(&records);
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await.expect("semaphore");
                let started = tokio::time::Instant::now();
                let output = agent
                    .as_ref()
                    .execute(AgentInput::clone(&input))
                    .await
                    .expect("agent");
                let elapsed = started.elapsed();
                let start_time = wall + chrono::TimeDelta::from_std(started - mono).expect("delta");
                let record = RecordData {
                    agent_name: agent.name().to_owned(),
                    attempt: 1,
                    start_time,
                    end_time: Some(
                        start_time + chrono::TimeDelta::from_std(elapsed).expect("delta"),
                    ),
                    duration_ms: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
                    input: AgentInput::clone(&input),
                    output: Some(output.clone()),
                    error: None,
                    success: true,
                };
                records.lock().expect("lock").push(record);
                output
            })
        })
        .collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    let records = std::mem::take(&mut *records.lock().expect("lock"));
    (outputs, records)
}

/// One bench scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Parallel fan-out of `agents` at `limit`, with or without trace records.
    Parallel {
        agents: usize,
        limit: usize,
        records: bool,
    },
    /// Sequential pipeline of `agents`, with or without trace records.
    Sequential { agents: usize, records: bool },
    /// [`reference_sequential_records`] (as "ours") against the plain loop.
    SequentialReference { agents: usize },
    /// [`reference_parallel_records`] (as "ours") against spawn + semaphore.
    ParallelReference { agents: usize, limit: usize },
    /// Appending `events` attempt events to an `InMemoryJournal`, against
    /// pushing them onto a plain `Vec`.
    JournalAppend { events: usize },
    /// A pipeline of one agent nested `levels` deep in `OrchestratorAgent`s,
    /// against a flat pipeline of `levels` agents: the cost of a level of
    /// nesting (per level), which stays flat as the depth grows.
    Nested { levels: usize },
    /// A graph of `nodes` nodes in a chain (START → n0 → … → END), records on,
    /// against the plain sequential loop over as many agents.
    GraphChain { nodes: usize },
    /// A graph: a first node answering `items` lines, a map over them at
    /// `limit`, END; records on. Against the spawn + semaphore baseline over
    /// `items` agents at `limit`.
    GraphMap { items: usize, limit: usize },
    /// A graph of two nodes looping `iterations` times, against a plain loop
    /// calling two agents alternately as often.
    GraphLoop { iterations: u32 },
    /// `runs` runs of one graph: a router node picking one of `branches`
    /// branch nodes (each to END), a different branch run after run. Against
    /// the same calls by hand (router agent, then the branch it names). The
    /// figure is per agent call, two per run: it carries the whole cost of
    /// starting and finishing a graph run (checking the graph, setting up the
    /// run, the journal, the output) spread over those two calls, which is
    /// what a router-driven graph costs a caller who runs it per request. A
    /// chain of routers would measure routing alone, but it would need
    /// `branches` nodes per link and say little about runs of real size.
    GraphRouter { branches: usize, runs: usize },
}

impl Scenario {
    pub fn agents(self) -> usize {
        match self {
            Self::Parallel { agents, .. }
            | Self::Sequential { agents, .. }
            | Self::SequentialReference { agents }
            | Self::ParallelReference { agents, .. } => agents,
            Self::JournalAppend { events } => events,
            Self::Nested { levels } => levels,
            Self::GraphChain { nodes } => nodes,
            Self::GraphMap { items, .. } => items,
            Self::GraphLoop { iterations } => 2 * iterations as usize,
            Self::GraphRouter { runs, .. } => 2 * runs,
        }
    }

    /// How many fresh agents a round of `side` takes (a graph scenario's own
    /// side takes none: its graph holds its agents and is reused).
    pub fn fresh_agents(self, side: Side) -> usize {
        match (self, side) {
            (
                Self::GraphChain { .. }
                | Self::GraphMap { .. }
                | Self::GraphLoop { .. }
                | Self::GraphRouter { .. },
                Side::Ours,
            ) => 0,
            (Self::GraphLoop { .. }, Side::Baseline) => 2,
            (Self::GraphRouter { branches, .. }, Side::Baseline) => branches + 1,
            _ => self.agents(),
        }
    }

    pub fn limit(self) -> usize {
        match self {
            Self::Parallel { limit, .. }
            | Self::ParallelReference { limit, .. }
            | Self::GraphMap { limit, .. } => limit,
            Self::GraphChain { .. } | Self::GraphLoop { .. } | Self::GraphRouter { .. } => 1,
            Self::Sequential { .. }
            | Self::SequentialReference { .. }
            | Self::JournalAppend { .. }
            | Self::Nested { .. } => 1,
        }
    }

    pub fn label(self) -> String {
        match self {
            Self::Parallel {
                agents,
                limit,
                records: true,
            } => format!("parallel {agents} agents, limit {limit}, records on"),
            Self::Parallel {
                agents,
                limit,
                records: false,
            } => format!("parallel {agents} agents, limit {limit}, with_tracing(false)"),
            Self::Sequential {
                agents,
                records: true,
            } => format!("sequential {agents} agents, records on"),
            Self::Sequential {
                agents,
                records: false,
            } => format!("sequential {agents} agents, with_tracing(false)"),
            Self::SequentialReference { agents } => format!(
                "reference: the sequential baseline keeping the same record data, {agents} agents"
            ),
            Self::ParallelReference { agents, limit } => format!(
                "reference: spawn + semaphore keeping the same record data, {agents} agents, limit {limit}"
            ),
            Self::JournalAppend { events } => format!(
                "journal: {events} attempt events appended to the in-memory journal (per event), vs a Vec"
            ),
            Self::Nested { levels } => {
                format!("nesting: one agent {levels} levels deep (per level), vs a flat pipeline")
            }
            Self::GraphChain { nodes } => {
                format!("graph: chain of {nodes} nodes, records on, vs the plain loop")
            }
            Self::GraphMap { items, limit } => format!(
                "graph: map over {items} items, limit {limit}, records on, vs spawn + semaphore"
            ),
            Self::GraphLoop { iterations } => format!(
                "graph: loop a → b × {iterations} (per call), vs a loop of {} calls",
                2 * iterations
            ),
            Self::GraphRouter { branches, runs } => format!(
                "graph: router over {branches} branches, {runs} runs (per call, 2 a run), vs the calls by hand"
            ),
        }
    }

    /// The ratio ours/baseline must not exceed, when there is a target.
    pub fn target(self) -> Option<f64> {
        match self {
            Self::Parallel { records: true, .. } => Some(1.5),
            Self::Sequential { records: true, .. } | Self::GraphChain { .. } => Some(5.0),
            Self::GraphMap { .. } => Some(1.5),
            // Reported for information: what the records cost, what a journal
            // append costs, and what a level of nesting costs.
            Self::Parallel { records: false, .. }
            | Self::Sequential { records: false, .. }
            | Self::SequentialReference { .. }
            | Self::ParallelReference { .. }
            | Self::JournalAppend { .. }
            | Self::Nested { .. }
            | Self::GraphLoop { .. }
            | Self::GraphRouter { .. } => None,
        }
    }
}

/// Runs `side` of `scenario` once on `agents` inside the current runtime and
/// returns the time from the call until its output is dropped. With `check`, the
/// output is verified first (outside the timing).
pub async fn run_once(
    scenario: Scenario,
    side: Side,
    orchestrators: &Orchestrators,
    agents: Vec<Box<dyn Agent>>,
    content: &str,
    check: bool,
) -> Duration {
    let n = agents.len();
    match (scenario, side) {
        (Scenario::Parallel { records, .. }, Side::Ours) => {
            let orchestrator = if records {
                &orchestrators.parallel_records
            } else {
                &orchestrators.parallel_no_records
            };
            let start = Instant::now();
            let output = ours_parallel(orchestrator, agents, content).await;
            if check {
                let paused = start.elapsed();
                check_ours(&output, n, records, content);
                let restart = Instant::now();
                drop(output);
                return paused + restart.elapsed();
            }
            drop(output);
            start.elapsed()
        }
        (Scenario::ParallelReference { limit, .. }, Side::Ours) => {
            let start = Instant::now();
            let kept = reference_parallel_records(agents, content, limit).await;
            if check {
                check_outputs(&kept.0, n, content);
                assert_eq!(kept.1.len(), n);
            }
            drop(kept);
            start.elapsed()
        }
        (
            Scenario::Parallel { limit, .. } | Scenario::ParallelReference { limit, .. },
            Side::Baseline,
        ) => {
            let start = Instant::now();
            let outputs = baseline_parallel(agents, content, limit).await;
            if check {
                check_outputs(&outputs, n, content);
            }
            drop(outputs);
            start.elapsed()
        }
        (Scenario::Sequential { records, .. }, Side::Ours) => {
            let orchestrator = if records {
                &orchestrators.sequential
            } else {
                &orchestrators.sequential_no_records
            };
            let start = Instant::now();
            let output = ours_sequential(orchestrator, agents, content).await;
            if check {
                let paused = start.elapsed();
                check_ours(&output, n, records, content);
                let restart = Instant::now();
                drop(output);
                return paused + restart.elapsed();
            }
            drop(output);
            start.elapsed()
        }
        (Scenario::SequentialReference { .. }, Side::Ours) => {
            let start = Instant::now();
            let kept = reference_sequential_records(agents, content).await;
            if check {
                check_outputs(&kept.0, n, content);
                assert_eq!(kept.1.len(), n);
            }
            drop(kept);
            start.elapsed()
        }
        (Scenario::JournalAppend { events }, side) => {
            let batch = journal_events(events, content);
            let start = Instant::now();
            match side {
                Side::Ours => {
                    let journal = InMemoryJournal::new();
                    for event in batch {
                        journal.append(event);
                    }
                    if check {
                        assert_eq!(journal.len(), events);
                    }
                    drop(journal);
                }
                Side::Baseline => {
                    let mut kept = Vec::new();
                    for event in batch {
                        kept.push(event);
                    }
                    if check {
                        assert_eq!(kept.len(), events);
                    }
                    drop(kept);
                }
            }
            start.elapsed()
        }
        (Scenario::Nested { levels }, side) => {
            let pipeline: Vec<Box<dyn Agent>> = match side {
                Side::Ours => vec![nest(agents, levels)],
                Side::Baseline => agents,
            };
            let start = Instant::now();
            let output = orchestrators
                .sequential
                .orchestrate(pipeline, OrchestratorInput::new(content))
                .await
                .expect("nested orchestration");
            if check {
                assert_eq!(output.result, content);
            }
            drop(output);
            start.elapsed()
        }
        (
            Scenario::GraphChain { .. } | Scenario::GraphMap { .. } | Scenario::GraphLoop { .. },
            Side::Ours,
        ) => {
            let graph = orchestrators.graph.as_ref().expect("the scenario's graph");
            drop(agents);
            let start = Instant::now();
            let output = graph
                .orchestrate(Vec::new(), OrchestratorInput::new(content))
                .await
                .expect("graph run");
            if check {
                let paused = start.elapsed();
                check_graph(scenario, &output, content);
                let restart = Instant::now();
                drop(output);
                return paused + restart.elapsed();
            }
            drop(output);
            start.elapsed()
        }
        (Scenario::GraphRouter { runs, .. }, Side::Ours) => {
            let graph = orchestrators.graph.as_ref().expect("the scenario's graph");
            let inputs = &orchestrators.route_inputs;
            drop(agents);
            let start = Instant::now();
            let mut outputs = Vec::with_capacity(inputs.len());
            for input in inputs {
                outputs.push(
                    graph
                        .orchestrate(Vec::new(), OrchestratorInput::new(input.clone()))
                        .await
                        .expect("graph run"),
                );
            }
            if check {
                let paused = start.elapsed();
                assert_eq!(outputs.len(), runs);
                for (output, input) in outputs.iter().zip(inputs) {
                    assert_eq!(&output.result, input);
                    assert_eq!(output.agent_outputs.len(), 2, "the router and one branch");
                    assert_eq!(output.execution_trace.agent_executions.len(), 2);
                }
                let restart = Instant::now();
                drop(outputs);
                return paused + restart.elapsed();
            }
            drop(outputs);
            start.elapsed()
        }
        (Scenario::GraphMap { limit, .. }, Side::Baseline) => {
            let start = Instant::now();
            let outputs = baseline_parallel(agents, content, limit).await;
            if check {
                check_outputs(&outputs, scenario.agents(), content);
            }
            drop(outputs);
            start.elapsed()
        }
        (Scenario::GraphLoop { iterations }, Side::Baseline) => {
            let start = Instant::now();
            let outputs = baseline_loop(&agents, content, iterations).await;
            if check {
                check_outputs(&outputs, scenario.agents(), content);
            }
            drop(outputs);
            drop(agents);
            start.elapsed()
        }
        (Scenario::GraphRouter { .. }, Side::Baseline) => {
            let inputs = &orchestrators.route_inputs;
            let start = Instant::now();
            let outputs = baseline_router(&agents, inputs).await;
            if check {
                assert_eq!(outputs.len(), scenario.agents());
                for (pair, input) in outputs.chunks(2).zip(inputs) {
                    assert!(pair.iter().all(|output| &output.content == input));
                }
            }
            drop(outputs);
            drop(agents);
            start.elapsed()
        }
        (
            Scenario::Sequential { .. }
            | Scenario::SequentialReference { .. }
            | Scenario::GraphChain { .. },
            Side::Baseline,
        ) => {
            let start = Instant::now();
            let outputs = baseline_sequential(agents, content).await;
            if check {
                check_outputs(&outputs, n, content);
            }
            drop(outputs);
            start.elapsed()
        }
    }
}

/// `count` attempt events (started, then finished with a copy of `content`)
/// of one run, as the engine appends them.
fn journal_events(count: usize, content: &str) -> Vec<JournalEvent> {
    let run = RunId::new();
    let at = chrono::Utc::now();
    (0..count)
        .map(|index| {
            let node = NodeId(u32::try_from(index / 2).unwrap_or(u32::MAX));
            let kind = if index % 2 == 0 {
                EventKind::AttemptStarted {
                    node,
                    attempt: 1,
                    max_attempts: 4,
                    input: InputSource::RunInput,
                }
            } else {
                EventKind::AttemptFinished {
                    node,
                    attempt: 1,
                    outcome: AttemptOutcome::Succeeded(AgentOutput::new(content)),
                    elapsed: Duration::from_micros(1),
                }
            };
            JournalEvent::new(run, at, kind)
        })
        .collect()
}

/// The first of `agents`, nested `levels` deep: each level an
/// `OrchestratorAgent` running a one-agent pipeline.
fn nest(agents: Vec<Box<dyn Agent>>, levels: usize) -> Box<dyn Agent> {
    let mut agent = agents.into_iter().next().expect("one agent");
    for level in 0..levels {
        agent = Box::new(OrchestratorAgent::new(
            format!("level-{level}"),
            "nested",
            SequentialOrchestrator::new(),
            vec![agent],
        ));
    }
    agent
}

fn check_outputs(outputs: &[AgentOutput], n: usize, content: &str) {
    assert_eq!(outputs.len(), n);
    assert!(outputs.iter().all(|o| o.content == content));
}

fn check_ours(output: &OrchestratorOutput, n: usize, records: bool, content: &str) {
    assert!(output.is_successful());
    check_outputs(&output.agent_outputs, n, content);
    let executions = &output.execution_trace.agent_executions;
    if records {
        assert_eq!(executions.len(), n, "one trace record per attempt");
        assert!(executions
            .iter()
            .all(|e| e.success && e.attempt == 1 && e.input.content == content));
    } else {
        assert!(executions.is_empty());
    }
}

/// A graph run's output: the content came through, one output and one trace
/// record per agent call (plus the map's first node).
fn check_graph(scenario: Scenario, output: &OrchestratorOutput, content: &str) {
    assert!(output.is_successful());
    let calls = scenario.agents();
    let executions = &output.execution_trace.agent_executions;
    match scenario {
        Scenario::GraphMap { items, .. } => {
            assert_eq!(output.result.split("\n\n").count(), items);
            assert!(output.result.split("\n\n").all(|item| item == content));
            let items_run = output.execution_trace.attempts_of("item").count();
            assert_eq!(items_run, items, "one trace record per item");
            assert_eq!(executions.len(), items + 1, "the items and the first node");
        }
        _ => {
            assert_eq!(output.result, content);
            check_outputs(&output.agent_outputs, calls, content);
            assert_eq!(executions.len(), calls, "one trace record per call");
        }
    }
    assert!(executions.iter().all(|e| e.success && e.attempt == 1));
}

/// The median of `values` (which must not be empty).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}
