//! A new user's review of the graph API: features the docs show one at a
//! time, combined — maps in loops, questions in map items and subgraphs,
//! tolerant joins with skipped and failed branches, budgets crossed deep
//! inside, resumes in a row, reducers read after a resume, traces and their
//! JSON.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, ExecutionConfig, ExecutionContext, ExecutionTrace,
    GraphOrchestrator, JoinPolicy, OrchestrationError, Orchestrator, OrchestratorAgent,
    OrchestratorInput, ParallelOrchestrator, Pause, Result, Route, RunBudget,
    SequentialOrchestrator, SimpleAgent, Split, END, START,
};
use futures::future::BoxFuture;

// ---------------------------------------------------------------------
// Helpers.

type Body =
    dyn Fn(AgentInput, ExecutionContext) -> BoxFuture<'static, Result<AgentOutput>> + Send + Sync;

/// An agent whose body is an async closure given its input and context;
/// counts its calls under its name.
struct Do {
    name: String,
    calls: Calls,
    body: Box<Body>,
}

type Calls = Arc<Mutex<Vec<String>>>;

fn calls() -> Calls {
    Arc::default()
}

fn count(calls: &Calls, name: &str) -> usize {
    calls.lock().unwrap().iter().filter(|c| *c == name).count()
}

fn act<F, Fut>(name: &str, calls: &Calls, body: F) -> Do
where
    F: Fn(AgentInput, ExecutionContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<AgentOutput>> + Send + 'static,
{
    Do {
        name: name.to_owned(),
        calls: Arc::clone(calls),
        body: Box::new(move |input, ctx| Box::pin(body(input, ctx))),
    }
}

#[async_trait]
impl Agent for Do {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        "test agent"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.calls.lock().unwrap().push(self.name.clone());
        let ctx = ExecutionContext::current().expect("runs in a run");
        (self.body)(input, ctx).await
    }
}

fn echo(
    name: &'static str,
) -> SimpleAgent<impl Fn(AgentInput) -> Result<AgentOutput> + Send + Sync> {
    SimpleAgent::new(name, "", move |input| {
        Ok(AgentOutput::new(format!("{name}({})", input.content)))
    })
}

fn input(text: &str) -> OrchestratorInput {
    OrchestratorInput::new(text)
}

fn paused(result: Result<claude_agent_sdk::orchestration::OrchestratorOutput>) -> Pause {
    match result {
        Err(OrchestrationError::InputRequired(pause)) => *pause,
        other => panic!("expected a pause, got {other:?}"),
    }
}

