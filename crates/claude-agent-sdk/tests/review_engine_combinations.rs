//! Adversarial review of engine combinations (session: engine combinations):
//! tasks an agent spawns with the context, state reducers under concurrent
//! map items and nested runs, pauses inside nested graphs inside fan-outs,
//! stops arriving mid-expansion, mid-backoff and mid-pause, join policies
//! with mixed ends, shared agents and shared orchestrators.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, EventKind, ExecutionConfig, ExecutionContext,
    GraphOrchestrator, InMemoryJournal, JoinPolicy, NodeOptions, OrchestrationError, Orchestrator,
    OrchestratorAgent, OrchestratorInput, ParallelOrchestrator, Result, Route,
    SequentialOrchestrator, Split, END, START,
};
use common::{assert_books_balanced, permanent, transient, DropFlag, Probe, Scripted, Step};
use tokio::time::Instant;

fn boxed(agent: impl Agent + 'static) -> Box<dyn Agent> {
    Box::new(agent)
}

/// Spawns a task with the context that ticks every second for a minute
/// (writing the context's state each tick), and returns without waiting
/// for it.
struct SpawnsATicker {
    ticks: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for SpawnsATicker {
    fn name(&self) -> &str {
        "ticker"
    }
    fn description(&self) -> &str {
        "leaves a ticking task behind"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let ticks = Arc::clone(&self.ticks);
        let _detached = ExecutionContext::spawn(async move {
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ticks.fetch_add(1, Ordering::SeqCst);
                if let Some(ctx) = ExecutionContext::current() {
                    ctx.append_state("ticks", serde_json::json!(1)).await;
                }
            }
        });
        Ok(AgentOutput::new("returned at once"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_spawned_with_the_context_has_stopped_when_the_run_returns() {
    let ticks = Arc::new(AtomicUsize::new(0));
    let journal = Arc::new(claude_agent_sdk::orchestration::InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![boxed(SpawnsATicker {
                ticks: Arc::clone(&ticks),
            })],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .expect("the agent succeeded");
    let at_return = journal.len();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        0,
        "the task stopped with its attempt"
    );
    assert_eq!(
        journal.len(),
        at_return,
        "nothing recorded after the run returned"
    );
    assert_eq!(ctx.get_state("ticks").await, None);
}

// ---------------------------------------------------------------------
// Helpers.

/// Counts its calls; sleeps `delay`, then returns `"<name>(<input>)"`,
/// appending its name to the state list `"log"` first.
struct Counted {
    name: &'static str,
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

fn counted(name: &'static str, delay: Duration) -> (Counted, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    (
        Counted {
            name,
            delay,
            calls: Arc::clone(&calls),
        },
        calls,
    )
}

#[async_trait]
impl Agent for Counted {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "counts its calls"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if let Some(ctx) = ExecutionContext::current() {
            ctx.append_state("log", serde_json::json!(self.name)).await;
        }
        Ok(AgentOutput::new(format!(
            "{}({})",
            self.name, input.content
        )))
    }
}

/// Asks question `id`; returns the answer after its input.
struct Asker {
    name: &'static str,
    id: &'static str,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for Asker {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "asks a person"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ctx = ExecutionContext::current().ok_or(OrchestrationError::Cancelled)?;
        let answer = ctx.ask(self.id, "go on?")?;
        Ok(AgentOutput::new(format!("{}:{answer}", input.content)))
    }
}

fn cancel_after(ctx: &ExecutionContext, after: Duration) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        ctx.cancel();
    });
}

// ---------------------------------------------------------------------
// Tasks spawned with the context, cut short.

/// Spawns a task with the context that sleeps a minute (holding a drop
/// flag) and awaits it.
struct AwaitsASpawnedTask {
    dropped: Arc<AtomicBool>,
}

