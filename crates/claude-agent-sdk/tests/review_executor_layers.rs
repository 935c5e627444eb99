//! The executor's layers as users meet them — retry policy, attempt timeout,
//! run deadline, cancellation, panic containment — alone and combined,
//! through nesting, registry overrides and the single-agent runner. Timing
//! on tokio's paused clock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claude_agent_sdk::orchestration::{
    Agent, AgentInput, AgentOutput, Backoff, ExecutionConfig, ExecutionContext, OrchestrationError,
    Orchestrator, OrchestratorAgent, OrchestratorInput, Result, RetryPolicy, RunEvent, RunObserver,
    SequentialOrchestrator,
};
use common::{permanent, transient, Scripted, Step};
use tokio::time::Instant;

/// A user's retry policy that always asks for the same delay.
#[derive(Debug)]
struct Fixed(Duration);

impl RetryPolicy for Fixed {
    fn retry_delay(&self, _: &OrchestrationError, _: u32, _: usize) -> Option<Duration> {
        Some(self.0)
    }
}

/// Records the retries scheduled and how runs finished.
#[derive(Default)]
struct Events {
    retries: Mutex<Vec<(String, u32, Duration)>>,
    attempts_started: Mutex<Vec<(String, u32, u32)>>,
    finished: Mutex<Vec<Option<OrchestrationError>>>,
}

impl RunObserver for Events {
    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::RetryScheduled {
                agent,
                next_attempt,
                delay,
                ..
            } => self
                .retries
                .lock()
                .unwrap()
                .push(((*agent).to_owned(), *next_attempt, *delay)),
            RunEvent::AttemptStarted {
                agent,
                attempt,
                max_attempts,
                ..
            } => self.attempts_started.lock().unwrap().push((
                (*agent).to_owned(),
                *attempt,
                *max_attempts,
            )),
            RunEvent::RunFinished { error, .. } => {
                self.finished.lock().unwrap().push(error.cloned())
            }
            _ => {}
        }
    }
}

fn config() -> ExecutionConfig {
    ExecutionConfig::new().with_logging(false)
}