fn question_ids(pause: &Pause) -> Vec<String> {
    let mut ids: Vec<String> = pause.questions.iter().map(|q| q.id.clone()).collect();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------
// record_text_limit with maps.

/// `graph`'s trace (its own limit 100 bytes) three ways: from `orchestrate`,
/// from `orchestrate_with_context` under a context with the same limit, and
/// that context's trace.
async fn traces_cut_to_100_bytes(graph: &GraphOrchestrator) -> Vec<ExecutionTrace> {
    let ctx = ExecutionContext::new(ExecutionConfig::new().with_record_text_limit(100));
    vec![
        graph
            .orchestrate(vec![], input("go"))
            .await
            .unwrap()
            .execution_trace,
        graph
            .orchestrate_with_context(vec![], input("go"), &ctx)
            .await
            .unwrap()
            .execution_trace,
        ctx.get_trace().await,
    ]
}

#[tokio::test(start_paused = true)]
async fn record_text_limit_bounds_the_gathered_results_a_map_hands_on() {
    let big = "x".repeat(10_000);
    let graph = GraphOrchestrator::new("g")
        .with_config(ExecutionConfig::new().with_record_text_limit(100))
        .add_node(
            "plan",
            SimpleAgent::new("plan", "", |_| Ok(AgentOutput::new("a\nb\nc"))),
        )
        .add_map(
            "items",
            SimpleAgent::new("items", "", move |_| Ok(AgentOutput::new(big.clone()))),
            Split::Lines,
        )
        .add_node(
            "after",
            SimpleAgent::new("after", "", |_| Ok(AgentOutput::new("done"))),
        )
        .add_edge(START, "plan")
        .add_edge("plan", "items")
        .add_edge("items", "after")
        .add_edge("after", END);
    for trace in traces_cut_to_100_bytes(&graph).await {
        // Three items of 10 kB each: a trace cut to 100 bytes per text
        // keeps far less than the 30 kB they add up to.
        let json = serde_json::to_string(&trace).unwrap();
        assert!(json.len() < 5_000, "the trace keeps {} bytes", json.len());
        // The gathered results still read as the documented JSON array.
        let after = trace.attempts_of("after").next().unwrap();
        let results: serde_json::Value =
            serde_json::from_str(&after.input.metadata["results"]).unwrap();
        assert_eq!(results.as_array().unwrap().len(), 3);
        assert_eq!(results[2]["item"], 2);
        assert_eq!(results[2]["input"], "c");
        assert!(results[2]["content"]
            .as_str()
            .unwrap()
            .ends_with("more bytes elided]"));
    }
}

#[tokio::test(start_paused = true)]
async fn record_text_limit_bounds_what_a_subgraph_step_reports_of_its_nested_outputs() {
    let big = "y".repeat(10_000);
    let inner = GraphOrchestrator::new("inner")
        .add_node(
            "a",
            SimpleAgent::new("a", "", move |_| Ok(AgentOutput::new(big.clone()))),
        )
        .add_node(
            "b",
            SimpleAgent::new("b", "", |_| Ok(AgentOutput::new("short"))),
        )
        .add_edge(START, "a")
        .add_edge("a", "b")
        .add_edge("b", END);
    let graph = GraphOrchestrator::new("g")
        .with_config(ExecutionConfig::new().with_record_text_limit(100))
        .add_subgraph("sub", inner)
        .add_edge(START, "sub")
        .add_edge("sub", END);
    for trace in traces_cut_to_100_bytes(&graph).await {
        let json = serde_json::to_string(&trace).unwrap();
        assert!(json.len() < 5_000, "the trace keeps {} bytes", json.len());
        // What is cut still reads as the data it was.
        let sub = &trace.agent_executions[0];
        let data = &sub.output.as_ref().unwrap().data;
        assert_eq!(data["agent_outputs"][1]["content"], "short");
        assert!(data["agent_outputs"][0]["content"]
            .as_str()
            .unwrap()
            .ends_with("more bytes elided]"));
    }
}

// ---------------------------------------------------------------------
// Questions asked in map items, answered one resume at a time.

/// Each item asks its own question, then answers with the reply.
fn approver(calls: &Calls) -> Do {
    act("approve", calls, |input, ctx| async move {
        let id = format!("approve-{}", input.content);
        let answer = ctx.ask(&id, &format!("approve {}?", input.content))?;
        Ok(AgentOutput::new(format!("{}={answer}", input.content)))
    })
}

fn map_of_approvals(calls: &Calls) -> GraphOrchestrator {
    GraphOrchestrator::new("approvals")
        .add_node("plan", echo_list())
        .add_map("approve", approver(calls), Split::Lines)
        .add_node(
            "sum",
            SimpleAgent::new("sum", "", |i| {
                Ok(AgentOutput::new(i.content.replace("\n\n", ",")))
            }),
        )
        .add_edge(START, "plan")
        .add_edge("plan", "approve")
        .add_edge("approve", "sum")
        .add_edge("sum", END)
}

fn echo_list() -> SimpleAgent<impl Fn(AgentInput) -> Result<AgentOutput> + Send + Sync> {
    SimpleAgent::new("plan", "", |_| Ok(AgentOutput::new("a\nb\nc")))
}

#[tokio::test(start_paused = true)]
async fn map_items_answered_over_two_resumes_each_run_until_answered_and_no_more() {
    let calls = calls();
    let graph = map_of_approvals(&calls);
    // The items run one after another (they never wait): the first
    // question stops the run before the next item starts.
    let first = paused(graph.orchestrate(vec![], input("go")).await);
    assert_eq!(question_ids(&first), ["approve-a"]);
    let second = paused(graph.resume(first, [("approve-a", "yes")]).await);
    assert_eq!(question_ids(&second), ["approve-b"]);
    assert_eq!(second.answers.len(), 1, "the answers carry over");
    let output = graph
        .resume(second, [("approve-b", "no"), ("approve-c", "maybe")])
        .await
        .unwrap();
    assert_eq!(output.result, "a=yes,b=no,c=maybe");
    // a and b ran twice (asked, then answered), c once.
    assert_eq!(count(&calls, "approve"), 2 + 2 + 1);
}

// ---------------------------------------------------------------------
// Two question nodes one after the other; the trace of each run.

#[tokio::test(start_paused = true)]
async fn two_questions_in_a_row_resume_twice_and_the_final_trace_round_trips_through_json() {
    let calls = calls();
    let worker = act("worker", &calls, |input, _| async move {
        Ok(AgentOutput::new(format!("work({})", input.content)))
    });
    let graph = GraphOrchestrator::new("two-asks")
        .add_ask("first", "Which topic?")
        .add_node("worker", worker)
        .add_ask("second", "Ship it?")
        .add_edge(START, "first")
        .add_edge("first", "worker")
        .add_edge("worker", "second")
        .add_edge("second", END);
    let pause1 = paused(graph.orchestrate(vec![], input("hello")).await);
    assert_eq!(question_ids(&pause1), ["first"]);
    let pause2 = paused(graph.resume(pause1, [("first", "tides")]).await);
    assert_eq!(question_ids(&pause2), ["second"]);
    assert_eq!(pause2.questions[0].node.as_deref(), Some("second"));
    assert!(pause2.questions[0].text.contains("work(tides)"));
    let output = graph.resume(pause2, [("second", "yes")]).await.unwrap();
    assert_eq!(output.result, "yes");
    assert_eq!(count(&calls, "worker"), 1);
    let trace = &output.execution_trace;
    let json = serde_json::to_string(trace).unwrap();
    let back: ExecutionTrace = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, trace);
}