#[async_trait]
impl Agent for AwaitsASpawnedTask {
    fn name(&self) -> &str {
        "awaits"
    }
    fn description(&self) -> &str {
        "awaits a task it spawned"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        let flag = DropFlag(Arc::clone(&self.dropped));
        let task = ExecutionContext::spawn(async move {
            let _flag = flag;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        task.await.map_err(|_| OrchestrationError::Cancelled)?;
        Ok(AgentOutput::new("waited"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancel_stops_a_task_the_agent_spawned_and_awaits() {
    let dropped = Arc::new(AtomicBool::new(false));
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    cancel_after(&ctx, Duration::from_secs(1));
    let started = Instant::now();
    let result = ParallelOrchestrator::new()
        .orchestrate_with_context(
            vec![boxed(AwaitsASpawnedTask {
                dropped: Arc::clone(&dropped),
            })],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the task is gone when the run returns"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let trace = ctx.get_trace().await;
    let record = &trace.agent_executions[0];
    assert!(
        record.error.as_deref().unwrap_or("").contains("cancelled"),
        "recorded as cancelled, not abandoned: {:?}",
        record.error
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_run_stops_the_tasks_its_agents_spawned() {
    let ticks = Arc::new(AtomicUsize::new(0));
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let (slow, _) = common::sleeper("slow", Duration::from_secs(3600));
    let agents = vec![
        boxed(SpawnsATicker {
            ticks: Arc::clone(&ticks),
        }),
        slow,
    ];
    // The ticker's attempt is over at once; the slow one's is dropped.
    let fan_out = ParallelOrchestrator::new();
    let run = fan_out.orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx);
    let _ = tokio::time::timeout(Duration::from_millis(10), run).await;
    let at_drop = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), at_drop);
}

/// Spawns a ticker like [`SpawnsATicker`], then waits an hour.
struct SpawnsThenWaits {
    ticks: Arc<AtomicUsize>,
}

#[async_trait]
impl Agent for SpawnsThenWaits {
    fn name(&self) -> &str {
        "spawns-then-waits"
    }
    fn description(&self) -> &str {
        "leaves a ticking task behind, then waits"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        SpawnsATicker {
            ticks: Arc::clone(&self.ticks),
        }
        .execute(input)
        .await?;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(AgentOutput::new("waited"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_run_stops_what_a_running_attempt_spawned() {
    let ticks = Arc::new(AtomicUsize::new(0));
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let pipeline = SequentialOrchestrator::new();
    let run = pipeline.orchestrate_with_context(
        vec![boxed(SpawnsThenWaits {
            ticks: Arc::clone(&ticks),
        })],
        OrchestratorInput::new("x"),
        &ctx,
    );
    let _ = tokio::time::timeout(Duration::from_millis(2500), run).await;
    let (at_drop, events) = (ticks.load(Ordering::SeqCst), journal.len());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), at_drop, "the task stopped");
    assert_eq!(journal.len(), events, "and writes nothing");
}

// ---------------------------------------------------------------------
// A question in a graph nested in a fan-out nested in a graph.

#[tokio::test(start_paused = true)]
async fn a_question_in_a_graph_in_a_fan_out_in_a_graph_resumes_without_rerunning_anything() {
    let (first, first_calls) = counted("first", Duration::ZERO);
    let (prep, prep_calls) = counted("prep", Duration::from_millis(5));
    let (sibling, sibling_calls) = counted("sibling", Duration::from_millis(50));
    let asker_calls = Arc::new(AtomicUsize::new(0));
    let inner = GraphOrchestrator::new("inner")
        .add_node("prep", prep)
        .add_node(
            "asker",
            Asker {
                name: "asker",
                id: "go",
                calls: Arc::clone(&asker_calls),
            },
        )
        .add_edge(START, "prep")
        .add_edge("prep", "asker")
        .add_edge("asker", END);
    let fan = OrchestratorAgent::new(
        "fan",
        "a subgraph beside a sibling",
        ParallelOrchestrator::new(),
        vec![
            boxed(OrchestratorAgent::new("sub", "", inner, Vec::new())),
            boxed(sibling),
        ],
    );
    let outer = GraphOrchestrator::new("outer")
        .add_node("first", first)
        .add_node("fan", fan)
        .add_edge(START, "first")
        .add_edge("first", "fan")
        .add_edge("fan", END);
    let paused = outer
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .expect_err("the question pauses the run");
    let OrchestrationError::InputRequired(pause) = paused else {
        panic!("not a pause: {paused}");
    };
    assert_eq!(pause.questions.len(), 1);
    assert_eq!(pause.questions[0].id, "go");
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let output = outer
        .resume_in(*pause, [("go", "yes")], &ctx)
        .await
        .expect("the resumed run ends");
    assert!(
        output.result.contains("prep(first(x)):yes"),
        "{}",
        output.result
    );
    assert!(
        output.result.contains("sibling(first(x))"),
        "{}",
        output.result
    );
    assert_eq!(
        (
            first_calls.load(Ordering::SeqCst),
            prep_calls.load(Ordering::SeqCst),
            sibling_calls.load(Ordering::SeqCst),
            asker_calls.load(Ordering::SeqCst)
        ),
        (1, 1, 1, 2),
        "nothing finished runs again; the asker runs again and gets its answer"
    );
    let mut log: Vec<String> = serde_json::from_value(ctx.get_state("log").await.unwrap()).unwrap();
    log.sort();
    assert_eq!(
        log,
        ["first", "prep", "sibling"],
        "the state carried over once"
    );
}

// ---------------------------------------------------------------------
// Stops during a retry backoff deep inside.

#[tokio::test(start_paused = true)]
async fn a_cancel_during_a_nested_retry_backoff_in_map_items_stops_everything_at_once() {
    let (flaky, probe) = Scripted::new("flaky", [Step::Fail(transient("503"))]).boxed();
    let flaky: Arc<dyn Agent> = Arc::from(flaky);
    // One OrchestratorAgent instance shared by every map item.
    let nested = OrchestratorAgent::from_shared(
        "nested",
        "a pipeline that retries slowly",
        SequentialOrchestrator::new().with_config(
            ExecutionConfig::new()
                .with_max_retries(5)
                .with_backoff(Duration::from_secs(10), Duration::from_secs(10)),
        ),
        vec![flaky],
    );
    let graph = GraphOrchestrator::new("map")
        .add_map("items", nested, Split::Lines)
        .add_edge(START, "items")
        .add_edge("items", END);
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    cancel_after(&ctx, Duration::from_secs(1));
    let started = Instant::now();
    let result = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("a\nb\nc"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        probe.calls(),
        3,
        "one attempt per item, no retry after the cancel"
    );
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
    assert_books_balanced(&journal);
    let at_return = journal.len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(journal.len(), at_return);
}

#[tokio::test(start_paused = true)]
async fn a_parent_attempt_timing_out_while_its_nested_run_backs_off_fails_as_a_timeout() {
    let (flaky, probe) = Scripted::new("flaky", [Step::Fail(transient("503"))]).boxed();
    let nested = OrchestratorAgent::new(
        "nested",
        "a pipeline that retries slowly",
        SequentialOrchestrator::new().with_config(
            ExecutionConfig::new()
                .with_max_retries(5)
                .with_backoff(Duration::from_secs(10), Duration::from_secs(10)),
        ),
        vec![flaky],
    );
    let graph = GraphOrchestrator::new("outer")
        .add_node_with(
            "step",
            nested,
            NodeOptions::new()
                .with_max_retries(1)
                .with_attempt_timeout(Duration::from_secs(1)),
        )
        .add_edge(START, "step")
        .add_edge("step", END);
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let started = Instant::now();
    let error = graph
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(error.root_cause(), OrchestrationError::Timeout(_)),
        "the cause is the attempt timeout: {error:?}"
    );
    assert_eq!(probe.calls(), 2, "one inner attempt per outer attempt");
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_books_balanced(&journal);
}

// ---------------------------------------------------------------------
// A permanent failure (a panic) deep inside map items is never retried.

#[tokio::test(start_paused = true)]
async fn a_panic_deep_in_map_items_is_contained_and_never_retried_by_any_layer() {
    let (panicker, probe) = Scripted::new("panicker", [Step::Panic("boom")]).boxed();
    let panicker: Arc<dyn Agent> = Arc::from(panicker);
    let inner = GraphOrchestrator::new("inner")
        .add_shared_node("p", Arc::clone(&panicker))
        .add_edge(START, "p")
        .add_edge("p", END)
        .with_max_retries(3);
    let wrapped = OrchestratorAgent::new(
        "wrapped",
        "",
        ParallelOrchestrator::new().with_max_retries(3),
        vec![boxed(OrchestratorAgent::new("sub", "", inner, Vec::new()))],
    );
    let graph = GraphOrchestrator::new("outer")
        .add_map("items", wrapped, Split::Lines)
        .add_edge(START, "items")
        .add_edge("items", END)
        .with_max_retries(3);
    let error = graph
        .orchestrate(vec![], OrchestratorInput::new("a\nb"))
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("boom"), "{error}");
    assert_eq!(probe.calls(), 2, "once per item, at every depth");
}

// ---------------------------------------------------------------------
// Joins with failures and skips mixed.

#[tokio::test(start_paused = true)]
async fn an_at_least_join_counts_only_the_branches_a_router_took_and_tolerates_a_failure() {
    let (b2, _) = counted("b2", Duration::from_millis(10));
    let (b3, _) = counted("b3", Duration::from_millis(30));
    let (b4, b4_calls) = counted("b4", Duration::ZERO);
    let graph = GraphOrchestrator::new("joins")
        .add_node("route", common::Echo("route"))
        .add_node("b1", Scripted::new("b1", [Step::Fail(permanent("no"))]))
        .add_node("b2", b2)
        .add_node("b3", b3)
        .add_node("b4", b4)
        .add_node("join", common::Echo("join"))
        .add_edge(START, "route")
        .add_router("route", ["b1", "b2", "b3", "b4"], |_| {
            Route::to_all(["b1", "b2", "b3"])
        })
        .add_edge("b1", "join")
        .add_edge("b2", "join")
        .add_edge("b3", "join")
        .add_edge("b4", "join")
        .with_join("join", JoinPolicy::AtLeast(2))
        .add_edge("join", END);
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .expect("two of the three branches taken succeeded");
    assert_eq!(b4_calls.load(Ordering::SeqCst), 0);
    assert!(output.result.starts_with("join("), "{}", output.result);
    assert!(output.result.contains("b2(route(x))") && output.result.contains("b3(route(x))"));
    assert_eq!(output.failures.len(), 1);
    assert_eq!(output.failures[0].agent_name, "b1");
}

#[tokio::test(start_paused = true)]
async fn an_any_join_runs_on_the_first_success_and_the_run_still_waits_for_the_rest() {
    let (slow, slow_probe) = Scripted::new("slow", [Step::Sleep(Duration::from_secs(5))]).boxed();
    let slow: Arc<dyn Agent> = Arc::from(slow);
    let (fast, _) = counted("fast", Duration::from_millis(10));
    let graph = GraphOrchestrator::new("race")
        .add_node("fast", fast)
        .add_shared_node("slow", slow)
        .add_node(
            "failing",
            Scripted::new("failing", [Step::Fail(permanent("no"))]),
        )
        .add_node("join", common::Echo("join"))
        .add_edge(START, "fast")
        .add_edge(START, "slow")
        .add_edge(START, "failing")
        .add_edge("fast", "join")
        .add_edge("slow", "join")
        .add_edge("failing", "join")
        .with_join("join", JoinPolicy::Any)
        .add_edge("join", END);
    let started = Instant::now();
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .expect("one success is enough");
    assert_eq!(output.result, "join(fast(x))");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "the slow branch ran to its end"
    );
    assert_eq!(slow_probe.running.load(Ordering::SeqCst), 0);
    assert_eq!(
        output.agent_outputs.len(),
        3,
        "no output dropped: fast, slow, join"
    );
    assert_eq!(output.failures.len(), 1);
}

// ---------------------------------------------------------------------
// One orchestrator, many runs at once; one agent, many nodes.

#[tokio::test(start_paused = true)]
async fn one_graph_run_from_many_tasks_at_once_keeps_every_run_apart() {
    let probe = Probe::new();
    let shared: Arc<dyn Agent> = Arc::from(
        Scripted::new("worker", [Step::Sleep(Duration::from_millis(10))])
            .with_probe(Arc::clone(&probe))
            .boxed()
            .0,
    );
    let graph = Arc::new(
        GraphOrchestrator::new("shared")
            .add_shared_node("a", Arc::clone(&shared))
            .add_shared_node("b", Arc::clone(&shared))
            .add_map("items", common::Echo("item"), Split::Lines)
            .add_node("join", common::Echo("join"))
            .add_edge(START, "a")
            .add_edge(START, "b")
            .add_edge("a", "join")
            .add_edge("b", "join")
            .add_edge("join", "items")
            .add_edge("items", END)
            .with_parallel_limit(2),
    );
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let mut runs = tokio::task::JoinSet::new();
    for run in 0..40 {
        let graph = Arc::clone(&graph);
        let ctx = ctx.clone();
        runs.spawn(async move {
            let input = format!("r{run}");
            let output = if run % 2 == 0 {
                graph
                    .orchestrate(vec![], OrchestratorInput::new(&input))
                    .await
            } else {
                graph
                    .orchestrate_with_context(vec![], OrchestratorInput::new(&input), &ctx)
                    .await
            };
            (input, output)
        });
    }
    while let Some(joined) = runs.join_next().await {
        let (input, output) = joined.unwrap();
        let output = output.unwrap();
        // join gathers "worker" twice: two lines, two items.
        assert_eq!(
            output.result,
            format!("item(join({input})\n\nitem({input}))")
        );
        assert_eq!(output.execution_trace.agent_executions.len(), 5, "{input}");
        assert!(output
            .execution_trace
            .agent_executions
            .iter()
            .all(|record| record.input.content.contains(&input) || record.agent_name == "item"));
    }
    assert_eq!(probe.calls(), 80);
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 20 * 5);
}

// ---------------------------------------------------------------------
// A permanent failure inside a subgraph that no retry can get past.

#[tokio::test(start_paused = true)]
async fn a_subgraph_whose_join_needs_a_node_that_failed_for_good_is_not_rerun_by_a_retry_around_it()
{
    let (flaky, flaky_probe) = Scripted::new("flaky", [Step::Fail(transient("503"))]).boxed();
    let (denied, denied_probe) = Scripted::new("denied", [Step::Fail(permanent("401"))]).boxed();
    let inner = GraphOrchestrator::new("inner")
        .add_node("start", common::Echo("start"))
        .add_node_with(
            "flaky",
            Arc::<dyn Agent>::from(flaky),
            NodeOptions::new().with_max_retries(0),
        )
        .add_node("denied", Arc::<dyn Agent>::from(denied))
        .add_node("join", common::Echo("join"))
        .add_edge(START, "start")
        .add_edge("start", "flaky")
        .add_edge("start", "denied")
        .add_edge("flaky", "join")
        .add_edge("denied", "join")
        .add_edge("join", END);
    let outer = GraphOrchestrator::new("outer")
        .add_node_with(
            "sub",
            OrchestratorAgent::new("sub", "", inner, Vec::new()),
            NodeOptions::new().with_max_retries(2),
        )
        .add_edge(START, "sub")
        .add_edge("sub", END);
    let error = outer
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert_eq!(
        (flaky_probe.calls(), denied_probe.calls()),
        (1, 1),
        "the join needs `denied`, which failed for good: no retry runs the subgraph again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_subgraph_that_a_retry_can_still_complete_is_retried_whole() {
    // `Any`: the retry's `flaky` may satisfy the join without `denied`.
    let (flaky, flaky_probe) =
        Scripted::new("flaky", [Step::Fail(transient("503")), Step::Ok("fine")]).boxed();
    let (denied, denied_probe) = Scripted::new("denied", [Step::Fail(permanent("401"))]).boxed();
    let inner = GraphOrchestrator::new("inner")
        .add_node_with(
            "flaky",
            Arc::<dyn Agent>::from(flaky),
            NodeOptions::new().with_max_retries(0),
        )
        .add_node("denied", Arc::<dyn Agent>::from(denied))
        .add_node("join", common::Echo("join"))
        .add_edge(START, "flaky")
        .add_edge(START, "denied")
        .add_edge("flaky", "join")
        .add_edge("denied", "join")
        .with_join("join", JoinPolicy::Any)
        .add_edge("join", END);
    let outer = GraphOrchestrator::new("outer")
        .add_node_with(
            "sub",
            OrchestratorAgent::new("sub", "", inner, Vec::new()),
            NodeOptions::new().with_max_retries(1),
        )
        .add_edge(START, "sub")
        .add_edge("sub", END);
    let output = outer
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .expect("the retry reaches END through `flaky`");
    assert_eq!(output.result, "join(fine)");
    assert_eq!((flaky_probe.calls(), denied_probe.calls()), (2, 2));
}

// ---------------------------------------------------------------------
// A deadline during a pause asked deep inside a fan-out.

#[tokio::test(start_paused = true)]
async fn a_deadline_while_a_nested_question_waits_for_a_slow_sibling_ends_the_run_as_a_timeout() {
    let asker_calls = Arc::new(AtomicUsize::new(0));
    let inner = GraphOrchestrator::new("inner")
        .add_node(
            "asker",
            Asker {
                name: "asker",
                id: "go",
                calls: Arc::clone(&asker_calls),
            },
        )
        .add_edge(START, "asker")
        .add_edge("asker", END);
    let (slow, slow_probe) = common::sleeper("slow", Duration::from_secs(60));
    let fan = OrchestratorAgent::new(
        "fan",
        "",
        ParallelOrchestrator::new(),
        vec![
            boxed(OrchestratorAgent::new("sub", "", inner, Vec::new())),
            slow,
        ],
    );
    let outer = GraphOrchestrator::new("outer")
        .add_node("fan", fan)
        .add_edge(START, "fan")
        .add_edge("fan", END)
        .with_timeout(Duration::from_secs(5));
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    let started = Instant::now();
    let error = outer
        .orchestrate_with_context(vec![], OrchestratorInput::new("x"), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestrationError::Timeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(slow_probe.running.load(Ordering::SeqCst), 0);
    assert_books_balanced(&journal);
}

// ---------------------------------------------------------------------
// Reducers under concurrent map items running nested runs.

/// Bumps the counter `"count"` and appends its input to `"seen"`.
struct Tally;

#[async_trait]
impl Agent for Tally {
    fn name(&self) -> &str {
        "tally"
    }
    fn description(&self) -> &str {
        "counts in the shared state"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().ok_or(OrchestrationError::Cancelled)?;
        tokio::task::yield_now().await;
        ctx.update_state("count", |slot| {
            let n = slot
                .as_ref()
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            *slot = Some(serde_json::json!(n + 1));
        })
        .await;
        ctx.append_state("seen", serde_json::json!(input.content))
            .await;
        Ok(AgentOutput::new(input.content))
    }
}

/// A map over `items` lines (at most `limit` at once), each item a fan-out
/// of two [`Tally`]s; and its input.
fn map_of_tallying_fan_outs(items: usize, limit: usize) -> (GraphOrchestrator, String) {
    let lines: Vec<String> = (0..items).map(|i| format!("i{i}")).collect();
    let nested = OrchestratorAgent::new(
        "nested",
        "",
        ParallelOrchestrator::new(),
        vec![boxed(Tally), boxed(Tally)],
    );
    let graph = GraphOrchestrator::new("map")
        .add_map("items", nested, Split::Lines)
        .add_edge(START, "items")
        .add_edge("items", END)
        .with_parallel_limit(limit);
    (graph, lines.join("\n"))
}

#[tokio::test(start_paused = true)]
async fn reducers_count_every_write_of_map_items_running_nested_fan_outs() {
    let (graph, items) = map_of_tallying_fan_outs(300, 7);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    graph
        .orchestrate_with_context(vec![], OrchestratorInput::new(items), &ctx)
        .await
        .unwrap();
    assert_eq!(ctx.get_state("count").await, Some(serde_json::json!(600)));
    let seen = ctx.get_state("seen").await.unwrap();
    assert_eq!(seen.as_array().map(Vec::len), Some(600));
}

#[test]
fn reducers_count_every_write_on_a_multi_threaded_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (graph, items) = map_of_tallying_fan_outs(200, 8);
        let journal = Arc::new(InMemoryJournal::new());
        let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
        graph
            .orchestrate_with_context(vec![], OrchestratorInput::new(items), &ctx)
            .await
            .unwrap();
        assert_eq!(ctx.get_state("count").await, Some(serde_json::json!(400)));
        let changes = journal
            .events()
            .into_iter()
            .filter(|e| matches!(e.kind, EventKind::StateChanged { .. }))
            .count();
        assert_eq!(changes, 800, "every write journaled once");
        assert_books_balanced(&journal);
    });
}

// ---------------------------------------------------------------------
// A huge fan-out under a tiny limit, cancelled part way.

#[tokio::test(start_paused = true)]
async fn a_huge_fan_out_under_a_tiny_limit_starts_nothing_past_the_limit_or_the_cancel() {
    let probe = Probe::new();
    let agents: Vec<Box<dyn Agent>> = (0..5000)
        .map(|i| {
            Scripted::new(format!("a{i}"), [Step::Sleep(Duration::from_millis(10))])
                .with_probe(Arc::clone(&probe))
                .boxed()
                .0
        })
        .collect();
    let journal = Arc::new(InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    cancel_after(&ctx, Duration::from_millis(105));
    let result = ParallelOrchestrator::new()
        .with_parallel_limit(3)
        .orchestrate_with_context(agents, OrchestratorInput::new("x"), &ctx)
        .await;
    assert_eq!(result.unwrap_err(), OrchestrationError::Cancelled);
    assert_eq!(probe.max_running(), 3);
    assert_eq!(
        probe.calls(),
        33,
        "ten full rounds of three, and the round the cancel cut"
    );
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
    assert_books_balanced(&journal);
}