#[tokio::test(start_paused = true)]
async fn a_retry_policy_asking_for_duration_max_is_cut_short_by_the_run_timeout() {
    let (agent, probe) = Scripted::new("limited", [Step::Fail(transient("busy"))]).boxed();
    let ctx = ExecutionContext::new(
        config()
            .with_timeout(Duration::from_secs(5))
            .with_retry_policy(Arc::new(Fixed(Duration::MAX))),
    );
    let started = Instant::now();
    let result = ctx.run_agent(agent.as_ref(), AgentInput::new("x")).await;
    assert!(
        matches!(result, Err(OrchestrationError::Timeout(_))),
        "{result:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(probe.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_policy_asking_for_no_delay_forever_still_ends_at_the_run_deadline() {
    let (agent, probe) = Scripted::new("flaky", [Step::Fail(transient("busy"))])
        .with_delay(Duration::from_millis(10))
        .boxed();
    let ctx = ExecutionContext::new(
        config()
            .with_timeout(Duration::from_secs(1))
            .with_max_retries(usize::MAX)
            .with_retry_policy(Arc::new(Fixed(Duration::ZERO))),
    );
    let started = Instant::now();
    let result = ctx.run_agent(agent.as_ref(), AgentInput::new("x")).await;
    assert!(
        matches!(result, Err(OrchestrationError::Timeout(_))),
        "{result:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(probe.calls(), 100, "a 10 ms attempt after another for 1 s");
}

#[tokio::test(start_paused = true)]
async fn max_retries_usize_max_with_the_default_policy_retries_without_overflow() {
    let (agent, probe) = Scripted::new(
        "flaky",
        [
            Step::Fail(transient("1")),
            Step::Fail(transient("2")),
            Step::Ok("third time"),
        ],
    )
    .boxed();
    let events = Arc::new(Events::default());
    let ctx = ExecutionContext::new(config().with_max_retries(usize::MAX))
        .with_observer(Arc::clone(&events) as Arc<dyn RunObserver>);
    let output = ctx
        .run_agent(agent.as_ref(), AgentInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.content, "third time");
    assert_eq!(probe.calls(), 3);
    let started = events.attempts_started.lock().unwrap().clone();
    assert_eq!(started.len(), 3);
    assert!(started.iter().all(|(_, _, max)| *max == u32::MAX));
}

#[tokio::test(start_paused = true)]
async fn a_retry_delay_is_cut_short_by_cancel_and_the_observer_hears_cancelled() {
    let limited = transient("429").with_retry_after(Duration::from_secs(600));
    let (agent, probe) = Scripted::new("limited", [Step::Fail(limited)]).boxed();
    let events = Arc::new(Events::default());
    let ctx =
        ExecutionContext::new(config()).with_observer(Arc::clone(&events) as Arc<dyn RunObserver>);
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let result = ctx.run_agent(agent.as_ref(), AgentInput::new("x")).await;
    assert!(
        matches!(result, Err(OrchestrationError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2), "prompt");
    assert_eq!(probe.calls(), 1);
    let retries = events.retries.lock().unwrap().clone();
    assert_eq!(retries.len(), 1);
    assert!(retries[0].2 >= Duration::from_secs(600), "{retries:?}");
    let finished = events.finished.lock().unwrap().clone();
    assert_eq!(finished, vec![Some(OrchestrationError::Cancelled)]);
}

#[tokio::test(start_paused = true)]
async fn cancel_between_two_attempts_of_a_pipeline_step_stops_the_pipeline() {
    let (first, first_probe) =
        Scripted::new("first", [Step::Fail(transient("busy")), Step::Ok("fine")]).boxed();
    let (second, second_probe) = Scripted::new("second", [Step::Ok("never")]).boxed();
    let ctx = ExecutionContext::new(config());
    let pipeline = SequentialOrchestrator::new().with_config(config().with_backoff_schedule(
        Backoff::new(Duration::from_secs(10), Duration::from_secs(10)).with_jitter(0.0),
    ));
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let result = pipeline
        .orchestrate_with_context(vec![first, second], OrchestratorInput::new("x"), &ctx)
        .await;
    assert!(
        matches!(result, Err(OrchestrationError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(first_probe.calls(), 1);
    assert_eq!(second_probe.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_error_retryable_then_permanent_ends_the_retries_and_stays_permanent_outside() {
    let (inner, probe) = Scripted::new(
        "inner",
        [
            Step::Fail(transient("busy")),
            Step::Fail(permanent("bad key")),
        ],
    )
    .boxed();
    let nested = OrchestratorAgent::new(
        "group",
        "",
        SequentialOrchestrator::new().with_max_retries(5),
        vec![inner],
    );
    let result = SequentialOrchestrator::new()
        .with_max_retries(5)
        .orchestrate(vec![Box::new(nested)], OrchestratorInput::new("x"))
        .await;
    let error = result.unwrap_err();
    assert_eq!(probe.calls(), 2, "no retry after the permanent error");
    assert!(!error.is_retryable(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("bad key"), "{text}");
    assert!(text.contains("after 2 attempts"), "{text}");
}

/// An agent that starts a nested run which cannot finish, and answers Ok
/// once that nested run has been stopped — after its attempt timed out.
struct LateAnswer {
    calls: AtomicUsize,
}

#[async_trait]
impl Agent for LateAnswer {
    fn name(&self) -> &str {
        "late"
    }
    fn description(&self) -> &str {
        "answers after its attempt timed out"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (hangs, _) = Scripted::new("hangs", [Step::Sleep(Duration::from_secs(3600))]).boxed();
        let ctx = ExecutionContext::current().expect("inside an attempt");
        let _ = ctx.run_agent(hangs.as_ref(), AgentInput::new("x")).await;
        Ok(AgentOutput::new("late result"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_result_that_arrives_after_the_attempt_timeout_is_not_used() {
    let late = LateAnswer {
        calls: AtomicUsize::new(0),
    };
    let ctx = ExecutionContext::new(
        config()
            .with_max_retries(0)
            .with_agent_timeout(Duration::from_secs(1)),
    );
    let result = ctx.run_agent(&late, AgentInput::new("x")).await;
    match result {
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            assert_eq!(name, "late");
            assert!(
                matches!(reason.cause(), Some(OrchestrationError::Timeout(_))),
                "{reason:?}"
            );
        }
        other => panic!("the late result was used: {other:?}"),
    }
    assert_eq!(late.calls.load(Ordering::SeqCst), 1);
}

/// A group of `inner` under a pipeline with `retries`.
fn group(name: &str, retries: usize, inner: Box<dyn Agent>) -> Box<dyn Agent> {
    Box::new(OrchestratorAgent::new(
        name.to_owned(),
        "",
        SequentialOrchestrator::new()
            .with_max_retries(retries)
            .with_config(
                config()
                    .with_max_retries(retries)
                    .with_backoff_schedule(Backoff::default().with_jitter(0.0)),
            ),
        vec![inner],
    ))
}

#[tokio::test(start_paused = true)]
async fn attempts_are_counted_right_through_three_levels_of_nesting() {
    let (leaf, probe) = Scripted::new("leaf", [Step::Fail(transient("busy"))]).boxed();
    let middle = group("middle", 1, leaf);
    let outer = group("outer", 1, middle);
    let result = SequentialOrchestrator::new()
        .with_config(config().with_max_retries(1))
        .orchestrate(vec![outer], OrchestratorInput::new("x"))
        .await;
    assert_eq!(probe.calls(), 8, "2 × 2 × 2 attempts");
    let error = result.unwrap_err();
    let text = error.to_string();
    println!("{text}");
    assert!(error.is_retryable());
    assert_eq!(text.matches("after 2 attempts").count(), 3, "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_from_a_nested_failure_floors_the_outer_retry() {
    let limited = transient("429").with_retry_after(Duration::from_secs(7));
    let (leaf, probe) = Scripted::new("leaf", [Step::Fail(limited), Step::Ok("ok")]).boxed();
    let nested = group("group", 0, leaf);
    let events = Arc::new(Events::default());
    let ctx = ExecutionContext::new(
        config()
            .with_max_retries(1)
            .with_backoff_schedule(Backoff::default().with_jitter(0.0)),
    )
    .with_observer(Arc::clone(&events) as Arc<dyn RunObserver>);
    let started = Instant::now();
    let output = ctx
        .run_agent(nested.as_ref(), AgentInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.content, "ok");
    assert_eq!(probe.calls(), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    let retries = events.retries.lock().unwrap().clone();
    assert_eq!(
        retries,
        vec![("group".to_owned(), 2, Duration::from_secs(7))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_enclosing_attempt_timeout_times_that_attempt_out() {
    let limited = transient("429").with_retry_after(Duration::from_secs(600));
    let (leaf, probe) = Scripted::new("leaf", [Step::Fail(limited)]).boxed();
    let nested = group("group", 3, leaf);
    let ctx = ExecutionContext::new(
        config()
            .with_max_retries(1)
            .with_agent_timeout(Duration::from_secs(2))
            .with_backoff_schedule(
                Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).with_jitter(0.0),
            ),
    );
    let started = Instant::now();
    let result = ctx.run_agent(nested.as_ref(), AgentInput::new("x")).await;
    // Two 2 s attempts of the group, 1 s apart: the leaf's 600 s wait never
    // outlives the attempt it waits in.
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(probe.calls(), 2);
    match result {
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            assert_eq!(name, "group");
            match reason.cause() {
                Some(OrchestrationError::Timeout(message)) => {
                    assert!(message.contains("attempt 2"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_deep_inside_is_not_retried_by_the_runs_around_it() {
    let (leaf, probe) = Scripted::new("leaf", [Step::Panic("boom")]).boxed();
    let nested = group("outer", 3, group("middle", 3, leaf));
    let ctx = ExecutionContext::new(config().with_max_retries(3));
    let error = ctx
        .run_agent(nested.as_ref(), AgentInput::new("x"))
        .await
        .unwrap_err();
    assert_eq!(probe.calls(), 1);
    assert!(!error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("boom"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_a_policy_that_retries_an_instant_failure_at_once_forever() {
    let (agent, probe) = Scripted::new("flaky", [Step::Fail(transient("busy"))]).boxed();
    let ctx = ExecutionContext::new(
        config()
            .with_max_retries(usize::MAX)
            .with_retry_policy(Arc::new(Fixed(Duration::ZERO))),
    );
    let canceller = ctx.clone();
    tokio::spawn(async move {
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        canceller.cancel();
    });
    let result = ctx.run_agent(agent.as_ref(), AgentInput::new("x")).await;
    assert!(
        matches!(result, Err(OrchestrationError::Cancelled)),
        "{result:?}"
    );
    assert!(probe.calls() >= 1);
}

/// Blocks its thread (nothing can interrupt it) for its duration, then answers.
struct BlocksThread(Duration);

#[async_trait]
impl Agent for BlocksThread {
    fn name(&self) -> &str {
        "blocks"
    }
    fn description(&self) -> &str {
        "blocks its thread past its attempt timeout"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        std::thread::sleep(self.0);
        Ok(AgentOutput::new("found at last"))
    }
}

/// On the real clock: the agent blocks its thread for 20 ms against a 1 ms
/// bound, so its answer always comes after its time is up.
#[tokio::test]
async fn an_answer_from_an_agent_that_blocked_past_its_attempt_timeout_is_not_used() {
    let ctx = ExecutionContext::new(
        config()
            .with_max_retries(0)
            .with_agent_timeout(Duration::from_millis(1)),
    );
    let blocks = BlocksThread(Duration::from_millis(20));
    let result = ctx.run_agent(&blocks, AgentInput::new("x")).await;
    match result {
        Err(OrchestrationError::AgentFailed(name, reason)) => {
            assert_eq!(name, "blocks");
            assert!(
                matches!(reason.cause(), Some(OrchestrationError::Timeout(_))),
                "{reason:?}"
            );
        }
        other => panic!("the late answer was used: {other:?}"),
    }
}

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("dropped badly");
    }
}

/// Waits forever holding a value that panics when dropped.
struct HangsThenPanicsOnDrop(AtomicUsize);

#[async_trait]
impl Agent for HangsThenPanicsOnDrop {
    fn name(&self) -> &str {
        "hangs"
    }
    fn description(&self) -> &str {
        "its future panics when dropped"
    }
    async fn execute(&self, _input: AgentInput) -> Result<AgentOutput> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let _guard = PanicsOnDrop;
        std::future::pending::<()>().await;
        Ok(AgentOutput::new("never"))
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_that_drops_an_agent_panicking_in_drop_is_still_retried() {
    let agent = HangsThenPanicsOnDrop(AtomicUsize::new(0));
    let ctx = ExecutionContext::new(
        config()
            .with_max_retries(2)
            .with_agent_timeout(Duration::from_secs(1)),
    );
    let result = ctx.run_agent(&agent, AgentInput::new("x")).await;
    assert_eq!(agent.0.load(Ordering::SeqCst), 3, "timed out, so retried");
    match result {
        Err(OrchestrationError::AgentFailed(_, reason)) => assert!(
            matches!(reason.cause(), Some(OrchestrationError::Timeout(_))),
            "{reason:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_during_one_branchs_retry_delay_stops_the_whole_fan_out_promptly() {
    let limited = transient("429").with_retry_after(Duration::from_secs(600));
    let (waiting, waiting_probe) = Scripted::new("waiting", [Step::Fail(limited)]).boxed();
    let (working, working_probe) =
        Scripted::new("working", [Step::Sleep(Duration::from_secs(900))]).boxed();
    let ctx = ExecutionContext::new(config());
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let result = claude_agent_sdk::orchestration::ParallelOrchestrator::new()
        .orchestrate_with_context(vec![waiting, working], OrchestratorInput::new("x"), &ctx)
        .await;
    assert!(
        matches!(result, Err(OrchestrationError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(waiting_probe.calls(), 1);
    assert_eq!(working_probe.dropped_unfinished(), 1);
}

/// An agent that bounds its own attempts by zero.
struct ZeroTimeout(Arc<AtomicUsize>);

#[async_trait]
impl Agent for ZeroTimeout {
    fn name(&self) -> &str {
        "instant"
    }
    fn description(&self) -> &str {
        "bounds its attempts by zero"
    }
    fn attempt_timeout(&self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(AgentOutput::new(input.content))
    }
}

#[tokio::test(start_paused = true)]
async fn an_agents_own_zero_attempt_timeout_is_a_config_error_not_a_run_of_timeouts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let result = SequentialOrchestrator::new()
        .with_config(config())
        .orchestrate(
            vec![Box::new(ZeroTimeout(Arc::clone(&calls)))],
            OrchestratorInput::new("x"),
        )
        .await;
    match result {
        Err(OrchestrationError::InvalidConfig(message)) => {
            assert!(message.contains("`instant`"), "{message}");
            assert!(message.contains("zero attempt timeout"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "never run");
    assert_eq!(started.elapsed(), Duration::ZERO);
    // The single-agent runner says the same.
    let ctx = ExecutionContext::new(config());
    let single = ctx
        .run_agent(&ZeroTimeout(Arc::clone(&calls)), AgentInput::new("x"))
        .await;
    assert!(
        matches!(single, Err(OrchestrationError::InvalidConfig(_))),
        "{single:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_graph_node_with_a_zero_attempt_timeout_is_refused_before_anything_runs() {
    use claude_agent_sdk::orchestration::{GraphOrchestrator, NodeOptions, END, START};
    let (first, first_probe) = Scripted::new("first", [Step::Ok("one")]).boxed();
    let (second, second_probe) = Scripted::new("second", [Step::Ok("two")]).boxed();
    let graph = GraphOrchestrator::new("zero")
        .add_node("first", first)
        .add_node_with(
            "second",
            second,
            NodeOptions::new().with_attempt_timeout(Duration::ZERO),
        )
        .add_edge(START, "first")
        .add_edge("first", "second")
        .add_edge("second", END);
    let result = graph.orchestrate(vec![], OrchestratorInput::new("x")).await;
    match result {
        Err(OrchestrationError::InvalidConfig(message)) => {
            assert!(message.contains("`second`"), "{message}");
            assert!(message.contains("zero attempt timeout"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(first_probe.calls(), 0, "nothing ran");
    assert_eq!(second_probe.calls(), 0);
}

/// A pipeline nested in an agent whose attempt timeout comes before the
/// pipeline's own timeout: the nested run's error says what cut it, not a
/// run timeout it never reached.
#[tokio::test(start_paused = true)]
async fn a_nested_run_cut_by_the_enclosing_attempts_deadline_says_so() {
    for (inner_timeout, expected) in [
        (
            Duration::from_secs(300),
            "cut short by the deadline of the attempt it runs in",
        ),
        (Duration::from_secs(1), "exceeded its 1s run timeout"),
    ] {
        let (leaf, _) = Scripted::new("leaf", [Step::Sleep(Duration::from_secs(10))]).boxed();
        let group: Box<dyn Agent> = Box::new(OrchestratorAgent::new(
            "group".to_owned(),
            "",
            SequentialOrchestrator::new()
                .with_config(config().with_max_retries(0).with_timeout(inner_timeout)),
            vec![leaf],
        ));
        let events = Arc::new(Events::default());
        let ctx = ExecutionContext::new(config())
            .with_observer(Arc::clone(&events) as Arc<dyn RunObserver>);
        let result = SequentialOrchestrator::new()
            .with_config(
                config()
                    .with_max_retries(0)
                    .with_agent_timeout(Duration::from_secs(2)),
            )
            .orchestrate_with_context(vec![group], OrchestratorInput::new("x"), &ctx)
            .await;
        assert!(
            matches!(result, Err(OrchestrationError::AgentFailed(..))),
            "{result:?}"
        );
        let finished = events.finished.lock().unwrap().clone();
        // The nested run ends first.
        match finished.first() {
            Some(Some(OrchestrationError::Timeout(message))) => {
                assert!(message.contains(expected), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_retry_policy_asking_for_less_than_the_retry_after_hint_waits_the_hint() {
    let limited = transient("429").with_retry_after(Duration::from_secs(5));
    let (agent, probe) =
        Scripted::new("limited", [Step::Fail(limited), Step::Ok("served")]).boxed();
    let events = Arc::new(Events::default());
    let ctx = ExecutionContext::new(
        config().with_retry_policy(Arc::new(Fixed(Duration::from_millis(1)))),
    )
    .with_observer(Arc::clone(&events) as Arc<dyn RunObserver>);
    let started = Instant::now();
    let output = ctx
        .run_agent(agent.as_ref(), AgentInput::new("x"))
        .await
        .unwrap();
    assert_eq!(output.content, "served");
    assert_eq!(probe.calls(), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(5), "the hint's wait");
    let retries = events.retries.lock().unwrap().clone();
    assert_eq!(
        retries,
        vec![("limited".to_owned(), 2, Duration::from_secs(5))]
    );
}

/// Blocks its thread: nothing can stop it in time.
struct Stuck;

#[async_trait]
impl Agent for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }
    fn description(&self) -> &str {
        "blocks its thread"
    }
    async fn execute(&self, input: AgentInput) -> Result<AgentOutput> {
        std::thread::sleep(Duration::from_millis(400));
        Ok(AgentOutput::new(input.content))
    }
}

/// What the observer heard of each attempt's end.
#[derive(Default)]
struct Ends(Mutex<Vec<(String, std::result::Result<String, OrchestrationError>)>>);

impl RunObserver for Ends {
    fn on_event(&self, event: &RunEvent<'_>) {
        if let RunEvent::AttemptFinished { agent, outcome, .. } = event {
            let outcome = outcome
                .map(|output| output.content.clone())
                .map_err(Clone::clone);
            self.0.lock().unwrap().push(((*agent).to_owned(), outcome));
        }
    }
}

/// An attempt abandoned when its run is cancelled (it did not stop within
/// the grace period) is heard as cancelled — not as a timeout quoting the
/// run's limit, which for an unbounded run read as 585 billion years.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_abandoned_when_its_run_is_cancelled_is_heard_as_cancelled() {
    let ends = Arc::new(Ends::default());
    let ctx =
        ExecutionContext::new(config()).with_observer(Arc::clone(&ends) as Arc<dyn RunObserver>);
    let canceller = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        canceller.cancel();
    });
    let result = claude_agent_sdk::orchestration::ParallelOrchestrator::new()
        .with_config(config().with_timeout(Duration::MAX).with_max_retries(0))
        .orchestrate_with_context(vec![Box::new(Stuck)], OrchestratorInput::new("x"), &ctx)
        .await;
    assert!(
        matches!(result, Err(OrchestrationError::Cancelled)),
        "{result:?}"
    );
    let ends = ends.0.lock().unwrap().clone();
    assert_eq!(
        ends,
        vec![("stuck".to_owned(), Err(OrchestrationError::Cancelled))]
    );
    // The record says what happened to it.
    let trace = ctx.get_trace().await;
    let record = &trace.agent_executions[0];
    assert_eq!(
        record.error.as_deref(),
        Some("interrupted: the attempt was abandoned (it did not stop in time)")
    );
}