// ---------------------------------------------------------------------
// Tolerant joins with branches a router skipped and branches that failed.

fn branch(
    name: &'static str,
    fails: bool,
) -> SimpleAgent<impl Fn(AgentInput) -> Result<AgentOutput> + Send + Sync> {
    SimpleAgent::new(name, "", move |input| {
        if fails {
            Err(claude_agent_sdk::orchestration::AgentError::new(format!("{name} broke")).into())
        } else {
            Ok(AgentOutput::new(format!("{name}({})", input.content)))
        }
    })
}

fn routed_join(
    take: &'static [&'static str],
    failing: &'static str,
    policy: JoinPolicy,
) -> GraphOrchestrator {
    GraphOrchestrator::new("routed")
        .with_max_retries(0)
        .add_node("triage", echo("triage"))
        .add_node("a", branch("agent-a", failing == "a"))
        .add_node("b", branch("agent-b", failing == "b"))
        .add_node("c", branch("agent-c", failing == "c"))
        .add_node("join", echo("join"))
        .add_edge(START, "triage")
        .add_router("triage", ["a", "b", "c"], move |_| {
            Route::to_all(take.iter().copied())
        })
        .add_edge("a", "join")
        .add_edge("b", "join")
        .add_edge("c", "join")
        .with_join("join", policy)
        .add_edge("join", END)
}

