//! Faults an adversarial review found (session 19), one regression test each:
//! user code the engine calls (observers, routers, retry policies) that
//! panics, a stop racing a node's last failure, and what a fan-out's failure
//! says of its cause — a question asked inside it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, GraphOrchestrator,
    JoinPolicy, OrchestrationError, Orchestrator, OrchestratorAgent, OrchestratorInput,
    ParallelOrchestrator, Result, RetryPolicy, Route, RunBudget, RunEvent, RunObserver,
    SequentialOrchestrator, SimpleAgent, END, START,
};
use common::{echo, permanent, sleeper, transient, Scripted, Step};
use tokio::time::Instant;

fn boxed(agent: impl Agent + 'static) -> Box<dyn Agent> {
    Box::new(agent)
}

/// An observer that panics when attempt `agent` starts.
struct PanicsOn(&'static str);

impl RunObserver for PanicsOn {
    fn on_event(&self, event: &RunEvent<'_>) {
        if let RunEvent::AttemptStarted { agent, .. } = event {
            if *agent == self.0 {
                panic!("observer went wrong on {agent}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_observer_on_a_late_sibling_does_not_hang_the_fan_out() {
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_observer(Arc::new(PanicsOn("c")));
    let started = Instant::now();
    let (a, _) = sleeper("a", Duration::from_millis(10));
    let (b, _) = sleeper("b", Duration::from_millis(10));
    let result = ParallelOrchestrator::new()
        .with_timeout(Duration::from_secs(3600))
        .orchestrate_with_context(vec![a, b, echo("c")], OrchestratorInput::new("x"), &ctx)
        .await;
    let output = result.expect("the observer's panic is contained");
    assert_eq!(output.agent_outputs.len(), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(10));
    let trace = ctx.get_trace().await;
    assert_eq!(trace.agent_executions.len(), 3);
    assert!(trace.agent_executions.iter().all(|record| record.success));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_observer_skips_no_agent_in_any_pattern() {
    for pattern in ["parallel", "sequential"] {
        let ctx =
            ExecutionContext::new(ExecutionConfig::new()).with_observer(Arc::new(PanicsOn("a")));
        let (b, b_calls) = Scripted::new("b", [Step::Ok("b")]).boxed();
        let (c, c_calls) = Scripted::new("c", [Step::Ok("c")]).boxed();
        let agents = vec![echo("a"), b, c];
        let input = OrchestratorInput::new("x");
        let result = match pattern {
            "parallel" => {
                ParallelOrchestrator::new()
                    .orchestrate_with_context(agents, input, &ctx)
                    .await
            }
            _ => {
                SequentialOrchestrator::new()
                    .orchestrate_with_context(agents, input, &ctx)
                    .await
            }
        };
        let output = result.unwrap_or_else(|error| panic!("{pattern}: {error}"));
        assert_eq!(output.agent_outputs.len(), 3, "{pattern}");
        assert_eq!((b_calls.calls(), c_calls.calls()), (1, 1), "{pattern}");
    }
}

/// Cancels its run, then fails for good: it ran to its own end.
struct CancelsThenFails;

#[async_trait]
impl Agent for CancelsThenFails {
    fn name(&self) -> &str {
        "last"
    }

    fn description(&self) -> &str {
        "cancels the run as it fails"
    }

    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        if let Some(ctx) = ExecutionContext::current() {
            ctx.cancel();
        }
        Err(permanent("no"))
    }
}

#[tokio::test]
async fn a_cancel_racing_the_last_failure_keeps_the_fan_outs_result() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let result = ParallelOrchestrator::new()
        .with_parallel_limit(1)
        .with_join_policy(JoinPolicy::Any)
        .orchestrate_with_context(
            vec![echo("a"), boxed(CancelsThenFails)],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    let output = result.expect("every node ran to its own end: the run keeps its result");
    assert_eq!(output.agent_outputs.len(), 1);
    assert_eq!(output.failures.len(), 1);
}

#[tokio::test]
async fn a_cancel_racing_the_last_failure_in_a_pipeline_reports_the_failure() {
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let result = SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![echo("a"), boxed(CancelsThenFails)],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await;
    match &result {
        Err(error @ OrchestrationError::AgentFailed(name, _)) => {
            assert_eq!(name, "last");
            assert!(!error.is_retryable());
        }
        other => panic!("the last node failed for good: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_whose_agents_all_failed_is_retried_whole_by_its_enclosing_run() {
    // The first failure in order names the run's, retryable here: the
    // enclosing pipeline runs the fan-out again, and `Any` is satisfied.
    let (flaky, flaky_calls) =
        Scripted::new("flaky", [Step::Fail(transient("503")), Step::Ok("fine")]).boxed();
    let (denied, denied_calls) = Scripted::new(
        "denied",
        [Step::Fail(permanent("401")), Step::Fail(permanent("401"))],
    )
    .boxed();
    let nested = OrchestratorAgent::new(
        "nested",
        "",
        ParallelOrchestrator::new()
            .with_max_retries(0)
            .with_join_policy(JoinPolicy::Any),
        vec![flaky, denied],
    );
    let output = SequentialOrchestrator::new()
        .with_max_retries(1)
        .orchestrate(vec![boxed(nested)], OrchestratorInput::new("x"))
        .await
        .expect("the retry's fan-out satisfies `Any`");
    assert!(output.result.contains("fine"), "{}", output.result);
    assert_eq!((flaky_calls.calls(), denied_calls.calls()), (2, 2));
}

/// Asks a question from inside its attempt.
struct Asker;

#[async_trait]
impl Agent for Asker {
    fn name(&self) -> &str {
        "asker"
    }

    fn description(&self) -> &str {
        "asks before answering"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().ok_or(OrchestrationError::Cancelled)?;
        let answer = ctx.ask("go", "Go ahead?")?;
        Ok(AgentOutput::new(format!("{}:{answer}", input.content)))
    }
}

#[tokio::test(start_paused = true)]
async fn a_question_in_a_fan_out_nested_in_a_graph_pauses_the_graph_even_when_a_sibling_succeeds() {
    let fan_out = OrchestratorAgent::new(
        "fan",
        "",
        ParallelOrchestrator::new(),
        vec![boxed(Asker), echo("plain")],
    );
    let graph = GraphOrchestrator::new("outer")
        .add_node("fan", fan_out)
        .add_edge(START, "fan")
        .add_edge("fan", END);
    let paused = graph.orchestrate(vec![], OrchestratorInput::new("x")).await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the graph pauses for the question: {paused:?}");
    };
    assert_eq!(pause.questions.len(), 1);
    assert_eq!(pause.questions[0].id, "go");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_router_fails_its_step_instead_of_hanging_the_graph() {
    let graph = GraphOrchestrator::new("g")
        .with_parallel_limit(4)
        .add_node("a", echo("a"))
        .add_node("b", echo("b"))
        .add_node("slow", sleeper("slow", Duration::from_millis(50)).0)
        .add_edge(START, "a")
        .add_edge(START, "slow")
        .add_edge("slow", END)
        .add_edge("b", END)
        .add_router("a", ["b"], |_| -> Route { panic!("router went wrong") });
    let started = Instant::now();
    let result = graph.orchestrate(vec![], OrchestratorInput::new("x")).await;
    assert_eq!(started.elapsed(), Duration::from_millis(50));
    // The other branch reached END: the run ends with the router's step
    // among its failures, the panic's message kept.
    let output = result.expect("the slow branch reached the end");
    assert_eq!(output.failures.len(), 1);
    assert_eq!(output.failures[0].agent_name, "a");
    assert!(
        output.failures[0].error.contains("router went wrong"),
        "{:?}",
        output.failures
    );
}

/// A retry policy that panics whenever it is asked.
#[derive(Debug)]
struct PanickingPolicy;

impl RetryPolicy for PanickingPolicy {
    fn retry_delay(
        &self,
        _error: &OrchestrationError,
        _failed_attempt: u32,
        _max_retries: usize,
    ) -> Option<Duration> {
        panic!("policy went wrong")
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_retry_policy_retries_nothing_and_hangs_nothing() {
    let (flaky, flaky_calls) = Scripted::new("flaky", [Step::Fail(transient("503"))]).boxed();
    let config = ExecutionConfig::new()
        .with_max_retries(3)
        .with_retry_policy(Arc::new(PanickingPolicy));
    let result = ParallelOrchestrator::new()
        .with_config(config)
        .orchestrate(vec![flaky, echo("b")], OrchestratorInput::new("x"))
        .await;
    assert!(
        matches!(result, Err(OrchestrationError::PartialSuccess(1))),
        "{result:?}"
    );
    assert_eq!(flaky_calls.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_loop_node_also_fed_from_outside_the_loop_runs_on_every_pass() {
    let calls = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let agent = |name: &'static str| {
        let calls = Arc::clone(&calls);
        SimpleAgent::new(name, "", move |input| {
            calls
                .lock()
                .map_err(|_| OrchestrationError::Cancelled)?
                .push(name);
            Ok(AgentOutput::new(format!("{name}({})", input.content)))
        })
    };
    // `j` joins `s` (before the loop, run once) and `a` (in the loop).
    let graph = GraphOrchestrator::new("g")
        .add_node("s", agent("s"))
        .add_node("a", agent("a"))
        .add_node("j", agent("j"))
        .add_edge(START, "s")
        .add_edge("s", "a")
        .add_edge("s", "j")
        .add_edge("a", "j")
        .add_loop("j", "a", 3, |_| true)
        .add_edge("j", END);
    graph.validate().expect("a valid graph");
    let output = graph
        .orchestrate(vec![], OrchestratorInput::new("x"))
        .await
        .expect("the loop runs its three passes and ends");
    let calls = calls.lock().map(|calls| calls.clone()).unwrap_or_default();
    assert_eq!(calls, ["s", "a", "j", "a", "j", "a", "j"]);
    assert!(output.result.starts_with("j("), "{}", output.result);
    assert!(
        output.result.contains("s(x)"),
        "the last pass still gets s's output: {}",
        output.result
    );
}

#[tokio::test(start_paused = true)]
async fn what_a_subgraph_spends_counts_against_the_enclosing_graphs_budget() {
    let spender = SimpleAgent::new("spender", "", |input| {
        Ok(AgentOutput::new(input.content)
            .with_data(serde_json::json!({"usage": {"input_tokens": 4000, "output_tokens": 1000}})))
    });
    let (after, after_calls) = Scripted::new("after", [Step::Ok("after")]).boxed();
    let inner = GraphOrchestrator::new("inner")
        .add_node("spender", spender)
        .add_edge(START, "spender")
        .add_edge("spender", END);
    let outer = GraphOrchestrator::new("outer")
        .add_subgraph("sub", inner)
        .add_node("after", after)
        .add_edge(START, "sub")
        .add_edge("sub", "after")
        .add_edge("after", END)
        .with_budget(RunBudget::new().with_max_tokens(100));
    let result = outer.orchestrate(vec![], OrchestratorInput::new("x")).await;
    assert!(
        matches!(&result, Err(OrchestrationError::BudgetExceeded(_))),
        "the subgraph spent 5,000 tokens against a budget of 100: {result:?}"
    );
    assert_eq!(
        after_calls.calls(),
        0,
        "nothing starts after the budget is crossed"
    );
}

#[tokio::test(start_paused = true)]
async fn an_orchestrator_agent_reports_what_its_agents_spent() {
    let spend = |name: &'static str, tokens: u64| -> Box<dyn Agent> {
        Box::new(SimpleAgent::new(name, "", move |input| {
            Ok(AgentOutput::new(input.content).with_data(
                serde_json::json!({"usage": {"input_tokens": tokens, "output_tokens": 1, "cost_usd": 0.5}}),
            ))
        }))
    };
    let inner = OrchestratorAgent::new(
        "inner",
        "",
        ParallelOrchestrator::new(),
        vec![spend("a", 10), spend("b", 20)],
    );
    let outer = OrchestratorAgent::new(
        "outer",
        "",
        SequentialOrchestrator::new(),
        vec![boxed(inner), spend("c", 30)],
    );
    let output = outer
        .execute(AgentInput::new("x"))
        .await
        .expect("every agent succeeds");
    let usage = claude_agent_sdk::orchestration::Usage::from_output(&output)
        .expect("the nested runs' usage, summed");
    assert_eq!(usage.input_tokens, 60);
    assert_eq!(usage.output_tokens, 3);
    assert_eq!(usage.cost_usd, Some(1.5));
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_stored_runs_tokens_count_a_nested_runs_spending_once() {
    use claude_agent_sdk::orchestration::store::SqliteJournal;

    let folder = std::env::temp_dir().join(format!(
        "review-faults-{}-{}",
        std::process::id(),
        unique_suffix()
    ));
    std::fs::create_dir_all(&folder).expect("a temporary folder");
    let journal = Arc::new(
        SqliteJournal::open(folder.join("runs.db"))
            .await
            .expect("a SQLite store"),
    );
    let spend = |name: &'static str| -> Box<dyn Agent> {
        Box::new(SimpleAgent::new(name, "", |input| {
            Ok(AgentOutput::new(input.content).with_data(
                serde_json::json!({"usage": {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.25}}),
            ))
        }))
    };
    let nested = OrchestratorAgent::new(
        "nested",
        "",
        ParallelOrchestrator::new(),
        vec![spend("a"), spend("b")],
    );
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![boxed(nested), spend("c")],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .expect("every agent succeeds");
    let runs = journal.runs(10).await.expect("the stored runs");
    let [top] = runs.as_slice() else {
        panic!("one top-level run: {runs:?}");
    };
    assert_eq!(
        top.tokens, 45,
        "three agents of 15 tokens, each counted once"
    );
    assert!((top.cost_usd - 0.75).abs() < 1e-9, "{}", top.cost_usd);
    let _ = std::fs::remove_dir_all(&folder);
}

#[cfg(feature = "sqlite")]
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

/// Drafts once (kept in the shared state), then asks for approval.
struct Keeper {
    drafts: Arc<Mutex<u32>>,
}

#[async_trait]
impl Agent for Keeper {
    fn name(&self) -> &str {
        "keeper"
    }

    fn description(&self) -> &str {
        "drafts once, then asks"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let ctx = ExecutionContext::current().ok_or(OrchestrationError::Cancelled)?;
        let draft = match ctx.get_state("draft").await {
            Some(serde_json::Value::String(draft)) => draft,
            _ => {
                *self
                    .drafts
                    .lock()
                    .map_err(|_| OrchestrationError::Cancelled)? += 1;
                let draft = format!("draft of {}", input.content);
                ctx.set_state("draft", serde_json::json!(draft)).await;
                draft
            }
        };
        let answer = ctx.ask("approve", &draft)?;
        Ok(AgentOutput::new(format!("{draft}: {answer}")))
    }
}

#[tokio::test(start_paused = true)]
async fn state_kept_before_a_pause_is_there_after_resume() {
    let drafts = Arc::new(Mutex::new(0));
    let graph = GraphOrchestrator::new("g")
        .add_node(
            "keeper",
            Keeper {
                drafts: Arc::clone(&drafts),
            },
        )
        .add_edge(START, "keeper")
        .add_edge("keeper", END);
    let paused = graph.orchestrate(vec![], OrchestratorInput::new("x")).await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the run pauses: {paused:?}");
    };
    // A pause is plain data: it goes through JSON and back.
    let json = serde_json::to_string(&pause).expect("a pause serializes");
    let pause = serde_json::from_str(&json).expect("and reads back");
    let output = graph
        .resume(pause, [("approve", "yes")])
        .await
        .expect("the resumed run ends");
    assert_eq!(output.result, "draft of x: yes");
    assert_eq!(*drafts.lock().unwrap_or_else(|e| e.into_inner()), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_follows_the_route_its_state_chose_before_the_pause() {
    let (french, french_calls) = Scripted::new("french", [Step::Ok("fr")]).boxed();
    let (english, english_calls) = Scripted::new("english", [Step::Ok("en")]).boxed();
    let detect = SimpleAgent::new("detect", "", |input| Ok(AgentOutput::new(input.content)));
    let graph = GraphOrchestrator::new("g")
        .add_node("detect", StateSetter { inner: detect })
        .add_node("french", french)
        .add_node("english", english)
        .add_node("confirm", boxed(Asker))
        .add_edge(START, "detect")
        .add_router("detect", ["french", "english"], |route| {
            if route.state("lang") == Some(&serde_json::json!("fr")) {
                Route::to("french")
            } else {
                Route::to("english")
            }
        })
        .add_edge("french", "confirm")
        .add_edge("english", "confirm")
        .add_edge("confirm", END);
    let paused = graph
        .orchestrate(vec![], OrchestratorInput::new("bonjour"))
        .await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the run pauses: {paused:?}");
    };
    graph
        .resume(*pause, [("go", "yes")])
        .await
        .expect("the resumed run ends");
    assert_eq!((french_calls.calls(), english_calls.calls()), (1, 0));
}

/// Sets `lang` in the shared state, then runs `inner`.
struct StateSetter<A> {
    inner: A,
}

#[async_trait]
impl<A: Agent> Agent for StateSetter<A> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn description(&self) -> &str {
        "detects the language"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        if let Some(ctx) = ExecutionContext::current() {
            ctx.set_state("lang", serde_json::json!("fr")).await;
        }
        self.inner.execute(input).await
    }
}

/// A pipeline whose first agent blocks its thread past the run's timeout
/// returns at the deadline (after the stop grace), as a fan-out does, and
/// the stuck attempt's record says it was abandoned. (Real time: the agent
/// blocks a thread, which a paused clock cannot skip.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_returns_at_its_deadline_when_an_agent_blocks_its_thread() {
    let stuck = SimpleAgent::new("stuck", "blocks its thread", |input| {
        std::thread::sleep(Duration::from_secs(3));
        Ok(AgentOutput::new(input.content))
    });
    let (after, after_calls) = Scripted::new("after", [Step::Ok("after")]).boxed();
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let started = std::time::Instant::now();
    let result = SequentialOrchestrator::new()
        .with_timeout(Duration::from_millis(200))
        .orchestrate_with_context(vec![boxed(stuck), after], OrchestratorInput::new("x"), &ctx)
        .await;
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(OrchestrationError::Timeout(_))),
        "{result:?}"
    );
    assert!(waited < Duration::from_secs(2), "returned after {waited:?}");
    assert_eq!(after_calls.calls(), 0);
    let trace = ctx.get_trace().await;
    let [record] = trace.agent_executions.as_slice() else {
        panic!("one record: {:?}", trace.agent_executions);
    };
    assert!(!record.success);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|error| error.contains("abandoned")),
        "{:?}",
        record.error
    );
}

#[tokio::test(start_paused = true)]
async fn a_question_node_in_a_loop_asks_again_on_every_pass() {
    let (write, write_calls) = Scripted::new(
        "write",
        [
            Step::Ok("draft 1"),
            Step::Ok("draft 2"),
            Step::Ok("draft 3"),
        ],
    )
    .boxed();
    let graph = GraphOrchestrator::new("g")
        .add_node("write", write)
        .add_ask("review", "Good enough?")
        .add_edge(START, "write")
        .add_edge("write", "review")
        .add_loop("review", "write", 5, |route| route.output.content != "yes")
        .add_edge("review", END);
    let first = graph.orchestrate(vec![], OrchestratorInput::new("x")).await;
    let Err(OrchestrationError::InputRequired(pause)) = first else {
        panic!("the first pass asks: {first:?}");
    };
    assert_eq!(pause.questions[0].id, "review");
    let second = graph.resume(*pause, [("review", "more")]).await;
    let Err(OrchestrationError::InputRequired(pause)) = second else {
        panic!("the second pass asks again: {second:?}");
    };
    assert_eq!(pause.questions[0].id, "review#2");
    let output = graph
        .resume(*pause, [("review#2", "yes")])
        .await
        .expect("approved on the second pass");
    assert_eq!(output.result, "yes");
    assert_eq!(write_calls.calls(), 2, "each pass's draft is written once");
}

#[tokio::test(start_paused = true)]
async fn a_question_inside_a_subgraph_resumes_without_rerunning_the_subgraphs_finished_nodes() {
    let (pre, pre_calls) = Scripted::new("pre", [Step::Ok("pre")]).boxed();
    let (work, work_calls) = Scripted::new("work", [Step::Ok("worked")]).boxed();
    let inner = GraphOrchestrator::new("inner")
        .add_node("work", work)
        .add_node("ask", boxed(Asker))
        .add_edge(START, "work")
        .add_edge("work", "ask")
        .add_edge("ask", END);
    let middle = GraphOrchestrator::new("middle")
        .add_subgraph("inner", inner)
        .add_edge(START, "inner")
        .add_edge("inner", END);
    let outer = GraphOrchestrator::new("outer")
        .add_node("pre", pre)
        .add_subgraph("sub", middle)
        .add_edge(START, "pre")
        .add_edge("pre", "sub")
        .add_edge("sub", END);
    let paused = outer.orchestrate(vec![], OrchestratorInput::new("x")).await;
    let Err(OrchestrationError::InputRequired(pause)) = paused else {
        panic!("the run pauses: {paused:?}");
    };
    assert_eq!(pause.questions[0].id, "go");
    let work_step = pause
        .finished
        .iter()
        .find(|step| step.node == "work")
        .expect("the inner graph's finished step is in the pause");
    let within: Vec<&str> = work_step.within.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(within, ["sub", "inner"]);
    let output = outer
        .resume(*pause, [("go", "yes")])
        .await
        .expect("the resumed run ends");
    assert_eq!(output.result, "worked:yes");
    assert_eq!((pre_calls.calls(), work_calls.calls()), (1, 1));
}

/// Starts a nested run in a task it does not await, and returns once that
/// run's agent has started.
struct SpawnsAndReturns {
    nested: Arc<common::Probe>,
}

#[async_trait]
impl Agent for SpawnsAndReturns {
    fn name(&self) -> &str {
        "spawner"
    }

    fn description(&self) -> &str {
        "leaves a nested run behind"
    }

    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        let probe = Arc::clone(&self.nested);
        let (started, has_started) = tokio::sync::oneshot::channel();
        let _detached = ExecutionContext::spawn(async move {
            let ctx = ExecutionContext::current().ok_or(OrchestrationError::Cancelled)?;
            let (agent, _) = Scripted::new("nested", [Step::Sleep(Duration::from_secs(60))])
                .with_probe(probe)
                .boxed();
            let pipeline = SequentialOrchestrator::new();
            let run = pipeline.orchestrate_with_context(
                vec![agent],
                OrchestratorInput::new(input.content),
                &ctx,
            );
            let mut run = std::pin::pin!(run);
            let _ = futures::poll!(run.as_mut());
            let _ = started.send(());
            run.await
        });
        let _ = has_started.await;
        Ok(AgentOutput::new("returned at once"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_nested_run_an_agent_left_running_has_ended_when_the_outer_run_returns() {
    use std::sync::atomic::Ordering;

    let nested = common::Probe::new();
    let journal = Arc::new(claude_agent_sdk::orchestration::InMemoryJournal::new());
    let ctx = ExecutionContext::new(ExecutionConfig::new()).with_journal(journal.clone());
    SequentialOrchestrator::new()
        .orchestrate_with_context(
            vec![boxed(SpawnsAndReturns {
                nested: Arc::clone(&nested),
            })],
            OrchestratorInput::new("x"),
            &ctx,
        )
        .await
        .expect("the outer agent succeeded");
    assert_eq!(
        nested.running.load(Ordering::SeqCst),
        0,
        "nothing left running"
    );
    let at_return = journal.len();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(journal.len(), at_return, "nothing recorded afterwards");
    let trace = ctx.get_trace().await;
    let outer = &trace.agent_executions[0];
    assert!(outer.success);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_in_a_nested_fan_out_is_not_rerun_by_the_outer_retry() {
    // Both nested agents fail: the first in order retryably (no retry left),
    // the second for good — so no retry of the fan-out can satisfy `All`.
    let (flaky, flaky_calls) = Scripted::new("flaky", [Step::Fail(transient("503"))]).boxed();
    let (denied, denied_calls) = Scripted::new("denied", [Step::Fail(permanent("401"))]).boxed();
    let nested = OrchestratorAgent::new(
        "nested",
        "",
        ParallelOrchestrator::new().with_max_retries(0),
        vec![flaky, denied],
    );
    let result = SequentialOrchestrator::new()
        .with_max_retries(2)
        .orchestrate(vec![boxed(nested)], OrchestratorInput::new("x"))
        .await;
    let error = result.expect_err("both nested agents failed");
    assert!(!error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("`denied` failed for good"),
        "{error}"
    );
    assert_eq!((flaky_calls.calls(), denied_calls.calls()), (1, 1));
    // Through JSON and back, the failure stays permanent.
    let json = serde_json::to_string(&error).expect("errors serialize");
    let read: OrchestrationError = serde_json::from_str(&json).expect("and read back");
    assert!(!read.is_retryable());
}
