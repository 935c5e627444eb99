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
    ParallelOrchestrator, Result, RetryPolicy, Route, RunEvent, RunObserver,
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