#[tokio::test(start_paused = true)]
async fn an_at_least_two_join_with_one_branch_skipped_and_one_failed_fails_naming_the_failed_node()
{
    let graph = routed_join(&["a", "b"], "b", JoinPolicy::AtLeast(2));
    let error = graph.orchestrate(vec![], input("x")).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("agent-b"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_at_least_two_join_with_all_taken_and_one_failed_runs_and_lists_the_failure() {
    let graph = routed_join(&["a", "b", "c"], "c", JoinPolicy::AtLeast(2));
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(
        output.result,
        "join(agent-a(triage(x))\n\nagent-b(triage(x)))"
    );
    assert_eq!(output.failures.len(), 1);
    assert_eq!(output.failures[0].agent_name, "agent-c");
    assert!(!output.is_successful());
}

// ---------------------------------------------------------------------
// Routers naming nodes they do not know, deep inside.

#[tokio::test(start_paused = true)]
async fn a_router_in_a_subgraph_choosing_an_unknown_node_is_named_with_its_subgraph() {
    let inner = GraphOrchestrator::new("inner")
        .add_node("pick", echo("pick"))
        .add_node("left", echo("left"))
        .add_edge(START, "pick")
        .add_router("pick", ["left"], |_| Route::to("right"))
        .add_edge("left", END);
    let outer = GraphOrchestrator::new("outer")
        .add_subgraph("sub", inner)
        .add_edge(START, "sub")
        .add_edge("sub", END);
    let error = outer.orchestrate(vec![], input("x")).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("sub"), "{text}");
    assert!(
        text.contains("`pick`") && text.contains("`right`"),
        "{text}"
    );
}

// ---------------------------------------------------------------------
// A loop whose condition reads shared state.

#[tokio::test(start_paused = true)]
async fn a_loop_condition_reads_the_count_its_body_kept_in_shared_state() {
    let calls = calls();
    let body = act("body", &calls, |input, ctx| async move {
        ctx.update_state("passes", |slot| {
            let n = slot
                .as_ref()
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            *slot = Some(serde_json::json!(n + 1));
        })
        .await;
        Ok(AgentOutput::new(format!("{}+", input.content)))
    });
    let graph = GraphOrchestrator::new("counted")
        .add_node("body", body)
        .add_edge(START, "body")
        .add_loop("body", "body", 10, |route| {
            route.state("passes").and_then(serde_json::Value::as_u64) < Some(3)
        })
        .add_edge("body", END);
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(output.result, "x+++");
    assert_eq!(count(&calls, "body"), 3);
}

// ---------------------------------------------------------------------
// A graph that pauses, nested by hand in an OrchestratorAgent.

#[tokio::test(start_paused = true)]
async fn an_orchestrator_agent_over_a_pausing_graph_pauses_the_graph_around_it_and_resumes() {
    let calls = calls();
    let asker = act("asker", &calls, |input, ctx| async move {
        let answer = ctx.ask("color", "Which color?")?;
        Ok(AgentOutput::new(format!("{}:{answer}", input.content)))
    });
    let inner = GraphOrchestrator::new("inner")
        .add_node("pre", echo("pre"))
        .add_node("asker", asker)
        .add_edge(START, "pre")
        .add_edge("pre", "asker")
        .add_edge("asker", END);
    let nested = OrchestratorAgent::new("nested", "", inner, vec![]);
    let outer = GraphOrchestrator::new("outer")
        .add_node("first", echo("first"))
        .add_node("nested", nested)
        .add_edge(START, "first")
        .add_edge("first", "nested")
        .add_edge("nested", END);
    let pause = paused(outer.orchestrate(vec![], input("x")).await);
    assert_eq!(question_ids(&pause), ["color"]);
    // Round trip the pause through JSON, as a caller keeping it would.
    let pause: Pause = serde_json::from_str(&serde_json::to_string(&pause).unwrap()).unwrap();
    let output = outer.resume(pause, [("color", "red")]).await.unwrap();
    assert_eq!(output.result, "pre(first(x)):red");
    assert_eq!(count(&calls, "asker"), 2);
    let record = output
        .execution_trace
        .agent_executions
        .iter()
        .find(|r| r.agent_name == "nested" && r.success)
        .expect("the nested step's record");
    let nested = record.nested.as_ref().expect("its nested trace");
    assert!(nested
        .agent_executions
        .iter()
        .any(|r| r.agent_name == "asker" && r.success));
}

// ---------------------------------------------------------------------
// Budgets crossed inside a subgraph while a sibling runs.

fn spender(name: &'static str, tokens: u64, delay: Duration, calls: &Calls) -> Do {
    act(name, calls, move |input, _| async move {
        tokio::time::sleep(delay).await;
        Ok(AgentOutput::new(format!("{name}({})", input.content))
            .with_data(serde_json::json!({"usage": {"input_tokens": tokens, "output_tokens": 0}})))
    })
}

#[tokio::test(start_paused = true)]
async fn a_budget_crossed_deep_in_a_subgraph_names_the_outer_budget_and_lets_the_sibling_finish() {
    let calls = calls();
    let inner = GraphOrchestrator::new("inner")
        .add_node("s1", spender("s1", 60, Duration::from_secs(1), &calls))
        .add_node("s2", spender("s2", 60, Duration::from_secs(1), &calls))
        .add_node("s3", spender("s3", 60, Duration::from_secs(1), &calls))
        .add_edge(START, "s1")
        .add_edge("s1", "s2")
        .add_edge("s2", "s3")
        .add_edge("s3", END);
    let outer = GraphOrchestrator::new("outer")
        .add_subgraph("sub", inner)
        .add_node("slow", spender("slow", 0, Duration::from_secs(10), &calls))
        .add_node("join", echo("join"))
        .add_edge(START, "sub")
        .add_edge(START, "slow")
        .add_edge("sub", "join")
        .add_edge("slow", "join")
        .add_edge("join", END)
        .with_budget(RunBudget::new().with_max_tokens(100));
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let error = outer
        .orchestrate_with_context(vec![], input("x"), &ctx)
        .await
        .unwrap_err();
    let OrchestrationError::BudgetExceeded(exceeded) = &error else {
        panic!("expected a budget error, got {error:?}");
    };
    assert_eq!(count(&calls, "s3"), 0);
    assert_eq!(count(&calls, "slow"), 1);
    let text = exceeded.to_string();
    assert!(text.contains("token"), "{text}");
    let trace = ctx.get_trace().await;
    let slow = trace
        .agent_executions
        .iter()
        .find(|r| r.agent_name == "slow")
        .unwrap();
    assert!(slow.success, "the sibling finished");
}

// ---------------------------------------------------------------------
// More combinations.

#[test]
fn a_map_with_a_router_or_closing_a_loop_is_refused_saying_where_to_put_a_node() {
    let routed = GraphOrchestrator::new("g")
        .add_node("plan", echo_list())
        .add_map("each", echo("each"), Split::Lines)
        .add_node("done", echo("done"))
        .add_edge(START, "plan")
        .add_edge("plan", "each")
        .add_router("each", ["done"], |_| Route::to("done"))
        .add_edge("done", END);
    let problems = routed.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].nodes, ["each"]);
    assert!(problems[0].message.contains("put a node after it"));
    let looped = GraphOrchestrator::new("g")
        .add_node("plan", echo_list())
        .add_map("each", echo("e"), Split::Lines)
        .add_edge(START, "plan")
        .add_edge("plan", "each")
        .add_loop("each", "plan", 2, |_| true)
        .add_edge("each", END);
    let problems = looped.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].message,
        "the loop from `each` back to `plan` is closed by a map: put a node after the map and close the loop there"
    );
}

#[tokio::test(start_paused = true)]
async fn a_question_node_in_a_subgraph_run_by_each_map_item_asks_once_per_item() {
    let inner = GraphOrchestrator::new("inner")
        .add_ask("confirm", "Keep this item?")
        .add_edge(START, "confirm")
        .add_edge("confirm", END);
    let graph = GraphOrchestrator::new("g")
        .add_node("plan", echo_list())
        .add_map(
            "each",
            OrchestratorAgent::new("each", "", inner, vec![]),
            Split::Lines,
        )
        .add_edge(START, "plan")
        .add_edge("plan", "each")
        .add_edge("each", END)
        .with_parallel_limit(5);
    // Each item asks under its own id (its step among the map's, the map's
    // own step first: see `Question::id_on_passes`); answer whatever is
    // asked, one resume after another, until the run ends.
    let mut asked: Vec<(String, String)> = Vec::new();
    let mut result = graph.orchestrate(vec![], input("x")).await;
    let output = loop {
        let pause = match result {
            Err(OrchestrationError::InputRequired(pause)) => *pause,
            other => break other.unwrap(),
        };
        assert!(asked.len() < 3, "asked again: {:?}", pause.questions);
        let answers: Vec<(String, String)> = pause
            .questions
            .iter()
            .map(|q| {
                asked.push((q.id.clone(), q.text.clone()));
                let item = q.text.rsplit('\n').next().unwrap_or_default();
                (q.id.clone(), format!("yes-{item}"))
            })
            .collect();
        result = graph.resume(pause, answers).await;
    };
    asked.sort();
    assert_eq!(
        asked,
        [
            ("confirm#2.1".to_owned(), "Keep this item?\n\na".to_owned()),
            ("confirm#3.1".to_owned(), "Keep this item?\n\nb".to_owned()),
            ("confirm#4.1".to_owned(), "Keep this item?\n\nc".to_owned()),
        ]
    );
    assert_eq!(output.result, "yes-a\n\nyes-b\n\nyes-c");
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_over_a_pausing_graph_fails_with_the_question_as_its_root_cause() {
    let inner = GraphOrchestrator::new("inner")
        .add_ask("confirm", "Sure?")
        .add_edge(START, "confirm")
        .add_edge("confirm", END);
    let steps: Vec<Box<dyn Agent>> = vec![
        Box::new(echo("first")),
        Box::new(OrchestratorAgent::new("asks", "", inner, vec![])),
    ];
    let error = SequentialOrchestrator::new()
        .orchestrate(steps, input("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.root_cause(), OrchestrationError::InputRequired(_)),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_over_a_pausing_graph_under_any_still_reports_the_question() {
    let inner = GraphOrchestrator::new("inner")
        .add_ask("confirm", "Sure?")
        .add_edge(START, "confirm")
        .add_edge("confirm", END);
    let steps: Vec<Box<dyn Agent>> = vec![
        Box::new(echo("first")),
        Box::new(OrchestratorAgent::new("asks", "", inner, vec![])),
    ];
    let error = ParallelOrchestrator::new()
        .with_join_policy(JoinPolicy::Any)
        .orchestrate(steps, input("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.root_cause(), OrchestrationError::InputRequired(_)),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_any_join_whose_only_taken_branch_failed_fails_with_that_branchs_error() {
    let graph = routed_join(&["c"], "c", JoinPolicy::Any);
    let error = graph.orchestrate(vec![], input("x")).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("agent-c") && text.contains("broke"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn resuming_a_pause_from_another_graph_names_the_node_and_the_graph() {
    let one = GraphOrchestrator::new("one")
        .add_node("prep", echo("prep"))
        .add_ask("ok", "ok?")
        .add_edge(START, "prep")
        .add_edge("prep", "ok")
        .add_edge("ok", END);
    let other = GraphOrchestrator::new("other")
        .add_ask("ok", "ok?")
        .add_edge(START, "ok")
        .add_edge("ok", END);
    let pause = paused(one.orchestrate(vec![], input("x")).await);
    let error = other.resume(pause, [("ok", "y")]).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("`prep`") && text.contains("`other`"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_appends_then_two_pauses_leave_each_value_once_for_the_router_after() {
    let calls = calls();
    let adder = |name: &'static str| {
        act(name, &calls, move |_, ctx| async move {
            ctx.append_state("found", serde_json::json!(name)).await;
            Ok(AgentOutput::new(name))
        })
    };
    let reader = act("reader", &calls, |_, ctx| async move {
        let found = ctx.get_state("found").await.unwrap_or_default();
        Ok(AgentOutput::new(found.to_string()))
    });
    let graph = GraphOrchestrator::new("g")
        .add_node("a", adder("a"))
        .add_node("b", adder("b"))
        .add_ask("q1", "first?")
        .add_ask("q2", "second?")
        .add_node("reader", reader)
        .add_node("many", echo("many"))
        .add_node("few", echo("few"))
        .add_edge(START, "a")
        .add_edge(START, "b")
        .add_edge("a", "q1")
        .add_edge("b", "q1")
        .add_edge("q1", "q2")
        .add_edge("q2", "reader")
        .add_router("reader", ["many", "few"], |route| {
            let n = route
                .state("found")
                .and_then(|v| v.as_array().map(Vec::len));
            if n == Some(2) {
                Route::to("few")
            } else {
                Route::to("many")
            }
        })
        .add_edge("many", END)
        .add_edge("few", END);
    let pause = paused(graph.orchestrate(vec![], input("x")).await);
    let pause = paused(graph.resume(pause, [("q1", "1")]).await);
    assert_eq!(pause.state["found"].as_array().unwrap().len(), 2);
    let output = graph.resume(pause, [("q2", "2")]).await.unwrap();
    assert!(output.result.starts_with("few("), "{}", output.result);
    assert_eq!(count(&calls, "a") + count(&calls, "b"), 2);
}

#[test]
fn a_join_on_end_is_reported_not_silently_ignored() {
    let graph = GraphOrchestrator::new("g")
        .add_node("a", echo("a"))
        .add_node("b", echo("b"))
        .add_edge(START, "a")
        .add_edge(START, "b")
        .add_edge("a", END)
        .add_edge("b", END)
        .with_join(END, JoinPolicy::Any);
    let problems = graph.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("`__end__`"),
        "{}",
        problems[0].message
    );
    assert!(graph.validate().is_err());
}

#[tokio::test(start_paused = true)]
async fn an_at_least_three_join_with_two_branches_taken_needs_both() {
    let graph = routed_join(&["a", "b"], "none", JoinPolicy::AtLeast(3));
    let output = graph.orchestrate(vec![], input("x")).await.unwrap();
    assert_eq!(
        output.result,
        "join(agent-a(triage(x))\n\nagent-b(triage(x)))"
    );
    let graph = routed_join(&["a", "b"], "a", JoinPolicy::AtLeast(3));
    assert!(graph.orchestrate(vec![], input("x")).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn the_steps_and_tokens_taken_back_on_two_resumes_fit_the_budget_and_are_not_spent_again() {
    let calls = calls();
    let graph = GraphOrchestrator::new("g")
        .add_node("a", spender("a", 60, Duration::from_secs(1), &calls))
        .add_ask("q", "ok?")
        .add_node("b", spender("b", 30, Duration::from_secs(1), &calls))
        .add_ask("q2", "ok?")
        .add_edge(START, "a")
        .add_edge("a", "q")
        .add_edge("q", "b")
        .add_edge("b", "q2")
        .add_edge("q2", END)
        .with_budget(RunBudget::new().with_max_tokens(100).with_max_steps(4));
    let pause = paused(graph.orchestrate(vec![], input("x")).await);
    let pause = paused(graph.resume(pause, [("q", "y")]).await);
    assert_eq!(question_ids(&pause), ["q2"]);
    let output = graph.resume(pause, [("q2", "z")]).await.unwrap();
    assert_eq!(output.result, "z");
    assert_eq!((count(&calls, "a"), count(&calls, "b")), (1, 1));
    // The last run spent nothing itself: what it took back was spent before.
    assert_eq!(output.total_usage().input_tokens, 0);
    let reported: u64 = output
        .agent_outputs
        .iter()
        .filter_map(claude_agent_sdk::orchestration::Usage::from_output)
        .map(|usage| usage.input_tokens)
        .sum();
    assert_eq!(reported, 90);
}

#[tokio::test(start_paused = true)]
async fn the_context_trace_of_a_subgraph_paused_then_resumed_round_trips_through_json() {
    let inner = GraphOrchestrator::new("inner")
        .add_node("p", echo("p"))
        .add_ask("confirm", "Sure?")
        .add_edge(START, "p")
        .add_edge("p", "confirm")
        .add_edge("confirm", END);
    let graph = GraphOrchestrator::new("g")
        .add_node("a", echo("a"))
        .add_subgraph("sub", inner)
        .add_edge(START, "a")
        .add_edge("a", "sub")
        .add_edge("sub", END);
    let ctx = ExecutionContext::new(ExecutionConfig::new());
    let pause = paused(
        graph
            .orchestrate_with_context(vec![], input("x"), &ctx)
            .await,
    );
    let output = graph
        .resume_in(pause, [("confirm", "y")], &ctx)
        .await
        .unwrap();
    assert_eq!(output.result, "y");
    let trace = ctx.get_trace().await;
    for trace in [&trace, &output.execution_trace] {
        let json = serde_json::to_string(trace).unwrap();
        assert_eq!(
            &serde_json::from_str::<ExecutionTrace>(&json).unwrap(),
            trace
        );
    }
    // The paused attempt of `sub` and the resumed one, each with its nested
    // run: the first shows `p` and the question, the second the answer only.
    let subs: Vec<_> = trace.attempts_of("sub").collect();
    assert_eq!(subs.len(), 2);
    assert!(!subs[0].success && subs[1].success);
    let names = |i: usize| -> Vec<&str> {
        subs[i]
            .nested
            .as_ref()
            .unwrap()
            .agent_executions
            .iter()
            .map(|r| r.agent_name.as_str())
            .collect()
    };
    assert_eq!(names(0), ["p", "confirm"]);
    assert_eq!(names(1), ["confirm"]);
}
